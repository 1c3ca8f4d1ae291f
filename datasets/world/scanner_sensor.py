"""The D4xx sensor model: from exact ray-cast hits to a noisy uint16 depth image and an RGB image.

Effects, in order (all seeded by one ``numpy.random.Generator``):

0. The camera's own depth error (fixed per camera of a cell): ``z' = z (1 + scale) + bias``.
1. Stereo noise in the disparity domain: ``d = f·B / z``, ``d' = d + δ``, ``z' = f·B / d'`` with
   per-pixel ``δ ~ N(0, s·noise_factor·g)`` plus a smooth correlated field; to first order
   ``σz = z²·s·noise_factor·g / (f·B)`` (FACTS.md), ``g = max(1, g_texture · g_dark)`` >= 1: the
   formula is the floor; plain surfaces (little grain for passive stereo to match) and dark ones are worse.
2. Flying pixels at depth discontinuities: pixels up to ``flying_width_px`` from a jump (the stereo
   matching window straddles it) read a mix of fore- and background depth, or no depth.
3. Dropouts (depth 0): grazing incidence, dark surfaces (too little texture/signal for passive
   stereo), specular highlights on glossy surfaces, stereo occlusion (the right imager, at +B along x,
   cannot see the point, including the invalid band at the image's left border), and range limits.
4. Quantisation to uint16 depth units.

The colour image is Lambert + Blinn-Phong shading of the material albedo under the cell light,
aligned to the depth image (same intrinsics), with a little read noise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from gluecell.core.errors import ConfigError

from .scanner_camera import D4xxCamera
from .scanner_render import Hits

__all__ = ["SensorArtifacts", "smooth_field", "apply_sensor", "texture_gain", "shade_color"]


@dataclass(frozen=True)
class SensorArtifacts:
    """Parameters of the non-Gaussian sensor effects (all chosen; FACTS.md gives none of them).

    Attributes:
        enabled: False gives an ideal sensor (exact depth, only range cut and quantisation).
        grazing_start_deg: incidence angle (to the surface normal) where dropouts begin; D4xx
            stereo loses matches on steep surfaces (chosen 70°).
        grazing_full_deg: incidence angle beyond which every pixel drops out (chosen 84°).
        dark_albedo_start: albedo below which dropouts begin (chosen 0.10; black leather ≈ 0.05).
        dark_albedo_full: albedo where the dropout probability reaches ``dark_max_dropout`` (0.03).
        dark_max_dropout: dropout probability on the darkest surfaces (chosen 0.9).
        albedo_ref: albedo of the matte white reference the camera's noise_factor refers to (0.8).
        dark_noise_exponent: noise gain ``(albedo_ref / albedo) ** exponent`` on darker surfaces
            (chosen 0.25: a quarter of the shot-noise exponent, since texture, not light, dominates).
        max_noise_gain: cap of that gain (chosen 2.0).
        specular_start: highlight intensity where stereo matching starts failing (chosen 0.3).
        specular_full: highlight intensity beyond which it always fails (chosen 0.7).
        edge_jump_m: smallest depth jump to a 4-neighbour that counts as a discontinuity (4 mm) ...
        edge_jump_rel: ... or this fraction of the depth, whichever is larger (2 %).
        flying_prob: probability that a pixel beside a discontinuity reads a fore/background mix (0.35).
        edge_dropout_prob: probability that it reads no depth instead (0.25).
        occlusion_shadow: drop pixels the right imager cannot see.
        clump_cell_px: size of dropout clumps, pixels (chosen 6): real holes come in blobs.
        clump_weight: share of the clumped field in the dropout draw (0 = independent per pixel).
        color_noise_dn: colour read noise, std in 8-bit digital numbers (chosen 2).
        grain_ref: fine-texture contrast at which passive stereo reaches the formula's noise (chosen 0.12:
            a grained leather or a woven textile).
        max_texture_gain: noise gain on a plain surface, ``grain_ref / grain`` capped here (FACTS.md:
            measured D4xx noise on white matte targets is 3-5 x the formula; chosen 3.5).
        texture_window_px: window of the local image contrast added to the material grain (a print or
            an albedo edge is texture too; chosen 9 px, the D4xx matching window is 7-9 px).
        flying_width_px: how far from a depth jump flying pixels reach, pixels (chosen 3: the matching
            window straddles the edge; the probability falls linearly with the distance).
    """

    enabled: bool = True
    grazing_start_deg: float = 70.0
    grazing_full_deg: float = 84.0
    dark_albedo_start: float = 0.10
    dark_albedo_full: float = 0.03
    dark_max_dropout: float = 0.9
    albedo_ref: float = 0.8
    dark_noise_exponent: float = 0.25
    max_noise_gain: float = 2.0
    specular_start: float = 0.3
    specular_full: float = 0.7
    edge_jump_m: float = 0.004
    edge_jump_rel: float = 0.02
    flying_prob: float = 0.35
    edge_dropout_prob: float = 0.25
    occlusion_shadow: bool = True
    clump_cell_px: int = 6
    clump_weight: float = 0.8
    color_noise_dn: float = 2.0
    grain_ref: float = 0.12
    max_texture_gain: float = 3.5
    texture_window_px: int = 9
    flying_width_px: int = 3

    def __post_init__(self) -> None:
        ok = (
            0 <= self.grazing_start_deg < self.grazing_full_deg <= 90
            and 0 <= self.dark_albedo_full < self.dark_albedo_start <= 1
            and 0 <= self.dark_max_dropout <= 1
            and 0 <= self.specular_start < self.specular_full
            and self.flying_prob >= 0
            and self.edge_dropout_prob >= 0
            and self.flying_prob + self.edge_dropout_prob <= 1
            and self.clump_cell_px >= 2
            and 0 <= self.clump_weight < 1
            and self.max_noise_gain >= 1
            and self.albedo_ref > 0
            and self.grain_ref > 0
            and self.max_texture_gain >= 1
            and self.texture_window_px >= 1
            and self.flying_width_px >= 1
        )
        if not ok:
            raise ConfigError(f"SensorArtifacts: inconsistent values {self}")

    @classmethod
    def ideal(cls) -> SensorArtifacts:
        """No artefacts at all (use with a camera whose ``noise_factor`` is 0 for exact depth)."""
        return cls(enabled=False)


def smooth_field(rng: np.random.Generator, shape: tuple[int, int], cell_px: int) -> np.ndarray:
    """A stationary, unit-variance Gaussian random field, smooth over ``cell_px`` pixels.

    Bilinear interpolation of i.i.d. normals on a coarse grid, divided by the interpolation's
    local standard deviation so that every pixel is exactly N(0, 1).

    Returns:
        (h, w) float64.
    """
    h, w = shape
    gh, gw = h // cell_px + 3, w // cell_px + 3
    g = rng.standard_normal((gh, gw))
    off = rng.uniform(0.0, 1.0, 2)  # random grid phase
    y = np.arange(h) / cell_px + off[0]
    x = np.arange(w) / cell_px + off[1]
    i0, j0 = y.astype(np.int64), x.astype(np.int64)
    wy, wx = y - i0, x - j0
    a = g[:, j0] * (1.0 - wx) + g[:, j0 + 1] * wx  # (gh, w)
    out = a[i0] * (1.0 - wy)[:, None] + a[i0 + 1] * wy[:, None]
    sx = np.sqrt(wx**2 + (1.0 - wx) ** 2)
    sy = np.sqrt(wy**2 + (1.0 - wy) ** 2)
    return out / (sy[:, None] * sx[None, :])


def _ramp(x: np.ndarray, start: float, full: float) -> np.ndarray:
    """0 at ``start``, 1 at ``full`` (either order), linear between, clipped."""
    return np.clip((x - start) / (full - start), 0.0, 1.0)


def _discontinuities(z: np.ndarray, art: SensorArtifacts) -> tuple[np.ndarray, np.ndarray]:
    """Largest signed depth jump to a 4-neighbour ((h, w) metres) and where it is a discontinuity."""
    zf = np.where(np.isfinite(z), z, np.nan)
    p = np.pad(zf, 1, mode="edge")
    jump = np.zeros_like(zf)
    for nb in (p[:-2, 1:-1], p[2:, 1:-1], p[1:-1, :-2], p[1:-1, 2:]):
        dz = nb - zf
        take = np.abs(dz) > np.abs(jump)  # NaN compares False: misses never make a jump
        jump[take] = dz[take]
    edge = np.abs(jump) > np.maximum(art.edge_jump_m, art.edge_jump_rel * np.nan_to_num(zf))
    return jump, edge


def _widen(jump: np.ndarray, edge: np.ndarray, valid: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Carry each discontinuity's jump up to ``width`` pixels away: (jump, distance in px; 0 = not near an edge)."""
    dist = np.where(edge, 1, 0).astype(np.int64)
    jump = np.where(edge, jump, 0.0)
    for k in range(2, width + 1):
        reached = dist == k - 1
        new_j, new = np.zeros_like(jump), np.zeros_like(edge)
        for sl_dst, sl_src in (((slice(1, None), slice(None)), (slice(None, -1), slice(None))),
                               ((slice(None, -1), slice(None)), (slice(1, None), slice(None))),
                               ((slice(None), slice(1, None)), (slice(None), slice(None, -1))),
                               ((slice(None), slice(None, -1)), (slice(None), slice(1, None)))):  # fmt: skip
            take = reached[sl_src] & ~new[sl_dst]
            new_j[sl_dst] = np.where(take, jump[sl_src], new_j[sl_dst])
            new[sl_dst] |= take
        new &= (dist == 0) & valid
        dist[new] = k
        jump[new] = new_j[new]
    return jump, dist


