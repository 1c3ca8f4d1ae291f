"""Depth -> points -> cleaned part: values on synthetic frames (a box on a plane), and the bad inputs.

The frames are rendered here by exact ray casting (pinhole camera, plane z = 0, axis-aligned
boxes), so where every point must land is known analytically.
"""

from __future__ import annotations

import argparse
from dataclasses import replace

import numpy as np
import pytest

from gluecell.cell.cli import scan as cmd_scan
from gluecell.core.config import CellConfig
from gluecell.core.frames import save_frame
from gluecell.core.ply import read_ply
from gluecell.core.types import CameraIntrinsics, DepthFrame
from gluecell.perception.clean import CleanConfig
from gluecell.perception.cloud import deproject, frame_to_points
from gluecell.perception.errors import (
    EmptyDepthError,
    MultiplePartsError,
    PartCutError,
    PartNotFoundError,
    TooFewPointsError,
)
from gluecell.perception.scan import ScanConfig, scan_part_frames

#: Depth noise of the synthetic camera, metres (D405 at ~0.4 m, FACTS.md formula: ~0.4-1 mm).
NOISE_M = 0.0003
#: A cleaned point may lie this far outside the true box (voxel means at edges + noise).
POS_TOL_M = 0.002
#: Median distance of top-face points to the true top face.
TOP_MEDIAN_TOL_M = 0.0005
#: A scanned face's extent matches the true one within this (edges lose a pixel margin).
EXTENT_TOL_M = 0.006
#: The cup sole's footbed keeps this fraction of its length and width (its rim hides a strip from each view).
FOOTBED_SPAN_FRAC = 0.85
#: Fraction of the visible top face's expected points that must be there.
COVERAGE_FRAC = 0.8
#: The surface refinement must cut the noise of a noisy plane to under this fraction (8 neighbours average it).
REFINE_NOISE_FRAC = 0.6
#: Fraction of normals that must point the right way.
NORMAL_OK_FRAC = 0.95

UPPER = CellConfig().upper
CX, CY = UPPER.centre
#: An upper-sized block standing on a fixture post (metres, base_link).
BLOCK = ((CX - 0.13, CY - 0.05, 0.10), (CX + 0.13, CY + 0.05, 0.17))
POST = ((CX - 0.02, CY - 0.02, 0.0), (CX + 0.02, CY + 0.02, 0.10))
K = CameraIntrinsics(320, 240, 260.0, 260.0, 159.5, 119.5)


def look_at(eye, target) -> np.ndarray:
    """(4, 4) optical-frame pose (z forward, y down) at ``eye`` looking at ``target``."""
    eye, target = np.asarray(eye, float), np.asarray(target, float)
    z = target - eye
    z /= np.linalg.norm(z)
    up = np.array([0.0, 0.0, 1.0]) if abs(z[2]) < 0.99 else np.array([1.0, 0.0, 0.0])
    x = np.cross(z, up)
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    T = np.eye(4)
    T[:3, :3] = np.column_stack([x, y, z])
    T[:3, 3] = eye
    return T


def render(T, boxes, *, floor=True, noise=NOISE_M, seed=0, k=K) -> DepthFrame:
    """Depth frame of a floor (z = 0) and axis-aligned ``boxes`` ((lo, hi) corners), by ray casting."""
    u, v = np.meshgrid(np.arange(k.width), np.arange(k.height))
    dc = np.stack([(u - k.cx) / k.fx, (v - k.cy) / k.fy, np.ones_like(u, float)], axis=-1).reshape(-1, 3)
    d = dc @ T[:3, :3].T  # ray per unit optical depth, base_link
    o = T[:3, 3]
    t = np.full(len(d), np.inf)
    with np.errstate(divide="ignore", invalid="ignore"):
        if floor:
            tf = -o[2] / d[:, 2]
            t = np.where(tf > 0, tf, t)
        for lo, hi in boxes:
            a, b = (np.asarray(lo) - o) / d, (np.asarray(hi) - o) / d
            tn, tx = np.minimum(a, b).max(axis=1), np.maximum(a, b).min(axis=1)
            hit = (tn <= tx) & (tn > 0)
            t = np.where(hit & (tn < t), tn, t)
    t = t + np.random.default_rng(seed).normal(0.0, noise, t.shape)
    depth = np.where(np.isfinite(t), np.round(t / 1e-4), 0).clip(0, 65535).astype(np.uint16)
    return DepthFrame(depth.reshape(k.height, k.width), 1e-4, k, T, serial="synthetic")


