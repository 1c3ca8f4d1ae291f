"""Baselines the predictor is compared with (pipeline side: they read only scans).

- ``predict_rigid``: the "rigid sole" baseline: the sole is flipped and placed by the attach pose with
  no deformation at all (no stretch, no conformation): its rim, projected onto the upper, is the line.
- ``rigid_icp`` (from :mod:`.reference`): places a taught bite line on a new upper ("teach once": one
  line per style and size, moved rigidly by registration).
"""

from __future__ import annotations

import numpy as np

from gluecell.core.types import AttachPrediction, PartScan

from .attach_pose import find_attach_pose
from .biteline import surface_polyline
from .inputs import section_pair
from .predict import PredictConfig
from .reference import apply_T, rigid_icp
from .sections import fill_invalid, smooth_closed

__all__ = ["predict_rigid", "rigid_icp", "apply_T"]


def predict_rigid(upper: PartScan, sole: PartScan, cfg: PredictConfig | None = None) -> AttachPrediction:
    """ "Rigid sole" baseline: the free sole's rim, placed rigidly by the attach pose, projected onto the upper."""
    cfg = cfg or PredictConfig()
    us, ss = section_pair(upper, sole, cfg)
    pose = find_attach_pose(us, ss)
    rim = smooth_closed(fill_invalid(ss.theta, ss.rim, ss.valid))[::-1]  # reversed: the flip mirrors the order
    placed = apply_T(pose.T_rigid, rim)
    line, sigma = surface_polyline(placed, np.full(len(placed), 1e-3), upper.points, upper.normals, cfg.spacing)
    return AttachPrediction(bite_line=line, bite_line_sigma=sigma, item_id=upper.item_id)
