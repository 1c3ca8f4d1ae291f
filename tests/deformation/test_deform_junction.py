"""Junction finder on the real scanned boot (../shared/data/external) and on a synthetic attached pair."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gluecell.deformation.junction import find_junction, load_mesh, plot_junction

BOOT = Path(__file__).resolve().parents[3] / "shared" / "data" / "external" / "boot" / "boot.obj"
#: Heights above the tread the junction may take on the boot (metres). The heel half sits at 40-50 mm as
#: described in the data README; in the forefoot the sole is lower and the crease, checked on cross-sections
#: and a shaded render, sits at 27-32 mm.
BOOT_BAND = (0.025, 0.055)
BOOT_HEEL_BAND = (0.035, 0.055)
MAX_SPACING = 1.0e-3
MIN_COVERAGE = 0.85


@pytest.mark.external
@pytest.mark.slow
def test_boot_junction_all_round(tmp_path) -> None:
    if not BOOT.exists():
        pytest.skip(f"external data absent: {BOOT} (see ../shared/data/external/README.md)")
    V, F = load_mesh(BOOT)
    res = find_junction(V, F, up_axis="+y", toe_axis="+x")
    line = res.line
    assert res.coverage >= MIN_COVERAGE
    assert np.linalg.norm(np.roll(line, -1, axis=0) - line, axis=1).max() <= MAX_SPACING
    # all round: the plan angle about the outline centre (mesh x, z plane) sweeps one full turn
    c = line[:, [0, 2]].mean(axis=0)
    ang = np.unwrap(np.arctan2(line[:, 2] - c[1], line[:, 0] - c[0]))
    assert abs(abs(ang[-1] - ang[0]) - 2 * np.pi) < 0.1
    assert BOOT_BAND[0] <= res.height_m.min() and res.height_m.max() <= BOOT_BAND[1]
    heel = line[:, 0] < np.percentile(V[:, 0], 30)
    assert heel.sum() > 50
    assert BOOT_HEEL_BAND[0] <= res.height_m[heel].min() and res.height_m[heel].max() <= BOOT_HEEL_BAND[1]
    # on the surface: every junction point lies on the mesh
    import trimesh

    d = np.abs(trimesh.proximity.signed_distance(trimesh.Trimesh(V, F, process=False), line[::10]))
    assert np.percentile(d, 95) < 1.5e-3
    png = tmp_path / "junction.png"
    plot_junction(V, F, res, png)
    assert png.stat().st_size > 10_000


def test_synthetic_pair_junction_at_the_rim(geom) -> None:
    """A sole cup (25 mm rim over a 12 mm footbed) on an upper: the crease is at the rim height."""
    import trimesh

    sole = geom.make_sole(height=0.025, footbed_thickness=0.012, tread_z=0.0, station=(0.0, 0.0))
    upper = geom.make_upper(z_bottom=0.0, depth=0.12, station=(0.0, 0.0), scale=1.003)
    upper.apply_transform(trimesh.transformations.rotation_matrix(np.pi, [1, 0, 0]))
    upper.apply_translation([0, 0, 0.012 - upper.bounds[0, 2]])
    shoe = trimesh.boolean.union([sole, upper])
    res = find_junction(np.asarray(shoe.vertices), np.asarray(shoe.faces), up_axis="+z", toe_axis="+x")
    assert res.coverage >= MIN_COVERAGE
    assert np.median(res.height_m) == pytest.approx(0.012 + 0.025, abs=1.5e-3)
