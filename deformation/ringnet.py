"""What the two learnt models round the sole's outline share (the ring-solver surrogate, :mod:`.surrogate`, and
the bite-line residual, :mod:`.residual`): the circular 1-D convolution net with its mean-pooled global branch,
the input statistics of (n, C, K) training features, and the per-pair summary distance of the
inside-the-training-distribution check.

Kept in one place so a fix to the net or to the distribution check reaches both models; each model keeps its own
channel names, margins and output meaning. The layer layout is the one both shipped checkpoints were saved with
(``local.*`` and ``head.*``; a dropout layer only when asked), so their weights load unchanged.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["COV_SHRINK", "ring_conv_net", "summary", "fit_stats", "summary_distance_reason"]

#: Few distinct geometries (one per training pair): the summary covariance is shrunk this far to its diagonal.
COV_SHRINK = 0.5


def ring_conv_net(n_in: int, n_out: int, width: int, kernel: int, dropout: float | None = None,
                  clamp_from: int | None = None, clamp: tuple[float, float] | None = None,
                  squeeze: bool = False) -> Any:  # fmt: skip
    """A torch net (B, n_in, K) -> (B, n_out, K): two circular convolutions round the outline (the second
    dilated), a global branch (their mean over the ring, since a hoop's tension is ring-wide), and a head.

    Args:
        dropout: channel dropout after the first convolution (None: no such layer).
        clamp_from, clamp: outputs from channel ``clamp_from`` on are clamped to ``clamp`` (e.g. log sigmas).
        squeeze: with ``n_out == 1``, return (B, K).
    """
    import torch
    from torch import nn

    class RingConvNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            w, k = width, kernel
            layers: list[nn.Module] = [nn.Conv1d(n_in, w, k, padding=k // 2, padding_mode="circular"), nn.GELU()]
            if dropout is not None:
                layers.append(nn.Dropout1d(dropout))
            layers += [nn.Conv1d(w, w, k, padding=(k // 2) * 2, dilation=2, padding_mode="circular"), nn.GELU()]
            self.local = nn.Sequential(*layers)
            self.head = nn.Sequential(
                nn.Conv1d(2 * w, w, k, padding=k // 2, padding_mode="circular"), nn.GELU(), nn.Conv1d(w, n_out, 1)
            )

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            h = self.local(x)
            g = h.mean(dim=2, keepdim=True).expand_as(h)
            y = self.head(torch.cat([h, g], dim=1))
            if clamp is not None and clamp_from is not None:
                y = torch.cat([y[:, :clamp_from], torch.clamp(y[:, clamp_from:], *clamp)], dim=1)
            return y[:, 0] if squeeze else y

    return RingConvNet()


def summary(f: np.ndarray) -> np.ndarray:
    """(2 C,) per-pair summary of (C, K) features: mean and std per channel."""
    return np.concatenate([f.mean(axis=1), f.std(axis=1)]).astype(np.float64)


def fit_stats(F: np.ndarray, sd_floor: float) -> dict[str, Any]:
    """Input statistics of (n, C, K) training features: channel mean/std (std + ``sd_floor``) for the
    standardisation, channel min/max, and the summaries' mean, shrunk inverse covariance and largest squared
    Mahalanobis distance for the distribution check."""
    S = np.stack([summary(f) for f in F])
    s_mean = S.mean(axis=0)
    C = np.cov((S - s_mean).T)
    cov = (1 - COV_SHRINK) * C + COV_SHRINK * np.diag(np.diag(C)) + np.diag(1e-9 + 1e-6 * np.diag(C))
    icov = np.linalg.inv(cov)
    d2 = np.einsum("ni,ij,nj->n", S - s_mean, icov, S - s_mean)
    return {"mu": F.mean(axis=(0, 2)), "sd": F.std(axis=(0, 2)) + sd_floor, "lo": F.min(axis=(0, 2)),
            "hi": F.max(axis=(0, 2)), "s_mean": s_mean, "s_icov": icov, "d2_max": float(d2.max())}  # fmt: skip


def summary_distance_reason(f: np.ndarray, s_mean: np.ndarray, s_icov: np.ndarray, d2_max: float,
                            margin: float) -> str | None:  # fmt: skip
    """None when the (C, K) features' summary lies within ``margin`` x the training's largest squared
    Mahalanobis distance, else the reason."""
    z = summary(f) - s_mean
    d2 = float(z @ s_icov @ z)
    if d2 > margin * d2_max:
        return f"Mahalanobis distance^2 {d2:.1f} over {margin} x the training maximum {d2_max:.1f}"
    return None
