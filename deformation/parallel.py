"""The sole reference's registration in a second thread while the upper's reference is registered (both cores).

``predict_attach`` registers the upper's reference and sections the upper, then (in
:func:`~.inputs.section_pair`) sections the sole's scan and blends it with its reference, registered and
sectioned in the scan's frame. Registering and sectioning the sole's reference is the longest piece, and needs
only the scan's points and its outline frame (the same function of the same points wherever it runs). Inside
:func:`sole_prefetch` it starts at once in a worker thread (:func:`~.sole_reference.reference_sections`);
when ``blend_with_reference`` later asks for it with the *same objects* and a scan frame equal to the worker's,
it gets the worker's result (or its exception, raised at the same point as before, so the order of the checks
and their errors is unchanged). Arguments are matched by identity and the result lives only inside the
``with`` block, so nothing stale can be returned. The KD-tree queries of the ICPs and numpy's large array loops
release the GIL, so the two chains overlap.
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

__all__ = ["sole_prefetch", "lookup_reference_sections", "MISS"]

#: Register and section the sole's reference in a worker thread (False: everything in the calling thread).
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
    result: Future = field(default_factory=Future)


def _executor() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gluecell-sole")
        return _pool


def _current() -> _Prefetch | None:
    return getattr(_local, "prefetch", None)


def lookup_reference_sections(scan: PartScan, ss: Any, ref_points: np.ndarray, ref_normals: np.ndarray) -> Any:
    """The worker's :func:`~.sole_reference.reference_sections` for these very objects, sectioned in the frame of
    ``ss`` (compared field by field), or :data:`MISS`; raises what the worker's call raised."""
    pre = _current()
    if pre is None or pre.reference is None or scan is not pre.sole or len(ss.theta) != pre.n_stations:
        return MISS
    if ref_points is not pre.reference[0] or ref_normals is not pre.reference[1]:
        return MISS
    frame, got = pre.result.result()
    f = ss.frame
    same = (np.array_equal(f.centre, frame.centre) and np.array_equal(f.u, frame.u) and np.array_equal(f.v, frame.v)
            and f.half_length == frame.half_length and f.half_width == frame.half_width)  # fmt: skip
    return got if same else MISS


def _sole_chain(pre: _Prefetch) -> None:
    from .sections import outline_frame
    from .sole_reference import reference_sections

    try:
        # the frame sole_sections gives the scan (the same function of the same points), computed here too
        frame = outline_frame(pre.sole.points)
        pre.result.set_result((frame, reference_sections(pre.sole, *pre.reference, frame, pre.n_stations)))
    except BaseException as exc:  # handed to the caller at the point it would have raised
        pre.result.set_exception(exc)


@contextmanager
def sole_prefetch(sole: PartScan, n_stations: int, sole_reference: tuple[np.ndarray, np.ndarray] | None,
                  enabled: bool | None = None) -> Iterator[None]:  # fmt: skip
    """Within the block, ``sole_reference`` is being registered onto ``sole`` and sectioned in a worker thread;
    :func:`~.sole_reference.blend_with_reference` called here with the same objects uses that. ``enabled``
    (default :data:`ENABLED`) False, no reference, or a block inside another: no thread."""
    if not (ENABLED if enabled is None else enabled) or _current() is not None:
        yield
        return
    if sole_reference is None:  # nothing to do beside the scan's own sections
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
