"""``gluecell users``: API users and their bearer tokens (roles mes, operator, engineer, viewer).

    gluecell users add mes-gateway --role mes      # prints the token once; only its hash is stored
    gluecell users list
    gluecell users rotate mes-gateway               # a new token; the old one stops working
    gluecell users disable mes-gateway

The users live in the cell database that ``gluecell serve`` and ``gluecell demo`` use by default.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

__all__ = ["register", "DEFAULT_DB"]

#: The cell database ``gluecell serve`` / ``gluecell demo`` use by default.
DEFAULT_DB = "runs/cell/cell.db"
_ROLES = ("mes", "operator", "engineer", "viewer")


def _db(args: argparse.Namespace) -> Any:
    from gluecell.cell.api.db import ApiDb
    from gluecell.cell.store import Store

    Store(args.db).close()  # the store's tables first: one file, both schemas
    return ApiDb(args.db)


def _cmd_add(args: argparse.Namespace) -> int:
    from gluecell.cell.api.auth import add_user
    from gluecell.cell.api.problems import Problem

    db = _db(args)
    try:
        token = add_user(db, args.name, args.role)
    except Problem as exc:
        print(f"gluecell users add: error: {exc.detail or exc.title}", file=sys.stderr)
        return 2
    finally:
        db.close()
    print(f"user {args.name!r} (role {args.role}) added to {args.db}. Its token (shown once, store it safely):")
    print(token)
    return 0


def _cmd_rotate(args: argparse.Namespace) -> int:
    from gluecell.cell.api.auth import rotate_token

    db = _db(args)
    token = rotate_token(db, args.name)
    db.close()
    if token is None:
        print(f"gluecell users rotate: error: no user {args.name!r}", file=sys.stderr)
        return 2
    print(f"user {args.name!r} has a new token (the old one no longer works; shown once):")
    print(token)
    return 0


def _cmd_list(args: argparse.Namespace) -> int:
    from gluecell.cell.api.auth import list_users

    db = _db(args)
    for u in list_users(db):
        print(f"{u['name']:<24} {u['role']:<9} {'disabled' if u['disabled'] else 'active'}")
    db.close()
    return 0


def _cmd_disable(args: argparse.Namespace) -> int:
    from gluecell.cell.api.auth import set_disabled

    db = _db(args)
    ok = set_disabled(db, args.name, not args.enable)
    db.close()
    if not ok:
        print(f"gluecell users: error: no user {args.name!r}", file=sys.stderr)
        return 2
    print(f"user {args.name!r} {'enabled' if args.enable else 'disabled'}")
    return 0


def register(sub: Any) -> None:
    """Add ``gluecell users add/list/disable``."""
    p = sub.add_parser("users", help="API users and their bearer tokens")
    p.add_argument("--db", default=DEFAULT_DB, help=f"cell database (default {DEFAULT_DB})")
    usub = p.add_subparsers(dest="users_command", metavar="ACTION", required=True)
    a = usub.add_parser("add", help="add a user and print its token once")
    a.add_argument("name", help="user name (1-64 of A-Z a-z 0-9 . _ @ -)")
    a.add_argument("--role", required=True, choices=_ROLES, help="what the user may do")
    a.set_defaults(func=_cmd_add)
    ls = usub.add_parser("list", help="list users (never tokens)")
    ls.set_defaults(func=_cmd_list)
    r = usub.add_parser("rotate", help="give a user a new token (the old one stops working)")
    r.add_argument("name")
    r.set_defaults(func=_cmd_rotate)
    d = usub.add_parser("disable", help="disable a user's token (--enable to undo)")
    d.add_argument("name")
    d.add_argument("--enable", action="store_true", help="enable again")
    d.set_defaults(func=_cmd_disable)
