"""Mermaid flowchart text: one line per node (its shape by kind), per edge, a ``click`` line
per linked node (a ``Child``'s, to its workflow's diagram), and the marks as
``classDef``/``class`` lines."""

from __future__ import annotations

from gorch.graph._highlight import STYLE, label, state_of
from gorch.graph._listing import by_thread
from gorch.graph._model import Edge, Graph, Marks, Node, NodeKind, printable

_SHAPES = {
    NodeKind.START: ('(("', '"))'),
    NodeKind.END: ('((("', '")))'),
    NodeKind.THREAD_END: ('(["', '"])'),
    NodeKind.STEP: ('["', '"]'),
    NodeKind.IF: ('{"', '"}'),
    NodeKind.SWITCH: ('{"', '"}'),
    NodeKind.FOR: ('{{"', '"}}'),
    NodeKind.WAIT: ('[/"', '"/]'),
    NodeKind.ON: ('>"', '"]'),
    NodeKind.TIMEOUT: ('>"', '"]'),
    NodeKind.WAITFOR: ('[/"', '"\\]'),
    NodeKind.GO: ('[["', '"]]'),
    NodeKind.RETURN: ('(["', '"])'),
    NodeKind.BREAK: ('(["', '"])'),
    NodeKind.CONTINUE: ('(["', '"])'),
    NodeKind.CHILD: ('("', '")'),
    NodeKind.ON_INSTANCE: ('[\\"', '"\\]'),
}

_ARROWS = {"flow": "-->", "back": "-.->", "go": "-.->", "jump": "-.->"}


def _mm(text: str) -> str:
    out = text.replace("#", "#35;").replace('"', "#quot;")
    return out.replace("<", "#lt;").replace(">", "#gt;")


def mermaid(graph: Graph, marks: Marks | None = None) -> str:
    """Mermaid flowchart text for ``graph``; with ``marks``, an instance's position on it."""
    lines = ["flowchart TD"]
    lines += by_thread(graph, marks, _nodes, _subgraph, "    end")
    lines += _edges(graph.edges, marks)
    lines += _clicks(graph)
    if marks is not None:
        lines += _classes(graph, marks)
    return "\n".join(lines) + "\n"


def _subgraph(group: str, thread: str) -> list[str]:
    return [f'    subgraph {group}_thread["thread: {_mm(thread)}"]']


def _nodes(nodes: list[Node], marks: Marks | None, pad: str) -> list[str]:
    """A line per node: its id, and its label in its kind's shape."""
    out = []
    for n in nodes:
        a, b = _SHAPES[n.kind]
        text = "<br/>".join(_mm(x) for x in label(n, marks))
        out.append(f"{pad}{n.id}{a}{text}{b}")
    return out


def _edges(edges: list[Edge], marks: Marks | None) -> list[str]:
    """A line per edge: thick where control went, dotted for the jumps and turns."""
    out = []
    for e in edges:
        arrow = _ARROWS[e.kind]
        if marks is not None and e.kind == "flow" and marks.edge_done(e):
            arrow = "==>"
        text = f'|"{_mm(printable(e.label))}"|' if e.label else ""
        out.append(f"    {e.src} {arrow}{text} {e.dst}")
    return out


def _clicks(graph: Graph) -> list[str]:
    """A ``click`` line per node with a link: it opens the link, with a tooltip."""
    out = []
    for n in graph.nodes.values():
        if n.link:
            href = n.link.replace('"', "%22")
            tip = printable(f"diagram of workflow {n.workflow}").replace('"', "'")
            out.append(f'    click {n.id} href "{href}" "{tip}"')
    return out


def _classes(graph: Graph, marks: Marks) -> list[str]:
    """A ``classDef`` per mark, and a ``class`` line of the nodes that have it."""
    lines = []
    for cls, (fill, stroke) in STYLE.items():
        width = "3px" if cls != "done" else "1px"
        lines.append(f"    classDef {cls} fill:{fill},stroke:{stroke},stroke-width:{width}")
    marked: dict[str, list[str]] = {cls: [] for cls in STYLE}
    for nid in graph.nodes:
        state = state_of(nid, marks)
        if state:
            marked[state].append(nid)
    lines += [f"    class {','.join(ids)} {cls}" for cls, ids in marked.items() if ids]
    return lines
