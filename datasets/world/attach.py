"""Ground-truth attach: the free cup sole pressed onto the lasted upper (the "actual system").

Per perimeter station i (a column of both ring grids) the model solves, in the upper's part frame:

1. Footbed contact. A membrane press pushes every footbed point onto the upper's bottom (the
   footbed takes the bottom's shape, the lasting-margin step included); the floor compresses
   locally by ``c = eps_c(p) * t_floor`` (Winkler layer under the uniform membrane pressure p, local
   floor thickness t_floor; ``eps_c = eps_lim tanh(p / (E_c eps_lim))``, linear for small strain and
   saturating as a foam densifies; ``E_c = E (1 + 2 S^2 k(nu))`` is the bonded-layer compression
   modulus, with the bulging term k on for nearly incompressible solids and off for foams).
2. Hoop fit. The sidewall is a closed band stretched round the upper: at each wall height the local
   mismatch ``m = ds_upper / ds_sole - 1`` of the perimeter elements (undersize, shrinkage, actual vs
   nominal leather, plan curvature) is shared along the band by shear lag through the tacky glue
   film: ``eps = m`` low-pass filtered with ``lambda^2 = k_glue / EA`` (``k_glue = G h / t_glue``,
   ``EA = E w h``), solved exactly in Fourier space on the closed perimeter.
3. Bending. The free sole has less toe spring than the last; bending it on compresses fibres above
   the floor's neutral axis: ``eps_b = -dkappa(x) (t_floor/2 + a) cos^2(phi)`` along the perimeter.
4. Poisson. The band's hoop strain ``eps = eps_fit + eps_b`` thins the free-edged wall in height by
   ``eps_z = -nu eps`` and in thickness likewise; integrated up the wall.
5. Root lift. The wall root spans the compressed floor; it rises by ``wall_root_lift * c`` relative
   to the footbed (ramped in over the corner).

6. Seating (round 2). The sole's footbed corner lands on the upper's actual bottom edge, less what
   the floor absorbs (bottom bumps narrower than ``floor_bridging_m`` dent the footbed), lowered by a
   stand-off where the cup is tight (radial interference of the upper's corner with the cup's, after
   the sole's placement error, x ``E w / (E w + p L)``: a stiff wall is not wedged open by the press) and
   raised by the compression of the upper's bottom stack (``p t / E_stack``).

The bite line is where the rim's inner edge ends on the upper: the rim sits at the seat height plus the
rise of the sole's own inner wall (its CAD, Poisson-stretched, root lift); the bite point is where the
upper's column reaches that height. The sole's geometry therefore sets the line, not an arc copied
along the upper's column. Assumptions: the inner wall hugs the upper below the rim (membrane press),
the last is rigid, the glue film has no thickness in the geometry, the state is the one under pressure
(the bond forms under load and holds the wall there); a stand-off leaves a glue-filled gap at the root.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .config import WorldConfig
from .last import LastGrid, grid_normals, quad_face, rocker_spline
from .params import SampleParams
from .parts import N_WALL, SoleGrid, column_arc, points_at_arc

__all__ = [
    "AttachResult",
    "simulate_attach",
    "compression_modulus",
    "floor_compression",
    "seat_height",
    "interference",
    "seating_fraction",
    "perimeter_smooth",
    "arc_at_height",
]


@dataclass(frozen=True)
class AttachResult:
    """Truth of one attach, in the upper's part frame (metres).

    Attributes:
        bite_points: (N, 3) bite point on each upper column (on the upper's surface).
        bite_arc: (N,) arc length of the bite above the feather edge along the upper column.
        bite_ring: (N,) fractional ring coordinate of the bite on the upper grid.
        free_height: (N,) free sidewall height (inner-wall arc), from the sole.
        hoop_strain: (N,) wall-averaged hoop strain (fit + bending).
        floor_compression: (N,) floor compression at the footbed edge.
        upper_bond_faces: (F_u,) bool over the upper mesh faces.
        sole_bond_faces: (F_s,) bool over the sole mesh faces.
        deformed_sole: (M_s, N, 3) deformed sole grid.
        compression_modulus_pa: E_c of the floor.
    """

    bite_points: np.ndarray
    bite_arc: np.ndarray
    bite_ring: np.ndarray
    free_height: np.ndarray
    hoop_strain: np.ndarray
    floor_compression: np.ndarray
    upper_bond_faces: np.ndarray
    sole_bond_faces: np.ndarray
    deformed_sole: np.ndarray
    compression_modulus_pa: float


def compression_modulus(youngs: float, nu: float, shape_factor: float) -> float:
    """Compression modulus of a bonded floor layer (Pa): foams ~E, solid elastomers E (1 + 2 S^2)."""
    k = float(np.clip((nu - 0.3) / 0.2, 0.0, 1.0))
    return youngs * (1.0 + 2.0 * shape_factor**2 * k)


def floor_compression(pressure: float, e_c: float, strain_limit: float) -> float:
    """Compressive strain of the floor under the membrane pressure (saturating, densifying foam).

    ``eps = eps_lim * tanh(p / (E_c eps_lim))``: linear (p / E_c) for small strains, bounded by
    ``eps_lim`` as cells collapse and the material densifies.
    """
    return strain_limit * float(np.tanh(pressure / (e_c * strain_limit)))


def _shear_lag(mismatch: np.ndarray, perimeter: float, lam2: float) -> np.ndarray:
    """Hoop strain of a closed band: the (K, N) mismatch low-passed by lam2 / (lam2 + omega^2)."""
    n = mismatch.shape[-1]
    omega = 2.0 * np.pi * np.fft.rfftfreq(n, d=perimeter / n)
    spec = np.fft.rfft(mismatch, axis=-1) * (lam2 / (lam2 + omega**2))
    return np.fft.irfft(spec, n=n, axis=-1)


def _hoop_strain(upper_wall: np.ndarray, sole_wall: np.ndarray, params: SampleParams, cfg: WorldConfig, w_mean: float,
                 h_mean: float) -> np.ndarray:  # fmt: skip
    """(K, N) hoop strain of the fit, per wall ring and station."""
    ds_u = np.linalg.norm(np.roll(upper_wall, -1, axis=1) - upper_wall, axis=2)
    ds_s = np.linalg.norm(np.roll(sole_wall, -1, axis=1) - sole_wall, axis=2)
    m_edge = ds_u / np.maximum(ds_s, 1e-9) - 1.0
    m = 0.5 * (m_edge + np.roll(m_edge, 1, axis=1))
    k_glue = cfg.glue_shear_modulus_pa * h_mean / cfg.glue_thickness_m
    ea = params.youngs_modulus_pa * w_mean * h_mean
    perim = float(ds_s.sum(axis=1).mean())
    return _shear_lag(m, perim, k_glue / ea)


def _bending_strain(last: LastGrid, sole: SoleGrid, a_free: np.ndarray, warp: float = 0.0) -> np.ndarray:
    """(K, N) longitudinal bending strain at each wall ring (toe spring restored and warp pressed out)."""
    spec = last.spec
    x0 = last.outline[:, 0].min()
    L = last.length_m
    xf = np.clip((last.outline[:, 0] - x0) / L, 0.0, 1.0)
    # curvature change d2z/dx2 of the restored toe spring (free sole keeps sole_toe_spring_ratio)
    d2 = rocker_spline(spec.toe_spring_m, 0.0).derivative(2)(xf) / L**2
    dkappa = (1.0 - spec.sole_toe_spring_ratio) * d2 - 8.0 * warp / L**2  # warp: uniform curvature pressed flat
    tangent = np.roll(last.outline, -1, axis=0) - np.roll(last.outline, 1, axis=0)
    cos2 = tangent[:, 0] ** 2 / np.sum(tangent**2, axis=1)
    t_edge = sole.floor_thickness[-1]
    return -dkappa[None] * (0.5 * t_edge[None] + a_free) * cos2[None]


def _upper_bond(last: LastGrid, upper: np.ndarray, bite_arc: np.ndarray) -> np.ndarray:
    m, n, _ = upper.shape
    jf = last.j_feather
    mask = np.zeros(2 * (n - 2) + 2 * (m - 1) * n, dtype=bool)
    mask[: n - 2] = True  # bottom cap
    j = np.arange(m - 1)[:, None]
    i = np.arange(n)[None, :]
    arc = column_arc(upper, jf)
    mid = np.full((m - 1, n), -1.0)
    a_mid = 0.25 * (arc[:-1] + arc[1:] + np.roll(arc[:-1], -1, axis=1) + np.roll(arc[1:], -1, axis=1))
    mid[jf:] = a_mid
    lim = 0.5 * (bite_arc + np.roll(bite_arc, -1))
    inside = (j < jf) | (mid < lim[None, :])
    f0 = quad_face(np.broadcast_to(j, inside.shape)[inside], np.broadcast_to(i, inside.shape)[inside], n)
    mask[f0] = True
    mask[f0 + 1] = True
    return mask


def _sole_bond(sole: SoleGrid) -> np.ndarray:
    m, n, _ = sole.points.shape
    mask = np.zeros(2 * (n - 2) + 2 * (m - 1) * n, dtype=bool)
    mask[: n - 2] = True  # footbed centre cap
    mask[n - 2 : quad_face(sole.j_rim_in, 0, n)] = True
    return mask


def simulate_attach(
    last: LastGrid, upper: np.ndarray, sole: SoleGrid, params: SampleParams, cfg: WorldConfig
) -> AttachResult:
    """Press the free sole onto the upper and return the truth (part frame of the upper).

    Args:
        last: the pair's last.
        upper: (M, N, 3) actual lasted-upper grid.
        sole: the free sole.
        params: hidden truth (stiffness, Poisson ratio, pressure, placement error, compliance).
        cfg: physical constants.
    """
    jf = last.j_feather
    nu, E = params.poisson_ratio, params.youngs_modulus_pa
    e_c = compression_modulus(E, nu, cfg.floor_shape_factor)
    comp = floor_compression(params.press_pressure_pa, e_c, cfg.floor_strain_limit) * sole.floor_thickness
    c_edge = comp[-1]
    arc_u = column_arc(upper, jf)
    h_free = sole.free_height
    k = np.arange(1, N_WALL + 1) / N_WALL
    a_free = k[:, None] * h_free[None, :]
    upper_wall, _ = points_at_arc(upper, jf, arc_u, a_free)
    upper_wall = upper_wall - _pushback(last, params)[None, :, None] * _nh(last)[None]
    sole_wall = sole.points[jf + 1 : sole.j_rim_in + 1]
    w_mean = float(sole.wall_thickness.mean())
    eps = _hoop_strain(upper_wall, sole_wall, params, cfg, w_mean, float(h_free.mean()))
    eps = eps + _bending_strain(last, sole, a_free, params.sole_warp_m)
    eps_z = -nu * eps
    ramp = np.clip(a_free / 3e-3, 0.0, 1.0)
    ramp = ramp * ramp * (3.0 - 2.0 * ramp)
    dz = np.diff(sole.points[jf : sole.j_rim_in + 1, :, 2], axis=0)  # the sole's own wall rise per ring
    rise = np.cumsum(dz * (1.0 + eps_z), axis=0) + cfg.wall_root_lift * c_edge[None] * ramp
    z_seat = seat_height(last, upper, sole, params, cfg)
    a_def = arc_at_height(upper, jf, arc_u, z_seat[None] + rise)
    bite_arc = a_def[-1]
    wall_def, ring = points_at_arc(upper, jf, arc_u, a_def)
    deformed = _deform_sole(upper, sole, wall_def, a_def, eps, nu, comp)
    return AttachResult(
        bite_points=wall_def[-1],
        bite_arc=bite_arc,
        bite_ring=ring[-1],
        free_height=h_free,
        hoop_strain=eps.mean(axis=0),
        floor_compression=c_edge,
        upper_bond_faces=_upper_bond(last, upper, bite_arc),
        sole_bond_faces=_sole_bond(sole),
        deformed_sole=deformed,
        compression_modulus_pa=e_c,
    )


def _nh(last: LastGrid) -> np.ndarray:
    return np.concatenate([last.direction, np.zeros((len(last.direction), 1))], axis=1)


def _pushback(last: LastGrid, params: SampleParams) -> np.ndarray:
    """(N,) how far the wall's grip presses loose waist leather back towards the last, metres."""
    from .variation import upper_side_offset

    loose = upper_side_offset(last.outline, last.length_m, _only_waist(params))
    return params.leather_pushback * np.maximum(loose, 0.0)


def _only_waist(params: SampleParams) -> SampleParams:
    import dataclasses

    return dataclasses.replace(params, toe_fullness_m=0.0, heel_fullness_m=0.0)


def perimeter_smooth(values: np.ndarray, outline: np.ndarray, sigma_m: float) -> np.ndarray:
    """(N,) closed-perimeter Gaussian smoothing of per-station ``values`` with ``sigma_m`` of arc length."""
    seg = np.linalg.norm(np.roll(outline, -1, axis=0) - outline, axis=1)
    n = len(values)
    omega = 2.0 * np.pi * np.fft.rfftfreq(n, d=float(seg.sum()) / n)
    return np.fft.irfft(np.fft.rfft(values) * np.exp(-0.5 * (omega * sigma_m) ** 2), n=n)


def seating_fraction(params: SampleParams, wall_base_m: float, cfg: WorldConfig) -> float:
    """Share of a radial interference that stays as vertical stand-off: ``E w / (E w + p L)``."""
    ew = params.youngs_modulus_pa * wall_base_m
    return ew / (ew + params.press_pressure_pa * cfg.seat_length_m)


def interference(last: LastGrid, upper: np.ndarray, sole: SoleGrid, params: SampleParams) -> np.ndarray:
    """(N,) radial interference of the upper's feather-edge corner with the placed cup's, metres (+ = tight)."""
    jf = last.j_feather
    c, s = np.cos(np.radians(params.sole_yaw_deg)), np.sin(np.radians(params.sole_yaw_deg))
    p = sole.points[jf, :, :2]
    placed = np.column_stack([c * p[:, 0] - s * p[:, 1], s * p[:, 0] + c * p[:, 1]]) + np.asarray(params.sole_offset_m)
    return np.einsum("ni,ni->n", upper[jf, :, :2] - placed, last.direction)


def seat_height(last: LastGrid, upper: np.ndarray, sole: SoleGrid, params: SampleParams,
                cfg: WorldConfig) -> np.ndarray:  # fmt: skip
    """(N,) height (upper part frame, as worn) where the pressed sole's inner corner sits, metres."""
    from .variation import feather_offset, stack_compression

    b = feather_offset(upper.shape[1], params)
    absorbed = b - perimeter_smooth(b, last.outline, cfg.floor_bridging_m)  # narrow bumps dent the footbed
    chi = seating_fraction(params, float(sole.wall_thickness[0].mean()), cfg)
    tight = np.maximum(interference(last, upper, sole, params), 0.0)
    stand_off = chi * perimeter_smooth(tight, last.outline, cfg.floor_bridging_m)
    lift = stack_compression(params, cfg, params.upper_thickness_m)
    return upper[last.j_feather, :, 2] + absorbed - stand_off + lift


def arc_at_height(upper: np.ndarray, j0: int, arc: np.ndarray, z: np.ndarray) -> np.ndarray:
    """(K, N) arc length up each upper column from ring j0 where the column reaches heights ``z`` (K, N).

    Heights below ring j0 give 0 (the wall's root stands off the corner); the column's height is made
    monotone so the first crossing going up is taken.
    """
    zc = np.maximum.accumulate(upper[j0:, :, 2], axis=0)
    out = np.empty_like(z)
    for i in range(z.shape[1]):
        out[:, i] = np.interp(z[:, i], zc[:, i], arc[:, i])
    return out


def _deform_sole(
    upper: np.ndarray,
    sole: SoleGrid,
    wall_def: np.ndarray,
    a_def: np.ndarray,
    eps: np.ndarray,
    nu: float,
    comp: np.ndarray,
) -> np.ndarray:
    """(M_s, N, 3) sole grid after pressing, in the upper's part frame."""
    jf = sole.j_feather
    s = sole.points
    out = np.empty_like(s)
    out[: jf + 1] = upper[: jf + 1]  # footbed in contact with the upper's bottom
    out[jf + 1 : sole.j_rim_in + 1] = wall_def  # inner wall in contact with the upper's side
    # the free wall is offset horizontally from its inner face; keep that under the pressed wall
    nrm_u = grid_normals(upper) * np.array([1.0, 1.0, 0.0])
    nrm_u /= np.linalg.norm(nrm_u, axis=2, keepdims=True)
    arc_u = column_arc(upper, jf)
    n_wall, _ = points_at_arc(nrm_u, jf, arc_u, a_def)
    n_wall /= np.linalg.norm(n_wall, axis=2, keepdims=True)
    thick = sole.wall_thickness[1:] * (1.0 - nu * eps)  # (K, N) Poisson thinning
    outer = wall_def + thick[..., None] * n_wall
    outer_fe = upper[jf] + sole.wall_thickness[0][:, None] * nrm_u[jf]
    j0 = sole.j_rim_out
    out[j0 : j0 + N_WALL] = outer[::-1]
    out[sole.j_outer_fe] = outer_fe
    t_edge = sole.floor_thickness[-1]
    squeeze = np.clip(1.0 - comp[-1] / np.maximum(t_edge, 1e-6), 0.0, 1.0)
    # below the feather edge: free offsets from the outer feather-edge ring, heights compressed
    for j in range(sole.j_outer_fe + 1, sole.j_tread_edge):
        rel = s[j] - s[sole.j_outer_fe]
        rel[:, 2] *= squeeze
        out[j] = outer_fe + rel
    # tread rings (outside-in, the bottom rings' scales): below the matching footbed ring
    n_bottom = jf - 1
    for t in range(s.shape[0] - sole.j_tread_edge):
        jt, jb = sole.j_tread_edge + t, n_bottom - 1 - t
        rel = s[jt] - s[jb]
        rel[:, 2] *= np.clip(1.0 - comp[jb] / np.maximum(sole.floor_thickness[jb], 1e-6), 0.0, 1.0)
        out[jt] = out[jb] + rel
    return out
