"""The per-station section rules compiled: one pass a station over its wedge (issue 14's deformation latency).

:func:`.profiles.upper_sections` and :func:`.profiles.sole_sections` measure 128 overlapping wedges of points
round a part's outline with the rules of ``profiles._upper_station`` / ``profiles._sole_station`` (and
``_rim_top``). :mod:`.profiles_vec` ran each rule as one numpy pass over all wedges' entries laid end to end
(~60 passes over ~100 000 entries on a 40 000-point style reference, ~95 ms of the step's CPU for the three
sections of a pair). Here a compiled loop (numba, cached on disk, as :mod:`.icpkernel`) measures one station
at a time on its own entries:

- the wedges' members are found without sorting the angles: each point is tested against the few stations
  round its own angle with the bounds of :func:`.sections.wedge_index` (the same members; within a wedge in
  point order instead of angle order, which changes only the order of the sums);
- each rule is then a loop over the station's entries (a few hundred), percentiles by sorting the masked values
  of that station with ``profiles._pct``'s linear interpolation, and the same order of checks.

The sections equal the per-wedge rules' to ~1e-15 m (sums taken in another order;
``tests/deformation/test_deform_sectkernel.py`` compares them on values). A station whose patch normal has
no direction (where ``profiles._unit`` raises) makes the caller take the numpy path, which raises as before.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

__all__ = ["available", "upper_stations", "sole_stations", "warm_up"]

_lock = threading.Lock()
_compiled: list[Any] = []


def _kernel() -> Any:
    """The compiled loops, or None where numba cannot be imported (compiled once, cached on disk; the two
    threads of a pair may ask for them at once)."""
    with _lock:
        if not _compiled:
            _compiled.append(_compile())
        return _compiled[0]


def _compile() -> Any:
    try:
        import numba
    except ImportError:  # pragma: no cover - numba is a dependency
        return None
    from . import sectloops

    jit = numba.njit(nogil=True, cache=True, error_model="numpy")
    for name in sectloops.HELPERS:  # compiled globals before the loops that call them compile
        setattr(sectloops, name, jit(getattr(sectloops, name)))
    return jit(sectloops.members), jit(sectloops.upper), jit(sectloops.sole)


def available() -> bool:
    """Whether the compiled loops can be used."""
    return _kernel() is not None


def _members(theta: np.ndarray, n_stations: int, overlap: float) -> tuple[np.ndarray, np.ndarray]:
    """The wedges' members as :func:`.sections.wedge_index` bounds them: (indices (m,), starts (K + 1,))."""
    from .sections import station_angles

    half = overlap * np.pi / n_stations
    tk = station_angles(n_stations)
    lo, hi = tk - half, tk + half
    win = int(overlap / 2 + 0.5) + 1  # stations within this many of a point's own can hold it (one spare)
    return _kernel()[0](np.ascontiguousarray(theta, dtype=np.float64), lo, hi, 2 * np.pi / n_stations, win)


def _upper_constants(c: dict) -> np.ndarray:
    return np.array([c["MIN"], c["UP_COS"], c["EDGE_BAND"][0], c["EDGE_BAND"][1], c["BOTTOM_COS"], c["PLANE_COS"],
                     c["BIN"], c["SIDE_FIT"][0], c["SIDE_FIT"][1], c["EDGE_DEPTH"], c["NBINS"] * c["BIN"]],
                    dtype=np.float64)  # fmt: skip


def upper_stations(theta: np.ndarray, r: np.ndarray, P: np.ndarray, N: np.ndarray, E1: np.ndarray, z_top: float,
                   c: dict) -> tuple[dict, np.ndarray] | None:  # fmt: skip
    """``profiles._upper_station`` at every station (the wedges of ``theta``, :data:`.profiles.WEDGE_OVERLAP`).

    Args:
        theta, r: (n,) the points' outline angles and plan radii (``OutlineFrame.polar``).
        P, N: (n, 3) float64 points and unit normals (finite). E1: (K, 3) each station's outward plan direction.
        z_top: the upper's top level. c: the constants of :mod:`.profiles` (``_constants``).

    Returns:
        ({key: (K, ...) values, NaN where not measured}, (K,) bool measured), or None where a patch normal has no
        direction (the numpy path raises there).
    """
    K = len(E1)
    idx, starts = _members(theta, K, c["OVERLAP"])
    nb = int(c["NBINS"])
    out = {key: np.full((K, 3), np.nan) for key in ("edge", "corner", "n_b", "e1")}
    out["profile"], out["resid"] = np.full((K, nb), np.nan), np.full(K, np.nan)
    valid = np.zeros(K, dtype=bool)
    f64 = np.ascontiguousarray
    outs = (out["edge"], out["corner"], out["n_b"], out["e1"], out["profile"], out["resid"], valid)
    status = _kernel()[1](f64(P), f64(N), f64(r), idx, starts, f64(E1), float(z_top), _upper_constants(c), nb, *outs)
    return None if status else (out, valid)


def sole_stations(theta: np.ndarray, r: np.ndarray, P: np.ndarray, N: np.ndarray, E1: np.ndarray, z_tray: float,
                  c: dict) -> tuple[dict, np.ndarray] | None:  # fmt: skip
    """``profiles._sole_station`` at every station; arguments and result as :func:`upper_stations` (``z_tray``:
    the sole's tray level)."""
    K = len(E1)
    idx, starts = _members(theta, K, c["OVERLAP"])
    cst = np.array([c["MIN"], c["PLANE_COS"], c["RIM_CLUSTER"], c["RIM_RADIUS"], c["RIM_FACE_COS"], c["RIM_INSIDE"]],
                   dtype=np.float64)  # fmt: skip
    foot = np.array([[cos, band[0], band[1]] for cos, band in c["FOOTBED"]], dtype=np.float64)
    arr = np.full((K, 13), np.nan)
    valid = np.zeros(K, dtype=bool)
    f64 = np.ascontiguousarray
    if _kernel()[2](f64(P), f64(N), f64(r), idx, starts, f64(E1), float(z_tray), cst, foot, arr, valid):
        return None
    out = {"corner": arr[:, 0:3].copy(), "rim": arr[:, 3:6].copy(), "n_f": arr[:, 6:9].copy(),
           "height": arr[:, 9].copy(), "wall_len": arr[:, 9].copy(), "thickness": arr[:, 10].copy(),
           "resid": arr[:, 11].copy(), "body": arr[:, 12].copy()}  # fmt: skip
    return out, valid


def warm_up() -> None:
    """Load the compiled loops (from numba's disk cache; compiled the first time) on a tiny ring of points."""
    if not available():
        return
    from .profiles import _constants

    rng = np.random.default_rng(0)
    ang = rng.uniform(-np.pi, np.pi, 400)
    P = np.column_stack([0.1 * np.cos(ang), 0.04 * np.sin(ang), rng.uniform(0.0, 0.02, 400)])
    N = np.column_stack([np.cos(ang), np.sin(ang), np.zeros(400)]) * 0.6 + np.array([0.0, 0.0, 0.8])
    E1 = np.column_stack([np.cos(ang[:8]), np.sin(ang[:8]), np.zeros(8)])
    r = np.hypot(P[:, 0], P[:, 1])
    upper_stations(ang, r, P, N, E1, 0.02, _constants())
    sole_stations(ang, r, P, N, E1, 0.0, _constants())
