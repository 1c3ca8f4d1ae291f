"""The sole's sections and its reference's registration in a second thread beside the upper's (both cores).

``predict_attach`` registers the upper's reference and sections the upper, then (in
:func:`~.inputs.section_pair`) sections the sole's scan and blends it with its reference, registered and
sectioned in the scan's frame. The sole's chain (the scan's sections, then registering and sectioning its
reference) needs only the scan's points and its outline frame (the same function of the same points wherever
it runs). Inside :func:`sole_prefetch` it starts at once in a worker thread, the scan's sections first (the
caller needs them first); when :func:`~.inputs.section_pair` asks for the scan's sections, or
``blend_with_reference`` for the reference's, with the *same objects* (and a scan frame equal to the
worker's), it gets the worker's result (or its exception, raised at the same point as before, so the order of
the checks and their errors is unchanged). The two chains are balanced: the calling thread registers and
sections the upper (~90 ms of CPU), the worker sections the sole and its reference (~100 ms). Arguments are
matched by identity and the result lives only inside the ``with`` block, so nothing stale can be returned. The
KD-tree queries of the ICPs and numpy's large array loops release the GIL, so the two chains overlap.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gluecell.core.types import PartScan

__all__ = ["sole_prefetch", "lookup_reference_sections", "lookup_scan_sections", "lookup_check", "beside", "MISS"]

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
    scan: Future = field(default_factory=Future)  # the scan's own sections (sole_sections of its points)
    upper: PartScan | None = None  # given: the two scans' checks run here too, after the scan's sections
    checks: dict[str, Future] = field(default_factory=lambda: {"upper": Future(), "sole": Future()})


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


def lookup_scan_sections(points: np.ndarray, normals: np.ndarray, n_stations: int) -> Any:
    """The worker's ``sole_sections(points, normals, n_stations)`` for these very arrays, or :data:`MISS`;
    raises what the worker's call raised."""
    pre = _current()
    if pre is None or points is not pre.sole.points or normals is not pre.sole.normals:
        return MISS
    return pre.scan.result() if n_stations == pre.n_stations else MISS


def lookup_check(kind: str, scan: PartScan) -> Any:
    """The worker's ``check_upper_scan`` (``kind`` "upper") or ``check_sole_shape`` ("sole") of this very scan, as a
    future (its ``result()`` raises what the check raised), or :data:`MISS`."""
    pre = _current()
    if pre is None or pre.upper is None or scan is not (pre.upper if kind == "upper" else pre.sole):
        return MISS
    return pre.checks[kind]


def _settle(fut: Future, fn: Callable[..., Any], *args: Any) -> None:
    try:
        fut.set_result(fn(*args))
    except BaseException as exc:  # handed to the caller at the point it would have raised
        fut.set_exception(exc)


def _sole_chain(pre: _Prefetch) -> None:
    from .inputs import check_sole_shape, check_upper_scan
    from .profiles import sole_sections
    from .sections import outline_frame
    from .sole_reference import reference_sections

    frame = None
    try:  # first what the caller needs first: the scan's sections (in the frame it takes by default)
        frame = outline_frame(pre.sole.points)
        pre.scan.set_result(sole_sections(pre.sole.points, pre.sole.normals, pre.n_stations, frame=frame))
    except BaseException as exc:  # handed to the caller at the point it would have raised
        pre.scan.set_exception(exc)
    if pre.upper is not None:  # the checks the caller asks for after the upper's registration
        _settle(pre.checks["upper"], check_upper_scan, pre.upper)
        _settle(pre.checks["sole"], check_sole_shape, pre.sole)
    if pre.reference is None:
        return
    try:
        # the frame sole_sections gives the scan (the same function of the same points)
        frame = outline_frame(pre.sole.points) if frame is None else frame
        got = reference_sections(pre.sole, *pre.reference, frame, pre.n_stations, own_frame=True)
        pre.result.set_result((frame, got))
    except BaseException as exc:
        pre.result.set_exception(exc)


def beside(fn: Callable[..., Any], *args: Any, enabled: bool | None = None) -> Future:
    """``fn(*args)`` in the worker thread; its result (or exception) is the returned future's. ``enabled``
    (default :data:`ENABLED`) False: run here and now, the future holding the result or the exception (raised
    where the caller asks for it, as from the thread)."""
    if ENABLED if enabled is None else enabled:
        return _executor().submit(fn, *args)
    out: Future = Future()
    try:
        out.set_result(fn(*args))
    except Exception as exc:
        out.set_exception(exc)
    return out


@contextmanager
def sole_prefetch(sole: PartScan, n_stations: int, sole_reference: tuple[np.ndarray, np.ndarray] | None,
                  enabled: bool | None = None, upper: PartScan | None = None) -> Iterator[None]:  # fmt: skip
    """Within the block, ``sole`` is sectioned, and ``sole_reference`` (if any) registered onto it and sectioned,
    in a worker thread; :func:`~.inputs.scan_sole_sections` and :func:`~.sole_reference.blend_with_reference`
    called here with the same objects use that. ``upper`` given: ``check_upper_scan(upper)`` and
    ``check_sole_shape(sole)`` run there too, right after the scan's sections (:func:`lookup_check`; the caller
    registers the upper's reference meanwhile). ``enabled`` (default :data:`ENABLED`) False or a block inside
    another: no thread."""
    if not (ENABLED if enabled is None else enabled) or _current() is not None:
        yield
        return
    pre = _Prefetch(sole, n_stations, sole_reference, upper=upper)
    done = _executor().submit(_sole_chain, pre)
    _local.prefetch = pre
    try:
        yield
    finally:
        _local.prefetch = None
        done.result()
