"""How every renderer shows an instance's :class:`~gorch.graph.Marks`: the same states, labels
and colours in Mermaid, DOT and SVG."""

from __future__ import annotations

from gorch.graph._model import Marks, Node

STYLE = {  # fill, stroke for the marks; shared by every renderer
    "current": ("#fde68a", "#b45309"),
    "done": ("#dcfce7", "#15803d"),
    "failed": ("#fee2e2", "#b91c1c"),
}


def state_of(nid: str, marks: Marks | None) -> str:
    """The mark of node ``nid``: ``current``, ``failed``, ``done`` or "" (a key of ``STYLE``)."""
    if marks is None:
        return ""
    if nid in marks.current:
        return "failed" if nid in marks.failed else "current"
    if nid in marks.failed:
        return "failed"
    return "done" if nid in marks.done else ""


def label(n: Node, marks: Marks | None) -> tuple[str, ...]:
    """The lines of ``n``'s label: with a last line ``▶ THREADS`` where threads stand now."""
    if marks is None or n.id not in marks.current or not marks.current[n.id]:
        return n.lines
    return (*n.lines, "▶ " + ", ".join(marks.current[n.id]))
