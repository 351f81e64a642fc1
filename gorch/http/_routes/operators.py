"""The operators' actions, each needing the admin role: ``POST /instances/{id}/goto`` (move a
thread to a named statement, or say what would change) and ``pause``, ``unpause``, ``cancel``,
``retry`` (the instance after).

Each is recorded in the instance's history with who made it, the caller's token name
(:attr:`Caller.name <gorch.http.Caller.name>`), and why: the ``reason`` of the request's JSON
body (goto's body has it beside ``to``; the other actions take an optional body
``{"reason": ...}``).

``POST /instances/bulk/{action}`` applies retry, cancel, pause, unpause or goto to every
instance a filter matches (:meth:`Engine.bulk <gorch.engine.Engine.bulk>`), at most
:data:`~gorch.limits.MAX_BULK` per request.

``PUT /instances/{id}/data`` replaces an instance's data with the body (the workflow's data as
JSON), ``PATCH`` changes part of it (the body is a JSON merge patch, RFC 7396); both answer
the plan with its diff (:class:`~gorch.engine.DataPlan`), take ``?dry_run=true`` to only say
what would change and ``?reason=``, as their body is the data itself.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Literal, TypeVar

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ValidationError
from starlette.responses import Response

from gorch import _views as views
from gorch.errors import InputError
from gorch.http import _schemas as schemas
from gorch.http._api import PROTECTED, AnyCaller, app_api, json_response, read_body
from gorch.http._params import Id, json_body
from gorch.http._schemas import REF
from gorch.limits import MAX_REASON

__all__ = ["ACTIONS", "router"]

ACTIONS = {
    "pause": "Stop the instance: no event is accepted and no timer fires until unpaused.",
    "unpause": "Let a paused instance go on.",
    "cancel": "End the instance for good; its state is kept for inspection.",
    "retry": "Run a failed instance's step again now.",
}
"""The actions that take no body, each the engine's method of that name, with its doc."""

router = APIRouter(tags=["operators"], dependencies=PROTECTED)

_Body = TypeVar("_Body", bound=BaseModel)

BulkAction = Literal["retry", "cancel", "pause", "unpause", "goto"]


# Before the routes of one instance: /instances/bulk/goto is not the goto of instance "bulk".
@router.post(
    "/instances/bulk/{action}",
    response_model=schemas.BulkReport,
    operation_id="bulk",
    openapi_extra={"requestBody": json_body({"$ref": REF.format(model="BulkRequest")})},
)
async def bulk(request: Request, caller: AnyCaller, action: BulkAction) -> Response:
    """Apply ``action`` to every instance that matches the body's filter, each in its own
    commit, at most ``limit`` (up to 1000) per request: the report says how many matched,
    changed and failed (each failure with its error), and ``more`` when others match (send
    it again). ``dry_run`` only counts. Needs the admin role."""
    api = app_api(request)
    api.admin(caller, f"bulk {action}")
    body = await _request(request, schemas.BulkRequest, f"bulk {action}", None)
    older = None if body.older_than is None else timedelta(seconds=body.older_than)
    report = await api.call(
        api.engine.bulk, action, workflow=body.workflow, status=body.status, at=body.at,
        older_than=older, to=body.to, thread=body.thread, dry_run=body.dry_run,
        limit=body.limit, sample=body.sample, actor=caller.name, reason=body.reason,
    )  # fmt: skip
    return json_response(report.to_json())


async def _request(request: Request, model: type[_Body], what: str, empty: object) -> _Body:
    """The request's JSON body as ``model`` (``empty`` for no body); InputError (400) saying
    what is wrong."""
    try:
        return model.model_validate(await read_body(request, empty))
    except ValidationError as exc:
        errors = [f"{'.'.join(map(str, e['loc'])) or '$'}: {e['msg']}" for e in exc.errors()]
        raise InputError(
            f"the {what} request is not valid: {'; '.join(errors)}", details=errors
        ) from None


