"""Yield: the simulated inspection resolves the film near the bite line at the tolerance's scale.

The world's uppers have 2.6-3 mm faces at the line and one film value per face; a face that straddles the line
with visible film was labelled as glue up to its far corner (0.5-0.7 mm "above" on every demo pair). The
simulated cell refines the true upper near the line before it sprays and labels it
(:func:`gluecell.cell.sim.finemesh.refine_near_line`): the surface must not move, the bond labels must follow
their faces, and faces near the line must end up small.
"""

from __future__ import annotations

import numpy as np
import pytest

from gluecell.cell.sim.finemesh import MAX_EDGE_M, REFINE_WITHIN_M, refine_near_line
from gluecell.datasets.world.spray_score import line_distance
from gluecell.pathplan.synthetic import make_synthetic_pair

#: Area is conserved by midpoint subdivision up to float rounding (relative).
AREA_RTOL = 1e-9


def _dist(v: np.ndarray, f: np.ndarray, line: np.ndarray) -> np.ndarray:
    return line_distance(v[f].mean(axis=1), line)


def _longest(v: np.ndarray, f: np.ndarray) -> np.ndarray:
    tri = v[f]
    return np.max(np.linalg.norm(tri - np.roll(tri, 1, axis=1), axis=2), axis=1)


@pytest.fixture(scope="module")
def truths():
    import trimesh

    pair = make_synthetic_pair()
    mesh = trimesh.Trimesh(pair.upper_vertices, pair.upper_faces, process=False)
    line = np.asarray(pair.bite_line, dtype=np.float64)
    bond = mesh.triangles_center[:, 2] > float(np.median(line[:, 2]))  # bottom-up upper: the bond side is +z
    truth = {"upper_mesh": mesh, "upper_bond_faces": bond, "bite_line": line, "other": 7}
    return truth, refine_near_line(truth)


def test_faces_near_the_line_are_refined_and_far_ones_kept(truths):
    coarse, fine = truths
    v0, f0 = np.asarray(coarse["upper_mesh"].vertices), np.asarray(coarse["upper_mesh"].faces)
    v1, f1 = np.asarray(fine["upper_mesh"].vertices), np.asarray(fine["upper_mesh"].faces)
    near0 = _dist(v0, f0, coarse["bite_line"]) < REFINE_WITHIN_M
    assert _longest(v0, f0)[near0].max() > 2 * MAX_EDGE_M  # the fixture is coarse where it matters
    near1 = _dist(v1, f1, fine["bite_line"]) < 0.5 * REFINE_WITHIN_M
    assert _longest(v1, f1)[near1].max() <= MAX_EDGE_M
    far0 = ~near0 & (_dist(v0, f0, coarse["bite_line"]) > 2 * REFINE_WITHIN_M)
    assert len(f1) > len(f0) and far0.sum() > 0
    # faces well away from the line are carried over unchanged (same corners)
    kept = {tuple(np.round(v0[f], 9).ravel()) for f in f0[far0][:200]}
    fine_set = {tuple(np.round(v1[f], 9).ravel()) for f in f1}
    assert kept <= fine_set


def test_surface_and_bond_labels_are_unchanged(truths):
    coarse, fine = truths
    m0, m1 = coarse["upper_mesh"], fine["upper_mesh"]
    assert m1.area == pytest.approx(m0.area, rel=AREA_RTOL)
    b0, b1 = coarse["upper_bond_faces"], fine["upper_bond_faces"]
    assert m1.area_faces[b1].sum() == pytest.approx(m0.area_faces[b0].sum(), rel=AREA_RTOL)
    # every refined face lies on its parent's plane: its centroid is on the coarse surface
    v1, f1 = np.asarray(m1.vertices), np.asarray(m1.faces)
    near = np.flatnonzero(_dist(v1, f1, fine["bite_line"]) < REFINE_WITHIN_M)
    _, dist, _ = m0.nearest.on_surface(m1.triangles_center[near[:: max(len(near) // 3000, 1)]])
    assert dist.max() < 1e-9
    assert fine["other"] == 7 and coarse["upper_mesh"] is m0  # other keys passed through; input untouched
