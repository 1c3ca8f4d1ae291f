"""Training and evaluation bookkeeping of the learned spray-path correction (no world import).

Outcomes (``gluecell correction collect``, written by the simulated cell) hold per pair the edge-pass
features (k, F) and labels (k,) mm. :func:`train` fits the small MLP of :mod:`.correction` on them (CPU,
seconds), holding out whole pairs for validation; :func:`train_from_outcomes` writes the checkpoint with
the resolved config and training metrics and ``beats_baseline: false`` until a held-out evaluation on
pairs of another seed (``gluecell correction eval --write``) records otherwise (:func:`record_heldout`).

Choice of target (measured on the planner of 2026-11-21 ~21:45 UTC, whose first ring sat ~2.7 mm from the line; 2
spray draws per pair): fitting the *mean* shift that puts the glue edge
0.5 mm below the line covered the 2 mm band well (0.21 -> 0.95 on the held-out dataset, the first and only
model evaluated there before the choice) but left visible glue up to 2.0 mm above the line on every pair
(sporadic mist faces on slow, curved stretches). The variants were then compared on the *test split of the
training dataset* (6 pairs, same seed as training, not the held-out one): quantiles 0.95 / 0.99 with a
0.5 mm margin still left glue 1.86 mm above; quantile 0.99 with a 1.0 mm margin left none and covered more of
the 2 mm band (0.11 -> 0.21); a 1.5 mm margin moves the passes away from the line and covers less.
Defaults: quantile 0.99, margin 1.0 mm. Network size: on the training dataset's validation pairs a (32, 32)
MLP trained 600 epochs fitted the 0.99 quantile worse than one constant shift (pinball 0.0112 vs 0.0072 mm,
94.6 % of labels below the prediction); one hidden layer of 16 for 300 epochs beats the constant there
(0.0068 mm, 97.8 %), so that is the default.

Retraining (documented command): ``gluecell correction collect --dataset TRAIN_DIR --out OUT`` then
``gluecell correction train --outcomes OUT --out model.pt`` (quantile 0.99, margin 1.0 mm) then
``gluecell correction eval --dataset HELDOUT_DIR --model model.pt --write``.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gluecell.core.arrays import load_npz
from gluecell.core.fileio import check_version, read_json

from .correction import FEATURE_NAMES, FORMAT, N_FEATURES, CorrectionError, build_mlp, read_checkpoint

log = logging.getLogger(__name__)

__all__ = ["TrainConfig", "load_outcomes", "train", "train_from_outcomes", "save_checkpoint", "record_heldout",
           "beats_baseline", "constant_model", "OUTCOMES_FORMAT",
           "ABOVE_GOAL_MM", "MIN_BAND_GAIN", "TRUE_POOL", "REJECT_STRIP_MM", "REJECT_COVERAGE",
           "beats_baseline_true", "summarise_true",
           "worlds_verdict", "record_world"]  # fmt: skip

#: Format of an outcomes folder's meta.json (written by ``cell/sim/outcomes.py``).
OUTCOMES_FORMAT = "gluecell.correction_outcomes/1.0"
#: Issue 5's goal for glue above the bite line (max, mm): a corrected plan may not exceed it unless the
#: uncorrected one already did.
ABOVE_GOAL_MM = 0.5
#: Smallest gain of mean coverage of the 2 mm band below the line that counts as better.
MIN_BAND_GAIN = 0.01


@dataclass(frozen=True)
class TrainConfig:
    """Network and optimiser settings (full-batch AdamW, labels in mm).

    ``quantile`` > 0 fits that conditional quantile of the needed shift with the pinball loss instead of the
    mean (Huber): the label is ``margin - edge`` per spray run, so its upper quantile is the shift that keeps
    the glue edge at least ``margin`` below the line in that fraction of runs and places (see the module
    docstring for the measured trade-off); 0 fits the mean with a Huber loss of width ``huber_mm``.
    ``margin_mm`` overrides the collection's target margin of the glue edge below the line (None: keep it);
    ``max_toward_mm`` (recorded in the checkpoint) clamps the shifts towards the line at run time (None: the
    symmetric ``max_offset_mm`` clamp); ``margin_use`` (recorded) lets the corrected path's film re-check hold at
    that share of each point's margin inside the given line instead of at the margin (0: the planner's limit);
    ``line_kinds``: train on the plans of these line kinds only (empty: all).
    """

    hidden: tuple[int, ...] = (16,)
    epochs: int = 300
    lr: float = 3e-3
    weight_decay: float = 1e-4
    huber_mm: float = 0.5
    quantile: float = 0.99
    margin_mm: float | None = None
    max_toward_mm: float | None = None
    margin_use: float = 0.0
    line_kinds: tuple[str, ...] = ()
    val_fraction: float = 0.2
    seed: int = 0

    def __post_init__(self) -> None:
        if not (0.0 <= self.quantile < 1.0 and self.epochs >= 1 and self.lr > 0 and 0 <= self.val_fraction < 1):
            raise ValueError("need 0 <= quantile < 1 (0: Huber mean), epochs >= 1, lr > 0, 0 <= val_fraction < 1")
        if not (0.0 <= self.margin_use <= 1.0) or (self.max_toward_mm is not None and self.max_toward_mm < 0):
            raise ValueError("need 0 <= margin_use <= 1 and max_toward_mm >= 0")


def load_outcomes(
    folder: str | Path, per_run: bool = True, margin_mm: float | None = None, kinds: tuple[str, ...] = ()
) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
    """Features (n, F), labels (n,) mm and pair index (n,) of every labelled waypoint in ``folder``, and its meta.

    ``per_run``: one sample per waypoint and spray run (``margin - edge`` of that run) instead of the run mean;
    ``margin_mm`` replaces the collection's margin (labels are ``margin - edge``); ``kinds``: only the plans of
    these line kinds (files ``<pair>_<kind>.npz`` of a perceived collection; empty: all).

    Raises:
        CorrectionError: no meta.json, other features, or no labelled waypoint.
    """
    folder = Path(folder)
    meta = read_json(folder / "meta.json")
    check_version(meta.get("format"), OUTCOMES_FORMAT, what=str(folder / "meta.json"))
    shift = 0.0 if margin_mm is None else float(margin_mm) - float(meta.get("margin_mm", 0.0))
    if margin_mm is not None:
        meta = {**meta, "margin_mm": float(margin_mm)}
    xs, ys, gs = [], [], []
    pairs: dict[str, int] = {}  # "<pair>_<line kind>" files of one pair share a group (held out together)
    for sid in meta.get("ids", []):
        if kinds and str(sid).rsplit("_", 1)[-1] not in kinds:
            continue
        k = pairs.setdefault(str(sid).split("_")[0], len(pairs))
        d = load_npz(folder / f"{sid}.npz", required=("features", "label_mm"))
        x, y = np.asarray(d["features"], np.float64), np.asarray(d["label_mm"], np.float64)
        if per_run and "edge_mm" in d and "margin_mm" in meta:  # one sample per spray run: run noise is in the data
            e = np.atleast_2d(np.asarray(d["edge_mm"], np.float64))
            x, y = np.tile(x, (len(e), 1)), (float(meta["margin_mm"]) - e).ravel()
        if x.ndim != 2 or x.shape[1] != N_FEATURES or len(x) != len(y):
            raise CorrectionError(f"{folder}/{sid}.npz: features {x.shape} do not match {N_FEATURES} features")
        y = y + (0.0 if "edge_mm" in d and per_run else shift)
        ok = np.isfinite(y) & np.all(np.isfinite(x), axis=1)
        xs.append(x[ok])
        ys.append(y[ok])
        gs.append(np.full(int(ok.sum()), k))
    if not xs or sum(len(y) for y in ys) == 0:
        raise CorrectionError(f"{folder}: no labelled waypoints (run `gluecell correction collect` first)")
    return np.concatenate(xs), np.concatenate(ys), np.concatenate(gs), meta


def _split(groups: np.ndarray, frac: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Boolean train/validation masks holding out whole groups (pairs)."""
    ug = np.unique(groups)
    rng = np.random.default_rng(seed)
    n_val = round(frac * len(ug)) if len(ug) > 1 else 0
    val_g = rng.permutation(ug)[:n_val]
    val = np.isin(groups, val_g)
    return ~val, val


