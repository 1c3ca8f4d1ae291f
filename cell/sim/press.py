"""The simulated press (the actual system's attach, replayed from the world): the true attach pose and the truth
re-simulated without the press's random terms, for both worlds: the press's share of the error budget (issue 14,
item 1). It lives with the simulated cell, the one place that reaches the world's truth.

Read by the evaluator only (:mod:`gluecell.cell.bench.budget`); the predictor gets the pose as one of its
ordinary inputs (``predict_attach(attach_pose=...)``) and never imports the world.

- :func:`true_attach_pose`: the rigid sole station -> upper station transform (base_link) of where the press
  really put the sole: world 1's sole placement error on the upper (``sole_offset_m``, ``sole_yaw_deg`` in the
  upper's part frame), world 2's operator placement (shift and turn about the outline centres) and settle
  height. A left part is the mirror image (in y) of the right-foot build in both worlds, so the part-frame
  placement is conjugated by that mirror (still a proper rotation).
- :func:`resimulated_lines`: the pair's true bite line re-simulated (a) as it was (a check: it must equal the
  stored truth, else the re-simulation is not this pair's and no row is made), (b) with the sole placed exactly
  (zero shift and turn), (c) also at the middle of the world's press-pressure range (the pressure is drawn per pair
  and no input of the predictor knows it), (d) the station-by-station mean of presses drawn from the world's own
  placement and pressure distributions. The differences are what no scan taken before the press can know.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

__all__ = ["PressTruth", "press_truth", "MATCH_TOL_M"]

#: Presses drawn for :attr:`PressTruth.line_mean_press`.
N_PRESS_DRAWS = 16
#: Largest difference (m) between the re-simulated and the stored true line for the re-simulation to count.
MATCH_TOL_M = 1e-7
_MIRROR = np.diag([1.0, -1.0, 1.0, 1.0])


@dataclass(frozen=True)
class PressTruth:
    """The press's truth of one pair (base_link, metres).

    Attributes:
        T_attach: (4, 4) rigid sole station -> upper station: where the press put the sole.
        line_no_placement: (m, 3) true bite line with the sole placed exactly (no shift, no turn).
        line_no_press_noise: (m, 3) with the sole placed exactly and the pressure at the middle of its range.
        placement: (dx m, dy m, yaw deg) of this pair's placement error (upper's part frame, right-foot build).
        line_mean_press: (n, 3) the mean, station by station, of the lines of :data:`N_PRESS_DRAWS` presses drawn
            from the world's own placement and pressure distributions (everything else this pair's): the best
            a predictor that knows all but the press's draw can give, to first order.
    """

    T_attach: np.ndarray
    line_no_placement: np.ndarray
    line_no_press_noise: np.ndarray
    placement: tuple[float, float, float]
    line_mean_press: np.ndarray


def _planar(yaw_rad: float, dx: float, dy: float, dz: float = 0.0) -> np.ndarray:
    c, s = np.cos(yaw_rad), np.sin(yaw_rad)
    A = np.eye(4)
    A[:2, :2] = [[c, -s], [s, c]]
    A[:3, 3] = [dx, dy, dz]
    return A


def _station_transform(T_u: np.ndarray, T_s: np.ndarray, A: np.ndarray, left: bool) -> np.ndarray:
    """Sole station -> upper station of a part-frame placement ``A`` (sole part -> upper part frame)."""
    M = _MIRROR if left else np.eye(4)
    return np.asarray(T_u) @ M @ A @ M @ np.linalg.inv(np.asarray(T_s))


def _apply(T: np.ndarray, v: np.ndarray) -> np.ndarray:
    return v @ T[:3, :3].T + T[:3, 3]


def _world1(truth: dict, n_draws: int) -> PressTruth | None:
    from gluecell.datasets.world.attach import seat_height
    from gluecell.datasets.world.config import WorldConfig
    from gluecell.datasets.world.pair import make_pair_detailed
    from gluecell.datasets.world.params import SampleParams

    p = SampleParams.from_dict(truth["params"])
    pair, det = make_pair_detailed(0, params=p)
    if not _same(pair.bite_line, truth["bite_line"]):
        return None
    exact = replace(p, sole_offset_m=(0.0, 0.0), sole_yaw_deg=0.0)
    mid = 0.5 * sum(WorldConfig().press_pressure_pa)
    line0 = make_pair_detailed(0, params=exact)[0].bite_line
    line1 = make_pair_detailed(0, params=replace(exact, press_pressure_pa=mid))[0].bite_line
    dx, dy = p.sole_offset_m
    # the sole's part frame is not the upper's in height: its footbed corner is lifted onto the seat
    jf = det.last.j_feather
    dz = float(np.mean(seat_height(det.last, det.upper, det.sole, p, WorldConfig())) - det.sole.points[jf, :, 2].mean())
    A = _planar(np.radians(p.sole_yaw_deg), dx, dy, dz)
    T = _station_transform(truth["T_base_upper"], truth["T_base_sole"], A, p.side == "left")
    cfg, rng = WorldConfig(), np.random.default_rng(_draw_seed(truth))
    cols = []
    for _ in range(n_draws):
        off = tuple(float(v) for v in rng.uniform(-1, 1, 2) * cfg.sole_place_max_m)
        q = replace(p, sole_offset_m=off, sole_yaw_deg=float(rng.uniform(-1, 1) * cfg.sole_place_yaw_deg),
                    press_pressure_pa=float(rng.uniform(*cfg.press_pressure_pa)))  # fmt: skip
        cols.append(make_pair_detailed(0, params=q)[1].attach.bite_points)
    flip = np.array([1.0, -1.0, 1.0]) if p.side == "left" else np.ones(3)
    mean = _apply(np.asarray(truth["T_base_upper"]), np.mean(cols, axis=0) * flip)
    return PressTruth(T, np.array(line0), np.array(line1), (float(dx), float(dy), float(p.sole_yaw_deg)), mean)


def _world2(truth: dict, sid: str, info: dict, n_draws: int) -> PressTruth | None:
    """World 2: the pair is re-made from its seed (``SeedSequence(seed, spawn_key=(index,))``, as the generator)."""
    from gluecell.datasets.world2.attach import Placement, attach
    from gluecell.datasets.world2.config import STYLES, World2Config
    from gluecell.datasets.world2.pair import _draw_placement, mirror
    from gluecell.datasets.world2.sole import build_sole, sole_params
    from gluecell.datasets.world2.upper import build_upper, upper_params

    cfg, index = World2Config(), int(sid)
    world_ss, _ = np.random.SeedSequence(int(info["seed"]), spawn_key=(index,)).spawn(2)
    styles = info.get("styles") or []
    r_item, r_upper, r_sole, r_attach, _ = (np.random.default_rng(s) for s in world_ss.spawn(5))
    name = styles[index % len(styles)] if styles else list(STYLES)[int(r_item.integers(len(STYLES)))]
    st = STYLES[name]  # the draws below follow datasets.world2.pair.make_pair2 exactly (checked against the truth)
    size = float(st.sizes[int(r_item.integers(len(st.sizes)))])
    left = r_item.random() < 0.5
    r_item.integers(len(st.upper_materials))
    up = build_upper(st, upper_params(st, size, r_upper, cfg), cfg.ring_points)
    so = build_sole(st, sole_params(st, size, r_sole, cfg), cfg.ring_points)
    place = _draw_placement(r_attach, cfg)
    pressure = float(r_attach.uniform(*cfg.press_pa))
    T_u = np.asarray(truth["T_base_upper"])

    def line(pl: Placement, pa: float) -> tuple[np.ndarray, Any]:
        res = attach(up, so, pl, pa)
        return _apply(T_u, mirror(res.bite_line, None, left)[0]), res

    noisy, res = line(place, pressure)
    if not _same(noisy, truth["bite_line"]):
        return None
    line0 = line(Placement(), pressure)[0]
    line1 = line(Placement(), 0.5 * sum(cfg.press_pa))[0]
    c_u, c_s = up.outline.points.mean(axis=0), so.cavity.points.mean(axis=0)
    R2 = _planar(place.yaw, 0.0, 0.0)[:2, :2]
    t = c_u + np.array([place.dx, place.dy]) - R2 @ c_s
    A = _planar(place.yaw, float(t[0]), float(t[1]), float(res.rigid[0]))
    T = _station_transform(T_u, truth["T_base_sole"], A, left)
    rng = np.random.default_rng(_draw_seed(truth))
    mean = np.mean([line(_draw_placement(rng, cfg), float(rng.uniform(*cfg.press_pa)))[0]
                    for _ in range(n_draws)], axis=0)  # fmt: skip
    return PressTruth(T, line0, line1, (place.dx, place.dy, float(np.degrees(place.yaw))), mean)


def _draw_seed(truth: dict) -> int:
    """A seed of the press draws fixed by the pair (its true line), so a row is repeatable."""
    return int(abs(float(np.asarray(truth["bite_line"]).sum())) * 1e6) % (2**32)


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and float(np.abs(a - b).max()) <= MATCH_TOL_M


def press_truth(truth: dict, sid: str, info: dict, n_draws: int = N_PRESS_DRAWS) -> PressTruth | None:
    """The press's truth of sample ``sid`` of a dataset with meta ``info`` (``n_draws`` presses for the mean line);
    None when this world's attach cannot be re-simulated to the stored truth (another generator or configuration)."""
    gen = str(info.get("generator", ""))
    if gen.startswith("gluecell-world2/"):
        return _world2(truth, sid, info, n_draws)
    if gen.startswith("gluecell-world/"):
        return _world1(truth, n_draws)
    return None
