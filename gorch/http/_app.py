"""``create_app``: the engine as a resource-oriented JSON API with OpenAPI."""

from __future__ import annotations

import logging
import pathlib
import re
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any, Literal
from urllib.parse import quote

import anyio
import anyio.to_thread
import orjson
from fastapi import FastAPI, Header, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from fastapi_offline import FastAPIOffline
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import RedirectResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gorch import _views as views
from gorch import graph, serde
from gorch.catalog import NO_PAYLOAD, EventInfo, WorkflowInfo, describe
from gorch.engine import Engine, RunStatus, Worker
from gorch.errors import GorchError, InputError, did_you_mean, suggest
from gorch.http import _schemas as schemas
from gorch.http._auth import ADMIN, Auth, Caller
from gorch.http._problems import PROBLEM, Problem, from_gorch, problem_response
from gorch.http._schemas import MODELS, REF, TypeSchemas
from gorch.limits import MAX_BODY, MAX_PAGE, MAX_TEXT, is_text

__all__ = ["create_app"]

log = logging.getLogger("gorch.http")

HEALTH_TIMEOUT = 5.0
_OPEN = Caller(frozenset(), everything=True)
_ERRORS = {
    400: "Malformed request (bad JSON, a bad query or path parameter)",
    401: "Missing or unknown bearer token",
    403: "The token lacks the role this needs",
    404: "No such instance or workflow",
    409: "The instance is not in a state to do this (not waiting for the event, finished, "
    "paused, already exists)",
    413: "The request body is too large",
    422: "The payload has the wrong shape, or the idempotency key was used for another request",
    503: "The instance is busy, or the database cannot be used; retry after the Retry-After "
    "seconds (GET /health: a part of the service is unhealthy, see 'unhealthy')",
}

Id = Annotated[str, Path(min_length=1, max_length=MAX_TEXT, description="the instance's id")]
_PUBLIC = ("/health", "/info")  # the routes that need no token


def _json(obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        orjson.dumps(obj, default=serde.unstructure), status, headers, "application/json"
    )


async def _body(request: Request, empty: Any = None) -> Any:
    """The request body as parsed JSON (``empty`` for no body); 400 if it is not JSON."""
    raw = await request.body()
    if not raw.strip():
        return empty
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise Problem(400, "malformed", "Malformed JSON", f"the body is not JSON: {exc}") from None


def _json_body(schema: dict[str, Any], required: bool = True) -> dict[str, Any]:
    return {"required": required, "content": {"application/json": {"schema": schema}}}


def _short(value: Any) -> str:
    text = orjson.dumps(value).decode()
    return text if len(text) <= 200 else text[:199] + "…"


def _ident(text: str) -> str:
    return re.sub(r"\W+", "_", text).strip("_") or "x"


