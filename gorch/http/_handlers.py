"""Every error as an RFC 9457 problem: the app's exception handlers, and the 404 of a path no
route has, which says what in it is unknown and the closest names (a workflow, an event, a
route) to use instead."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from gorch.catalog import WorkflowInfo
from gorch.errors import GorchError, did_you_mean, suggest
from gorch.http._api import Api, app_routes
from gorch.http._problems import Problem, from_gorch, problem_response

__all__ = ["HANDLERS", "add_handlers", "not_found"]

log = logging.getLogger("gorch.http")


async def on_problem(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Problem)
    return problem_response(exc, request.url.path)


async def on_gorch(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, GorchError)
    return problem_response(from_gorch(exc), request.url.path)


async def on_invalid(request: Request, exc: Exception) -> Response:
    """A parameter or body FastAPI refused: 422 for a payload's shape, else 400."""
    assert isinstance(exc, RequestValidationError)
    errors = [f"{'.'.join(map(str, e.get('loc', ())))}: {e.get('msg', '')}" for e in exc.errors()]
    body_errors = all(e.get("loc", ("",))[0] == "body" for e in exc.errors())
    malformed = any(e.get("type") == "json_invalid" for e in exc.errors())
    if body_errors and not malformed:
        p = Problem(422, "invalid-payload", "Invalid payload", "; ".join(errors), errors=errors)
    else:
        p = Problem(400, "malformed", "Malformed request", "; ".join(errors), errors=errors)
    return problem_response(p, request.url.path)


async def on_http(request: Request, exc: Exception) -> Response:
    """Starlette's own errors: no route (404), not this method (405), and the rest."""
    assert isinstance(exc, StarletteHTTPException)
    if isinstance(exc.__cause__, Problem):  # raised while FastAPI read the body
        return problem_response(exc.__cause__, request.url.path)
    headers = dict(exc.headers or {})
    if exc.status_code == 404:  # no route (or no console file) has this path
        p = not_found(request.app, request.method, request.url.path)
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


HANDLERS: dict[Any, Callable[[Request, Exception], Awaitable[Response]]] = {
    Exception: on_bug,
    Problem: on_problem,
    GorchError: on_gorch,
    RequestValidationError: on_invalid,
    StarletteHTTPException: on_http,
}
"""The handler of each exception class (the most specific class's handler answers)."""


def add_handlers(app: FastAPI) -> None:
    for cls, handler in HANDLERS.items():
        app.add_exception_handler(cls, handler)


def not_found(app: FastAPI, method: str, path: str) -> Problem:
    """The 404 for a path no route has: what is unknown in it, and the closest names (a
    workflow, an event, a route) to use instead."""
    api: Api = app.state.gorch
    parts = path.strip("/").split("/")
    if len(parts) >= 2 and parts[0] == "workflows" and parts[1] not in api.catalog:
        detail, close = _unknown_workflow(api, parts[1])
    elif len(parts) == 6 and parts[0] == "workflows" and parts[2:5:2] == ["instances", "events"]:
        detail, close = _unknown_event(api.catalog[parts[1]], parts[5])
    elif parts[0] == "ui":
        detail, close = f"the web console has no file {'/'.join(parts[1:])!r}", ["GET /ui/"]
    else:
        detail, close = _unknown_route(app, method, path)
    if close:
        detail += "." + did_you_mean(close, joiner=" or ")
        return Problem(404, "not-found", "Not found", detail, did_you_mean=close)
    return Problem(404, "not-found", "Not found", detail)


def _unknown_workflow(api: Api, name: str) -> tuple[str, list[str]]:
    known = ", ".join(map(repr, api.catalog)) or "none"
    detail = f"no workflow is registered as {name!r} (registered: {known})"
    return detail, suggest(name, api.catalog, cutoff=0.5)


def _unknown_event(info: WorkflowInfo, event: str) -> tuple[str, list[str]]:
    """A typed event route that does not exist: a timeout's (it fires by itself) or a name
    the workflow does not have."""
    if event in info.events:  # a timeout: it has no typed route
        detail = (
            f"{event!r} is a timeout of {info.name!r}: it fires by itself; an admin may "
            f"fire it by hand with POST /instances/{{id}}/events/{quote(event, safe='')}"
        )
        return detail, []
    sendable = [e.name for e in info.events.values() if not e.timeout]
    detail = (
        f"workflow {info.name!r} has no event {event!r} to send (its events: "
        f"{', '.join(sendable) or 'none'})"
    )
    return detail, suggest(event, sendable, cutoff=0.5)


def _unknown_route(app: FastAPI, method: str, path: str) -> tuple[str, list[str]]:
    """The routes whose paths, with this request's values in their {parameters}, are closest
    to ``path`` (those that take ``method`` first)."""
    parts = path.strip("/").split("/")
    filled: dict[str, list[str]] = {}
    for verb, template in _routes(app):
        segments = template.strip("/").split("/")
        if len(segments) == len(parts):
            segments = [p if s.startswith("{") else s for s, p in zip(segments, parts, strict=True)]
        filled.setdefault("/" + "/".join(segments), []).append(f"{verb} {template}")
    found = suggest(path, filled)
    close = [r for f in found for r in filled[f] if r.startswith(f"{method} ")] or [
        r for f in found for r in filled[f]
    ]
    return f"no route has the path {path!r}; the routes are listed at /docs", close


def _routes(app: FastAPI) -> list[tuple[str, str]]:
    """(method, path template) of every documented route, and the console's."""
    out = [("GET", "/ui/")]
    for route in app_routes(app):  # the typed routes of each workflow are among them, by name
        original = getattr(route, "original_route", route)  # a RouteContext wraps it
        if isinstance(original, APIRoute) and route.include_in_schema:
            out += [(m, route.path) for m in sorted(set(route.methods or ()) - {"HEAD"})]
    return out
