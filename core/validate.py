"""Coercion and validation helpers used on every boundary value."""

from __future__ import annotations

import numpy as np

from .errors import ValidationError

__all__ = ["as_array", "as_points", "as_pose", "as_quaternions", "check_finite", "QUAT_NORM_TOL"]

#: A quaternion whose norm differs from 1 by more than this is rejected.
QUAT_NORM_TOL = 1e-3


def check_finite(name: str, arr: np.ndarray) -> None:
    """Raise if ``arr`` holds NaN or inf."""
    if arr.size and not np.all(np.isfinite(arr)):
        bad = int(np.count_nonzero(~np.isfinite(arr)))
        raise ValidationError(f"{name}: {bad} value(s) are NaN or inf", field=name)


def as_array(
    name: str,
    value: object,
    *,
    ndim: int | None = None,
    cols: int | None = None,
    dtype: type = np.float64,
    min_rows: int = 0,
    finite: bool = True,
) -> np.ndarray:
    """Coerce ``value`` to a read-only array and check its shape.

    Args:
        name: field name used in error messages.
        value: anything ``np.asarray`` accepts.
        ndim: required number of dimensions.
        cols: required size of the last axis.
        dtype: target dtype.
        min_rows: minimum size of the first axis.
        finite: reject NaN/inf (floating dtypes only).
    """
    try:
        arr = np.array(value, dtype=dtype, copy=True)
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"{name}: cannot convert to {np.dtype(dtype).name} array: {exc}") from exc
    if ndim is not None and arr.ndim != ndim:
        raise ValidationError(f"{name}: expected {ndim}-D array, got shape {arr.shape}", field=name)
    if cols is not None and (arr.ndim < 2 or arr.shape[-1] != cols):
        raise ValidationError(f"{name}: expected shape (n, {cols}), got {arr.shape}", field=name)
    if arr.ndim >= 1 and arr.shape[0] < min_rows:
        raise ValidationError(f"{name}: needs at least {min_rows} rows, got {arr.shape[0]}", field=name)
    if finite and np.issubdtype(arr.dtype, np.floating):
        check_finite(name, arr)
    arr.setflags(write=False)
    return arr


def as_points(name: str, value: object, *, min_rows: int = 1) -> np.ndarray:
    """``(n, 3) float64`` finite points with at least ``min_rows`` rows."""
    return as_array(name, value, ndim=2, cols=3, min_rows=min_rows)


def as_quaternions(name: str, value: object) -> np.ndarray:
    """``(n, 4) float64`` unit quaternions (x, y, z, w)."""
    q = as_array(name, value, ndim=2, cols=4)
    norms = np.linalg.norm(q, axis=1)
    bad = np.abs(norms - 1.0) > QUAT_NORM_TOL
    if np.any(bad):
        i = int(np.argmax(bad))
        raise ValidationError(
            f"{name}: quaternion {i} has norm {norms[i]:.6f}, expected 1 ± {QUAT_NORM_TOL}", field=name
        )
    return q


def as_pose(name: str, value: object) -> np.ndarray:
    """``(4, 4) float64`` rigid transform: orthonormal rotation, last row 0 0 0 1."""
    T = as_array(name, value, ndim=2)
    if T.shape != (4, 4):
        raise ValidationError(f"{name}: expected a 4x4 transform, got shape {T.shape}", field=name)
    R = T[:3, :3]
    if not np.allclose(R @ R.T, np.eye(3), atol=1e-6) or np.linalg.det(R) < 0:
        raise ValidationError(f"{name}: rotation part is not a proper rotation", field=name)
    if not np.allclose(T[3], [0, 0, 0, 1], atol=1e-9):
        raise ValidationError(f"{name}: last row must be [0, 0, 0, 1]", field=name)
    return T
