"""Choose the first-ring offset and the ring step from the deposition model's cross profile.

A long straight pass over a flat plate gives the film across the stripe (1-D, cheap). From it:
the distance the trace reaches towards the bite line (so the first ring's offset keeps every trace
below the line) and the largest ring step whose overlapping stripes stay above the covered film.
The 3-D check over the real part (:func:`gluecell.pathplan.deposition.film_thickness`) follows in
the pipeline and corrects the offset if the curved part spreads the spray further.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np

from .deposition import DepositionParams, SpraySamples, film_thickness
from .errors import NonFiniteError
from .toolpath import BondRegion

__all__ = ["CrossProfile", "RingDesign", "cross_profile", "design_rings", "local_bumps", "attribute_overshoot",
           "gaps_away_from_line", "film_excess_moves", "clamp_local", "move_all", "main_bump", "next_moves",
           "MAX_LOCAL", "MAX_MAIN_MIN"]  # fmt: skip

#: Largest outward move (m) of the edge passes along a stretch of the line. Farther out they stop being edge
#: passes (the first main pass lies ~10 mm out); glue that still lands beyond the line then is not theirs to
#: fix (on pair 00001 of the demo: a sole wall point the region put on the wrong side of the rim), and the
#: plan is refused (``CoverageError``). Also keeps every spec within ``contour_offset``'s 0-20 mm check.
MAX_LOCAL = 0.010
#: Largest lowest offset (m) of the first main pass: the contour rings span 35 mm (``PartPipelineConfig``),
#: so a first main pass beyond 25 mm leaves no band to cover; such a plan is refused instead.
MAX_MAIN_MIN = 0.025


@dataclass(frozen=True)
class CrossProfile:
    """Film (k,) metres at signed positions x (k,) metres across a straight pass (x < 0: towards the line)."""

    x: np.ndarray
    film: np.ndarray

    def reach(self, level: float) -> float:
        """How far (metres, >= 0) towards negative x the film stays at or above ``level``."""
        idx = np.flatnonzero(self.film >= level)
        return float(max(-self.x[idx].min(), 0.0)) if idx.size else 0.0


@functools.lru_cache(maxsize=64)
def cross_profile(standoff: float, tilt_deg: float, speed: float, params: DepositionParams) -> CrossProfile:
    """Film across a straight pass on a flat plate, the nozzle tilted ``tilt_deg`` towards +x (the bond side).

    Args:
        standoff: metres along the nozzle axis. speed: m/s tip speed.
    """
    a = np.deg2rad(tilt_deg)
    axis = np.array([np.sin(a), 0.0, -np.cos(a)])
    tip0 = -standoff * axis  # the axis hits the plate at the origin
    ys = np.arange(-0.08, 0.08, 5e-4)
    tip = np.column_stack([np.full(len(ys), tip0[0]), ys, np.full(len(ys), tip0[2])])
    k = len(ys)
    samples = SpraySamples(tip, np.tile(axis, (k, 1)), np.tile([0.0, 1.0, 0.0], (k, 1)), np.full(k, 5e-4 / speed))
    x = np.arange(-0.03, 0.03, 5e-5)
    pts = np.column_stack([x, np.zeros_like(x), np.zeros_like(x)])
    nrm = np.tile([0.0, 0.0, 1.0], (len(x), 1))
    return CrossProfile(x, film_thickness(samples, pts, nrm, params, max_standoff=standoff * 1.5 + 0.01))


def _largest_gap_free(fixed: np.ndarray, x: np.ndarray, film: np.ndarray, start: float, need: float,
                      max_d: float) -> float:  # fmt: skip
    """Largest shift d <= max_d of ``film`` so that fixed(x) + film(x - d) >= need over [start, d]."""
    d = max_d
    while d > start + 1e-3:
        grid = np.arange(start, d, 1e-4)
        tot = fixed(grid) + np.interp(grid - d, x, film, left=0, right=0)
        if tot.min() >= need:
            return d
        d -= 2e-4
    return start + 1e-3


@dataclass(frozen=True)
class RingDesign:
    """Ring offsets (metres, ascending), how many of them are edge passes, the step after the last one,
    and the offset that separates edge passes from main ones (for the standoff/speed modifiers)."""

    offsets: tuple[float, ...]
    n_edge: int
    step: float
    edge_within: float


@functools.lru_cache(maxsize=64)
def design_rings(
    edge: tuple[float, float], main: tuple[float, float], params: DepositionParams, margin: float, max_step: float,
    min_extent: float = 0.012, main_min: float = 0.0, edge_target: float | None = None,
) -> RingDesign:  # fmt: skip
    """Rings beside the boundary so that no pass's trace crosses it and no gap between passes stays uncovered.

    Args:
        edge, main: (standoff m, speed m/s) of edge passes (close, sharp) and main passes.
        margin: every pass's trace level is kept this far inside the line (metres).
        main_min: the first main pass lies at least this far out (metres; the 3-D check found the main
            passes' tails reach further than on a flat plate); edge passes fill the gap.
        max_step: upper bound of the main ring step. min_extent: design rings at least this far out.
        edge_target: if given (metres), the first edge ring is placed so that its *covered* film edge sits this
            far inside the line (its faint tail may then cross it; the pipeline bounds that with the visible
            level); otherwise its trace stays ``margin`` inside.
    Edge rings are placed from the line outwards until a main pass, placed as far out as the film
    between it and the last ring allows, keeps its own trace inside the line.
    """
    e = cross_profile(edge[0], 0.0, edge[1], params)
    m = cross_profile(main[0], 0.0, main[1], params)
    need = 1.25 * params.covered_mm * 1e-3
    t_main = max(m.reach(params.trace_mm * 1e-3) + margin, main_min)
    first = e.reach(params.trace_mm * 1e-3) + margin
    if edge_target is not None:
        first = e.reach(params.covered_mm * 1e-3) + edge_target
    offsets = [first]
    n_edge = 1

    def shifted(prof: CrossProfile, d: float):
        return lambda g: np.interp(g - d, prof.x, prof.film, left=0, right=0)

    while True:
        prev = shifted(e if len(offsets) <= n_edge else m, offsets[-1])
        d_main = _largest_gap_free(prev, m.x, m.film, offsets[-1], need, offsets[-1] + max_step)
        if d_main >= t_main or n_edge >= 8:
            offsets.append(max(d_main, t_main))
            break
        offsets.append(_largest_gap_free(prev, e.x, e.film, offsets[-1], need, offsets[-1] + max_step))
        n_edge += 1
    step = main_step(m, max_step, need)
    while offsets[-1] < min_extent:
        offsets.append(offsets[-1] + step)
    edge_within = 0.5 * (offsets[n_edge - 1] + offsets[n_edge])
    return RingDesign(tuple(offsets), n_edge, step, edge_within)


def local_bumps(local: np.ndarray, s: np.ndarray, over: np.ndarray, perimeter: float, extra: float) -> np.ndarray:
    """Add each glued spot's overshoot (plus ``extra``), metres, to its stretch of the boundary and both neighbours."""
    q = len(local)
    need = np.zeros(q)
    b = (np.asarray(s) / perimeter * q).astype(int) % q
    for shift in (-1, 0, 1):
        np.maximum.at(need, (b + shift) % q, np.nan_to_num(np.asarray(over, dtype=float), nan=MAX_LOCAL))
    return clamp_local(local + np.where(need > 0, need + extra, 0.0))


def clamp_local(local: np.ndarray) -> np.ndarray:
    """Local edge-pass moves (q,) metres kept within 0..``MAX_LOCAL`` (+inf -> the cap: as far out as allowed).

    Raises:
        NonFiniteError: a NaN or -inf move (it would have become 0: the pass back at the line).
    """
    local = np.asarray(local, dtype=float)
    bad = np.isnan(local) | np.isneginf(local)
    if np.any(bad):
        raise NonFiniteError(f"tuning: {int(bad.sum())} of {local.size} local edge-pass moves are NaN/-inf; the "
                             "pass cannot be placed safely", what="local edge-pass moves")  # fmt: skip
    return np.clip(np.where(np.isposinf(local), MAX_LOCAL, local), 0.0, MAX_LOCAL)


def move_all(local: np.ndarray, over_mm: float, extra: float) -> np.ndarray:
    """Every stretch of the edge passes moved out by ``over_mm`` (mm) plus ``extra`` (m), within the cap.

    A NaN or infinite overshoot moves them to the cap (the glue's reach is unknown: be safe).
    """
    over = float(over_mm) * 1e-3 if np.isfinite(over_mm) else MAX_LOCAL
    return clamp_local(np.asarray(local, dtype=float) + max(over, 0.0) + extra)


def main_bump(current: float, main_now: float, over_mm: float, extra: float) -> float:
    """New lowest offset (m) of the first main pass: its present offset ``main_now`` (m) plus the overshoot
    ``over_mm`` (mm) and ``extra`` (m), never below ``current`` and at most ``MAX_MAIN_MIN``; unchanged when
    nothing overshoots, NaN-safe (a NaN overshoot moves it to the cap)."""
    cur = float(np.nan_to_num(current, nan=0.0))
    if not over_mm > 0 and not np.isnan(over_mm):
        return min(cur, MAX_MAIN_MIN)
    if not np.isfinite(over_mm):
        return MAX_MAIN_MIN
    want = float(np.nan_to_num(main_now, nan=0.0)) + float(over_mm) * 1e-3 + extra
    return float(min(max(cur, want), MAX_MAIN_MIN))


def attribute_overshoot(
    region: BondRegion, films: np.ndarray, level: float, allow: float, edge_share: float | None = None
) -> tuple[float, float, np.ndarray, np.ndarray]:
    """How far (mm) to move the edge passes and the other passes away from the boundary, and where.

    ``films`` (3, n) metres: film of the edge passes, the other passes and the rest (``filmcheck.spray_labels``) over
    the region's points; ``level`` (metres) the film that counts, ``allow`` (metres) how far beyond the line
    it may land (overshoots are measured past that). A spot counts against a class where that class alone
    crosses the level, or where only the sum does and that class lays more of the film there.
    With ``edge_share`` a spot where only the sum crosses the level counts against the edge passes too when
    they lay at least that share of the level there (the first round's guess, :func:`next_moves`).
    Returns the two overshoots (mm) and, for the edge passes, the arc length along the boundary (m) and overshoot (m) of
    every spot they glue.
    """
    beyond = (region.signed < -allow) & (region.signed > -0.03)
    signed, s = region.signed[beyond] + allow, region.s[beyond]
    films = films[:2, beyond]
    hit = (films[0] + films[1]) >= level
    edge_more = films[0] >= films[1]
    # a spot counts against a class where that class alone crosses the level, or where only the sum does and
    # that class lays more of the film there (edge and main tails that add up beside the line: moving only the
    # edge passes' own few overshooting spots left the sum 0.2-0.3 mm over, round after round, until every pass
    # moved out by the whole overshoot and the dry strip widened all round)
    e_hit = (films[0] >= level) | (hit & edge_more)
    if edge_share is not None:
        e_hit |= hit & (films[0] >= edge_share * level)
    m_hit = (films[1] >= level) | (hit & ~edge_more)
    over = [float(-signed[h].min() * 1e3) if np.any(h) else 0.0 for h in (e_hit, m_hit)]
    return over[0], over[1], s[e_hit], -signed[e_hit]


def film_excess_moves(region: BondRegion, films: np.ndarray, level: float, allow: float, covered: float,
                      span: float, edge_share: float | None = None) -> np.ndarray:  # fmt: skip
    """For each spot :func:`attribute_overshoot` lays on the edge passes (same order as its arcs), how far (m) the
    edge film must move out for the spot's film to fall to ``level``: the design puts the ``covered`` level
    ``span`` inside the line where the film is at ``level``, so the film falls by covered / level over ``span``
    (log-linear between them): ``span * ln(film / level) / ln(covered / level)``.

    A spot just past the line with several times the visible film (world-2 seed 7000, upper 00014: 10-64 um
    0.01-0.03 mm beyond the line at the closed rings' seam) moved only its 0.02 mm distance plus the round's
    extra each round and was still over after 6 rounds (refused "0.02 mm beyond"): ln(64 / 10) / ln(5) x 0.5 mm
    = 0.58 mm in one round.
    """
    beyond = (region.signed < -allow) & (region.signed > -0.03)
    f = films[:2, beyond]
    hit = (f[0] + f[1]) >= level
    e_hit = (f[0] >= level) | (hit & (f[0] >= f[1]))
    if edge_share is not None:  # the same spots as attribute_overshoot's with the first round's share
        e_hit |= hit & (f[0] >= edge_share * level)
    tot = np.maximum(f[0] + f[1], level)[e_hit]
    return span * np.log(tot / level) / np.log(covered / level)


def gaps_away_from_line(region: BondRegion, film: np.ndarray, band: np.ndarray, area: np.ndarray,
                         dep: DepositionParams, near: float = 5e-3) -> float:  # fmt: skip
    """Uncovered fraction of the band farther than ``near`` (metres) from the boundary."""
    far_gap = band & (region.signed > near) & (film < dep.covered_mm * 1e-3)
    return float(area[far_gap].sum() / max(area[band].sum(), 1e-12))


def next_moves(region: BondRegion, films: np.ndarray, level: float, allow_mm: float, above_mm: float,
               design: RingDesign | None, tun: Any, r: int, local: np.ndarray,
               bump: tuple[float, float], covered: float = 0.0
               ) -> tuple[np.ndarray, tuple[float, float]] | None:  # fmt: skip
    """Where glue lands beyond the line (``films`` (3, n) per pass class, ``level`` and ``allow_mm`` as for
    :func:`attribute_overshoot`; ``above_mm`` the worst overshoot, ``tun`` the pipeline's ``TuningConfig``, ``r``
    the round): the edge passes' local moves and the first main pass's lowest offset for the next round,
    every value finite and within the planner's limits; None if nothing can move any more. With ``covered``
    (metres, the covered film level) an edge spot moves at least as far as its film needs to fall to ``level``
    (:func:`film_excess_moves`), not only by its distance beyond the line."""
    first = r == 0 and (tun.first_main_gain != 1.0 or tun.first_edge_share < 1.0)
    share = tun.first_edge_share if first else None
    e_over, m_over, e_s, e_d = attribute_overshoot(region, films, level, allow_mm * 1e-3, share)
    if first:  # the first round's step (see TuningConfig.first_main_gain)
        m_over *= tun.first_main_gain
    if covered > level and design is not None and e_s.size:
        e_d = np.maximum(e_d, film_excess_moves(region, films, level, allow_mm * 1e-3, covered,
                                                 tun.edge_target_mm * 1e-3, share))  # fmt: skip
    # the design margin is already in; move by the overshoot and a bit, more each round (a few spots whose glue
    # comes from the next stretch stayed 0.05-0.14 mm over for 6 rounds at a fixed 0.05 mm: a refusal)
    step = tun.bump_extra_mm * 1e-3 * (1 + r)
    main_now = design.offsets[design.n_edge] if design is not None else 0.0
    for whole in (False, True) if r < tun.rounds // 2 else (True,):
        if whole:  # not settled by now (or nothing local left to move): every pass moves by the whole overshoot
            e_over = m_over = max(e_over, m_over, above_mm - allow_mm)
            new_local = move_all(local, e_over, step)
        else:  # edge passes move out only where their glue crosses the line
            new_local = local_bumps(local, e_s, e_d, region.perimeter, step) if e_over > 0 else clamp_local(local)
        new_bump = (0.0, main_bump(bump[1], main_now, m_over, step))
        if not (np.array_equal(new_local, local) and new_bump == bump):
            return new_local, new_bump
    return None


def main_step(m: Any, max_step: float, need: float) -> float:
    """The widest ring step (m, from ``max_step`` down by 5 %) at which the main passes' summed flat-plate film
    ``m`` (``.x``, ``.film``) stays >= ``need`` (m) everywhere between two rings."""
    step = max_step
    while step > 1e-3:
        grid = np.arange(0, step, 1e-4)
        tot = sum(np.interp(grid + k * step, m.x, m.film, left=0, right=0) for k in range(-8, 9))
        if tot.min() >= need:
            break
        step *= 0.95
    return step
