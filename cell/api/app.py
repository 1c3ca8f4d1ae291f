"""The FastAPI application: the MES task API under ``/api/v1`` and the operator console under ``/``.

    app = create_app(ApiSettings(db_path="runs/cell/cell.db"))

Everything but ``/healthz`` and the console's static files (HTML, scripts, styles: no data) needs a bearer
token, including ``/openapi.json``. FastAPI's ``/docs`` and ``/redoc`` are off: their pages load scripts from
a CDN, which a plant network does not reach; the OpenAPI document is served for tools to read.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["ApiSettings", "create_app", "API_VERSION"]

API_VERSION = "1.0.0"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ApiSettings:
    """Settings of the API.

    Attributes:
        db_path: the cell's SQLite file (the store's; the API adds its own tables).
        max_body_bytes: largest request body accepted (413 above).
        rate_per_s, burst: token bucket per caller (429 above).
        dispatch_period_s: how often job orders are matched with the cell.
        max_streams_per_user: concurrent event streams one user may hold.
        command_timeout_s: how long a command waits for the controller to apply it before answering 202.
        media_roots: folders the API may serve pictures and scans from (the controller's output folders).
    """

    db_path: str = "runs/cell/cell.db"
    max_body_bytes: int = 64 * 1024
    rate_per_s: float = 50.0
    burst: float = 100.0
    dispatch_period_s: float = 0.2
    max_streams_per_user: int = 8
    command_timeout_s: float = 3.0
    media_roots: tuple[str, ...] = ("runs",)


def _openapi_route(app: Any) -> None:
    from fastapi import Depends

    from gluecell.cell.api.auth import READ, require

    @app.get("/openapi.json", include_in_schema=False, dependencies=[Depends(require(READ))])
    def openapi() -> dict[str, Any]:
        return app.openapi()


def create_app(settings: ApiSettings | None = None, *, port: Any = None) -> Any:
    """Build the app on the cell database of ``settings``.

    Args:
        settings: API settings (defaults: :class:`ApiSettings`).
        port: the cell seam (:class:`gluecell.cell.api.cell_port.CellPort`); built on the store when None.
    """
    from fastapi import FastAPI

    from gluecell.cell.api import routes_cell, routes_jobs
    from gluecell.cell.api.cell_port import CellPort, JobBridge
    from gluecell.cell.api.db import ApiDb
    from gluecell.cell.api.events import EventLog
    from gluecell.cell.api.jobs import JobOrders
    from gluecell.cell.api.limits import BodyLimit, RateLimit
    from gluecell.cell.api.problems import install_handlers
    from gluecell.cell.console import mount_console
    from gluecell.cell.store import Store

    settings = settings or ApiSettings()
    store = port.store if port is not None else Store(settings.db_path)
    port = port or CellPort(store, command_timeout_s=settings.command_timeout_s)
    db = ApiDb(store.db.path)
    events = EventLog(store)
    jobs = JobOrders(db, events)
    bridge = JobBridge(jobs, port)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        tasks = [asyncio.create_task(events.tail()), asyncio.create_task(bridge.run(settings.dispatch_period_s))]
        try:
            yield
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    app = FastAPI(title="gluecell cell API", version=API_VERSION, lifespan=lifespan, docs_url=None, redoc_url=None,
                  openapi_url=None, description=__doc__)  # fmt: skip
    app.state.settings, app.state.db, app.state.store, app.state.port = settings, db, store, port
    app.state.events, app.state.jobs, app.state.bridge = events, jobs, bridge
    app.state.streams = {}
    install_handlers(app)
    _openapi_route(app)

    @app.get("/healthz", tags=["health"], summary="Liveness (no authentication)")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    app.include_router(routes_jobs.router)
    app.include_router(routes_cell.router)
    mount_console(app)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(RateLimit, rate=settings.rate_per_s, burst=settings.burst)
    return app


def db_path_default() -> Path:
    """The cell database ``gluecell serve`` / ``gluecell demo`` use by default."""
    return Path(ApiSettings().db_path)
