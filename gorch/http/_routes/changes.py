"""The change feed over HTTP: ``GET /changes`` (a page of it, or a long poll with ``wait``) and
``GET /changes/stream`` (the same entries as server-sent events), and :func:`waiting`, how
every route that waits for a commit holds a thread (``GET /instances/{id}/wait`` too).

A wait blocks a thread until a commit wakes it (``Engine.wait``, ``Engine.changes`` with
``wait``: the store's change signal, no polling), for up to :data:`MAX_WAIT` seconds. The
other routes' threads come from a shared, bounded pool (anyio's default limiter, 40 threads,
for an ``Engine``; the ``AsyncEngine``'s own pool, ``min(32, cpus + 4)``), so 40 long polls
would leave every other request queued behind them. Waits therefore take their threads from
a limiter of their own, :data:`WAIT_THREADS` per app: they never take a thread from the other
routes, and when every wait thread is taken a new wait is refused with 503 and
``Retry-After`` rather than queued past its own timeout.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any

import anyio
import anyio.to_thread
import orjson
from fastapi import APIRouter, Header, Query, Request
from starlette.responses import Response, StreamingResponse

from gorch import _views as views
from gorch.engine import Change
from gorch.errors import GorchError
from gorch.http import _schemas as schemas
from gorch.http._api import PROTECTED, Api, app_api, json_response
from gorch.http._problems import Problem, from_gorch
from gorch.limits import MAX_PAGE

__all__ = ["KEEP_ALIVE", "MAX_WAIT", "WAIT_THREADS", "router", "waiting"]

log = logging.getLogger("gorch.http")

MAX_WAIT = 60.0
"""The longest a request may wait, in seconds (a long poll's ``timeout``, ``wait``): keep it
below the read timeout of a proxy in front (nginx: 60 s by default)."""
WAIT_THREADS = 100
"""How many waits (long polls and open streams) an app serves at once, each on a thread of
their own limiter; one more is refused with 503."""
KEEP_ALIVE = 15.0
"""Seconds between the stream's ``: keep-alive`` comments while nothing changes (each is one
``Engine.changes`` wait)."""
RETRY_MS = 2000
"""The stream's ``retry:``: how long an EventSource waits before it reconnects."""
MAX_SEQ = 2**63 - 1
"""The largest ``seq`` a database keeps (a signed 64-bit integer)."""

After = Annotated[
    int | None,
    Query(ge=0, le=MAX_SEQ, description="the seq of the last change read (next of a page)"),
]

router = APIRouter(tags=["changes"], dependencies=PROTECTED)


def _limiter(request: Request) -> anyio.CapacityLimiter:
    """The app's limiter of wait threads (made on first use, in the app's event loop)."""
    state = request.app.state
    limiter: anyio.CapacityLimiter | None = getattr(state, "gorch_waits", None)
    if limiter is None:
        limiter = state.gorch_waits = anyio.CapacityLimiter(WAIT_THREADS)
    return limiter


def _room(limiter: anyio.CapacityLimiter) -> None:
    """503 if every wait thread is taken."""
    if limiter.available_tokens < 1:
        raise Problem(
            503,
            "busy",
            "Too many waits",
            f"the server already serves {limiter.total_tokens:g} waits and streams at once; "
            "try again later",
            headers={"Retry-After": "1"},
        )


async def waiting(request: Request, fn: Callable[..., Any], *args: Any, **kw: Any) -> Any:
    """``fn(*args, **kw)``, an engine call that may block until a commit (``wait``,
    ``changes`` with a ``wait``), in a thread of the app's wait limiter (503 if none is free).

    Abandoned if the request is cancelled (its client went away): the thread then ends by
    itself within the call's own timeout, at most :data:`MAX_WAIT` seconds. ``Engine.wait``
    and ``Engine.changes`` run no user code, so unlike :meth:`Api.call` this needs no
    ``AsyncEngine`` loop to hand to it.
    """
    limiter = _limiter(request)
    _room(limiter)
    return await _run(limiter, functools.partial(fn, *args, **kw))


async def _run(limiter: anyio.CapacityLimiter, call: Callable[[], Any]) -> Any:
    return await anyio.to_thread.run_sync(call, limiter=limiter, abandon_on_cancel=True)


