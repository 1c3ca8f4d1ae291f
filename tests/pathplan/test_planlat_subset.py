"""Fast planning, round 3 (issue 15 item 4): the film summed beyond the line first and over the rest only in a
safe round, the footprints cast once per round, the cell grids kept per part, give the same plan value for value;
and the first round's step (``TuningConfig.first_main_gain`` / ``first_edge_share``) moves what it says."""

from __future__ import annotations

import numpy as np
import pytest

from gluecell.pathplan import filmkernel, pipeline
from gluecell.pathplan.deposition import DepositionParams, film_at, film_thickness, footprints
from gluecell.pathplan.errors import CoverageError
from gluecell.pathplan.pipeline import PathplanConfig, TuningConfig, plan_part
from gluecell.pathplan.toolpath import BondRegion
from gluecell.pathplan.tuning import attribute_overshoot, next_moves

pytestmark = pytest.mark.skipif(not filmkernel.available(), reason="numba is a dependency; the subsets need it")


class _Eager(pipeline._EvalGrids):
    """The tuner's film over every point in every round (the code before this change)."""

    def __init__(self, region: BondRegion) -> None:
        super().__init__(region)
        self.on = False


@pytest.fixture()
def eager(monkeypatch):
    monkeypatch.setattr(pipeline, "_EvalGrids", _Eager)


def test_film_on_subsets_is_the_whole_film_bit_for_bit(clouds, ring_samples):
    u, un, *_ = clouds
    samples = ring_samples(u, 300, 6.0)
    dep = DepositionParams()
    ref = film_thickness(samples, u, un, dep, n_labels=3)
    assert (ref > 0).sum() > 1000  # the pass wets the part
    fp = footprints(samples, dep, 0.08, u)
    rng = np.random.default_rng(4)
    pick = rng.random(len(u)) < 0.3
    parts = np.zeros_like(ref)
    for sel in (pick, ~pick):  # two disjoint subsets summed on their own grids
        parts[:, sel] = film_at(fp, u[sel], un[sel], 3)
    assert np.array_equal(parts, ref)
    assert np.array_equal(film_at(fp, u, un), film_thickness(samples, u, un, dep))  # unlabelled too


def _same(a, b) -> None:
    assert len(a.path.xyz) > 100
    for x, y in ((a.path.xyz, b.path.xyz), (a.path.t, b.path.t), (a.program.q, b.program.q), (a.film, b.film)):
        assert np.array_equal(x, y)
    assert a.metrics == b.metrics


def test_the_lazy_film_plans_the_same(clouds, monkeypatch):
    u, un, s, sn, line = clouds
    cfg = PathplanConfig()
    rounds: list[bool] = []
    orig = pipeline._round

    def count(*a, **k):
        out = orig(*a, **k)
        rounds.append(out[4]["above_visible_mm"] <= cfg.tuning.max_visible_above_mm)
        return out

    monkeypatch.setattr(pipeline, "_round", count)
    new = [plan_part("upper", u, cfg, bite_line=line, normals=un), plan_part("sole", s, cfg, normals=sn)]
    assert not all(rounds), "no round stopped beyond the line: the lazy path was not exercised"
    monkeypatch.setattr(pipeline, "_EvalGrids", _Eager)
    ref = [plan_part("upper", u, cfg, bite_line=line, normals=un), plan_part("sole", s, cfg, normals=sn)]
    for a, b in zip(new, ref):
        _same(a, b)


def test_a_refusal_carries_the_whole_films_metrics(clouds, monkeypatch):
    u, un, _, _, line = clouds
    cfg = PathplanConfig(tuning=TuningConfig(rounds=1))  # one round: the first plan's glue crosses the line
    with pytest.raises(CoverageError) as lazy:
        plan_part("upper", u, cfg, bite_line=line, normals=un)
    monkeypatch.setattr(pipeline, "_EvalGrids", _Eager)
    with pytest.raises(CoverageError) as ref:
        plan_part("upper", u, cfg, bite_line=line, normals=un)
    got, want = lazy.value.diagnostics["metrics"], ref.value.diagnostics["metrics"]
    assert got == want and "coverage_1mm" in got
    assert str(lazy.value) == str(ref.value)


def _line_region(n: int = 40) -> BondRegion:
    """Points 0.5-2 mm beyond a straight 40 mm line (signed < 0), spread along it."""
    s = np.linspace(0.0, 0.04, n)
    signed = -np.linspace(0.5e-3, 2e-3, n)
    pts = np.column_stack([s, signed, np.zeros(n)])
    loop = np.array([[0.0, 0.0, 0.0], [0.04, 0.0, 0.0], [0.04, 0.04, 0.0], [0.0, 0.04, 0.0]])
    up = np.tile([0.0, 0.0, 1.0], (4, 1))
    return BondRegion(part="upper", points=pts, normals=np.tile([0.0, 0.0, 1.0], (n, 1)), signed=signed, s=s,
                      boundary=loop, boundary_normals=up, inward=up)  # fmt: skip


def test_the_first_round_moves_the_main_pass_by_its_gain_and_counts_shared_spots_against_the_edge():
    region = _line_region()
    level = 1e-5
    films = np.zeros((3, 40))
    films[0, :20] = 0.8 * level  # edge tail alone below the level, main's tail larger: the sum crosses it
    films[1, :20] = 0.9 * level
    films[0, 10:20] = 0.5 * level  # there the edge passes lay less than first_edge_share of it: not theirs
    films[1, 20:] = 2.0 * level  # main alone crosses it further along
    e, m, s_e, _ = attribute_overshoot(region, films, level, 0.0)
    assert len(s_e) == 0
    assert e == 0.0 and m == pytest.approx(2.0)
    e2, m2, s_e2, _ = attribute_overshoot(region, films, level, 0.0, edge_share=TuningConfig().first_edge_share)
    assert len(s_e2) == 10 and e2 == pytest.approx(-region.signed[:10].min() * 1e3) and m2 == m

    from gluecell.pathplan.tuning import RingDesign

    design = RingDesign((0.0013, 0.007, 0.016), 1, 0.009, 0.004)
    tun = TuningConfig()
    local = np.zeros(tun.local_bins)
    new_local, bump = next_moves(region, films, level, 0.0, 2.0, design, tun, 0, local, (0.0, 0.0))
    step = tun.bump_extra_mm * 1e-3
    assert bump[1] == pytest.approx(0.007 + tun.first_main_gain * 2.0e-3 + step)
    assert new_local.max() > 0  # the edge passes moved where they share the glue
    old = TuningConfig(first_main_gain=1.0, first_edge_share=1.0)
    old_local, old_bump = next_moves(region, films, level, 0.0, 2.0, design, old, 0, local, (0.0, 0.0))
    assert old_bump[1] == pytest.approx(0.007 + 2.0e-3 + step) and old_local.max() == 0.0
    # later rounds step as before
    _, later = next_moves(region, films, level, 0.0, 2.0, design, tun, 1, local, (0.0, 0.0))
    assert later[1] == pytest.approx(0.007 + 2.0e-3 + 2 * step)


def test_first_round_settings_are_checked():
    with pytest.raises(ValueError):
        TuningConfig(first_main_gain=0.5)
    with pytest.raises(ValueError):
        TuningConfig(first_edge_share=0.0)
