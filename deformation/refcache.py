"""What the deformation step derives from a style reference, kept per reference for the next pair of the style.

A cell predicts pair after pair of one style with the same nominal upper and sole (the style library hands
out the same arrays: :func:`gluecell.cell.sim.references.nominal_upper` caches them). What depends on the
reference alone is computed once here: the points a camera above would see (the ICP's source), the sole's
outline frame and top level (its pre-alignment), and a KD-tree of the reference's points. The cache is keyed
by the *identity* of the (points, normals) arrays and holds them, so an entry can only be found again with the
very same arrays (a new array, even with equal values, is a new entry); it keeps the :data:`MAX_ENTRIES` last
references used. A registered (moved) reference is remembered with its pose, so that a KD-tree query on the
moved points is answered by the cached tree of the unmoved ones (distances are unchanged by a rigid motion).
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["ReferenceEntry", "reference_entry", "remember_moved", "moved_tree", "MovedTree", "clear", "MAX_ENTRIES"]

#: References kept: an upper and a sole per style x size x side in use (32 of them; ~1.5 MB each besides the
#: reference itself, which the cache holds too). With 16, a bench cycling through 14 pairs of different sizes
#: evicted every entry before its next use.
MAX_ENTRIES = 64
_lock = threading.Lock()
_entries: OrderedDict[tuple[int, int], ReferenceEntry] = OrderedDict()
_moved: dict[int, tuple[weakref.ref, ReferenceEntry, np.ndarray]] = {}


@dataclass
class ReferenceEntry:
    """One reference's derived data (each computed on first use)."""

    points: np.ndarray
    normals: np.ndarray
    _memo: dict[str, Any] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def get(self, name: str, make: Any) -> Any:
        """The value ``name``, made by ``make()`` the first time."""
        with self._lock:
            if name not in self._memo:
                self._memo[name] = make()
            return self._memo[name]

    def seen(self, max_points: int) -> np.ndarray:
        """``seen_sample(points, normals, max_points)`` (:func:`~.reference.seen_sample`)."""
        from .reference import seen_sample

        return self.get(f"seen{max_points}", lambda: seen_sample(self.points, self.normals, max_points))

    def tree(self) -> Any:
        """A KD-tree of the points."""
        from scipy.spatial import cKDTree

        return self.get("tree", lambda: cKDTree(self.points, balanced_tree=False, compact_nodes=False))


def reference_entry(points: np.ndarray, normals: np.ndarray) -> ReferenceEntry:
    """The cache entry of the reference (``points``, ``normals``), by identity of the two arrays."""
    key = (id(points), id(normals))
    with _lock:
        entry = _entries.get(key)
        if entry is not None and entry.points is points and entry.normals is normals:
            _entries.move_to_end(key)
            return entry
        entry = ReferenceEntry(points, normals)
        _entries[key] = entry
        while len(_entries) > MAX_ENTRIES:
            _entries.popitem(last=False)
        return entry


def remember_moved(moved: np.ndarray, entry: ReferenceEntry, T: np.ndarray) -> None:
    """Record that ``moved`` is ``entry``'s points moved by the rigid (4, 4) ``T`` (kept while ``moved`` lives)."""
    with _lock:
        for k in [k for k, (ref, _, _) in _moved.items() if ref() is None]:
            del _moved[k]
        _moved[id(moved)] = (weakref.ref(moved), entry, np.array(T, dtype=np.float64))


class MovedTree:
    """KD-tree queries on a moved reference, answered by the unmoved reference's tree (query points moved back)."""

    def __init__(self, tree: Any, T: np.ndarray) -> None:
        self.tree, self.R, self.t = tree, T[:3, :3], T[:3, 3]

    def query(self, x: np.ndarray, *args: Any, **kw: Any) -> tuple[np.ndarray, np.ndarray]:
        """As ``cKDTree.query`` on the moved points."""
        return self.tree.query((np.asarray(x) - self.t) @ self.R, *args, **kw)


def moved_tree(points: np.ndarray) -> MovedTree | None:
    """A KD-tree of ``points`` when they are a registered reference (:func:`remember_moved`), else None."""
    with _lock:
        got = _moved.get(id(points))
    if got is None or got[0]() is not points:
        return None
    return MovedTree(got[1].tree(), got[2])


def clear() -> None:
    """Forget every reference (tests)."""
    with _lock:
        _entries.clear()
        _moved.clear()
