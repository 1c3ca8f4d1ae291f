"""Stage framework: registry, config-built pipelines, composite error wrapping, contract tests."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from gluecell.core.errors import ConfigError
from gluecell.pathplan.errors import StageError
from gluecell.pathplan.modifiers import SpeedProfileParams, pass_tangents
from gluecell.pathplan.region import upper_region
from gluecell.pathplan.stages import KINDS, Composite, Stage, build_pipeline, build_stage, registered
from gluecell.pathplan.synthetic import make_synthetic_pair
from gluecell.pathplan.toolpath import BondRegion, ToolPath

#: Idempotent stages must agree with themselves to this (metres / unitless).
IDEMPOTENT_TOL = 1e-6
#: Every registered stage name the issue asks for.
REQUIRED = {"contour_offset", "raster_fill", "standoff", "orient", "smooth", "resample", "lead_in_out",
            "gun_on_off", "speed_profile", "band_width", "subsample"}  # fmt: skip


@pytest.fixture(scope="module")
def region():
    pair = make_synthetic_pair()
    pts, nrm = pair.sample("upper", 25000, seed=3, noise_mm=0.1)
    return upper_region(pts, pair.bite_line, nrm)


@pytest.fixture(scope="module")
def toolpath(region):
    return build_stage({"name": "contour_offset", "width_mm": 20.0})(region)


def _prepared(toolpath: ToolPath, name: str) -> ToolPath:
    """The input a modifier expects in a real pipeline (tips before gun_on_off)."""
    if name in ("gun_on_off", "speed_profile", "lead_in_out"):
        return build_pipeline([{"name": "orient"}, {"name": "standoff"}])(toolpath)
    return toolpath


def _same(a, b) -> bool:
    if dataclasses.is_dataclass(a):
        return all(_same(getattr(a, f.name), getattr(b, f.name)) for f in dataclasses.fields(a))
    if isinstance(a, np.ndarray):
        return a.shape == b.shape and (np.allclose(a, b, atol=IDEMPOTENT_TOL) if a.dtype.kind == "f" else
                                       np.array_equal(a, b))  # fmt: skip
    return a == b or (isinstance(a, float) and np.isnan(a) and np.isnan(b))


def test_required_stages_are_registered():
    names = set(registered())
    assert REQUIRED <= names, REQUIRED - names
    for name, cls in registered().items():
        assert cls.name == name and cls.kind in KINDS and dataclasses.is_dataclass(cls.Params)


@pytest.mark.parametrize("name", sorted(registered()))
def test_contract_every_stage_runs_and_idempotent_ones_repeat(name, region, toolpath):
    """Every registered stage runs on the shared fixtures; idempotent ones give the same result twice."""
    cls = registered()[name]
    stage = build_stage({"name": name})
    value = region if cls.kind in ("region", "planner") else _prepared(toolpath, name)
    once = stage(value)
    if cls.kind == "region":
        assert isinstance(once, BondRegion) and 0 < len(once.points) <= len(region.points)
        assert np.all(np.isfinite(once.points)) and np.all(np.isfinite(once.signed))
    else:
        assert isinstance(once, ToolPath) and once.part == region.part
        assert len(once) > 0 and np.all(np.isfinite(once.contact))
    if cls.kind == "planner":
        assert len(once) > 10 and np.all(np.isfinite(once.contact))
        assert _same(once, stage(region)) if cls.idempotent else True
    elif cls.idempotent:
        assert _same(once, stage(once)), f"{name} declares itself idempotent but changed on a second run"
    # the spec round-trips through the config form
    assert build_stage(stage.spec()).params == stage.params


def test_unknown_keys_and_names_are_config_errors():
    with pytest.raises(ConfigError, match="unknown key"):
        build_pipeline([{"name": "contour_offset", "step_mmm": 4}])
    with pytest.raises(ConfigError, match="unknown stage"):
        build_pipeline([{"name": "spiral"}])
    with pytest.raises(ConfigError, match="must be > 0"):
        build_stage({"name": "resample", "spacing_mm": 0})
    with pytest.raises(ConfigError, match="modifier stage"):
        build_pipeline([{"name": "smooth"}], kind="planner")
    with pytest.raises(ConfigError, match="list"):
        build_pipeline({"name": "smooth"})


def test_pipeline_from_config_list_sets_params():
    comp = build_pipeline([{"name": "contour_offset", "step_mm": 4}, {"name": "resample", "spacing_mm": 1.5}])
    assert isinstance(comp, Composite) and len(comp) == 2
    assert comp.stages[0].params.step_mm == 4.0 and comp.stages[1].params.spacing_mm == 1.5
    assert comp.spec()[0]["step_mm"] == 4.0


def test_composite_wraps_errors_with_name_and_index(toolpath):
    comp = build_pipeline([{"name": "resample"}, {"name": "gun_on_off"}], label="upper.modifiers")
    with pytest.raises(StageError) as info:
        comp(toolpath)  # gun_on_off needs nozzle tips
    assert info.value.stage == "upper.modifiers[1]:gun_on_off"
    assert "standoff" in str(info.value) and info.value.partial is not None


def test_modifiers_do_what_they_say(toolpath):
    """Resample spacing, standoff distance, gun off in transit, speed profile."""
    spacing, standoff = 2.0, 30.0
    out = build_pipeline([
        {"name": "resample", "spacing_mm": spacing}, {"name": "orient"},
        {"name": "standoff", "standoff_mm": standoff, "edge_within_mm": 0.0},
        {"name": "lead_in_out"}, {"name": "gun_on_off"}, {"name": "speed_profile", "spray_mm_s": 250.0},
    ])(toolpath)  # fmt: skip
    d = np.linalg.norm(out.tip - out.contact, axis=1)[out.pass_id >= 0]
    assert np.allclose(d, standoff * 1e-3, atol=1e-9)
    assert not np.any(out.spray[out.pass_id < 0]), "gun must be off in transit"
    # every pass ends with the gun off
    for idx in out.passes():
        assert not out.spray[idx[-1]]
    assert np.all(out.speed[out.pass_id < 0] == pytest.approx(SpeedProfileParams().transit_mm_s * 1e-3))
    # resampled spacing along the first ring
    ring = build_stage({"name": "resample", "spacing_mm": spacing})(toolpath)
    first = ring.contact[ring.pass_id == ring.pass_id[0]]
    seg = np.linalg.norm(np.diff(first, axis=0), axis=1)
    assert abs(np.median(seg) - spacing * 1e-3) < 0.2e-3


def test_orient_respects_tilt_limits(toolpath):
    max_from_down, max_tilt = 60.0, 40.0
    out = build_stage({"name": "orient", "max_from_down_deg": max_from_down, "max_tilt_deg": max_tilt})(toolpath)
    down = np.degrees(np.arccos(np.clip(out.direction @ [0, 0, -1.0], -1, 1)))
    tilt = np.degrees(np.arccos(np.clip(np.einsum("ij,ij->i", out.direction, -out.normal), -1, 1)))
    assert tilt.max() <= max_tilt + 1e-6
    # where both limits can hold (the inward normal within max_from_down + max_tilt of straight down) both do:
    # the 60 degree limit is checked, on waypoints that need it (their normal is more than 60 degrees off down)
    normal_down = np.degrees(np.arccos(np.clip(-out.normal @ [0, 0, -1.0], -1, 1)))
    feasible = normal_down <= max_from_down + max_tilt
    assert np.sum(feasible & (normal_down > max_from_down)) > 50
    assert down[feasible].max() <= max_from_down + 1e-6
    # elsewhere the two limits conflict and the tilt limit wins: no direction points upwards more than it allows
    assert down.max() <= 90.0 + max_tilt + 1e-6


def test_custom_stage_registers_and_wraps():
    @dataclasses.dataclass(frozen=True)
    class P:
        factor: float = 2.0

    class Boom(Stage):
        name = "test_boom_stage"
        kind = "modifier"
        Params = P

        def modify(self, path):
            raise ValueError("boom")

    from gluecell.pathplan.stages import register

    register(Boom)
    comp = build_pipeline([{"name": "test_boom_stage", "factor": 3.0}])
    with pytest.raises(StageError, match=r"pipeline\[0\]:test_boom_stage failed: boom"):
        comp(None)


def test_pass_tangents_closed_loop_is_unit():
    th = np.linspace(0, 2 * np.pi, 50, endpoint=False)
    pts = np.column_stack([np.cos(th), np.sin(th), np.zeros_like(th)])
    t = pass_tangents(pts, closed=True)
    assert np.allclose(np.linalg.norm(t, axis=1), 1.0)
    assert np.allclose(np.einsum("ij,ij->i", t, pts), 0.0, atol=1e-12)