def _fit(x: np.ndarray, y: np.ndarray, cfg: TrainConfig) -> Any:
    import torch

    torch.manual_seed(cfg.seed)
    net = build_mlp(x.shape[1], cfg.hidden)
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(cfg.epochs, 1))
    xt, yt = torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y, dtype=torch.float32)[:, None]
    huber = torch.nn.HuberLoss(delta=cfg.huber_mm)
    q = cfg.quantile

    def loss_fn(p: Any, y: Any) -> Any:
        if q <= 0:
            return huber(p, y)
        r = y - p
        return torch.maximum(q * r, (q - 1.0) * r).mean()

    for _ in range(cfg.epochs):
        opt.zero_grad()
        loss = loss_fn(net(xt), yt)
        loss.backward()
        opt.step()
        sched.step()
    net.eval()
    return net


def _errors(pred: np.ndarray, y: np.ndarray, q: float) -> dict[str, float]:
    """RMSE, MAE, |error| p95 (mm); pinball loss at ``q`` and the fraction of labels at or below the prediction."""
    r = y - pred
    if not len(r):
        return {}
    out = {"rmse_mm": float(np.sqrt(np.mean(r**2))), "mae_mm": float(np.mean(np.abs(r))),
           "abs_p95_mm": float(np.percentile(np.abs(r), 95)), "below_fraction": float(np.mean(r <= 0))}  # fmt: skip
    if q > 0:
        out["pinball_mm"] = float(np.mean(np.maximum(q * r, (q - 1.0) * r)))
    return out


