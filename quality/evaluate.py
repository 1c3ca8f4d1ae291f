"""Evaluating a QA model: ``gluecell qa eval --model M --data DIR [--json OUT]``.

Per view (the unit the network sees), against the dataset's truth labels: recall per defect type at the
policy's operating point (a defect is caught when the verdict is not "pass": fail or uncertain both stop the
part), false-reject rate (clean views failed), to-human rate (clean views sent to the human), precision,
AUROC, confusion matrix, expected calibration error of the defect scores, overspray distance error (mm),
glue IoU, the share of the labelled glue above the true line (``glue_seen_above``) and beyond the predicted
line (``glue_seen_beyond_line``) that the network segments as glue (does it see glue, or the plan?); the same
for the classical measurement; ROC and reliability plots as PNG. ``parts``: the same
operating-point figures per part (a part's score per type is the largest of its views', as the cell judges).
A model with an image-level head (:mod:`.head`) is scored by its head.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from gluecell.core.types import DEFECT_TYPES

from .data import SplitData, load_split, open_data
from .headfit import head_scores, part_scores
from .model import LoadedModel
from .policy import VerdictPolicy, decide
from .train import predict

__all__ = ["evaluate", "auroc", "metrics_from_scores"]

RECALL_GOAL = 0.999
FALSE_REJECT_GOAL = 0.01


def auroc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve (rank statistic, ties averaged); NaN when one class is missing."""
    from scipy.stats import rankdata

    pos, n = int(labels.sum()), len(labels)
    if pos == 0 or pos == n:
        return float("nan")
    r = rankdata(scores)
    return float((r[labels].sum() - pos * (pos + 1) / 2) / (pos * (n - pos)))


def _ece(scores: np.ndarray, labels: np.ndarray, bins: int = 10) -> float:
    idx = np.minimum((scores * bins).astype(int), bins - 1)
    err = 0.0
    for b in range(bins):
        m = idx == b
        if m.any():
            err += m.mean() * abs(float(scores[m].mean()) - float(labels[m].mean()))
    return float(err)


def metrics_from_scores(scores: np.ndarray, labels: np.ndarray, policy: VerdictPolicy,
                        cross: np.ndarray | None = None) -> dict[str, Any]:  # fmt: skip
    """Operating-point metrics from view scores (n, 4) and labels (n, 4) bool."""
    verdicts = []
    for i in range(len(scores)):
        c = dict(zip(DEFECT_TYPES, cross[i])) if cross is not None else None
        verdicts.append(decide(dict(zip(DEFECT_TYPES, scores[i])), policy, c)[0])
    v = np.asarray(verdicts)
    bad, clean = labels.any(axis=1), ~labels.any(axis=1)
    stopped = v != "pass"
    recall = {t: float(stopped[labels[:, k]].mean()) if labels[:, k].any() else float("nan")
              for k, t in enumerate(DEFECT_TYPES)}  # fmt: skip
    conf = {truth: {verd: int(((bad if truth == "fail" else clean) & (v == verd)).sum())
                    for verd in ("pass", "fail", "uncertain")} for truth in ("pass", "fail")}  # fmt: skip
    n_fail = int((v == "fail").sum())
    return {
        "recall": recall, "support": {t: int(labels[:, k].sum()) for k, t in enumerate(DEFECT_TYPES)},
        "recall_any": float(stopped[bad].mean()) if bad.any() else float("nan"),
        "false_reject_rate": float((v[clean] == "fail").mean()) if clean.any() else float("nan"),
        "to_human_rate": float((v[clean] == "uncertain").mean()) if clean.any() else float("nan"),
        "clean_stopped_rate": float(stopped[clean].mean()) if clean.any() else float("nan"),
        "precision": float((bad & (v == "fail")).sum() / n_fail) if n_fail else float("nan"),
        "auroc": {t: auroc(scores[:, k], labels[:, k]) for k, t in enumerate(DEFECT_TYPES)},
        "calibration_error": {t: _ece(scores[:, k], labels[:, k]) for k, t in enumerate(DEFECT_TYPES)},
        "confusion": conf, "n_views": len(v), "n_clean": int(clean.sum()),
    }  # fmt: skip


def _extras(d: SplitData, probs: np.ndarray) -> dict[str, float]:
    glue_p, glue_t = probs[:, 0] > 0.5, d.y[:, 0].astype(bool)
    iou = float((glue_p & glue_t).sum() / max((glue_p | glue_t).sum(), 1))
    sd = d.x[:, 5].astype(np.float32) * 5.0  # signed distance in mm (features channel 5)
    errs = []
    for i, e in enumerate(d.entries):
        above = probs[i, 2] > 0.5
        est = float(-sd[i][above].min()) if above.any() else 0.0
        if e["overspray_mm"] > 0 or est > 0:
            errs.append(abs(max(est, 0.0) - e["overspray_mm"]))
    above_t = d.y[:, 2].astype(bool)
    beyond_t = glue_t & (sd < 0) & (d.x[:, 4] > 0.5)  # labelled glue beyond the *predicted* line, on the part
    return {"glue_iou": iou, "glue_seen_above": float(glue_p[above_t].mean()) if above_t.any() else float("nan"),
            "glue_seen_beyond_line": float(glue_p[beyond_t].mean()) if beyond_t.any() else float("nan"),
            "overspray_mae_mm": float(np.mean(errs)) if errs else 0.0,
            "overspray_p95_mm": float(np.percentile(errs, 95)) if errs else 0.0}  # fmt: skip