@router.post(
    "/instances/{id}/goto",
    response_model=schemas.GotoPlan,
    operation_id="goto",
    openapi_extra={"requestBody": json_body({"$ref": REF.format(model="GotoRequest")})},
)
async def goto(request: Request, caller: AnyCaller, id: Id) -> Response:
    """Move a thread to a named statement (repair); ``dry_run`` only says what would change.
    Needs the admin role."""
    api = app_api(request)
    api.admin(caller, "goto")
    body = await _request(request, schemas.GotoRequest, "goto", None)
    plan = await api.call(api.engine.goto, id, body.to, body.thread, dry_run=body.dry_run,
                          actor=caller.name, reason=body.reason)  # fmt: skip
    return json_response(views.goto_plan(id, plan))


def _action_route(action: str, doc: str) -> None:
    """``POST /instances/{id}/{action}``: call the engine's ``action`` on the instance."""

    async def operate(request: Request, caller: AnyCaller, id: Id) -> Response:
        api = app_api(request)
        api.admin(caller, action)
        body = await _request(request, schemas.ActionRequest, action, {})
        fn = getattr(api.engine, action)
        inst = await api.call(fn, id, actor=caller.name, reason=body.reason)
        return json_response(views.instance(inst))

    operate.__doc__ = doc + " Needs the admin role; an optional body gives the reason."
    router.add_api_route(
        f"/instances/{{id}}/{action}",
        operate,
        methods=["POST"],
        response_model=schemas.Instance,
        operation_id=action,
        name=action,
        openapi_extra={
            "requestBody": json_body({"$ref": REF.format(model="ActionRequest")}, required=False)
        },
    )


for _action, _doc in ACTIONS.items():
    _action_route(_action, _doc)


DryRun = Annotated[bool, Query(description="only say what would change")]
Reason = Annotated[
    str | None, Query(max_length=MAX_REASON, description="why (kept in the history)")
]
DATA_DOC = {"requestBody": json_body({"description": "the workflow's data"})}
PATCH_DOC = {
    "requestBody": {
        "required": True,
        "content": {
            media: {"schema": {"type": "object", "description": "a JSON merge patch"}}
            for media in ("application/merge-patch+json", "application/json")
        },
    }
}


@router.put(
    "/instances/{id}/data",
    response_model=schemas.DataPlan,
    operation_id="set_data",
    openapi_extra=DATA_DOC,
)
async def set_data(
    request: Request, caller: AnyCaller, id: Id, dry_run: DryRun = False, reason: Reason = None
) -> Response:
    """Replace the instance's data with the body (its workflow's data as JSON); ``dry_run``
    only says what would change. Needs the admin role."""
    api = app_api(request)
    api.admin(caller, "replacing the data")
    value = await read_body(request)
    plan = await api.call(api.engine.set_data, id, value, replace=True, dry_run=dry_run,
                          actor=caller.name, reason=reason)  # fmt: skip
    return json_response(plan.to_json())


@router.patch(
    "/instances/{id}/data",
    response_model=schemas.DataPlan,
    operation_id="patch_data",
    openapi_extra=PATCH_DOC,
)
async def patch_data(
    request: Request, caller: AnyCaller, id: Id, dry_run: DryRun = False, reason: Reason = None
) -> Response:
    """Change part of the instance's data: the body is a JSON merge patch (RFC 7396: a key
    set to null resets that field); ``dry_run`` only says what would change. Needs the admin
    role."""
    api = app_api(request)
    api.admin(caller, "changing the data")
    patch = await read_body(request)
    if not isinstance(patch, dict):
        raise InputError(
            "a merge patch is a JSON object of the fields to change; to replace the whole "
            "data, PUT it",
            details=["$: not a JSON object"],
        )
    plan = await api.call(api.engine.set_data, id, patch, dry_run=dry_run, actor=caller.name,
                          reason=reason)  # fmt: skip
    return json_response(plan.to_json())