def train(x: np.ndarray, y: np.ndarray, groups: np.ndarray | None = None,
          cfg: TrainConfig | None = None) -> tuple[Any, dict[str, np.ndarray], dict[str, Any]]:  # fmt: skip
    """Fit the correction MLP on features ``x`` (n, F) and labels ``y`` (n,) mm.

    Returns:
        (network, feature stats ``mean``/``std``/``lo``/``hi`` (F,), metrics: train/validation errors of the
        network and of a constant offset (the training mean, or its ``quantile``), counts).
    """
    import torch

    cfg = cfg or TrainConfig()
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    groups = np.arange(len(y)) if groups is None else np.asarray(groups)
    torch.set_num_threads(1)
    tr, va = _split(groups, cfg.val_fraction, cfg.seed)
    mean, std = x[tr].mean(axis=0), np.maximum(x[tr].std(axis=0), 1e-6)
    net = _fit((x[tr] - mean) / std, y[tr], cfg)
    with torch.no_grad():
        pred = net(torch.as_tensor((x - mean) / std, dtype=torch.float32)).numpy()[:, 0].astype(np.float64)
    q = cfg.quantile
    const = float(np.quantile(y[tr], q)) if q > 0 else float(y[tr].mean())
    metrics = {"n_train": int(tr.sum()), "n_val": int(va.sum()), "n_pairs": len(np.unique(groups)),
               "train": _errors(pred[tr], y[tr], q), "val": _errors(pred[va], y[va], q),
               "val_constant_offset": _errors(np.full(int(va.sum()), const), y[va], q), "constant_offset_mm": const,
               "label_mean_mm": float(y.mean()), "label_std_mm": float(y.std())}  # fmt: skip
    stats = {"mean": mean, "std": std, "lo": x.min(axis=0), "hi": x.max(axis=0)}
    return net, stats, metrics


def train_from_outcomes(outcomes: str | Path, out: str | Path, cfg: TrainConfig | None = None) -> dict[str, Any]:
    """Train on an outcomes folder and write the checkpoint ``out`` (not enabled until evaluated)."""
    cfg = cfg or TrainConfig()
    x, y, g, meta = load_outcomes(outcomes, margin_mm=cfg.margin_mm, kinds=cfg.line_kinds)
    net, stats, metrics = train(x, y, g, cfg)
    record = {"config": {**asdict(cfg), "hidden": list(cfg.hidden), "line_kinds": list(cfg.line_kinds)},
              "outcomes": {k: meta.get(k) for k in ("dataset", "split", "runs", "seed", "margin_mm", "bite_line")},
              "feature_ranges": {n: [float(a), float(b)] for n, a, b in zip(FEATURE_NAMES, stats["lo"], stats["hi"])},
              "planner_fingerprint": meta.get("planner_fingerprint"),
              "train_metrics": metrics, "heldout": None, "beats_baseline": False}  # fmt: skip
    if cfg.max_toward_mm is not None:  # the model's own clamp of moves towards the line (correct_toolpath)
        record["max_toward_mm"] = float(cfg.max_toward_mm)
    if cfg.margin_use > 0:  # the share of each point's margin the corrected film may use (correct_plan)
        record["margin_use"] = float(cfg.margin_use)
    save_checkpoint(out, net, stats, record)
    return record


