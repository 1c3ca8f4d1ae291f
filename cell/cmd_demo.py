"""``gluecell demo``: the main job on the embedded default.

Today (foundation): generate a small synthetic world, scan it with the virtual cameras,
draw a picture of each pair and print a summary. Each later stage adds its step here.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

__all__ = ["register", "run_demo"]


def run_demo(out: Path, n: int, seed: int) -> list[dict[str, Any]]:
    """Generate ``n`` pairs into ``out/world`` (resumable), draw them, return one summary row per pair."""
    import numpy as np

    from gluecell.datasets.format import open_dataset
    from gluecell.datasets.generate import GenerateOptions, generate_dataset, load_generate_config
    from gluecell.datasets.show import render_sample

    world, scanner = load_generate_config(None)
    t0 = time.perf_counter()
    res = generate_dataset(out / "world", GenerateOptions(n=n, seed=seed, world=world, scanner=scanner))
    gen_s = time.perf_counter() - t0
    ds = open_dataset(out / "world")
    rows = []
    for k, sid in enumerate(ds.ids()):
        item = ds.workitem(sid)
        truth = ds.truth(sid)
        frames = ds.frame_paths(sid)
        png = render_sample(ds, sid, out / f"pair_{sid}.png")
        bl = truth["bite_line"]
        seg = float(np.linalg.norm(bl - np.roll(bl, 1, axis=0), axis=1).sum())
        rows.append(
            {
                "id": sid,
                "style": item.style,
                "size": item.size_eu,
                "side": item.side,
                "material": truth["params"].get("material", "?"),
                "views": sum(len(v) for v in frames.values()),
                "bite_line_mm": seg * 1000.0,
                "picture": str(png),
                "gen_s": (res["seconds_per_sample"][k] if k < len(res["seconds_per_sample"]) else 0.0),
            }
        )
    rows.append({"total_gen_s": gen_s})
    return rows


def _cmd_demo(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    rows = run_demo(Path(args.out), args.n, args.seed)
    total = rows.pop()["total_gen_s"]
    table = Table(title=f"gluecell demo: {len(rows)} synthetic pairs (world generated in {total:.1f} s)")
    for col in ("id", "style", "EU", "side", "material", "views", "bite line [mm]", "picture"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            r["id"], r["style"], f"{r['size']:g}", r["side"], str(r["material"]), str(r["views"]),
            f"{r['bite_line_mm']:.0f}", r["picture"],
        )  # fmt: skip
    Console().print(table)
    return 0


def register(sub: Any) -> None:
    """Add ``gluecell demo``."""
    p = sub.add_parser("demo", help="run the main job on the embedded default (simulated world)")
    p.add_argument("--out", default="runs/demo", help="output folder (default runs/demo)")
    p.add_argument("--n", type=int, default=3, help="pairs to generate (default 3)")
    p.add_argument("--seed", type=int, default=7, help="world seed (default 7)")
    p.set_defaults(func=_cmd_demo)
