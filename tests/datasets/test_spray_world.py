"""True spray outcome on world pairs: glue above the true bite line, bond coverage, the free sole."""

import numpy as np
import pytest
import trimesh
from scipy.spatial import cKDTree

from gluecell.core.arrays import save_npz
from gluecell.core.fileio import atomic_write_json
from gluecell.core.plan import Plan
from gluecell.core.ply import write_ply
from gluecell.core.types import SprayPath
from gluecell.datasets.format import Dataset, sample_ids
from gluecell.datasets.world import make_pair
from gluecell.datasets.world.spray import (
    SprayInputError,
    SprayWorldConfig,
    score_sole,
    score_upper,
    simulate_spray,
    spray_and_score,
)
from gluecell.datasets.world.spray_motion import nozzle_quaternions

#: Edge pass: nozzle 8 mm from the surface at 400 mm/s (pathplan's edge-pass defaults).
EDGE_STANDOFF_M, EDGE_SPEED_M_S = 0.008, 0.4
#: "Well below": the mist edge of an 8 mm pass is 8 tan(1.5 x 11.55 deg) ~ 2.5 mm from its centre.
WELL_BELOW_M = 0.005
#: The crossing pass runs this far above the bite line.
ABOVE_M = 0.002
#: Slack of the glue-above bound: face centroids (~0.6 mm), levelling (0.6 mm), path error (~0.3 mm).
ABOVE_SLACK_M = 1.5e-3
#: Truth read back from float32 PLY (as the dataset loader gives it) changes the metrics this little
#: (relative and absolute, in the metrics' units).
FLOAT32_TOL = 1e-3


def edge_pass(pair, offset_m: float, standoff_m: float = EDGE_STANDOFF_M, speed: float = EDGE_SPEED_M_S):
    """A closed pass along the true bite line, ``offset_m`` towards the feather edge (< 0: above the
    line), nozzle along the smoothed inward surface normal, nozzle +x towards base_link +z."""
    bl, fe = pair.bite_line, pair.feather_edge
    j = cKDTree(fe).query(bl)[1]
    down = fe[j] - bl
    down /= np.linalg.norm(down, axis=1, keepdims=True)
    pts, _, fid = trimesh.proximity.closest_point(pair.upper_mesh, bl + offset_m * down)
    n = pair.upper_mesh.face_normals[fid]
    k = 5
    n = np.stack([np.convolve(np.r_[n[-k:, c], n[:, c], n[:k, c]], np.ones(2 * k + 1), "valid") for c in range(3)], 1)
    n /= np.linalg.norm(n, axis=1, keepdims=True)
    tip = np.vstack([pts + standoff_m * n, pts[:1] + standoff_m * n[:1]])
    axis = -np.vstack([n, n[:1]])
    t = np.r_[0.0, np.cumsum(np.linalg.norm(np.diff(tip, axis=0), axis=1))] / speed
    spray = np.r_[np.ones(len(tip) - 1, bool), False]
    return SprayPath("upper", t, tip, nozzle_quaternions(axis), spray)


def raster(mesh, mask, T, standoff_m=0.035, spacing_m=9.5e-3, speed=0.3, extend_m=0.0, part="sole"):
    """Lines along the part's x axis over the faces ``mask``, nozzle pointing down, ``standoff_m`` above them."""
    c = mesh.triangles_center[mask]
    u, w = (c - T[:3, 3]) @ T[:3, 0], (c - T[:3, 3]) @ T[:3, 1]
    z = c[:, 2].max() + standoff_m
    xyz, spray = [], []
    for k, wl in enumerate(np.arange(w.min() + spacing_m / 2, w.max(), spacing_m)):
        sel = np.abs(w - wl) < spacing_m / 2
        s = np.arange(u[sel].min() - extend_m, u[sel].max() + extend_m, 1e-3)
        s = s[::-1] if k % 2 else s
        p = T[:3, 3] + s[:, None] * T[:3, 0] + wl * T[:3, 1]
        p[:, 2] = z
        xyz.append(p)
        spray.append(np.r_[np.ones(len(p) - 1, bool), False])
    xyz = np.vstack(xyz)
    t = np.r_[0.0, np.cumsum(np.linalg.norm(np.diff(xyz, axis=0), axis=1))] / speed
    q = nozzle_quaternions(np.tile([0.0, 0.0, -1.0], (len(xyz), 1)), T[:3, 0])
    return SprayPath(part, t, xyz, q, np.concatenate(spray))


@pytest.fixture(scope="module")
def pair():
    return make_pair(21, style="sneaker")


def test_spraying_well_below_the_bite_line_leaves_nothing_above_it(pair):
    out = simulate_spray(pair.upper_mesh, edge_pass(pair, WELL_BELOW_M), 1)
    s = score_upper(pair, out)
    assert s["glue_above_max_mm"] == 0.0 and s["glue_above_p99_mm"] == 0.0 and s["glue_above_area_mm2"] == 0.0
    assert s["coverage"] > 0.02  # it did glue the bond region
    assert s["band_coverage_2mm"] < 0.2  # but not up to the line: the band next to it stays a gap


