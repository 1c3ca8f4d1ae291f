"""The inspection station as its camera sees it under UV-A light (truth side).

Physics, per pixel (rays cast from the true camera onto the true, possibly moved, mesh):

- Irradiance from the station's 365 nm LEDs: ``sum_k I_k max(0, n.l_k) / d_k^2`` normalised at the working
  distance, times a smooth vignetting; so lighting is uneven by construction.
- Substrate: its own glow colour (material), a 3-D procedural texture (leather grain, textile weave);
  textiles with optical brighteners glow *brighter* than the glue (REFERENCES "Inspection"), so contrast
  inverts on them.
- Glue: the tracer fluoresces ``A (1 - exp(-h / h_sat))`` (grows with film thickness h up to saturation) in
  the tracer's blue; the film absorbs the UV that would reach the substrate, ``exp(-h / h_abs)``.
- Glare: the long-pass filter leaks a little of the LEDs' specular reflection on glossy leather
  (Blinn-Phong lobe).
- Camera: exposure, Gaussian blur (focus, 0.5-1.3 px), shot + read noise, 8-bit RGB.
- Depth registered to the UV image (as RealSense ``align`` gives): range noise
  ``sigma_z = z^2 s / (f B)`` of a D405 (FACTS "3D sensing": baseline 18 mm, s = 0.08) times a material
  factor (leather, mesh and glue are worse than white matte targets), dropouts on dark or glossy pixels,
  0.1 mm units. Depth after spraying sees the film's top surface.

Chosen values (not found publicly) are marked "chosen" with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gluecell.core.types import CameraIntrinsics

__all__ = ["UVWorldConfig", "Appearance", "MATERIALS", "SHIFTED_MATERIALS", "draw_appearance", "station_cameras",
           "render_view"]  # fmt: skip

#: name -> (glow RGB under UV-A, texture amplitude, texture period m, gloss 0..1, depth-noise factor).
#: Chosen: dark leathers barely glow, white leather glows faintly, a brightened textile glows brighter than
#: the glue's tracer (contrast inverts), suede and mesh scatter the depth sensor most.
MATERIALS: dict[str, tuple[tuple[float, float, float], float, float, float, float]] = {
    "leather_black": ((0.025, 0.025, 0.035), 0.25, 0.6e-3, 0.55, 3.0),
    "leather_brown": ((0.09, 0.055, 0.035), 0.25, 0.8e-3, 0.40, 2.5),
    "leather_white": ((0.22, 0.23, 0.30), 0.15, 0.7e-3, 0.35, 2.0),
    "suede_grey": ((0.10, 0.10, 0.12), 0.35, 0.4e-3, 0.0, 4.0),
    "textile_brightened": ((0.50, 0.62, 0.95), 0.30, 1.2e-3, 0.0, 4.0),
    "textile_navy": ((0.05, 0.05, 0.10), 0.35, 1.0e-3, 0.0, 4.0),
    "synthetic_red": ((0.16, 0.04, 0.05), 0.15, 0.5e-3, 0.65, 2.5),
}
#: Materials of the shifted-appearance split only (new colours, a stronger brightener, patent leather).
SHIFTED_MATERIALS: dict[str, tuple[tuple[float, float, float], float, float, float, float]] = {
    "textile_neon": ((0.70, 0.80, 1.00), 0.30, 0.9e-3, 0.0, 4.0),
    "leather_tan": ((0.14, 0.10, 0.05), 0.25, 0.9e-3, 0.45, 2.5),
    "patent_black": ((0.02, 0.02, 0.03), 0.05, 0.5e-3, 0.95, 3.5),
    "mesh_green": ((0.06, 0.16, 0.07), 0.45, 1.6e-3, 0.0, 4.5),
}
#: Tracer fluorescence colour (blue-white, chosen for a coumarin-type tracer seen through a 400 nm long-pass).
TRACER_RGB = (0.45, 0.70, 1.00)


@dataclass(frozen=True)
class UVWorldConfig:
    """Inspection station: cameras, image, tracer, sensor."""

    #: Image size (px) and horizontal field of view (deg) (chosen: ~0.4 mm per pixel at 160 mm).
    width: int = 256
    height: int = 256
    hfov_deg: float = 36.0
    #: Camera ring: views around the upper, distance to the bite line (m), elevation above it (deg).
    n_views: int = 8
    distance_m: float = 0.16
    elevation_deg: float = 30.0
    #: Tracer: saturation and UV absorption thicknesses of the wet film (m), brightness at saturation (chosen).
    h_sat_m: float = 0.15e-3
    h_abs_m: float = 0.12e-3
    tracer_gain: float = 0.62
    #: D405 depth model (FACTS): baseline, subpixel, depth focal length (px at 640 wide, 87 deg HFOV), units.
    baseline_m: float = 0.018
    subpixel: float = 0.08
    depth_fx_px: float = 337.0
    depth_scale: float = 1e-4
    #: Hand-eye error of the inspection camera (hidden): translation (m) and rotation (deg) 1-sigma.
    calib_trans_std_m: float = 0.2e-3
    calib_rot_std_deg: float = 0.08

    @property
    def intrinsics(self) -> CameraIntrinsics:
        """Pinhole intrinsics of the UV image."""
        fx = 0.5 * self.width / np.tan(np.radians(self.hfov_deg) / 2)
        return CameraIntrinsics(self.width, self.height, fx, fx, (self.width - 1) / 2, (self.height - 1) / 2)


@dataclass(frozen=True)
class Appearance:
    """Hidden appearance of one inspection (material, lights, camera)."""

    material: str
    glow: tuple[float, float, float]
    texture_amp: float
    texture_m: float
    gloss: float
    depth_noise: float
    leds: tuple[tuple[float, float, float], ...]  # LED offsets from the camera, camera frame, metres
    led_power: tuple[float, ...]
    exposure: float
    blur_px: float
    read_noise: float
    tracer_gain: float
    glare: float
    tex_dirs: np.ndarray = field(repr=False, default_factory=lambda: np.zeros((0, 3)))
    tex_phase: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0))

    def to_dict(self) -> dict[str, Any]:
        """JSON form (without the texture's random directions)."""
        return {"material": self.material, "glow": list(self.glow), "gloss": self.gloss, "exposure": self.exposure,
                "blur_px": self.blur_px, "read_noise": self.read_noise, "tracer_gain": self.tracer_gain,
                "led_power": list(self.led_power), "glare": self.glare}  # fmt: skip


def draw_appearance(rng: np.random.Generator, cfg: UVWorldConfig, shifted: bool = False) -> Appearance:
    """Draw one appearance; ``shifted`` draws from the shifted split's materials, lights and camera."""
    table = SHIFTED_MATERIALS if shifted else MATERIALS
    name = sorted(table)[int(rng.integers(len(table)))]
    glow, amp, period, gloss, dn = table[name]
    hue = rng.uniform(0.85, 1.15, size=3) * (rng.uniform(0.7, 1.5) if shifted else rng.uniform(0.85, 1.15))
    n_led = int(rng.integers(2, 5)) if not shifted else int(rng.integers(1, 3))
    spread = 0.06 if not shifted else 0.10
    leds = tuple(tuple(float(x) for x in (rng.uniform(-spread, spread), rng.uniform(-spread, spread), 0.0))
                 for _ in range(n_led))  # fmt: skip
    power = tuple(float(x) for x in rng.uniform(0.6, 1.0, n_led) if True)
    if shifted:
        power = tuple(float(x) for x in rng.uniform(0.35, 1.3, n_led))
    dirs = rng.normal(size=(8, 3))
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    dirs *= (2 * np.pi / period) * rng.uniform(0.6, 1.6, size=(8, 1))
    return Appearance(
        material=name, glow=tuple(float(g) for g in np.clip(np.asarray(glow) * hue, 0, 1.2)), texture_amp=amp,
        texture_m=period, gloss=gloss, depth_noise=dn, leds=leds, led_power=power,
        exposure=float(rng.uniform(0.8, 1.25) if not shifted else rng.uniform(0.6, 1.5)),
        blur_px=float(rng.uniform(0.5, 1.3)), read_noise=float(rng.uniform(0.004, 0.012)),
        tracer_gain=float(cfg.tracer_gain * rng.uniform(0.85, 1.15)), glare=float(rng.uniform(0.2, 0.6)),
        tex_dirs=dirs, tex_phase=rng.uniform(0, 2 * np.pi, size=8),
    )  # fmt: skip


def _look_at(eye: np.ndarray, target: np.ndarray) -> np.ndarray:
    """(4, 4) optical-frame pose (z forward, y down in the image) at ``eye`` looking at ``target``
    (:func:`gluecell.core.geometry.look_at`)."""
    from gluecell.core.geometry import look_at

    return look_at(eye, target)


def station_cameras(bite_line: np.ndarray, cfg: UVWorldConfig) -> list[np.ndarray]:
    """True poses (4, 4) of the ``n_views`` inspection cameras around the upper (fixed in the station).

    The ring is built from the nominal station (the line's centroid and principal axis), as a plant would
    mount cameras for a style and size; each camera looks at the bite line's extreme point in its direction.
    """
    c = bite_line.mean(axis=0)
    xy = bite_line[:, :2] - c[:2]
    ang = np.arctan2(xy[:, 1], xy[:, 0])
    out = []
    for k in range(cfg.n_views):
        a = 2 * np.pi * k / cfg.n_views
        d = np.array([np.cos(a), np.sin(a)])
        i = int(np.argmin(np.abs(np.angle(np.exp(1j * (ang - a))))))
        target = bite_line[i] + np.array([0.0, 0.0, 0.002])
        el = np.radians(cfg.elevation_deg)
        eye = target + cfg.distance_m * np.array([np.cos(el) * d[0], np.cos(el) * d[1], np.sin(el)])
        out.append(_look_at(eye, target))
    return out


def _rays(T: np.ndarray, K: CameraIntrinsics) -> tuple[np.ndarray, np.ndarray]:
    u, v = np.meshgrid(np.arange(K.width), np.arange(K.height))
    d = np.stack([(u - K.cx) / K.fx, (v - K.cy) / K.fy, np.ones_like(u, dtype=float)], axis=-1).reshape(-1, 3)
    dz = d / np.linalg.norm(d, axis=1, keepdims=True)
    return dz @ T[:3, :3].T, dz[:, 2]


def render_view(v: np.ndarray, f: np.ndarray, film: np.ndarray, T_cam: np.ndarray, app: Appearance,
                cfg: UVWorldConfig, rng: np.random.Generator) -> dict[str, np.ndarray]:  # fmt: skip
    """Render one view of the upper (true vertices ``v``, faces ``f``, film per face ``film`` m).

    Returns:
        ``image`` (h, w, 3) uint8, ``depth_before`` / ``depth_after`` (h, w) uint16 (cfg.depth_scale),
        ``hit`` (h, w) bool, ``face`` (h, w) int64 (-1 none), ``points`` (h, w, 3) base_link m,
        ``film`` (h, w) m (interpolated), ``pixel_area`` (h, w) m^2 of surface each pixel sees.
    """
    import cv2
    import open3d as o3d

    K = cfg.intrinsics
    h, w = K.height, K.width
    dirs, cos_axis = _rays(T_cam, K)
    eye = T_cam[:3, 3]
    scene = o3d.t.geometry.RaycastingScene()
    scene.add_triangles(o3d.core.Tensor(v.astype(np.float32)), o3d.core.Tensor(f.astype(np.uint32)))
    rays = np.concatenate([np.broadcast_to(eye, dirs.shape), dirs], axis=1).astype(np.float32)
    r = scene.cast_rays(o3d.core.Tensor(rays), nthreads=1)
    t_hit = r["t_hit"].numpy().astype(np.float64)
    hit = np.isfinite(t_hit)
    face = np.where(hit, r["primitive_ids"].numpy().astype(np.int64), -1)
    n = r["primitive_normals"].numpy().astype(np.float64)
    t_safe = np.where(hit, t_hit, 0.0)
    pts = eye + dirs * t_safe[:, None]
    # Film per face, not interpolated: the world's film is a per-face quantity and the labels must agree
    # with its scoring (interpolating would smear glue past the line by half a face).
    pix_film = np.where(hit, film[np.where(hit, face, 0)], 0.0)
    cos_i = np.clip(-np.einsum("ij,ij->i", n, dirs), 0.05, 1.0)
    # -- radiometry ---------------------------------------------------------------------------------
    R = T_cam[:3, :3]
    irr = np.zeros(len(pts))
    spec = np.zeros(len(pts))
    for off, pw in zip(app.leds, app.led_power):
        lp = eye + R @ np.asarray(off)
        L = lp - pts
        dist = np.maximum(np.linalg.norm(L, axis=1), 1e-6)
        L /= dist[:, None]
        irr += pw * np.clip(np.einsum("ij,ij->i", n, L), 0, None) * (cfg.distance_m / dist) ** 2
        H = L - dirs
        H /= np.maximum(np.linalg.norm(H, axis=1, keepdims=True), 1e-9)
        spec += pw * np.clip(np.einsum("ij,ij->i", n, H), 0, None) ** 80
    irr /= max(len(app.leds) * 0.8, 1e-6)
    uc = (np.arange(w * h) % w - K.cx) / w
    vc = (np.arange(w * h) // w - K.cy) / h
    irr *= 1.0 - 0.35 * (uc**2 + vc**2) * 2
    tex = 1.0 + app.texture_amp * np.sin(pts @ app.tex_dirs.T + app.tex_phase).mean(axis=1)
    absorb = np.exp(-pix_film / cfg.h_abs_m)
    fluo = app.tracer_gain * (1 - np.exp(-pix_film / cfg.h_sat_m))
    rgb = (np.asarray(app.glow)[None] * tex[:, None] * absorb[:, None] + fluo[:, None] * np.asarray(TRACER_RGB)[None])
    rgb = rgb * irr[:, None] + app.gloss * app.glare * spec[:, None] * np.array([0.55, 0.45, 0.9])[None]
    bg = 0.015 + 0.01 * (uc + 0.5)[:, None] * np.ones((1, 3))
    rgb = np.where(hit[:, None], rgb, bg) * app.exposure
    img = cv2.GaussianBlur(rgb.reshape(h, w, 3).astype(np.float32), (0, 0), app.blur_px)
    img = img + rng.normal(size=img.shape) * np.sqrt(np.clip(img, 0, None) * 0.002 + app.read_noise**2)
    image = np.clip(np.round(img * 255), 0, 255).astype(np.uint8)
    # -- depth --------------------------------------------------------------------------------------
    z = t_safe * cos_axis
    sigma = z**2 * cfg.subpixel / (cfg.depth_fx_px * cfg.baseline_m) * app.depth_noise
    bright = rgb.mean(axis=1)
    dropout = (rng.random(len(z)) < 0.02 + 0.25 * (cos_i < 0.2) + 0.1 * (app.gloss * spec > 0.3)) | ~hit
    z_after = (t_safe - pix_film / cos_i) * cos_axis
    g_film = pix_film > 0.3e-3  # thick wet glue scatters the projector pattern more
    d0 = z + rng.normal(size=z.shape) * sigma
    d1 = z_after + rng.normal(size=z.shape) * sigma * np.where(g_film, 1.3, 1.0)
    drop1 = dropout | (rng.random(len(z)) < 0.02 * (bright < 0.02))

    def units(d: np.ndarray, drop: np.ndarray) -> np.ndarray:
        return np.where(drop, 0, np.clip(np.round(d / cfg.depth_scale), 1, 65535)).astype(np.uint16).reshape(h, w)

    area = (t_safe / K.fx) * (t_safe / K.fy) / cos_i
    return {"image": image, "depth_before": units(d0, dropout), "depth_after": units(d1, drop1),
            "hit": hit.reshape(h, w), "face": face.reshape(h, w), "points": pts.reshape(h, w, 3),
            "film": pix_film.reshape(h, w), "pixel_area": np.where(hit, area, 0.0).reshape(h, w)}  # fmt: skip
