"""The sole's half of a prediction in a second thread while the upper's half runs (both cores).

``predict_attach`` registers the upper's reference and sections the upper, then (in
:func:`~.inputs.section_pair`) sections the sole and blends it with its reference: two independent chains of
about the same length. Inside :func:`sole_prefetch` the sole's chain (:func:`~.profiles.sole_sections` of the
scan, then :func:`~.sole_reference.blend_with_reference`) starts at once in a worker thread; when
``section_pair`` later asks for them with the *same objects* it gets the worker's result (or its exception,
raised at the same point as before, so the order of the checks and their errors is unchanged). Arguments are
matched by identity and the results live only inside the ``with`` block, so nothing stale can be returned.
The KD-tree queries of the ICP and numpy's large array loops release the GIL, so the two chains overlap.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gluecell.core.types import PartScan

__all__ = ["sole_prefetch", "lookup_sections", "lookup_blend", "MISS"]

#: Run the sole's chain in a worker thread (False: everything in the calling thread, as before).
ENABLED = True
#: Returned by the lookups when no prefetched result matches.
MISS = object()
_local = threading.local()
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


@dataclass
class _Prefetch:
    sole: PartScan
    n_stations: int
    reference: tuple[np.ndarray, np.ndarray] | None
    sections: Future = field(default_factory=Future)
    blend: Future = field(default_factory=Future)


def _executor() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gluecell-sole")
        return _pool


def _current() -> _Prefetch | None:
    return getattr(_local, "prefetch", None)


def lookup_sections(points: np.ndarray, normals: np.ndarray, n_stations: int, frame: Any) -> Any:
    """The prefetched :func:`~.profiles.sole_sections` of these very arrays, or :data:`MISS`; raises what the
    prefetched call raised."""
    pre = _current()
    if pre is None or frame is not None or n_stations != pre.n_stations:
        return MISS
    if points is not pre.sole.points or normals is not pre.sole.normals:
        return MISS
    return pre.sections.result()


def lookup_blend(scan: PartScan, ss: Any, ref_points: np.ndarray, ref_normals: np.ndarray) -> Any:
    """The prefetched :func:`~.sole_reference.blend_with_reference` of these very objects, or :data:`MISS`."""
    pre = _current()
    if pre is None or pre.reference is None or scan is not pre.sole:
        return MISS
    if ref_points is not pre.reference[0] or ref_normals is not pre.reference[1]:
        return MISS
    if pre.sections.exception() is not None or ss is not pre.sections.result():
        return MISS
    return pre.blend.result()


def _sole_chain(pre: _Prefetch) -> None:
    from .profiles import sole_sections
    from .sole_reference import blend_with_reference

    try:
        ss = sole_sections(pre.sole.points, pre.sole.normals, pre.n_stations)
    except BaseException as exc:  # handed to the caller at the point it would have raised
        pre.sections.set_exception(exc)
        pre.blend.set_exception(exc)
        return
    pre.sections.set_result(ss)
    if pre.reference is None:
        pre.blend.set_result(None)
        return
    try:
        pre.blend.set_result(blend_with_reference(pre.sole, ss, *pre.reference))
    except BaseException as exc:  # likewise
        pre.blend.set_exception(exc)


@contextmanager
def sole_prefetch(sole: PartScan, n_stations: int, sole_reference: tuple[np.ndarray, np.ndarray] | None,
                  enabled: bool | None = None) -> Iterator[None]:  # fmt: skip
    """Within the block, the sole's sections (and their blend with ``sole_reference``) are being computed in a
    worker thread; :func:`~.profiles.sole_sections` and :func:`~.sole_reference.blend_with_reference` called
    here with the same objects return them. ``enabled`` (default :data:`ENABLED`) False, or a block inside
    another: no thread."""
    if not (ENABLED if enabled is None else enabled) or _current() is not None:
        yield
        return
    pre = _Prefetch(sole, n_stations, sole_reference)
    done = _executor().submit(_sole_chain, pre)
    _local.prefetch = pre
    try:
        yield
    finally:
        _local.prefetch = None
        done.result()
