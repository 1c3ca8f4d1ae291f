"""Serving the API and the console from the controller's process: ``--host/--port/--no-browser`` and a server
thread.

    add_server_options(parser)                       # in gluecell serve / gluecell demo
    api = start_api_server(args, db_path="runs/cell/cell.db", media_roots=("runs",))
    ...
    api.stop()

The server binds 127.0.0.1 unless ``--host`` says otherwise (a warning is printed then: the plant network
reaches it). uvicorn runs in its own thread with its own event loop; the controller keeps its threads.
"""

from __future__ import annotations

import argparse
import socket
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any

__all__ = ["add_server_options", "start_api_server", "ApiServer", "DEFAULT_HOST", "DEFAULT_PORT", "console_url",
           "open_console", "demo_login", "DemoConsole", "serve_beside_controller"]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080


def add_server_options(parser: argparse.ArgumentParser, demo: bool = False) -> None:
    """Add ``--host``, ``--port``, ``--no-browser``, ``--no-api`` (and ``--keep-serving`` for the demo)."""
    g = parser.add_argument_group("task API and operator console")
    g.add_argument("--host", default=DEFAULT_HOST, help=f"address to bind (default {DEFAULT_HOST}: this machine only)")
    g.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT}; 0: any free port)")
    g.add_argument("--no-browser", action="store_true", help="do not open the console in a browser")
    g.add_argument("--no-api", action="store_true", help="do not serve the task API and console at all")
    if demo:
        g.add_argument("--keep-serving", action="store_true", help="keep the console up after the run (Ctrl-C)")


def console_url(host: str, port: int, token: str | None = None) -> str:
    """The console's address (with a one-time sign-in fragment when ``token`` is given; never sent to the server)."""
    import ipaddress

    try:  # an unspecified address (all interfaces) is reached on this machine through loopback
        unspecified = host == "" or ipaddress.ip_address(host).is_unspecified
    except ValueError:  # a host name
        unspecified = False
    shown = DEFAULT_HOST if unspecified else host
    return f"http://{shown}:{port}/" + (f"#token={token}" if token else "")


@dataclass
class ApiServer:
    """A running API server (see :func:`start_api_server`)."""

    app: Any
    server: Any
    thread: threading.Thread
    host: str
    port: int

    @property
    def url(self) -> str:
        """Base URL."""
        return console_url(self.host, self.port)

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop serving (open event streams are closed)."""
        self.server.should_exit = True
        self.thread.join(timeout_s)


def _bind(host: str, port: int) -> socket.socket:
    from gluecell.cell.errors import CellError

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY on accepted connections only when the listening socket's
    # proto says TCP; with proto 0, Nagle + delayed ACKs add ~40 ms to every response (measured 46 -> 2 ms)
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise CellError(f"cannot serve the API on {host}:{port}: {exc.strerror}; choose another --port") from exc
    return sock


def start_api_server(host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, *, db_path: str,
                     media_roots: tuple[str, ...] = ("runs",), settings: Any = None,
                     start_timeout_s: float = 15.0) -> ApiServer:  # fmt: skip
    """Serve the app on ``host:port`` in a thread; returns once it accepts connections."""
    import dataclasses

    import uvicorn

    from gluecell.cell.api.app import ApiSettings, create_app
    from gluecell.cell.errors import CellError

    if host not in ("127.0.0.1", "localhost", "::1"):
        print(f"warning: the task API listens on {host}: reachable from the network (tokens still required)",
              file=sys.stderr)  # fmt: skip
    settings = dataclasses.replace(settings or ApiSettings(), db_path=str(db_path), media_roots=tuple(media_roots))
    app = create_app(settings)
    sock = _bind(host, port)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="gluecell-api", daemon=True)
    thread.start()
    deadline = time.monotonic() + start_timeout_s
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise CellError(f"the task API did not start on {host}:{port}")
        time.sleep(0.02)
    return ApiServer(app, server, thread, host, int(sock.getsockname()[1]))


def open_console(api: ApiServer, token: str | None, no_browser: bool) -> None:
    """Print the console's address (and sign-in) and open it in a browser unless ``no_browser``."""
    url = console_url(api.host, api.port, token)
    print(f"operator console: {api.url}  (task API: {api.url}api/v1, OpenAPI: {api.url}openapi.json)")
    if token:
        print(f"sign in with the token {token}  (or open {url})")
    if not no_browser and _has_display():
        import webbrowser

        try:
            webbrowser.open(url)
        except Exception:  # no browser on this machine: the address above is enough
            pass


def _has_display() -> bool:
    """Whether a graphical browser can open: a terminal user with a display (never a text browser that would
    take over the terminal, never from a service or a test's subprocess)."""
    import os

    if not sys.stdout.isatty():
        return False
    return sys.platform in ("darwin", "win32") or bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def serve_beside_controller(args: argparse.Namespace, db_path: str, media_root: str) -> ApiServer | None:
    """``gluecell serve``'s API: on failure to bind, the cell keeps running and the reason is printed."""
    from gluecell.cell.errors import CellError

    try:
        api = start_api_server(args.host, args.port, db_path=db_path, media_roots=(media_root,))
    except CellError as exc:
        print(f"warning: {exc}; the cell runs without its task API and console", file=sys.stderr, flush=True)
        return None
    open_console(api, None, args.no_browser)
    return api


def demo_login(api: ApiServer, name: str = "demo-operator", role: str = "operator") -> str:
    """A token for the demo's operator (created, or given a new token when the user exists): printed once."""
    from gluecell.cell.api.auth import add_user, rotate_token
    from gluecell.cell.api.problems import Problem

    db = api.app.state.db
    try:
        return add_user(db, name, role)
    except Problem:
        token = rotate_token(db, name)
        assert token is not None
        return token


class DemoConsole:
    """The console of ``gluecell demo``: served on the demo's fresh database, with a one-time sign-in.

    ``run_demo(..., serve=console)`` calls it once the database is fresh; :meth:`finish` keeps serving until
    Ctrl-C with ``--keep-serving``; :meth:`close` stops it.
    """

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.api: ApiServer | None = None

    def __call__(self, out: Any) -> None:
        from pathlib import Path

        out = Path(out)
        self.api = start_api_server(self.args.host, self.args.port, db_path=str(out / "cell.db"),
                                    media_roots=(str(out),))  # fmt: skip
        # the demo's database is made fresh for every run, so its users are too: an operator for the console and
        # an MES client for the task API (gluecell users add ... works on serve's database)
        mes = demo_login(self.api, "demo-mes", "mes")
        print(f"MES client: Authorization: Bearer {mes}  (role mes)")
        open_console(self.api, demo_login(self.api), self.args.no_browser)

    def finish(self) -> None:
        """With ``--keep-serving``: keep the console up until Ctrl-C."""
        if self.api is None or not getattr(self.args, "keep_serving", False):
            return
        print(f"the console stays up at {self.api.url} (Ctrl-C stops it)", flush=True)
        try:
            while self.api.thread.is_alive():
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass

    def close(self) -> None:
        """Stop serving."""
        if self.api is not None:
            self.api.stop()
            self.api = None
