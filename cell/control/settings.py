"""``cell.toml`` for the controller: the ``[store]``, ``[control]``, ``[pipeline]`` and ``[robot]`` tables.

Other tables of the file belong to other parts (``[pathplan]``, ``[api]``, ...) and are left to them; inside the
tables read here an unknown key is an error that names it. Example::

    [store]
    path = "runs/cell/cell.db"
    [pipeline]
    mode = "real"            # or "replay" (recorded plans per style: load tests only, never production)
    [robot]
    host = "127.0.0.1"
    port = 9090
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gluecell.core.config import from_dict, read_toml
from gluecell.core.errors import ConfigError

from .controller import ControllerConfig

__all__ = ["StoreSettings", "PipelineSettings", "CellSettings", "load_settings", "build_pipeline"]


@dataclass(frozen=True)
class StoreSettings:
    """Where the cell database lives; ``synchronous`` FULL also survives a power cut (NORMAL: a killed process)."""

    path: str = "runs/cell/cell.db"
    synchronous: str = "FULL"


@dataclass(frozen=True)
class PipelineSettings:
    """Which stages prepare a pair.

    Attributes:
        mode: "real" (perception -> deformation -> pathplan) or "replay" (recorded plans, see ``pipeline.py``).
        replay_dir: folder of ``<style>.json`` recordings (mode "replay").
        replay_stage_ms: simulated stage time per pair in replay mode.
        references: the style library: "sim" (the simulated cell's nominal pairs) or "none" (scans only).
        out: folder for each pair's clouds, plan and picture ("" = none).
        pictures: draw a picture of each plan (about 1 s per pair).
        margin_sigmas: keep the glue this many sigma of the predicted line inside it.
    """

    mode: str = "real"
    replay_dir: str = ""
    replay_stage_ms: float = 0.0
    references: str = "sim"
    out: str = "runs/cell/pairs"
    pictures: bool = True
    margin_sigmas: float = 2.0


@dataclass(frozen=True)
class CellSettings:
    """The controller's part of ``cell.toml``."""

    store: StoreSettings = field(default_factory=StoreSettings)
    control: ControllerConfig = field(default_factory=ControllerConfig)
    pipeline: PipelineSettings = field(default_factory=PipelineSettings)
    robot: Any = None


def load_settings(path: str | Path | None) -> CellSettings:
    """Read the controller's tables of ``path`` (defaults when None); bad keys/values raise ConfigError."""
    from gluecell.cell.robot.config import RobotLinkConfig

    raw = read_toml(path) if path is not None else {}
    s = CellSettings(store=from_dict(StoreSettings, raw.get("store", {}), path="store"),
                     control=from_dict(ControllerConfig, raw.get("control", {}), path="control"),
                     pipeline=from_dict(PipelineSettings, raw.get("pipeline", {}), path="pipeline"),
                     robot=from_dict(RobotLinkConfig, raw.get("robot", {}), path="robot"))  # fmt: skip
    if s.pipeline.mode not in ("real", "replay"):
        raise ConfigError(f"pipeline.mode: 'real' or 'replay', got {s.pipeline.mode!r}", key="pipeline.mode")
    if s.pipeline.references not in ("sim", "none"):
        raise ConfigError(f"pipeline.references: 'sim' or 'none', got {s.pipeline.references!r}",
                          key="pipeline.references")  # fmt: skip
    if s.pipeline.mode == "replay" and not s.pipeline.replay_dir:
        raise ConfigError("pipeline.replay_dir is required in replay mode", key="pipeline.replay_dir")
    return s


def sim_style_library() -> Any:
    """``refs(item)`` from the simulated cell's style library (its nominal pairs; a plant has CAD data)."""
    from types import SimpleNamespace

    from gluecell.cell.sim.references import nominal_sole, nominal_upper

    cache: dict = {}

    def refs(item: dict[str, Any]) -> tuple[Any, Any]:
        it = SimpleNamespace(style=item["style"], size_eu=item["size_eu"], side=item["side"])
        return nominal_upper(cache, it)[:2], nominal_sole(cache, it)

    return refs


def build_pipeline(p: PipelineSettings, references: Any = None) -> Any:
    """The pipeline the settings name (``references``: a style library for the real mode, or None)."""
    from .pipeline import RealPipeline, ReplayPipeline

    if p.mode == "replay":
        return ReplayPipeline.load(Path(p.replay_dir), stage_ms=p.replay_stage_ms)
    return RealPipeline(references, out=Path(p.out) if p.out else None, pictures=p.pictures,
                        margin_sigmas=p.margin_sigmas)  # fmt: skip
