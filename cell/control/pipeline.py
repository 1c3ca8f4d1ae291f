"""The stages of one pair, wrapped in ONE place: scan -> predict -> plan (and the stand-in inspection).

The controller only calls :meth:`Pipeline.prepare` and :func:`standin_inspect`; this module is where the stage
packages are called, so the integrator can switch them to new functions (the margin/predict policy moving into
``deformation``/``pathplan``, the plan's own verdict, ``gluecell.quality.inspect``) in one place.

Two modes, each named in every plan it makes (``plans.source`` in the store):

* ``real`` (:class:`RealPipeline`): perception cleans the frames the cameras wrote for the item, deformation
  predicts the bite line and its sigma (with the style's nominal upper and sole and the shipped calibration; a
  refused prediction goes to the operator, who marks the line), and pathplan plans, times and judges both parts
  with the planning safety policy (:mod:`gluecell.pathplan.safety`: margin, re-checked correction, verdict).
  Used by ``gluecell demo`` and ``gluecell serve``.
* ``replay`` (:class:`ReplayPipeline`): the robot programs of a plan recorded once per style by the real
  pipeline (``record_replay``) are replayed for every pair of that style. It is NOT the pipeline: it exists so
  the controller, the robot link and the store can be measured on 1,000 pairs in accelerated time (bench) and
  tested quickly. Its verdicts say nothing about glue on real pairs.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from gluecell.cell.errors import CellError

__all__ = ["PreparedPair", "Pipeline", "RealPipeline", "ReplayPipeline", "record_replay", "program_from_dict",
           "program_to_dict", "standin_inspect", "STANDIN_SOURCE", "REPLAY_FORMAT", "MARKED_SIGMA_M",
           "MARKED_MARGIN_SIGMAS"]  # fmt: skip

#: The name under which the stand-in verdict is recorded (``inspections.source``).
STANDIN_SOURCE = "stand-in:plan-checks"
#: 1-sigma tolerance of a line an operator marks on the pair (metres): the glue keeps the policy's margin
#: (2 sigma) inside a marked line too. 0.3 mm: the marking noise of the embedded default's simulated operator
#: (:data:`gluecell.cell.sim.outcome.MARKING_NOISE_M`); a plant sets it from a repeatability study of its
#: operators' marks.
MARKED_SIGMA_M = 0.3e-3
#: Margin kept inside an operator-marked line, in its sigmas. A marked line's error is one smooth pen stroke,
#: so the margin must hold along the whole line, not per point: with the simulated operator's marks on the
#: 50-pair demo world, the mark lies more than 2 sigma beyond the true line somewhere on 32 of 50 pairs, more
#: than 2.5 on 10, more than 3 on 1 (3.08), none past 3.5. With 2 sigma the world's spray (on the finely
#: resolved film) put glue 0.1-0.3 mm above the true line on 3 of 3 re-planned pairs; with 3 sigma on 0 of 10.
#: A plant sets it from its operators' repeatability study (the largest deviation along a marked line).
MARKED_MARGIN_SIGMAS = 3.0
#: Format of a recorded replay plan file.
REPLAY_FORMAT = "gluecell.replay/1"


@dataclass(frozen=True)
class PreparedPair:
    """What the pipeline made of one pair.

    Attributes:
        item_id: the work item.
        verdict: "ok" (spray it) or "needs_human" (the pair goes to rework with ``reason``).
        cause: short machine-readable cause when not ok ("perception", "deformation", "pathplan", "timeout:...").
        reason: words for the human.
        plan: ``gluecell.plan/1`` dict with ``robot_programs`` and ``metrics`` (None when no plan was made).
        programs: part -> :class:`~gluecell.core.types.RobotProgram`, in spraying order.
        timing_ms: stage -> milliseconds.
        source: "real" or "replay".
        picture: a picture of the plan for the human (None when not drawn).
    """

    item_id: str
    verdict: str
    cause: str | None = None
    reason: str = ""
    plan: dict[str, Any] | None = None
    programs: dict[str, Any] = field(default_factory=dict)
    timing_ms: dict[str, float] = field(default_factory=dict)
    source: str = "real"
    picture: str | None = None


class Pipeline(Protocol):
    """What the controller needs from the stages."""

    name: str

    def prepare(self, item: dict[str, Any], frames: Path | None) -> PreparedPair:
        """Scan, predict and plan ``item`` (a work item dict from the store) from the frames in ``frames``."""
        ...


def program_to_dict(prog: Any) -> dict[str, Any]:
    """A :class:`RobotProgram` as plain JSON."""
    return {"joint_names": list(prog.joint_names), "t": [round(float(x), 6) for x in prog.t],
            "q": [[round(float(v), 7) for v in row] for row in prog.q],
            "gun_events": [[round(float(t), 6), bool(on)] for t, on in prog.gun_events]}  # fmt: skip


def program_from_dict(d: dict[str, Any]) -> Any:
    """Inverse of :func:`program_to_dict` (validated by :class:`RobotProgram`)."""
    from gluecell.core.types import RobotProgram

    try:
        return RobotProgram(joint_names=tuple(d["joint_names"]), t=d["t"], q=d["q"],
                            gun_events=tuple((float(t), bool(on)) for t, on in d.get("gun_events", ())))  # fmt: skip
    except (KeyError, TypeError) as exc:
        raise CellError(f"robot program: missing or malformed field ({exc})") from exc


def standin_inspect(prepared: PreparedPair, executed_ok: bool, *, min_coverage: float = 0.98) -> dict[str, Any]:
    """The stand-in inspection verdict, until ``gluecell.quality.inspect`` exists: the plan's own checks.

    A pair passes when the robot reported every goal SUCCEEDED and the planner's deposition model predicted the
    bond region covered (``coverage_1mm`` >= ``min_coverage`` on every part; the planner already refuses glue
    beyond the line). It inspects the PLAN, not the glue: a real camera check replaces it.

    Returns:
        {"verdict": "pass"|"fail", "cause": None|str, "source": STANDIN_SOURCE, "data": {...}}
    """
    metrics = (prepared.plan or {}).get("metrics", {})
    cov = {part: float(m.get("coverage_1mm", 0.0)) for part, m in metrics.items()}
    if not executed_ok:
        cause = "spray"
    elif not cov:
        cause = "no_plan_metrics"
    elif min(cov.values()) < min_coverage:
        cause = "coverage"
    else:
        cause = None
    return {"verdict": "pass" if cause is None else "fail", "cause": cause, "source": STANDIN_SOURCE,
            "data": {"planned_coverage_1mm": cov, "min_coverage": min_coverage, "robot_ok": executed_ok}}  # fmt: skip


def _timed(stage: str, timing: dict[str, float], fn: Callable[[], Any]) -> Any:
    t = time.perf_counter()
    try:
        return fn()
    finally:
        timing[stage] = (time.perf_counter() - t) * 1e3


class RealPipeline:
    """perception -> deformation -> pathplan, with the planning safety policy of ``gluecell plan``.

    The line is predicted with its sigma (:func:`gluecell.deformation.line.predict_bite_line`), the glue is kept
    each point's own margin (2 sigma) inside it and the plan is judged
    (:func:`gluecell.pathplan.safety.plan_checked`: coverage, glue beyond the line, an uncertain line, a capped
    margin, a refused correction). A plan whose verdict is ``needs_human`` is stored with its reasons and the
    pair goes to the rework queue unsprayed.

    A prediction that is refused as too uncertain, or whose sigma cannot be trusted, is handed to the operator
    when a ``marker`` is given: the operator marks the line on the pair and the cell plans to the marked line
    (the plan records ``line_source``). Without a marker such a pair goes to the human unplanned.

    Args:
        references: ``refs(item) -> (upper (points, normals), sole (points, normals))`` of the item's style
            (the plant's style library; ``None``: predict from the scans alone).
        out: folder for the plan JSON, the clouds and the picture of each pair (None: nothing written).
        pictures: draw ``<id>_plan.png`` (about a second per pair).
        margin_sigmas: keep the glue this many sigma of the predicted line inside it.
        marker: ``mark(item) -> (m, 3) line or None``: the operator's marked line (a console in a plant; the
            simulated operator, :func:`gluecell.cell.sim.operator.sim_line_marker`, in the embedded default).
        plan_worker: start the planner's warm worker process (:mod:`gluecell.pathplan.workers`): the sole is
            planned in it beside the upper, on the second core, once it has warmed up (a few seconds).
        marked_sigma_m: 1-sigma tolerance of an operator's mark (:data:`MARKED_SIGMA_M`).
        marked_margin_sigmas: keep the glue this many of its sigmas inside a marked line
            (:data:`MARKED_MARGIN_SIGMAS`: the whole line, not each point).
        pathplan_config: the cell's ``PathplanConfig`` (its ``[pathplan]`` table: the calibrated gun, the design
            film; None: the planner's defaults).
    """

    name = "real"

    def __init__(self, references: Callable[[dict[str, Any]], tuple[Any, Any]] | None = None,
                 out: Path | None = None, pictures: bool = False, margin_sigmas: float | None = None,
                 marker: Callable[[dict[str, Any]], Any] | None = None, plan_worker: bool = True,
                 marked_sigma_m: float = MARKED_SIGMA_M, marked_margin_sigmas: float = MARKED_MARGIN_SIGMAS,
                 pathplan_config: Any = None) -> None:  # fmt: skip
        if not (math.isfinite(marked_sigma_m) and 0 <= marked_sigma_m <= 5e-3):
            raise CellError(f"marked_sigma_m must be a length within 0-5 mm, got {marked_sigma_m}")
        if not (math.isfinite(marked_margin_sigmas) and 0 <= marked_margin_sigmas <= 5):
            raise CellError(f"marked_margin_sigmas must be within 0-5, got {marked_margin_sigmas}")
        self.marked_margin_sigmas = float(marked_margin_sigmas)
        self.references, self.out, self.pictures = references, out, pictures
        self.margin_sigmas = margin_sigmas
        self.pathplan_config = pathplan_config
        self.marker = marker
        self.marked_sigma_m = float(marked_sigma_m)
        self._calibration: Any = None
        if plan_worker:
            from gluecell.pathplan import workers

            workers.start()
            workers.join_here()  # kernels loaded before the line runs, not during a spray
        _warm_stages()

    def prepare(self, item: dict[str, Any], frames: Path | None) -> PreparedPair:
        """Run the stages; a stage's refusal (GlueCellError) becomes a "needs_human" pair naming the stage, and
        a plan judged ``needs_human`` a "needs_human" pair with the plan and its reasons."""
        from gluecell.core.errors import GlueCellError

        timing: dict[str, float] = {}
        stage = "perception"
        try:
            scans = _timed("perception", timing, lambda: self._scan(item, frames))
            stage = "deformation"
            line = _timed("deformation", timing, lambda: self._line(item, scans))
            stage = "pathplan"
            checked = _timed("pathplan", timing, lambda: self._plan(scans, line))
        except GlueCellError as exc:
            return PreparedPair(item["id"], "needs_human", stage, f"{stage}: {exc.message}", timing_ms=timing)
        plan = self._plan_dict(line, checked, timing)
        picture = self._write(item["id"], scans, plan) if self.out is not None else None
        if checked.verdict != "ok":
            return PreparedPair(item["id"], "needs_human", "plan_verdict", "plan needs a human: "
                                + "; ".join(checked.reasons), plan=plan, timing_ms=timing, source=self.name,
                                picture=picture)  # fmt: skip
        return PreparedPair(item["id"], "ok", plan=plan, programs=dict(checked.pair.programs), timing_ms=timing,
                            source=self.name, picture=picture)  # fmt: skip

    def _scan(self, item: dict[str, Any], frames: Path | None) -> dict[str, Any]:
        from gluecell.core.frames import load_frame
        from gluecell.perception.camera.sim import find_frame_files
        from gluecell.perception.scan import scan_part_frames

        if frames is None:
            raise CellError("no camera frames for the pair", stage="perception", item_id=item["id"])
        return {p: scan_part_frames([load_frame(f) for f in find_frame_files(frames, p)], p, item_id=item["id"])
                for p in ("upper", "sole")}  # fmt: skip

    def _line(self, item: dict[str, Any], scans: dict[str, Any]) -> dict[str, Any]:
        """The line to plan to: ``{"line", "sigma", "sigma_p95_m", "reasons", "source"}`` (predicted, or marked
        by the operator when the prediction is refused or its sigma cannot be trusted)."""
        from gluecell.deformation.calibration import DEFAULT_CALIBRATION, load_calibration
        from gluecell.deformation.errors import LowConfidenceError
        from gluecell.deformation.line import predict_bite_line

        if self._calibration is None:
            self._calibration = load_calibration(DEFAULT_CALIBRATION)
        ref, sole_ref = self.references(item) if self.references else (None, None)
        try:
            pl = predict_bite_line(scans["upper"], scans["sole"], reference=ref, sole_reference=sole_ref,
                                   style=item["style"], calibration=self._calibration)  # fmt: skip
        except LowConfidenceError as exc:
            if self.marker is None:
                raise
            why = exc.message
        else:
            if not pl.reasons or self.marker is None:
                return {"line": pl.line, "sigma": pl.sigma, "sigma_p95_m": pl.sigma_p95_m,
                        "reasons": pl.reasons, "source": "predicted"}  # fmt: skip
            why = "; ".join(pl.reasons)
        marked = self.marker(item)
        if marked is None:
            raise CellError(f"the prediction was refused ({why}) and no line was marked on the pair",
                            stage="deformation", item_id=item["id"])  # fmt: skip
        import numpy as np

        marked = np.asarray(marked, dtype=float)
        sig = np.full(len(marked), self.marked_sigma_m)  # the marking tolerance: the glue keeps 2 sigma inside
        return {"line": marked, "sigma": sig, "sigma_p95_m": self.marked_sigma_m, "reasons": (),
                "source": f"operator (prediction refused: {why})",
                "margin_sigmas": self.marked_margin_sigmas}  # fmt: skip

    def _plan(self, scans: dict[str, Any], line: dict[str, Any]) -> Any:
        from gluecell.pathplan.safety import MARGIN_SIGMAS, plan_checked

        margin = MARGIN_SIGMAS if self.margin_sigmas is None else self.margin_sigmas
        margin = line.get("margin_sigmas", margin)  # a marked line: the margin holds along the whole stroke
        up, so = scans["upper"], scans["sole"]
        return plan_checked((up.points, up.normals), (so.points, so.normals), line["line"], self.pathplan_config,
                            sigma_p95_m=line["sigma_p95_m"], sigma_m=line["sigma"], margin_sigmas=margin,
                            line_reasons=line["reasons"])  # fmt: skip

    @staticmethod
    def _plan_dict(line: dict[str, Any], checked: Any, timing: dict[str, float]) -> dict[str, Any]:
        from gluecell.core.plan import Plan, plan_to_dict

        pair = checked.pair
        extra = {"robot_programs": {k: program_to_dict(p) for k, p in pair.programs.items()},
                 "metrics": pair.metrics, "verdict": checked.verdict, "verdict_reasons": list(checked.reasons),
                 "line_source": line["source"], "margin_mm": float(checked.extra["margin_mm"])}  # fmt: skip
        if line["sigma"] is not None:  # per point, metres (the console draws it)
            extra["bite_line_sigma"] = [round(float(v), 7) for v in line["sigma"]]
        plan = Plan(bite_line=line["line"], paths=tuple(pair.paths.values()), timing_ms=dict(timing), extra=extra)
        return plan_to_dict(plan)

    def _write(self, item_id: str, scans: dict[str, Any], plan: dict[str, Any]) -> str | None:
        from gluecell.core.fileio import atomic_write_json
        from gluecell.core.ply import write_ply

        assert self.out is not None
        self.out.mkdir(parents=True, exist_ok=True)
        for p, scan in scans.items():
            write_ply(self.out / f"{item_id}_{p}.ply", scan.points, scan.normals)
        atomic_write_json(self.out / f"{item_id}_plan.json", plan)
        if not self.pictures:
            return None
        from gluecell.cell.cli.plan import draw_plan

        png = self.out / f"{item_id}_plan.png"
        draw_plan(self.out / f"{item_id}_plan.json", png, upper=self.out / f"{item_id}_upper.ply",
                  sole=self.out / f"{item_id}_sole.ply")  # fmt: skip
        return str(png)


def _warm_stages() -> None:
    """Import the stages' modules (torch, open3d, the predictor, the planner) before the line runs: importing
    holds the interpreter for seconds on a loaded machine, and the first pair's prepare did it while the link's
    thread waited for /joint_states (8-pair demos on the shared 2-core machine went to Held, "no /joint_states
    for > 0.50 s", 3 s after the first pair arrived, before any spray)."""
    import importlib

    for name in ("gluecell.perception.scan", "gluecell.perception.camera.sim", "gluecell.deformation.line",
                 "gluecell.deformation.predict", "gluecell.deformation.residual", "gluecell.deformation.calibration",
                 "gluecell.pathplan.safety", "gluecell.pathplan.pipeline", "gluecell.core.plan", "gluecell.core.ply",
                 "gluecell.quality.inspect", "torch"):  # fmt: skip
        try:
            importlib.import_module(name)
        except ImportError:  # an optional stage library that is not installed fails later, with its own message
            pass
    from gluecell.deformation.icpkernel import warm_up as icp_warm_up

    icp_warm_up()  # the ICP's compiled neighbour search (~0.5 s from numba's disk cache; else in the first pair)
    from gluecell.deformation.sectkernel import warm_up as sections_warm_up

    sections_warm_up()  # the sections' compiled per-station loops (likewise)


class ReplayPipeline:
    """Replays a recorded plan per style (see the module docstring: not the pipeline; for load and tests).

    Args:
        recorded: style -> plan dict (``REPLAY_FORMAT`` files as :func:`record_replay` writes them).
        stage_ms: simulated stage time per pair (0: none), slept in the worker so pipelining is exercised.
    """

    name = "replay"

    def __init__(self, recorded: dict[str, dict[str, Any]], stage_ms: float = 0.0) -> None:
        if not recorded:
            raise CellError("replay pipeline: no recorded plans")
        self.recorded = recorded
        self.stage_ms = float(stage_ms)
        self._programs = {s: {k: program_from_dict(v) for k, v in d["robot_programs"].items()}
                          for s, d in recorded.items()}  # fmt: skip

    @classmethod
    def load(cls, folder: Path, stage_ms: float = 0.0) -> ReplayPipeline:
        """Read ``<folder>/<style>.json`` files."""
        from gluecell.core.fileio import check_version, read_json

        rec = {}
        for f in sorted(Path(folder).glob("*.json")):
            d = read_json(f)
            check_version(d.get("replay_format"), REPLAY_FORMAT, what=str(f))
            rec[f.stem] = d
        return cls(rec, stage_ms)

    def prepare(self, item: dict[str, Any], frames: Path | None) -> PreparedPair:
        """The style's recorded plan (a style with no recording needs a human)."""
        style = item["style"]
        if style not in self.recorded:
            return PreparedPair(item["id"], "needs_human", "replay", f"no recorded plan for style {style!r}",
                                source=self.name)  # fmt: skip
        if self.stage_ms > 0:
            time.sleep(self.stage_ms / 1e3)
        return PreparedPair(item["id"], "ok", plan=self.recorded[style], programs=dict(self._programs[style]),
                            timing_ms={"replay": self.stage_ms}, source=self.name)  # fmt: skip


def record_replay(pipeline: RealPipeline, item: dict[str, Any], frames: Path, out: Path) -> Path:
    """Run the real pipeline on one pair and write its plan as ``<out>/<style>.json`` for :class:`ReplayPipeline`.

    Raises:
        CellError: the pipeline refused the pair (pick another).
    """
    from gluecell.core.fileio import atomic_write_json

    pp = pipeline.prepare(item, frames)
    if pp.verdict != "ok" or pp.plan is None:
        raise CellError(f"cannot record a replay plan from {item['id']}: {pp.reason}", item_id=item["id"])
    path = Path(out) / f"{item['style']}.json"
    atomic_write_json(path, {**pp.plan, "replay_format": REPLAY_FORMAT, "recorded_from": item["id"]})
    return path
