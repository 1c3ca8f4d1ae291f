"""A learnt residual on top of the physics predictor: per outline station, a correction of the bite depth along
the upper's side and a heteroscedastic sigma (issue 14, items 3 and 4).

The physics (:func:`~.predict.predict_attach`, run *without* the depth calibration) leaves out what the error
budget names as its floor: the press, the contact, the seating stand-off. A small circular 1-D convolution net
reads, per station of the physics solution, what the solver already computed (wall height and thickness, body
thickness, hoop strain, plan curvature, bottom-normal tilt, depth slope, the station's outline angle as Fourier
terms) and, broadcast to every station, what it computed per pair (style references used or not, perimeter
strain, pose fit, how much of the outline was seen), and predicts the depth correction ``delta`` (metres, + = the
line moves down the side, away from the bottom) and ``log sigma``. It is trained with the Gaussian negative
log-likelihood on generated world pairs (:mod:`.residual_train`, ``gluecell deform train-residual``), then its
sigma is multiplied by one conformal factor fitted on a held-out split of the same seeds so that 95 % of the
true line's points lie within 2 sigma.

It is used only inside its training distribution (:meth:`ResidualModel.check`); outside, the caller
(:func:`~.line.predict_bite_line`) falls back to physics + calibration and says why. torch is imported only
inside the functions that need it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gluecell.core.errors import FormatError
from gluecell.core.fileio import check_version

from .errors import DeformationError
from .ringnet import summary_distance_reason
from .sections import fill_invalid, periodic_interp, smooth_closed
from .solver import outline_normals

__all__ = [
    "RESIDUAL_FORMAT",
    "DEFAULT_RESIDUAL",
    "ResidualConfig",
    "ResidualModel",
    "ResidualOutOfDistribution",
    "station_features",
    "side_directions",
    "apply_correction",
    "normal_directions",
    "build_net",
    "save_residual",
    "load_residual",
]

RESIDUAL_FORMAT = "gluecell.deform_residual/1"
#: The shipped checkpoint (trained on generated world-1 pairs, never the bench's seed 9001).
DEFAULT_RESIDUAL = Path(__file__).parent / "models" / "residual.pt"
#: Names of the per-station channels (before the per-pair ones), in order.
STATION_CHANNELS: tuple[str, ...] = (
    "wall height mm", "wall thickness mm", "body mm", "wall length mm", "hoop strain %", "plan curvature 1/dm",
    "bottom tilt out", "bottom tilt along", "depth slope", "depth mm", "solver sigma mm", "side seen",
    "fallback sigma mm", "upper resid mm", "cos 1", "sin 1", "cos 2", "sin 2", "cos 3", "sin 3",
)  # fmt: skip
#: Names of the per-pair channels (broadcast round the outline).
PAIR_CHANNELS: tuple[str, ...] = (
    "style known", "perimeter strain %", "mean hoop strain %", "pose rms mm", "valid upper", "valid sole",
    "side seen share", "wall substituted share", "reference rms mm", "outline half-length dm",
)  # fmt: skip
N_CHANNELS = len(STATION_CHANNELS) + len(PAIR_CHANNELS)
#: A station channel is out of range where it leaves the training min/max widened by this share of the span.
RANGE_MARGIN = 0.25
#: ... at more than this share of the stations.
RANGE_SHARE = 0.05
#: Mahalanobis limit on the per-pair summary: this factor times the largest training distance.
D2_MARGIN = 1.5
#: Bounds of the net's log sigma (mm): 0.05 mm to 20 mm.
LOG_SIGMA_RANGE = (float(np.log(0.05)), float(np.log(20.0)))


@dataclass(frozen=True)
class ResidualConfig:
    """Net and training settings (saved with the checkpoint)."""

    width: int = 16
    kernel: int = 9
    steps: int = 600
    batch: int = 32
    lr: float = 3e-3
    weight_decay: float = 1e-3
    seed: int = 0
    #: Channel dropout after the first convolution (training only): a few hundred pairs overfit a net this size.
    dropout: float = 0.2
    #: Gaussian noise (in standardised units) added to the inputs while training.
    input_noise: float = 0.1


class ResidualOutOfDistribution(DeformationError):
    """The residual net's input is outside its training distribution (the caller falls back)."""


