"""What every route shares: the engine and its catalog (:class:`Api`), who the caller is (the
``caller`` dependency every protected router declares), role checks, and JSON in and out.

An app holds one :class:`Api` (``app.state.gorch``); the routers are built around it by
:func:`gorch.http.create_app`. Authentication is a FastAPI dependency on the router, not a call
in each route, so a route added to a protected router is protected by construction (its 401
comes before its parameters are read, and before anything about an instance is told). Role
checks stay in the routes: which role is needed depends on the event or the workflow.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import fastapi.routing
import orjson
from fastapi import Depends, FastAPI, Request
from fastapi.params import Depends as Dependency
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from gorch import graph, serde
from gorch.catalog import WorkflowInfo, describe
from gorch.engine import AsyncEngine, Engine, Worker
from gorch.http._auth import ADMIN, Auth, Caller
from gorch.http._params import DIAGRAM_TYPES
from gorch.http._problems import Problem
from gorch.http._schemas import TypeSchemas

__all__ = [
    "PROTECTED",
    "AnyCaller",
    "Api",
    "app_api",
    "app_routes",
    "caller",
    "is_protected",
    "json_response",
    "read_body",
]

OPEN = Caller(frozenset(), everything=True)
"""The caller of every request when auth is off."""


def json_response(obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """``obj`` as a JSON response, encoded by orjson (gorch's types through ``serde``)."""
    return Response(
        orjson.dumps(obj, default=serde.unstructure), status, headers, "application/json"
    )


async def read_body(request: Request, empty: Any = None) -> Any:
    """The request body as parsed JSON (``empty`` for no body); 400 if it is not JSON."""
    raw = await request.body()
    if not raw.strip():
        return empty
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise Problem(400, "malformed", "Malformed JSON", f"the body is not JSON: {exc}") from None


class Api:
    """The routes' shared logic: auth, the engine calls off the event loop, the catalog.

    Args:
        engine: the engine served (an ``AsyncEngine``'s ``engine`` is ``.engine``).
        auth: the tokens, or None (auth off: every caller may do everything).
        worker: the worker the app runs, if any (``GET /health`` asks it how it is).
        title: the API's title (``GET /info``).
    """

    def __init__(
        self,
        engine: Engine | AsyncEngine,
        auth: Auth | None,
        worker: Worker | None = None,
        title: str = "",
    ) -> None:
        self.aengine = engine if isinstance(engine, AsyncEngine) else None
        self.engine: Engine = engine.engine if isinstance(engine, AsyncEngine) else engine
        self.auth = auth
        self.worker = worker
        self.title = title
        self.catalog: dict[str, WorkflowInfo] = {
            name: describe(name, cls) for name, cls in engine.workflows.items()
        }
        self.types = TypeSchemas()
        self.graphs = {name: graph.build(name, info.cls) for name, info in self.catalog.items()}

    def authenticate(self, authorization: str | None) -> Caller:
        """The caller an ``Authorization`` header stands for; 401 if it names no token."""
        if self.auth is None:
            return OPEN
        found = self.auth.caller(authorization)
        if found is None:
            raise Problem(
                401,
                "unauthorized",
                "Unauthorized",
                "send a valid token as 'Authorization: Bearer <token>'",
                headers={"WWW-Authenticate": 'Bearer realm="gorch"'},
            )
        return found

    @property
    def admin_role(self) -> str:
        return self.auth.admin if self.auth else ADMIN

    def require(self, caller: Caller, roles: tuple[str, ...], doing: str) -> None:
        """403 unless ``caller`` holds one of ``roles`` (none: any caller may)."""
        if not caller.holds(roles):
            held = ", ".join(sorted(caller.roles)) or "no role"
            raise Problem(
                403,
                "forbidden",
                "Forbidden",
                f"{doing} needs the role {' or '.join(roles)}; your token holds {held}",
                roles=list(roles),
            )

    def admin(self, caller: Caller, doing: str) -> None:
        """403 unless ``caller`` holds the admin role."""
        self.require(caller, (self.admin_role,), doing)

    def event_roles(self, caller: Caller, info: WorkflowInfo, event: str) -> None:
        """403 unless ``caller`` may send ``event`` (a timeout by hand: the admin only)."""
        ev = info.events.get(event)
        if ev is not None and ev.timeout:
            self.admin(caller, f"firing the timeout {event!r} by hand")
        else:
            self.require(caller, ev.roles if ev is not None else (), f"sending {event!r}")

    def workflow(self, name: str) -> WorkflowInfo:
        if name not in self.catalog:
            self.engine.workflow_class(name)  # not registered: NotFoundError, "did you mean"
        return self.catalog[name]

    async def call(self, fn: Callable[..., Any], *args: Any, **kw: Any) -> Any:
        """``fn(*args, **kw)`` (the engine's work) off the event loop: awaited through the
        ``AsyncEngine`` served, or in the server's thread pool for an ``Engine``."""
        if self.aengine is not None:
            return await self.aengine.run(fn, *args, **kw)
        return await run_in_threadpool(fn, *args, **kw)

    async def send(
        self,
        request: Request,
        id: str,
        event: str,
        workflow: str,
        thread: str,
        key: str | None,
        caller: Caller,
    ) -> Response:
        """Send ``event`` with the request's body as its payload, as ``caller`` (its token's
        name is the history entry's actor); the engine's answer."""
        payload = await read_body(request)
        out = await self.call(
            self.engine.send, id, event, payload, key=key, thread=thread, workflow=workflow,
            actor=caller.name,
        )  # fmt: skip
        return json_response({"instance": id, "event": event, "output": out})

    def diagram(
        self, workflow: str, fmt: str, marks: graph.Marks | None = None, drawn: Any = None
    ) -> Response:
        """The workflow's diagram (``drawn``, or the one built at start) in ``fmt``."""
        text = graph.render(drawn or self.graphs[workflow], fmt, marks)
        return Response(text, media_type=DIAGRAM_TYPES[fmt])


def app_api(request: Request) -> Api:
    """The :class:`Api` of the app serving ``request``. (Read from the app, not declared as a
    dependency: in FastAPI 0.165 each dependency costs a route some 60,000 instructions, ~6 µs,
    per request.)"""
    api: Api = request.app.state.gorch
    return api


async def caller(request: Request) -> Caller:
    """The FastAPI dependency of every protected router: who sent the request (401 if no valid
    token). Declared async so that FastAPI calls it in the event loop, not the thread pool;
    a route that needs the caller declares ``caller: AnyCaller`` and gets the same one (FastAPI
    solves a dependency once per request)."""
    return app_api(request).authenticate(request.headers.get("authorization"))


AnyCaller = Annotated[Caller, Depends(caller)]
"""A route's parameter for the caller (a valid token holding any role)."""

PROTECTED: list[Dependency] = [Depends(caller)]
"""The dependencies of a protected router: ``APIRouter(dependencies=PROTECTED)``."""


def app_routes(app: FastAPI) -> list[Any]:
    """Every route the app serves, those of its included routers among them. Since FastAPI
    0.137 ``app.routes`` holds an included router as one node; ``iter_route_contexts`` (0.137.2)
    walks into it, giving each route as it is served (path, methods, ``dependant`` with its
    routers' dependencies). Before, ``app.routes`` is that list already."""
    walk = getattr(fastapi.routing, "iter_route_contexts", None)
    return list(app.routes if walk is None else walk(app.routes))


def is_protected(route: Any) -> bool:
    """Whether a route depends on :func:`caller` (from its router, or its own parameters): it
    answers 401 to a request without a valid token. The OpenAPI document says so of exactly
    these routes."""
    dependant = getattr(route, "dependant", None)
    return dependant is not None and any(d.call is caller for d in dependant.dependencies)
