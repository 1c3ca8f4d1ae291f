"""Learned spray-path correction: per-waypoint shifts of the upper's edge pass from local features.

The planner places the edge pass (the ring nearest the bite line) with its own simple deposition model;
the real spray differs (a bounded fan with mist, valve delays, grazing spray on a bulging side). A small
MLP predicts, for every waypoint of the edge pass, how far (metres, along the surface tangent ``inward``,
i.e. away from the bite line; negative = towards it) the pass should move so that the glue's top edge
lands a target margin below the line. It sees only what the pipeline has without truth: the tool path,
its timing and the scanned bond region (:func:`edge_features`).

The passes closer to the line than ``follow_within_mm`` (the edge rings and the first main ring) move with
the edge pass, by the offset of its nearest waypoint, so the glue pattern beside the line shifts as one.

Safety: predictions are smoothed along the pass and clamped to +-``max_offset_mm`` (1.5 mm by default:
about the edge pass's footprint half-width at 8 mm standoff, so one wrong prediction can at most move
the glue edge by that much, and never more than the planner's own first-ring offset of ~2.7-3.4 mm);
a sprayed waypoint whose features lie outside the training ranges (widened by ``range_tolerance`` of each
range) gets no correction, and if more than ``max_out_of_range`` of them do, the whole path stays
uncorrected with the reason in the diagnostics; a checkpoint that did not beat the uncorrected planner on
held-out pairs is refused by :func:`load_model` (``beats_baseline`` must be true). The network is fitted to
a high quantile of the needed shift (:mod:`.correction_train`), so it errs away from the line.

Apply it after the tuning loop, on the final plan (:func:`apply_correction`): inside the loop the
planner's own model would undo it. Training: :mod:`gluecell.pathplan.correction_train`; outcomes come
from the simulated cell (``gluecell correction collect``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from gluecell.core.errors import VersionError

from .errors import NonFiniteError, PathplanError
from .geom import unit
from .stages import Stage, register
from .toolpath import BondRegion, ToolPath

log = logging.getLogger(__name__)

__all__ = ["DEFAULT_MODEL", "FORMAT", "FEATURE_NAMES", "N_FEATURES", "CorrectionError", "CorrectionRefusedError",
           "CorrectionModel", "CorrectionResult", "LearnedCorrection", "LearnedCorrectionParams", "planner_fingerprint",
           "edge_pass_indices", "edge_features", "build_mlp", "load_model", "read_checkpoint",
           "apply_correction", "correct_plan", "correct_toolpath"]  # fmt: skip

#: The shipped model (trained and evaluated as ``pathplan/models/correction.json`` records).
DEFAULT_MODEL = Path(__file__).parent / "models" / "correction.pt"
#: Checkpoint format (major/minor); a major mismatch raises VersionError. 2.0: the ``margin_mm`` feature (the
#: region's per-point margin inside the given line: on perceived pairs the glue edge's distance from the true line
#: depends on it, and 1.x checkpoints never saw a margin).
FORMAT = "gluecell.correction/2.0"
#: Per-waypoint features, in column order (units in the names).
FEATURE_NAMES: tuple[str, ...] = (
    "offset_mm",  # planned surface distance of the waypoint from the bite line
    "standoff_mm",  # tip to contact point
    "incidence_deg",  # nozzle axis vs the inward surface normal
    "tilt_inward",  # nozzle axis component along the inward tangent (towards the bond side)
    "axis_down",  # nozzle axis component along -z (gravity)
    "normal_z",  # surface normal z: 0 on a vertical side, 1 on the bottom (the upper lies bottom-up)
    "speed_mm_s",  # tip speed towards the next waypoint, from the path's timing
    "curv_around_1_m",  # normal curvature of the pass round the shoe (toe and heel are tight)
    "curv_geodesic_1_m",  # in-surface curvature of the pass, + when it bends towards the bond side
    "curv_up_1_m",  # normal curvature of the side across the pass (up/down the side)
    "bulge_mm",  # how far the surface beyond the line stands out towards the nozzle (side bulge)
    "incidence_beyond_deg",  # nozzle axis vs the surface 2 mm beyond the line (grazing spray creeps there)
    "margin_mm",  # the line's safety margin at the waypoint (2 sigma of a predicted or marked line; 0: exact)
)
N_FEATURES = len(FEATURE_NAMES)
#: Surface stencil for curvature / beyond-line probes (metres).
_PROBE_M = 3e-3
_BEYOND_M = 2e-3
_BULGE_RADIUS_M = 12e-3


class CorrectionError(PathplanError):
    """The learned correction cannot be used (bad checkpoint, bad inputs)."""


class CorrectionRefusedError(CorrectionError):
    """The checkpoint is not allowed to switch the correction on (it did not beat the baseline)."""


def planner_fingerprint() -> str:
    """Short hash of the planner's source (the stages and tuning that make the paths a correction is trained
    on); a checkpoint trained on another planner is flagged ``planner_changed`` in the diagnostics."""
    import hashlib

    h = hashlib.sha256()
    here = Path(__file__).parent
    for name in ("pipeline", "planners", "modifiers", "tuning", "deposition", "region", "timing"):
        f = here / f"{name}.py"
        h.update(f.read_bytes() if f.exists() else b"")
    return h.hexdigest()[:16]


def edge_pass_indices(tp: ToolPath) -> np.ndarray:
    """Indices (k,) of the spray pass nearest the boundary (the edge pass), lead-in/out included; empty if none."""
    best, best_off = np.zeros(0, dtype=np.int64), np.inf
    for idx in tp.passes():
        if tp.pass_id[idx[0]] < 0 or not np.any(tp.spray[idx]):
            continue
        off = float(np.median(np.abs(tp.offset[idx])))
        if off < best_off:
            best, best_off = idx, off
    return np.asarray(best, dtype=np.int64)


def _speeds(tp: ToolPath, idx: np.ndarray, t: np.ndarray | None) -> np.ndarray:
    """Tip speed (k,) m/s at waypoints ``idx``: from times ``t`` (aligned with ``tp``) or ``tp.speed``."""
    if t is None:
        if tp.speed is None:
            raise CorrectionError("edge_features needs waypoint times or tool-path speeds (run speed_profile)")
        return np.asarray(tp.speed[idx], dtype=np.float64)
    t = np.asarray(t, dtype=np.float64)
    if not np.all(np.isfinite(t)):  # a NaN time would read as a standing nozzle (speed 0) and pass the gate
        raise NonFiniteError(f"edge features: {int(np.sum(~np.isfinite(t)))} waypoint times are NaN/inf",
                             what="waypoint times")  # fmt: skip
    tip = tp.tip if tp.tip is not None else tp.contact
    seg = np.linalg.norm(np.diff(tip, axis=0), axis=1)
    dt = np.diff(t)
    v = np.divide(seg, dt, out=np.zeros_like(seg), where=dt > 1e-6)
    v = np.r_[v, v[-1:] if len(v) else [0.0]]
    j = np.minimum(idx, len(v) - 1)
    return np.where(v[j] > 0, v[j], v[np.maximum(j - 1, 0)])


def _pass_curvatures(c: np.ndarray, n: np.ndarray, g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Normal (round the part) and geodesic (towards ``g``) curvature (k,) 1/m of the polyline ``c``."""
    if len(c) < 3:
        return np.zeros(len(c)), np.zeros(len(c))
    d1 = np.gradient(c, axis=0)
    ds = np.linalg.norm(d1, axis=1)
    tan = unit(d1)
    dt = np.gradient(tan, axis=0) / np.maximum(ds, 1e-6)[:, None]
    return -np.einsum("ij,ij->i", dt, n), np.einsum("ij,ij->i", dt, g)


