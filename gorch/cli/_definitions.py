"""The definitions: ``gorch graph``, a workflow's statement tree in the terminal (or as JSON),
or its diagram (Mermaid, Graphviz DOT, SVG), marked with where an instance stands.

The tree is the workflow's own definition (:func:`gorch.catalog.describe`), each event labelled
with its timeout, payload type and roles; the diagrams are :mod:`gorch.graph`'s.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from typing import Any

import click
from rich.markup import escape
from rich.tree import Tree

from gorch import graph as gorch_graph
from gorch.catalog import NO_PAYLOAD, EventInfo, WorkflowInfo, describe
from gorch.cli._group import Context, cli, json_option, pass_ctx
from gorch.cli._output import Fail, Usage, emit_json
from gorch.errors import GorchError, did_you_mean, suggest

__all__ = ["graph"]


@cli.command()
@click.argument("workflow")
@click.option(
    "--format", "fmt", type=click.Choice(["tree", *gorch_graph.FORMATS]), default="tree",
    show_default=True, help="tree: the statements in the terminal; mermaid, dot, svg: a diagram.",
)  # fmt: skip
@click.option("--instance", "instance_id", metavar="ID",
              help="Mark where instance ID stands now and what it already ran.")  # fmt: skip
@json_option
@pass_ctx
def graph(c: Context, workflow: str, fmt: str, instance_id: str | None, as_json: bool) -> None:
    """Draw WORKFLOW: a statement tree, or a Mermaid, Graphviz DOT or SVG diagram.

    \b
    gorch graph pizza --format mermaid > pizza.mmd
    gorch graph pizza --format svg --instance order-1 > order-1.svg
    """
    workflows = c.workflows
    if workflow not in workflows:
        hint = did_you_mean(suggest(workflow, workflows), joiner=" or ")
        raise Fail(f"no workflow {workflow!r} (registered: {', '.join(workflows)}).{hint}")
    try:
        info = describe(workflow, workflows[workflow])
    except GorchError as exc:
        raise Fail(str(exc)) from None
    if fmt == "tree":
        if instance_id is not None:
            raise Usage("--instance draws a diagram: add --format mermaid, dot or svg")
        _print_tree(c, info, as_json)
        return
    if as_json:
        raise Usage("--json gives the statement tree; leave out --format, or leave out --json")
    click.echo(_diagram(c, info, fmt, instance_id), nl=False)


def _print_tree(c: Context, info: WorkflowInfo, as_json: bool) -> None:
    """The workflow's statements as a tree, or as JSON."""
    tree = info.definition()
    if as_json:
        emit_json(_node_json(tree, info.events))
        return
    root = Tree(f"[bold]{escape(info.name)}[/] ({info.cls.__name__})")
    for kid in getattr(tree, "kids", ()):
        _add(root, kid, info.events)
    c.out.print(root)


def _diagram(c: Context, info: WorkflowInfo, fmt: str, instance_id: str | None) -> str:
    """The workflow's diagram in ``fmt``, marked with where instance ``instance_id`` stands."""
    workflow = info.name
    if instance_id is None:
        return gorch_graph.render(gorch_graph.build(workflow, info.cls), fmt, None)
    inst = c.instance(instance_id)
    if inst.workflow != workflow:
        raise Fail(
            f"instance {instance_id!r} is a {inst.workflow!r}, not a {workflow!r}: "
            f"run gorch graph {shlex.quote(inst.workflow)} --instance "
            f"{shlex.quote(instance_id)}"
        )
    diagram = gorch_graph.build(workflow, info.cls, inst.data)  # its own timeouts
    marks = gorch_graph.position(diagram, inst, c.engine.history(instance_id))
    return gorch_graph.render(diagram, fmt, marks)


def _label(node: Any, events: Mapping[str, EventInfo]) -> str:
    """A statement's line in the tree: its kind and name, and an event's timeout, payload type
    and roles."""
    kind = type(node).__name__
    name = getattr(node, "name", "")
    label = f"[cyan]{kind}[/] {escape(repr(name))}" if name else f"[cyan]{kind}[/]"
    ev = events.get(name) if kind in ("On", "Timeout") else None
    if ev is not None:
        if ev.timeout and ev.after is not None:
            label += f" after {gorch_graph.duration(ev.after)}"
        if ev.payload is not NO_PAYLOAD:
            label += f" payload {escape(getattr(ev.payload, '__name__', repr(ev.payload)))}"
        if ev.roles:
            label += f" [magenta]roles {escape(', '.join(ev.roles))}[/]"
    return label


def _add(parent: Tree, node: Any, events: Mapping[str, EventInfo]) -> None:
    """Add ``node`` and the statements inside it under ``parent``."""
    branch = parent.add(_label(node, events))
    for kid in getattr(node, "kids", ()):
        _add(branch, kid, events)


def _node_json(node: Any, events: Mapping[str, EventInfo]) -> dict[str, Any]:
    """A statement and the statements inside it as JSON (``gorch graph --json``)."""
    kind = type(node).__name__
    out: dict[str, Any] = {"kind": kind}
    if getattr(node, "name", ""):
        out["name"] = node.name
    ev = events.get(node.name) if kind in ("On", "Timeout") else None
    if ev is not None:
        if ev.roles:
            out["roles"] = list(ev.roles)
        if ev.payload is not NO_PAYLOAD:
            out["payload"] = getattr(ev.payload, "__name__", repr(ev.payload))
        if ev.after is not None:
            out["after_seconds"] = ev.after.total_seconds()
    kids = getattr(node, "kids", ())
    if kids:
        out["body"] = [_node_json(k, events) for k in kids]
    return out
