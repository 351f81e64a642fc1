"""Diagrams of workflows, drawn from their code: Mermaid, Graphviz DOT and SVG.

:func:`build` turns a workflow class into a :class:`Graph`: one node per statement (steps,
branches, loops, waits and each of their events, conditions, parallel threads, returns, breaks,
continues) and the edges control can take between them, including the edges out of an ``If`` or
``Switch`` (to whatever follows it), the turn of a loop, and each ``Go`` thread with its own end.
Three renderers read the same graph:

- :func:`mermaid`: text for Mermaid (GitHub, GitLab and most docs tools draw it);
- :func:`dot`: text for Graphviz;
- :func:`svg`: a finished SVG picture laid out here in Python, with no system binary and no
  network; the web UI shows it, and docs can embed it.

:func:`position` reads an instance and its history and returns :class:`Marks`: where each thread
is now, and which statements already ran. Every renderer takes them and highlights both.

The package, one job a module:

- ``_model``: :class:`Node`, :class:`NodeKind`, :class:`Edge`, :class:`Graph` (with its layout
  tree) and :class:`Marks`;
- ``_build``: :func:`build` (definition -> graph) and :func:`duration`;
- ``_position``: :func:`position` (instance + history -> marks);
- ``_highlight``: how every renderer shows marks (states, thread labels, colours);
- ``_mermaid``, ``_dot``: the text renderers; ``_render``: :func:`render` and ``FORMATS``;
- ``_svg_layout``: the SVG's layout (where each part stands), ``_svg_draw``: :func:`svg`.

Example:
    >>> from dataclasses import dataclass
    >>> from gorch import S, Step, Wait, On
    >>> @dataclass
    ... class Hello:
    ...     def definition(self):
    ...         return S(Wait("for a name", On("Name", self.name)), Step("greet", self.greet))
    ...     def name(self, name: str) -> None: ...
    ...     def greet(self) -> None: ...
    >>> print(mermaid(build("hello", Hello)))  # doctest: +ELLIPSIS
    flowchart TD
        n0(("start"))
        n2[/"wait: for a name"/]
        n3>"on Name<br/>name(str)"]
        n4["greet"]
        n1((("end")))
        n0 --> n2
    ...
"""

from __future__ import annotations

from gorch.graph._build import CHILD_LINK as CHILD_LINK  # public, though not in __all__
from gorch.graph._build import build, duration
from gorch.graph._dot import dot
from gorch.graph._mermaid import mermaid
from gorch.graph._model import Edge, Graph, Marks, Node, NodeKind
from gorch.graph._position import position
from gorch.graph._render import FORMATS as FORMATS  # public, though not in __all__ (as before)
from gorch.graph._render import render
from gorch.graph._svg_draw import svg

__all__ = [
    "Edge",
    "Graph",
    "Marks",
    "Node",
    "NodeKind",
    "build",
    "dot",
    "duration",
    "mermaid",
    "position",
    "render",
    "svg",
]
