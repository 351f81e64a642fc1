"""The typed routes, built per registered workflow from its catalog: ``POST /workflows/{name}/
instances`` (start one, from the workflow's data) and one operation per event (``POST
/workflows/{name}/instances/{id}/events/{Event}``) with its payload's and its output's JSON
Schemas, which is what client generators make typed methods of. A timeout has none: it fires
by itself."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from gorch import _views as views
from gorch import serde
from gorch.catalog import NO_PAYLOAD, EventInfo, WorkflowInfo
from gorch.errors import InputError
from gorch.http import _schemas as schemas
from gorch.http._api import PROTECTED, AnyCaller, Api, json_response, read_body
from gorch.http._params import Id, IdempotencyKey, Thread, event_path, json_body
from gorch.limits import MAX_TEXT, is_text

__all__ = ["router"]


def router(api: Api) -> APIRouter:
    """Every registered workflow's start and event operations (tagged with its name)."""
    router = APIRouter(dependencies=PROTECTED)
    for info in api.catalog.values():
        _start_route(router, api, info)
        for ev in info.events.values():
            if not ev.timeout:
                _event_route(router, api, info, ev)
    return router


def _ident(text: str) -> str:
    return re.sub(r"\W+", "_", text).strip("_") or "x"


def _short(value: Any) -> str:
    text = orjson.dumps(value).decode()
    return text if len(text) <= 200 else text[:199] + "…"


def _start_body(info: WorkflowInfo, body: Any) -> tuple[str | None, Any]:
    """The id and the workflow's data a start's body asks for; InputError (422) if it is not
    ``{"id"?: text without "/", "data"?: the workflow's data}``."""
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
        return id, serde.structure_start(body.get("data"), info.cls)
    except Exception as exc:
        details = serde.error_details(exc, "$.data")
        raise InputError(
            f"the data is not a valid {info.cls.__name__}: {'; '.join(details)}",
            details=details,
        ) from None


def _start_route(router: APIRouter, api: Api, info: WorkflowInfo) -> None:
    """``POST /workflows/{name}/instances``: start one (the class's ``start_roles``)."""
    name = info.name
    ident = _ident(name)
    data_schema = api.types.of(info.cls)

    async def start(request: Request, caller: AnyCaller) -> Response:
        api.require(caller, info.start_roles, f"starting a {name!r}")
        id, data = _start_body(info, await read_body(request, {}))
        inst = await api.call(api.engine.start, name, data, id)
        where = {"Location": f"/instances/{quote(inst.id, safe='')}"}
        return json_response(views.instance(inst), 201, where)

    start.__doc__ = f"Start a {name!r} instance. {info.doc}".strip()
    body = {
        "type": "object",
        "properties": {
            "id": {"type": "string", "minLength": 1, "maxLength": MAX_TEXT},
            "data": data_schema,
        },
        "additionalProperties": False,
    }
    router.add_api_route(
        f"/workflows/{quote(name, safe='')}/instances",
        start,
        methods=["POST"],
        status_code=201,
        response_model=schemas.Instance,
        tags=[name],
        operation_id=f"start_{ident}",
        name=f"start_{ident}",
        openapi_extra={"requestBody": json_body(body, required=False)},
    )


def _event_route(router: APIRouter, api: Api, info: WorkflowInfo, ev: EventInfo) -> None:
    """``POST /workflows/{name}/instances/{id}/events/{Event}``: send it (the event's roles)."""
    name, event = info.name, ev.name
    op = f"send_{_ident(name)}_{_ident(event)}"
    result = {
        "type": "object",
        "title": f"{ev.name}Result",
        "required": ["instance", "event", "output"],
        "properties": {
            "instance": {"type": "string"},
            "event": {"type": "string", "const": ev.name},
            "output": api.types.of(ev.output, "serialization"),
        },
    }
    extra: dict[str, Any] = {
        "responses": {"200": {"content": {"application/json": {"schema": result}}}}
    }
    if ev.payload is not NO_PAYLOAD:
        extra["requestBody"] = json_body(api.types.of(ev.payload))

    async def send(
        request: Request,
        caller: AnyCaller,
        id: Id,
        thread: Thread = "",
        idempotency_key: IdempotencyKey = None,
    ) -> Response:
        api.require(caller, ev.roles, f"sending {event!r}")
        return await api.send(request, id, event, name, thread, idempotency_key, caller)

    roles = f" Role: {' or '.join(ev.roles)}." if ev.roles else ""
    send.__doc__ = (f"{ev.doc} " if ev.doc else "") + (
        f"Send {event!r} to a {name!r} instance (waited for in {', '.join(ev.waits)}).{roles}"
    )
    router.add_api_route(
        event_path(name, event),
        send,
        methods=["POST"],
        tags=[name],
        summary=f"{event}",
        operation_id=op,
        name=op,
        openapi_extra=extra,
    )
