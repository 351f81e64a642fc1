"""The parameters and documented shapes several routers share: an instance's id, a thread, an
idempotency key, a diagram's format and media types, a JSON request body, an event's path.

Declared once so that every route that takes one validates and documents it alike.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import Header, Path, Query
from starlette.responses import Response

from gorch.limits import MAX_TEXT

__all__ = [
    "DIAGRAM",
    "DIAGRAM_TYPES",
    "Format",
    "Id",
    "IdempotencyKey",
    "Name",
    "Thread",
    "event_path",
    "json_body",
]

Id = Annotated[str, Path(min_length=1, max_length=MAX_TEXT, description="the instance's id")]
Name = Annotated[str, Path(max_length=MAX_TEXT)]
"""A workflow's name in a path."""
Thread = Annotated[str, Query(max_length=MAX_TEXT)]
IdempotencyKey = Annotated[
    str | None, Header(alias="Idempotency-Key", min_length=1, max_length=MAX_TEXT)
]

DIAGRAM_TYPES = {
    "svg": "image/svg+xml",
    "mermaid": "text/vnd.mermaid; charset=utf-8",
    "dot": "text/vnd.graphviz; charset=utf-8",
}
DIAGRAM_DOC: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "the diagram",
        "content": {
            t.split(";")[0]: {"schema": {"type": "string"}} for t in DIAGRAM_TYPES.values()
        },
    }
}
DIAGRAM: dict[str, Any] = {"response_class": Response, "responses": DIAGRAM_DOC}
"""The options of a route that answers a diagram: ``router.get(path, **DIAGRAM, ...)``."""
Format = Annotated[
    Literal["svg", "mermaid", "dot"], Query(description="svg (default), mermaid or dot")
]


def json_body(schema: dict[str, Any], required: bool = True) -> dict[str, Any]:
    """An OpenAPI ``requestBody`` of JSON with ``schema`` (the routes read the body
    themselves, so FastAPI does not document it)."""
    return {"required": required, "content": {"application/json": {"schema": schema}}}


def event_path(workflow: str, event: str) -> str:
    """The path of the typed route that sends ``event`` to a ``workflow`` instance."""
    return f"/workflows/{quote(workflow, safe='')}/instances/{{id}}/events/{quote(event, safe='')}"
