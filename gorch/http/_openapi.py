"""The OpenAPI document: FastAPI's, with problem details for every error, the bearer scheme on
exactly the routes that need a token, and the workflow types' schemas as components."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from gorch.http._api import Api, app_routes, is_protected
from gorch.http._problems import PROBLEM
from gorch.http._schemas import MODELS, REF

__all__ = ["ERRORS", "openapi"]

ERRORS = {
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
"""The error responses every operation documents (401 and 403 only where a token is needed)."""


def openapi(app: FastAPI, api: Api) -> dict[str, Any]:
    """The app's document (made once, then kept)."""
    if app.openapi_schema:
        return app.openapi_schema
    doc = get_openapi(
        title=app.title, version=app.version, description=app.description, routes=app.routes
    )
    _components(doc, api)
    secured = _secured(app, api)
    if api.auth is not None:
        doc["components"]["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
    problem = {"$ref": REF.format(model="Problem")}
    for path, item in doc["paths"].items():
        for method, op in item.items():
            responses = op.setdefault("responses", {})
            responses.pop("422", None)
            guarded = (method, path) in secured
            for status, text in ERRORS.items():
                if status in (401, 403) and not guarded:
                    continue
                responses[str(status)] = {
                    "description": text,
                    "content": {PROBLEM: {"schema": problem}},
                }
            if guarded:
                op["security"] = [{"bearer": []}]
    app.openapi_schema = doc
    return doc


def _components(doc: dict[str, Any], api: Api) -> None:
    """The response models' schemas and the workflow types', in place of FastAPI's
    validation-error schemas (every error is a Problem)."""
    components = doc.setdefault("components", {}).setdefault("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)
    for model in MODELS:
        js = model.model_json_schema(ref_template=REF)
        for n, d in js.pop("$defs", {}).items():
            components.setdefault(n, d)
        components.setdefault(model.__name__, js)
    components.update(api.types.defs)


def _secured(app: FastAPI, api: Api) -> set[tuple[str, str]]:
    """(method, path) of each operation that needs a token: none with auth off, else those of
    the routes that depend on the caller."""
    if api.auth is None:
        return set()
    return {
        (method.lower(), route.path_format)
        for route in app_routes(app)
        if is_protected(route)
        for method in getattr(route, "methods", None) or ()
    }
