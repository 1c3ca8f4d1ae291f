"""The QA network (plain torch): a small U-Net that segments glue and the four defect types.

Why this design: the decision needs *where* glue is relative to the predicted line, which is geometry the
station knows exactly (depth + calibration + plan); so the plan is rendered into the input (signed distance
to the predicted line in mm and in sigmas, a part mask, the film from depth), and the network only has to
learn appearance: glue against substrates that glow less *or more* than the tracer, glare, blur, noise. Its
per-pixel outputs give masks (locations, crops, sizes in mm) and its image-level scores are the largest
3x3-pooled defect probabilities on the part, which the verdict policy thresholds. A U-Net 8-16-32-64 runs
in ~12 ms at 256^2 on 2 CPU threads (REFERENCES "Inspection").

Input channels (:func:`features`): RGB scaled by the part's 99th percentile (3), raw luminance (1), part
mask (1), signed distance / 5 mm (1), signed distance / (2 sigma) (1), film from depth in mm (1).

A *blind* network (``build_unet(..., blind=GEOMETRY_CHANNELS)``, ``gluecell qa train --blind``) zeroes the plan's
geometry channels (the two signed distances) inside its forward pass, whatever the caller feeds it: trained so,
it must find glue in the image and the depth, not infer it from the side of the predicted line (``qa-s101``
learnt "glue = bond side", see ``quality/models/README.md``). The geometry is then applied after the network,
by the image-level head (:mod:`.head`), which still reads the full input.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gluecell.core.types import DEFECT_TYPES, InspectionView

from .geometry import ViewGeometry

__all__ = ["FEATURES_VERSION", "GEOMETRY_CHANNELS", "N_IN", "OUTPUTS", "features", "build_unet", "scores_from_probs"]

#: Bumped whenever :func:`features` changes meaning; a model trained on other features is refused.
FEATURES_VERSION = 1
N_IN = 8
OUTPUTS: tuple[str, ...] = ("glue", *DEFECT_TYPES)
#: Input channels that carry the plan's geometry (signed distance to the predicted line / 5 mm and / 2 sigma).
GEOMETRY_CHANNELS: tuple[int, ...] = (5, 6)


def features(view: InspectionView, g: ViewGeometry) -> np.ndarray:
    """(8, h, w) float32 network input of one view."""
    img = view.image.astype(np.float32) / 255.0
    part = g.part
    scale = float(np.percentile(img[part].max(axis=1), 99)) if part.any() else 1.0
    norm = np.clip(img / max(scale, 0.02), 0, 2)
    lum = img.mean(axis=2, keepdims=True)
    sd = np.nan_to_num(g.signed, nan=0.0)
    out = np.concatenate([
        norm, lum, part[..., None].astype(np.float32),
        np.clip(sd / 5e-3, -5, 5)[..., None], np.clip(sd / np.maximum(2 * g.sigma, 1e-4), -5, 5)[..., None],
        np.clip(g.film * 1e3, -2, 6)[..., None] / 2,
    ], axis=2).astype(np.float32)  # fmt: skip
    out[~part, 4:] = 0.0
    return np.ascontiguousarray(out.transpose(2, 0, 1))


def build_unet(width: int = 8, depth: int = 3, blind: tuple[int, ...] | list[int] = ()) -> Any:
    """A U-Net with ``width * 2^k`` channels at level k (k = 0..depth), ``N_IN`` in, ``len(OUTPUTS)`` out.

    Args:
        blind: input channels the network never sees (multiplied by 0 at the start of ``forward``).
    """
    import torch
    from torch import nn

    blind = tuple(int(c) for c in blind)
    if any(not 0 <= c < N_IN for c in blind):
        raise ValueError(f"blind channels {blind} outside 0..{N_IN - 1}")

    def block(cin: int, cout: int) -> nn.Module:
        return nn.Sequential(
            nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
            nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
        )  # fmt: skip

    class UNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            ch = [width * 2**k for k in range(depth + 1)]
            self.down = nn.ModuleList([block(N_IN, ch[0])] + [block(ch[k - 1], ch[k]) for k in range(1, depth + 1)])
            self.up = nn.ModuleList([nn.ConvTranspose2d(ch[k], ch[k - 1], 2, stride=2) for k in range(depth, 0, -1)])
            self.dec = nn.ModuleList([block(2 * ch[k - 1], ch[k - 1]) for k in range(depth, 0, -1)])
            self.head = nn.Conv2d(ch[0], len(OUTPUTS), 1)
            self.pool = nn.MaxPool2d(2)
            keep = torch.ones(1, N_IN, 1, 1)
            keep[:, list(blind)] = 0.0
            self.register_buffer("keep", keep, persistent=False)
            self.blind = blind

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = x * self.keep if self.blind else x
            skips = []
            for k, blk in enumerate(self.down):
                x = blk(x if k == 0 else self.pool(x))
                skips.append(x)
            for up, dec, skip in zip(self.up, self.dec, reversed(skips[:-1])):
                x = dec(torch.cat([up(x), skip], dim=1))
            return self.head(x)

    return UNet()


def scores_from_probs(probs: Any, part: Any) -> Any:
    """Image-level defect scores (n, 4): the largest 3x3-averaged probability of each defect channel on the part.

    Args:
        probs: (n, 5, h, w) torch tensor of sigmoid outputs; part: (n, 1, h, w) float mask.
    """
    import torch.nn.functional as F

    pooled = F.avg_pool2d(probs[:, 1:] * part, 3, stride=1, padding=1)
    return pooled.flatten(2).amax(dim=2)