class _BodyLimit:
    """Refuse request bodies over ``limit`` bytes with 413, by Content-Length up front and by
    counting what arrives for chunked bodies."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length":
                if not value.isdigit() or int(value) > self.limit:
                    await problem_response(self._problem(), scope["path"])(scope, receive, send)
                    return
                break
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            msg = await receive()
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                if seen > self.limit:
                    raise self._problem()
            return msg

        await self.app(scope, counted, send)

    def _problem(self) -> Problem:
        return Problem(
            413,
            "too-large",
            "Request body too large",
            f"the request body must be at most {self.limit} bytes (with a valid Content-Length)",
        )


class _Api:
    """The routes' shared logic: auth, the engine calls in the thread pool, the catalog."""

    def __init__(self, engine: Engine, auth: Auth | None) -> None:
        self.engine = engine
        self.auth = auth
        self.catalog: dict[str, WorkflowInfo] = {
            name: describe(name, cls) for name, cls in engine.workflows.items()
        }
        self.types = TypeSchemas()
        self.graphs = {name: graph.build(name, info.cls) for name, info in self.catalog.items()}

    def caller(self, request: Request) -> Caller:
        if self.auth is None:
            return _OPEN
        caller = self.auth.caller(request.headers.get("authorization"))
        if caller is None:
            raise Problem(
                401,
                "unauthorized",
                "Unauthorized",
                "send a valid token as 'Authorization: Bearer <token>'",
                headers={"WWW-Authenticate": 'Bearer realm="gorch"'},
            )
        return caller

    def require(self, request: Request, roles: tuple[str, ...], doing: str) -> Caller:
        caller = self.caller(request)
        if not caller.holds(roles):
            held = ", ".join(sorted(caller.roles)) or "no role"
            raise Problem(
                403,
                "forbidden",
                "Forbidden",
                f"{doing} needs the role {' or '.join(roles)}; your token holds {held}",
                roles=list(roles),
            )
        return caller

    @property
    def admin_role(self) -> str:
        return self.auth.admin if self.auth else ADMIN

    def admin(self, request: Request, doing: str) -> Caller:
        return self.require(request, (self.admin_role,), doing)

    def workflow(self, name: str) -> WorkflowInfo:
        if name not in self.catalog:
            self.engine.workflow_class(name)  # not registered: NotFoundError, "did you mean"
        return self.catalog[name]

    async def call(self, fn: Callable[..., Any], *args: Any, **kw: Any) -> Any:
        return await run_in_threadpool(fn, *args, **kw)

    async def send(
        self,
        request: Request,
        id: str,
        event: str,
        workflow: str,
        thread: str,
        key: str | None,
    ) -> Response:
        payload = await _body(request)
        out = await self.call(
            self.engine.send, id, event, payload, key=key, thread=thread, workflow=workflow
        )
        return _json({"instance": id, "event": event, "output": out})

    def event_roles(self, request: Request, info: WorkflowInfo, event: str) -> None:
        ev = info.events.get(event)
        if ev is not None and ev.timeout:
            self.admin(request, f"firing the timeout {event!r} by hand")
        else:
            roles = ev.roles if ev is not None else ()
            self.require(request, roles, f"sending {event!r}")

    def describe(self, info: WorkflowInfo) -> dict[str, Any]:
        return {
            "name": info.name,
            "doc": info.doc,
            "start_roles": list(info.start_roles),
            "events": [
                {
                    "name": ev.name,
                    "timeout": ev.timeout,
                    "waits": list(ev.waits),
                    "roles": list(ev.roles),
                    "after_seconds": ev.after.total_seconds() if ev.after else None,
                    "payload": None
                    if ev.payload is NO_PAYLOAD
                    else self.types.standalone(ev.payload),
                    "output": self.types.standalone(ev.output, "serialization"),
                    "path": None if ev.timeout else _event_path(info.name, ev.name),
                }
                for ev in info.events.values()
            ],
            "data": self.types.standalone(info.cls),
            "goto_targets": [
                {"name": n.name, "kind": n.kind, "thread": n.thread}
                for n in self.graphs[info.name].nodes.values()
                if n.kind in (graph.NodeKind.STEP, graph.NodeKind.WAIT, graph.NodeKind.WAITFOR)
            ],
        }

    def diagram(
        self, workflow: str, fmt: str, marks: graph.Marks | None = None, drawn: Any = None
    ) -> Response:
        text = graph.render(drawn or self.graphs[workflow], fmt, marks)
        return Response(text, media_type=_DIAGRAM_TYPES[fmt])


_DIAGRAM_TYPES = {
    "svg": "image/svg+xml",
    "mermaid": "text/vnd.mermaid; charset=utf-8",
    "dot": "text/vnd.graphviz; charset=utf-8",
}
_DIAGRAM_DOC: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "the diagram",
        "content": {
            t.split(";")[0]: {"schema": {"type": "string"}} for t in _DIAGRAM_TYPES.values()
        },
    }
}
Format = Annotated[
    Literal["svg", "mermaid", "dot"], Query(description="svg (default), mermaid or dot")
]


def _event_path(workflow: str, event: str) -> str:
    return f"/workflows/{quote(workflow, safe='')}/instances/{{id}}/events/{quote(event, safe='')}"


