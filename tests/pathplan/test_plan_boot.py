"""The real scanned boot (../shared/data/external): its upper path stays below the boot's own sole/upper crease."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

BOOT = Path(__file__).resolve().parents[3] / "shared" / "data" / "external" / "boot" / "boot.obj"
#: Glue beyond the junction on the real boot's surface (issue goal for the bite line: max <= 0.5 mm).
MAX_ABOVE_MM = 0.5


@pytest.mark.external
@pytest.mark.slow
def test_boot_upper_path_stays_below_its_junction():
    if not BOOT.is_file():
        pytest.skip(f"external data not present: {BOOT}")
    import trimesh

    from gluecell.cell.bench.pathplan import judge_upper
    from gluecell.deformation.junction import find_junction, load_mesh
    from gluecell.pathplan.pipeline import PathplanConfig, film_limit, plan_part

    V, F = load_mesh(BOOT)
    junction = find_junction(V, F, up_axis="+y", toe_axis="+x").line
    # mesh frame: +y up, toe +x -> base_link bottom-up at the upper station (tread up, highest point 0.20 m)
    R = np.array([[1.0, 0, 0], [0, 0, 1.0], [0, -1.0, 0]])
    Vb, Lb = V @ R.T, junction @ R.T
    off = np.r_[np.array([0.55, -0.20]) - Vb[:, :2].mean(axis=0), 0.20 - Vb[:, 2].max()]
    mesh = trimesh.Trimesh(Vb + off, F, process=False)
    pts, fi = trimesh.sample.sample_surface(mesh, 40000, seed=1)
    noisy = pts + np.random.default_rng(2).normal(0, 2e-4, pts.shape)
    pp = plan_part("upper", noisy, PathplanConfig(), bite_line=Lb + off, normals=mesh.face_normals[fi], robot=False)
    assert pp.metrics["above_visible_mm"] <= film_limit(PathplanConfig())[1]
    truth = {"upper_mesh": mesh, "upper_bond_faces": np.ones(len(F), bool), "bite_line": Lb + off}
    judged = judge_upper(pp.path, truth, seed=3, n=80_000)
    assert judged["above_visible_mm"] <= MAX_ABOVE_MM, judged
