"""Deleting an instance's personal data: ``DELETE /instances/{id}/data`` (admin role), the
engine's :meth:`~gorch.engine.Engine.delete_data`.

The caller is the actor of the ``data_deleted`` history entry (a token's name, where the
token has one); ``reason`` (a query parameter: a DELETE has no body) is kept beside it.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from gorch import _views as views
from gorch.http import _schemas as schemas
from gorch.http._api import PROTECTED, AnyCaller, app_api, json_response
from gorch.http._params import Id
from gorch.limits import MAX_REASON

__all__ = ["router"]

router = APIRouter(tags=["operators"], dependencies=PROTECTED)

Reason = Annotated[
    str | None,
    Query(max_length=MAX_REASON, description="why (kept in the history; e.g. the request)"),
]


@router.delete(
    "/instances/{id}/data",
    response_model=schemas.Instance,
    operation_id="delete_data",
)
async def delete_data(
    request: Request, caller: AnyCaller, id: Id, reason: Reason = None
) -> Response:
    """Erase the instance's personal data: the fields its workflow declares
    (``personal_data``), in its data, its history and its idempotency answers; the history
    keeps its entries and records the deletion (``data_deleted``). Allowed in every status.
    Cannot be undone. Needs the admin role."""
    api = app_api(request)
    api.admin(caller, "deleting personal data")
    inst = await api.call(api.engine.delete_data, id, actor=caller.name, reason=reason)
    return json_response(views.instance(inst))
