"""The service's own routes: ``GET /health`` and ``GET /info`` need no token (``public``);
``GET /me`` says who the token is (``router``, protected)."""

from __future__ import annotations

import anyio
import anyio.to_thread
from fastapi import APIRouter, Request
from starlette.responses import Response

from gorch.errors import GorchError
from gorch.http import _schemas as schemas
from gorch.http._api import PROTECTED, AnyCaller, Api, app_api, json_response
from gorch.http._problems import Problem

__all__ = ["HEALTH_TIMEOUT", "public", "router"]

HEALTH_TIMEOUT = 5.0
"""Seconds ``GET /health`` waits for the database to answer."""

public = APIRouter(tags=["service"])
router = APIRouter(tags=["service"], dependencies=PROTECTED)


@public.get("/health", response_model=schemas.Health, operation_id="health")
async def health(request: Request) -> Response:
    """Whether the service works (no token needed): the database answers and, if this app
    runs a worker, the worker is running, not stalled and not failing. If not: 503, and
    the problem's "unhealthy" says which part (store, worker) and why."""
    api = app_api(request)
    unhealthy: dict[str, str] = {}
    store = await _store_problem(api)
    if store:
        unhealthy["store"] = store
    if api.worker is not None:
        problem = api.worker.health().problem
        if problem:
            unhealthy["worker"] = problem
    if unhealthy:
        raise Problem(
            503, "unhealthy", "Unhealthy",
            "; ".join(f"{part}: {why}" for part, why in unhealthy.items()),
            unhealthy=unhealthy,
        )  # fmt: skip
    return json_response({"status": "ok"})


async def _store_problem(api: Api) -> str:
    """Why the database cannot be used now, or "" if it answers."""
    try:
        # The store bounds its own waits; this bounds a database that accepts and hangs
        # (the thread is left to finish: the store lets one ping at a time hang).
        with anyio.fail_after(HEALTH_TIMEOUT):
            await anyio.to_thread.run_sync(api.engine.store.ping, abandon_on_cancel=True)
    except TimeoutError:
        return f"the database did not answer within {HEALTH_TIMEOUT:g} s"
    except Exception as exc:
        return str(exc) if isinstance(exc, GorchError) else f"{type(exc).__name__}: {exc}"
    return ""


@public.get("/info", response_model=schemas.Info, operation_id="info")
async def api_info(request: Request) -> Response:
    """What this API is: its title (``create_app(title=...)``) and gorch's version (no token
    needed; the web console shows the title)."""
    return json_response({"title": app_api(request).title, "version": request.app.version})


@router.get("/me", response_model=schemas.Me, operation_id="me")
async def me(request: Request, caller: AnyCaller) -> Response:
    """Who the token is: its roles, its name (the actor of the operator actions made with it)
    and whether it may do operator actions."""
    api = app_api(request)
    return json_response(
        {
            "roles": sorted(caller.roles),
            "name": caller.name,
            "admin": caller.holds((api.admin_role,)),
            "auth": api.auth is not None,
        }
    )
