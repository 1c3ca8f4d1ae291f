"""The two parts of a pair as ring grids: the lasted upper and the free cup sole (part frames).

Upper (part frame of its last, as worn, metres): the last's outer surface offset along its
normals by the leather thickness on the sides; on the bottom by the insole board plus, within the
lasting margin, the folded leather (skived to nothing over ``margin_skive_m``); around the
feather-edge corner by a blend of both. The feather edge is the 45° line of the rounded corner.

Sole (its own part frame, as worn: tread down, z = 0 at the tread, x/y as the last): designed on
the *nominal* upper (nominal leather thickness, smooth bottom at the margin level), flattened (less
toe spring and crown), scaled by the hidden undersize and shrinkage. Its grid runs from the
footbed centre out to the inner corner, up the inner sidewall to the rim, over the rim, down the
outer wall, round the bottom edge and in across the tread.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.interpolate import PchipInterpolator

from .config import WorldConfig
from .last import LastGrid, grid_normals, rocker
from .params import SampleParams

__all__ = ["upper_grid", "SoleGrid", "sole_grid", "sole_warp", "column_arc", "points_at_arc", "sidewall_design_height"]

#: Inner-wall rings of the sole between the feather edge and the rim.
N_WALL = 16
#: Rounding radius of the sole's bottom edge (chosen).
SOLE_EDGE_RADIUS_M = 0.002


def _smooth_taper(e: np.ndarray, margin: float, skive: float) -> np.ndarray:
    """1 inside the lasting margin (edge distance e <= margin), cosine taper to 0 over the skive."""
    u = np.clip((e - margin) / skive, 0.0, 1.0)
    return 0.5 * (1.0 + np.cos(np.pi * u))


def upper_grid(
    last: LastGrid,
    thickness: float,
    cfg: WorldConfig,
    smooth_bottom: bool = False,
    lasting_modes: tuple[tuple[float, float], ...] = (),
    params: SampleParams | None = None,
) -> np.ndarray:
    """(M, N, 3) outer surface of the lasted upper in the part frame.

    Args:
        last: the last.
        thickness: leather thickness, metres.
        cfg: insole board, lasting margin and skive.
        smooth_bottom: True for the bottom *at the margin level everywhere* (the shape a footbed is
            designed for, with the cavity inside the margin filled).
        lasting_modes: ((amp_m, phase_rad), ...) for perimeter orders 2, 3, ...: deviation of the
            side along its normal (uneven lasting), faded in over the feather-edge corner.
        params: round-2 variation of this pair (None: none): toe/heel fullness and loose waist lasting
            (side, faded in over the corner like the modes), the last copy (every ring, along the normal)
            and the feather-edge/bottom bumps (vertical, the margin and the corner, faded out up the side).
    """
    pts = last.points
    nrm = grid_normals(pts)
    nb = last.n_bottom
    off = np.empty(pts.shape[:2])
    edge_dist = (1.0 - last.bottom_s)[:, None] * np.linalg.norm(last.outline - last.spine, axis=1)[None, :]
    w = np.ones_like(edge_dist) if smooth_bottom else _smooth_taper(edge_dist, cfg.lasting_margin_m, cfg.margin_skive_m)
    off[:nb] = cfg.insole_thickness_m + thickness * w
    nc = len(last.corner_alpha)
    off[nb : nb + nc] = thickness + cfg.insole_thickness_m * np.cos(last.corner_alpha)[:, None] ** 2
    off[nb + nc :] = thickness
    if lasting_modes:
        theta = 2.0 * np.pi * np.arange(pts.shape[1]) / pts.shape[1]
        dev = sum(a * np.cos((k + 2) * theta + ph) for k, (a, ph) in enumerate(lasting_modes))
        fade = np.concatenate([np.zeros(nb), np.sin(last.corner_alpha) ** 2, np.ones(len(pts) - nb - nc)])
        off = off + fade[:, None] * dev[None, :]
    if params is None:
        return pts + off[..., None] * nrm
    from .variation import feather_offset, last_copy_offset, upper_side_offset

    fade = np.concatenate([np.zeros(nb), np.sin(last.corner_alpha) ** 2, np.ones(len(pts) - nb - nc)])
    off = off + fade[:, None] * upper_side_offset(last.outline, last.length_m, params)[None, :]
    off = off + last_copy_offset(last.outline, last.length_m, tuple(params.last_copy_m))[None, :]
    out = pts + off[..., None] * nrm
    # bottom/feather bumps: down (as worn) by b inside the margin and over the corner, fading up the side
    b = feather_offset(pts.shape[1], params)
    if np.any(b):
        rise = np.maximum(column_arc(pts, last.j_feather), 0.0)
        u = np.clip(rise / cfg.feather_bump_fade_m, 0.0, 1.0)
        taper = _smooth_taper(edge_dist, cfg.lasting_margin_m, cfg.margin_skive_m)
        corner = np.ones((last.j_feather - nb, pts.shape[1]))
        weight = np.concatenate([taper, corner, 1.0 - u * u * (3.0 - 2.0 * u)])
        out[..., 2] -= weight * b[None, :]
    return out


def column_arc(grid: np.ndarray, j0: int) -> np.ndarray:
    """(M - j0, N) cumulative arc length up each column from ring j0, metres."""
    seg = np.linalg.norm(np.diff(grid[j0:], axis=0), axis=2)
    return np.concatenate([np.zeros((1, grid.shape[1])), np.cumsum(seg, axis=0)], axis=0)


def points_at_arc(grid: np.ndarray, j0: int, arc: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Points on each column at arc lengths ``targets`` from ring j0 (linear along column edges).

    Args:
        grid: (M, N, 3) ring grid.
        j0: start ring.
        arc: (M - j0, N) from :func:`column_arc`.
        targets: (K, N) arc lengths, metres (clipped to the column).

    Returns:
        (K, N, 3) points and (K, N) float ring coordinate (j0 + fractional band index).
    """
    k, n = targets.shape
    m = arc.shape[0]
    t = np.clip(targets, 0.0, arc[-1][None, :])
    # one sorted search over all columns: shift each column's arcs by a large column offset
    big = float(arc[-1].max()) + 1.0
    flat = (arc + big * np.arange(n)[None, :]).T.ravel()
    pos = np.searchsorted(flat, (t + big * np.arange(n)[None, :]).ravel(), side="right") - 1
    b = np.clip(pos.reshape(k, n) - m * np.arange(n)[None, :], 0, m - 2)
    cols = np.broadcast_to(np.arange(n)[None, :], (k, n))
    a0, a1 = arc[b, cols], arc[b + 1, cols]
    f = (t - a0) / np.maximum(a1 - a0, 1e-12)
    p0, p1 = grid[j0 + b, cols], grid[j0 + b + 1, cols]
    return p0 + f[..., None] * (p1 - p0), j0 + b + f


