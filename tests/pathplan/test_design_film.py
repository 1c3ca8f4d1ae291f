"""The design film: passes spaced for a multiple of the inspected film, the first edge ring left where it was."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from gluecell.core.errors import ConfigError
from gluecell.pathplan.gun_calibration import DESIGN_FILM_FACTOR, with_design_film, with_gun
from gluecell.pathplan.pipeline import PathplanConfig
from gluecell.pathplan.tuning import cross_profile, design_rings


def _rings(cfg: PathplanConfig):
    """The upper's ring design of ``cfg`` (edge 5 mm, main 35 mm, 460 mm/s) and the flat-plate film of its rings."""
    dep, tun = cfg.deposition, cfg.tuning
    d = design_rings((0.005, 0.46), (0.035, 0.46), dep, tun.margin_mm * 1e-3, tun.max_step_mm * 1e-3,
                     edge_target=tun.edge_target_mm * 1e-3)  # fmt: skip
    e, m = cross_profile(0.005, 0.0, 0.46, dep), cross_profile(0.035, 0.0, 0.46, dep)
    x = np.arange(0.0, d.offsets[-1], 0.05e-3)
    film = sum(np.interp(x - o, (e if k < d.n_edge else m).x, (e if k < d.n_edge else m).film, left=0, right=0)
               for k, o in enumerate(d.offsets))  # fmt: skip
    return d, x, film


def _covered_edge(x: np.ndarray, film: np.ndarray, level: float) -> float:
    return float(x[np.argmax(film >= level)])


def test_design_film_fills_the_troughs_and_keeps_the_edge_where_it_was():
    cal = with_gun(PathplanConfig(), "world1")
    des = with_design_film(cal)
    assert des.deposition.covered_mm == pytest.approx(DESIGN_FILM_FACTOR * cal.deposition.covered_mm)
    assert des.deposition.flow_ml_s == cal.deposition.flow_ml_s  # the gun is the gun
    assert des.tuning.edge_target_mm > cal.tuning.edge_target_mm  # the 100 um edge sits nearer the line ...
    d0, x0, f0 = _rings(cal)
    d1, x1, f1 = _rings(des)
    # ... so the target moves with it: the inspected (50 um) covered edge stays within a film step of where it was
    assert abs(_covered_edge(x1, f1, 50e-6) - _covered_edge(x0, f0, 50e-6)) <= 0.1e-3
    assert d1.offsets[0] == pytest.approx(d0.offsets[0], abs=0.06e-3)
    # between the first ring and the end of the rings, the film never dips under 1.25 x the design level
    inside = (x1 > d1.offsets[0]) & (x1 < d1.offsets[-1])
    assert f1[inside].min() >= 1.25 * 100e-6 * 0.98
    # where the inspected-level design let it dip to ~1.25 x 50 um (the demo's gaps on the real gun)
    inside0 = (x0 > d0.offsets[0]) & (x0 < d0.offsets[-1])
    assert f0[inside0].min() < 1.25 * 100e-6 * 0.8
    assert len(d1.offsets) > len(d0.offsets)  # the price: one ring more beside the line


def test_design_film_factor_one_is_the_config_and_bad_factors_are_refused():
    cfg = with_gun(PathplanConfig(), "world1")
    assert with_design_film(cfg, 1.0) is cfg
    for bad in (0.5, 4.5, math.nan, math.inf):
        with pytest.raises(ConfigError):
            with_design_film(cfg, bad)


def test_design_film_follows_the_upper_edge_pass_in_the_config():
    cfg = with_gun(PathplanConfig(), "world1")
    mods = tuple({**m, "edge_standoff_mm": 12.0} if m["name"] == "standoff" else m for m in cfg.upper.modifiers)
    wide = replace(cfg, upper=replace(cfg.upper, modifiers=mods))
    a, b = with_design_film(cfg), with_design_film(wide)
    e5 = cross_profile(0.005, 0.0, 0.46, a.deposition)
    e12 = cross_profile(0.012, 0.0, 0.46, b.deposition)
    want = [(p.reach(50e-6) - p.reach(100e-6)) * 1e3 for p in (e5, e12)]
    assert a.tuning.edge_target_mm - 0.5 == pytest.approx(want[0], abs=1e-9)
    assert b.tuning.edge_target_mm - 0.5 == pytest.approx(want[1], abs=1e-9)
    assert want[1] > want[0]  # a wider footprint: its two levels lie further apart
