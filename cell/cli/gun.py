"""``gluecell gun``: calibrate the spray gun on a coupon and write the planner's deposition values.

    gluecell gun calibrate --world {1,2} --out gun.json [--seed S]   # the simulated cell's coupon
    gluecell gun show gun.json                                      # the fitted values and residuals

The cell sprays a flat coupon with the program of :data:`gluecell.pathplan.gun_calibration.DEFAULT_PROGRAM`
(standoffs 5-70 mm, 460 / 230 mm/s, the nozzle along the path and rolled 90 deg), measures each stripe with its
laser line profiler and weighs the coupons (here: the simulated cell, :mod:`gluecell.cell.sim.coupon`), then fits
flow, cone sigmas and halo (:func:`gluecell.pathplan.gun_calibration.fit_gun`). The planner uses the file with
``gluecell plan --gun gun.json`` and ``gluecell bench --gun gun.json``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

__all__ = ["register", "run_calibrate"]


def register(subparsers: Any) -> None:
    """Add the ``gun`` subcommand."""
    p = subparsers.add_parser("gun", help="calibrate the spray gun on a coupon (the planner's deposition model)",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    sub = p.add_subparsers(dest="gun_cmd", required=True)
    c = sub.add_parser("calibrate", help="spray and measure a coupon, fit the gun, write the calibration file")
    c.add_argument("--world", default="1", choices=["1", "2"], help="the simulated cell's world (its true gun)")
    c.add_argument("--seed", type=int, default=0, help="seed of the coupon runs and the sensor noise (default 0)")
    c.add_argument("--out", type=Path, required=True, help="calibration JSON to write (gluecell.gun_calibration/1)")
    c.set_defaults(func=_calibrate)
    s = sub.add_parser("show", help="print a calibration file's values and fit residuals")
    s.add_argument("file", type=Path)
    s.set_defaults(func=_show)


def run_calibrate(world: int, out: Path, seed: int = 0, progress: Any = None) -> Any:
    """Spray the simulated coupon of ``world``, fit the gun and write ``out``; returns the calibration."""
    import time
    from dataclasses import replace

    from gluecell.cell.sim.coupon import ProfilerSensor, spray_coupon
    from gluecell.pathplan.gun_calibration import DEFAULT_PROGRAM, fit_gun, save_gun

    sensor = ProfilerSensor()
    meas = spray_coupon(world, seed, DEFAULT_PROGRAM, sensor, progress=progress)
    gun = fit_gun(meas)
    gun = replace(gun, source={"coupon": f"simulated cell, world {world}", "seed": seed,
                               "program": [vars(p) for p in DEFAULT_PROGRAM], "sensor": vars(sensor),
                               "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})  # fmt: skip
    save_gun(out, gun)
    return gun


def _print(gun: Any) -> None:
    p, m = gun.params, gun.metrics
    print(f"flow {p.flow_ml_s:.4f} ml/s deposited; core sigma {p.core_sigma_deg[0]:.2f} / "
          f"{p.core_sigma_deg[1]:.2f} deg (across / along); halo {p.halo_weight:.3f} at "
          f"{p.halo_sigma_deg[0]:.2f} / {p.halo_sigma_deg[1]:.2f} deg")
    if m:
        print(f"fit: RMS {m.get('rms_um', float('nan')):.1f} um, relative RMS (film >= 10 um) "
              f"{m.get('rel_rms', 0):.3f}, {m.get('n_passes', 0)} stripes")
        for r in m.get("passes", []):
            print(f"  {r['standoff_mm']:5.1f} mm {r['speed_mm_s']:4.0f} mm/s {'rolled' if r['rolled'] else 'along '}  "
                  f"peak {r['peak_um']:6.1f} um  RMS {r['rms_um']:5.1f} um  edge (model - measured) at 5 / 10 / 50 um: "
                  f"{r['reach_5um_err_mm']:+.2f} / {r['reach_10um_err_mm']:+.2f} / {r['reach_50um_err_mm']:+.2f} mm")


def _calibrate(args: argparse.Namespace) -> int:
    from rich.progress import Progress

    with Progress(transient=True) as bar:
        task = bar.add_task("spraying and measuring the coupon", total=None)
        gun = run_calibrate(int(args.world), args.out, args.seed,
                            progress=lambda k, n: bar.update(task, completed=k, total=n))  # fmt: skip
    _print(gun)
    print(f"wrote {args.out}")
    return 0


def _show(args: argparse.Namespace) -> int:
    from gluecell.pathplan.gun_calibration import load_gun

    _print(load_gun(args.file))
    return 0