def sidewall_design_height(last: LastGrid) -> np.ndarray:
    """(N,) design sidewall height (inner wall arc above the feather edge) of each station, m."""
    heel, side, toe = last.spec.sidewall_heights_m
    x0 = last.outline[:, 0].min()
    xf = np.clip((last.outline[:, 0] - x0) / last.length_m, 0.0, 1.0)
    f = PchipInterpolator((0.0, 0.12, 0.35, 0.70, 0.92, 1.0), (heel, heel, side, side, toe, toe))
    return f(xf)


@dataclass(frozen=True)
class SoleGrid:
    """The free sole as a ring grid in its part frame (metres) with the ring bookkeeping.

    Attributes:
        points: (M_s, N, 3) ring grid.
        j_feather: ring of the inner corner's 45° line (rings 0..j_feather mirror the upper's).
        j_rim_in: ring of the rim's inner edge (inner wall = rings j_feather..j_rim_in).
        j_rim_out: ring of the rim's outer edge.
        j_outer_fe: ring of the outer wall at the feather-edge level.
        j_tread_edge: ring of the tread's outer edge (tread rings follow, scales ``tread_s``).
        wall_thickness: (N_WALL + 1, N) horizontal sidewall thickness at each inner-wall ring, metres (free).
        free_height: (N,) inner-wall arc length from the feather edge to the rim, metres (free).
        floor_thickness: (j_feather + 1, N) footbed-to-tread thickness under footbed rings, metres.
        z_shift: part-frame z of the sole = upper-frame z + z_shift (before scaling).
        scale: linear scale applied about the sole frame's origin.
    """

    points: np.ndarray
    j_feather: int
    j_rim_in: int
    j_rim_out: int
    j_outer_fe: int
    j_tread_edge: int
    wall_thickness: np.ndarray
    free_height: np.ndarray
    floor_thickness: np.ndarray
    z_shift: float
    scale: float


