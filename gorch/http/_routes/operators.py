"""The operators' actions, each needing the admin role: ``POST /instances/{id}/goto`` (move a
thread to a named statement, or say what would change) and ``pause``, ``unpause``, ``cancel``,
``retry`` (the instance after)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import ValidationError
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
    try:
        body = schemas.GotoRequest.model_validate(await read_body(request))
    except ValidationError as exc:
        errors = [f"{'.'.join(map(str, e['loc'])) or '$'}: {e['msg']}" for e in exc.errors()]
        raise InputError(
            f"the goto request is not valid: {'; '.join(errors)}", details=errors
        ) from None
    plan = await api.call(api.engine.goto, id, body.to, body.thread, dry_run=body.dry_run)
    return json_response(views.goto_plan(id, plan))


def _action_route(action: str, doc: str) -> None:
    """``POST /instances/{id}/{action}``: call the engine's ``action`` on the instance."""

    async def operate(request: Request, caller: AnyCaller, id: Id) -> Response:
        api = app_api(request)
        api.admin(caller, action)
        return json_response(views.instance(await api.call(getattr(api.engine, action), id)))

    operate.__doc__ = doc + " Needs the admin role."
    router.add_api_route(
        f"/instances/{{id}}/{action}",
        operate,
        methods=["POST"],
        response_model=schemas.Instance,
        operation_id=action,
        name=action,
    )


for _action, _doc in ACTIONS.items():
    _action_route(_action, _doc)
