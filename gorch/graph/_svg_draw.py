"""The SVG's drawing: the parts :mod:`._svg_layout` placed, as SVG elements, with the style.

:func:`svg` writes the root, its title, the style sheet and the arrow marker, then every edge,
label and frame, then every node over them (a ``<g>`` per node with its classes, ``data-name``
and tooltip: the page-facing names docs/diagrams.md lists), each part by its own function.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import assert_never

from gorch.graph._highlight import label, state_of
from gorch.graph._model import Graph, Marks, Node, NodeKind, printable
from gorch.graph._svg_layout import LINE_H, Frame, Label, NodeBox, Path, Point, layout

# Kinds drawn as closing pills: nothing follows them in their sequence.
_PILLS = frozenset((NodeKind.RETURN, NodeKind.BREAK, NodeKind.CONTINUE, NodeKind.THREAD_END))

_CSS_KINDS = """
svg.gorch-graph { font: 12px system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
.gorch-graph .node > :not(text):not(title) { fill: #fff; stroke: #475569; stroke-width: 1.2; }
.gorch-graph .node text { text-anchor: middle; fill: #0f172a; }
.gorch-graph .node.on > :not(text):not(title),
.gorch-graph .node.timeout > :not(text):not(title) { fill: #eff6ff; }
.gorch-graph .node.timeout > :not(text):not(title) { stroke-dasharray: 4 2; }
"""
_CSS_MARKS = """.gorch-graph .node.done > :not(text):not(title) { fill: #dcfce7; stroke: #15803d; }
.gorch-graph .node.current > :not(text):not(title) { fill: #fde68a; stroke: #b45309;
  stroke-width: 3; }
.gorch-graph .node.failed > :not(text):not(title) { fill: #fee2e2; stroke: #b91c1c;
  stroke-width: 3; }
.gorch-graph .edge { fill: none; stroke: #64748b; stroke-width: 1.2; }
.gorch-graph .edge.back { stroke-dasharray: 2 3; }
.gorch-graph .edge.go { stroke-dasharray: 6 3; }
.gorch-graph .label { fill: #334155; font-size: 11px; }
.gorch-graph .frame { fill: none; stroke: #94a3b8; stroke-dasharray: 6 3; }
.gorch-graph .title { font-weight: 600; fill: #0f172a; }
"""
# The rules of the kinds that work with other instances, only in a picture that has them (so
# the picture of a workflow without them stays as it was); before the marks, which win.
_CSS_TOGETHER = {
    NodeKind.CHILD: ".gorch-graph .node.child > :not(text):not(title) { fill: #f8fafc; }\n"
    ".gorch-graph a .node.child text:first-of-type { text-decoration: underline; }\n",
    NodeKind.ON_INSTANCE: ".gorch-graph .node.on-instance > :not(text):not(title) "
    "{ fill: #f5f3ff; }\n",
}


def svg(graph: Graph, marks: Marks | None = None) -> str:
    """A standalone SVG picture of ``graph`` (laid out here: no Graphviz, no network).

    Each statement is a ``<g class="node KIND [current|done|failed]" id="gorch-nID"
    data-name="NAME">`` with a ``<title>``, so a page can style it, or find a statement by name.
    """
    body = layout(graph, marks)
    margin, title_h = 16.0, 24.0
    width = body.w + 2 * margin
    height = body.h + 2 * margin + title_h
    workflow = printable(graph.workflow)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="gorch-graph" role="img" '
        f'width="{width:.0f}" height="{height:.0f}" viewBox="0 0 {width:.0f} {height:.0f}" '
        f'aria-label="{html.escape(f"diagram of workflow {workflow}")}">',
        f"<title>{html.escape(f'workflow {workflow}')}</title>",
        f"<style>{_css(graph)}</style>",
        '<defs><marker id="gorch-arrow" viewBox="0 0 10 10" refX="9" refY="5" '
        'markerWidth="7" markerHeight="7" orient="auto-start-reverse">'
        '<path d="M0,0L10,5L0,10z" fill="#64748b"/></marker></defs>',
        f'<text class="title" x="{margin:.0f}" y="{margin + 4:.0f}">{html.escape(workflow)}</text>',
    ]
    nodes, edges = [], []
    for dx, dy, part in body.parts_at(margin, margin + title_h):
        match part:
            case NodeBox():
                nodes.append(_node(graph, marks, part, dx, dy))
            case Path():
                edges.append(_path(part, dx, dy))
            case Label():
                edges.append(_label(part, dx, dy))
            case Frame():
                edges.append(_frame(part, dx, dy))
            case _:
                assert_never(part)
    out += edges + nodes + ["</svg>"]
    return "\n".join(out) + "\n"


def _css(graph: Graph) -> str:
    """The style sheet: every kind's rules (those of a ``Child`` and an ``OnInstance`` only if
    the graph has one), then the marks'."""
    kinds = {n.kind for n in graph.nodes.values()}
    extra = "".join(rule for kind, rule in _CSS_TOGETHER.items() if kind in kinds)
    return _CSS_KINDS + extra + _CSS_MARKS


def _node(graph: Graph, marks: Marks | None, box: NodeBox, dx: float, dy: float) -> str:
    """A node's ``<g>``: its classes, name and tooltip, its shape and its label; inside an
    ``<a>`` to its link, if it has one (a ``Child``: its workflow's diagram)."""
    n = graph.nodes[box.nid]
    state = state_of(n.id, marks)
    cls = f"node {n.kind}" + (f" {state}" if state else "")
    name = f' data-name="{html.escape(printable(n.name))}"' if n.name else ""
    tip = f"{n.kind} {printable(n.name)}".strip()
    if n.workflow:
        name += f' data-workflow="{html.escape(printable(n.workflow))}"'
        tip += f" → workflow {printable(n.workflow)}"
    if marks is not None and marks.current.get(n.id):
        tip += " — now: " + ", ".join(marks.current[n.id])
    drawn = (
        f'<g class="{cls}" id="gorch-{n.id}"{name}><title>{html.escape(tip)}</title>'
        + _shape(n, box.x + dx, box.y + dy, box.w, box.h)
        + _texts(box.x + dx, box.y + dy, box.w, box.h, label(n, marks))
        + "</g>"
    )
    return f'<a href="{html.escape(n.link)}">{drawn}</a>' if n.link else drawn


def _shape(n: Node, x: float, y: float, w: float, h: float) -> str:
    """The outline of ``n``'s kind in the box at ``x``, ``y``."""
    k = n.kind
    if k in (NodeKind.START, NodeKind.END):
        cx, cy, rad = x + w / 2, y + h / 2, w / 2
        shape = f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="{rad:.1f}"/>'
        if k == NodeKind.END:
            shape += f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="{rad - 4:.1f}"/>'
        return shape
    if k in (NodeKind.IF, NodeKind.SWITCH):
        return _poly([(x + w / 2, y), (x + w, y + h / 2), (x + w / 2, y + h), (x, y + h / 2)])
    if k == NodeKind.FOR:
        e = 12
        return _poly([(x + e, y), (x + w - e, y), (x + w, y + h / 2), (x + w - e, y + h),
                      (x + e, y + h), (x, y + h / 2)])  # fmt: skip
    if k == NodeKind.WAIT:
        e = 10
        return _poly([(x + e, y), (x + w, y), (x + w - e, y + h), (x, y + h)])
    if k == NodeKind.WAITFOR:
        e = 10
        return _poly([(x + e, y), (x + w - e, y), (x + w, y + h), (x, y + h)])
    if k in (NodeKind.ON, NodeKind.TIMEOUT):
        e = 12
        return _poly([(x, y), (x + w - e, y), (x + w, y + h / 2), (x + w - e, y + h),
                      (x, y + h)])  # fmt: skip
    if k == NodeKind.ON_INSTANCE:  # a flag notched on the left: a move coming from elsewhere
        e = 12
        return _poly([(x, y), (x + w - e, y), (x + w, y + h / 2), (x + w - e, y + h),
                      (x, y + h), (x + e, y + h / 2)])  # fmt: skip
    if k == NodeKind.CHILD:  # a box in a box: a workflow of its own
        return (
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{h:.1f}" rx="6"/>'
            f'<rect x="{x + 3:.1f}" y="{y + 3:.1f}" width="{w - 6:.1f}" height="{h - 6:.1f}" '
            f'rx="3"/>'
        )
    if k == NodeKind.GO:
        return (
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{h:.1f}"/>'
            f'<path d="M{x + 6:.1f},{y:.1f}v{h:.1f}M{x + w - 6:.1f},{y:.1f}v{h:.1f}"/>'
        )
    rx = h / 2 if k in _PILLS else 4
    return f'<rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{h:.1f}" rx="{rx:.1f}"/>'


def _texts(x: float, y: float, w: float, h: float, lines: Sequence[str]) -> str:
    """The label's lines, centred in the box at ``x``, ``y``."""
    cx = x + w / 2
    cy = y + h / 2 - (len(lines) - 1) * LINE_H / 2 + 4
    return "".join(
        f'<text x="{cx:.1f}" y="{cy + i * LINE_H:.1f}">{html.escape(s)}</text>'
        for i, s in enumerate(lines)
    )


def _poly(points: Sequence[Point]) -> str:
    return '<polygon points="' + " ".join(f"{x:.1f},{y:.1f}" for x, y in points) + '"/>'


def _path(p: Path, dx: float, dy: float) -> str:
    d = "M" + "L".join(f"{x + dx:.1f},{y + dy:.1f}" for x, y in p.points)
    arrow = ' marker-end="url(#gorch-arrow)"' if p.arrow else ""
    return f'<path class="{p.style}" d="{d}"{arrow}/>'


def _label(t: Label, dx: float, dy: float) -> str:
    return (
        f'<text class="label" x="{t.x + dx:.1f}" y="{t.y + dy:.1f}" text-anchor="start">'
        f"{html.escape(printable(t.text))}</text>"
    )


def _frame(f: Frame, dx: float, dy: float) -> str:
    x, y = f.x + dx, f.y + dy
    return (
        f'<rect class="frame" x="{x:.1f}" y="{y:.1f}" width="{f.w:.1f}" '
        f'height="{f.h:.1f}" rx="6"/><text class="label" x="{x + 8:.1f}" '
        f'y="{y + f.h - 7:.1f}">{html.escape(printable(f.label))}</text>'
    )