def _sidewall_error(n: int, params: SampleParams) -> np.ndarray:
    t = 2.0 * np.pi * np.arange(n) / n
    err = np.full(n, params.sidewall_height_error_m)
    for order, (amp, ph) in zip((2, 3), params.sidewall_modes):
        err += amp * np.cos(order * t + ph)
    return err


def _wall_thickness(inner_wall: np.ndarray, nh: np.ndarray, w_top_base: tuple[float, float]) -> np.ndarray:
    """(K+1, N) horizontal wall thickness that makes the outer wall a straight, drafted line.

    The outer face runs straight from ``w_base`` outside the wall's foot to ``w_top`` outside the
    rim's inner edge (a moulded cup sole has a plain outer wall while its inside follows the upper's
    bulge); never thinner than 0.7 ``w_top``.
    """
    w_top, w_base = w_top_base
    d = np.einsum("kni,ni->kn", inner_wall[..., :2] - inner_wall[:1, :, :2], nh[:, :2])
    z = inner_wall[..., 2]
    u = (z - z[:1]) / np.maximum(z[-1:] - z[:1], 1e-6)
    line = (d[0] + w_base)[None] + ((d[-1] + w_top) - (d[0] + w_base))[None] * u
    return np.maximum(line - d, 0.7 * w_top)


def _below_wall(
    last: LastGrid, base: np.ndarray, nh: np.ndarray, tread_z: Callable[[np.ndarray], np.ndarray]
) -> np.ndarray:
    """Rings below the outer wall's foot: 3 down the wall, a chamfer, the bottom edge, the tread.

    Args:
        last: the last (spine and bottom-ring scales).
        base: (N, 3) outer wall at the feather-edge level.
        nh: (N, 3) horizontal outward column directions.
        tread_z: callable, x (any shape) -> tread height (same shape), metres.
    """
    r_e = SOLE_EDGE_RADIUS_M
    down = np.array([0.0, 0.0, 1.0])
    drop = base[:, 2] - (tread_z(base[:, 0]) + r_e)
    lower = [base - (f * drop)[:, None] * down for f in (1 / 3, 2 / 3, 1.0)]
    chamfer = lower[-1] - 0.3 * r_e * nh - 0.7 * r_e * down
    edge = lower[-1] - r_e * nh - r_e * down
    s = last.bottom_s[::-1]  # 1.0 (the bottom edge) ... inner
    t_xy = last.spine[None] + (edge[None, :, :2] - last.spine[None]) * s[:, None, None]
    tread = np.concatenate([t_xy, tread_z(t_xy[..., 0])[..., None]], axis=2)
    tread[0] = edge
    return np.concatenate([np.stack(lower), chamfer[None], tread], axis=0)