def test_a_pass_above_the_bite_line_leaves_glue_above_by_the_right_amount(pair):
    cfg = SprayWorldConfig()
    out = simulate_spray(pair.upper_mesh, edge_pass(pair, -ABOVE_M), 2, cfg)
    s = score_upper(pair, out)
    alpha = np.radians(cfg.fan_half_angle_deg[0]) * (1 + cfg.fan_var)
    core = EDGE_STANDOFF_M * np.tan(np.radians(cfg.fan_half_angle_deg[0]))
    mist = EDGE_STANDOFF_M * np.tan(cfg.mist_angle_scale * alpha)
    assert (ABOVE_M + 0.5 * core) * 1e3 < s["glue_above_max_mm"] < (ABOVE_M + mist + ABOVE_SLACK_M) * 1e3
    assert ABOVE_M * 1e3 < s["glue_above_p99_mm"] <= s["glue_above_max_mm"]
    # the pass lays a band ~2-3 mm wide along a ~0.6 m line, all of it above the bite line
    perimeter = np.linalg.norm(np.diff(np.vstack([pair.bite_line, pair.bite_line[:1]]), axis=0), axis=1).sum()
    assert 1.5e-3 * perimeter * 1e6 < s["glue_above_area_mm2"] < (2 * mist + 1e-3) * perimeter * 1e6
    assert s["band_coverage_2mm"] < 0.1


def test_glue_at_the_line_covers_the_band_next_to_it(pair):
    below = score_upper(pair, simulate_spray(pair.upper_mesh, edge_pass(pair, 0.0015), 3))
    far = score_upper(pair, simulate_spray(pair.upper_mesh, edge_pass(pair, WELL_BELOW_M), 3))
    assert below["band_coverage_2mm"] > 0.9 > far["band_coverage_2mm"]
    assert below["gap_area_mm2"] + below["coverage"] * below["bond_area_mm2"] == pytest.approx(below["bond_area_mm2"])


def test_score_accepts_the_dataset_truth_dict(pair, tmp_path):
    # the truth files as datasets/generate.py writes them, read back by the dataset loader
    sid = sample_ids(1)[0]
    d = tmp_path / "truth" / sid
    d.mkdir(parents=True)
    write_ply(d / "upper.ply", pair.upper_mesh.vertices, faces=pair.upper_mesh.faces)
    write_ply(d / "sole.ply", pair.sole_mesh.vertices, faces=pair.sole_mesh.faces)
    arrays = ("bite_line", "feather_edge", "upper_bond_faces", "sole_bond_faces", "T_base_upper", "T_base_sole")
    save_npz(d / "truth.npz", {k: np.asarray(getattr(pair, k)) for k in arrays})
    atomic_write_json(d / "params.json", pair.params.to_dict())
    truth = Dataset(root=tmp_path, info={"splits": {"test": [sid]}}).truth(sid)
    out = simulate_spray(truth["upper_mesh"], edge_pass(pair, -ABOVE_M), 4)
    a, b = score_upper(pair, out), score_upper(truth, out)
    assert a.keys() == b.keys() and a["glue_above_max_mm"] > 0
    for k in a:
        assert b[k] == pytest.approx(a[k], rel=FLOAT32_TOL, abs=FLOAT32_TOL)
    sole = simulate_spray(truth["sole_mesh"], raster(truth["sole_mesh"], truth["sole_bond_faces"], pair.T_base_sole), 4)
    assert score_sole(truth, sole) == pytest.approx(score_sole(pair, sole), rel=FLOAT32_TOL, abs=FLOAT32_TOL)


def test_sole_footbed_centre_stays_inside_and_overspray_is_found(pair):
    sole, T = pair.sole_mesh, pair.T_base_sole
    c = sole.triangles_center
    footbed = pair.sole_bond_faces & (sole.face_normals[:, 2] > 0.95)
    walls = np.abs(sole.face_normals[:, 2]) < 0.7  # inner and outer walls (not the tread under the footbed)
    wall = cKDTree(c[walls][:, :2]).query(c[:, :2])[0]
    centre = footbed & (wall > 0.02)
    inside = score_sole(pair, simulate_spray(sole, raster(sole, centre, T), 5, part="sole"))
    assert inside["outside_area_mm2"] == 0.0 and inside["outside_max_mm"] == 0.0
    assert 0.05 < inside["coverage"] < 0.9
    whole = score_sole(pair, simulate_spray(sole, raster(sole, np.ones(len(c), bool), T, extend_m=0.01), 5))
    # straight down, the footbed is covered but the vertical inner wall only in part (grazing, shaded)
    assert whole["coverage"] > max(inside["coverage"], 0.6)
    assert whole["outside_area_mm2"] > 100.0 and whole["outside_max_mm"] > 1.0
    assert whole["outside_p99_mm"] <= whole["outside_max_mm"]


def test_spray_and_score_runs_both_parts_of_a_plan(pair):
    up = edge_pass(pair, WELL_BELOW_M)
    sole_path = raster(pair.sole_mesh, pair.sole_bond_faces, pair.T_base_sole)
    plan = Plan(bite_line=pair.bite_line, paths=(up, sole_path))
    got = spray_and_score(pair, plan, 9)
    rng = np.random.default_rng(9)
    want_u = score_upper(pair, simulate_spray(pair.upper_mesh, up, rng))
    want_s = score_sole(pair, simulate_spray(pair.sole_mesh, sole_path, rng))
    assert got == {"upper": want_u, "sole": want_s}
    assert spray_and_score(pair, [up], 9).keys() == {"upper"}
    with pytest.raises(SprayInputError, match="part"):
        spray_and_score(pair, [{"t": up.t, "xyz": up.xyz, "quat_xyzw": up.quat_xyzw, "spray": up.spray}], 9)
