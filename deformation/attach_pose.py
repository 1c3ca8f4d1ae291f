"""Attach pose: the sole flipped onto the upper's bottom with the outlines aligned.

The sole lies footbed up at its station and the upper bottom up at its own, both toe towards +x, so the
attach motion is a half turn about the sole's long axis (the same flip that put the upper bottom up)
followed by an alignment of the sole's footbed outline (its ring of virtual inner corners) to the
upper's feather-edge outline (its ring of virtual corners). The alignment is a similarity ICP
(Umeyama): rotation, translation and one scale, which absorbs the sole's undersize; the rigid part
(scale removed about the ring's centroid) is the attach pose in the upper station frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from gluecell.core.geometry import closed_resample

from .errors import AttachPoseError
from .profiles import SoleSections, UpperSections
from .reference import apply_T
from .sections import fill_invalid

__all__ = ["AttachPose", "find_attach_pose", "umeyama", "closed_resample", "MAX_POSE_RMS"]

#: Outline misfit (rms, metres) above which the sole is not the upper's mate (wrong style or side).
MAX_POSE_RMS = 4.0e-3
ICP_ITERATIONS = 15


@dataclass(frozen=True)
class AttachPose:
    """Similarity ``x_upper = scale * R @ x_sole + t`` and its rigid part.

    Attributes:
        R: (3, 3) rotation (includes the flip).
        t: (3,) metres.
        scale: outline scale sole -> upper (1 + mean undersize).
        T_rigid: (4, 4) rigid pose sole station -> upper station (scale removed about the ring centroid).
        rms: outline misfit after alignment, metres.
    """

    R: np.ndarray
    t: np.ndarray
    scale: float
    T_rigid: np.ndarray
    rms: float

    def apply(self, x: np.ndarray, *, rigid: bool = False) -> np.ndarray:
        """Map (n, 3) sole-station points to the upper station (rigidly if ``rigid``)."""
        if rigid:
            return apply_T(self.T_rigid, x)
        return self.scale * x @ self.R.T + self.t

    def inverse(self, y: np.ndarray) -> np.ndarray:
        """Map (n, 3) upper-station points back to the sole station (similarity inverse)."""
        return (y - self.t) @ self.R / self.scale


def umeyama(src: np.ndarray, dst: np.ndarray, *, with_scale: bool = True) -> tuple[np.ndarray, np.ndarray, float]:
    """Least-squares similarity (R, t, s) with ``dst ~ s R src + t`` for (n, 3) point pairs."""
    ms, md = src.mean(axis=0), dst.mean(axis=0)
    a, b = src - ms, dst - md
    U, S, Vt = np.linalg.svd(b.T @ a / len(src))
    D = np.eye(3)
    if np.linalg.det(U) * np.linalg.det(Vt) < 0:
        D[2, 2] = -1
    R = U @ D @ Vt
    s = float(np.trace(np.diag(S) @ D) / (a**2).sum(axis=1).mean()) if with_scale else 1.0
    return R, md - s * R @ ms, s


def _flip(sole: SoleSections) -> tuple[np.ndarray, np.ndarray]:
    """Half turn about the sole's long axis through its outline centre: (R, t)."""
    ax = np.array([sole.frame.u[0], sole.frame.u[1], 0.0])
    R = 2 * np.outer(ax, ax) - np.eye(3)
    c = np.array([*sole.frame.centre, 0.0])
    return R, c - R @ c


def find_attach_pose(upper: UpperSections, sole: SoleSections) -> AttachPose:
    """Align the flipped sole's footbed outline to the upper's feather-edge outline.

    Raises:
        AttachPoseError: too few valid stations, or the outlines do not match after alignment.
    """
    if upper.valid.sum() < 16 or sole.valid.sum() < 16:
        raise AttachPoseError("too few outline stations to align the sole to the upper", stage="deformation")
    cu = fill_invalid(upper.theta, upper.corner, upper.valid)
    cs = fill_invalid(sole.theta, sole.corner, sole.valid)
    Rf, tf = _flip(sole)
    # Station k of the upper faces station K-1-k of the sole (the flip mirrors the outline angle).
    R, t, s = umeyama(cs[::-1] @ Rf.T + tf, cu)
    R, t = R @ Rf, s * R @ tf + t
    dense = closed_resample(cu, 1e-3)
    tree = cKDTree(dense)
    for _ in range(ICP_ITERATIONS):
        moved = s * cs @ R.T + t
        _, j = tree.query(moved)
        R, t, s = umeyama(cs, dense[j])
    moved = s * cs @ R.T + t
    rms = float(np.sqrt(np.mean(tree.query(moved)[0] ** 2)))
    if not np.isfinite(rms) or rms > MAX_POSE_RMS:
        raise AttachPoseError(
            f"sole outline does not match the upper's bottom outline (rms {rms * 1e3:.1f} mm > "
            f"{MAX_POSE_RMS * 1e3:.1f} mm): wrong style or side?",
            stage="deformation",
            rms_m=rms,
        )
    m = cs.mean(axis=0)
    T = np.eye(4)
    T[:3, :3] = R
    T[:3, 3] = s * R @ m + t - R @ m
    return AttachPose(R=R, t=t, scale=s, T_rigid=T, rms=rms)
