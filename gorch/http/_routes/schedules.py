"""Schedules (docs/schedules.md): ``GET /schedules`` (any token), and, with the admin role,
``PUT /schedules/{name}`` (make or replace one), ``POST /schedules/{name}/pause`` and
``/resume``, ``DELETE /schedules/{name}``: each one call of the engine
(:meth:`Engine.schedule <gorch.engine.Engine.schedule>` and the rest).

A refusal is the engine's error as a problem: an unknown workflow or schedule 404, a bad cron
expression, time zone or data 422.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from pydantic import ValidationError
from starlette.responses import Response

from gorch import serde
from gorch.errors import InputError
from gorch.http import _schemas as schemas
from gorch.http._api import PROTECTED, AnyCaller, Api, app_api, json_response, read_body
from gorch.http._params import json_body
from gorch.http._schemas import REF
from gorch.limits import MAX_TEXT

__all__ = ["router"]

router = APIRouter(tags=["schedules"], dependencies=PROTECTED)

ScheduleName = Annotated[
    str, Path(min_length=1, max_length=MAX_TEXT, description="the schedule's name")
]


@router.get("/schedules", response_model=list[schemas.Schedule], operation_id="schedules")
async def schedules(request: Request, caller: AnyCaller) -> Response:
    """Every schedule, by name."""
    api = app_api(request)
    found = await api.call(api.engine.schedules)
    return json_response([s.to_json() for s in found])


@router.put(
    "/schedules/{name}",
    response_model=schemas.Schedule,
    operation_id="schedule",
    openapi_extra={"requestBody": json_body({"$ref": REF.format(model="ScheduleRequest")})},
)
async def schedule(request: Request, caller: AnyCaller, name: ScheduleName) -> Response:
    """Start the body's ``workflow`` at every tick of its ``cron`` (five fields, in
    ``timezone``), from ``data``; a schedule of that name is replaced. Needs the admin
    role."""
    api = app_api(request)
    api.admin(caller, "scheduling")
    body = await _definition(request)
    data = await api.call(_data, api, body.workflow, body.data)
    made = await api.call(api.engine.schedule, name, body.workflow, body.cron, data=data,
                          timezone=body.timezone, catchup=body.catchup)  # fmt: skip
    return json_response(made.to_json())


async def _definition(request: Request) -> schemas.ScheduleRequest:
    """The request's body as a :class:`~gorch.http._schemas.ScheduleRequest`; InputError
    (422) saying what is wrong."""
    try:
        return schemas.ScheduleRequest.model_validate(await read_body(request, None))
    except ValidationError as exc:
        errors = [f"{'.'.join(map(str, e['loc'])) or '$'}: {e['msg']}" for e in exc.errors()]
        raise InputError(
            f"the schedule request is not valid: {'; '.join(errors)}", details=errors
        ) from None


def _data(api: Api, workflow: str, value: Any) -> Any:
    """The workflow object of the body's ``data`` (None for none: the class's defaults at
    each tick); NotFoundError for an unknown workflow, InputError for data of another shape."""
    cls = api.engine.workflow_class(workflow)
    if value is None:
        return None
    try:
        return serde.structure_start(value, cls)
    except Exception as exc:
        details = serde.error_details(exc, "$.data")
        raise InputError(
            f"the data is not a valid {cls.__name__}: {'; '.join(details)}", details=details
        ) from None


def _action_route(action: str, method: str, doc: str) -> None:
    """``POST /schedules/{name}/{action}``: the engine's ``method`` on the schedule."""

    async def act(request: Request, caller: AnyCaller, name: ScheduleName) -> Response:
        api = app_api(request)
        api.admin(caller, f"{action} a schedule")
        s = await api.call(getattr(api.engine, method), name)
        return json_response(s.to_json())

    act.__doc__ = doc + " Needs the admin role."
    router.add_api_route(
        f"/schedules/{{name}}/{action}",
        act,
        methods=["POST"],
        response_model=schemas.Schedule,
        operation_id=method,
        name=method,
    )


_action_route("pause", "pause_schedule", "Stop the schedule starting instances.")
_action_route(
    "resume",
    "resume_schedule",
    "Let a paused schedule start instances again, from its next tick (the ticks missed while "
    "paused are skipped).",
)


@router.delete(
    "/schedules/{name}",
    status_code=204,
    response_class=Response,
    operation_id="unschedule",
)
async def unschedule(request: Request, caller: AnyCaller, name: ScheduleName) -> Response:
    """Delete the schedule (the instances it started stay). Needs the admin role."""
    api = app_api(request)
    api.admin(caller, "deleting a schedule")
    await api.call(api.engine.unschedule, name)
    return Response(status_code=204)
