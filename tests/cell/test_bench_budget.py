"""The error budget's swaps (issue 14, item 1): each replaces exactly one input by the world's truth."""

from __future__ import annotations

import numpy as np
import pytest


def test_true_pose_frames_replace_only_the_camera_pose() -> None:
    from gluecell.cell.bench.budget import _true_pose_frames
    from gluecell.core.types import CameraIntrinsics, DepthFrame

    K = CameraIntrinsics(width=4, height=3, fx=2.0, fy=2.0, cx=2.0, cy=1.5)
    believed = np.eye(4)
    believed[:3, 3] = (0.1, 0.2, 0.9)
    frames = [DepthFrame(np.full((3, 4), 500, np.uint16), 0.001, K, believed, stamp=1.0, serial=f"c{k}")
              for k in range(2)]  # fmt: skip
    true = np.stack([np.eye(4), np.eye(4)])
    true[1, :3, 3] = (0.0, 0.0, 1.0)
    out = _true_pose_frames(frames, true)
    assert [f.serial for f in out] == ["c0", "c1"] and np.array_equal(out[0].depth, frames[0].depth)
    assert np.allclose(out[1].T_base_cam, true[1]) and np.allclose(frames[1].T_base_cam, believed)


def test_snap_moves_scan_points_onto_the_true_surface() -> None:
    import trimesh

    from gluecell.cell.bench.budget import _snap
    from gluecell.core.types import PartScan

    box = trimesh.creation.box(extents=(0.2, 0.1, 0.05))
    rng = np.random.default_rng(0)
    pts = box.sample(500, seed=0) + rng.normal(0.0, 1e-3, (500, 3))
    snapped = _snap(PartScan(part="upper", points=pts, normals=np.tile([0.0, 0.0, 1.0], (500, 1))), box)
    assert np.abs(trimesh.proximity.signed_distance(box, snapped.points)).max() < 1e-9
    assert np.linalg.norm(snapped.points - pts, axis=1).max() < 5e-3  # moved onto the surface, not elsewhere
    assert np.allclose(np.linalg.norm(snapped.normals, axis=1), 1.0)


@pytest.mark.parametrize("params", [
    {"material": "tpu", "youngs_modulus_pa": 2.5e7, "poisson_ratio": 0.47, "upper_thickness_m": 1.7e-3,
     "upper_stack_modulus_pa": 7e6},
    {"material": "tr_rubber", "sole": {"E": 2.5e7, "nu": 0.47}, "upper": {"leather": 1.7e-3}},
])  # fmt: skip
def test_hidden_parameters_of_both_worlds(params) -> None:
    from gluecell.cell.bench.budget import _hidden

    mat, contact = _hidden(params)
    assert (mat.E, mat.nu, contact.t_u) == (2.5e7, 0.47, 1.7e-3)
    assert mat.name == ("tpu" if params["material"] == "tpu" else "rubber")
    assert "upper_stack_modulus_pa" not in params or contact.E_u == 7e6


@pytest.mark.parametrize("sigma_mm,share", [(0.6, 1.0), (0.4, 0.0)])
def test_score_counts_points_within_two_sigma_both_ways(sigma_mm, share) -> None:
    from types import SimpleNamespace

    from gluecell.cell.bench.budget import _score

    t = np.linspace(0, 2 * np.pi, 400, endpoint=False)
    true = np.column_stack([0.1 * np.cos(t), 0.05 * np.sin(t), np.zeros_like(t)])
    lifted = true[::2] + np.array([0.0, 0.0, 1e-3])
    pred = SimpleNamespace(bite_line=lifted, bite_line_sigma=np.full(200, sigma_mm * 1e-3))
    p95, mx, within, n, within_true, n_true = _score(pred, true)
    assert (n, n_true) == (200, 400) and p95 == pytest.approx(1.0, abs=0.01) and mx == pytest.approx(1.0, abs=0.01)
    assert within / n == share and within_true / n_true == share