def top_view(**kw) -> DepthFrame:
    return render(look_at((CX, CY, 0.55), (CX, CY, 0.0)), [BLOCK, POST], **kw)


def side_views() -> list[DepthFrame]:
    eyes = [(CX, CY - 0.40, 0.45), (CX, CY + 0.40, 0.45), (CX - 0.45, CY, 0.45)]
    return [render(look_at(e, (CX, CY, 0.12)), [BLOCK, POST], seed=i + 1) for i, e in enumerate(eyes)]


def inside(points, box, tol) -> np.ndarray:
    lo, hi = np.asarray(box[0]) - tol, np.asarray(box[1]) + tol
    return np.all((points >= lo) & (points <= hi), axis=1)


def test_deproject_exact_on_plane():
    T = look_at((CX, CY, 0.5), (CX, CY, 0.0))
    f = render(T, [], noise=0.0)
    cloud = frame_to_points(f)
    # every pixel sees the floor: z = 0 within depth quantisation (0.1 mm)
    assert len(cloud) == K.width * K.height
    assert np.max(np.abs(cloud.points[:, 2])) < 1e-4
    # the centre pixel (159.5, 119.5 is between pixels) lands below the camera
    assert np.allclose(cloud.points.mean(axis=0)[:2], [CX, CY], atol=1e-3)


def test_block_points_land_where_they_should():
    scan = scan_part_frames([top_view()], "upper")
    p = scan.points
    assert np.all(inside(p, BLOCK, POS_TOL_M)), "a cleaned point lies outside the true block"
    top = p[p[:, 2] > BLOCK[1][2] - 0.003]
    assert len(top) > 0.9 * len(p)
    assert np.median(np.abs(top[:, 2] - BLOCK[1][2])) < TOP_MEDIAN_TOL_M
    # the visible top face is covered: one point per voxel or per kept pixel, whichever is coarser
    cfg = ScanConfig()
    spacing = max(cfg.clean.voxel_m, cfg.depth.stride * (0.55 - BLOCK[1][2]) / K.fx)
    area = (BLOCK[1][0] - BLOCK[0][0]) * (BLOCK[1][1] - BLOCK[0][1])
    assert len(top) > COVERAGE_FRAC * area / spacing**2


def test_plane_removed_and_normals_outward():
    scan = scan_part_frames([top_view(), *side_views()], "upper")
    p, n = scan.points, scan.normals
    assert p[:, 2].min() > BLOCK[0][2] - POS_TOL_M, "floor or fixture post left in the scan"
    plane = scan.diagnostics["plane"]
    assert plane is not None and abs(plane[3]) < 0.001 and plane[2] > 0.999
    top = p[:, 2] > BLOCK[1][2] - 0.001
    interior = top & np.all(np.abs(p[:, :2] - (np.asarray(BLOCK[0][:2]) + BLOCK[1][:2]) / 2) < [0.12, 0.04], axis=1)
    assert np.mean(n[interior, 2] > 0.9) > NORMAL_OK_FRAC  # flat face, away from the edges
    assert np.mean(n[top, 2] > 0.0) > NORMAL_OK_FRAC  # edges tilt, but still face out
    centre = (np.asarray(BLOCK[0]) + np.asarray(BLOCK[1])) / 2
    side = (p[:, 2] < BLOCK[1][2] - 0.005) & (p[:, 2] > BLOCK[0][2] + 0.005)
    assert side.sum() > 1000, "the side views should see the block's sides"
    outward = np.einsum("ij,ij->i", n[side, :2], p[side, :2] - centre[:2]) > 0
    assert np.mean(outward) > NORMAL_OK_FRAC


