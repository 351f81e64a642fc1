"""The registered workflows: ``GET /workflows``, ``GET /workflows/{workflow}`` (events, their
payload and output schemas, roles, the data's schema, the goto targets) and the workflow's
diagram."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from gorch import graph
from gorch.catalog import NO_PAYLOAD, WorkflowInfo
from gorch.http import _schemas as schemas
from gorch.http._api import PROTECTED, Api, app_api, json_response
from gorch.http._params import DIAGRAM, Format, Name, event_path

__all__ = ["description", "router"]

GOTO_KINDS = (
    graph.NodeKind.STEP,
    graph.NodeKind.WAIT,
    graph.NodeKind.WAITFOR,
    graph.NodeKind.CHILD,
)
"""The statements goto can move a thread to."""

router = APIRouter(tags=["workflows"], dependencies=PROTECTED)


@router.get("/workflows", response_model=list[schemas.Workflow], operation_id="list_workflows")
async def list_workflows(request: Request) -> Response:
    """The registered workflows, their events, payload schemas and roles."""
    api = app_api(request)
    return json_response([description(api, i) for i in api.catalog.values()])


@router.get("/workflows/{workflow}", response_model=schemas.Workflow, operation_id="get_workflow")
async def get_workflow(request: Request, workflow: Name) -> Response:
    """One registered workflow: its events, payload schemas and roles."""
    api = app_api(request)
    return json_response(description(api, api.workflow(workflow)))


@router.get("/workflows/{workflow}/diagram", operation_id="workflow_diagram", **DIAGRAM)
async def workflow_diagram(request: Request, workflow: Name, format: Format = "svg") -> Response:
    """The workflow's diagram, drawn from its code: SVG, Mermaid or Graphviz DOT."""
    api = app_api(request)
    return api.diagram(api.workflow(workflow).name, format)


def description(api: Api, info: WorkflowInfo) -> dict[str, Any]:
    """What ``GET /workflows/{workflow}`` says of a workflow (``schemas.Workflow``)."""
    return {
        "name": info.name,
        "doc": info.doc,
        "start_roles": list(info.start_roles),
        "events": [
            {
                "name": ev.name,
                "timeout": ev.timeout,
                "waits": list(ev.waits),
                "roles": list(ev.roles),
                "after_seconds": ev.after.total_seconds() if ev.after else None,
                "payload": None if ev.payload is NO_PAYLOAD else api.types.standalone(ev.payload),
                "output": api.types.standalone(ev.output, "serialization"),
                "path": None if ev.timeout else event_path(info.name, ev.name),
            }
            for ev in info.events.values()
        ],
        "data": api.types.standalone(info.cls),
        "goto_targets": [
            {"name": n.name, "kind": n.kind, "thread": n.thread}
            for n in api.graphs[info.name].nodes.values()
            if n.kind in GOTO_KINDS
        ],
    }
