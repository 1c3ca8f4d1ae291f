"""Training of the learnt residual (:mod:`.residual`) on a generated dataset (``gluecell deform train-residual``).

Each pair of the dataset is predicted twice by the physics (no depth calibration, material unknown as the work
item carries it): once with the style's nominal upper and sole (style known) and once without (an unknown style,
like every world-2 style). Its label is the true line's offset from the physics line along the side, per outline
station (read from the dataset's truth files: training labels, as ``gluecell deform calibrate`` reads them).
Features and labels are cached per pair and variant (an ``.npz`` each, written atomically), so an interrupted
extraction resumes; pairs are extracted on ``workers`` processes. The net is fitted on the *train* split, its
conformal sigma factor on the *val* split; the *test* split is only measured.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .residual import ResidualConfig, ResidualModel, build_net, fit_stats, station_features

__all__ = ["line_offsets", "extract_pair", "extract_dataset", "load_cache", "train_residual", "conformal_scale",
           "coverage_metrics", "cell_offsets", "centre_cell_offset", "train_on_dataset"]  # fmt: skip

#: Station labels further than this from the physics line are not the same line (a mismatched crossing).
MAX_LABEL = 12e-3
#: Share of the points that must lie within 2 sigma after the conformal factor.
COVERAGE = 0.95
VARIANTS = ("known", "unknown")


def line_offsets(line: np.ndarray, u: np.ndarray, true_line: np.ndarray, across: bool = False) -> np.ndarray:
    """(m,) offset, metres along ``u``, of the true line from each point of ``line`` (NaN where none is found);
    with ``across``, (m, 2): along ``u`` and across the surface (:func:`~.residual.normal_directions`).

    The true line is cut by the plane through each point normal to the line's tangent; the crossing nearest the
    point gives the offset ``(q - p) . u``.
    """
    p = np.asarray(line, dtype=np.float64)
    T = np.asarray(true_line, dtype=np.float64)
    t = np.roll(p, -1, axis=0) - np.roll(p, 1, axis=0)
    t /= np.maximum(np.linalg.norm(t, axis=1, keepdims=True), 1e-12)
    s = np.einsum("mnk,mk->mn", T[None] - p[:, None], t)  # signed distance of each true point to each plane
    s1 = np.roll(s, -1, axis=1)
    cross = (s * s1 <= 0) & (s != s1)
    a = np.where(cross, s / np.where(cross, s - s1, 1.0), 0.0)
    q = T[None] + a[..., None] * (np.roll(T, -1, axis=0)[None] - T[None])
    d = np.linalg.norm(q - p[:, None], axis=2)
    d = np.where(cross, d, np.inf)
    j = np.argmin(d, axis=1)
    best = d[np.arange(len(p)), j]
    v = q[np.arange(len(p)), j] - p
    off = np.einsum("mk,mk->m", v, u)
    if across:
        from .residual import normal_directions

        off = np.column_stack([off, np.einsum("mk,mk->m", v, normal_directions(p, u))])
        return np.where((best <= MAX_LABEL)[:, None], off, np.nan)
    return np.where(best <= MAX_LABEL, off, np.nan)


def station_labels(theta_line: np.ndarray, offsets: np.ndarray, theta_st: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(labels (K,) or (K, 2) metres, mask (K,) bool): median offset of the line points nearest each station."""
    K = len(theta_st)
    dist = np.abs(np.angle(np.exp(1j * (theta_line[:, None] - theta_st[None, :]))))
    k = np.argmin(dist, axis=1)
    off = offsets.reshape(len(offsets), -1)
    good = np.all(np.isfinite(off), axis=1)
    y, mask = np.zeros((K, off.shape[1])), np.zeros(K, dtype=bool)
    for i in range(K):
        v = off[(k == i) & good]
        if len(v):
            y[i], mask[i] = np.median(v, axis=0), True
    return (y[:, 0] if offsets.ndim == 1 else y), mask


_DATASETS: dict[str, Any] = {}


def _resolve(spec: str | None) -> Callable[[Any], tuple[Any, Any]] | None:
    if not spec:
        return None
    mod, _, attr = spec.partition(":")
    return getattr(importlib.import_module(mod), attr)


