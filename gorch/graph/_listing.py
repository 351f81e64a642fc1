"""How the text formats list the nodes: thread by thread, the main thread's at the top level and
each ``Go`` thread's in a group (a Mermaid ``subgraph``, a DOT ``cluster``) named after the
``Go`` that starts it."""

from __future__ import annotations

from collections.abc import Callable

from gorch.graph._model import Graph, Marks, Node, printable
from gorch.state import MAIN_THREAD

NodeLines = Callable[[list[Node], Marks | None, str], list[str]]
"""The lines of some nodes, with their marks, each line starting with the given indent."""


def by_thread(
    graph: Graph,
    marks: Marks | None,
    nodes: NodeLines,
    opening: Callable[[str, str], list[str]],
    closing: str,
) -> list[str]:
    """The node lines of ``graph``: the main thread's indented once; each ``Go`` thread's
    indented twice, between ``opening(group id, thread name)`` and ``closing``."""
    lines = []
    for thread, members in graph.threads().items():
        if thread == MAIN_THREAD:
            lines += nodes(members, marks, "    ")
        else:
            lines += opening(members[0].parent or members[0].id, printable(thread))
            lines += nodes(members, marks, "        ")
            lines.append(closing)
    return lines