def create_app(
    engine: Engine,
    *,
    auth: Auth | None = None,
    max_body: int = MAX_BODY,
    worker: Worker | bool = False,
    title: str = "gorch",
) -> FastAPI:
    """The engine's workflows as a JSON API (an ASGI app; serve it with uvicorn).

    Args:
        engine: the engine to serve; its registered workflows become typed operations.
        auth: bearer tokens and their roles. ``None`` turns auth off: every caller may do
            everything (for local development; a warning is logged).
        max_body: the largest request body accepted, in bytes (larger: 413).
        worker: run a :class:`Worker` (``True``: a default one) in a thread of this process
            while the app runs, so that timers fire and retries happen without a separate
            ``gorch worker``.
        title: the API's title: in the OpenAPI document, ``GET /info`` and the web console.

    Returns:
        A FastAPI app. Interactive docs at ``/docs`` (and ``/redoc``) need no CDN; the
        OpenAPI document is at ``/openapi.json``.
    """
    if auth is None:
        log.warning("no auth configured (no tokens): every caller may do everything")
    api = _Api(engine, auth)
    the_worker = worker if isinstance(worker, Worker) else Worker(engine) if worker else None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        thread = None
        if the_worker is not None:
            thread = threading.Thread(
                target=the_worker.run,
                kwargs={"handle_signals": False},
                name="gorch-worker",
                daemon=True,
            )
            thread.start()
        try:
            yield
        finally:
            if the_worker is not None and thread is not None:
                the_worker.stop()
                await run_in_threadpool(thread.join, 30)

    app = FastAPIOffline(
        title=title,
        version=_version(),
        description="Durable workflows: start instances, send them events, watch and repair "
        "them. Errors are RFC 9457 problem details.",
        lifespan=lifespan,
    )
    app.state.gorch = api
    app.add_middleware(_BodyLimit, limit=max_body)
    _handlers(app)

    # -- workflows -----------------------------------------------------------------------

    @app.get("/health", response_model=schemas.Health, tags=["service"], operation_id="health")
    async def health() -> Response:
        """Whether the service works (no token needed): the database answers and, if this app
        runs a worker, the worker is running, not stalled and not failing. If not: 503, and
        the problem's "unhealthy" says which part (store, worker) and why."""
        unhealthy: dict[str, str] = {}
        try:
            # The store bounds its own waits; this bounds a database that accepts and hangs
            # (the thread is left to finish: the store lets one ping at a time hang).
            with anyio.fail_after(HEALTH_TIMEOUT):
                await anyio.to_thread.run_sync(engine.store.ping, abandon_on_cancel=True)
        except TimeoutError:
            unhealthy["store"] = f"the database did not answer within {HEALTH_TIMEOUT:g} s"
        except Exception as exc:
            unhealthy["store"] = (
                str(exc) if isinstance(exc, GorchError) else f"{type(exc).__name__}: {exc}"
            )
        if the_worker is not None:
            problem = the_worker.health().problem
            if problem:
                unhealthy["worker"] = problem
        if unhealthy:
            raise Problem(
                503, "unhealthy", "Unhealthy",
                "; ".join(f"{part}: {why}" for part, why in unhealthy.items()),
                unhealthy=unhealthy,
            )  # fmt: skip
        return _json({"status": "ok"})

    @app.get("/info", response_model=schemas.Info, tags=["service"], operation_id="info")
    async def api_info() -> Response:
        """What this API is: its title (``create_app(title=...)``) and gorch's version (no token
        needed; the web console shows the title)."""
        return _json({"title": title, "version": app.version})

    @app.get("/me", response_model=schemas.Me, tags=["service"], operation_id="me")
    async def me(request: Request) -> Response:
        """Who the token is: its roles, and whether it may do operator actions."""
        caller = api.caller(request)
        return _json(
            {
                "roles": sorted(caller.roles),
                "admin": caller.holds((api.admin_role,)),
                "auth": api.auth is not None,
            }
        )

    @app.get(
        "/workflows",
        response_model=list[schemas.Workflow],
        tags=["workflows"],
        operation_id="list_workflows",
    )
    async def list_workflows(request: Request) -> Response:
        """The registered workflows, their events, payload schemas and roles."""
        api.caller(request)
        return _json([api.describe(i) for i in api.catalog.values()])

    @app.get(
        "/workflows/{workflow}",
        response_model=schemas.Workflow,
        tags=["workflows"],
        operation_id="get_workflow",
    )
    async def get_workflow(
        request: Request, workflow: Annotated[str, Path(max_length=MAX_TEXT)]
    ) -> Response:
        """One registered workflow: its events, payload schemas and roles."""
        api.caller(request)
        return _json(api.describe(api.workflow(workflow)))

    @app.get(
        "/workflows/{workflow}/diagram",
        response_class=Response,
        responses=_DIAGRAM_DOC,
        tags=["workflows"],
        operation_id="workflow_diagram",
    )
    async def workflow_diagram(
        request: Request,
        workflow: Annotated[str, Path(max_length=MAX_TEXT)],
        format: Format = "svg",
    ) -> Response:
        """The workflow's diagram, drawn from its code: SVG, Mermaid or Graphviz DOT."""
        api.caller(request)
        return api.diagram(api.workflow(workflow).name, format)

    for info in api.catalog.values():
        _typed_routes(app, api, info)

    # -- instances -----------------------------------------------------------------------

    @app.get(
        "/instances",
        response_model=schemas.InstancePage,
        tags=["instances"],
        operation_id="list_instances",
    )
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
        api.caller(request)
        try:
            page = await api.call(
                engine.list,
                workflow=workflow,
                status=status,
                limit=limit,
                cursor=cursor,
                search=q or None,
            )
        except InputError as exc:
            raise Problem(400, "malformed", "Malformed query", str(exc)) from None
        return _json({"items": [views.summary(i) for i in page.items], "next": page.next})

    @app.get(
        "/instances/{id}",
        response_model=schemas.Instance,
        tags=["instances"],
        operation_id="get_instance",
    )
    async def get_instance(request: Request, id: Id) -> Response:
        """One instance: status, data, state, threads and timers."""
        api.caller(request)
        return _json(views.instance(await api.call(engine.get, id)))

    @app.get(
        "/instances/{id}/history",
        response_model=schemas.HistoryPage,
        tags=["instances"],
        operation_id="get_history",
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
        api.caller(request)
        try:
            page = await api.call(
                engine.history, id, limit=limit, cursor=cursor or None, newest_first=newest_first
            )
        except InputError as exc:
            raise Problem(400, "malformed", "Malformed query", str(exc)) from None
        return _json({"items": [views.history(h) for h in page], "next": page.next})

    @app.get(
        "/instances/{id}/diagram",
        response_class=Response,
        responses=_DIAGRAM_DOC,
        tags=["instances"],
        operation_id="instance_diagram",
    )
    async def instance_diagram(request: Request, id: Id, format: Format = "svg") -> Response:
        """The instance's workflow diagram with where each thread is now and what already ran."""
        api.caller(request)

        def read() -> tuple[Any, Any]:
            return engine.get(id), engine.history(id)

        inst, history = await api.call(read)
        # Drawn from the instance's own data: its timeouts may be computed from it.
        drawn = graph.build(inst.workflow, api.catalog[inst.workflow].cls, inst.data)
        return api.diagram(inst.workflow, format, graph.position(drawn, inst, history), drawn)

    @app.get(
        "/instances/{id}/waits",
        response_model=list[schemas.ThreadWait],
        tags=["instances"],
        operation_id="get_waits",
    )
    async def get_waits(request: Request, id: Id) -> Response:
        """Where every thread is, what it waits for, since when, and its timers."""
        api.caller(request)
        return _json([views.wait(w) for w in await api.call(engine.waits, id)])

    @app.post(
        "/instances/{id}/events/{event}",
        response_model=schemas.EventResult,
        tags=["instances"],
        operation_id="send_event",
        openapi_extra={"requestBody": _json_body({"description": "the payload"}, required=False)},
    )
    async def send_event(
        request: Request,
        id: Id,
        event: Annotated[str, Path(min_length=1, max_length=MAX_TEXT)],
        thread: Annotated[str, Query(max_length=MAX_TEXT)] = "",
        idempotency_key: Annotated[
            str | None, Header(alias="Idempotency-Key", min_length=1, max_length=MAX_TEXT)
        ] = None,
    ) -> Response:
        """Send any event to an instance (the typed operations under /workflows say each
        event's payload)."""
        api.caller(request)  # 401 before anything about the instance is told
        workflow = await api.call(engine.workflow_of, id)
        api.event_roles(request, api.workflow(workflow), event)
        return await api.send(request, id, event, workflow, thread, idempotency_key)

    @app.post(
        "/instances/{id}/goto",
        response_model=schemas.GotoPlan,
        tags=["operators"],
        operation_id="goto",
        openapi_extra={"requestBody": _json_body({"$ref": REF.format(model="GotoRequest")})},
    )
    async def goto(request: Request, id: Id) -> Response:
        """Move a thread to a named statement (repair); ``dry_run`` only says what would change.
        Needs the admin role."""
        api.admin(request, "goto")
        try:
            body = schemas.GotoRequest.model_validate(await _body(request))
        except ValidationError as exc:
            errors = [f"{'.'.join(map(str, e['loc'])) or '$'}: {e['msg']}" for e in exc.errors()]
            raise InputError(
                f"the goto request is not valid: {'; '.join(errors)}", details=errors
            ) from None
        plan = await api.call(engine.goto, id, body.to, body.thread, dry_run=body.dry_run)
        return _json(views.goto_plan(id, plan))

    for action, doc in (
        ("pause", "Stop the instance: no event is accepted and no timer fires until unpaused."),
        ("unpause", "Let a paused instance go on."),
        ("cancel", "End the instance for good; its state is kept for inspection."),
        ("retry", "Run a failed instance's step again now."),
    ):
        _operator_route(app, api, action, doc)

    _ui(app)
    app.openapi = lambda: _openapi(app, api)  # type: ignore[method-assign]
    return app


_UI = pathlib.Path(__file__).with_name("ui")
# The console loads nothing from elsewhere; the SVG diagrams carry their own <style>.
_UI_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


class _Static(StaticFiles):
    def file_response(self, *args: Any, **kwargs: Any) -> Response:
        res = super().file_response(*args, **kwargs)
        res.headers.update(_UI_HEADERS)
        return res


def _ui(app: FastAPI) -> None:
    """The web console at /ui: static files (plain ES modules) over the JSON API."""

    async def to_ui(request: Request) -> Response:
        return RedirectResponse("ui/")  # relative: right behind a proxy or a path prefix

    app.add_api_route("/ui", to_ui, methods=["GET"], include_in_schema=False)
    app.mount("/ui/", _Static(directory=_UI, html=True), name="ui")


def _operator_route(app: FastAPI, api: _Api, action: str, doc: str) -> None:
    method = getattr(api.engine, action)

    async def operate(request: Request, id: Id) -> Response:
        api.admin(request, action)
        return _json(views.instance(await api.call(method, id)))

    operate.__doc__ = doc + " Needs the admin role."
    app.add_api_route(
        f"/instances/{{id}}/{action}",
        operate,
        methods=["POST"],
        response_model=schemas.Instance,
        tags=["operators"],
        operation_id=action,
        name=action,
    )


def _typed_routes(app: FastAPI, api: _Api, info: WorkflowInfo) -> None:
    """``POST /workflows/{name}/instances`` and one operation per event, with their schemas."""
    name = info.name
    ident = _ident(name)
    data_schema = api.types.of(info.cls)

    async def start(request: Request) -> Response:
        api.require(request, info.start_roles, f"starting a {name!r}")
        body = await _body(request, {})
        if not isinstance(body, dict) or set(body) - {"id", "data"}:
            raise InputError(
                'the body must be an object with an optional "id" (text) and an optional '
                f'"data" (the {info.cls.__name__} to start from), got {_short(body)}'
            )
        id = body.get("id")
        if id is not None and (not is_text(id) or "/" in id):
            raise InputError(
                f'"id" must be text of 1 to {MAX_TEXT} characters without "/" (it is part of the '
                f"instance's URL), got {_short(id)}"
            )
        try:
            wf: Any = serde.structure_start(body.get("data"), info.cls)
        except Exception as exc:
            details = serde.error_details(exc, "$.data")
            raise InputError(
                f"the data is not a valid {info.cls.__name__}: {'; '.join(details)}",
                details=details,
            ) from None
        inst = await api.call(api.engine.start, name, wf, id)
        where = {"Location": f"/instances/{quote(inst.id, safe='')}"}
        return _json(views.instance(inst), 201, where)

    start.__doc__ = f"Start a {name!r} instance. {info.doc}".strip()
    app.add_api_route(
        f"/workflows/{quote(name, safe='')}/instances",
        start,
        methods=["POST"],
        status_code=201,
        response_model=schemas.Instance,
        tags=[name],
        operation_id=f"start_{ident}",
        name=f"start_{ident}",
        openapi_extra={
            "requestBody": _json_body(
                {
                    "type": "object",
                    "properties": {
                        "id": {"type": "string", "minLength": 1, "maxLength": MAX_TEXT},
                        "data": data_schema,
                    },
                    "additionalProperties": False,
                },
                required=False,
            )
        },
    )
    for ev in info.events.values():
        if not ev.timeout:
            _event_route(app, api, info, ev)


def _event_route(app: FastAPI, api: _Api, info: WorkflowInfo, ev: EventInfo) -> None:
    name, event = info.name, ev.name
    op = f"send_{_ident(name)}_{_ident(event)}"
    extra: dict[str, Any] = {
        "responses": {
            "200": {
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "title": f"{ev.name}Result",
                            "required": ["instance", "event", "output"],
                            "properties": {
                                "instance": {"type": "string"},
                                "event": {"type": "string", "const": ev.name},
                                "output": api.types.of(ev.output, "serialization"),
                            },
                        }
                    }
                }
            }
        }
    }
    if ev.payload is not NO_PAYLOAD:
        extra["requestBody"] = _json_body(api.types.of(ev.payload))

    async def send(
        request: Request,
        id: Id,
        thread: Annotated[str, Query(max_length=MAX_TEXT)] = "",
        idempotency_key: Annotated[
            str | None, Header(alias="Idempotency-Key", min_length=1, max_length=MAX_TEXT)
        ] = None,
    ) -> Response:
        api.require(request, ev.roles, f"sending {event!r}")
        return await api.send(request, id, event, name, thread, idempotency_key)

    roles = f" Role: {' or '.join(ev.roles)}." if ev.roles else ""
    send.__doc__ = (f"{ev.doc} " if ev.doc else "") + (
        f"Send {event!r} to a {name!r} instance (waited for in {', '.join(ev.waits)}).{roles}"
    )
    app.add_api_route(
        _event_path(name, event),
        send,
        methods=["POST"],
        tags=[name],
        summary=f"{event}",
        operation_id=op,
        name=op,
        openapi_extra=extra,
    )