def _plots(out: Path, d: SplitData, scores: np.ndarray, policy: VerdictPolicy) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(1, len(DEFECT_TYPES), figsize=(4 * len(DEFECT_TYPES), 4))
    for k, (t, ax) in enumerate(zip(DEFECT_TYPES, axes)):
        cls = d.classical[:, k] if d.classical is not None else None
        for name, s in (("network", scores[:, k]), ("classical", cls)):
            if s is None or d.labels[:, k].all() or not d.labels[:, k].any():
                continue
            th = np.unique(np.concatenate([[-1.0, 2.0], s]))[::-1]
            tpr = [(s[d.labels[:, k]] >= x).mean() for x in th]
            fpr = [(s[~d.labels[:, k]] >= x).mean() for x in th]
            ax.plot(fpr, tpr, label=f"{name} AUROC {auroc(s, d.labels[:, k]):.3f}")
        ax.set_title(f"{t} (n+ = {int(d.labels[:, k].sum())})")
        ax.set_xlabel("false positive rate")
        ax.set_ylabel("recall")
        ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "roc.png", dpi=80)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(4, 4))
    s, y = scores.ravel(), d.labels.ravel()
    idx = np.minimum((s * 10).astype(int), 9)
    xs = [s[idx == b].mean() for b in range(10) if (idx == b).any()]
    ys = [y[idx == b].mean() for b in range(10) if (idx == b).any()]
    ax.plot([0, 1], [0, 1], "k:")
    ax.plot(xs, ys, "o-")
    ax.set_xlabel("defect score")
    ax.set_ylabel("observed defect rate")
    ax.set_title("reliability (all defect types)")
    fig.tight_layout()
    fig.savefig(out / "reliability.png", dpi=80)
    plt.close(fig)
    return [str(out / "roc.png"), str(out / "reliability.png")]


def evaluate(model: LoadedModel, data_dir: str | os.PathLike[str], *, split: str = "test",
             policy: VerdictPolicy | None = None, json_out: str | os.PathLike[str] | None = None,
             plots: str | os.PathLike[str] | None = None, limit: int | None = None) -> dict[str, Any]:  # fmt: skip
    """Evaluate ``model`` (and the classical measurement) on ``split`` of an inspection dataset."""
    import torch

    from gluecell.core.fileio import atomic_write_json

    from .measure import MeasureConfig

    torch.set_num_threads(2)
    policy = policy if policy is not None else model.policy
    ds = open_data(data_dir)
    if ds.info.get("format") != model.record.get("dataset_format"):
        from .errors import ModelVersionError

        raise ModelVersionError(f"{model.path} was trained on {model.record.get('dataset_format')!r} data, "
                                f"{data_dir} is {ds.info.get('format')!r}")  # fmt: skip
    d = load_split(ds, split, classical=True, limit=limit)
    hw = tuple(model.record.get("image_size", d.x.shape[2:]))
    if tuple(d.x.shape[2:]) != hw:
        from .errors import ModelVersionError

        raise ModelVersionError(f"model was trained on {hw[1]}x{hw[0]} views, the data has "
                                f"{d.x.shape[3]}x{d.x.shape[2]}")  # fmt: skip
    probs, scores = predict(model.net, d.x)
    scores = head_scores(model, d.x, probs, scores, d.classical)
    net = metrics_from_scores(scores, d.labels, policy, d.classical)
    ps, py, parts = part_scores(scores, d.labels, d.ids)
    classical = metrics_from_scores(d.classical, d.labels, VerdictPolicy(cross_check=2.0))
    result = {"model": str(model.path), "model_sha256": model.sha256, "data": str(data_dir), "split": split,
              "policy": policy.to_dict(), **net, **_extras(d, probs), "classical": classical,
              "goal": {"recall": RECALL_GOAL, "false_reject_rate": FALSE_REJECT_GOAL},
              "classical_config": MeasureConfig().score_ref, "head": "head" in model.record,
              "parts": {**metrics_from_scores(ps, py, policy), "n_parts": len(parts)}}  # fmt: skip
    result["recall_shortfall"] = {t: (RECALL_GOAL - r) if r == r else None for t, r in net["recall"].items()}
    if plots:
        result["plots"] = _plots(Path(plots), d, scores, policy)
    if json_out:  # an undefined figure (no positives of a defect type in the split) is written as null
        atomic_write_json(json_out, _json_safe(result))
    return result


def _json_safe(x: Any) -> Any:
    """``x`` with every non-finite float (and numpy scalar) as JSON-safe values: NaN/inf -> None."""
    if isinstance(x, dict):
        return {k: _json_safe(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_json_safe(v) for v in x]
    if isinstance(x, float | np.floating):
        return float(x) if np.isfinite(x) else None
    if isinstance(x, np.integer):
        return int(x)
    return x


def dumps(result: dict[str, Any]) -> str:
    """Pretty JSON (NaN as null)."""
    return json.dumps(_json_safe(result), indent=2, default=float)