def _curvature(X: np.ndarray) -> np.ndarray:
    """(K,) signed plan curvature (1/m, convex positive) of a closed (K, 2) outline."""
    d = np.roll(X, -1, axis=0) - X
    L = np.maximum(np.linalg.norm(d, axis=1), 1e-9)
    t = d / L[:, None]
    tp = np.roll(t, 1, axis=0)
    turn = np.arctan2(tp[:, 0] * t[:, 1] - tp[:, 1] * t[:, 0], np.sum(tp * t, axis=1))
    kappa = turn / (0.5 * (L + np.roll(L, 1)))
    return -kappa if np.sum(turn) < 0 else kappa


def station_features(diagnostics: dict[str, Any], style_known: bool) -> np.ndarray:
    """(N_CHANNELS, K) float32 features of one physics prediction (its ``diagnostics``, with ``sigma_parts``).

    Args:
        diagnostics: :attr:`AttachPrediction.diagnostics` of :func:`~.predict.predict_attach`.
        style_known: the style's nominal upper and sole were given (the prediction used them).
    """
    st = diagnostics["sigma_parts"]["stations"]
    us, sol = st["us"], st["sol"]
    m = sol.matched
    K = len(us.theta)
    cu = smooth_closed(fill_invalid(us.theta, us.corner, us.valid))
    n_b = fill_invalid(us.theta, us.n_b, us.valid)
    out2 = outline_normals(cu[:, :2])
    tan2 = np.column_stack([-out2[:, 1], out2[:, 0]])

    def fill(v: np.ndarray) -> np.ndarray:
        ok = np.isfinite(v)
        return np.where(ok, v, np.median(v[ok]) if ok.any() else 0.0)

    th = us.theta
    fb = diagnostics.get("fallbacks", {})
    station = [
        fill(m["height"]) * 1e3, fill(m["thickness"]) * 1e3, fill(m["body"]) * 1e3, fill(m["wall_len"]) * 1e3,
        sol.ring.strain * 100, _curvature(cu[:, :2]) * 0.1, np.sum(n_b[:, :2] * out2, axis=1) * 10,
        np.sum(n_b[:, :2] * tan2, axis=1) * 10, np.clip(sol.slope, 0, 5), sol.depth * 1e3, sol.sigma * 1e3,
        sol.seen.astype(float), (sol.fallback_sigma if sol.fallback_sigma is not None else np.zeros(K)) * 1e3,
        fill(us.resid) * 1e3, np.cos(th), np.sin(th), np.cos(2 * th), np.sin(2 * th), np.cos(3 * th), np.sin(3 * th),
    ]  # fmt: skip
    ref_rms = diagnostics.get("reference_rms_m")
    pair = [
        float(style_known), diagnostics["perimeter_strain"] * 100, diagnostics["mean_hoop_strain"] * 100,
        diagnostics["pose_rms_m"] * 1e3, diagnostics["valid_upper"], diagnostics["valid_sole"],
        float(fb.get("side_seen_fraction", 1.0)), float(fb.get("wall_thickness_substituted", 0)) / K,
        0.0 if ref_rms is None else float(ref_rms) * 1e3, float(us.frame.half_length) * 10,
    ]  # fmt: skip
    f = np.vstack([np.stack(station), np.repeat(np.array(pair)[:, None], K, axis=1)])
    return np.nan_to_num(f, nan=0.0, posinf=0.0, neginf=0.0).astype(np.float32)


