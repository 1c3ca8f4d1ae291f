"""Ray casting of triangle meshes for the virtual depth camera (open3d ``RaycastingScene``).

Gives, per pixel, the true depth along the optical axis, the surface normal, and the surface's
appearance (albedo and gloss from a :class:`Material` with a procedural texture). Geometry is in
``base_link`` (metres); the camera pose is ``T_base_cam`` of its optical frame (x right, y down, z fwd).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from gluecell.core.errors import ConfigError, ValidationError

from .scanner_camera import D4xxCamera

__all__ = ["Material", "SceneObject", "Hits", "RayScene", "camera_rays", "render_mesh_depth"]

#: Number of plane waves in a procedural texture field (enough to look irregular, cheap to evaluate).
_N_WAVES = 6


@dataclass(frozen=True)
class Material:
    """How a surface looks to the camera (values 0..1 are reflectances, chosen per material).

    Attributes:
        rgb: diffuse reflectance per channel; the albedo is their mean.
        texture: relative amplitude of a procedural albedo variation (leather grain, dirt, prints).
        texture_scale_m: typical wavelength of that variation, metres.
        gloss: specular strength of the glossy parts (0 matte .. 1 mirror-like highlight).
        gloss_cover: fraction of the surface that is glossy (1 = uniformly glossy, 0 = nowhere).
        shininess: Blinn-Phong exponent of the highlights (chosen 40: a fairly tight leather sheen).
        grain: contrast of the surface's fine texture (sub-millimetre grain, weave, pores) that passive
            stereo matches on, 0 = plain (chosen per material; the sensor's texture-dependent noise uses it).
    """

    rgb: tuple[float, float, float] = (0.6, 0.6, 0.6)
    texture: float = 0.2
    texture_scale_m: float = 0.03
    gloss: float = 0.0
    gloss_cover: float = 1.0
    shininess: float = 40.0
    grain: float = 0.10

    def __post_init__(self) -> None:
        if not 0.0 <= self.grain <= 1.0:
            raise ConfigError(f"Material: grain must be in [0, 1], got {self.grain}")
        if not all(0.0 <= c <= 1.0 for c in self.rgb) or not 0.0 <= self.gloss <= 1.0:
            raise ConfigError(f"Material: rgb and gloss must be in [0, 1], got {self}")
        if self.texture < 0 or self.texture_scale_m <= 0 or not 0.0 <= self.gloss_cover <= 1.0 or self.shininess <= 0:
            raise ConfigError(f"Material: bad texture/gloss_cover values in {self}")


@dataclass(frozen=True)
class SceneObject:
    """One mesh of the scene.

    Attributes:
        vertices: (v, 3) float64, metres, base_link.
        faces: (f, 3) int64 vertex indices.
        material: its appearance.
        name: label (e.g. "part", "floor", "tray", "fixture").
    """

    vertices: np.ndarray
    faces: np.ndarray
    material: Material = Material()
    name: str = ""

    @classmethod
    def from_mesh(cls, mesh: object, material: Material = Material(), name: str = "") -> SceneObject:
        """From anything with ``.vertices`` and ``.faces`` (a trimesh.Trimesh)."""
        return cls(np.asarray(mesh.vertices, np.float64), np.asarray(mesh.faces, np.int64), material, name)  # type: ignore[attr-defined]

    def __post_init__(self) -> None:
        v = np.asarray(self.vertices, dtype=np.float64)
        f = np.asarray(self.faces, dtype=np.int64)
        if v.ndim != 2 or v.shape[1] != 3 or f.ndim != 2 or f.shape[1] != 3 or len(f) == 0:
            raise ValidationError(f"SceneObject {self.name!r}: need (v, 3) vertices and (f, 3) faces")
        if not np.all(np.isfinite(v)) or f.min() < 0 or f.max() >= len(v):
            raise ValidationError(f"SceneObject {self.name!r}: non-finite vertices or bad face indices")
        object.__setattr__(self, "vertices", v)
        object.__setattr__(self, "faces", f)


@dataclass(frozen=True)
class Hits:
    """Per-pixel result of casting one camera's rays; misses have ``z = inf``, ``obj = -1``, zeros elsewhere.

    Attributes:
        z: (h, w) float64 true depth along the optical axis, metres.
        obj: (h, w) int64 index of the hit object in the scene.
        cos_incidence: (h, w) float32 cosine between the surface normal and the direction to the camera.
        cos_light: (h, w) float32 cosine between the (camera-facing) normal and the cell light, may be < 0.
        specular: (h, w) float32 gloss-weighted Blinn-Phong highlight intensity seen by the camera.
        albedo_rgb: (h, w, 3) float32 diffuse reflectance at the hit point.
        albedo: (h, w) float32 mean of ``albedo_rgb`` (grey-level reflectance).
        grain: (h, w) float32 fine-texture contrast of the hit surface's material (0 at misses), or None.
    """

    z: np.ndarray
    obj: np.ndarray
    cos_incidence: np.ndarray
    cos_light: np.ndarray
    specular: np.ndarray
    albedo_rgb: np.ndarray
    albedo: np.ndarray
    grain: np.ndarray | None = None

    @property
    def valid(self) -> np.ndarray:
        """(h, w) bool, True where a surface was hit."""
        return np.isfinite(self.z)


@functools.lru_cache(maxsize=8)
def camera_rays(camera: D4xxCamera) -> tuple[np.ndarray, np.ndarray]:
    """Ray directions of every pixel in the camera frame.

    Returns:
        ``(d, view)``: ``d`` (h*w, 3) float64 ``((u - cx) / fx, (v - cy) / fy, 1)`` in row-major pixel
        order, scaled so that a hit at ray parameter ``t`` lies at depth ``z = t``; ``view`` (h*w, 3)
        the unit vectors from the scene back to the camera (``-d / |d|``). Both read-only.
    """
    k = camera.intrinsics
    u = (np.arange(k.width, dtype=np.float64) - k.cx) / k.fx
    v = (np.arange(k.height, dtype=np.float64) - k.cy) / k.fy
    d = np.empty((k.height, k.width, 3))
    d[..., 0] = u[None, :]
    d[..., 1] = v[:, None]
    d[..., 2] = 1.0
    d = d.reshape(-1, 3)
    view = -d / np.linalg.norm(d, axis=1, keepdims=True)
    d.setflags(write=False)
    view.setflags(write=False)
    return d, view


def _texture_params(rng: np.random.Generator, scale_m: float) -> np.ndarray:
    """(N, 4) plane waves: wave vector (rad/m, 3) and phase (rad)."""
    dirs = rng.normal(size=(_N_WAVES, 3))
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    k = 2.0 * math.pi / (scale_m * rng.uniform(0.5, 2.0, size=(_N_WAVES, 1)))
    return np.hstack([dirs * k, rng.uniform(0.0, 2.0 * math.pi, size=(_N_WAVES, 1))])


def _field(points: np.ndarray, waves: np.ndarray) -> np.ndarray:
    """Unit-variance smooth random field at ``points`` ((n, 3) metres) from plane ``waves``."""
    return np.sqrt(2.0 / len(waves)) * np.sin(points @ waves[:, :3].T + waves[:, 3]).sum(axis=1)


def _face_appearance(ob: SceneObject, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Albedo (f, 3) and gloss (f,) of the faces of ``ob`` from its material's procedural maps.

    The maps are sampled at face centroids: the texture wavelengths (centimetres) are much longer
    than the faces of the world's meshes (a few millimetres), and one lookup per pixel is cheap.
    """
    from scipy.special import ndtri

    m = ob.material
    albedo_waves = _texture_params(rng, m.texture_scale_m)
    gloss_waves = _texture_params(rng, 2.0 * m.texture_scale_m)
    centres = ob.vertices[ob.faces].mean(axis=1)
    tex = np.clip(1.0 + m.texture * _field(centres, albedo_waves), 0.05, None)
    albedo = np.clip(np.outer(tex, m.rgb), 0.0, 1.0)
    if m.gloss_cover >= 1.0:
        gloss = np.full(len(centres), m.gloss)
    elif m.gloss_cover <= 0.0:
        gloss = np.zeros(len(centres))
    else:  # glossy patches: where a second field exceeds its (1 - cover) quantile
        gloss = m.gloss * (_field(centres, gloss_waves) > ndtri(1.0 - m.gloss_cover))
    return albedo, gloss.astype(np.float64)


class RayScene:
    """A static scene (meshes + materials) that can be rendered from many camera poses.

    The procedural maps (albedo grain, glossy patches) are drawn from ``rng`` once and evaluated
    per face, so every view sees the same surface.
    """

    #: Direction towards the cell's main (ceiling) light, base_link (chosen: above, slightly in front).
    LIGHT_DIR = np.array([0.3, 0.2, 1.0]) / np.linalg.norm([0.3, 0.2, 1.0])

    def __init__(self, objects: Sequence[SceneObject], rng: np.random.Generator) -> None:
        import open3d as o3d

        if not objects:
            raise ValidationError("RayScene: at least one object is needed")
        self.objects = tuple(objects)
        self._scene = o3d.t.geometry.RaycastingScene()
        albedo, gloss, obj_of_face = [], [], []
        for i, ob in enumerate(self.objects):
            gid = self._scene.add_triangles(
                o3d.core.Tensor(ob.vertices.astype(np.float32)), o3d.core.Tensor(ob.faces.astype(np.uint32))
            )
            if gid != i:  # ids are sequential in a fresh scene; the face tables below rely on it
                raise ValidationError(f"RayScene: unexpected geometry id {gid} for object {i}")
            obj_of_face.append(np.full(len(ob.faces), i, dtype=np.int64))
            a, g = _face_appearance(ob, rng)
            albedo.append(a)
            gloss.append(g)
        self._face_offset = np.cumsum([0] + [len(ob.faces) for ob in self.objects])
        self._obj_of_face = np.concatenate(obj_of_face)
        # per-face appearance table: r, g, b albedo, gloss, grey albedo
        alb = np.vstack(albedo)
        self._look = np.column_stack([alb, np.concatenate(gloss), alb.mean(axis=1)]).astype(np.float32)
        self._shininess = np.array([ob.material.shininess for ob in self.objects])
        self._grain = np.array([ob.material.grain for ob in self.objects], dtype=np.float32)

    def cast(self, T_base_cam: np.ndarray, camera: D4xxCamera) -> Hits:
        """Cast every pixel's ray from the camera at ``T_base_cam`` ((4, 4) float64, true pose)."""
        import open3d as o3d

        T = np.asarray(T_base_cam, dtype=np.float64)
        R, t = T[:3, :3], T[:3, 3]
        d_cam, view = camera_rays(camera)
        h, w = camera.height, camera.width
        rays = np.empty((h * w, 6), dtype=np.float32)
        rays[:, :3] = t
        rays[:, 3:] = d_cam @ R.T
        ans = self._scene.cast_rays(o3d.core.Tensor(rays))
        z = ans["t_hit"].numpy().astype(np.float64)
        idx = np.flatnonzero(np.isfinite(z))
        face = self._face_offset[ans["geometry_ids"].numpy()[idx].astype(np.int64)]
        face += ans["primitive_ids"].numpy()[idx]
        v = view[idx]
        n = ans["primitive_normals"].numpy()[idx].astype(np.float64) @ R  # unit, camera frame
        c = np.einsum("ij,ij->i", n, v)
        n[c < 0] *= -1.0
        light = R.T @ self.LIGHT_DIR
        look = np.take(self._look, face, axis=0)
        gloss = look[:, 3]
        spec = np.zeros(len(idx))
        g = np.flatnonzero(gloss > 0)
        if g.size:
            half = v[g] + light
            half /= np.linalg.norm(half, axis=1, keepdims=True)
            ch = np.clip(np.einsum("ij,ij->i", n[g], half), 0.0, 1.0)
            spec[g] = gloss[g] * ch ** self._shininess[self._obj_of_face[face[g]]]
        out = {k: np.zeros(h * w, np.float32) for k in ("cos_incidence", "cos_light", "specular", "albedo")}
        out["albedo"][idx] = look[:, 4]
        out["cos_incidence"][idx] = np.abs(c)
        out["cos_light"][idx] = n @ light
        out["specular"][idx] = spec
        obj = np.full(h * w, -1, dtype=np.int64)
        obj[idx] = self._obj_of_face[face]
        albedo = np.zeros((h * w, 3), np.float32)
        albedo[idx] = look[:, :3]
        grain = np.zeros(h * w, np.float32)
        grain[idx] = self._grain[obj[idx]]
        return Hits(
            z=z.reshape(h, w),
            obj=obj.reshape(h, w),
            grain=grain.reshape(h, w),
            albedo_rgb=albedo.reshape(h, w, 3),
            **{k: a.reshape(h, w) for k, a in out.items()},
        )

    def depth(self, T_base_cam: np.ndarray, camera: D4xxCamera) -> np.ndarray:
        """Noise-free depth (h, w) float64 metres along the optical axis; 0 where no surface is hit."""
        z = self.cast(T_base_cam, camera).z
        return np.where(np.isfinite(z), z, 0.0)


def render_mesh_depth(meshes: Sequence[object], T_base_cam: np.ndarray, camera: D4xxCamera | None = None) -> np.ndarray:
    """Ideal depth image of ``meshes`` (trimesh-like, base_link) seen from ``T_base_cam``.

    No noise, no quantisation, no range cut: the exact ray-cast depth. ``camera`` defaults to
    ``D4xxCamera()``.

    Returns:
        (h, w) float64 depth along the optical axis, metres; 0 where no surface is hit.
    """
    objs = [m if isinstance(m, SceneObject) else SceneObject.from_mesh(m) for m in meshes]
    return RayScene(objs, np.random.default_rng(0)).depth(T_base_cam, camera if camera is not None else D4xxCamera())
