"""The ``gluecell`` console script: one subcommand per verb.

Each package that offers commands has a module with ``register(subparsers)``; that
module adds its parsers and sets ``func`` (called with the parsed args, returns an
exit code). Heavy libraries are imported inside those functions, so ``--help`` is fast.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from gluecell.core.errors import GlueCellError

__all__ = ["main", "build_parser"]

#: Modules that add subcommands, in help order.
COMMAND_MODULES: tuple[str, ...] = (
    "gluecell.cell.cli.demo",
    "gluecell.datasets.cli",
    "gluecell.cell.cli.scan",
    "gluecell.cell.cli.calibrate",
    "gluecell.cell.cli.predict",
    "gluecell.cell.cli.plan",
    "gluecell.cell.cli.correction",
    "gluecell.cell.cli.measure",
    "gluecell.cell.cli.bench",
    "gluecell.cell.cli.factory",
    "gluecell.cell.cli.users",
    "gluecell.cell.cli.sim",
    "gluecell.cell.cli.serve",
    "gluecell.cell.cli.op",
    "gluecell.cell.cli.qa",
    "gluecell.cell.cli.inspect",
    "gluecell.cell.cli.gun",
)


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser."""
    parser = argparse.ArgumentParser(
        prog="gluecell",
        description="Controller of a vision-guided robotic glue-spraying cell for shoe factories.",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except GlueCellError as exc:
        print(f"gluecell {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"gluecell {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