def _margins(region: BondRegion, c: np.ndarray) -> np.ndarray:
    """The region's margin inside its line (k,) metres at the boundary vertex nearest each point ``c`` (k, 3):
    its per-vertex ``meta["margin_m"]``, else its one ``meta["bite_margin_mm"]``, else 0 (an exact line)."""
    from scipy.spatial import cKDTree

    per = np.asarray(region.meta.get("margin_m", ()), dtype=np.float64).ravel()
    if len(per) == len(region.boundary) and len(per):
        return per[cKDTree(region.boundary).query(c)[1]]
    return np.full(len(c), float(region.meta.get("bite_margin_mm", 0.0)) * 1e-3)


def edge_features(tp: ToolPath, region: BondRegion, idx: np.ndarray, t: np.ndarray | None = None) -> np.ndarray:
    """Features (k, N_FEATURES) float64 of waypoints ``idx`` of ``tp`` (see :data:`FEATURE_NAMES`).

    Args:
        tp: oriented tool path with tips (after ``orient`` and ``standoff``), base_link metres.
        region: the part's bond region (scanned points (n, 3), normals, signed distance from the line).
        idx: (k,) waypoint indices, consecutive along one pass.
        t: (len(tp),) seconds, the path's final timing (robot-retimed); None: ``tp.speed``.
    Returns:
        Finite values; deterministic for the same inputs.
    """
    from scipy.spatial import cKDTree

    idx = np.asarray(idx, dtype=np.int64)
    if tp.direction is None or tp.tip is None:
        raise CorrectionError("edge_features needs an oriented path with tips (run orient and standoff first)")
    c = tp.contact[idx]
    nrm, g, d = (unit(getattr(tp, k)[idx], what=f"edge-pass {k}", allow_zero=False)
                 for k in ("normal", "inward", "direction"))  # fmt: skip
    tree = cKDTree(region.points)

    def normal_at(q: np.ndarray) -> np.ndarray:
        _, j = tree.query(q, k=min(6, len(region.points)))
        return unit(region.normals[np.atleast_2d(j)].mean(axis=1))

    n_plus, n_minus = normal_at(c + _PROBE_M * g), normal_at(c - _PROBE_M * g)
    curv_up = np.einsum("ij,ij->i", n_plus - n_minus, g) / (2 * _PROBE_M)
    beyond = c - (np.maximum(tp.offset[idx], 0.0) + _BEYOND_M)[:, None] * g
    inc_beyond = np.degrees(np.arccos(np.clip(-np.einsum("ij,ij->i", d, normal_at(beyond)), -1, 1)))
    bulge = np.zeros(len(idx))
    out_side = region.signed < 0
    for k, nb in enumerate(tree.query_ball_point(c, r=_BULGE_RADIUS_M)):
        nb = np.asarray(nb, dtype=np.int64)
        nb = nb[out_side[nb]] if len(nb) else nb
        if len(nb):
            bulge[k] = float(np.max((region.points[nb] - c[k]) @ nrm[k]))
    k_around, k_geo = _pass_curvatures(c, nrm, g)
    margin = _margins(region, c)
    feats = np.column_stack([
        tp.offset[idx] * 1e3,
        np.linalg.norm(tp.tip[idx] - c, axis=1) * 1e3,
        np.degrees(np.arccos(np.clip(-np.einsum("ij,ij->i", d, nrm), -1, 1))),
        np.einsum("ij,ij->i", d, g),
        -d[:, 2],
        nrm[:, 2],
        np.clip(_speeds(tp, idx, t), 0.0, 2.0) * 1e3,
        k_around, k_geo, curv_up, bulge * 1e3, inc_beyond, margin * 1e3,
    ])  # fmt: skip
    bad = ~np.isfinite(feats)
    if np.any(bad):  # a NaN read as 0 would pass the range gate and move the pass on made-up input
        names = [FEATURE_NAMES[j] for j in np.flatnonzero(bad.any(axis=0))]
        raise NonFiniteError(f"edge features: {int(bad.any(axis=1).sum())} of {len(feats)} edge waypoints have "
                             f"NaN/inf features {names}; the correction cannot be computed", what=names)
    return feats


