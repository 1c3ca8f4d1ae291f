"""core.geometry.unit (made faster for planning latency) gives exactly what np.linalg.norm gave, and still refuses
NaN/inf and zero rows."""

from __future__ import annotations

import numpy as np
import pytest

from gluecell.core.errors import ValidationError
from gluecell.core.geometry import unit


def _reference(v: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return np.divide(v, n, out=np.zeros_like(v), where=~(n <= 1e-15))


def test_unit_is_bit_identical_to_the_norm_version():
    rng = np.random.default_rng(0)
    for shape in ((3,), (1, 3), (500, 3), (40, 7, 3), (200, 2)):
        v = rng.normal(size=shape) * 10.0 ** rng.uniform(-9, 150, (*shape[:-1], 1))  # incl. squares that overflow
        assert np.array_equal(unit(v, allow_zero=True), _reference(v))


def test_unit_refuses_nan_inf_and_zero_rows():
    v = np.ones((4, 3))
    for bad in (np.nan, np.inf):
        w = v.copy()
        w[2, 1] = bad
        with pytest.raises(ValidationError, match="non-finite"):
            unit(w, allow_zero=True)
    v[1] = 0.0
    with pytest.raises(ValidationError, match="zero-length"):
        unit(v)
    assert np.array_equal(unit(v, allow_zero=True)[1], np.zeros(3))
