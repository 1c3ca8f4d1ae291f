"""The operator console: static files (HTML, JS, CSS) served by the API app; no CDN, no build step.

Plots (the 3D view of the pair and the KPI charts) use plotly.js as the ``plotly`` wheel ships it
(``plotly/package_data/plotly.min.js``), served by the app at ``/vendor/plotly.min.js``: one local asset,
installed with the Python dependencies, nothing fetched at run time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["mount_console", "STATIC_DIR", "plotly_js"]

STATIC_DIR = Path(__file__).resolve().parent / "static"


def plotly_js() -> Path:
    """Path of the plotly.min.js the ``plotly`` wheel ships."""
    import importlib.util

    spec = importlib.util.find_spec("plotly")
    if spec is None or not spec.submodule_search_locations:
        from gluecell.cell.errors import CellError

        raise CellError("the 'plotly' package is missing (pip install plotly): the console's charts need it")
    return Path(next(iter(spec.submodule_search_locations))) / "package_data" / "plotly.min.js"


def mount_console(app: Any) -> None:
    """Serve the console at ``/`` and its assets at ``/console/`` and ``/vendor/``."""
    from fastapi.responses import FileResponse, RedirectResponse
    from fastapi.staticfiles import StaticFiles

    headers = {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff",
               "Content-Security-Policy": "default-src 'self'; img-src 'self' blob: data:; style-src 'self'"
               " 'unsafe-inline'; script-src 'self' 'unsafe-eval'; connect-src 'self'"}  # fmt: skip
    plotly = plotly_js()

    @app.get("/", include_in_schema=False)
    def index() -> Any:
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html", headers=headers)

    @app.get("/console", include_in_schema=False)
    def console() -> Any:
        return RedirectResponse("/")

    @app.get("/vendor/plotly.min.js", include_in_schema=False)
    def vendor_plotly() -> Any:
        return FileResponse(plotly, media_type="text/javascript", headers={"Cache-Control": "max-age=86400"})

    app.mount("/console", StaticFiles(directory=STATIC_DIR), name="console")
