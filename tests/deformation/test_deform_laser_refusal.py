"""World 2's top-down laser clouds (issue 14, item 2): ``gluecell predict`` refuses them with a reason a person can
act on (the side of the upper and the cup's inner wall are not in a cloud taken from straight above), not a crash."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="module")
def laser_clouds(tmp_path_factory):
    """A world-2 pair's laser-profiler clouds (no normals, outliers, the floor and the tray) as PLY files."""
    from gluecell.core.ply import write_ply
    from gluecell.datasets.world2.config import Scanner2Config, World2Config
    from gluecell.datasets.world2.pair import make_pair2
    from gluecell.datasets.world2.scanner import laser_cloud

    d = tmp_path_factory.mktemp("laser")
    pair = make_pair2(np.random.SeedSequence(5))
    rng = np.random.default_rng(0)
    for part in ("upper", "sole"):
        write_ply(d / f"{part}.ply", laser_cloud(pair, part, rng, Scanner2Config(), World2Config()))
    return d


@pytest.mark.parametrize(("laser_part", "expected"), [
    ("upper", ("is not a lasted upper", "straight above", "views from the side")),
    ("sole", ("inner wall is not in the scan", "look into the cup")),
])  # fmt: skip
def test_a_top_down_cloud_is_refused_with_what_to_do(laser_clouds, flat_pair, tmp_path, capsys, laser_part,
                                                     expected) -> None:  # fmt: skip
    """A top-down laser cloud of one part (the other part a cloud the checks accept) is refused with what to do."""
    from gluecell.cell.cli import main
    from gluecell.core.ply import write_ply

    upper, sole, _ = flat_pair
    other = sole if laser_part == "upper" else upper
    write_ply(tmp_path / "other.ply", other.points, other.normals)
    clouds = {laser_part: laser_clouds / f"{laser_part}.ply"}
    clouds.setdefault("upper", tmp_path / "other.ply")
    clouds.setdefault("sole", tmp_path / "other.ply")
    out = tmp_path / "a.json"
    rc = main(["predict", "--upper", str(clouds["upper"]), "--sole", str(clouds["sole"]), "--out", str(out),
               "--no-calibration"])  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 2 and not out.exists()
    assert all(text in err for text in expected), err


@pytest.mark.parametrize("upside_down", [False, True])
def test_a_cup_seen_only_from_above_is_not_called_tread_up(geom, upside_down) -> None:
    """Seen only from straight above (no walls), a footbed-up cup's footbed is as high in the middle as at its edge,
    which the footbed-vs-edge test alone took for a sole lying tread up ("turn it over": wrong advice, 3 of world 2's
    24 laser soles); its rim standing above the footbed tells it apart."""
    from gluecell.core.types import PartScan
    from gluecell.deformation.errors import NotASoleError, SoleUpsideDownError
    from gluecell.deformation.inputs import check_sole_cavity

    scan = geom.scan_mesh(geom.make_sole(upside_down=upside_down), "sole", seed=6)
    top = scan.normals[:, 2] > 0.5  # what a profiler straight above sees: no walls
    seen = PartScan(part="sole", points=scan.points[top], normals=scan.normals[top], item_id="t")
    with pytest.raises(SoleUpsideDownError if upside_down else NotASoleError) as err:
        check_sole_cavity(seen, 0.0, 0.75)
    assert upside_down or "look into the cup" in str(err.value)
