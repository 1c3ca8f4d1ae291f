"""Helpers of the path-planning bench's side-by-side rows (teach once placement, the truth table)."""

from __future__ import annotations

import numpy as np
import pytest

from gluecell.cell.bench.pathplan import _moved, _true_table
from gluecell.core.types import SprayPath
from gluecell.pathplan.geom import matrix_from_quat

#: A rigidly moved path keeps its geometry to this (metres / cosine).
RIGID_TOL = 1e-9


def test_teach_once_placement_is_rigid():
    rng = np.random.default_rng(0)
    xyz = rng.normal(0.5, 0.05, (20, 3))
    q = rng.normal(size=(20, 4))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    path = SprayPath("upper", t=np.arange(20) * 0.1, xyz=xyz, quat_xyzw=q, spray=np.arange(20) % 3 > 0)
    a = np.deg2rad(7.0)
    T = np.eye(4)
    T[:3, :3] = [[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]]
    T[:3, 3] = [0.004, -0.006, 0.001]
    moved = _moved(path, T)
    assert np.allclose(moved.xyz, xyz @ T[:3, :3].T + T[:3, 3], atol=RIGID_TOL)
    assert np.allclose(matrix_from_quat(moved.quat_xyzw), T[:3, :3] @ matrix_from_quat(q), atol=RIGID_TOL)
    assert np.array_equal(moved.spray, path.spray) and np.array_equal(moved.t, path.t)
    d0 = np.linalg.norm(xyz[1:] - xyz[:-1], axis=1)
    assert np.allclose(np.linalg.norm(np.diff(moved.xyz, axis=0), axis=1), d0, atol=RIGID_TOL)


def test_truth_table_aggregates_rows_and_counts_refusals():
    rows = [
        {"truebite_true_coverage": 0.98, "truebite_true_band2mm_coverage": 0.5, "truebite_true_above_max_mm": 0.0,
         "truebite_true_above_p99_mm": 0.0, "truebite_true_gap_mm2": 100.0, "teach_refused": 1.0},
        {"truebite_true_coverage": 0.96, "truebite_true_band2mm_coverage": 0.3, "truebite_true_above_max_mm": 1.5,
         "truebite_true_above_p99_mm": 1.4, "truebite_true_gap_mm2": 300.0, "teach_refused": 1.0},
    ]  # fmt: skip
    out = _true_table(rows)
    assert out["pathplan_truebite_true_coverage_mean"] == pytest.approx(0.97)
    assert out["pathplan_truebite_true_above_max_mm"] == pytest.approx(1.5)
    assert out["pathplan_truebite_true_gap_area_mm2_mean"] == pytest.approx(200.0)
    assert out["pathplan_teach_refused"] == 2.0 and "pathplan_teach_true_coverage_mean" not in out
    assert "pathplan_teach_pairs" not in out and "pathplan_pipeline_refused" not in out


def test_truth_table_reports_the_worst_dry_strip():
    base = {"truebite_true_coverage": 0.98, "truebite_true_band2mm_coverage": 0.5, "truebite_true_above_max_mm": 0.0,
            "truebite_true_above_p99_mm": 0.0, "truebite_true_gap_mm2": 100.0}  # fmt: skip
    key = "truebite_true_dry_strip_p95_mm"
    out = _true_table([{**base, key: 0.7}, {**base, key: 1.6}])
    assert out["pathplan_truebite_true_dry_strip_p95_mm"] == pytest.approx(1.6)


def test_dry_strip_width_on_a_disc():
    """A flat disc, the bite line a circle of 50 mm, bond inside it, film covering only within 50 - w mm: the dry
    strip measures w all round; a stretch left dry measures the reach there."""
    import trimesh

    from gluecell.cell.bench.pathplan import dry_strip_mm

    g = np.linspace(-0.07, 0.07, 281)  # 0.5 mm grid
    xx, yy = np.meshgrid(g, g)
    mesh = trimesh.Trimesh(*_grid_mesh(xx, yy))
    c = mesh.triangles_center
    r = np.hypot(c[:, 0], c[:, 1])
    a = np.linspace(0, 2 * np.pi, 400, endpoint=False)
    truth = {"upper_mesh": mesh, "upper_bond_faces": r < 0.05, "bite_line": np.c_[0.05 * np.cos(a), 0.05 * np.sin(a),
             np.zeros_like(a)]}  # fmt: skip
    film = np.where(r < 0.05 - 1.5e-3, 1e-4, 0.0)
    w = dry_strip_mm(truth, film, 5e-5)
    assert np.percentile(w, 50) == pytest.approx(1.5, abs=0.3) and w.max() < 2.0
    film[(c[:, 0] > 0.03) & (np.abs(c[:, 1]) < 0.01)] = 0.0  # a dry stretch on the +x side
    w2 = dry_strip_mm(truth, film, 5e-5)
    assert w2.max() == pytest.approx(10.0) and np.percentile(w2, 50) == pytest.approx(1.5, abs=0.3)


def _grid_mesh(xx: np.ndarray, yy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Vertices and faces of a flat triangulated grid."""
    n, m = xx.shape
    v = np.c_[xx.ravel(), yy.ravel(), np.zeros(xx.size)]
    i = np.arange(n * m).reshape(n, m)
    a, b, c, d = i[:-1, :-1].ravel(), i[:-1, 1:].ravel(), i[1:, :-1].ravel(), i[1:, 1:].ravel()
    return v, np.r_[np.c_[a, b, d], np.c_[a, d, c]]
