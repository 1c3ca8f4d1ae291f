"""Training the QA network: ``gluecell qa train --data DIR [--real DIR] --out runs/NAME``.

- Parallel data: synthetic views mixed with real labelled views (same dataset format) at ``real_ratio``.
- Seeds: torch, numpy and the crop sampler are seeded from ``seed``; a resumed run continues their states.
- Checkpoints: ``ckpt-last.pt`` after every epoch (weights, optimiser, epoch, RNG states, history), written
  to a temporary name, read back, then renamed, so a crash never leaves a broken checkpoint; a non-finite
  loss stops training with the last good checkpoint kept. ``--resume`` continues from it (same data and
  config required; only ``--epochs`` may change: fewer than done finalises the run from its best epoch).
  ``model.pt`` (the best epoch on validation loss) holds the resolved config, the
  dataset hashes, the verdict policy chosen on validation and its metrics.
- Seeing the glue (``qa-s111``): ``blind`` builds a network that never sees the plan's geometry channels
  (:data:`.net.GEOMETRY_CHANNELS`); ``geom_dropout`` zeroes them on that share of training crops instead;
  ``loss="focal_dice"`` weights the rare defect pixels (:mod:`.losses`); ``defect_crop`` is the share of crops
  centred on a defect pixel.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from gluecell.core.types import DEFECT_TYPES

from .data import SplitData, dataset_hash, load_split, open_data
from .errors import TrainingError
from .model import save_model
from .policy import VerdictPolicy

__all__ = ["TrainConfig", "train", "choose_policy", "predict"]

CKPT_FORMAT = "gluecell.qa-ckpt/1"


@dataclass(frozen=True)
class TrainConfig:
    """Resolved training settings (saved with every checkpoint and model)."""

    epochs: int = 12
    batch: int = 8
    lr: float = 3e-3
    seed: int = 0
    crop: int = 128
    width: int = 8
    depth: int = 3
    real_ratio: float = 0.0
    defect_weight: float = 8.0
    target_recall: float = 0.999
    threads: int = 2
    limit: int = 0
    blind: bool = False
    geom_dropout: float = 0.0
    loss: str = "bce"
    defect_crop: float = 0.6

    def __post_init__(self) -> None:
        from gluecell.core.errors import ConfigError

        if not (1 <= self.epochs <= 1000 and 1 <= self.batch <= 256 and 0 < self.lr < 1 and 32 <= self.crop <= 1024):
            raise ConfigError("train: epochs 1..1000, batch 1..256, lr in (0, 1), crop 32..1024", key="train")
        if not 0.0 <= self.real_ratio <= 1.0 or self.crop % 2 ** self.depth:
            raise ConfigError(f"train: real_ratio within 0..1, crop a multiple of {2 ** self.depth}", key="train")
        from .losses import LOSSES

        if not (0.0 <= self.geom_dropout <= 1.0 and 0.0 <= self.defect_crop <= 1.0 and self.loss in LOSSES):
            raise ConfigError(f"train: geom_dropout and defect_crop within 0..1, loss one of {LOSSES}", key="train")

    def arch(self) -> dict[str, Any]:
        """The architecture record (``build_unet`` arguments) of a model trained with this config."""
        from .net import GEOMETRY_CHANNELS

        return {"width": self.width, "depth": self.depth, **({"blind": list(GEOMETRY_CHANNELS)} if self.blind else {})}


def predict(net: Any, x: np.ndarray, batch: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """(probs (n, 5, h, w) float32, scores (n, 4)) of inputs ``x`` (n, 8, h, w)."""
    import torch

    from .net import scores_from_probs

    probs, scores = [], []
    net.eval()
    with torch.no_grad():
        for a in range(0, len(x), batch):
            xb = torch.from_numpy(np.asarray(x[a : a + batch], dtype=np.float32))
            p = torch.sigmoid(net(xb))
            probs.append(p.numpy())
            scores.append(scores_from_probs(p, xb[:, 4:5]).numpy())
    return np.concatenate(probs), np.concatenate(scores)


def choose_policy(scores: np.ndarray, labels: np.ndarray, target_recall: float) -> VerdictPolicy:
    """Thresholds from validation scores: 'uncertain' keeps ``target_recall`` of each type's positives (never
    above 0.5), 'fail' at 0.5 or the lowest score no clean view reaches, whichever is lower but >= uncertain."""
    unc, fail = {}, {}
    for k, t in enumerate(DEFECT_TYPES):
        pos, neg = scores[labels[:, k], k], scores[~labels.any(axis=1), k]
        u = float(np.quantile(pos, 1.0 - target_recall, method="lower")) if len(pos) else 0.5
        u = min(max(u - 1e-3, 0.01), 0.5)
        f = min(0.5, float(neg.max()) + 1e-3) if len(neg) else 0.5
        unc[t], fail[t] = u, max(f, u)
    return VerdictPolicy(fail=fail, uncertain=unc)


def _batch(data: SplitData, real: SplitData | None, cfg: TrainConfig, rng: np.random.Generator) -> tuple[Any, Any]:
    import torch

    from .net import GEOMETRY_CHANNELS

    xs, ys = [], []
    c = cfg.crop
    for _ in range(cfg.batch):
        src = real if (real is not None and rng.random() < cfg.real_ratio) else data
        i = int(rng.integers(len(src.x)))
        x, y = src.x[i], src.y[i]
        h, w = x.shape[1:]
        defect = np.argwhere(y[1:].any(axis=0)) if rng.random() < cfg.defect_crop else np.zeros((0, 2))
        if len(defect):
            cy, cx = defect[int(rng.integers(len(defect)))]
            y0, x0 = int(np.clip(cy - c // 2, 0, h - c)), int(np.clip(cx - c // 2, 0, w - c))
        else:
            y0, x0 = int(rng.integers(0, h - c + 1)), int(rng.integers(0, w - c + 1))
        xc, yc = x[:, y0 : y0 + c, x0 : x0 + c], y[:, y0 : y0 + c, x0 : x0 + c]
        if rng.random() < 0.5:
            xc, yc = xc[:, :, ::-1], yc[:, :, ::-1]
        xc = np.array(xc, dtype=np.float32)
        if cfg.geom_dropout and rng.random() < cfg.geom_dropout:
            xc[list(GEOMETRY_CHANNELS)] = 0.0
        xs.append(xc)
        ys.append(np.asarray(yc, dtype=np.float32))
    return torch.from_numpy(np.stack(xs)), torch.from_numpy(np.stack(ys))


def _loss_fn(cfg: TrainConfig) -> Any:
    from .losses import make_loss

    return make_loss(cfg.loss, cfg.defect_weight, len(DEFECT_TYPES))


def _epoch(net: Any, opt: Any, tr: SplitData, real: SplitData | None, cfg: TrainConfig, rng: np.random.Generator,
           steps: int, tick: Callable[[int], Any], where: str) -> float:  # fmt: skip
    """One epoch of ``steps`` batches; returns the mean training loss. A non-finite loss raises."""
    import torch

    loss_fn, total = _loss_fn(cfg), 0.0
    net.train()
    for s in range(steps):
        x, y = _batch(tr, real, cfg, rng)
        loss = loss_fn(net(x), y)
        if not torch.isfinite(loss):
            raise TrainingError(f"{where}: loss is not finite; the last good checkpoint is kept")
        opt.zero_grad()
        loss.backward()
        opt.step()
        total += loss.item()
        tick(s + 1)
    return total / max(steps, 1)


def _save_ckpt(path: Path, state: dict[str, Any]) -> None:
    import torch

    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    torch.load(tmp, map_location="cpu", weights_only=False)  # reads back before it replaces the last good one
    os.replace(tmp, path)


def _val_loss(net: Any, val: SplitData, cfg: TrainConfig) -> float:
    import torch

    loss_fn, total = _loss_fn(cfg), 0.0
    net.eval()
    with torch.no_grad():
        for a in range(0, len(val.x), 8):
            x = torch.from_numpy(np.asarray(val.x[a : a + 8], dtype=np.float32))
            total += float(loss_fn(net(x), torch.from_numpy(val.y[a : a + 8].astype(np.float32)))) * len(x)
    return total / len(val.x)


def _prepare(out: Path, cfg: TrainConfig, resume: bool, hashes: dict[str, str]) -> dict[str, Any] | None:
    import torch

    ckpt = out / "ckpt-last.pt"
    if resume:
        if not ckpt.is_file():
            raise TrainingError(f"{out}: nothing to resume (no ckpt-last.pt)")
        state = torch.load(ckpt, map_location="cpu", weights_only=False)
        if state.get("format") != CKPT_FORMAT:
            raise TrainingError(f"{ckpt}: not a QA training checkpoint ({state.get('format')!r})")
        if state["hashes"] != hashes:
            raise TrainingError(f"{ckpt}: was trained on other data; resume with the same --data/--real")
        old = {k: v for k, v in {**asdict(TrainConfig()), **state["config"]}.items() if k != "epochs"}
        if old != {k: v for k, v in asdict(cfg).items() if k != "epochs"}:
            raise TrainingError(f"{ckpt}: was trained with another config {old}; only --epochs may change on resume")
        return state
    if out.exists() and any(out.iterdir()):
        raise TrainingError(f"{out} is not empty; use --resume to continue it or another --out")
    out.mkdir(parents=True, exist_ok=True)
    return None


def train(data_dir: str | os.PathLike[str], out: str | os.PathLike[str], cfg: TrainConfig, *,
          real_dir: str | os.PathLike[str] | None = None, resume: bool = False,
          progress: Callable[[str, int, int], None] | None = None) -> dict[str, Any]:  # fmt: skip
    """Train (or resume) a QA model into ``out``; returns the model record (metrics, policy, hashes)."""
    import torch

    from .net import build_unet

    out = Path(out)
    ds = open_data(data_dir)
    real_ds = open_data(real_dir) if real_dir else None
    if cfg.real_ratio > 0 and real_ds is None:
        raise TrainingError("--real-ratio > 0 needs --real DIR")
    hashes = {"data": dataset_hash(ds), **({"real": dataset_hash(real_ds)} if real_ds else {})}
    state = _prepare(out, cfg, resume, hashes)
    torch.set_num_threads(cfg.threads)
    lim = cfg.limit or None

    def say(what: str) -> Callable[[int, int], None] | None:
        return (lambda d, n: progress(what, d, n)) if progress else None

    done = int(state["epoch"]) if state is not None else 0
    # A resumed run with no epochs left only finalises (policy + model.pt): it needs no training features.
    tr = load_split(ds, "train", limit=lim, progress=say("features train")) if done < cfg.epochs else None
    va = load_split(ds, "val", limit=lim, progress=say("features val"))
    real = load_split(real_ds, "train", progress=say("features real")) if real_ds and tr is not None else None
    torch.manual_seed(cfg.seed)
    net = build_unet(cfg.width, cfg.depth, blind=tuple(cfg.arch().get("blind", ())))
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=1e-4)
    rng = np.random.default_rng(cfg.seed)
    history: list[dict[str, float]] = []
    start, best = 0, float("inf")
    if state is not None:
        net.load_state_dict(state["net"])
        opt.load_state_dict(state["opt"])
        rng.bit_generator.state = state["rng"]
        torch.set_rng_state(state["torch_rng"])
        start, best, history = int(state["epoch"]), float(state["best"]), list(state["history"])
    steps = max(1, int(np.ceil(len(tr.x) / cfg.batch))) if tr is not None else 0
    for epoch in range(start, cfg.epochs):
        t0 = time.perf_counter()
        loss = _epoch(net, opt, tr, real, cfg, rng, steps, lambda s, e=epoch: progress and progress(
            f"epoch {e + 1}/{cfg.epochs}", s, steps), f"epoch {epoch + 1}, {out}")  # fmt: skip
        vl = _val_loss(net, va, cfg)
        history.append({"epoch": epoch + 1, "train_loss": loss, "val_loss": vl, "seconds": time.perf_counter() - t0})
        if vl < best:
            best = vl
            torch.save({k: v.clone() for k, v in net.state_dict().items()}, out / "best-weights.pt")
        _save_ckpt(out / "ckpt-last.pt", {"format": CKPT_FORMAT, "net": net.state_dict(), "opt": opt.state_dict(),
                                           "epoch": epoch + 1, "best": best, "history": history, "hashes": hashes,
                                           "rng": rng.bit_generator.state, "torch_rng": torch.get_rng_state(),
                                           "config": asdict(cfg)})  # fmt: skip
    net.load_state_dict(torch.load(out / "best-weights.pt", map_location="cpu", weights_only=True))
    _, scores = predict(net, va.x)
    policy = choose_policy(scores, va.labels, cfg.target_recall)
    record = {"arch": cfg.arch(), "config": asdict(cfg), "hashes": hashes,
              "data": str(data_dir), "real": str(real_dir) if real_dir else None, "policy": policy.to_dict(),
              "history": history, "image_size": list(va.x.shape[2:]), "created": time.strftime("%Y-%m-%dT%H:%M:%SZ",
              time.gmtime()), "code_version": _code_version()}  # fmt: skip
    save_model(out / "model.pt", net, record)
    (out / "config.json").write_text(json.dumps({"config": asdict(cfg), "hashes": hashes}, indent=2))
    return record


def _code_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("gluecell")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0+unknown"


def config_from_args(**kw: Any) -> TrainConfig:
    """A :class:`TrainConfig` from keyword overrides (None = default)."""
    names = {f.name for f in fields(TrainConfig)}
    return TrainConfig(**{k: v for k, v in kw.items() if k in names and v is not None})
