"""A learnt surrogate of the ring (hoop) solver: a small circular 1-D convolution net in torch.

It maps the ring problem of one pair (the upper's outline, the sole's rest lengths, wall stiffness and height
per station: the arguments of :func:`~.solver.solve_ring`) to the hoop strain per station that the FE solver
would give. It is trained on the solver's own outputs over a dataset's *train* split (``gluecell deform
train``), with the sole material varied (every class of :data:`~.material.MATERIALS` plus "unknown") and the
modulus scaled, so that the net sees the stiffness range a plant meets.

It is used only inside its training distribution: :meth:`Surrogate.check` compares the per-station input
features with the training range (each channel within its training min/max widened by ``RANGE_MARGIN`` of its
span) and a per-pair summary with the training mean (Mahalanobis distance, limit ``D2_MARGIN`` x the largest
training distance). Outside, :func:`~.predict.predict_attach` falls back to the FE solver and says why in
``diagnostics["surrogate"]``. torch is imported only inside the functions that need it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gluecell.core.errors import FormatError
from gluecell.core.fileio import check_version

from .errors import DeformationError
from .material import UpperContact
from .ringnet import fit_stats, summary_distance_reason
from .solver import RingResult, outline_normals

__all__ = [
    "SURROGATE_FORMAT",
    "RingProblem",
    "Surrogate",
    "SurrogateConfig",
    "ring_features",
    "train_surrogate",
    "save_surrogate",
    "load_surrogate",
]

SURROGATE_FORMAT = "gluecell.deform_surrogate/1"
#: Per-station input channels: mismatch, log EA, curvature, log foundation/bar stiffness, global mismatch, log h.
N_CHANNELS = 6
#: Each channel may exceed its training min/max by this share of its span before the input counts as unseen.
RANGE_MARGIN = 0.25
#: Mahalanobis limit: this factor times the largest squared distance of a training pair.
D2_MARGIN = 1.5
#: Rest-length factors applied to every training problem (widens the perimeter-strain range seen, +-0.5 %).
REST_SCALES = (0.995, 1.0, 1.005)
#: Output scale: strain x 100 (percent) is O(1) for the net.
STRAIN_SCALE = 100.0


@dataclass(frozen=True)
class RingProblem:
    """Arguments of :func:`~.solver.solve_ring` without the material: ``EA = E * area``.

    Attributes:
        X: (K, 2) float64, metres, the upper's outline nodes (plan).
        rest: (K,) float64, metres, rest length of each sole element.
        area: (K,) float64, m^2, wall thickness x height of each element.
        height: (K,) float64, metres, wall contact height per node.
    """

    X: np.ndarray
    rest: np.ndarray
    area: np.ndarray
    height: np.ndarray


@dataclass(frozen=True)
class SurrogateConfig:
    """Training settings (saved with the checkpoint)."""

    width: int = 24
    kernel: int = 9
    steps: int = 800
    batch: int = 32
    lr: float = 3e-3
    seed: int = 0
    #: Young's modulus factors applied to each material class (widens the stiffness range seen).
    e_scales: tuple[float, ...] = (0.5, 1.0, 2.0)


def ring_features(
    X: np.ndarray, rest: np.ndarray, EA: np.ndarray, height: np.ndarray, contact: UpperContact
) -> np.ndarray:
    """(N_CHANNELS, K) float32 dimensionless per-station features of one ring problem (before standardising)."""
    d = np.roll(X, -1, axis=0) - X
    L = np.linalg.norm(d, axis=1)
    mis = L / rest - 1.0
    t = d / L[:, None]
    tp = np.roll(t, 1, axis=0)
    turn = np.arctan2(tp[:, 0] * t[:, 1] - tp[:, 1] * t[:, 0], np.sum(tp * t, axis=1))
    ds = 0.5 * (L + np.roll(L, 1))
    kappa = turn / ds
    if np.sum(outline_normals(X) * (X - X.mean(axis=0))) * np.sum(turn) < 0:
        kappa = -kappa  # convex positive whatever the node order
    ratio = contact.k_f * height * ds / (EA / rest)
    glob = np.full(len(X), L.sum() / rest.sum() - 1.0)
    return np.stack([mis * 50, np.log10(EA), kappa * 0.05, np.log10(ratio), glob * 50, np.log10(height)]).astype(
        np.float32
    )


def _build_net(cfg: SurrogateConfig) -> Any:
    from .ringnet import ring_conv_net

    return ring_conv_net(N_CHANNELS, 1, cfg.width, cfg.kernel, squeeze=True)


@dataclass
class Surrogate:
    """A trained surrogate with its input statistics (see the module docstring)."""

    net: Any
    config: SurrogateConfig
    mu: np.ndarray  # (C,) channel means
    sd: np.ndarray  # (C,) channel stds
    lo: np.ndarray  # (C,) training min per channel
    hi: np.ndarray  # (C,) training max per channel
    s_mean: np.ndarray  # (4C,) summary mean
    s_icov: np.ndarray  # (4C, 4C) regularised inverse covariance
    d2_max: float
    metrics: dict = field(default_factory=dict)

    def check(self, f: np.ndarray) -> str | None:
        """None when the (C, K) features are inside the training distribution, else the reason."""
        if not np.all(np.isfinite(f)):
            return "non-finite ring features"
        span = self.hi - self.lo
        lo, hi = self.lo - RANGE_MARGIN * span, self.hi + RANGE_MARGIN * span
        bad = np.flatnonzero((f.min(axis=1) < lo) | (f.max(axis=1) > hi))
        if len(bad):
            names = ("mismatch", "log EA", "curvature", "stiffness ratio", "perimeter strain", "log height")
            c = int(bad[0])
            return (
                f"feature {names[c]!r} range {f[c].min():.3g}..{f[c].max():.3g} outside the training range "
                f"{self.lo[c]:.3g}..{self.hi[c]:.3g}"
            )
        return summary_distance_reason(f, self.s_mean, self.s_icov, self.d2_max, D2_MARGIN)

    def predict_strain(self, f: np.ndarray) -> np.ndarray:
        """(K,) hoop strain for (C, K) features (no distribution check)."""
        import torch

        x = torch.from_numpy(((f - self.mu[:, None]) / self.sd[:, None]).astype(np.float32))[None]
        with torch.no_grad():
            y = self.net(x)[0].numpy().astype(np.float64)
        return y / STRAIN_SCALE

    def ring_fn(
        self, X: np.ndarray, rest: np.ndarray, EA: np.ndarray, height: np.ndarray, contact: UpperContact
    ) -> RingResult:
        """Drop-in for :func:`~.solver.solve_ring`; raises :class:`SurrogateOutOfDistribution` when unseen.

        Only the strain is learnt: tension is ``EA * strain``, no indentation, every node in contact.
        """
        f = ring_features(X, rest, EA, height, contact)
        reason = self.check(f)
        if reason is not None:
            raise SurrogateOutOfDistribution(reason, stage="deformation")
        eps_n = self.predict_strain(f)
        eps_e = 0.5 * (eps_n + np.roll(eps_n, -1))
        K = len(X)
        return RingResult(
            strain=eps_n,
            tension=EA * eps_e,
            indent=np.zeros(K),
            contact=np.ones(K, dtype=bool),
            displacement=np.zeros((K, 2)),
        )


class SurrogateOutOfDistribution(DeformationError):
    """The surrogate's input is outside its training distribution (the caller falls back to the solver)."""


