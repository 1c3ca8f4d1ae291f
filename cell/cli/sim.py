"""``gluecell sim``: the simulated cell as its own process, a rosbridge v2 server on 127.0.0.1."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

__all__ = ["register"]


def _world(args: argparse.Namespace) -> tuple[Path | None, list[str]]:
    """The world dataset (given, or generated into ``<out>/world``) and its ids; ids only with ``--no-world``."""
    if args.no_world:
        return None, [f"P{i:05d}" for i in range(args.pairs)]
    from gluecell.datasets.format import open_dataset

    if args.world:
        root = Path(args.world)
    else:
        from gluecell.datasets.generate import GenerateOptions, generate_dataset, load_generate_config

        root = Path(args.out) / "world"
        world, scanner = load_generate_config(None)
        opts = GenerateOptions(n=args.pairs, seed=args.seed, world=world, scanner=scanner)
        print(f"gluecell sim: generating {args.pairs} pairs into {root} (resumable) ...", flush=True)
        generate_dataset(root, opts)
    return root, list(open_dataset(root).ids())


def _cmd_sim(args: argparse.Namespace) -> int:
    import asyncio
    import signal

    from gluecell.cell.sim.cell import SimCell, SimCellConfig
    from gluecell.cell.sim.faults import load_faults
    from gluecell.cell.sim.run import serve_forever

    world, ids = _world(args)
    faults = load_faults(args.faults) if args.faults else []
    cameras = Path(args.cameras) if args.cameras else (Path(args.out) / "cameras" if world else None)
    cell = SimCell(SimCellConfig(speed=args.speed, seed=args.seed), ids=ids, world=world, camera_root=cameras,
                   faults=faults, port=args.port)  # fmt: skip

    def ready(port: int) -> None:
        print(f"gluecell sim: rosbridge v2 on ws://127.0.0.1:{port}  speed x{args.speed:g}, {len(ids)} pairs, "
              f"cameras {cameras or 'none'}, {len(faults)} configured fault(s); Ctrl-C stops", flush=True)  # fmt: skip

    async def main() -> None:
        task = asyncio.ensure_future(serve_forever(cell, ready))
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, task.cancel)
        try:
            await task
        except asyncio.CancelledError:
            pass

    asyncio.run(main())
    return 0


def register(sub: Any) -> None:
    """Add ``gluecell sim``."""
    p = sub.add_parser("sim", help="run the simulated cell (robot, gun, conveyor, cameras) as a rosbridge server")
    p.add_argument("--port", type=int, default=9090, help="rosbridge port on 127.0.0.1 (default 9090; 0: any free)")
    p.add_argument("--speed", type=float, default=1.0, help="simulated seconds per wall second (default 1)")
    p.add_argument("--world", help="an existing world dataset folder (default: generate --pairs into --out)")
    p.add_argument("--pairs", type=int, default=3, help="pairs to generate (default 3)")
    p.add_argument("--seed", type=int, default=11, help="world and noise seed (default 11)")
    p.add_argument("--out", default="runs/sim", help="folder for the generated world and the cameras (runs/sim)")
    p.add_argument("--cameras", help="folder the cameras' frames go to (default <out>/cameras)")
    p.add_argument("--faults", help="TOML file with [[fault]] tables (see gluecell.cell.sim.faults)")
    p.add_argument("--no-world", action="store_true", help="ids only: no cameras, no spray outcome (link tests)")
    p.set_defaults(func=_cmd_sim)
