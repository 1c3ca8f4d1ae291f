"""The scan stage on the synthetic world's virtual D405 frames, and on virtual scans of the real boot.

The world's sensor model has noise at 3x the FACTS.md formula, dark-leather dropouts, flying pixels,
a floor, the sole's tray and the upper's fixture post, and the frames carry the cell's believed
camera poses (with hidden hand-eye error): the scan must come out clean without special cases.
"""

from __future__ import annotations

import numpy as np
import pytest

from gluecell.perception.errors import MultiplePartsError
from gluecell.perception.scan import scan_part_frames

#: Surface error of the cleaned cloud against the true mesh, mm. Measured over 16 random pairs
#: (both parts): mean 0.27-0.47, p95 0.67-1.20; raw single pixels are ~0.9 mm mean off the surface.
MEAN_TOL_MM = 0.7
P95_TOL_MM = 1.7
#: Normals agreeing in side with the true surface normal at the closest point.
OUTWARD_MIN = 0.95
#: Of the true surface facing up (the upper's bottom, the sole's footbed: what is sprayed), this
#: fraction has a scan point within COVER_DIST_M.
COVER_MIN = 0.9
COVER_DIST_M = 0.004
N_CHECK = 3000


def _compare(scan, mesh, rng):
    import trimesh

    idx = rng.choice(len(scan.points), size=min(N_CHECK, len(scan.points)), replace=False)
    p, n = scan.points[idx], scan.normals[idx]
    _, dist, tri = trimesh.proximity.closest_point(mesh, p)
    outward = np.einsum("ij,ij->i", n, mesh.face_normals[tri]) > 0
    return dist * 1e3, outward


def _covered(scan, mesh) -> float:
    """Fraction of the mesh's upward-facing vertices with a scan point within COVER_DIST_M."""
    from scipy.spatial import cKDTree

    up = mesh.vertices[mesh.vertex_normals[:, 2] > 0.5]
    d, _ = cKDTree(scan.points).query(up, distance_upper_bound=COVER_DIST_M)
    return float(np.mean(np.isfinite(d)))


@pytest.mark.slow
@pytest.mark.parametrize(("seed", "style"), [(11, "sneaker"), (12, "boot")])
def test_world_pair_scans_clean(seed, style):
    from gluecell.datasets.world import make_pair
    from gluecell.datasets.world.scanner import scan_part

    pair = make_pair(seed, style=style)
    rng = np.random.default_rng(seed)
    for part in ("upper", "sole"):
        mesh = pair.upper_mesh if part == "upper" else pair.sole_mesh
        shot = scan_part(pair, part, rng)
        scan = scan_part_frames(shot.frames, part, item_id=pair.item.item_id)
        err, outward = _compare(scan, mesh, rng)
        assert err.mean() < MEAN_TOL_MM, f"{style} {part}: mean {err.mean():.3f} mm"
        assert np.percentile(err, 95) < P95_TOL_MM, f"{style} {part}: p95 {np.percentile(err, 95):.3f} mm"
        assert outward.mean() > OUTWARD_MIN, f"{style} {part}: {outward.mean():.3f} outward"
        assert _covered(scan, mesh) > COVER_MIN, f"{style} {part}: the top is not covered"
        # cameras alone also give scans (the one-view latency figure depends on it); on dark leather one low
        # oblique view and the toe camera (it sees only the toe, from below) may split into pieces through
        # dropouts (known limit: the cell uses all views)
        alone = 0
        for frame in shot.frames:
            try:
                alone += len(scan_part_frames([frame], part)) > 1000
            except MultiplePartsError:
                pass
        assert alone >= len(shot.frames) - (2 if style == "boot" else 1)


@pytest.mark.external
@pytest.mark.slow
def test_real_boot_virtual_scan_cleans(capsys, boot_on_station):
    import trimesh

    from gluecell.datasets.world.scanner import (
        STYLE_MATERIALS,
        D4xxCamera,
        environment_objects,
        render_scene,
        station_camera_poses,
    )
    from gluecell.datasets.world.scanner_render import SceneObject

    rng = np.random.default_rng(5)
    v, f = boot_on_station
    mesh = trimesh.Trimesh(v, f, process=False)
    part = SceneObject.from_mesh(mesh, STYLE_MATERIALS["boot"][0], "part")
    scene = [part, *environment_objects("upper", v)]
    frames = [render_scene(scene, T, T, D4xxCamera(), rng) for T in station_camera_poses("upper")]
    scan = scan_part_frames(frames, "upper")
    err, outward = _compare(scan, mesh, rng)
    with capsys.disabled():
        print(
            f"\nboot scan: {len(scan)} points, surface error mean {err.mean():.3f} mm, "
            f"p95 {np.percentile(err, 95):.3f} mm, {scan.diagnostics['ms_total']:.0f} ms"
        )
    assert err.mean() < MEAN_TOL_MM and np.percentile(err, 95) < P95_TOL_MM
    assert outward.mean() > OUTWARD_MIN
    assert _covered(scan, mesh) > COVER_MIN, "the boot's sole (the top) must be covered"