__all__ += ["SurrogateOutOfDistribution"]


def _samples(problems: list[RingProblem], moduli: list[float], contact: UpperContact) -> tuple[np.ndarray, np.ndarray]:
    """Features (n, C, K) and FE strains (n, K) for every problem x modulus x rest scale."""
    from .solver import solve_ring

    F, Y = [], []
    for p in problems:
        for E in moduli:
            for a in REST_SCALES:
                EA, rest = E * p.area, p.rest * a
                F.append(ring_features(p.X, rest, EA, p.height, contact))
                Y.append(solve_ring(p.X, rest, EA, p.height, contact).strain)
    return np.stack(F), np.stack(Y)


def _fit_stats(F: np.ndarray) -> dict[str, Any]:
    return fit_stats(F, 1e-6)


def train_surrogate(
    train: list[RingProblem],
    val: list[RingProblem],
    moduli: list[float],
    cfg: SurrogateConfig | None = None,
    contact: UpperContact | None = None,
) -> Surrogate:
    """Fit the surrogate to the FE solver on ``train`` problems x ``moduli`` (Pa); metrics on ``val``.

    Metrics (``Surrogate.metrics``): ``train_rmse_strain``, ``val_rmse_strain``, ``val_max_abs_strain``
    (hoop strain, dimensionless), sample counts and the share of val problems inside the distribution.
    """
    import torch

    cfg = cfg or SurrogateConfig()
    contact = contact or UpperContact()
    if not train:
        raise DeformationError("no training ring problems for the surrogate", stage="deformation")
    F, Y = _samples(train, moduli, contact)
    st = _fit_stats(F)
    torch.manual_seed(cfg.seed)
    net = _build_net(cfg)
    x = torch.from_numpy(((F - st["mu"][None, :, None]) / st["sd"][None, :, None]).astype(np.float32))
    y = torch.from_numpy((Y * STRAIN_SCALE).astype(np.float32))
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, cfg.steps)
    gen = torch.Generator().manual_seed(cfg.seed)
    for _ in range(cfg.steps):
        idx = torch.randint(0, len(x), (min(cfg.batch, len(x)),), generator=gen)
        loss = torch.mean((net(x[idx]) - y[idx]) ** 2)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    net.eval()
    sur = Surrogate(net=net, config=cfg, **st)
    sur.metrics.update(_metrics(sur, F, Y, "train"))
    sur.metrics["train_samples"] = float(len(F))
    if val:
        Fv, Yv = _samples(val, moduli, contact)
        sur.metrics.update(_metrics(sur, Fv, Yv, "val"))
        sur.metrics["val_samples"] = float(len(Fv))
        sur.metrics["val_in_distribution"] = float(np.mean([sur.check(f) is None for f in Fv]))
    return sur