def save_checkpoint(path: str | Path, net: Any, stats: dict[str, np.ndarray], record: dict[str, Any]) -> None:
    """Write a checkpoint atomically: ``record`` (JSON-able) + network weights + feature statistics."""
    import torch

    from gluecell.core.fileio import atomic_open

    blob = {"format": FORMAT, "feature_names": list(FEATURE_NAMES), **record,
            "state_dict": {k: v.detach().cpu() for k, v in net.state_dict().items()},
            "stats": {k: torch.as_tensor(np.asarray(v, dtype=np.float64)) for k, v in stats.items()}}  # fmt: skip
    with atomic_open(path, "wb") as fh:
        torch.save(blob, fh)


def record_heldout(path: str | Path, summary: dict[str, Any]) -> None:
    """Write a held-out evaluation and its ``beats_baseline`` verdict into the checkpoint at ``path``."""
    from gluecell.core.fileio import atomic_open

    blob = read_checkpoint(path)
    blob["heldout"] = summary
    blob["beats_baseline"] = bool(summary.get("beats_baseline", False))
    import torch

    with atomic_open(path, "wb") as fh:
        torch.save(blob, fh)


def beats_baseline(base: dict[str, float], corr: dict[str, float]) -> tuple[bool, str]:
    """The switch-on rule on pooled held-out numbers (glue above the true line, 2 mm band coverage).

    Better = no more glue above the line than allowed (max and p99 not above the uncorrected plan's, or
    at most :data:`ABOVE_GOAL_MM`) and the 2 mm band better covered by >= :data:`MIN_BAND_GAIN`; or strictly
    less glue above the line (max lower by >= 0.1 mm) with the band no worse than -:data:`MIN_BAND_GAIN`.
    """
    safe = all(corr[k] <= max(base[k], ABOVE_GOAL_MM) + 1e-9 for k in ("glue_above_max_mm", "glue_above_p99_mm"))
    gain = corr["band_coverage_2mm_mean"] - base["band_coverage_2mm_mean"]
    safer = corr["glue_above_max_mm"] <= base["glue_above_max_mm"] - 0.1
    ok = (safe and gain >= MIN_BAND_GAIN) or (safer and gain >= -MIN_BAND_GAIN)
    why = (f"safe={safe} (above max {corr['glue_above_max_mm']:.2f} vs {base['glue_above_max_mm']:.2f} mm, "
           f"p99 {corr['glue_above_p99_mm']:.2f} vs {base['glue_above_p99_mm']:.2f}, allowed up to "
           f"{ABOVE_GOAL_MM} mm), band_coverage_2mm gain {gain:+.3f} (need >= {MIN_BAND_GAIN}), "
           f"safer={safer}")  # fmt: skip
    return bool(ok), why


def constant_model(model: Any) -> Any:
    """Ablation: the same checkpoint (ranges, record) predicting its training constant (``constant_offset_mm``:
    the label mean, or its ``quantile``) everywhere; shows what the features add over one fixed shift."""
    import torch

    from .correction import CorrectionModel

    c = float(model.record.get("train_metrics", {}).get("constant_offset_mm", 0.0))
    net = build_mlp(N_FEATURES, (1,))
    with torch.no_grad():
        for prm in net.parameters():
            prm.zero_()
        net[-1].bias.fill_(c)
    net.eval()
    return CorrectionModel(net, model.mean, model.std, model.lo, model.hi, {**model.record, "ablation": "constant"})


#: Figures of a held-out row judged on the true mesh (``cell.bench.pathplan.judge_true``) and how rows pool:
#: the worst pair for glue above the line and the dry strip, the mean for coverages and the gap area.
TRUE_POOL: dict[str, str] = {"true_above_max_mm": "max", "true_above_p99_mm": "max", "true_dry_strip_p95_mm": "max",
                             "true_band2mm_coverage": "mean", "true_coverage": "mean", "true_coverage_1mm": "mean",
                             "true_gap_mm2": "mean"}  # fmt: skip


