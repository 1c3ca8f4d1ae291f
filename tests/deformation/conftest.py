"""Simple test geometry for the deformation tests: a lasted upper (bottom up) and a cup sole (footbed up).

Built with trimesh as ring meshes over a shoe-like outline; independent of the synthetic world.
"""

from __future__ import annotations

import numpy as np
import pytest

from gluecell.core.types import PartScan

UPPER_STATION = (0.55, -0.20)
SOLE_STATION = (0.55, 0.20)
N_ANG = 360


def outline(half_length: float = 0.135, half_width: float = 0.05, n: int = N_ANG) -> np.ndarray:
    """(n, 2) closed shoe-like outline (toe +x, wider at the toe, slightly banana-shaped), CCW."""
    phi = np.linspace(0, 2 * np.pi, n, endpoint=False)
    x = half_length * np.cos(phi)
    y = half_width * np.sin(phi) * (1 + 0.15 * np.cos(phi)) + 0.008 * np.cos(phi) ** 2
    return np.column_stack([x, y])


def offset(curve: np.ndarray, d: float) -> np.ndarray:
    """Offset a closed CCW curve outward by ``d`` metres (negative: inward)."""
    t = np.roll(curve, -1, axis=0) - np.roll(curve, 1, axis=0)
    n = np.column_stack([t[:, 1], -t[:, 0]])
    n /= np.linalg.norm(n, axis=1, keepdims=True)
    return curve + d * n


def _ring_mesh(rings: list[np.ndarray], cap_first: bool, cap_last: bool):
    import trimesh

    m = len(rings[0])
    V = np.vstack(rings)
    F = []
    for j in range(len(rings) - 1):
        a = j * m + np.arange(m)
        b = j * m + (np.arange(m) + 1) % m
        c, d = a + m, b + m
        F += [np.column_stack([a, b, d]), np.column_stack([a, d, c])]
    F = np.vstack(F)
    extra_v, extra_f = [], []
    for first, use in ((True, cap_first), (False, cap_last)):
        if not use:
            continue
        ring = rings[0] if first else rings[-1]
        base = 0 if first else (len(rings) - 1) * m
        ci = len(V) + len(extra_v)
        extra_v.append(ring.mean(axis=0))
        a = base + np.arange(m)
        b = base + (np.arange(m) + 1) % m
        f = np.column_stack([np.full(m, ci), b, a]) if first else np.column_stack([np.full(m, ci), a, b])
        extra_f.append(f)
    V = np.vstack([V, *extra_v]) if extra_v else V
    F = np.vstack([F, *extra_f])
    mesh = trimesh.Trimesh(V, F, process=True)
    mesh.fix_normals()
    return mesh


def make_upper(
    *,
    z_bottom: float = 0.17,
    fillet: float = 0.004,
    depth: float = 0.09,
    toe_spring: float = 0.0,
    scale: float = 1.0,
    yaw_deg: float = 0.0,
    station=UPPER_STATION,
):
    """A lasted upper bottom up: flat (or toe-sprung) bottom at ``z_bottom``, vertical sides, rounded edge."""
    base = outline() * scale
    cx = base[:, 0]

    def zb(x: np.ndarray) -> np.ndarray:
        hl = 0.135 * scale
        return z_bottom - toe_spring * np.clip((x - 0.3 * hl) / (0.7 * hl), 0, None) ** 2

    rings = []
    for f in (0.2, 0.5, 0.8, 0.95):  # bottom cap rings (inner first)
        c = base * f
        rings.append(np.column_stack([c, zb(c[:, 0])]))
    for dep in np.concatenate([np.linspace(0, fillet, 8), np.linspace(fillet + 1e-3, depth, 30)]):
        inset = fillet - np.sqrt(max(fillet**2 - (fillet - dep) ** 2, 0.0)) if dep < fillet else 0.0
        c = offset(base, -inset)
        rings.append(np.column_stack([c, zb(cx) - dep]))
    mesh = _ring_mesh(rings, cap_first=True, cap_last=True)
    return _place(mesh, station, yaw_deg)