def sole_grid(last: LastGrid, params: SampleParams, cfg: WorldConfig) -> SoleGrid:
    """Build the free (unpressed) cup sole of this pair from its own CAD.

    The mould is designed on the mould maker's copy of the last (the nominal last offset by
    ``params.sole_last_copy_m``) with the nominal leather and a smooth bottom, its inner wall drafted outward by
    ``cfg.sole_draft_deg``; the rim carries the sidewall trim error and the cavity's profile; the moulded sole is
    scaled by its per-axis shrinkage (``params.sole_scale_xyz``) and warped (toe and heel lift ``sole_warp_m``).

    Args:
        last: the last of the pair's style and size.
        params: hidden truth (sidewall error, cavity, undersize, shrinkage, warp).
        cfg: world constants (nominal leather, insole board, draft, cavity profile amplitude).
    """
    from .variation import cavity_profile

    spec = last.spec
    nom = upper_grid(last, cfg.leather_nominal_m + params.sole_last_copy_m, cfg, smooth_bottom=True)
    jf = last.j_feather
    n = last.points.shape[1]
    x0 = last.outline[:, 0].min()
    toe_part = lambda x: rocker((x - x0) / last.length_m, spec.toe_spring_m, 0.0)  # noqa: E731
    # inner wall: along the design upper's columns from the feather edge up to the rim
    h_sw = sidewall_design_height(last) + _sidewall_error(n, params)
    h_sw = h_sw + cavity_profile(spec.name, last.size_eu, "right", params.sole_cavity, n, cfg.cavity_profile_amp_m)
    arc = column_arc(nom, jf)
    k = np.arange(1, N_WALL + 1) / N_WALL
    wall, _ = points_at_arc(nom, jf, arc, k[:, None] * h_sw[None, :])
    # horizontal outward direction of each column; the draft opens the wall outward with height
    nh = np.concatenate([last.direction, np.zeros((len(last.direction), 1))], axis=1)
    wall = wall + (k[:, None] * h_sw[None, :] * np.tan(np.radians(cfg.sole_draft_deg)))[..., None] * nh[None]
    inner = np.concatenate([nom[: jf + 1], wall], axis=0)
    # flatten: less toe spring everywhere, less crown on the footbed
    inner[..., 2] += (spec.sole_toe_spring_ratio - 1.0) * toe_part(inner[..., 0])
    crown_lift = (1.0 - spec.sole_crown_ratio) * spec.crown_m * (1.0 - last.bottom_s**2)
    inner[: last.n_bottom, :, 2] += crown_lift[:, None]
    w = _wall_thickness(inner[jf:], nh, spec.wall_thickness_m)
    outer_wall = inner[jf:][::-1] + w[::-1, :, None] * nh[None]  # rim -> feather edge
    off_edge = cfg.insole_thickness_m + cfg.leather_nominal_m

    def tread_z(x: np.ndarray) -> np.ndarray:
        return spec.sole_toe_spring_ratio * toe_part(x) - off_edge - spec.tread_thickness_m

    below = _below_wall(last, outer_wall[-1], nh, tread_z)
    pts = np.concatenate([inner, outer_wall, below], axis=0)
    z_shift = off_edge + spec.tread_thickness_m
    pts[..., 2] += z_shift
    scale = np.asarray(params.sole_scale_xyz)
    pts = pts * scale
    # floor thickness under footbed rings: footbed z minus the tread z below (same scale), before the warp
    fb = pts[: jf + 1]
    tz = (tread_z(fb[..., 0] / scale[0]) + z_shift) * scale[2]
    pts[..., 2] += sole_warp(pts[..., 0], last, params.sole_warp_m)
    j_rim_in = jf + N_WALL
    free_arc = column_arc(pts[: j_rim_in + 1], jf)[-1]
    return SoleGrid(
        points=pts,
        j_feather=jf,
        j_rim_in=j_rim_in,
        j_rim_out=j_rim_in + 1,
        j_outer_fe=j_rim_in + 1 + N_WALL,
        j_tread_edge=j_rim_in + 1 + N_WALL + 4 + 1,
        wall_thickness=w * float(np.sqrt(scale[0] * scale[1])),
        free_height=free_arc,
        floor_thickness=fb[..., 2] - tz,
        z_shift=z_shift,
        scale=float(params.sole_scale),
    )


def sole_warp(x: np.ndarray, last: LastGrid, warp: float) -> np.ndarray:
    """Vertical warp of the demoulded sole at part-frame x: toe and heel ends lift by ``warp``, metres.

    ``warp * (2 x_f - 1)^2`` with x_f the fraction of the last's length: a uniform curvature 8 warp / L^2.
    """
    xf = (np.asarray(x) - last.outline[:, 0].min()) / last.length_m
    return warp * (2.0 * xf - 1.0) ** 2
