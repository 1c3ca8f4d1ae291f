"""``gluecell scan --mesh``: cleaned scan + TSDF fusion of all views into a mesh, end to end on a world pair."""

import subprocess
import sys

import numpy as np
import pytest
import trimesh

from gluecell.core.ply import read_ply
from gluecell.datasets.format import open_dataset
from gluecell.datasets.generate import GenerateOptions, generate_dataset, load_generate_config

#: Mean / p95 distance of the fused mesh vertices from the true upper surface (mm).
MEAN_TOL_MM = 1.0
P95_TOL_MM = 2.5


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("scanmesh") / "w"
    w, s = load_generate_config(None)
    generate_dataset(root, GenerateOptions(n=1, seed=21, world=w, scanner=s, workers=1))
    return root


def test_scan_mesh_cli_fuses_views_into_a_mesh_on_the_true_surface(world, tmp_path):
    out = tmp_path / "upper.ply"
    cmd = [sys.executable, "-m", "gluecell.cell.cli", "scan", "--source", f"sim:{world}/inputs/00000",
           "--part", "upper", "--out", str(out), "--mesh"]  # fmt: skip
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    cloud = read_ply(out)
    assert cloud.faces is not None and len(cloud.faces) > 10_000
    assert np.allclose(np.linalg.norm(cloud.normals, axis=1), 1.0, atol=1e-3)
    true = open_dataset(world).truth("00000")["upper_mesh"]
    _, dist, _ = trimesh.proximity.closest_point(true, cloud.points[::10])
    assert dist.mean() * 1e3 < MEAN_TOL_MM
    assert np.percentile(dist, 95) * 1e3 < P95_TOL_MM
    # the fused surface stays on the part: nothing of the floor or the fixture far below
    assert cloud.points[:, 2].min() > true.vertices[:, 2].min() - 0.01
