"""``/api/v1/job-orders``: ISA-95 job orders (OPC 10031-4 Job Control) for the MES.

Store / StoreAndStart (``POST``, with ``Idempotency-Key``), the list (cursor pages), one job order, its
JobResponse with actuals, Update (``PATCH``, before it runs) and the methods (``POST .../methods``). A method in
the wrong state is refused with 409 and ``ReturnStatus`` 3 ("invalid job order status").
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Query, Request

from gluecell.cell.api.auth import MES, READ, Principal, require
from gluecell.cell.api.common import MAX_LIMIT, audit, json_response
from gluecell.cell.api.idempotency import fingerprint, run_idempotent
from gluecell.cell.api.jobs import STATES
from gluecell.cell.api.models import ID_PATTERN, JobMethod, JobOrderIn, JobOrderUpdate
from gluecell.cell.api.problems import Problem, ReturnStatus

__all__ = ["router", "METHOD_ROLES"]

router = APIRouter(prefix="/api/v1/job-orders", tags=["job orders"])
JobId = Annotated[str, Path(pattern=ID_PATTERN, max_length=64)]
Reader = Annotated[Principal, Depends(require(READ))]
#: Who may call which method (the MES runs its orders; operators may pause, resume and stop at the cell).
METHOD_ROLES: dict[str, frozenset[str]] = {
    "Start": MES, "RevokeStart": MES, "Cancel": MES, "Clear": MES, "Abort": MES,
    "Pause": frozenset({"mes", "operator", "engineer"}), "Resume": frozenset({"mes", "operator", "engineer"}),
    "Stop": frozenset({"mes", "operator", "engineer"}),
}  # fmt: skip


def _start_after(body: dict[str, Any]) -> float | None:
    from datetime import datetime

    t = body.get("StartTime")
    return datetime.fromisoformat(t.replace("Z", "+00:00")).timestamp() if t else None


@router.post("", status_code=201, summary="Store (or StoreAndStart) a job order",
             responses={400: {"description": "Idempotency-Key missing"}, 409: {"description": "id exists / in use"},
                        422: {"description": "invalid request / key reused"}})  # fmt: skip
def store_job_order(
    request: Request, job: JobOrderIn, who: Annotated[Principal, Depends(require(MES))],
    idempotency_key: Annotated[str | None, Header(max_length=255)] = None,
    start: Annotated[bool, Query(description="StoreAndStart: allowed to start at once")] = False,
) -> Any:  # fmt: skip
    """Store a job order in NotAllowedToStart (or AllowedToStart with ``start=true``)."""
    app = request.app
    body = job.model_dump(mode="json")
    styles = app.state.port.styles()
    if job.WorkMasterID not in styles:
        raise Problem(422, "unknown-work-master", "Unable to accept",
                      f"unknown WorkMasterID {job.WorkMasterID!r}; this cell runs {', '.join(styles)}",
                      ReturnStatus=ReturnStatus.UNABLE_TO_ACCEPT)  # fmt: skip
    fp = fingerprint("POST", f"{request.url.path}?start={start}", body)

    def create() -> tuple[int, dict[str, Any]]:
        view = app.state.jobs.store(body, start, who.name, _start_after(body))
        audit(app.state.db, who, "StoreAndStart" if start else "Store", job.JobOrderID, job.Description or "-", "ok")
        return 201, view

    status, view, replayed = run_idempotent(app.state.db, who, idempotency_key, fp, create)
    headers = {"Location": f"/api/v1/job-orders/{view['JobOrder']['JobOrderID']}"}
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    return json_response(status, view, headers)


@router.get("", summary="List job orders (cursor pages, in the order stored)")
async def list_job_orders(
    request: Request, _: Reader,
    cursor: Annotated[str | None, Query(max_length=100)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
    state: Annotated[int | None, Query(ge=1, le=6, description="only this JobState number")] = None,
) -> dict[str, Any]:  # fmt: skip
    """One page of job orders; ``next`` is the cursor of the following page (null at the end)."""
    items, nxt = request.app.state.jobs.list(cursor, limit, state)
    return {"items": items, "next": nxt}


@router.get("/{job_order_id}", summary="One job order with its state and JobResponse")
async def get_job_order(request: Request, job_order_id: JobId, _: Reader) -> Any:
    """The job order, its state and its JobResponse."""
    return request.app.state.jobs.get(job_order_id)


@router.get("/{job_order_id}/response", summary="The JobResponse (actuals)")
async def get_job_response(request: Request, job_order_id: JobId, _: Reader) -> Any:
    """Actuals: pairs done, passed first time, reworked, scrapped, cycle times, start and end."""
    return request.app.state.jobs.get(job_order_id)["JobResponse"]


@router.patch("/{job_order_id}", summary="Update a job order that has not started")
def update_job_order(request: Request, job_order_id: JobId, update: JobOrderUpdate,
                     who: Annotated[Principal, Depends(require(MES))]) -> Any:  # fmt: skip
    """The Update method (NotAllowedToStart or AllowedToStart only)."""
    fields = update.model_dump(mode="json", exclude_unset=True, exclude={"Reason"})
    try:
        view = request.app.state.jobs.update(job_order_id, fields, who.name, _start_after(fields))
    except Problem as exc:
        audit(request.app.state.db, who, "Update", job_order_id, update.Reason, f"refused: {exc.title}")
        raise
    audit(request.app.state.db, who, "Update", job_order_id, update.Reason, "ok")
    return view


@router.post("/{job_order_id}/methods", summary="Call a job-order method (Start, Pause, Stop, ...)",
             responses={409: {"description": "invalid job order status (ReturnStatus 3)"}})  # fmt: skip
def call_method(request: Request, job_order_id: JobId, call: JobMethod,
                who: Annotated[Principal, Depends(require(READ))]) -> Any:  # fmt: skip
    """Apply ``Method`` to the job order; the running job's cell is told to pause, resume, stop or abort."""
    app = request.app
    roles = METHOD_ROLES[call.Method]
    if who.role not in roles:
        raise Problem(403, "forbidden", "Forbidden", f"role {who.role!r} may not call {call.Method}")
    try:
        view = app.state.jobs.transition(job_order_id, call.Method, who.name)
    except Problem as exc:
        audit(app.state.db, who, call.Method, job_order_id, call.Reason, f"refused: {exc.title}")
        raise
    state = STATES.get(view["JobState"]["StateNumber"], "Removed")
    audit(app.state.db, who, call.Method, job_order_id, call.Reason, f"ok: {state}")
    app.state.bridge.on_method(job_order_id, call.Method, who.name, call.Reason)
    return view