def cup_sole(sx: float, sy: float) -> list:
    """A cup sole: a base (tread z = 0.02 to footbed z = 0.035) inside a 5 mm rim up to z = 0.05."""
    lo, hi, r = (sx - 0.13, sy - 0.045), (sx + 0.13, sy + 0.045), 0.005
    return [
        ((lo[0], lo[1], 0.02), (hi[0], hi[1], 0.035)),
        ((lo[0], lo[1], 0.035), (hi[0], lo[1] + r, 0.05)),
        ((lo[0], hi[1] - r, 0.035), (hi[0], hi[1], 0.05)),
        ((lo[0], lo[1], 0.035), (lo[0] + r, hi[1], 0.05)),
        ((hi[0] - r, lo[1], 0.035), (hi[0], hi[1], 0.05)),
    ]


def test_sole_on_a_tray_loses_floor_and_tray():
    sx, sy = CellConfig().sole.centre
    tray = ((sx - 0.155, sy - 0.07, 0.0), (sx + 0.155, sy + 0.07, 0.02))
    sole = ((sx - 0.13, sy - 0.045, 0.02), (sx + 0.13, sy + 0.045, 0.05))
    eyes = [(sx + 0.30, sy, 0.35), (sx - 0.25, sy - 0.35, 0.30), (sx - 0.25, sy + 0.35, 0.30)]
    frames = [render(look_at(e, (sx, sy, 0.03)), [tray, *cup_sole(sx, sy)], seed=i) for i, e in enumerate(eyes)]
    scan = scan_part_frames(frames, "sole")
    planes = scan.diagnostics["support_planes"]
    heights = [-pl[3] / pl[2] for pl in planes]
    assert abs(heights[0]) < 0.001, "the floor comes first"
    assert any(abs(h - 0.02) < 0.001 for h in heights[1:]), "then the tray top"
    assert max(heights) < 0.02 + 0.002, "nothing of the sole is taken for a support"
    assert np.all(inside(scan.points, sole, POS_TOL_M)), "tray or floor left in the sole scan"
    # the footbed (flat, inside its rim, but not a support) stays and spans the whole cup
    footbed = scan.points[(np.abs(scan.points[:, 2] - 0.035) < 0.001) & (scan.normals[:, 2] > 0.9)]
    lo, hi = np.percentile(footbed[:, :2], [1, 99], axis=0)
    inner = np.asarray(sole[1][:2]) - sole[0][:2] - 2 * 0.005
    assert np.all(hi - lo > FOOTBED_SPAN_FRAC * inner), "the footbed lost its area"


def test_sole_station_uses_its_own_box():
    cell = CellConfig()
    sx, sy = cell.sole.centre
    sole = ((sx - 0.13, sy - 0.045, 0.0), (sx + 0.13, sy + 0.045, 0.03))
    f = render(look_at((sx, sy, 0.5), (sx, sy, 0.0)), [sole])
    scan = scan_part_frames([f], "sole")
    assert np.all(inside(scan.points, sole, POS_TOL_M))
    assert scan.points[:, 2].min() > 0.003 - 1e-9  # the plane band (3 mm) is gone
    # the upper station is empty in this frame
    with pytest.raises(PartNotFoundError):
        scan_part_frames([f], "upper")


def test_empty_and_nan_depth():
    f = top_view()
    zero = replace(f, depth=np.zeros_like(f.depth))
    with pytest.raises(EmptyDepthError):
        scan_part_frames([zero], "upper")
    with pytest.raises(EmptyDepthError):
        deproject(np.full((K.height, K.width), np.nan), K, f.T_base_cam)
    with pytest.raises(EmptyDepthError):
        scan_part_frames([], "upper")


def test_part_missing():
    f = render(look_at((CX, CY, 0.55), (CX, CY, 0.0)), [])
    with pytest.raises(PartNotFoundError) as ei:
        scan_part_frames([f], "upper", item_id="A1")
    assert ei.value.item_id == "A1"