def extract_pair(dataset_dir: str, sid: str, variants: tuple[str, ...], cache_dir: str,
                 refs_spec: str | None) -> list[str]:  # fmt: skip
    """Predict one pair in each of ``variants`` ("known": with the style references from ``refs_spec``, a
    ``module:function`` giving ``f(workitem) -> (reference, sole_reference)``; "unknown": without) and cache its
    features, labels and lines in ``cache_dir``. Returns per variant "ok", "cached" or "refused: <reason>" (a
    refusal is cached too; a pair not generated yet is not)."""
    from gluecell.core.errors import GlueCellError
    from gluecell.datasets.format import Dataset
    from gluecell.perception.scan import scan_part_frames

    outs = {v: Path(cache_dir) / f"{sid}_{v}.npz" for v in variants}
    todo = [v for v in variants if not outs[v].exists()]
    status = {v: "cached" for v in variants}
    if not todo:
        return list(status.values())
    if not (Path(dataset_dir) / "truth" / sid).is_dir():  # the truth folder marks a sample complete (generator)
        return ["refused: not generated yet"] * len(variants)  # not cached: a later run extracts it
    if dataset_dir not in _DATASETS:  # read without its meta: a dataset still being generated is used
        _DATASETS[dataset_dir] = Dataset(root=Path(dataset_dir), info={})
    ds = _DATASETS[dataset_dir]
    inp = ds.inputs(sid)
    try:
        scans = (scan_part_frames(inp["frames"]["upper"], "upper", item_id=sid),
                 scan_part_frames(inp["frames"]["sole"], "sole", item_id=sid))  # fmt: skip
    except GlueCellError as exc:
        scans = exc
    with np.load(Path(dataset_dir) / "truth" / sid / "truth.npz") as z:  # the training label
        true = np.asarray(z["bite_line"], dtype=np.float64)
    for v in todo:
        status[v] = _extract_variant(scans, v, inp["workitem"], refs_spec, true, outs[v])
    return list(status.values())


def _extract_variant(scans: Any, variant: str, item: Any, refs_spec: str | None, true: np.ndarray,
                     out: Path) -> str:  # fmt: skip
    from gluecell.core.errors import GlueCellError

    from .predict import predict_attach
    from .residual import side_directions

    try:
        if isinstance(scans, Exception):
            raise scans
        refs = _resolve(refs_spec)(item) if variant == "known" and refs_spec else (None, None)
        pred = predict_attach(*scans, reference=refs[0], sole_reference=refs[1], check_confidence=False)
    except (GlueCellError, KeyError, ValueError) as exc:
        _save(out, refused=np.array(str(exc)))
        return f"refused: {exc}"
    diag = pred.diagnostics
    theta, u = side_directions(pred.bite_line, diag)
    theta_st = diag["sigma_parts"]["stations"]["us"].theta
    y, mask = station_labels(theta, line_offsets(pred.bite_line, u, true, across=True), theta_st)
    _save(out, features=station_features(diag, variant == "known"), labels=y, mask=mask, line=pred.bite_line, u=u,
          theta=theta, theta_st=theta_st, true_line=true, sigma_phys=pred.bite_line_sigma)  # fmt: skip
    return "ok"