def _handlers(app: FastAPI) -> None:
    async def on_problem(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, Problem)
        return problem_response(exc, request.url.path)

    async def on_gorch(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, GorchError)
        return problem_response(from_gorch(exc), request.url.path)

    async def on_invalid(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        errors = [
            f"{'.'.join(map(str, e.get('loc', ())))}: {e.get('msg', '')}" for e in exc.errors()
        ]
        body_errors = all(e.get("loc", ("",))[0] == "body" for e in exc.errors())
        malformed = any(e.get("type") == "json_invalid" for e in exc.errors())
        if body_errors and not malformed:
            p = Problem(422, "invalid-payload", "Invalid payload", "; ".join(errors), errors=errors)
        else:
            p = Problem(400, "malformed", "Malformed request", "; ".join(errors), errors=errors)
        return problem_response(p, request.url.path)

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        if isinstance(exc.__cause__, Problem):  # raised while FastAPI read the body
            return problem_response(exc.__cause__, request.url.path)
        headers = dict(exc.headers or {})
        if exc.status_code == 404:  # no route (or no console file) has this path
            p = _no_route(app, request.method, request.url.path)
        elif exc.status_code == 405:
            allowed = headers.get("Allow", "")
            p = Problem(405, "method-not-allowed", "Method not allowed",
                        f"{request.url.path} does not take {request.method}; it takes {allowed}",
                        headers=headers)  # fmt: skip
        else:
            p = Problem(exc.status_code, "http", str(exc.detail), str(exc.detail),
                        headers=headers)  # fmt: skip
        return problem_response(p, request.url.path)

    async def on_bug(request: Request, exc: Exception) -> Response:
        log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
        p = Problem(500, "server-error", "Server error", f"an unexpected {type(exc).__name__}; "
                    "the server's log has the details")  # fmt: skip
        return problem_response(p, request.url.path)

    handlers: dict[Any, Callable[[Request, Exception], Awaitable[Response]]] = {
        Exception: on_bug,
        Problem: on_problem,
        GorchError: on_gorch,
        RequestValidationError: on_invalid,
        StarletteHTTPException: on_http,
    }
    for cls, handler in handlers.items():
        app.add_exception_handler(cls, handler)


def _no_route(app: FastAPI, method: str, path: str) -> Problem:
    """The 404 for a path no route has: what is unknown in it, and the closest names (a
    workflow, an event, a route) to use instead."""
    api: _Api = app.state.gorch
    parts = path.strip("/").split("/")
    close: list[str] = []
    if len(parts) >= 2 and parts[0] == "workflows" and parts[1] not in api.catalog:
        name = parts[1]
        close = suggest(name, api.catalog, cutoff=0.5)
        known = ", ".join(map(repr, api.catalog)) or "none"
        detail = f"no workflow is registered as {name!r} (registered: {known})"
    elif len(parts) == 6 and parts[0] == "workflows" and parts[2:5:2] == ["instances", "events"]:
        info, event = api.catalog[parts[1]], parts[5]
        ev = info.events.get(event)
        sendable = [e.name for e in info.events.values() if not e.timeout]
        if ev is not None:  # a timeout: it has no typed route
            detail = (
                f"{event!r} is a timeout of {info.name!r}: it fires by itself; an admin may "
                f"fire it by hand with POST /instances/{{id}}/events/{quote(event, safe='')}"
            )
        else:
            close = suggest(event, sendable, cutoff=0.5)
            detail = (
                f"workflow {info.name!r} has no event {event!r} to send (its events: "
                f"{', '.join(sendable) or 'none'})"
            )
    elif parts[0] == "ui":
        close = ["GET /ui/"]
        detail = f"the web console has no file {'/'.join(parts[1:])!r}"
    else:
        routes = _routes(app)
        parts_n = len(parts)
        # each route as it would read with this request's values in its {parameters}
        filled: dict[str, list[str]] = {}
        for verb, template in routes:
            seg = template.strip("/").split("/")
            if len(seg) == parts_n:
                seg = [p if s.startswith("{") else s for s, p in zip(seg, parts, strict=True)]
            filled.setdefault("/" + "/".join(seg), []).append(f"{verb} {template}")
        found = suggest(path, filled)
        close = [r for f in found for r in filled[f] if r.startswith(f"{method} ")] or [
            r for f in found for r in filled[f]
        ]
        detail = f"no route has the path {path!r}; the routes are listed at /docs"
    if close:
        detail += "." + did_you_mean(close, joiner=" or ")
    if close:
        return Problem(404, "not-found", "Not found", detail, did_you_mean=close)
    return Problem(404, "not-found", "Not found", detail)


def _routes(app: FastAPI) -> list[tuple[str, str]]:
    """(method, path template) of every documented route, and the console's."""
    out = [("GET", "/ui/")]
    for route in app.routes:  # the typed routes of each workflow are among them, by name
        if isinstance(route, APIRoute) and route.include_in_schema:
            out += [(m, route.path) for m in sorted(set(route.methods or ()) - {"HEAD"})]
    return out


def _openapi(app: FastAPI, api: _Api) -> dict[str, Any]:
    """FastAPI's document, with problem details for every error, the bearer scheme, and the
    workflow types' schemas."""
    if app.openapi_schema:
        return app.openapi_schema
    doc = get_openapi(
        title=app.title, version=app.version, description=app.description, routes=app.routes
    )
    components = doc.setdefault("components", {}).setdefault("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)
    for model in MODELS:
        js = model.model_json_schema(ref_template=REF)
        for n, d in js.pop("$defs", {}).items():
            components.setdefault(n, d)
        components.setdefault(model.__name__, js)
    components.update(api.types.defs)
    problem = {"$ref": REF.format(model="Problem")}
    if api.auth is not None:
        doc["components"]["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
    for path, item in doc["paths"].items():
        for op in item.values():
            responses = op.setdefault("responses", {})
            responses.pop("422", None)
            for status, text in _ERRORS.items():
                if status in (401, 403) and (api.auth is None or path in _PUBLIC):
                    continue
                responses[str(status)] = {
                    "description": text,
                    "content": {PROBLEM: {"schema": problem}},
                }
            if api.auth is not None and path not in _PUBLIC:
                op["security"] = [{"bearer": []}]
    app.openapi_schema = doc
    return doc


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("gorch")
    except PackageNotFoundError:  # pragma: no cover - running from a plain checkout
        return "0"
