"""``gluecell users`` and the server options of ``gluecell serve`` / ``gluecell demo``."""

from __future__ import annotations

import socket
import subprocess
import sys

import httpx
import pytest

from gluecell.cell.api.auth import hash_token
from gluecell.cell.api.db import ApiDb
from gluecell.cell.cli import build_parser, main


def test_users_add_prints_the_token_once_and_stores_its_hash(tmp_path, capsys):
    db = str(tmp_path / "cell.db")
    assert main(["users", "--db", db, "add", "ana", "--role", "operator"]) == 0
    token = capsys.readouterr().out.strip().splitlines()[-1]
    assert token.startswith("gc_") and len(token) > 40
    rows = ApiDb(db).query("SELECT name, role, token_sha256 FROM api_users")
    assert [tuple(r) for r in rows] == [("ana", "operator", hash_token(token))]
    assert token.encode() not in (tmp_path / "cell.db").read_bytes()
    assert main(["users", "--db", db, "add", "ana", "--role", "operator"]) == 2
    assert main(["users", "--db", db, "add", "bad name", "--role", "operator"]) == 2
    with pytest.raises(SystemExit):
        main(["users", "--db", db, "add", "bob", "--role", "admin"])
    assert main(["users", "--db", db, "disable", "ana"]) == 0
    assert main(["users", "--db", db, "list"]) == 0
    assert "ana                      operator  disabled" in capsys.readouterr().out


def test_serve_and_demo_take_host_port_and_no_browser():
    p = build_parser()
    for verb in (["serve", "--config", "cell.toml"], ["demo"]):
        args = p.parse_args([*verb, "--host", "127.0.0.1", "--port", "8123", "--no-browser"])
        assert (args.host, args.port, args.no_browser, args.no_api) == ("127.0.0.1", 8123, True, False)
    assert p.parse_args(["demo"]).port == 8080 and p.parse_args(["demo"]).host == "127.0.0.1"


def test_server_thread_serves_on_loopback_and_refuses_a_taken_port(tmp_path):
    from gluecell.cell.api.server import start_api_server
    from gluecell.cell.errors import CellError

    api = start_api_server("127.0.0.1", 0, db_path=str(tmp_path / "cell.db"))
    try:
        assert httpx.get(api.url + "healthz").json() == {"status": "ok"}
        with pytest.raises(CellError, match="choose another --port"):
            start_api_server("127.0.0.1", api.port, db_path=str(tmp_path / "cell.db"))
        sock = socket.create_connection(("127.0.0.1", api.port))
        assert sock.getpeername()[0] == "127.0.0.1"
        sock.close()
    finally:
        api.stop()


def test_cli_help_stays_light():
    code = "import sys; from gluecell.cell.cli import build_parser; build_parser(); print('fastapi' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "False", out.stderr
