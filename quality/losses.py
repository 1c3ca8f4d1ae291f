"""Training losses of the QA network: plain BCE (``qa-s101``) or focal + dice on the defect channels.

Why focal + dice: defect pixels are ~1 % of a view, so per-pixel BCE is won by predicting "no defect"
everywhere (``qa-s101``'s defect channels sat at 0.4-0.6 on clean and defective views alike). The focal term
(Lin et al. 2017) down-weights the easy pixels, ``(1 - p_t)^gamma``, with ``alpha`` on the positives; the soft
dice term (Milletari et al. 2016), computed per channel over the whole batch, scores the overlap of the defect
masks whatever their size. The glue channel (half the part) keeps plain BCE.
"""

from __future__ import annotations

from typing import Any

__all__ = ["LOSSES", "focal_loss", "soft_dice_loss", "focal_dice_loss", "make_loss"]

LOSSES = ("bce", "focal_dice")


def focal_loss(logits: Any, target: Any, gamma: float = 2.0, alpha: float = 0.75) -> Any:
    """Mean binary focal loss: ``-a_t (1 - p_t)^gamma log p_t`` (``a_t`` = alpha on positives, 1 - alpha else)."""
    import torch
    import torch.nn.functional as F

    bce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    p = torch.sigmoid(logits)
    p_t = p * target + (1 - p) * (1 - target)
    a_t = alpha * target + (1 - alpha) * (1 - target)
    return (a_t * (1 - p_t) ** gamma * bce).mean()


def soft_dice_loss(logits: Any, target: Any, eps: float = 1.0) -> Any:
    """Mean over channels of ``1 - (2 sum(p y) + eps) / (sum(p) + sum(y) + eps)``, sums over batch and pixels."""
    import torch

    p = torch.sigmoid(logits)
    dims = (0, 2, 3)
    inter = (p * target).sum(dims)
    return (1 - (2 * inter + eps) / (p.sum(dims) + target.sum(dims) + eps)).mean()


def focal_dice_loss(logits: Any, target: Any, *, gamma: float = 2.0, alpha: float = 0.75, dice: float = 1.0,
                    focal_scale: float = 10.0) -> Any:  # fmt: skip
    """BCE on channel 0 (glue) + ``focal_scale`` x focal + ``dice`` x soft dice on channels 1.. (the defects).

    ``focal_scale`` brings the focal term (tiny once most pixels are easy) to the scale of the others.
    """
    import torch.nn.functional as F

    glue = F.binary_cross_entropy_with_logits(logits[:, :1], target[:, :1])
    d_log, d_y = logits[:, 1:], target[:, 1:]
    return glue + focal_scale * focal_loss(d_log, d_y, gamma, alpha) + dice * soft_dice_loss(d_log, d_y)


def make_loss(kind: str, defect_weight: float, n_defects: int) -> Any:
    """A ``loss(logits, target)`` callable: ``"bce"`` (pos_weight ``defect_weight`` on defects) or ``"focal_dice"``."""
    import torch

    if kind == "bce":
        pw = torch.tensor([1.0] + [defect_weight] * n_defects).view(1, -1, 1, 1)
        return torch.nn.BCEWithLogitsLoss(pos_weight=pw)
    if kind == "focal_dice":
        return focal_dice_loss
    raise ValueError(f"unknown loss {kind!r}; one of {', '.join(LOSSES)}")
