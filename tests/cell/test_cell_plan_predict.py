"""``gluecell plan`` without ``--bite-line`` runs the deformation step on the two scans."""

import subprocess
import sys

import numpy as np
import pytest

from gluecell.core.ply import write_ply
from gluecell.datasets.world import make_pair


@pytest.fixture(scope="module")
def clouds(tmp_path_factory):
    d = tmp_path_factory.mktemp("planpredict")
    pair = make_pair(31, style="sneaker")
    rng = np.random.default_rng(0)
    for part, mesh in (("upper", pair.upper_mesh), ("sole", pair.sole_mesh)):
        pts, face = mesh.sample(30_000, return_index=True, seed=1)
        pts = pts + rng.normal(scale=0.1e-3, size=pts.shape)
        nrm = mesh.face_normals[face]
        write_ply(d / f"{part}.ply", pts, nrm)
        if part == "sole":  # the same sole turned tread-up on its tray
            c = pts.mean(axis=0)
            flipped = (pts - c) * [1, -1, -1] + c
            write_ply(d / "sole_flipped.ply", flipped, nrm * [1, -1, -1])
    return d


def _plan(d, sole, out):
    cmd = [sys.executable, "-m", "gluecell.cell.cli", "plan", "--upper", str(d / "upper.ply"), "--sole",
           str(d / sole), "--out", str(out)]  # fmt: skip
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300)


def test_plan_refuses_through_deformation_when_the_sole_is_upside_down(clouds, tmp_path):
    out = tmp_path / "plan.json"
    res = _plan(clouds, "sole_flipped.ply", out)
    assert res.returncode == 2
    assert "upside" in res.stderr.lower() or "tread" in res.stderr.lower(), res.stderr
    assert not out.exists()


def test_predict_bite_line_wiring_gives_a_line_on_the_upper(clouds):
    from scipy.spatial import cKDTree

    from gluecell.cell.cmd_plan import predict_bite_line
    from gluecell.core.ply import read_ply

    line, ms, sigma = predict_bite_line(clouds / "upper.ply", clouds / "sole.ply")
    assert line.shape[1] == 3 and len(line) > 200 and ms > 0 and 0 < sigma < 1e-3  # refused above 1 mm
    d, _ = cKDTree(read_ply(clouds / "upper.ply").points).query(line)
    assert np.median(d) < 2e-3  # the predicted line lies on the scanned upper


def test_margin_follows_the_predicted_lines_sigma():
    from gluecell.cell.cmd_plan import with_margin
    from gluecell.core.errors import ConfigError
    from gluecell.pathplan.pipeline import PathplanConfig
    from gluecell.pathplan.region import RegionParams

    cfg = with_margin(PathplanConfig(), 0.4e-3, 2.0)
    assert cfg.region.bite_margin_mm == pytest.approx(0.8)
    own = PathplanConfig(region=RegionParams(bite_margin_mm=1.2))
    assert with_margin(own, 0.4e-3, 2.0).region.bite_margin_mm == pytest.approx(1.2)  # the config's floor holds
    assert with_margin(PathplanConfig(), 4e-3, 2.0).region.bite_margin_mm == pytest.approx(5.0)  # capped
    with pytest.raises(ConfigError, match="margin-sigmas"):
        with_margin(PathplanConfig(), 0.4e-3, float("nan"))
