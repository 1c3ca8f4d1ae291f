"""The world's side of inspection: executed-path spraying with faults, UV rendering, labels, the dataset."""

import json
import shutil

import numpy as np
import pytest

from gluecell.core.types import SprayPath
from gluecell.datasets.errors import DatasetsError
from gluecell.datasets.world.spray import SprayInputError
from gluecell.datasets.world.uv_spray import SprayFaults, shift_gun

#: Seconds within which a shifted gun edge must land (waypoints are inserted at the exact time).
EDGE_TOL_S = 1e-9


def _line_path(n: int = 50, v: float = 0.3) -> SprayPath:
    t = np.linspace(0.0, 1.0, n)
    xyz = np.column_stack([0.5 + v * t, np.full(n, -0.2), np.full(n, 0.15)])
    q = np.tile([0.0, 0.0, 0.0, 1.0], (n, 1))
    spray = np.zeros(n, dtype=bool)
    spray[10:40] = True
    return SprayPath(part="upper", t=t, xyz=xyz, quat_xyzw=q, spray=spray)


def _open_intervals(p: SprayPath) -> list[tuple[float, float]]:
    edges = np.diff(np.concatenate([[0], p.spray[:-1].astype(int), [0]]))
    return list(zip(p.t[np.flatnonzero(edges == 1)], p.t[np.flatnonzero(edges == -1)]))


@pytest.mark.parametrize(("on", "off"), [(0.05, 0.0), (-0.03, 0.02), (0.0, -0.1)])
def test_shift_gun_moves_the_edges_exactly(on, off):
    p = _line_path()
    (a0, b0), = _open_intervals(p)
    (a1, b1), = _open_intervals(shift_gun(p, on, off)[0])
    assert abs(a1 - (a0 + on)) < EDGE_TOL_S and abs(b1 - (b0 + off)) < EDGE_TOL_S


def test_shift_gun_early_opening_extends_before_the_path():
    p = _line_path()
    p = SprayPath(part="upper", t=p.t, xyz=p.xyz, quat_xyzw=p.quat_xyzw, spray=np.r_[True, p.spray[1:]])
    q = shift_gun(p, -0.2, 0.0)[0]
    assert q.t[0] == pytest.approx(-0.2) and q.spray[0]
    assert np.allclose(q.xyz[0], p.xyz[0])  # the robot stands at its first waypoint while the gun is open


def test_faults_are_validated():
    with pytest.raises(SprayInputError):
        SprayFaults(gun_on_shift_s=float("nan"))
    with pytest.raises(SprayInputError):
        SprayFaults(clogs=((2.0, 1.0, 0.5),))
    with pytest.raises(SprayInputError):
        SprayFaults(drips=((1.0, 5e-6),))  # 5 ml is not a drip
    assert SprayFaults(gun_on_shift_s=0.1, drips=((1.0, 2e-8),)).kinds == ("late_on", "drip")


@pytest.fixture(scope="module")
def sprayed():
    """One world pair planned on its true line (pathplan), for the fault tests."""
    from gluecell.cell.sim.outcomes import plan_upper
    from gluecell.datasets.world import make_pair

    pair = make_pair(np.random.SeedSequence(7), None, item_id="00007")
    return pair, plan_upper(pair, 0, scan_points=30_000).path


def _capture(sprayed, faults, views=(2, 6)):
    from gluecell.datasets.world.uv_capture import capture_inspection

    pair, path = sprayed
    return capture_inspection(pair, path, faults, 11, views=list(views))


def test_capture_gives_views_and_labels_that_follow_the_faults(sprayed):
    nominal = _capture(sprayed, SprayFaults())
    assert len(nominal.views) == 2
    v = nominal.views[0]
    assert v.image.shape == (256, 256, 3) and v.depth_before.dtype == np.uint16
    hit = v.depth_before > 0
    assert 0.2 < hit.mean() < 0.98
    # depth after spraying sees the film's top: closer where the thick glue is
    glue = nominal.labels[0]["masks"][0] & hit & (v.depth_after > 0)
    assert (v.depth_before[glue].astype(float) - v.depth_after[glue]).mean() > 0
    nom_gap = sum(lab["gap_area_mm2"] for lab in nominal.labels)
    clogged = _capture(sprayed, SprayFaults(pressure_factor=0.05))
    assert sum(lab["gap_area_mm2"] for lab in clogged.labels) > nom_gap + 50.0
    assert all(lab["verdict"] == "fail" for lab in clogged.labels)
    shifted = _capture(sprayed, SprayFaults(part_offset=(0.0, 0.0, np.radians(3.0))))
    assert max(lab["overspray_mm"] for lab in shifted.labels) > max(lab["overspray_mm"] for lab in nominal.labels)


def test_drip_makes_a_blob_label(sprayed):
    path = sprayed[1]
    faults = SprayFaults(drips=tuple((float(t), 40e-9) for t in np.linspace(path.t[5], path.t[-5], 12)))
    cap = _capture(sprayed, faults, views=range(8))
    assert any("blob" in lab["defects"] for lab in cap.labels)
    assert cap.film.lump_m.max() > 0.3e-3


def test_inspection_dataset_generation_resumes_identically(tmp_path):
    from gluecell.datasets.inspection import open_inspection
    from gluecell.datasets.inspection.generate import InspectionOptions, generate_inspection

    opts = InspectionOptions(n=3, seed=4, views_per_pair=1, workers=1)
    root = tmp_path / "ds"
    generate_inspection(root, opts)
    ds = open_inspection(root)
    assert len(ds.ids()) == 3 and {len(v) for v in ds.info["splits"].values()} == {1}
    vid = ds.ids()[1]
    before = (root / "inputs" / vid.partition("/")[0] / f"{vid.partition('/')[2]}.npz").read_bytes()
    shutil.rmtree(root / "labels" / vid.partition("/")[0])  # an interrupted pair
    res = generate_inspection(root, opts)
    assert res["generated"] == 1 and res["skipped"] == 2
    after = (root / "inputs" / vid.partition("/")[0] / f"{vid.partition('/')[2]}.npz").read_bytes()
    assert before == after
    lab = ds.labels(vid)
    assert lab["masks"].shape == (5, 256, 256) and lab["verdict"] in ("pass", "fail")
    assert not any(p.name.startswith("labels") for p in (root / "inputs").rglob("*"))  # no truth among the inputs
    assert json.loads((root / "labels" / vid.partition("/")[0] / "labels.json").read_text())["faults"] is not None
    with pytest.raises(DatasetsError):
        generate_inspection(root, InspectionOptions(n=3, seed=5, views_per_pair=1, workers=1))
