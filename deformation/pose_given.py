"""An attach pose given from outside the predictor (the error budget's "true attach pose" row, or a press that
measures where it put the sole) in place of the outline ICP of :mod:`.attach_pose`.

The pose is rigid: it says where the press put the sole. The predictor's :class:`~.attach_pose.AttachPose` also
carries an outline scale (the sole's undersize: a matching device, not a pose); with the rotation and the
translation fixed, that scale is fitted here by nearest points about the sole ring's centroid, the same way the
ICP's scale relates to its rigid part (``T_rigid`` = the similarity with the scale removed about that centroid).
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

from gluecell.core.geometry import closed_resample

from .attach_pose import MAX_POSE_RMS, AttachPose
from .errors import AttachPoseError
from .profiles import SoleSections, UpperSections
from .sections import fill_invalid

__all__ = ["given_attach_pose", "check_rigid", "read_attach_pose"]

#: Nearest-point iterations of the scale fit.
SCALE_ITERATIONS = 8


def check_rigid(T: np.ndarray) -> np.ndarray:
    """``T`` as a float (4, 4) proper rigid transform.

    Raises:
        AttachPoseError: wrong shape, NaN/inf, a rotation part that is not orthonormal with det +1, or a last row
            other than (0, 0, 0, 1).
    """
    T = np.asarray(T, dtype=float)
    if T.shape != (4, 4) or not np.all(np.isfinite(T)):
        raise AttachPoseError(f"a given attach pose must be a finite 4x4 matrix, got shape {T.shape}",
                              stage="deformation")  # fmt: skip
    R = T[:3, :3]
    if not np.allclose(R.T @ R, np.eye(3), atol=1e-6) or np.linalg.det(R) < 0.0 or not np.allclose(T[3], [0, 0, 0, 1]):
        raise AttachPoseError("a given attach pose must be rigid (orthonormal rotation, det +1, last row 0 0 0 1)",
                              stage="deformation")  # fmt: skip
    return T


def given_attach_pose(T: np.ndarray, upper: UpperSections, sole: SoleSections) -> AttachPose:
    """The :class:`AttachPose` of the rigid sole station -> upper station transform ``T`` (base_link, metres).

    Raises:
        AttachPoseError: ``T`` not rigid (:func:`check_rigid`), too few valid stations, or the sole's footbed
            outline placed by ``T`` misses the upper's outline by more than ``MAX_POSE_RMS`` (not this pair's
            pose).
    """
    T = check_rigid(T)
    if upper.valid.sum() < 16 or sole.valid.sum() < 16:
        raise AttachPoseError("too few outline stations to place the sole on the upper", stage="deformation")
    cu = fill_invalid(upper.theta, upper.corner, upper.valid)
    cs = fill_invalid(sole.theta, sole.corner, sole.valid)
    R, tr = T[:3, :3], T[:3, 3]
    m = cs.mean(axis=0)
    a = (cs - m) @ R.T  # the sole ring about its centroid, rotated
    c = R @ m + tr  # where the centroid lands
    dense = closed_resample(cu, 1e-3)
    tree = cKDTree(dense)
    s = 1.0
    for _ in range(SCALE_ITERATIONS):
        _, j = tree.query(c + s * a)
        s = float(np.sum(a * (dense[j] - c)) / np.sum(a * a))
    t = tr + (1.0 - s) * R @ m
    rms = float(np.sqrt(np.mean(tree.query(s * cs @ R.T + t)[0] ** 2)))
    if not np.isfinite(rms) or rms > MAX_POSE_RMS:
        raise AttachPoseError(
            f"the given attach pose puts the sole's outline {rms * 1e3:.1f} mm (rms) off the upper's "
            f"(> {MAX_POSE_RMS * 1e3:.1f} mm): not this pair's pose",
            stage="deformation", rms_m=rms,
        )  # fmt: skip
    return AttachPose(R=R.copy(), t=t, scale=s, T_rigid=T.copy(), rms=rms)


def read_attach_pose(path: str) -> np.ndarray:
    """The rigid (4, 4) attach pose in a JSON file: a bare 4x4 list, or the ``T_attach`` of a ``gluecell.attach/1``
    document (``gluecell predict``'s output).

    Raises:
        FormatError: not JSON, or no 4x4 matrix in it. AttachPoseError: not a rigid transform.
    """
    from gluecell.core.errors import FormatError
    from gluecell.core.fileio import read_json

    doc = read_json(path, max_bytes=64 * 1024 * 1024)
    T = doc.get("T_attach") if isinstance(doc, dict) else doc
    try:
        arr = np.asarray(T, dtype=float)
    except (TypeError, ValueError) as exc:
        raise FormatError(f"{path}: the attach pose must be a 4x4 list of numbers (or a 'T_attach' key)") from exc
    if arr.shape != (4, 4):
        raise FormatError(f"{path}: the attach pose must be a 4x4 list of numbers (or a 'T_attach' key), "
                          f"got shape {arr.shape}")  # fmt: skip
    return check_rigid(arr)
