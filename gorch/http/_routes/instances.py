"""Instances: list them, read one, its history, its diagram (where each thread stands) and its
waits, and the generic ``POST /instances/{id}/events/{event}`` (any event, untyped payload)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from starlette.responses import Response

from gorch import _views as views
from gorch import graph
from gorch.engine import RunStatus
from gorch.errors import InputError
from gorch.http import _schemas as schemas
from gorch.http._api import PROTECTED, AnyCaller, app_api, json_response
from gorch.http._params import DIAGRAM, Format, Id, IdempotencyKey, Thread, json_body
from gorch.http._problems import Problem
from gorch.limits import MAX_PAGE, MAX_TEXT

__all__ = ["router"]


def _malformed_query(exc: InputError) -> Problem:
    """A bad cursor or filter is the query's fault: 400, not the 422 of a bad payload."""
    return Problem(400, "malformed", "Malformed query", str(exc))


router = APIRouter(tags=["instances"], dependencies=PROTECTED)


@router.get("/instances", response_model=schemas.InstancePage, operation_id="list_instances")
async def list_instances(
    request: Request,
    workflow: Annotated[str | None, Query(max_length=MAX_TEXT)] = None,
    status: Annotated[list[RunStatus] | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    cursor: Annotated[str | None, Query(max_length=400)] = None,
    q: Annotated[
        str | None, Query(max_length=MAX_TEXT, description="only ids containing this text")
    ] = None,
) -> Response:
    """Instances, newest first, filtered by workflow, status and text in the id; one page
    at a time."""
    api = app_api(request)
    try:
        page = await api.call(
            api.engine.list,
            workflow=workflow,
            status=status,
            limit=limit,
            cursor=cursor,
            search=q or None,
        )
    except InputError as exc:
        raise _malformed_query(exc) from None
    return json_response({"items": [views.summary(i) for i in page.items], "next": page.next})


@router.get("/instances/{id}", response_model=schemas.Instance, operation_id="get_instance")
async def get_instance(request: Request, id: Id) -> Response:
    """One instance: status, data, state, threads and timers."""
    api = app_api(request)
    return json_response(views.instance(await api.call(api.engine.get, id)))


@router.get(
    "/instances/{id}/history", response_model=schemas.HistoryPage, operation_id="get_history"
)
async def get_history(
    request: Request,
    id: Id,
    limit: Annotated[
        int | None, Query(ge=1, le=MAX_PAGE, description="at most this many; none: all")
    ] = None,
    cursor: Annotated[str | None, Query(max_length=100)] = None,
    newest_first: Annotated[bool, Query(description="the newest entry first")] = False,
) -> Response:
    """The instance's history, oldest first (or newest first): events, steps, timers,
    failures, operator actions; with ``limit``, one page at a time."""
    api = app_api(request)
    try:
        page = await api.call(
            api.engine.history, id, limit=limit, cursor=cursor or None, newest_first=newest_first
        )
    except InputError as exc:
        raise _malformed_query(exc) from None
    return json_response({"items": [views.history(h) for h in page], "next": page.next})


@router.get("/instances/{id}/diagram", operation_id="instance_diagram", **DIAGRAM)
async def instance_diagram(request: Request, id: Id, format: Format = "svg") -> Response:
    """The instance's workflow diagram with where each thread is now and what already ran."""
    api = app_api(request)

    def read() -> tuple[Any, Any]:
        return api.engine.get(id), api.engine.history(id)

    inst, history = await api.call(read)
    # Drawn from the instance's own data: its timeouts may be computed from it.
    drawn = graph.build(inst.workflow, api.catalog[inst.workflow].cls, inst.data)
    return api.diagram(inst.workflow, format, graph.position(drawn, inst, history), drawn)


@router.get(
    "/instances/{id}/waits", response_model=list[schemas.ThreadWait], operation_id="get_waits"
)
async def get_waits(request: Request, id: Id) -> Response:
    """Where every thread is, what it waits for, since when, and its timers."""
    api = app_api(request)
    return json_response([views.wait(w) for w in await api.call(api.engine.waits, id)])


@router.get("/instances/{id}/why", response_model=schemas.Why, operation_id="why")
async def get_why(request: Request, id: Id) -> Response:
    """Why the instance is where it is, in plain words and as facts: each thread's wait and
    since when, the events it accepts and who may send them, its timers, the last error and
    the next retry, its lease, and what an operator can do next."""
    api = app_api(request)
    return json_response(views.why(await api.call(api.engine.why, id)))


@router.post(
    "/instances/{id}/events/{event}",
    response_model=schemas.EventResult,
    operation_id="send_event",
    openapi_extra={"requestBody": json_body({"description": "the payload"}, required=False)},
)
async def send_event(
    request: Request,
    caller: AnyCaller,
    id: Id,
    event: Annotated[str, Path(min_length=1, max_length=MAX_TEXT)],
    thread: Thread = "",
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Send any event to an instance (the typed operations under /workflows say each
    event's payload)."""
    api = app_api(request)
    workflow = await api.call(api.engine.workflow_of, id)
    api.event_roles(caller, api.workflow(workflow), event)
    return await api.send(request, id, event, workflow, thread, idempotency_key, caller)
