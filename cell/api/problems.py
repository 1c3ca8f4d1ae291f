"""Errors as RFC 9457 ``application/problem+json``.

Every refusal the API gives is a :class:`Problem` with a stable ``type`` URI (``urn:gluecell:problem:<slug>``),
a short ``title``, the HTTP ``status``, a ``detail`` that says what to do, and, for job-order methods, the
OPC UA ISA-95 Job Control ``ReturnStatus`` (OPC 10031-4: 1 unknown JobOrderID, 3 invalid job order status,
4 unable to accept, 32 invalid request).
"""

from __future__ import annotations

import logging
from typing import Any

from gluecell.cell.errors import CellError

__all__ = ["Problem", "problem_response", "install_handlers", "PROBLEM_JSON", "ReturnStatus"]

PROBLEM_JSON = "application/problem+json"
log = logging.getLogger(__name__)


class ReturnStatus:
    """OPC 10031-4 method return codes."""

    OK = 0
    UNKNOWN_JOB_ORDER_ID = 1
    INVALID_JOB_ORDER_STATUS = 3
    UNABLE_TO_ACCEPT = 4
    INVALID_REQUEST = 32


class Problem(CellError):
    """An HTTP refusal with a problem document.

    Args:
        status: HTTP status code.
        slug: the last part of the problem's type URI (e.g. ``invalid-job-order-status``).
        title: short, human-readable summary of the problem type.
        detail: what went wrong with this request and what to do.
        extra: extension members (e.g. ``ReturnStatus``, ``errors``).
        headers: extra response headers (e.g. ``Retry-After``, ``WWW-Authenticate``).
    """

    def __init__(self, status: int, slug: str, title: str, detail: str = "", *,
                 headers: dict[str, str] | None = None, **extra: Any) -> None:  # fmt: skip
        super().__init__(detail or title, stage="api")
        self.status = status
        self.slug = slug
        self.title = title
        self.detail = detail
        self.extra = extra
        self.headers = headers or {}

    def document(self, instance: str = "") -> dict[str, Any]:
        """The problem document (JSON object)."""
        doc: dict[str, Any] = {"type": f"urn:gluecell:problem:{self.slug}", "title": self.title,
                               "status": self.status}  # fmt: skip
        if self.detail:
            doc["detail"] = self.detail
        if instance:
            doc["instance"] = instance
        doc.update(self.extra)
        return doc


def problem_response(problem: Problem, instance: str = "") -> Any:
    """A ``JSONResponse`` carrying ``problem`` with the problem+json media type."""
    from fastapi.responses import JSONResponse

    return JSONResponse(problem.document(instance), status_code=problem.status, media_type=PROBLEM_JSON,
                        headers=problem.headers)  # fmt: skip


_STATUS_SLUGS = {400: "bad-request", 401: "unauthorized", 403: "forbidden", 404: "not-found",
                 405: "method-not-allowed", 406: "not-acceptable", 409: "conflict", 413: "payload-too-large",
                 415: "unsupported-media-type", 422: "invalid-request", 429: "too-many-requests"}  # fmt: skip


def _clean_errors(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Validation errors without the rejected input echoed back (it may be large or carry secrets)."""
    return [{"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))}
            for e in errors[:50]]  # fmt: skip


def install_handlers(app: Any) -> None:
    """Turn every error the app can raise into a problem+json response."""
    from fastapi.exceptions import RequestValidationError
    from starlette.exceptions import HTTPException as StarletteHTTPException

    async def on_problem(request: Any, exc: Problem) -> Any:
        return problem_response(exc, request.url.path)

    async def on_validation(request: Any, exc: RequestValidationError) -> Any:
        p = Problem(422, "invalid-request", "Invalid request", "the request does not match the schema; see errors",
                    errors=_clean_errors(list(exc.errors())), ReturnStatus=ReturnStatus.INVALID_REQUEST)  # fmt: skip
        return problem_response(p, request.url.path)

    async def on_http(request: Any, exc: StarletteHTTPException) -> Any:
        slug = _STATUS_SLUGS.get(exc.status_code, "http-error")
        title = slug.replace("-", " ").capitalize()
        detail = exc.detail if isinstance(exc.detail, str) and exc.detail != title else ""
        p = Problem(exc.status_code, slug, title, detail, headers=dict(exc.headers or {}))
        return problem_response(p, request.url.path)

    async def on_crash(request: Any, exc: Exception) -> Any:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem_response(Problem(500, "internal-error", "Internal error", "see the controller's log"),
                                request.url.path)  # fmt: skip

    app.add_exception_handler(Problem, on_problem)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(Exception, on_crash)