def _pool(rows: list[dict[str, Any]], key: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for m, how in TRUE_POOL.items():
        v = np.array([r[key][m] for r in rows if m in r[key]], dtype=np.float64)
        if len(v):
            out[m] = float(v.max() if how == "max" else v.mean())
    if "true_dry_strip_p95_mm" in rows[0][key]:
        out["true_dry_strip_p95_mm_median"] = float(np.median([r[key]["true_dry_strip_p95_mm"] for r in rows]))
    out["pairs_with_glue_above"] = float(np.mean([r[key]["true_above_max_mm"] > 0 for r in rows]))
    out["plans_over_goal"] = float(np.mean([r[key]["true_above_max_mm"] > ABOVE_GOAL_MM for r in rows]))
    return out


#: Branch "fewer rejects" of :func:`beats_baseline_true`: the widening of the worst dry strip (mm) and the loss of
#: bond coverage it accepts for fewer plans with visible glue over :data:`ABOVE_GOAL_MM`.
REJECT_STRIP_MM = 0.3
REJECT_COVERAGE = 0.01


def beats_baseline_true(base: dict[str, float], corr: dict[str, float]) -> tuple[bool, str]:
    """The switch-on rule on pooled held-out figures judged on the true mesh (as :func:`beats_baseline`):
    no more glue above the true line than the uncorrected plan (max and p99, or at most :data:`ABOVE_GOAL_MM`)
    and the 2 mm band better covered by >= :data:`MIN_BAND_GAIN` without losing coverage of the region; or
    strictly less glue above the line (max lower by >= 0.1 mm) with the band no worse than -:data:`MIN_BAND_GAIN`;
    or fewer rejects: fewer plans with visible glue more than :data:`ABOVE_GOAL_MM` above the true line (DESIGN:
    visible glue is a reject), no higher worst glue above, the worst dry strip wider by at most
    :data:`REJECT_STRIP_MM` and the bond coverage lower by at most :data:`REJECT_COVERAGE`.

    The third branch was added (2026-12-07, before any bench evaluation of the retrained model) after the
    candidates on res-1234's test split showed that the film re-check lets a correction move the glue only away
    from the line: it removed glue 0.44-0.62 mm above the true line on marked lines (0.13-0.15 mm after) at the cost of
    0.1-0.2 mm of dry strip, which the first two branches always count as a loss (the 2 mm band loses coverage).
    In every branch the share of plans over the goal may not grow (added before any bench evaluation too: on
    res-1234's test split a candidate that moved the glue towards predicted lines halved their dry strip but
    put glue 0.63 mm above the true line on a pair that had none, which the pooled worst-pair maxima hid), and the
    worst dry strip may not widen by more than :data:`REJECT_STRIP_MM` (added after the bench's quick run showed a
    "win" on one world-1 pair whose worst 2 mm stretch went from 3.8 to 5.2 mm dry; stricter only: the recorded
    held-out verdicts did not change)."""
    keys = ("true_above_max_mm", "true_above_p99_mm")
    safe = all(corr[k] <= max(base[k], ABOVE_GOAL_MM) + 1e-9 for k in keys)
    gain = corr["true_band2mm_coverage"] - base["true_band2mm_coverage"]
    cov_ok = corr["true_coverage"] >= base["true_coverage"] - 0.005
    safer = corr["true_above_max_mm"] <= base["true_above_max_mm"] - 0.1
    strip0, strip1 = base.get("true_dry_strip_p95_mm", 0.0), corr.get("true_dry_strip_p95_mm", 0.0)
    over0, over1 = base.get("plans_over_goal", 0.0), corr.get("plans_over_goal", 0.0)
    fewer = (over1 < over0 and corr[keys[0]] <= base[keys[0]] + 1e-9 and strip1 <= strip0 + REJECT_STRIP_MM
             and corr["true_coverage"] >= base["true_coverage"] - REJECT_COVERAGE)  # fmt: skip
    # never more plans with visible glue over the goal (each is a reject), never a much wider worst dry strip
    no_new = over1 <= over0 and strip1 <= strip0 + REJECT_STRIP_MM
    ok = no_new and ((safe and cov_ok and gain >= MIN_BAND_GAIN) or (safer and gain >= -MIN_BAND_GAIN) or fewer)
    why = (f"no_new_reject_nor_wider_strip={no_new}, fewer_rejects={fewer} (plans with glue > {ABOVE_GOAL_MM} mm "
           f"above the line "
           f"{over0:.0%} -> {over1:.0%}, worst dry strip {strip0:.2f} -> {strip1:.2f} mm, "
           f"accepted +{REJECT_STRIP_MM}), "
           f"safe={safe} (above max {corr[keys[0]]:.2f} vs {base[keys[0]]:.2f} mm, p99 {corr[keys[1]]:.2f} vs "
           f"{base[keys[1]]:.2f}, allowed up to {ABOVE_GOAL_MM} mm), 2 mm band gain {gain:+.3f} (need >= "
           f"{MIN_BAND_GAIN}), coverage {corr['true_coverage']:.3f} vs {base['true_coverage']:.3f}, "
           f"safer={safer}")  # fmt: skip
    return bool(ok), why


def summarise_true(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Held-out rows (``{"id", "kind", "applied", "reason", "base": figures, "corr": figures}``) pooled, per line
    kind and over all: uncorrected vs corrected figures, applied fraction, the reasons it was not applied, and
    the verdict: ``"wins"`` (:func:`beats_baseline_true`), ``"off"`` (never applied: the gate kept the planner's
    path, identical to the uncorrected one) or ``"loses"``."""

    def one(rs: list[dict[str, Any]]) -> dict[str, Any]:
        if not rs:  # nothing was planned: there is no plan to correct (not a loss, not a win)
            return {"n": 0, "applied_fraction": 0.0, "verdict": "off", "not_applied": ["no plan to correct"]}
        base, corr = _pool(rs, "base"), _pool(rs, "corr")
        applied = float(np.mean([r["applied"] for r in rs]))
        ok, why = beats_baseline_true(base, corr)
        verdict = "off" if applied == 0 else ("wins" if ok else "loses")
        return {"n": len(rs), "applied_fraction": applied, "verdict": verdict, "rule": why,
                "not_applied": sorted({r["reason"] for r in rs if not r["applied"]}),
                "uncorrected": base, "corrected": corr}  # fmt: skip

    out = {"all": one(rows)}
    for kind in sorted({r.get("kind", "") for r in rows}):
        out[kind or "rows"] = one([r for r in rows if r.get("kind", "") == kind])
    out["per_pair"] = [{"id": r["id"], "kind": r.get("kind", ""), "applied": r["applied"],
                        **{f"{k}_{m}": round(float(r[k][m]), 4) for k in ("base", "corr")
                           for m in ("true_above_max_mm", "true_band2mm_coverage", "true_dry_strip_p95_mm",
                                     "true_coverage") if m in r[k]}} for r in rows]  # fmt: skip
    return out


def worlds_verdict(worlds: dict[str, dict[str, Any]]) -> tuple[bool, str]:
    """``beats_baseline`` over held-out summaries of several worlds (:func:`summarise_true` each): the correction
    may be switched on when it wins on at least one world and loses on none (a world where the gate kept it off
    on every pair is not a loss: the cell plans there exactly as without it)."""
    verdicts = {w: s["all"]["verdict"] for w, s in worlds.items()}
    ok = any(v == "wins" for v in verdicts.values()) and not any(v == "loses" for v in verdicts.values())
    return ok, ", ".join(f"{w}: {v}" for w, v in verdicts.items())


def record_world(path: str | Path, world: str, summary: dict[str, Any]) -> dict[str, Any]:
    """Write the held-out ``summary`` (:func:`summarise_true`) of ``world`` into the checkpoint at ``path`` and
    set ``beats_baseline`` from every world recorded so far (:func:`worlds_verdict`). Returns the new record."""
    import torch

    from gluecell.core.fileio import atomic_open

    blob = read_checkpoint(path)
    worlds = {**(blob.get("heldout_worlds") or {}), world: summary}
    ok, why = worlds_verdict(worlds)
    blob.update(heldout_worlds=worlds, beats_baseline=ok, heldout_rule=why)
    with atomic_open(path, "wb") as fh:
        torch.save(blob, fh)
    return {k: v for k, v in blob.items() if k not in ("state_dict", "stats")}