def _metrics(sur: Surrogate, F: np.ndarray, Y: np.ndarray, tag: str) -> dict[str, float]:
    err = np.stack([sur.predict_strain(f) for f in F]) - Y
    return {f"{tag}_rmse_strain": float(np.sqrt(np.mean(err**2))), f"{tag}_max_abs_strain": float(np.abs(err).max())}


def save_surrogate(path: str | os.PathLike[str], sur: Surrogate, config: dict | None = None) -> None:
    """Write the checkpoint (format :data:`SURROGATE_FORMAT`) atomically: weights, statistics, config, metrics."""
    import dataclasses

    import torch

    doc = {
        "format": SURROGATE_FORMAT,
        "state_dict": sur.net.state_dict(),
        "net_config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(sur.config).items()},
        "stats": {k: torch.as_tensor(getattr(sur, k)) for k in ("mu", "sd", "lo", "hi", "s_mean", "s_icov")},
        "d2_max": sur.d2_max,
        "metrics": dict(sur.metrics),
        "config": dict(config or {}),
    }
    tmp = f"{os.fspath(path)}.tmp{os.getpid()}"
    try:
        torch.save(doc, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def load_surrogate(path: str | os.PathLike[str]) -> Surrogate:
    """Read a checkpoint (FormatError on a file that is not one, VersionError on a major format mismatch)."""
    import torch

    try:
        doc = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a bad file
        raise FormatError(f"{path}: not a surrogate checkpoint ({exc})") from exc
    if not isinstance(doc, dict) or "state_dict" not in doc:
        raise FormatError(f"{path}: not a surrogate checkpoint")
    check_version(doc.get("format"), SURROGATE_FORMAT, what=str(path))
    nc = dict(doc["net_config"])
    nc["e_scales"] = tuple(nc.get("e_scales", (1.0,)))
    cfg = SurrogateConfig(**nc)
    net = _build_net(cfg)
    net.load_state_dict(doc["state_dict"])
    net.eval()
    st = {k: v.numpy().astype(np.float64) for k, v in doc["stats"].items()}
    return Surrogate(net=net, config=cfg, d2_max=float(doc["d2_max"]), metrics=dict(doc["metrics"]), **st)
