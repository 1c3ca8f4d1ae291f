"""Variation budget and scanner noise: what each hidden variation does to the true bite line, and what the
cameras see at their range.

- ``var_<name>_p95_mm_median`` / ``_worst``: for each hidden variation of the world
  (:data:`gluecell.datasets.world.variation.BUDGET_GROUPS`), the effect on the true bite line with every other
  variation held: the test pair rebuilt from its hidden parameters, once as drawn and once with that variation
  at its neutral (CAD) value; the symmetric distance between the two true lines in the upper's part frame, p95
  per pair (mm), median and worst over the test pairs. ``var_all_hidden_*``: the pair against its CAD nominal
  (every variation neutral, placement kept): what teach-once from CAD could not follow. A variation rigid
  registration could absorb (a uniform shift) still counts here: the budget is of the line, not of a method.
- ``noise_<style>_<part>_sigma_mm``: per-pixel depth noise on the part (robust std, 1.4826 x MAD, of the
  camera's depth minus the exact ray-cast depth of the true mesh from the camera's true pose; all cameras of the
  station, test pairs of that style pooled) and ``noise_<style>_<part>_depth_m``: the median depth of those
  pixels (the range the cameras work at). The part's material is the style's (``STYLE_MATERIALS``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["bench", "variation_budget", "scanner_noise"]

#: Test pairs used (quick / full).
N_QUICK, N_FULL = 3, 12


def _local_line(pair: Any) -> np.ndarray:
    T = pair.T_base_upper
    return (np.asarray(pair.bite_line) - T[:3, 3]) @ T[:3, :3]


def variation_budget(params_list: list[Any]) -> dict[str, list[float]]:
    """name -> per-pair p95 (mm) of the true line's change when that variation is held at neutral."""
    from dataclasses import replace

    from gluecell.cell.bench.deformation import polyline_distance
    from gluecell.cell.sim.world import BUDGET_GROUPS, make_pair_detailed, neutral, nominal_params

    out: dict[str, list[float]] = {g: [] for g in (*BUDGET_GROUPS, "all_hidden")}
    for p in params_list:
        line = _local_line(make_pair_detailed(0, params=p)[0])
        nom = nominal_params(p.style, p.size_eu, p.side)
        others = {"all_hidden": replace(nom, upper_placement=p.upper_placement, sole_placement=p.sole_placement)}
        for name, q in ({g: neutral(p, g) for g in BUDGET_GROUPS} | others).items():
            other = _local_line(make_pair_detailed(0, params=q)[0])
            d = np.concatenate([polyline_distance(line, other), polyline_distance(other, line)])
            out[name].append(float(np.percentile(d, 95) * 1e3))
    return out


def scanner_noise(ds: Any, ids: list[str]) -> dict[str, float]:
    """Per style and part: robust per-pixel depth noise (mm) on the part and the median depth (m)."""
    from gluecell.cell.sim.world import render_mesh_depth

    pooled: dict[tuple[str, str], tuple[list, list]] = {}
    for sid in ids:
        inp, truth = ds.inputs(sid), ds.truth(sid)
        style = inp["workitem"].style
        for part in ("upper", "sole"):
            res, zs = pooled.setdefault((style, part), ([], []))
            for frame, T in zip(inp["frames"][part], truth[f"T_base_cam_true_{part}"]):
                ideal = render_mesh_depth([truth[f"{part}_mesh"]], T, None)
                meas = frame.depth.astype(np.float64) * frame.depth_scale
                ok = (ideal > 0) & (meas > 0)
                res.append((meas - ideal)[ok][::7])
                zs.append(ideal[ok][::7])
    out: dict[str, float] = {}
    for (style, part), (res, zs) in pooled.items():
        r = np.concatenate(res) if res else np.zeros(0)
        if r.size:
            mad = np.median(np.abs(r - np.median(r)))
            out[f"noise_{style}_{part}_sigma_mm"] = float(1.4826 * mad * 1e3)
            out[f"noise_{style}_{part}_depth_m"] = float(np.median(np.concatenate(zs)))
    return out


def bench(ctx: Any) -> dict[str, float]:
    """The variation budget and the scanner noise on ``ctx.dataset``'s test split."""
    from gluecell.cell.sim.world import SampleParams
    from gluecell.datasets.format import open_dataset

    ds = open_dataset(ctx.dataset)
    ids = ds.ids("test")[: N_QUICK if ctx.quick else N_FULL]
    params = [SampleParams.from_dict(ds.truth(sid)["params"]) for sid in ids]
    out: dict[str, float] = {"var_pairs": float(len(ids))}
    for name, vals in variation_budget(params).items():
        if vals:
            out[f"var_{name}_p95_mm_median"] = float(np.median(vals))
            out[f"var_{name}_p95_mm_worst"] = float(np.max(vals))
    out.update(scanner_noise(ds, ids))
    return out


def teach_once(ds: Any, ids: list[str]) -> dict[str, float]:
    """Teach-once on ``ids`` (nothing is fitted, so every pair counts): bite p95/max (mm, median and worst over
    pairs) and the placed line's distance from the pair's true upper surface (p95 mm, median)."""
    from gluecell.cell.bench.deformation import _teach_line, dataset_cell_cameras, pair_errors, surface_p95_mm
    from gluecell.core.errors import GlueCellError
    from gluecell.perception.scan import scan_part_frames

    cache = {"cameras": dataset_cell_cameras(ds)}
    rows, refused = [], 0
    for sid in ids:
        inp, truth = ds.inputs(sid), ds.truth(sid)
        try:
            upper = scan_part_frames(inp["frames"]["upper"], "upper", item_id=sid)
        except GlueCellError:
            refused += 1
            continue
        line = _teach_line(cache, inp["workitem"], upper)
        if line is None:
            refused += 1
            continue
        rows.append((*pair_errors(line, truth["bite_line"]), surface_p95_mm(line, truth["upper_mesh"])))
    out = {"teach_pairs": float(len(rows)), "teach_refused": float(refused)}
    if rows:
        a = np.asarray(rows)
        for k, name in enumerate(("bite_p95", "bite_max")):
            out[f"teach_{name}_mm_median"] = float(np.median(a[:, k]))
            out[f"teach_{name}_mm_worst"] = float(a[:, k].max())
        out["teach_line_surface_p95_mm_median"] = float(np.median(a[:, 2]))
    return out


def world_report(root: str) -> dict[str, float]:
    """Every round-2 world figure on ALL pairs of the dataset at ``root`` (none is fitted on): the variation
    budget, teach-once and the scanner noise. ``python -m gluecell.cell.bench.variation DIR``."""
    from gluecell.cell.sim.world import SampleParams
    from gluecell.datasets.format import open_dataset

    ds = open_dataset(root)
    ids = ds.ids()
    out: dict[str, float] = {"var_pairs": float(len(ids))}
    params = [SampleParams.from_dict(ds.truth(sid)["params"]) for sid in ids]
    for name, vals in variation_budget(params).items():
        out[f"var_{name}_p95_mm_median"] = float(np.median(vals))
        out[f"var_{name}_p95_mm_worst"] = float(np.max(vals))
    out.update(teach_once(ds, ids))
    out.update(scanner_noise(ds, ids))
    return out


if __name__ == "__main__":  # pragma: no cover - a reporting entry point
    import json
    import sys

    print(json.dumps({k: round(v, 3) for k, v in world_report(sys.argv[1]).items()}, indent=1))