def make_sole(
    *,
    height: float = 0.02,
    wall: float = 0.005,
    undersize: float = 0.0,
    fillet: float = 0.004,
    footbed_thickness: float = 0.012,
    tread_z: float = 0.02,
    yaw_deg: float = 0.0,
    scale: float = 1.0,
    upside_down: bool = False,
    station=SOLE_STATION,
):
    """A cup sole footbed up; its cavity outline is the upper's outline (mirrored in y) shrunk by ``undersize``."""
    inner = outline() * scale * (1.0 - undersize)
    inner[:, 1] *= -1
    inner = inner[::-1]  # keep CCW after the mirror
    zf = tread_z + footbed_thickness
    rings = []
    for f in (0.2, 0.5, 0.8):
        rings.append(np.column_stack([inner * f, np.full(len(inner), zf)]))
    for a in np.linspace(0, np.pi / 2, 8):
        ins = fillet * (1 - np.sin(a))
        rings.append(np.column_stack([offset(inner, -ins), np.full(len(inner), zf + fillet * (1 - np.cos(a)))]))
    for z in np.linspace(zf + fillet + 1e-3, zf + height, 12):
        rings.append(np.column_stack([inner, np.full(len(inner), z)]))
    outer = offset(inner, wall)
    rings.append(np.column_stack([outer, np.full(len(inner), zf + height)]))
    for z in np.linspace(zf + height - 1e-3, tread_z, 12):
        rings.append(np.column_stack([outer, np.full(len(inner), z)]))
    for f in (0.8, 0.5, 0.2):
        rings.append(np.column_stack([outer * f, np.full(len(inner), tread_z)]))
    mesh = _ring_mesh(rings, cap_first=True, cap_last=True)
    if upside_down:
        import trimesh

        mesh.apply_transform(trimesh.transformations.rotation_matrix(np.pi, [1, 0, 0]))
        mesh.apply_translation([0, 0, tread_z - mesh.bounds[0, 2]])
    return _place(mesh, station, yaw_deg)


def _place(mesh, station, yaw_deg: float):
    import trimesh

    mesh.apply_transform(trimesh.transformations.rotation_matrix(np.radians(yaw_deg), [0, 0, 1]))
    mesh.apply_translation([station[0], station[1], 0.0])
    return mesh


def scan_mesh(mesh, part: str, *, n: int = 60000, noise: float = 1e-4, seed: int = 0, min_nz: float = -0.3):
    """PartScan of the surface seen from above: area-uniform samples with face normals and z noise."""
    import trimesh

    rng = np.random.default_rng(seed)
    pts, fi = trimesh.sample.sample_surface(mesh, n, seed=int(rng.integers(1 << 31)))
    nrm = mesh.face_normals[fi]
    keep = nrm[:, 2] > min_nz
    pts = pts[keep] + rng.normal(0.0, noise, size=(int(keep.sum()), 3))
    return PartScan(part=part, points=pts, normals=nrm[keep], item_id="test")


@pytest.fixture(scope="session")
def flat_pair():
    """(upper_scan, sole_scan, upper_mesh) of a flat sole (20 mm wall, no undersize) on a flat bottom."""
    upper = make_upper()
    sole = make_sole(height=0.02, undersize=0.0)
    return scan_mesh(upper, "upper", seed=1), scan_mesh(sole, "sole", seed=2), upper


@pytest.fixture(scope="session")
def geom():
    """The geometry builders of this file (test modules cannot import conftest under importlib mode)."""
    from types import SimpleNamespace

    return SimpleNamespace(make_upper=make_upper, make_sole=make_sole, scan_mesh=scan_mesh, outline=outline)


@pytest.fixture(scope="session")
def rough_pair(geom):
    """A toe-sprung, turned upper and a sole with a lower wall, sparse noisy scans (stations fail here and there)."""
    up = geom.scan_mesh(geom.make_upper(toe_spring=0.012, yaw_deg=7.0), "upper", n=25000, noise=3e-4, seed=5)
    so = geom.scan_mesh(geom.make_sole(height=0.014, undersize=0.02, yaw_deg=-4.0), "sole", n=20000, noise=3e-4,
                        seed=6)  # fmt: skip
    return up, so
