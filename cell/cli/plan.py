"""``gluecell plan``: two clouds -> deformation -> a ``gluecell.plan/1`` file; ``--show`` draws one.

    gluecell plan --upper U.ply --sole S.ply [--config cell.toml] [--material M] --out plan.json
    gluecell plan --upper U.ply --sole S.ply --bite-line BITE.json --out plan.json
    gluecell plan --show plan.json [--upper U.ply] --out plan.png

Without ``--bite-line`` the deformation step predicts the bite line from the two scans (as
``gluecell predict`` does); a low-confidence prediction stops the pair for a human. ``--bite-line``
takes a line measured or marked on the pair instead (JSON with a "bite_line" list of [x, y, z] in
base_link metres, as ``gluecell predict`` / ``gluecell junction`` write it); a predicted line's file
(``gluecell predict``: it has a "bite_line_sigma") keeps its sigma margin and its "line_reasons".
When the pair cannot be planned at all the command exits 2 with the reason and writes no plan. Every plan
written carries a top-level ``"verdict"``: ``"ok"`` (exit 0) or ``"needs_human"`` (exit 3) with its
``"verdict_reasons"`` (coverage short, line uncertain, margin capped, correction refused, ...; the policy is
:mod:`gluecell.pathplan.safety`).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from gluecell.pathplan.safety import MARGIN_SIGMAS

__all__ = ["register", "run_plan", "run_show", "draw_plan", "read_bite_line", "predict_line", "EXIT_NEEDS_HUMAN"]

#: Exit status of a plan written with the verdict ``needs_human`` (2: no plan could be made at all).
EXIT_NEEDS_HUMAN = 3


def register(subparsers: Any) -> None:
    """Add the ``plan`` subcommand."""
    p = subparsers.add_parser("plan", help="plan spray paths and robot programs for one pair",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("--upper", type=Path, help="upper cloud (PLY, base_link, metres), placed bottom-up")
    p.add_argument("--sole", type=Path, help="sole cloud (PLY, base_link, metres), placed footbed-up")
    p.add_argument("--bite-line", type=Path, help='JSON with a "bite_line" list; default: predict it from the scans')
    p.add_argument("--material", choices=["eva", "rubber", "pu", "tpu"], help="sole material, when known")
    p.add_argument("--calibration", type=Path, help="depth calibration JSON from `gluecell deform calibrate` "
                   "(default: the one shipped with gluecell)")  # fmt: skip
    p.add_argument("--no-calibration", action="store_true", help="predict with the pure solver, no calibration")
    p.add_argument("--reference", type=Path, help="PLY of the style's nominal upper (with normals)")
    p.add_argument("--sole-reference", type=Path, help="PLY of the style's nominal sole (with normals)")
    p.add_argument("--style", help="the work item's style (selects the calibration's learnt style offset)")
    p.add_argument("--residual", default="default", help="learnt residual on top of the physics: on (the shipped "
                   "checkpoint), off, a checkpoint file, or default (the shipped one if it is marked on)")  # fmt: skip
    p.add_argument("--correction", default="default",
                   help="learned path correction: default (the shipped checkpoint, where its gate lets it: a "
                        "refusal keeps the uncorrected plan and is noted in the plan), off, or a checkpoint file "
                        "(used only if it beat the uncorrected planner on held-out pairs; not applied -> a "
                        "reason for a human)")  # fmt: skip
    p.add_argument("--margin-sigmas", type=float, default=MARGIN_SIGMAS,
                   help="keep the glue this many sigma (p95 of the predicted line's uncertainty) inside the line "
                        f"(default {MARGIN_SIGMAS:g}; a --bite-line file without a sigma: the config's "
                        "margin)")  # fmt: skip
    p.add_argument("--margin", choices=["per-point", "p95"], default="per-point",
                   help="per-point: each bite-line point keeps margin-sigmas x its own sigma (default); p95: one "
                        "margin from the line's p95 sigma all round")  # fmt: skip
    p.add_argument("--config", type=Path, help="cell.toml; its [pathplan] table is read (unknown keys are errors)")
    p.add_argument("--gun", type=Path, help="gun calibration from `gluecell gun calibrate` (default: the deposition "
                   "values of --config / the shipped ones)")  # fmt: skip
    p.add_argument("--show", type=Path, metavar="PLAN", help="draw PLAN (with --upper/--sole clouds if given)")
    p.add_argument("--out", type=Path, required=True, help="plan.json to write (or the PNG with --show)")
    p.set_defaults(func=_main)


def _main(args: argparse.Namespace) -> int:
    if args.show is not None:
        return run_show(args.show, args.out, upper=args.upper, sole=args.sole)
    calibration = None if args.no_calibration else (args.calibration or _shipped_calibration())
    return run_plan(args.upper, args.sole, args.out, bite_line=args.bite_line, config=args.config,
                    material=args.material, calibration=calibration, correction=args.correction,
                    margin_sigmas=args.margin_sigmas, per_point=args.margin == "per-point", gun=args.gun,
                    references={"reference": args.reference, "sole_reference": args.sole_reference,
                                "style": args.style, "residual": args.residual})  # fmt: skip


def _shipped_calibration() -> Path:
    from gluecell.deformation.calibration import DEFAULT_CALIBRATION

    return DEFAULT_CALIBRATION


def read_bite_line(path: Path) -> tuple[Any, float | None, list[str]]:
    """A line from a JSON file with a "bite_line" (or "junction") list: ((m, 3) float64 base_link, the p95 of
    its "bite_line_sigma" in metres or None, its "line_reasons"). A predicted line (``gluecell predict``'s
    ``gluecell.attach/1``, which carries a sigma) keeps its margin and its reasons; a marked or measured line
    has neither."""
    import numpy as np

    line, sigma, reasons = read_bite_line_points(path)
    return line, (None if sigma is None else float(np.percentile(sigma, 95))), reasons


def read_bite_line_points(path: Path) -> tuple[Any, Any, list[str]]:
    """As :func:`read_bite_line`, with the per-point sigma ((m,) metres, or None) instead of its p95."""
    import numpy as np

    from gluecell.core.errors import FormatError
    from gluecell.core.fileio import read_json
    from gluecell.core.validate import as_points

    data = read_json(path)
    key = next((k for k in ("bite_line", "junction") if isinstance(data, dict) and k in data), None)
    if key is None:
        raise FormatError(f'{path}: expected a JSON object with a "bite_line" (or "junction") list of [x, y, z]')
    if data.get("frame", "base_link") != "base_link":
        raise FormatError(f"{path}: the line is in frame {data['frame']!r}; the planner needs it in base_link")
    try:
        line = as_points("bite_line", data[key], min_rows=8)
    except ValueError as exc:
        raise FormatError(f"{path}: {exc}") from exc
    if "bite_line_sigma" not in data:
        return line, None, []
    sigma = np.asarray(data["bite_line_sigma"], dtype=np.float64)
    if sigma.shape != (len(line),) or not np.all(np.isfinite(sigma)) or np.any(sigma < 0):
        raise FormatError(f"{path}: bite_line_sigma must be {len(line)} finite values >= 0, one per point")
    reasons = data.get("line_reasons")
    if not isinstance(reasons, list) or not all(isinstance(r, str) for r in reasons):
        reasons = ["line uncertain: the predicted line's file does not say whether its sigma covers its error"]
    return line, sigma, reasons


def _load_config(path: Path | None):
    from gluecell.core.config import load_config
    from gluecell.pathplan.pipeline import PathplanConfig

    return load_config(PathplanConfig, path, section="pathplan") if path else PathplanConfig()


def _cloud(path: Path | None, what: str):
    from gluecell.core.errors import ConfigError
    from gluecell.core.ply import read_ply

    if path is None:
        raise ConfigError(f"--{what} is required to plan (a PLY cloud in base_link)")
    c = read_ply(path)
    return c.points, c.normals


def predict_line(upper: tuple[Any, Any], sole: tuple[Any, Any], *, material: str | None = None,
                 calibration: Path | None = None, references: dict[str, Any] | None = None) -> Any:  # fmt: skip
    """The deformation step from the two clouds ((points, normals or None), as :func:`_cloud` reads them) and
    the files the CLI names: a :class:`~gluecell.deformation.line.PredictedLine`. ``references``: optional
    ``reference`` / ``sole_reference`` PLY paths of the style's nominal upper and sole, and the ``style`` name.

    Raises:
        GlueCellError: bad scans, or a prediction too uncertain to spray (the pair goes to a human).
    """
    from gluecell.cell.cli.predict import load_reference
    from gluecell.deformation.calibration import resolve_calibration
    from gluecell.deformation.inputs import scan_from_arrays
    from gluecell.deformation.line import predict_bite_line

    refs = references or {}
    cal, notes = resolve_calibration(calibration, off=calibration is None, style=refs.get("style"))
    for note in notes:
        print(note, file=sys.stderr)
    return predict_bite_line(scan_from_arrays("upper", *upper), scan_from_arrays("sole", *sole), material=material,
                             calibration=cal, style=refs.get("style"), residual=refs.get("residual", "default"),
                             reference=load_reference(refs.get("reference"), "upper"),
                             sole_reference=load_reference(refs.get("sole_reference"), "sole"))  # fmt: skip


def run_plan(upper: Path | None, sole: Path | None, out: Path, *, bite_line: Path | None = None,
             config: Path | None = None, material: str | None = None,
             calibration: Path | None = None, correction: Path | str | None = "default",
             margin_sigmas: float = MARGIN_SIGMAS, references: dict[str, Any] | None = None,
             per_point: bool = True, gun: Path | None = None) -> int:  # fmt: skip
    """Plan both parts and write ``out`` with its verdict; raises GlueCellError (exit 2 through the CLI) when it
    cannot plan at all. A plan that needs a human is written (verdict ``needs_human``) and exits 3."""
    import numpy as np
    from rich.progress import Progress, SpinnerColumn, TextColumn

    from gluecell.core.plan import Plan, write_plan
    from gluecell.pathplan.safety import VERDICT_OK, margin_mm, plan_checked

    t0 = time.perf_counter()
    from gluecell.pathplan.gun_calibration import with_gun

    cfg = with_gun(_load_config(config), gun)  # first: a bad config or gun file stops before any work
    margin_mm(cfg, 0.0, margin_sigmas)  # a bad --margin-sigmas stops before any work too
    model = _load_correction(correction)
    clouds = {"upper": _cloud(upper, "upper"), "sole": _cloud(sole, "sole")}
    pl, sigma, sig_pts = None, None, None
    if bite_line is None:
        pl = predict_line(clouds["upper"], clouds["sole"], material=material, calibration=calibration,
                          references=references)  # fmt: skip
        line, sigma, sig_pts, why = pl.line, pl.sigma_p95_m, pl.sigma, list(pl.reasons)
    else:  # a predicted line's file keeps its sigma and reasons
        line, sig_pts, why = read_bite_line_points(bite_line)
        sigma = None if sig_pts is None else float(np.percentile(sig_pts, 95))
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), transient=True) as prog:
        prog.add_task("planning the upper and the sole")
        checked = plan_checked(clouds["upper"], clouds["sole"], line, cfg, sigma_p95_m=sigma,
                               margin_sigmas=margin_sigmas, line_reasons=why, correction=model,
                               sigma_m=sig_pts if per_point else None,
                               correction_required=str(correction) != "default")  # fmt: skip
    parts = checked.pair.parts
    total = (time.perf_counter() - t0) * 1e3
    timing = {"deformation": pl.deform_ms if pl else 0.0,
              "pathplan": checked.pair.timing_ms["pathplan"], "total": total}  # fmt: skip
    timing.update({f"{part}_{k}": v for part, p in parts.items() for k, v in p.timing_ms.items()})
    extra = {"verdict": checked.verdict, "verdict_reasons": list(checked.reasons),
             "robot_programs": {k: _program_dict(p.program) for k, p in parts.items()},
             "metrics": {k: p.metrics for k, p in parts.items()},
             "stages": {k: p.stages[0] for k, p in parts.items()},
             "margin_mm": checked.extra["margin_mm"]}  # fmt: skip
    if checked.extra.get("margin_per_point"):
        extra.update(margin_mm_min=checked.extra["margin_mm_min"], margin_mm_max=checked.extra["margin_mm_max"])
    if sigma is not None:
        extra["bite_line_sigma_p95_mm"] = sigma * 1e3
    if checked.correction is not None:
        extra["correction"] = {"applied": bool(checked.correction.applied), "reason": checked.correction.reason,
                               "diagnostics": _jsonable(checked.correction.diagnostics)}  # fmt: skip
    write_plan(out, Plan(bite_line=line, paths=tuple(p.path for p in parts.values()), timing_ms=timing, extra=extra))
    _print_summary(parts, checked)
    print(f"wrote {out} in {total:.0f} ms")
    return 0 if checked.verdict == VERDICT_OK else EXIT_NEEDS_HUMAN


def _print_summary(parts: dict[str, Any], checked: Any) -> None:
    """One line per part with the figure the film limit applies to, then the verdict and its reasons."""
    from gluecell.pathplan.pipeline import film_limit

    key, allow_mm, level_m = film_limit(checked.cfg)
    target = checked.cfg.tuning.target_coverage
    for part, p in parts.items():
        m = p.metrics
        print(f"{part}: coverage {m['coverage_1mm']:.1%} of the band beyond the 1 mm strip (target {target:.0%}), "
              f"film >= {level_m * 1e6:.0f} um beyond the line {m[key]:.2f} mm (allowed {allow_mm:.2f} mm), "
              f"robot {m.get('robot_time_s', float('nan')):.1f} s")  # fmt: skip
    if checked.correction is not None:
        res = checked.correction
        print(f"correction {'applied (re-checked)' if res.applied else 'not applied: ' + res.reason}")
    print(f"verdict: {checked.verdict}" + "".join(f"\n  - {r}" for r in checked.reasons))


def _load_correction(path: Path | str | None) -> Any:
    """The learned correction model, or None (refuses a model that did not beat the uncorrected planner).

    ``"default"``: the shipped checkpoint when it is marked on (``beats_baseline``), else None with a note;
    ``"off"`` / None: none; a path: that checkpoint (a refused one is an error)."""
    from gluecell.core.errors import VersionError
    from gluecell.pathplan.correction import DEFAULT_MODEL, CorrectionError, load_model

    if path is None or str(path) == "off":
        return None
    if str(path) == "default":
        try:
            return load_model(DEFAULT_MODEL)
        except (CorrectionError, VersionError) as exc:  # not switched on, or not usable: plan uncorrected
            print(f"learned correction off: {exc.message}", file=sys.stderr)
            return None
    return load_model(Path(path))


def _jsonable(d: dict[str, Any]) -> dict[str, Any]:
    """The correction's diagnostics with plain JSON values only (numbers, strings, lists, flags)."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, (bool, int, float, str)):
            out[k] = v
        elif isinstance(v, (list, tuple)) and all(isinstance(x, (bool, int, float, str)) for x in v):
            out[k] = list(v)
    return out