def side_directions(line: np.ndarray, diagnostics: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """(theta (m,), u (m, 3)): each line point's normalised outline angle and the unit direction down the upper's
    side at it (the bottom normal's opposite, in the surface's tangent plane, across the line).

    The physics moves a bite point along the side as its depth grows; ``u`` is that direction on the surface.
    """
    from scipy.spatial import cKDTree

    st = diagnostics["sigma_parts"]["stations"]
    us, upper = st["us"], st["upper"]
    theta = us.frame.polar(line)[0]
    n_b = periodic_interp(theta, us.theta, fill_invalid(us.theta, us.n_b, us.valid))
    _, j = cKDTree(upper.points).query(line)
    n = upper.normals[j]
    t = np.roll(line, -1, axis=0) - np.roll(line, 1, axis=0)
    t /= np.maximum(np.linalg.norm(t, axis=1, keepdims=True), 1e-12)
    u = -n_b - np.sum(-n_b * n, axis=1, keepdims=True) * n
    u -= np.sum(u * t, axis=1, keepdims=True) * t
    norm = np.linalg.norm(u, axis=1, keepdims=True)
    fallback = -n_b - np.sum(-n_b * t, axis=1, keepdims=True) * t  # surface normal along the bottom normal
    u = np.where(norm > 0.2, u / np.maximum(norm, 1e-12), fallback / np.linalg.norm(fallback, axis=1, keepdims=True))
    return theta, u


def normal_directions(line: np.ndarray, u: np.ndarray) -> np.ndarray:
    """(m, 3) unit direction across the surface at each point of ``line``: ``u`` x the line's tangent."""
    p = np.asarray(line, dtype=np.float64)
    t = np.roll(p, -1, axis=0) - np.roll(p, 1, axis=0)
    n = np.cross(u, t)
    return n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)


def apply_correction(line: np.ndarray, u: np.ndarray, delta: np.ndarray) -> np.ndarray:
    """``line`` (m, 3) moved by ``delta`` metres: (m,) along ``u`` (m, 3) (+ = down the side), or (m, 2) along
    ``u`` and across the surface (:func:`normal_directions`)."""
    line = np.asarray(line, dtype=np.float64)
    d = np.asarray(delta, dtype=np.float64)
    if d.ndim == 1:
        return line + d[:, None] * np.asarray(u)
    return line + d[:, :1] * np.asarray(u) + d[:, 1:2] * normal_directions(line, u)


def build_net(cfg: ResidualConfig) -> Any:
    """The net: circular convolutions round the outline plus a pooled (pair-wide) branch; 4 outputs per station
    (correction along the side and across the surface, mm; their log sigmas, mm)."""
    from .ringnet import ring_conv_net

    return ring_conv_net(N_CHANNELS, 4, cfg.width, cfg.kernel, dropout=cfg.dropout, clamp_from=2,
                         clamp=LOG_SIGMA_RANGE)  # fmt: skip


def fit_stats(F: np.ndarray) -> dict[str, Any]:
    """Input statistics of (n, C, K) training features: standardisation and the distribution check's."""
    from .ringnet import fit_stats as ring_stats

    return ring_stats(F, 1e-3)


