"""Fitting the image-level head on a trained QA network: ``gluecell qa head``.

The network's weights stay as they are. On the *fitting* datasets the head (:mod:`.head`) learns, per defect
type, a logistic regression on the per-view features; on separate *validation* datasets the per-part
thresholds are chosen (a part is judged on the largest score of any of its views, as the cell does):
``fail`` so that at most ``fr_goal`` of the clean validation parts fail on any type (the budget split evenly
over the four types), ``uncertain`` (-> the human) so that at most ``human_goal`` more go to the human.
The result is a new model file: the same weights, the head, the policy and the figures it was chosen on.
Never fit or choose on the data you report (held-out seeds, the demo run).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from gluecell.core.types import DEFECT_TYPES

from .errors import TrainingError
from .head import ImageHead, batch_features, fit_head
from .model import LoadedModel
from .policy import VerdictPolicy

__all__ = ["part_scores", "choose_part_policy", "features_of", "fit_head_model", "head_scores"]


def head_scores(model: LoadedModel, x: np.ndarray, probs: np.ndarray, net_scores: np.ndarray,
                classical: np.ndarray | None) -> np.ndarray:  # fmt: skip
    """(n, 4) view scores of ``model``: its head's when it has one, else the network's own ``net_scores``."""
    if "head" not in model.record:
        return net_scores
    return ImageHead.from_dict(model.record["head"]).scores(batch_features(x, probs, classical))


def part_scores(scores: np.ndarray, labels: np.ndarray, ids: Sequence[str]) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Per part (``ids`` "pair/view"): the largest view score per type and the union of the view labels."""
    parts = list(dict.fromkeys(v.partition("/")[0] for v in ids))
    idx = {p: j for j, p in enumerate(parts)}
    s = np.zeros((len(parts), scores.shape[1]))
    y = np.zeros((len(parts), labels.shape[1]), dtype=bool)
    for v, sc, lb in zip(ids, scores, labels):
        j = idx[v.partition("/")[0]]
        s[j] = np.maximum(s[j], sc)
        y[j] |= lb
    return s, y, parts


def _quantile_threshold(clean: np.ndarray, budget: float) -> float:
    """Lowest threshold that at most ``budget`` of the clean part scores reach (strictly above the rest)."""
    if not len(clean):
        return 0.5
    k = int(np.floor(budget * len(clean)))  # parts allowed at or above the threshold
    srt = np.sort(clean)[::-1]
    return float(min(srt[k] + 1e-4, 1.0)) if k < len(srt) else 0.0


def choose_part_policy(scores: np.ndarray, labels: np.ndarray, ids: Sequence[str], *, fr_goal: float = 0.01,
                       human_goal: float = 0.04) -> VerdictPolicy:  # fmt: skip
    """Thresholds from validation view scores (n, 4), labels (n, 4) and view ids, per part (see module doc)."""
    s, y, _ = part_scores(scores, labels, ids)
    clean = ~y.any(axis=1)
    fail, unc = {}, {}
    for k, t in enumerate(DEFECT_TYPES):
        fail[t] = _quantile_threshold(s[clean, k], fr_goal / len(DEFECT_TYPES))
        unc[t] = min(_quantile_threshold(s[clean, k], (fr_goal + human_goal) / len(DEFECT_TYPES)), fail[t])
    return VerdictPolicy(fail=fail, uncertain=unc, cross_check=2.0)


def features_of(model: LoadedModel, data_dir: str | os.PathLike[str], split: str = "all",
                progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:  # fmt: skip
    """Network scores, head features, labels and view ids of one inspection dataset split."""
    import torch

    from .data import load_split, open_data
    from .train import predict

    torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
    d = load_split(open_data(data_dir), split, classical=True, progress=progress)
    feats, net = [], []
    for a in range(0, len(d.x), 16):  # chunks: the probabilities of a whole dataset need not sit in memory
        probs, sc = predict(model.net, d.x[a : a + 16])
        feats.append(batch_features(d.x[a : a + 16].astype(np.float32), probs, d.classical[a : a + 16]))
        net.append(sc)
    return {"feats": np.concatenate(feats), "net": np.concatenate(net), "labels": d.labels,
            "ids": [f"{Path(data_dir).name}:{v}" for v in d.ids]}  # fmt: skip


def _merge(parts: list[dict[str, Any]]) -> dict[str, Any]:
    return {"feats": np.concatenate([p["feats"] for p in parts]), "net": np.concatenate([p["net"] for p in parts]),
            "labels": np.concatenate([p["labels"] for p in parts]), "ids": [i for p in parts for i in p["ids"]]}


def _part_metrics(scores: np.ndarray, labels: np.ndarray, ids: Sequence[str], policy: VerdictPolicy) -> dict[str, Any]:
    from .evaluate import metrics_from_scores

    s, y, _ = part_scores(scores, labels, ids)
    return metrics_from_scores(s, y, policy)


def fit_head_model(model: LoadedModel, fit_dirs: Sequence[str | os.PathLike[str]],
                   val_dirs: Sequence[str | os.PathLike[str]], out: str | os.PathLike[str], *,
                   fr_goal: float = 0.01, human_goal: float = 0.04, extra_val: Sequence[dict[str, Any]] = (),
                   progress: Callable[[str, int, int], None] | None = None) -> dict[str, Any]:  # fmt: skip
    """Fit the head on ``fit_dirs``, choose the part policy on ``val_dirs`` (plus ``extra_val``: features of
    other validation views, e.g. a demo run's, as :func:`features_of` returns them), write the model ``out``."""
    from .model import save_model

    overlap = {Path(p).resolve() for p in fit_dirs} & {Path(p).resolve() for p in val_dirs}
    if overlap:
        raise TrainingError(f"the validation data must not be the fitting data: {sorted(map(str, overlap))}")
    if not fit_dirs or not val_dirs:
        raise TrainingError("qa head needs at least one fitting and one validation dataset")

    def load(dirs: Sequence[Any]) -> dict[str, Any]:
        return _merge([features_of(model, d, progress=(lambda a, b, n=str(d): progress(f"features {n}", a, b))
                                   if progress else None) for d in dirs])  # fmt: skip

    fit, val = load(fit_dirs), _merge([load(val_dirs), *extra_val])
    head = fit_head(fit["feats"], fit["labels"])
    vs = head.scores(val["feats"])
    policy = choose_part_policy(vs, val["labels"], val["ids"], fr_goal=fr_goal, human_goal=human_goal)
    metrics = {"val_parts": _part_metrics(vs, val["labels"], val["ids"], policy),
               "val_parts_network_only": _part_metrics(val["net"], val["labels"], val["ids"],
                                                       choose_part_policy(val["net"], val["labels"], val["ids"],
                                                                          fr_goal=fr_goal, human_goal=human_goal)),
               "fit_views": len(fit["ids"]), "val_views": len(val["ids"])}  # fmt: skip
    record = {k: v for k, v in model.record.items() if k not in ("format", "features_version", "dataset_format")}
    record.update({"head": head.to_dict(), "policy": policy.to_dict(), "head_fit": {
        "fit_data": [str(d) for d in fit_dirs], "val_data": [str(d) for d in val_dirs], "fr_goal": fr_goal,
        "val_runs": sorted({i.split(":")[0] for e in extra_val for i in e["ids"]}),
        "human_goal": human_goal, "base_model_sha256": model.sha256, "metrics": _plain(metrics),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}})  # fmt: skip
    save_model(out, model.net, record)
    return record


def _plain(x: Any) -> Any:
    from .evaluate import _json_safe

    return _json_safe(x)