def _program_dict(prog) -> dict[str, Any] | None:
    if prog is None:
        return None
    return {"joint_names": list(prog.joint_names), "t": [round(float(x), 6) for x in prog.t],
            "q": [[round(float(v), 7) for v in row] for row in prog.q],
            "gun_events": [[round(t, 6), on] for t, on in prog.gun_events]}  # fmt: skip


def run_show(plan_path: Path, out: Path, *, upper: Path | None = None, sole: Path | None = None) -> int:
    """``gluecell plan --show``: draw the plan into a PNG and say where."""
    draw_plan(plan_path, out, upper=upper, sole=sole)
    print(f"wrote {out}")
    return 0


def draw_plan(plan_path: Path, out: Path, *, upper: Path | None = None, sole: Path | None = None) -> Path:
    """Draw the plan's bite line and paths (and the clouds, if given) into the PNG ``out``; returns ``out``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from gluecell.core.fileio import atomic_open
    from gluecell.core.plan import read_plan
    from gluecell.core.ply import read_ply

    plan = read_plan(plan_path)
    fig = plt.figure(figsize=(12, 6))
    for k, part in enumerate(("upper", "sole")):
        ax = fig.add_subplot(1, 2, k + 1, projection="3d")
        cloud = {"upper": upper, "sole": sole}[part]
        if cloud is not None:
            pts = read_ply(cloud).points
            pts = pts[:: max(len(pts) // 6000, 1)]
            ax.scatter(*pts.T, s=0.3, c="0.6", alpha=0.4)
        if part == "upper":
            bl = np.vstack([plan.bite_line, plan.bite_line[:1]])
            ax.plot(*bl.T, c="red", lw=1.5, label="bite line")
        for p in plan.paths:
            if p.part != part:
                continue
            on = p.spray[:-1]
            segs = np.stack([p.xyz[:-1], p.xyz[1:]], axis=1)
            for mask, color, lab in ((on, "tab:blue", "spray"), (~on, "0.75", "gun off")):
                pts = segs[mask].reshape(-1, 3)
                if len(pts):
                    xs = np.insert(pts, np.arange(2, len(pts), 2), np.nan, axis=0)
                    ax.plot(*xs.T, c=color, lw=0.6, label=lab)
        ax.set_title(f"{part} (base_link, m)")
        ax.set_box_aspect((1, 1, 0.5))
        ax.legend(loc="upper left", fontsize=7)
    fig.tight_layout()
    with atomic_open(out, "wb") as fh:
        fig.savefig(fh, format="png", dpi=110)
    plt.close(fig)
    return out
