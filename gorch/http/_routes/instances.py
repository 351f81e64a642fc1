"""Instances: list them, read one, its history, its diagram (where each thread stands) and its
waits, wait for one to get somewhere (``GET /instances/{id}/wait``, a long poll), and the
generic ``POST /instances/{id}/events/{event}`` (any event, untyped payload)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from starlette.responses import Response

from gorch import _views as views
from gorch import graph
from gorch.engine import Engine, Instance, RunStatus
from gorch.errors import InputError
from gorch.http import _schemas as schemas
from gorch.http._api import PROTECTED, AnyCaller, app_api, json_response
from gorch.http._params import DIAGRAM, Format, Id, IdempotencyKey, Thread, json_body
from gorch.http._problems import PROBLEM, Problem
from gorch.http._routes.changes import MAX_WAIT, WAIT_THREADS, waiting
from gorch.http._schemas import REF
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


STATUS_WORDS = ", ".join(s.value for s in RunStatus)

WAIT_DOC = f"""Wait until the instance gets where `until` says, then answer it (the shape of
`GET /instances/{{id}}`, as read once it got there): a long poll, woken by the commit it waits
for.

`until`:

- empty (the default): it ended, **finished** or **cancelled**;
- a status: one of {STATUS_WORDS};
- several statuses, comma-separated (`failed,paused`): any one of them;
- `at:<statement>` (`at:for payment`): one of its threads waits at that statement (a Wait,
  a WaitFor, a Child).

`timeout`: seconds, {MAX_WAIT:g} at most (more is a 400). When it passes first, the answer is
a 408 problem (`wait-timeout`) whose `instance_status` and `at_statements` say where the
instance stands: ask again to wait on. Waits have threads of their own ({WAIT_THREADS} at
once; one more is a 503 with `Retry-After`), so they never hold up the other routes."""

WAIT_RESPONSES: dict[int | str, dict[str, Any]] = {
    408: {
        "description": "The timeout passed before the instance got there (instance_status and "
        "at_statements say where it stands)",
        "content": {PROBLEM: {"schema": {"$ref": REF.format(model="Problem")}}},
    }
}


def _until(text: str | None) -> RunStatus | set[RunStatus] | str | None:
    """``until`` of ``GET /instances/{id}/wait`` as ``Engine.wait`` takes it (400 if it is
    neither status words nor ``at:`` and a statement's name)."""
    text = (text or "").strip()
    if not text:
        return None
    if text.startswith("at:"):
        name = text.removeprefix("at:").strip()
        if name:
            return name
        detail = "query.until: at: needs a statement's name, as in at:for payment"
    else:
        words = [w.strip() for w in text.split(",")]
        bad = [w for w in words if w not in {s.value for s in RunStatus}]
        if not bad:
            found = {RunStatus(w) for w in words}
            return found.pop() if len(found) == 1 else found
        detail = (
            f"query.until: {', '.join(map(repr, bad))} is no status; give one of "
            f"{STATUS_WORDS} (several comma-separated), or at:<statement>"
        )
    raise Problem(400, "malformed", "Malformed request", detail, errors=[detail])


def _wait(engine: Engine, id: str, until: Any, timeout: float) -> Instance:
    """``Engine.wait``, with the instance's children (as ``Engine.get`` gives them)."""
    inst = engine.wait(id, until=until, timeout=timeout)
    kids = engine.list(parent=id, limit=MAX_PAGE).items
    inst.children = [k.id for k in sorted(kids, key=lambda k: (k.created_at, k.id))]
    return inst


@router.get(
    "/instances/{id}/wait",
    response_model=schemas.Instance,
    operation_id="wait_instance",
    description=WAIT_DOC,
    responses=WAIT_RESPONSES,
)
async def wait_instance(
    request: Request,
    id: Id,
    until: Annotated[
        str | None,
        Query(
            max_length=MAX_TEXT + 3,
            description="empty: an end (finished or cancelled); a status; statuses, "
            "comma-separated; or at:<statement>",
        ),
    ] = None,
    timeout: Annotated[
        float, Query(ge=0, le=MAX_WAIT, description=f"seconds, at most {MAX_WAIT:g}")
    ] = 30.0,
) -> Response:
    api = app_api(request)
    wanted = _until(until)
    return json_response(
        views.instance(await waiting(request, _wait, api.engine, id, wanted, timeout))
    )


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
