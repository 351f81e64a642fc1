"""Graphviz DOT text: a node statement per node (its shape by kind, its marks as colours, its
link as ``href``), a ``cluster`` per ``Go`` thread, and an edge statement per edge."""

from __future__ import annotations

from gorch.graph._highlight import STYLE, label, state_of
from gorch.graph._listing import by_thread
from gorch.graph._model import Edge, Graph, Marks, Node, NodeKind, printable

_SHAPES = {
    NodeKind.START: "circle",
    NodeKind.END: "doublecircle",
    NodeKind.THREAD_END: "oval",
    NodeKind.STEP: "box",
    NodeKind.IF: "diamond",
    NodeKind.SWITCH: "diamond",
    NodeKind.FOR: "hexagon",
    NodeKind.WAIT: "parallelogram",
    NodeKind.ON: "cds",
    NodeKind.TIMEOUT: "cds",
    NodeKind.WAITFOR: "trapezium",
    NodeKind.GO: "component",
    NodeKind.RETURN: "oval",
    NodeKind.BREAK: "oval",
    NodeKind.CONTINUE: "oval",
    NodeKind.CHILD: "box3d",
    NodeKind.ON_INSTANCE: "rarrow",
}


def _dq(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def dot(graph: Graph, marks: Marks | None = None) -> str:
    """Graphviz DOT text for ``graph``; with ``marks``, an instance's position on it."""
    lines = [
        f"digraph {_dq(graph.workflow)} {{",
        f"    graph [rankdir=TB, labelloc=t, label={_dq(graph.workflow)}, fontname=Helvetica];",
        '    node [fontname=Helvetica, fontsize=11, style=filled, fillcolor="#ffffff"];',
        "    edge [fontname=Helvetica, fontsize=10];",
    ]
    lines += by_thread(graph, marks, _nodes, _cluster, "    }")
    lines += _edges(graph.edges, marks)
    lines.append("}")
    return "\n".join(lines) + "\n"


def _cluster(group: str, thread: str) -> list[str]:
    return [
        f"    subgraph cluster_{group} {{",
        f"        label={_dq('thread: ' + thread)}; style=dashed;",
    ]


def _nodes(nodes: list[Node], marks: Marks | None, pad: str) -> list[str]:
    """A node statement per node: its label, its kind's shape, its mark's colours."""
    out = []
    for n in nodes:
        attrs = [f"label={_dq(chr(10).join(label(n, marks)))}", f"shape={_SHAPES[n.kind]}"]
        if n.kind == NodeKind.STEP:
            attrs.append('style="rounded,filled"')
        if n.link:
            attrs.append(
                f"href={_dq(n.link)}, tooltip={_dq('diagram of workflow ' + printable(n.workflow))}"
            )
        state = state_of(n.id, marks)
        if state:
            fill, stroke = STYLE[state]
            attrs.append(f'fillcolor="{fill}", color="{stroke}"')
            if state != "done":
                attrs.append("penwidth=3")
        out.append(f"{pad}{n.id} [{', '.join(attrs)}];")
    return out


def _edges(edges: list[Edge], marks: Marks | None) -> list[str]:
    """An edge statement per edge: dashed for a thread's start and a return, green where
    control went."""
    out = []
    for e in edges:
        attrs = []
        if e.label:
            attrs.append(f"label={_dq(printable(e.label))}")
        if e.kind == "back":
            attrs.append("constraint=false")
        if e.kind in ("go", "jump"):
            attrs.append("style=dashed")
        if marks is not None and marks.edge_done(e):
            attrs.append(f'color="{STYLE["done"][1]}", penwidth=2')
        suffix = f" [{', '.join(attrs)}]" if attrs else ""
        out.append(f"    {e.src} -> {e.dst}{suffix};")
    return out