def test_part_cut_by_border():
    # camera shifted along x: the block runs off the image's left/right edge
    f = render(look_at((CX + 0.20, CY, 0.30), (CX + 0.20, CY, 0.0)), [BLOCK, POST])
    with pytest.raises(PartCutError) as ei:
        scan_part_frames([f], "upper")
    assert max(ei.value.diagnostics["border_fraction"]) > CleanConfig().max_border_fraction


def test_two_parts_in_view():
    a = ((CX - 0.15, CY - 0.05, 0.0), (CX - 0.03, CY + 0.05, 0.15))
    b = ((CX + 0.03, CY - 0.05, 0.0), (CX + 0.15, CY + 0.05, 0.15))
    f = render(look_at((CX, CY, 0.55), (CX, CY, 0.0)), [a, b])
    with pytest.raises(MultiplePartsError):
        scan_part_frames([f], "upper")
    # two parts side by side, touching: one object, but wider than any one part can be
    c = ((CX - 0.13, CY - 0.09, 0.0), (CX + 0.13, CY, 0.04))
    d = ((CX - 0.13, CY, 0.0), (CX + 0.13, CY + 0.09, 0.04))
    touching = render(look_at((CX, CY, 0.55), (CX, CY, 0.0)), [c, d])
    with pytest.raises(MultiplePartsError, match="wide") as ei:
        scan_part_frames([touching], "upper")
    assert ei.value.diagnostics["clusters"] == 1
    # a small object beside the part is debris, not a second part
    pebble = ((CX + 0.16, CY + 0.08, 0.0), (CX + 0.17, CY + 0.09, 0.01))
    g = render(look_at((CX, CY, 0.55), (CX, CY, 0.0)), [BLOCK, POST, pebble])
    scan = scan_part_frames([g], "upper")
    assert np.all(inside(scan.points, BLOCK, POS_TOL_M))


def test_too_few_points():
    cfg = ScanConfig(clean=CleanConfig(min_points=100_000))
    with pytest.raises(TooFewPointsError):
        scan_part_frames([top_view()], "upper", cfg)


def _cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    cmd_scan.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.func(args)


def test_cli_scan_sim_folder(tmp_path, capsys):
    inputs = tmp_path / "inputs" / "item1"
    for i, f in enumerate([top_view(), *side_views()]):
        save_frame(inputs / f"upper_cam{i}.npz", f)
    save_frame(inputs / "sole_cam0.npz", render(look_at((CX, 0.2, 0.5), (CX, 0.2, 0.0)), []))
    out = tmp_path / "scan.ply"
    assert _cli(["scan", "--source", f"sim:{inputs}", "--part", "upper", "--out", str(out), "--json"]) == 0
    cloud = read_ply(out)
    assert cloud.normals is not None and len(cloud.points) > 5000
    assert np.all(inside(cloud.points, BLOCK, POS_TOL_M + 1e-6))
    assert "4 view(s)" in capsys.readouterr().out
    # the sole frame shows an empty tray: a specific error and nothing written
    bad = tmp_path / "sole.ply"
    with pytest.raises(PartNotFoundError):
        _cli(["scan", "--source", f"sim:{inputs}", "--part", "sole", "--out", str(bad)])
    assert not bad.exists() and not list(tmp_path.glob(".sole.ply*"))


def test_fixture_post_removed():
    # a post as deep as the block: its side faces continue the block's, so side views see one object
    post = ((CX - 0.02, CY - 0.05, 0.0), (CX + 0.02, CY + 0.05, 0.10))
    eyes = [(CX, CY - 0.40, 0.30), (CX, CY + 0.40, 0.30), (CX, CY, 0.55)]
    frames = [render(look_at(e, (CX, CY, 0.08)), [BLOCK, post], seed=i) for i, e in enumerate(eyes)]
    kept = scan_part_frames(frames, "upper", ScanConfig(upper_pedestal=False))
    assert kept.points[:, 2].min() < BLOCK[0][2] - 0.05, "these views must see the post"
    scan = scan_part_frames(frames, "upper")
    assert scan.points[:, 2].min() > BLOCK[0][2] - POS_TOL_M, "fixture post left under the upper"
    assert np.all(inside(scan.points, BLOCK, POS_TOL_M))
    # only the post goes: the block keeps most of its points
    assert len(scan) > 0.8 * np.count_nonzero(kept.points[:, 2] > BLOCK[0][2])