def build_mlp(n_in: int, hidden: tuple[int, ...]) -> Any:
    """The correction network: ``n_in`` standardised features -> hidden SiLU layers -> 1 output (mm)."""
    import torch.nn as nn

    layers: list[Any] = []
    last = n_in
    for h in hidden:
        layers += [nn.Linear(last, h), nn.SiLU()]
        last = h
    layers.append(nn.Linear(last, 1))
    return nn.Sequential(*layers)


@dataclass
class CorrectionModel:
    """A loaded correction network with its feature statistics and checkpoint record (checkpoints are written by
    :func:`gluecell.pathplan.correction_train.save_checkpoint`).

    Attributes:
        net: torch module, standardised features -> offset in mm.
        mean, std: (F,) feature standardisation; lo, hi: (F,) training feature ranges.
        record: the checkpoint dict without tensors (config, metrics, held-out evaluation, beats_baseline).
    """

    net: Any
    mean: np.ndarray
    std: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    record: dict[str, Any] = field(default_factory=dict)

    def predict_mm(self, feats: np.ndarray) -> np.ndarray:
        """Raw (unclamped) offsets (k,) mm for features (k, F)."""
        import torch

        x = (np.asarray(feats, dtype=np.float64) - self.mean) / self.std
        with torch.no_grad():
            y = self.net(torch.as_tensor(x, dtype=torch.float32)).numpy()[:, 0]
        return y.astype(np.float64)

    def out_of_range(self, feats: np.ndarray, tolerance: float) -> np.ndarray:
        """(k, F) bool: feature values outside the training range widened by ``tolerance`` x its width."""
        pad = tolerance * np.maximum(self.hi - self.lo, 1e-9)
        return (feats < self.lo - pad) | (feats > self.hi + pad)


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The raw checkpoint dict; VersionError on another format major, CorrectionError on a bad file."""
    import torch

    from gluecell.core.fileio import check_version

    try:
        blob = torch.load(Path(path), map_location="cpu", weights_only=True)
    except FileNotFoundError as exc:
        raise CorrectionError(f"{path}: correction checkpoint not found") from exc
    except Exception as exc:  # torch raises many kinds on a corrupt file
        raise CorrectionError(f"{path}: not a readable correction checkpoint ({exc})") from exc
    if not isinstance(blob, dict):
        raise CorrectionError(f"{path}: checkpoint is not a mapping")
    check_version(blob.get("format"), FORMAT, what=str(path))
    if tuple(blob.get("feature_names", ())) != FEATURE_NAMES:
        raise VersionError(f"{path}: checkpoint features {blob.get('feature_names')} != {list(FEATURE_NAMES)}")
    return blob


def load_model(path: str | Path, *, require_beats_baseline: bool = True) -> CorrectionModel:
    """Load a checkpoint written by :func:`gluecell.pathplan.correction_train.save_checkpoint`.

    Raises:
        CorrectionRefusedError: ``require_beats_baseline`` and the checkpoint's held-out evaluation did not
            record ``beats_baseline: true`` (an unevaluated model is refused too).
        VersionError / CorrectionError: another format major, other features, unreadable file.
    """
    blob = read_checkpoint(path)
    if require_beats_baseline and blob.get("beats_baseline") is not True:
        raise CorrectionRefusedError(
            f"{path}: the correction did not beat the uncorrected planner on held-out pairs "
            f"(beats_baseline={blob.get('beats_baseline')!r}); it stays off. Evaluate it with "
            "`gluecell correction eval --write` or retrain it",
            heldout=blob.get("heldout"),
        )
    cfg = blob.get("config", {})
    net = build_mlp(N_FEATURES, tuple(cfg.get("hidden", (32, 32))))
    net.load_state_dict(blob["state_dict"])
    net.eval()
    st = {k: v.numpy().astype(np.float64) for k, v in blob["stats"].items()}
    record = {k: v for k, v in blob.items() if k not in ("state_dict", "stats")}
    return CorrectionModel(net, st["mean"], st["std"], st["lo"], st["hi"], record)


@dataclass(frozen=True)
class CorrectionResult:
    """A corrected tool path and what happened: ``applied``, ``reason`` when not, per-waypoint offsets (m)."""

    toolpath: ToolPath
    applied: bool
    reason: str
    indices: np.ndarray
    offsets_m: np.ndarray
    diagnostics: dict[str, Any]


def _smooth(x: np.ndarray, window: int) -> np.ndarray:
    """Moving average (edge-padded) of a 1-D array over an odd ``window``."""
    w = min(window, len(x) - (1 - len(x) % 2))
    if w < 3:
        return x
    h = w // 2
    ext = np.r_[np.repeat(x[:1], h), x, np.repeat(x[-1:], h)]
    return np.convolve(ext, np.ones(w) / w, "valid")


def _followers(tp: ToolPath, idx: np.ndarray, delta: np.ndarray, within: float) -> tuple[np.ndarray, np.ndarray]:
    """The edge pass plus every other spray pass whose median offset is below ``within`` (m), each waypoint
    shifted by the offset of its nearest edge-pass waypoint: the passes beside the line move together.

    Why: on the world's uppers the glue's top edge is where the edge pass's tail and the first main
    pass's mist add up to a visible film, so moving the edge pass alone moves that edge by only about
    half as much (measured, tests/pathplan/test_correction_world.py); moving the near passes together
    moves it one to one, which is what the labels assume."""
    from scipy.spatial import cKDTree

    others = [i for i in tp.passes() if tp.pass_id[i[0]] >= 0 and np.median(np.abs(tp.offset[i])) < within]
    others = np.setdiff1d(np.concatenate(others) if others else np.zeros(0, np.int64), idx)
    if not len(others):
        return idx, delta
    _, j = cKDTree(tp.contact[idx]).query(tp.contact[others])
    return np.r_[idx, others], np.r_[delta, delta[j]]


def correct_toolpath(
    tp: ToolPath, region: BondRegion, model: CorrectionModel | None, *, t: np.ndarray | None = None,
    max_offset_mm: float = 1.5, range_tolerance: float = 0.1, max_out_of_range: float = 0.02,
    smooth_window: int = 9, follow_within_mm: float = 16.0,
) -> CorrectionResult:  # fmt: skip
    """Shift the edge pass of ``tp`` by the model's clamped, smoothed offsets (contact and tip move together).

    Args:
        tp, region, t: as for :func:`edge_features`.
        model: None -> nothing applied (reason "no model").
        max_offset_mm: clamp of every offset (safety limit, see the module docstring); a checkpoint's
            ``max_toward_mm`` (record) clamps moves towards the line further (0: it only moves glue away from the
            line, where the true spray put it over the line: the film re-check refuses any move into the margin
            the planner already filled, see :mod:`.correction_train`).
        range_tolerance, max_out_of_range: a sprayed waypoint is out of range when a feature lies outside the
            training range widened by ``range_tolerance`` x its width; more than ``max_out_of_range`` (fraction)
            of them switches the correction off for the whole path (fewer get no correction of their own).
        smooth_window: moving-average window (waypoints, odd) over the pass.
        follow_within_mm: the other passes closer than this to the line move with the edge pass (0: none).
    """
    idx = edge_pass_indices(tp)
    none = np.zeros(0)

    def off(reason: str, **diag: Any) -> CorrectionResult:
        log.info("learned correction not applied: %s", reason)
        return CorrectionResult(tp, False, reason, idx, np.zeros(len(idx)), {"reason": reason, **diag})

    if model is None:
        return off("no model")
    if len(idx) < 3:
        return CorrectionResult(tp, False, "no edge pass", idx, none, {"reason": "no edge pass"})
    if tp.tip is None:
        raise CorrectionError("correct_toolpath needs nozzle tips (run standoff first)")
    feats = edge_features(tp, region, idx, t)
    bad = model.out_of_range(feats, range_tolerance) & tp.spray[idx][:, None]
    frac = float(np.any(bad, axis=1).mean())
    if frac > max_out_of_range:
        names = [FEATURE_NAMES[j] for j in np.flatnonzero(bad.any(axis=0))]
        return off(f"inputs outside the training ranges ({frac:.1%} of edge waypoints; features {names})",
                   out_of_range_fraction=frac, out_of_range_features=names)  # fmt: skip
    raw = np.where(np.any(bad, axis=1), 0.0, model.predict_mm(feats))  # no correction at out-of-range spots
    toward = min(max_offset_mm, float(model.record.get("max_toward_mm", max_offset_mm)))
    mm = np.clip(_smooth(raw, smooth_window), -toward, max_offset_mm)
    delta = mm * 1e-3
    moved, shift = _followers(tp, idx, delta, follow_within_mm * 1e-3) if follow_within_mm > 0 else (idx, delta)
    g = unit(tp.inward[moved], what="inward direction of the corrected passes", allow_zero=False)
    contact, tip = tp.contact.copy(), tp.tip.copy()
    contact[moved] += shift[:, None] * g
    tip[moved] += shift[:, None] * g
    offset = tp.offset.copy()
    offset[moved] += shift
    out = replace(tp, contact=contact, tip=tip, offset=offset)
    fp = model.record.get("planner_fingerprint")
    diag = {"reason": "", "n_waypoints": len(idx), "out_of_range_fraction": frac,
            "planner_changed": bool(fp and fp != planner_fingerprint()), "offset_mean_mm": float(mm.mean()),
            "offset_min_mm": float(mm.min()), "offset_max_mm": float(mm.max()),
            "clamped_fraction": float(np.mean(np.abs(_smooth(raw, smooth_window)) > max_offset_mm))}  # fmt: skip
    return CorrectionResult(out, True, "", idx, delta, diag)


def apply_correction(part_plan: Any, model: CorrectionModel | None, **kw: Any) -> tuple[Any, CorrectionResult]:
    """Correct a finished upper :class:`~gluecell.pathplan.pipeline.PartPlan` (after tuning and robot timing).

    Only the tips move (by <= ``max_offset_mm``); times and nozzle orientations are kept, so the robot
    program should be re-solved by the caller (``pipeline.robot_timing``) before execution.

    Returns:
        (the SprayPath with corrected tips, the :class:`CorrectionResult`).
    """
    sp = part_plan.path
    res = correct_toolpath(part_plan.toolpath, part_plan.region, model, t=sp.t, **kw)
    if not res.applied:
        return sp, res
    return replace(sp, xyz=res.toolpath.tip), res


def correct_plan(
    part_plan: Any, model: CorrectionModel | None, cfg: Any = None, **kw: Any
) -> tuple[Any, CorrectionResult]:
    """:func:`apply_correction` plus a fresh IK solution and timing of the corrected path (``cfg``: the
    :class:`~gluecell.pathplan.pipeline.PathplanConfig`; None: defaults). Returns (PartPlan, result); the
    PartPlan is unchanged when the correction was not applied.

    The corrected path's film is predicted again with the same deposition model, points and limit as the
    uncorrected plan's (:func:`~gluecell.pathplan.pipeline.recheck_film`); when it fails the limit the correction
    is rolled back (``applied`` False, ``reason`` says why, ``diagnostics["refused"] == "film"``). An applied
    correction's metrics are the re-checked ones, never the uncorrected plan's.

    Raises:
        UnreachableError: the corrected path cannot be followed (the caller may keep the uncorrected plan).
        NonFiniteError: NaN features or film (the pair stops).
    """
    from .pipeline import PathplanConfig, film_limit, recheck_film, robot_timing

    cfg = cfg or PathplanConfig()
    sp, res = apply_correction(part_plan, model, **kw)
    if not res.applied:
        return part_plan, res
    sp2, prog, rm = robot_timing(replace(sp, t=part_plan.path.t), cfg)
    # the film of the corrected path, at the robot's real timing, judged as the uncorrected plan was
    film = recheck_film(part_plan, sp2, cfg)
    key, allow_mm, _ = film_limit(cfg)
    use = float(model.record.get("margin_use", 0.0)) if model is not None else 0.0
    if use > 0:  # the limit holds at ``use`` x each point's margin inside the given line (see margin_use)
        eaten = recheck_film(replace(part_plan, eval_region=_into_margin(part_plan, use)), sp2, cfg)
        film = {**film, "film_ok": eaten["film_ok"], f"{key}_into_margin": eaten[key], "margin_use": use}
    diag = {**res.diagnostics, "recheck": film}
    if not film["film_ok"]:
        reason = (f"rolled back: the corrected path's predicted film lands {film[key]:.2f} mm beyond the line "
                  f"({key}, allowed {allow_mm:.2f} mm)")  # fmt: skip
        log.warning("learned correction %s", reason)
        return part_plan, replace(res, toolpath=part_plan.toolpath, applied=False, reason=reason,
                                  diagnostics={**diag, "reason": reason, "refused": "film"})  # fmt: skip
    metrics = {**part_plan.metrics, **film, **rm, "correction_offset_mean_mm": res.diagnostics["offset_mean_mm"]}
    return replace(part_plan, path=sp2, toolpath=res.toolpath, program=prog, metrics=metrics), replace(
        res, diagnostics=diag)


def _into_margin(part_plan: Any, use: float) -> BondRegion:
    """The plan's evaluation region with its line moved ``use`` x the per-point margin back towards the given
    line (the region's ``meta["margin_m"]``): the film check of a correction that may use that share of the
    margin. ``margin_use`` is part of a checkpoint's record, fixed before its held-out evaluation: a correction
    learnt from the true spray on the cell's own lines (predicted, marked) knows how much of the 2-sigma margin
    the true glue edge never needs; the held-out worlds decide whether it may be switched on."""
    reg = part_plan.eval_region
    return replace(reg, signed=reg.signed + use * _margins(part_plan.region, reg.points))


@dataclass(frozen=True)
class LearnedCorrectionParams:
    """``model`` checkpoint path ("" = off), clamp (mm), out-of-range policy, smoothing window (waypoints)."""

    model: str = ""
    max_offset_mm: float = 1.5
    range_tolerance: float = 0.1
    max_out_of_range: float = 0.02
    smooth_window: int = 9
    follow_within_mm: float = 16.0

    def __post_init__(self) -> None:
        if not (0 < self.max_offset_mm <= 3.0 and self.range_tolerance >= 0 and 0 <= self.max_out_of_range <= 1):
            raise ValueError("need 0 < max_offset_mm <= 3, range_tolerance >= 0, 0 <= max_out_of_range <= 1")
        if self.smooth_window < 1 or self.smooth_window % 2 == 0:
            raise ValueError("smooth_window must be an odd number >= 1")


@register
class LearnedCorrection(Stage):
    """Path modifier: the learned edge-pass correction. It needs the part's bond region, bound with
    :meth:`bind` (the planner has it after tuning); without a model or a region it changes nothing and
    says why in ``last_result``. A model that did not beat the baseline is never loaded."""

    name = "learned_correction"
    kind = "modifier"
    idempotent = False
    Params = LearnedCorrectionParams

    def __init__(self, params: Any = None) -> None:
        super().__init__(params)
        self.region: BondRegion | None = None
        self.times: np.ndarray | None = None
        self.last_result: CorrectionResult | None = None
        self._model: CorrectionModel | None = None

    def bind(self, region: BondRegion, times: np.ndarray | None = None) -> LearnedCorrection:
        """A copy of this stage that uses ``region`` and the path's final ``times`` (seconds)."""
        st = LearnedCorrection(self.params)
        st.region, st.times, st._model = region, times, self._model
        return st

    def modify(self, path: ToolPath) -> ToolPath:
        p = self.params
        reason = ""
        if not p.model:
            reason = "no model configured"
        elif self.region is None:
            reason = "no bond region bound (use bind(region) or apply_correction)"
        elif path.part != "upper":
            reason = "the correction is trained for the upper only"
        if reason:
            self.last_result = CorrectionResult(path, False, reason, np.zeros(0, np.int64), np.zeros(0),
                                                {"reason": reason})  # fmt: skip
            return path
        if self._model is None:
            self._model = load_model(p.model)
        self.last_result = correct_toolpath(
            path, self.region, self._model, t=self.times, max_offset_mm=p.max_offset_mm,
            range_tolerance=p.range_tolerance, max_out_of_range=p.max_out_of_range, smooth_window=p.smooth_window,
            follow_within_mm=p.follow_within_mm,
        )  # fmt: skip
        return self.last_result.toolpath
