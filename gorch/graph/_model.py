"""The graph model every part of :mod:`gorch.graph` shares: nodes, edges, the layout tree, marks.

A :class:`Graph` holds two views of one definition, built together by :mod:`._build`:

- the flat one, :attr:`Graph.nodes` and :attr:`Graph.edges`, that the text renderers
  (Mermaid, DOT) list and that :func:`~gorch.graph.position` reads;
- the nested one, :attr:`Graph.tree`: the statements as sequences of node ids and blocks
  (:class:`Branch`, :class:`Loop`, :class:`Fork`), which the SVG layout draws and which
  position walks to infer what ran before a statement.

:class:`Marks` is an instance's position on a graph; every renderer takes it. :func:`printable`
is here because both the builder (labels) and the renderers (names, thread names, edge labels)
need text on one line.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from enum import StrEnum

from attrs import define, field, frozen

from gorch.state import MAIN_THREAD


class NodeKind(StrEnum):
    """What a box of the diagram stands for."""

    START = "start"  # where the main thread begins
    END = "end"  # where the workflow finishes
    STEP = "step"
    IF = "if"  # an If; its branches are the edges out of it
    SWITCH = "switch"  # a Switch; its cases are the edges out of it
    FOR = "for"  # a loop's head: "repeat" into the body, "done" past it
    BREAK = "break"
    CONTINUE = "continue"
    RETURN = "return"
    WAIT = "wait"  # a Wait; its events are its children
    ON = "on"  # an event case of a Wait
    TIMEOUT = "timeout"  # a Timeout case of a Wait
    WAITFOR = "waitfor"
    GO = "go"  # where a thread is started; its body is drawn beside
    THREAD_END = "thread-end"  # where a Go thread ends
    CHILD = "child"  # a Child: starts an instance of another workflow and waits for its end
    ON_INSTANCE = "on-instance"  # an OnInstance case of a Wait: another instance got somewhere


@frozen
class Node:
    """One box of the diagram.

    Attributes:
        id: ``n0``, ``n1``, ... in definition order (``n0`` is the start, ``n1`` the end).
        kind: start, end, step, if, switch, for, break, continue, return, wait, on, timeout,
            waitfor, go, thread-end, child or on-instance.
        name: the statement's name (an event's name for ``on`` and ``on-instance``); empty
            for unnamed kinds.
        lines: the label, one entry per line.
        thread: the thread it runs in (``_main_``, or the name of its ``Go``).
        parent: the id of the enclosing loop, branch, wait or ``Go`` node ("" at top level).
        workflow: the registered name of the workflow a ``child`` node starts ("" otherwise).
        link: where the node links to: the child workflow's diagram for a ``child`` node
            (``build``'s ``child_link``), "" for none.
    """

    id: str
    kind: NodeKind
    name: str
    lines: tuple[str, ...]
    thread: str = MAIN_THREAD
    parent: str = ""
    workflow: str = ""
    link: str = ""


@frozen
class Edge:
    """A way control goes from ``src`` to ``dst``.

    ``kind`` is ``flow`` (on to the next statement), ``back`` (a loop's next turn, or a
    continue), ``go`` (a ``Go`` starting its thread) or ``jump`` (a return to the end).
    """

    src: str
    dst: str
    label: str = ""
    kind: str = "flow"


# -- the layout tree -------------------------------------------------------------------------


@define
class Seq:
    """Statements one after the other: a node id for a plain statement, or a block."""

    items: list[str | Branch | Loop | Fork] = field(factory=list)


@define
class Lane:
    """One way through a :class:`Branch`: a case of an ``If``/``Switch``, or an event of a
    ``Wait``."""

    label: str  # the case's name on the edge into it ("" for an event: its node says it)
    head: str  # the event's own node ("" for a case, which has none)
    body: Seq


@define
class Branch:
    """An ``If``, ``Switch`` or ``Wait``: its node, then its lanes side by side."""

    head: str
    lanes: list[Lane] = field(factory=list)

    def bodies(self) -> list[Seq]:
        """The sequences inside the block."""
        return [lane.body for lane in self.lanes]


@define
class Loop:
    """A ``For``: its node, then the body it repeats."""

    head: str
    body: Seq = field(factory=Seq)

    def bodies(self) -> list[Seq]:
        """The sequences inside the block."""
        return [self.body]


@define
class Fork:
    """A ``Go``: its node, and beside it the thread's body, closed by the thread's end."""

    head: str
    thread: str
    end: str  # the thread-end node, drawn after the body
    body: Seq = field(factory=Seq)

    def bodies(self) -> list[Seq]:
        """The sequences inside the block (the thread's end is no statement of the body)."""
        return [self.body]


Block = Branch | Loop | Fork


# -- the graph and a position on it ----------------------------------------------------------


@define
class Graph:
    """The diagram of one workflow: nodes and edges, plus the layout tree :func:`svg` draws."""

    workflow: str
    nodes: dict[str, Node]
    edges: list[Edge]
    by_name: dict[str, str]  # statement or event name -> node id
    tree: Seq
    start: str = "n0"
    end: str = "n1"

    def threads(self) -> dict[str, list[Node]]:
        """The nodes of each thread, the main thread first."""
        out: dict[str, list[Node]] = {MAIN_THREAD: []}
        for n in self.nodes.values():
            out.setdefault(n.thread, []).append(n)
        return out


@frozen
class Marks:
    """An instance's position on its diagram.

    Attributes:
        current: node id -> the ids of the threads standing there now.
        done: the nodes already run: from history, with the loops, branches and threads that
            contain them, and (unless a goto jumped) what comes before them in a sequence.
        failed: nodes whose step failed and was not yet run successfully since.
        untaken: ``(src, dst, label)`` of the edges around a branch that was taken (an
            ``otherwise``), which :meth:`edge_done` does not count even though both ends ran.
    """

    current: Mapping[str, tuple[str, ...]] = {}
    done: frozenset[str] = frozenset()
    failed: frozenset[str] = frozenset()
    untaken: frozenset[tuple[str, str, str]] = frozenset()  # (src, dst, label) passed by

    def edge_done(self, e: Edge) -> bool:
        """Whether control went along ``e``: both ends ran (or it leads to a thread now), and
        it is not the way around a branch that was taken."""
        return (
            e.src in self.done
            and (e.dst in self.done or e.dst in self.current)
            and (e.src, e.dst, e.label) not in self.untaken
        )


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\ufffe\uffff]")


def printable(text: str) -> str:
    """``text`` with control characters shown as escapes (``\\n``, ``\\x07``): a label is
    one line, and XML cannot hold most of them at all."""
    return _CONTROL.sub(lambda m: repr(m.group())[1:-1], text)