@dataclass
class ResidualModel:
    """A trained residual net with its input statistics and conformal sigma factor."""

    net: Any
    config: ResidualConfig
    mu: np.ndarray
    sd: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    s_mean: np.ndarray
    s_icov: np.ndarray
    d2_max: float
    sigma_scale: float = 1.0
    metrics: dict = field(default_factory=dict)
    #: True when the held-out figures showed it beats physics + calibration on both worlds (default on).
    default_on: bool = False
    #: Trained with its training cell's median offset along the side removed from the labels: it corrects on top
    #: of physics + the cell's own depth calibration (which carries the cell's offset) instead of bare physics.
    base_calibrated: bool = False

    def check(self, f: np.ndarray) -> str | None:
        """None when the (C, K) features are inside the training distribution, else the reason."""
        names = STATION_CHANNELS + PAIR_CHANNELS
        if f.shape[0] != len(names) or not np.all(np.isfinite(f)):
            return "non-finite or malformed residual features"
        span = self.hi - self.lo
        lo, hi = self.lo - RANGE_MARGIN * span - 1e-6, self.hi + RANGE_MARGIN * span + 1e-6
        share = np.mean((f < lo[:, None]) | (f > hi[:, None]), axis=1)
        bad = np.flatnonzero(share > RANGE_SHARE)
        if len(bad):
            c = int(bad[0])
            return (f"feature {names[c]!r} outside its training range {self.lo[c]:.3g}..{self.hi[c]:.3g} at "
                    f"{share[c]:.0%} of the stations")  # fmt: skip
        return summary_distance_reason(f, self.s_mean, self.s_icov, self.d2_max, D2_MARGIN)

    def predict(self, f: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(delta (K, 2) metres along the side and across the surface, sigma (K,) metres of the distance, conformal
        factor applied) for (C, K) features; no distribution check."""
        import torch

        x = torch.from_numpy(((f - self.mu[:, None]) / self.sd[:, None]).astype(np.float32))[None]
        with torch.no_grad():
            y = self.net(x)[0].numpy().astype(np.float64)
        return y[:2].T * 1e-3, np.hypot(np.exp(y[2]), np.exp(y[3])) * 1e-3 * self.sigma_scale

    def correct(
        self, line: np.ndarray, diagnostics: dict[str, Any], style_known: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        """The corrected line (m, 3) and its sigma (m,) metres for a physics ``line`` and its ``diagnostics``.

        Raises:
            ResidualOutOfDistribution: the input is outside the training distribution (the reason says how).
        """
        f = station_features(diagnostics, style_known)
        reason = self.check(f)
        if reason is not None:
            raise ResidualOutOfDistribution(reason, stage="deformation")
        delta, sigma = self.predict(f)
        theta_st = diagnostics["sigma_parts"]["stations"]["us"].theta
        theta, u = side_directions(line, diagnostics)
        d = np.column_stack([periodic_interp(theta, theta_st, delta[:, i]) for i in range(2)])
        s = np.exp(periodic_interp(theta, theta_st, np.log(sigma)))
        return apply_correction(line, u, d), s


def save_residual(path: str | os.PathLike[str], model: ResidualModel, config: dict | None = None) -> None:
    """Write the checkpoint (:data:`RESIDUAL_FORMAT`) atomically; loadable with ``torch.load(weights_only=True)``."""
    import dataclasses

    import torch

    doc = {
        "format": RESIDUAL_FORMAT,
        "state_dict": model.net.state_dict(),
        "net_config": dataclasses.asdict(model.config),
        "stats": {k: torch.as_tensor(getattr(model, k)) for k in ("mu", "sd", "lo", "hi", "s_mean", "s_icov")},
        "d2_max": float(model.d2_max),
        "sigma_scale": float(model.sigma_scale),
        "default_on": bool(model.default_on),
        "base_calibrated": bool(model.base_calibrated),
        "channels": list(STATION_CHANNELS + PAIR_CHANNELS),
        "metrics": {str(k): float(v) for k, v in model.metrics.items()},
        "config": {str(k): str(v) for k, v in (config or {}).items()},
    }
    tmp = f"{os.fspath(path)}.tmp{os.getpid()}"
    try:
        torch.save(doc, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def load_residual(path: str | os.PathLike[str] | None = None) -> ResidualModel:
    """Read a checkpoint (default: the shipped one). FormatError on a file that is not one (or whose channels
    differ from this code's), VersionError on a major format mismatch."""
    import torch

    path = DEFAULT_RESIDUAL if path is None else path
    try:
        doc = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a bad file
        raise FormatError(f"{path}: not a residual checkpoint ({exc})") from exc
    if not isinstance(doc, dict) or "state_dict" not in doc:
        raise FormatError(f"{path}: not a residual checkpoint")
    check_version(doc.get("format"), RESIDUAL_FORMAT, what=str(path))
    if list(doc.get("channels", [])) != list(STATION_CHANNELS + PAIR_CHANNELS):
        raise FormatError(f"{path}: its input channels differ from this gluecell's; retrain it")
    cfg = ResidualConfig(**dict(doc["net_config"]))
    net = build_net(cfg)
    net.load_state_dict(doc["state_dict"])
    net.eval()
    st = {k: v.numpy().astype(np.float64) for k, v in doc["stats"].items()}
    return ResidualModel(net=net, config=cfg, d2_max=float(doc["d2_max"]), sigma_scale=float(doc["sigma_scale"]),
                         metrics=dict(doc["metrics"]), default_on=bool(doc.get("default_on", False)),
                         base_calibrated=bool(doc.get("base_calibrated", False)), **st)  # fmt: skip