def _occluded(z: np.ndarray, fb: float) -> np.ndarray:
    """Pixels of the left (reference) imager that the right imager (at +B along x) cannot see."""
    u = np.arange(z.shape[1], dtype=np.float64)
    ur = u[None, :] - np.where(np.isfinite(z), fb / z, 0.0)
    suffix_min = np.minimum.accumulate(ur[:, ::-1], axis=1)[:, ::-1]
    blocked = np.zeros(z.shape, dtype=bool)
    blocked[:, :-1] = suffix_min[:, 1:] < ur[:, :-1] - 1e-6
    return blocked | (ur < -0.5)


def _dropout_probability(hits: Hits, art: SensorArtifacts) -> np.ndarray:
    """(h, w) probability of no depth from incidence angle, darkness and highlights."""
    cos_start, cos_full = math.cos(math.radians(art.grazing_start_deg)), math.cos(math.radians(art.grazing_full_deg))
    p = _ramp(hits.cos_incidence, cos_start, cos_full)  # linear in the cosine between the two angles
    p = np.maximum(p, art.dark_max_dropout * _ramp(hits.albedo, art.dark_albedo_start, art.dark_albedo_full))
    return np.maximum(p, _ramp(hits.specular, art.specular_start, art.specular_full))


def _artifact_mask(
    hits: Hits, camera: D4xxCamera, art: SensorArtifacts, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Flying-pixel depths and the dropout mask.

    Returns:
        ``(z, bad)``: (h, w) float64 depth with flying pixels mixed in (1.0 at misses) and
        (h, w) bool, True where the sensor reports no depth.
    """
    from scipy.special import ndtr

    z_true = hits.z
    valid = np.isfinite(z_true)
    z = np.where(valid, z_true, 1.0)
    bad = ~valid
    jump, edge = _discontinuities(z_true, art)
    jump, dist = _widen(jump, edge, valid, art.flying_width_px)
    e = np.flatnonzero(dist)
    u = rng.uniform(size=e.size)
    fall = 1.0 - (dist.flat[e] - 1) / art.flying_width_px  # 1 at the jump, falling outward
    fly = e[u < art.flying_prob * fall]
    z.flat[fly] += rng.uniform(0.1, 0.9, size=fly.size) * jump.flat[fly]
    drop = (u >= art.flying_prob * fall) & (u < (art.flying_prob + art.edge_dropout_prob) * fall)
    bad.flat[e[drop]] = True
    p = _dropout_probability(hits, art)
    cand = np.flatnonzero(p > 0)
    if cand.size:
        clumps = smooth_field(rng, z.shape, art.clump_cell_px).flat[cand]
        mix = art.clump_weight * clumps + math.sqrt(1.0 - art.clump_weight**2) * rng.standard_normal(cand.size)
        bad.flat[cand[ndtr(mix) < p.flat[cand]]] = True
    if art.occlusion_shadow:
        bad |= _occluded(z_true, camera.fx * camera.baseline_m)
    return z, bad


def texture_gain(hits: Hits, art: SensorArtifacts) -> np.ndarray:
    """(h, w) noise gain >= 1 of passive stereo on plain surfaces: ``grain_ref / contrast`` capped.

    The contrast is the material's fine grain combined with the local image contrast (std / mean of the
    albedo over ``texture_window_px``), so prints and albedo edges count as texture as well.
    """
    from scipy.ndimage import uniform_filter

    a = hits.albedo.astype(np.float64)
    m = uniform_filter(a, art.texture_window_px)
    var = np.maximum(uniform_filter(a * a, art.texture_window_px) - m * m, 0.0)
    local = np.sqrt(var) / np.maximum(m, 1e-3)
    grain = hits.grain if hits.grain is not None else np.full(a.shape, art.grain_ref)
    contrast = np.hypot(grain, local)
    return np.clip(art.grain_ref / np.maximum(contrast, 1e-6), 1.0, art.max_texture_gain)


def apply_sensor(
    hits: Hits,
    camera: D4xxCamera,
    art: SensorArtifacts,
    rng: np.random.Generator,
    depth_error: tuple[float, float] = (0.0, 0.0),
) -> np.ndarray:
    """Turn exact hits into what the D4xx reports.

    Args:
        hits: ray-cast result of one view.
        camera: the camera (noise, range, depth unit).
        art: artefact parameters.
        rng: source of all randomness.
        depth_error: this camera's (scale error, bias in metres): ``z (1 + scale) + bias`` before the noise.

    Returns:
        (h, w) uint16 depth in units of ``camera.depth_scale``; 0 = no data.
    """
    if art.enabled:
        z, bad = _artifact_mask(hits, camera, art, rng)
        dark = np.clip(
            (art.albedo_ref / np.maximum(hits.albedo, 1e-3)) ** art.dark_noise_exponent, 1.0, art.max_noise_gain
        )
        gain = np.maximum(dark * texture_gain(hits, art), 1.0)
    else:
        valid = np.isfinite(hits.z)
        z, bad, gain = np.where(valid, hits.z, 1.0), ~valid, np.ones(hits.z.shape)
    z = z * (1.0 + depth_error[0]) + depth_error[1]
    fb = camera.fx * camera.baseline_m
    s = camera.subpixel * camera.noise_factor
    if s > 0:  # noise in the disparity domain: σz ≈ z² · σd / (f · B)
        delta = s * gain * rng.standard_normal(z.shape)
        if camera.correlated_fraction > 0:
            delta += s * camera.correlated_fraction * smooth_field(rng, z.shape, camera.correlated_cell_px)
        z = fb / np.maximum(fb / z + delta, 1e-6)
    bad |= (z < camera.min_range_m) | (z > camera.max_range_m)
    units = np.clip(np.rint(z / camera.depth_scale), 0, 65535)
    units[bad] = 0
    return units.astype(np.uint16)


def shade_color(hits: Hits, art: SensorArtifacts, rng: np.random.Generator) -> np.ndarray:
    """RGB image aligned to depth: ambient + Lambert + white Blinn-Phong highlights.

    Returns:
        (h, w, 3) uint8.
    """
    light = (255.0 * (0.35 + 0.65 * np.clip(hits.cos_light, 0.0, 1.0))).astype(np.float32)
    rgb = hits.albedo_rgb * light[..., None]
    rgb += (255.0 * hits.specular).astype(np.float32)[..., None]
    rgb[~np.isfinite(hits.z)] = 5.0  # nothing in range: dark
    if art.enabled and art.color_noise_dn > 0:
        rgb += art.color_noise_dn * rng.standard_normal(rgb.shape, dtype=np.float32)
    np.rint(rgb, out=rgb)
    return np.clip(rgb, 0, 255, out=rgb).astype(np.uint8)
