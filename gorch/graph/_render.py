"""Rendering by format name, for the faces that take the format from a user (CLI, HTTP)."""

from __future__ import annotations

from collections.abc import Callable

from gorch.graph._dot import dot
from gorch.graph._mermaid import mermaid
from gorch.graph._model import Graph, Marks
from gorch.graph._svg_draw import svg

FORMATS = ("mermaid", "dot", "svg")

_RENDERERS: dict[str, Callable[[Graph, Marks | None], str]] = {
    "mermaid": mermaid,
    "dot": dot,
    "svg": svg,
}


def render(graph: Graph, fmt: str, marks: Marks | None = None) -> str:
    """``graph`` as ``fmt`` (``mermaid``, ``dot`` or ``svg``)."""
    try:
        fn = _RENDERERS[fmt]
    except KeyError:
        raise ValueError(f"unknown diagram format {fmt!r}; use mermaid, dot or svg") from None
    return fn(graph, marks)