def _save(path: Path, **arrays: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{os.getpid()}.npz")
    np.savez_compressed(tmp, **arrays)
    os.replace(tmp, path)


def _job(args: tuple) -> list[str]:
    return extract_pair(*args)


def extract_dataset(dataset_dir: str | os.PathLike[str], ids: list[str], cache_dir: str | os.PathLike[str],
                    refs_spec: str | None, workers: int = 2, progress: bool = True,
                    variants: tuple[str, ...] = VARIANTS) -> dict[str, int]:  # fmt: skip
    """Extract (resumably, on ``workers`` processes) every pair of ``ids`` in ``variants`` into ``cache_dir``.
    Returns counts of "ok", "cached", "refused"."""
    import multiprocessing as mp

    Path(cache_dir).mkdir(parents=True, exist_ok=True)
    jobs = [(str(dataset_dir), sid, tuple(variants), str(cache_dir), refs_spec) for sid in ids]
    counts = {"ok": 0, "cached": 0, "refused": 0}
    bar = None
    if progress:
        from rich.progress import Progress

        bar = Progress()
        bar.start()
        task = bar.add_task("residual features", total=len(jobs))
    try:
        if workers <= 1:
            results = map(_job, jobs)
            pool = None
        else:
            pool = mp.get_context("spawn").Pool(workers)
            results = pool.imap_unordered(_job, jobs)
        for rs in results:
            for r in rs:
                counts[r.split(":")[0]] += 1
            if bar is not None:
                bar.advance(task)
        if pool is not None:
            pool.close()
            pool.join()
    finally:
        if bar is not None:
            bar.stop()
    return counts


def load_cache(cache_dir: str | os.PathLike[str], ids: list[str]) -> list[dict[str, np.ndarray]]:
    """The cached samples of ``ids`` (both variants; refused ones left out)."""
    out = []
    for sid in ids:
        for v in VARIANTS:
            p = Path(cache_dir) / f"{sid}_{v}.npz"
            if p.exists():
                with np.load(p) as z:
                    if "refused" not in z:
                        out.append(_with_labels({k: z[k] for k in z.files} | {"id": sid, "variant": v}))
    return out


def _with_labels(s: dict[str, Any]) -> dict[str, Any]:
    """A sample whose cached labels are along the side only gets both components (from its cached lines)."""
    if np.ndim(s["labels"]) == 1:
        off = line_offsets(s["line"], s["u"], s["true_line"], across=True)
        s["labels"], s["mask"] = station_labels(s["theta"], off, s["theta_st"])
    return s


def train_residual(train: list[dict], cfg: ResidualConfig | None = None) -> ResidualModel:
    """Fit the net (Gaussian NLL of the station labels, mm) on cached ``train`` samples."""
    import torch

    cfg = cfg or ResidualConfig()
    if not train:
        from .errors import DeformationError

        raise DeformationError("no training samples for the residual", stage="deformation")
    F = np.stack([s["features"] for s in train]).astype(np.float64)
    st = fit_stats(F)
    torch.manual_seed(cfg.seed)
    net = build_net(cfg)
    x = torch.from_numpy(((F - st["mu"][None, :, None]) / st["sd"][None, :, None]).astype(np.float32))
    y = torch.from_numpy(np.stack([s["labels"].T for s in train]).astype(np.float32) * 1e3)  # (n, 2, K) mm
    m = torch.from_numpy(np.stack([s["mask"] for s in train]).astype(np.float32))
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, cfg.steps)
    gen = torch.Generator().manual_seed(cfg.seed)
    net.eval()
    with torch.no_grad():
        initial = float(_nll(net(x), y, m))
    net.train()
    for _ in range(cfg.steps):
        idx = torch.randint(0, len(x), (min(cfg.batch, len(x)),), generator=gen)
        out = net(x[idx] + cfg.input_noise * torch.randn(x[idx].shape, generator=gen))
        loss = _nll(out, y[idx], m[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    net.eval()
    model = ResidualModel(net=net, config=cfg, **st)
    with torch.no_grad():
        model.metrics["train_nll_initial"] = initial
        model.metrics["train_nll"] = float(_nll(net(x), y, m))
    model.metrics["train_samples"] = float(len(train))
    return model


def _nll(out: Any, y: Any, m: Any) -> Any:
    """Gaussian NLL of both components (mean over the masked stations)."""
    mu, logs = out[:, :2], out[:, 2:]
    per = (logs + 0.5 * ((y - mu) / logs.exp()) ** 2).sum(dim=1)
    return (per * m).sum() / m.sum().clamp(min=1.0)


def corrected(model: ResidualModel, s: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(line, sigma) of a cached sample corrected by ``model`` (no distribution check)."""
    from .residual import apply_correction
    from .sections import periodic_interp

    delta, sigma = model.predict(s["features"])
    d = np.column_stack([periodic_interp(s["theta"], s["theta_st"], delta[:, i]) for i in range(2)])
    sig = np.exp(periodic_interp(s["theta"], s["theta_st"], np.log(sigma)))
    return apply_correction(s["line"], s["u"], d), sig


def conformal_scale(model: ResidualModel, calib: list[dict], coverage: float = COVERAGE) -> float:
    """The factor on ``model``'s sigma that puts ``coverage`` of the calibration samples' points within 2 sigma
    of the true line (distance of each corrected point to the true polyline)."""
    from gluecell.core.geometry import polyline_distance

    ratios = []
    for s in calib:
        line, sig = corrected(model, s)
        ratios.append(polyline_distance(line, s["true_line"]) / sig)
    r = np.concatenate(ratios)
    return float(np.quantile(r, coverage) / 2.0) * model.sigma_scale


def coverage_metrics(model: ResidualModel, samples: list[dict], tag: str) -> dict[str, float]:
    """Bite-line p95 (median over samples), share within 2 sigma and sigma p95 (median), mm, of ``samples``."""
    from gluecell.core.geometry import bite_line_error, polyline_distance

    p95, p95_phys, cover, n, sig95 = [], [], 0, 0, []
    for s in samples:
        line, sig = corrected(model, s)
        p95.append(bite_line_error(line, s["true_line"]).p95_mm)
        p95_phys.append(bite_line_error(s["line"], s["true_line"]).p95_mm)
        d = polyline_distance(line, s["true_line"])
        cover += int(np.sum(d <= 2 * sig))
        n += len(d)
        sig95.append(float(np.percentile(sig, 95) * 1e3))
    if not samples:
        return {}
    return {f"{tag}_p95_mm_median": float(np.median(p95)), f"{tag}_physics_p95_mm_median": float(np.median(p95_phys)),
            f"{tag}_within_2sigma": cover / max(n, 1), f"{tag}_sigma_p95_mm_median": float(np.median(sig95)),
            f"{tag}_samples": float(len(samples))}  # fmt: skip


def train_on_dataset(dataset: Any, dataset_dir: str | os.PathLike[str], cache_dir: str | os.PathLike[str],
                     cfg: ResidualConfig | None = None, refs_spec: str | None = None, workers: int = 2,
                     limit: int = 0, progress: bool = True,
                     remove_cell_offset: bool = False) -> ResidualModel:  # fmt: skip
    """Extract (resumably) the dataset's train, val and test splits, fit the net on train, its sigma factor on
    val; metrics on val (after the factor: checks it) and test (measured only). ``remove_cell_offset``: the
    train split's median offset along the side (per variant) is taken out of every label first (see
    :func:`centre_cell_offset`); the model then corrects on top of physics + the cell's depth calibration."""
    splits = {k: dataset.ids(k)[:limit] if limit else dataset.ids(k) for k in ("train", "val", "test")}
    ids = [i for k in ("train", "val", "test") for i in splits[k]]
    counts = extract_dataset(dataset_dir, ids, cache_dir, refs_spec, workers=workers, progress=progress)
    data = {k: load_cache(cache_dir, v) for k, v in splits.items()}
    offsets: dict[str, float] = {}
    if remove_cell_offset:
        offsets = cell_offsets(data["train"])
        data = {k: centre_cell_offset(v, offsets) for k, v in data.items()}
    model = train_residual(data["train"], cfg)
    model.base_calibrated = remove_cell_offset
    model.metrics.update({f"cell_offset_{k}_mm": v * 1e3 for k, v in offsets.items()})
    if data["val"]:
        model.sigma_scale = conformal_scale(model, data["val"])
    for k in ("train", "val", "test"):
        model.metrics.update(coverage_metrics(model, data[k], k))
    model.metrics.update({f"extract_{k}": float(v) for k, v in counts.items()})
    return model


def cell_offsets(samples: list[dict]) -> dict[str, float]:
    """Median label along the side (metres) per variant over ``samples``: the training cell's own offset (its
    cameras' hand-eye and depth errors are drawn once per generated dataset), which a depth calibration learns
    per cell and a net trained on one cell would otherwise carry to every other."""
    out = {}
    for v in VARIANTS:
        ys = [s["labels"][s["mask"]][:, 0] for s in samples if s["variant"] == v]
        if ys:
            out[v] = float(np.median(np.concatenate(ys)))
    return out


def centre_cell_offset(samples: list[dict], offsets: dict[str, float]) -> list[dict]:
    """Copies of ``samples`` with the cell's offset moved from the labels into the base line (along the side, as
    the depth calibration moves it)."""
    out = []
    for s in samples:
        o = offsets.get(s["variant"], 0.0)
        labels = s["labels"].copy()
        labels[:, 0] -= o
        out.append(dict(s, line=s["line"] + o * s["u"], labels=labels))
    return out
