"""The bench judge's true upper refined near the true line (cell.bench.pathplan.refine_truth)."""

from __future__ import annotations

import numpy as np
import pytest

#: The synthetic upper: a vertical cylinder wall of this radius (m), faces of about this edge (m) ...
RADIUS_M, EDGE_M = 0.05, 2.5e-3
#: ... the bite line its circle at z = 0, the bond side towards +z (the upper lies bottom-up).
AREA_RTOL = 1e-9


def _cylinder_truth() -> dict:
    import trimesh

    n_a = round(2 * np.pi * RADIUS_M / EDGE_M)
    z = np.arange(-0.02, 0.02 + 1e-9, EDGE_M) + EDGE_M / 3  # no ring of vertices on the line itself
    a = np.linspace(0, 2 * np.pi, n_a, endpoint=False)
    aa, zz = np.meshgrid(a, z)
    v = np.c_[RADIUS_M * np.cos(aa.ravel()), RADIUS_M * np.sin(aa.ravel()), zz.ravel()]
    i = np.arange(aa.size).reshape(aa.shape)
    j = np.roll(i, -1, axis=1)
    q = (i[:-1], j[:-1], i[1:], j[1:])
    f = np.r_[np.c_[q[0].ravel(), q[1].ravel(), q[3].ravel()], np.c_[q[0].ravel(), q[3].ravel(), q[2].ravel()]]
    mesh = trimesh.Trimesh(v, f, process=False)
    t = np.linspace(0, 2 * np.pi, 600, endpoint=False)
    line = np.c_[RADIUS_M * np.cos(t), RADIUS_M * np.sin(t), np.zeros_like(t)]
    return {"upper_mesh": mesh, "upper_bond_faces": mesh.triangles_center[:, 2] > 0, "bite_line": line}


def _longest_edge(mesh) -> np.ndarray:
    tri = np.asarray(mesh.triangles)
    return np.linalg.norm(tri - np.roll(tri, 1, axis=1), axis=2).max(axis=1)


def test_refined_faces_shrink_towards_the_line_and_keep_the_surface():
    """Three rounds within 3 mm of the line (faces ~1/8 of the world's), two within 6 mm, none farther; the
    surface area is unchanged and the bond side near the line follows the geometry (z > 0), not the parent face."""
    from gluecell.cell.bench.pathplan import REFINE_ROUNDS_M, refine_truth

    truth = _cylinder_truth()
    coarse = _longest_edge(truth["upper_mesh"]).max()
    fine = refine_truth(truth)
    mesh, d = fine["upper_mesh"], fine["upper_line_d"]
    edge = _longest_edge(mesh)
    assert REFINE_ROUNDS_M == (6e-3, 6e-3, 3e-3)
    assert edge[d < 1e-3].max() <= coarse / 8 * 1.01  # three halvings at the line
    mid = (d > 4.5e-3) & (d < 5.5e-3)
    assert mid.any() and edge[mid].max() <= coarse / 4 * 1.01 and edge[mid].min() > coarse / 8 * 1.01
    assert edge[d > 9e-3].min() > coarse / 2  # far faces untouched
    assert mesh.area == pytest.approx(truth["upper_mesh"].area, rel=AREA_RTOL)
    z = mesh.triangles_center[:, 2]
    near = d < 3e-3
    assert np.array_equal(fine["upper_bond_faces"][near], z[near] > 0)
    assert len(fine["upper_parent"]) == len(mesh.faces) and fine["upper_parent"].max() < len(truth["upper_mesh"].faces)


def test_refinement_schedules_are_not_confused_by_the_cache():
    """The older form (``times`` rounds within ``near_m``) equals the same schedule given per round, and a second
    schedule of the same line is refined afresh, not served from the cache of the first."""
    from gluecell.cell.bench.pathplan import refine_truth

    truth = _cylinder_truth()
    two = refine_truth(truth, near_m=6e-3, times=2)
    n_two = len(two["upper_mesh"].faces)
    three = refine_truth(truth)
    assert len(three["upper_mesh"].faces) > n_two
    again = refine_truth(truth, rounds_m=(6e-3, 6e-3))
    assert len(again["upper_mesh"].faces) == n_two
    assert np.array_equal(np.asarray(again["upper_mesh"].faces), np.asarray(two["upper_mesh"].faces))