def test_scan_through_the_sdk_playback_path(tmp_path):
    # the same synthetic frame, written by librealsense's recorder and played back with the SDK filters
    from gluecell.perception.camera import BagSource, FilterConfig, record_frames

    frames = [top_view(seed=s) for s in range(3)]
    path = record_frames(frames, tmp_path / "top.db3")
    with BagSource(path, FilterConfig(), T_base_cam=frames[0].T_base_cam) as src:
        played = [src.grab(timeout_s=2.0) for _ in frames]
    scan = scan_part_frames(played[-1:], "upper")
    assert np.all(inside(scan.points, BLOCK, POS_TOL_M))
    top = scan.points[scan.points[:, 2] > BLOCK[1][2] - 0.003]
    assert np.median(np.abs(top[:, 2] - BLOCK[1][2])) < TOP_MEDIAN_TOL_M


def test_cli_scan_bag_with_calibration_and_config(tmp_path):
    import json

    from gluecell.core.errors import ConfigError
    from gluecell.perception.camera import record_frames

    f = top_view()
    rec = record_frames([f, top_view(seed=1)], tmp_path / "top.db3")
    calib = tmp_path / "calib.json"
    calib.write_text(json.dumps({"cameras": {f.serial: {"T_base_cam": f.T_base_cam.tolist()}}}))
    conf = tmp_path / "cell.toml"
    conf.write_text("[filters]\ntemporal = false\n[scan.clean]\nvoxel_m = 0.003\n")
    out = tmp_path / "bag.ply"
    argv = ["scan", "--source", f"bag:{rec}", "--part", "upper", "--out", str(out), "--frames", "5"]
    assert _cli([*argv, "--calibration", str(calib), "--config", str(conf)]) == 0
    cloud = read_ply(out)
    assert np.all(inside(cloud.points, BLOCK, POS_TOL_M + 0.001))
    # 3 mm voxels: fewer points than the default 2 mm would give on the same top face
    assert len(cloud.points) < 1.2 * (0.26 * 0.10) / 0.003**2
    conf.write_text("[scan.clean]\nvoxel_size = 0.003\n")
    with pytest.raises(ConfigError, match="voxel_size"):
        _cli([*argv, "--calibration", str(calib), "--config", str(conf)])
    # no calibration: identity pose (with a warning), the block is nowhere near the station box
    out.unlink()
    with pytest.warns(UserWarning, match="identity"), pytest.raises(PartNotFoundError):
        _cli(argv)
    assert not out.exists()


def test_one_dead_view_among_several():
    views = [top_view(), *side_views()]
    dead = replace(views[1], depth=np.zeros_like(views[1].depth))
    scan = scan_part_frames([views[0], dead, *views[2:]], "upper")
    assert scan.diagnostics["empty_views"] == [1]
    assert np.all(inside(scan.points, BLOCK, POS_TOL_M))


def test_refine_surface_averages_noise_along_normals():
    from gluecell.perception.scan import refine_surface

    rng = np.random.default_rng(4)
    g = np.arange(0.0, 0.06, 0.0015)
    x, y = np.meshgrid(g, g)
    z = rng.normal(0.0, 0.0005, x.shape)
    p = np.column_stack([x.ravel(), y.ravel(), z.ravel()])
    n = np.tile([0.0, 0.0, 1.0], (len(p), 1))
    out = refine_surface(p, n, 0.004, 8)
    assert np.array_equal(out[:, :2], p[:, :2]), "points move along their normals only"
    assert out[:, 2].std() < REFINE_NOISE_FRAC * p[:, 2].std()
    # the two faces of a thin sheet (opposite normals) do not pull each other together
    sheet = np.vstack([p * [1, 1, 0], p * [1, 1, 0] + [0, 0, 0.002]])
    sn = np.vstack([-n, n])
    moved = refine_surface(sheet, sn, 0.004, 8) - sheet
    assert np.abs(moved).max() < 1e-12
