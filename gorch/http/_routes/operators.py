"""The operators' actions, each needing the admin role: ``POST /instances/{id}/goto`` (move a
thread to a named statement, or say what would change) and ``pause``, ``unpause``, ``cancel``,
``retry`` (the instance after).

Each is recorded in the instance's history with who made it, the caller's token name
(:attr:`Caller.name <gorch.http.Caller.name>`), and why: the ``reason`` of the request's JSON
body (goto's body has it beside ``to``; the other actions take an optional body
``{"reason": ...}``).
"""

from __future__ import annotations

from typing import TypeVar

from fastapi import APIRouter, Request
from pydantic import BaseModel, ValidationError
from starlette.responses import Response

from gorch import _views as views
from gorch.errors import InputError
from gorch.http import _schemas as schemas
from gorch.http._api import PROTECTED, AnyCaller, app_api, json_response, read_body
from gorch.http._params import Id, json_body
from gorch.http._schemas import REF

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
