"""``gluecell measure``: the actual bite line and sole deformation of an attached pair, from two scans.

``--attached`` is the scan of the pair after pressing (upper station, sole on top); ``--sole`` the scan of
the same sole free (footbed up, sole station). Both are PLY point clouds in ``base_link`` (normals are
estimated when absent); ``--tray-plane`` gives the sole station's tray as perception measured it (it
carries that station's calibration tilt, and the pose's tilt and height are taken from it). The output is
``gluecell.plan/1`` JSON with the measured bite line and no paths;
the extra key ``measured`` holds the per-point confidence, the deformed sole and the registration's
diagnostics. Bad input: the reason on stderr, exit code 2, no file.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

__all__ = ["register", "run_measure", "plot_measured"]


def register(subparsers: Any) -> None:
    """Add the ``measure`` subcommand."""
    p = subparsers.add_parser(
        "measure",
        help="measure the actual bite line and sole deformation of an attached pair (for the learning loop)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--attached", required=True, type=Path, help="PLY scan of the attached pair (upper station)")
    p.add_argument("--sole", required=True, type=Path, help="PLY scan of the free sole (sole station)")
    p.add_argument("--out", required=True, type=Path, help="output JSON (gluecell.plan/1 bite-line form)")
    p.add_argument("--png", type=Path, help="also save a picture of the scan with the measured bite line")
    p.add_argument(
        "--tray-plane",
        nargs=4,
        type=float,
        metavar=("NX", "NY", "NZ", "D"),
        help="plane n.p + d = 0 (base_link) of the tray the free sole lay on, as perception fitted it (the last of "
        "'support_planes' in `gluecell scan --part sole --json`); default: level, 3 mm under the scan's lowest point",
    )
    p.set_defaults(func=run_measure)


def plot_measured(attached: Any, measured: Any, path: Path) -> None:
    """Side and plan views of the attached scan, the deformed sole and the bite line (matplotlib Agg), atomic."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from gluecell.core.fileio import atomic_open

    P = attached.points[:: max(1, len(attached.points) // 20000)]
    S = measured.deformed_sole[:: max(1, len(measured.deformed_sole) // 8000)]
    L = measured.bite_line
    fig, axes = plt.subplots(3, 1, figsize=(12, 12))
    for ax, (a, b, title) in zip(axes, ((0, 2, "side (x-z)"), (1, 2, "end (y-z)"), (0, 1, "plan (x-y)"))):
        ax.scatter(P[:, a], P[:, b], s=0.2, c="0.6", label="attached scan")
        ax.scatter(S[:, a], S[:, b], s=0.2, c="tab:blue", alpha=0.3, label="registered sole")
        sc = ax.scatter(L[:, a], L[:, b], s=2, c=measured.bite_confidence, cmap="RdYlGn", vmin=0, vmax=1)
        ax.set_aspect("equal")
        ax.set_title(f"{title}: measured bite line coloured by confidence (metres, base_link)")
    fig.colorbar(sc, ax=axes, shrink=0.5, label="confidence")
    axes[0].legend(loc="upper right", markerscale=10)
    with atomic_open(path, "wb") as fh:
        fig.savefig(fh, format="png", dpi=80)
    plt.close(fig)


def run_measure(args: argparse.Namespace) -> int:
    """Body of ``gluecell measure``; returns the exit code (errors propagate as GlueCellError)."""
    import numpy as np

    from gluecell.cell.cli.predict import load_scan_ply
    from gluecell.core.plan import write_plan
    from gluecell.deformation.measure import measure_attached, measured_to_plan

    t0 = time.perf_counter()
    # measure registers on the tray and tread planes itself: the clouds are read as they are
    attached = load_scan_ply(args.attached, "upper", clean=False)
    sole = load_scan_ply(args.sole, "sole", clean=False)
    t1 = time.perf_counter()
    tray = None if args.tray_plane is None else np.asarray(args.tray_plane, dtype=np.float64)
    m = measure_attached(attached, sole, tray_plane=tray)
    t2 = time.perf_counter()
    write_plan(args.out, measured_to_plan(m, timing_ms={"read": (t1 - t0) * 1e3, "measure": (t2 - t1) * 1e3}))
    if args.png:
        plot_measured(attached, m, args.png)
    reg = m.registration
    print(
        f"bite line: {len(m.bite_line)} points, rim seen at {m.rim_valid_fraction:.0%} of the outline, "
        f"rigid fit {reg.rigid_rms_m * 1e3:.2f} mm rms, CPD {reg.cpd.iterations} iterations "
        f"({'converged' if reg.cpd.converged else 'NOT converged'}), {(t2 - t1) * 1e3:.0f} ms -> {args.out}"
    )
    return 0