def _page(page: Any) -> dict[str, Any]:
    return {"items": [views.change(c) for c in page.items], "next": page.next}


@router.get("/changes", response_model=schemas.ChangePage, operation_id="list_changes")
async def list_changes(
    request: Request,
    after: After = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
    wait: Annotated[
        float,
        Query(
            ge=0,
            le=MAX_WAIT,
            description=f"if nothing came after `after` yet, wait up to this many seconds "
            f"(at most {MAX_WAIT:g}) for the first change to come: a long poll; 0: answer at once",
        ),
    ] = 0.0,
) -> Response:
    """The change feed, oldest first: one entry per commit that changed an instance's status
    or the statements it waits at, numbered by ``seq`` without gaps. Pass ``next`` as
    ``after`` to read on; without ``after``, from the start."""
    api = app_api(request)
    if wait > 0:
        page = await waiting(request, api.engine.changes, after=after, limit=limit, wait=wait)
    else:
        page = await api.call(api.engine.changes, after=after, limit=limit)
    return json_response(_page(page))


STREAM_DOC: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "server-sent events: one `change` event per entry of the feed (`id:` "
        "its seq, `data:` the entry as JSON, the shape of a Change), and a `: keep-alive` "
        f"comment every {KEEP_ALIVE:g} s while nothing changes",
        "content": {"text/event-stream": {"schema": {"type": "string"}}},
    }
}


@router.get(
    "/changes/stream",
    operation_id="stream_changes",
    response_class=Response,
    responses=STREAM_DOC,
)
async def stream_changes(
    request: Request,
    after: After = None,
    last_event_id: Annotated[
        str | None,
        Header(
            alias="Last-Event-ID",
            max_length=20,
            description="the id of the last event received: go on after it (an EventSource "
            "sends it when it reconnects; it wins over `after`)",
        ),
    ] = None,
) -> Response:
    """The change feed as server-sent events (``text/event-stream``), from after ``after``
    (or the ``Last-Event-ID`` header) until the client goes away; with neither, from now on.
    Each event is ``id: <seq>``, ``event: change`` and ``data:`` the entry's JSON (as an item
    of ``GET /changes``)."""
    api = app_api(request)
    cursor = _resume(last_event_id, after)
    if cursor is None:
        cursor = await api.call(api.engine.store.last_change)
    _room(_limiter(request))
    return StreamingResponse(
        _events(request, api, cursor),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def _resume(last_event_id: str | None, after: int | None) -> int | None:
    """Where a stream starts: after ``Last-Event-ID`` (400 if it is no seq), else ``after``."""
    if last_event_id is None or not last_event_id.strip():
        return after
    text = last_event_id.strip()
    if not text.isdecimal() or int(text) > MAX_SEQ:
        detail = f"header.Last-Event-ID: the id of an event (a seq, 0 or more), not {text!r}"
        raise Problem(400, "malformed", "Malformed request", detail, errors=[detail])
    return int(text)


async def _events(request: Request, api: Api, cursor: int) -> AsyncIterator[bytes]:
    """The stream's text: ``retry:``, then each change after ``cursor`` as it is committed,
    a keep-alive comment per idle :data:`KEEP_ALIVE`; it ends when the client goes away (the
    server cancels it, or the next look notices), or on an error, told as a ``problem``
    event (an EventSource then reconnects, after what it received)."""
    limiter = _limiter(request)
    yield f"retry: {RETRY_MS}\n: changes after {cursor}\n\n".encode()
    while not await request.is_disconnected():
        read = functools.partial(
            api.engine.changes, after=cursor, limit=MAX_PAGE, wait=KEEP_ALIVE
        )  # a stream that started waits its turn for a thread, were they all taken
        try:
            page = await _run(limiter, read)
        except GorchError as exc:
            problem = from_gorch(exc)
            log.warning("the change stream after %s stops: %s", cursor, problem.detail)
            data = orjson.dumps({"status": problem.status, "detail": problem.detail})
            yield b"event: problem\ndata: " + data + b"\n\n"
            return
        if not page.items:
            yield b": keep-alive\n\n"
            continue
        yield b"".join(_event(c) for c in page.items)
        cursor = page.next


def _event(c: Change) -> bytes:
    return b"id: %d\nevent: change\ndata: %s\n\n" % (c.seq, orjson.dumps(views.change(c)))
