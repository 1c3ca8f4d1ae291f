"""The MES task API and the server of the operator console (FastAPI, served by the controller's process).

* :func:`gluecell.cell.api.app.create_app` — the app over the cell database (``ApiSettings``).
* :mod:`.server` — ``--host/--port/--no-browser`` for ``gluecell serve`` / ``gluecell demo`` and the server
  thread; :mod:`.sse_client` — a client of the event stream.
* :mod:`.jobs` — ISA-95 job orders (OPC 10031-4); :mod:`.cell_port` — the one seam to the controller.

Nothing heavy is imported here (``gluecell --help`` stays fast).
"""

__all__: list[str] = []
