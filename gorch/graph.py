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

import html
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import timedelta
from enum import StrEnum
from typing import Any

from attrs import define, field, frozen

from gorch.catalog import NO_PAYLOAD, EventInfo, WorkflowInfo, describe
from gorch.dsl import (
    K_BREAK,
    K_CONTINUE,
    K_FOR,
    K_GO,
    K_IF,
    K_RETURN,
    K_SECTION,
    K_STEP,
    K_SWITCH,
    K_TIMEOUT,
    K_WAIT,
    K_WAITFOR,
    Default,
)
from gorch.engine import HistoryKind
from gorch.state import MAIN_THREAD, ThreadStatus

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

FORMATS = ("mermaid", "dot", "svg")


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


@frozen
class Node:
    """One box of the diagram.

    Attributes:
        id: ``n0``, ``n1``, ... in definition order (``n0`` is the start, ``n1`` the end).
        kind: start, end, step, if, switch, for, break, continue, return, wait, on, timeout,
            waitfor, go or thread-end.
        name: the statement's name (an event's name for ``on``); empty for unnamed kinds.
        lines: the label, one entry per line.
        thread: the thread it runs in (``_main_``, or the name of its ``Go``).
        parent: the id of the enclosing loop, branch, wait or ``Go`` node ("" at top level).
    """

    id: str
    kind: NodeKind
    name: str
    lines: tuple[str, ...]
    thread: str = MAIN_THREAD
    parent: str = ""


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


@define
class _Lane:
    label: str
    head: str  # the lane's own node ("" for a branch case, which has none)
    body: _Seq


@define
class _Seq:
    items: list[Any] = field(factory=list)  # str (a plain node id) or a _Block


@define
class _Block:
    kind: str  # branch | loop | fork
    head: str
    lanes: list[_Lane] = field(factory=list)
    end: str = ""  # a fork's thread-end node


@define
class Graph:
    """The diagram of one workflow: nodes and edges, plus the layout tree :func:`svg` draws."""

    workflow: str
    nodes: dict[str, Node]
    edges: list[Edge]
    by_name: dict[str, str]  # statement or event name -> node id
    tree: _Seq
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


# -- building ------------------------------------------------------------------------------


def build(name: str, cls: type, data: Any = None) -> Graph:
    """The diagram of workflow class ``cls`` registered as ``name``.

    Args:
        name: the registered name.
        cls: the workflow class.
        data: an instance's workflow object, to draw what its definition reads from its data
            (its own timeouts); by default a stand-in instance's.

    Raises:
        DefinitionError: the definition cannot be read, or it is invalid.
    """
    return _Builder(describe(name, cls), data).graph()


def duration(d: timedelta | float) -> str:
    """A delay as short text: ``1d2h``, ``30m``, ``1.5s``."""
    seconds = d.total_seconds() if isinstance(d, timedelta) else float(d)
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            parts.append(f"{int(seconds // size)}{unit}")
            seconds %= size
    if seconds or not parts:
        parts.append(f"{seconds:.6f}".rstrip("0").rstrip(".") + "s")
    return "".join(parts)


_Exit = tuple[str, str, str]  # (source node, edge label, edge kind)


class _Builder:
    def __init__(self, info: WorkflowInfo, data: Any = None) -> None:
        self.info = info
        self.data = data
        self.nodes: dict[str, Node] = {}
        self.edges: list[Edge] = []
        self.by_name: dict[str, str] = {}
        self.count = 0
        self.tail: list[Node] = []  # end nodes, listed after the statements they close

    def new(
        self,
        kind: NodeKind,
        name: str,
        lines: Iterable[str],
        thread: str,
        parent: str,
        *,
        later: bool = False,
    ) -> str:
        nid = f"n{self.count}"
        self.count += 1
        node = Node(nid, kind, name, tuple(map(_printable, lines)), thread, parent)
        if later:
            self.tail.append(node)
        else:
            self.nodes[nid] = node
        if name:
            self.by_name[name] = nid
        return nid

    def link(self, exits: Iterable[_Exit], dst: str) -> None:
        for src, label, kind in exits:
            self.edges.append(Edge(src, dst, label, kind))

    def graph(self) -> Graph:
        tree = self.info.definition() if self.data is None else self.data.definition()
        start = self.new(NodeKind.START, "", ["start"], MAIN_THREAD, "")
        end = self.new(NodeKind.END, "", ["end"], MAIN_THREAD, "", later=True)
        seq = _Seq([start])
        exits = self.seq(_kids(tree), [(start, "", "flow")], seq, MAIN_THREAD, "", end, None)
        self.flush(end)
        self.link(exits, end)
        seq.items.append(end)
        return Graph(self.info.name, self.nodes, self.edges, self.by_name, seq)

    def flush(self, nid: str) -> None:
        node = next(n for n in self.tail if n.id == nid)
        self.tail.remove(node)
        self.nodes[nid] = node

    def seq(
        self,
        stmts: Sequence[Any],
        exits: list[_Exit],
        out: _Seq,
        thread: str,
        parent: str,
        end: str,
        loop: tuple[str, list[_Exit]] | None,
    ) -> list[_Exit]:
        for stmt in stmts:
            exits = self.stmt(stmt, exits, out, thread, parent, end, loop)
        return exits

    def stmt(
        self,
        s: Any,
        exits: list[_Exit],
        out: _Seq,
        thread: str,
        parent: str,
        end: str,
        loop: tuple[str, list[_Exit]] | None,
    ) -> list[_Exit]:
        k = s._kind
        if k == K_SECTION:
            return self.seq(s.kids, exits, out, thread, parent, end, loop)
        if k in (K_STEP, K_WAITFOR, K_RETURN, K_BREAK, K_CONTINUE):
            kind, lines = _simple(s)
            # where a jump goes, said in its label (the SVG draws no edge for it)
            if k == K_RETURN:
                lines.append("ends the workflow" if thread == MAIN_THREAD else f"ends {thread}")
            elif loop is not None and k in (K_BREAK, K_CONTINUE):
                what = "leaves" if k == K_BREAK else "next turn of"
                lines.append(f"{what} {self.nodes[loop[0]].name}")
            nid = self.new(kind, getattr(s, "name", ""), lines, thread, parent)
            self.link(exits, nid)
            out.items.append(nid)
            if k == K_RETURN:
                self.edges.append(Edge(nid, end, "", "jump"))
                return []
            if k == K_BREAK:
                if loop is not None:
                    loop[1].append((nid, "", "flow"))
                return []
            if k == K_CONTINUE:
                if loop is not None:
                    self.edges.append(Edge(nid, loop[0], "", "back"))
                return []
            return [(nid, "", "flow")]
        if k in (K_IF, K_SWITCH):
            kind = NodeKind.IF if k == K_IF else NodeKind.SWITCH
            head = self.new(kind, "", [kind], thread, parent)
            self.link(exits, head)
            block = _Block("branch", head)
            out.items.append(block)
            result: list[_Exit] = []
            for case in s.kids:
                lane = _Lane(case.name, "", _Seq())
                block.lanes.append(lane)
                self.by_name[case.name] = head
                result += self.seq(
                    case.kids, [(head, case.name, "flow")], lane.body, thread, head, end, loop
                )
            if not any(isinstance(c, Default) for c in s.kids):
                block.lanes.append(_Lane("otherwise", "", _Seq()))
                result.append((head, "otherwise", "flow"))
            return result
        if k == K_FOR:
            head = self.new(NodeKind.FOR, s.name, [f"loop: {s.name}"], thread, parent)
            self.link(exits, head)
            block = _Block("loop", head, [_Lane("repeat", "", _Seq())])
            out.items.append(block)
            breaks: list[_Exit] = []
            body = self.seq(
                s.kids, [(head, "repeat", "flow")], block.lanes[0].body, thread, head, end,
                (head, breaks),
            )  # fmt: skip
            self.link([(src, label, "back") for src, label, _ in body], head)
            return [(head, "done", "flow"), *breaks]
        if k == K_WAIT:
            head = self.new(NodeKind.WAIT, s.name, [f"wait: {s.name}"], thread, parent)
            self.link(exits, head)
            block = _Block("branch", head)
            out.items.append(block)
            result = []
            for case in s.kids:
                ev = self.info.events.get(case.name)
                kind = NodeKind.TIMEOUT if case._kind == K_TIMEOUT else NodeKind.ON
                nid = self.new(kind, case.name, _event_lines(case, ev), thread, head)
                self.edges.append(Edge(head, nid))
                lane = _Lane("", nid, _Seq())
                block.lanes.append(lane)
                result += self.seq(
                    case.kids, [(nid, "", "flow")], lane.body, thread, head, end, loop
                )
            return result
        if k == K_GO:
            head = self.new(NodeKind.GO, s.name, [f"go: {s.name}"], thread, parent)
            self.link(exits, head)
            tend = self.new(NodeKind.THREAD_END, "", ["thread ends"], s.name, head, later=True)
            block = _Block("fork", head, [_Lane(s.name, "", _Seq())], tend)
            out.items.append(block)
            body = self.seq(
                s.kids, [(head, "", "go")], block.lanes[0].body, s.name, head, tend, None
            )
            self.flush(tend)
            self.link(body, tend)
            return [(head, "", "flow")]
        raise TypeError(f"not a statement: {s!r}")  # validate() refused it already


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\ufffe\uffff]")


def _printable(text: str) -> str:
    """``text`` with control characters shown as escapes (``\\n``, ``\\x07``): a label is
    one line, and XML cannot hold most of them at all."""
    return _CONTROL.sub(lambda m: repr(m.group())[1:-1], text)


def _kids(tree: Any) -> Sequence[Any]:
    return tree.kids if getattr(tree, "_kind", None) == K_SECTION else (tree,)


def _simple(s: Any) -> tuple[NodeKind, list[str]]:
    k = s._kind
    if k == K_STEP:
        return NodeKind.STEP, [s.name]
    if k == K_WAITFOR:
        return NodeKind.WAITFOR, [f"wait for: {s.name}"]
    word = {K_RETURN: NodeKind.RETURN, K_BREAK: NodeKind.BREAK, K_CONTINUE: NodeKind.CONTINUE}[k]
    return word, [word]


def _event_lines(case: Any, ev: EventInfo | None) -> list[str]:
    if case._kind == K_TIMEOUT:
        try:
            after = duration(case.delay)
        except TypeError:  # a bad value from the data: shown as it is
            after = repr(case.after)
        return [f"timeout: {case.name}", f"after {after}"]
    lines = [f"on {case.name}"]
    detail = []
    handler = case.handler
    if handler is not None and ev is not None:
        hname = getattr(handler, "__name__", None) or type(handler).__name__
        payload = ev.payload
        arg = "" if payload is NO_PAYLOAD else _type_name(payload)
        detail.append(f"{hname}({arg})")
    if ev is not None and ev.roles:
        detail.append("by " + " or ".join(ev.roles))
    if detail:
        lines.append(" · ".join(detail))
    return lines


def _type_name(t: Any) -> str:
    name = getattr(t, "__name__", None)
    if name and not getattr(t, "__args__", None):
        return "any" if name == "_Any" else str(name)
    return str(t).replace("typing.", "")


# -- an instance's position ----------------------------------------------------------------


def position(graph: Graph, instance: Any, history: Iterable[Any]) -> Marks:
    """Where ``instance`` stands on ``graph``, and what already ran (from ``history``).

    ``instance`` is a :class:`gorch.engine.Instance` (or anything with ``status`` and
    ``state``); ``history`` its :class:`gorch.engine.HistoryEntry` list, oldest first.
    Statements the code no longer has are left out.
    """
    history = list(history)
    done: set[str] = set()
    failed: set[str] = set()
    for h in history:
        nid = graph.by_name.get(h.name)
        if h.kind == HistoryKind.STARTED:
            done.add(graph.start)
        elif nid is None:
            continue
        elif h.kind in (HistoryKind.STEP, HistoryKind.EVENT, HistoryKind.TIMER):
            done.add(nid)
            failed.discard(nid)
        elif h.kind in (HistoryKind.STEP_FAILED, HistoryKind.FAILED):
            failed.add(nid)
    current: dict[str, list[str]] = {}
    status = str(getattr(instance, "status", ""))
    threads = getattr(instance.state, "threads", [])
    for t in threads:
        if t.cur_step:
            nid = graph.by_name.get(t.cur_step)
        elif t.id == MAIN_THREAD:
            nid = graph.start
        else:
            nid = graph.by_name.get(t.name)
        if nid is None:
            continue
        current.setdefault(nid, []).append(t.id)
        if t.status is ThreadStatus.RESUMING:
            done.add(nid)  # it ran; the thread goes on after it
    if status == "finished":
        current[graph.end] = []
    # what contains a statement that ran, or a thread now, ran too: its loop, branch, wait, Go
    for nid in [*done, *current]:
        parent = graph.nodes[nid].parent
        while parent and parent not in done:
            done.add(parent)
            parent = graph.nodes[parent].parent
    # and, unless a goto jumped, what comes before it in its sequence (a WaitFor, an If)
    if not any(h.kind == HistoryKind.GOTO for h in history):
        _before(graph, graph.tree, done, current)
    for nid in list(done) + list(current):
        if graph.nodes[nid].thread == MAIN_THREAD:
            done.add(graph.start)
            break
    # a Go thread that ran and stands nowhere now has ended
    live = {t.name for t in threads}
    for n in graph.nodes.values():
        if n.kind == NodeKind.THREAD_END and n.parent in done and n.thread not in live:
            done.add(n.id)
    # the way around a branch (its "otherwise", an empty case) was not taken if a branch was
    untaken = set()
    for e in graph.edges:
        src = graph.nodes[e.src]
        if src.kind not in (NodeKind.IF, NodeKind.SWITCH) or graph.nodes[e.dst].parent == src.id:
            continue
        branches = (x.dst for x in graph.edges if x.src == src.id)
        if any(graph.nodes[d].parent == src.id and d in done for d in branches):
            untaken.add((e.src, e.dst, e.label))
    return Marks(
        {k: tuple(v) for k, v in current.items()},
        frozenset(done),
        frozenset(failed),
        frozenset(untaken),
    )


def _before(graph: Graph, seq: _Seq, done: set[str], current: Mapping[str, Any]) -> None:
    """Mark done every item of ``seq`` (and of the sequences in it) before the last one
    reached: control enters a sequence at its start, so whatever precedes a reached item ran.
    The end is not reached that way: a Return jumps there."""
    heads = [it if isinstance(it, str) else it.head for it in seq.items]
    reached = [
        i for i, nid in enumerate(heads) if (nid in done or nid in current) and nid != graph.end
    ]
    if reached:
        done.update(heads[: reached[-1]])
    for it in seq.items:
        if not isinstance(it, str):
            for lane in it.lanes:
                _before(graph, lane.body, done, current)


def render(graph: Graph, fmt: str, marks: Marks | None = None) -> str:
    """``graph`` as ``fmt`` (``mermaid``, ``dot`` or ``svg``)."""
    try:
        fn = {"mermaid": mermaid, "dot": dot, "svg": svg}[fmt]
    except KeyError:
        raise ValueError(f"unknown diagram format {fmt!r}; use mermaid, dot or svg") from None
    return fn(graph, marks)


def _state_of(nid: str, marks: Marks | None) -> str:
    if marks is None:
        return ""
    if nid in marks.current:
        return "failed" if nid in marks.failed else "current"
    if nid in marks.failed:
        return "failed"
    return "done" if nid in marks.done else ""


# -- Mermaid -------------------------------------------------------------------------------

_MERMAID_SHAPES = {
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
}

_MERMAID_ARROWS = {"flow": "-->", "back": "-.->", "go": "-.->", "jump": "-.->"}

_STYLE = {  # fill, stroke for the marks; shared by every renderer
    "current": ("#fde68a", "#b45309"),
    "done": ("#dcfce7", "#15803d"),
    "failed": ("#fee2e2", "#b91c1c"),
}


def _mm(text: str) -> str:
    out = text.replace("#", "#35;").replace('"', "#quot;")
    return out.replace("<", "#lt;").replace(">", "#gt;")


def mermaid(graph: Graph, marks: Marks | None = None) -> str:
    """Mermaid flowchart text for ``graph``; with ``marks``, an instance's position on it."""
    lines = ["flowchart TD"]
    threads = graph.threads()
    for thread, nodes in threads.items():
        pad = "    "
        if thread != MAIN_THREAD:
            tid = nodes[0].parent or nodes[0].id
            lines.append(f'    subgraph {tid}_thread["thread: {_mm(_printable(thread))}"]')
            pad = "        "
        for n in nodes:
            a, b = _MERMAID_SHAPES[n.kind]
            label = "<br/>".join(_mm(x) for x in _with_threads(n, marks))
            lines.append(f"{pad}{n.id}{a}{label}{b}")
        if thread != MAIN_THREAD:
            lines.append("    end")
    for e in graph.edges:
        arrow = _MERMAID_ARROWS[e.kind]
        if marks is not None and marks.edge_done(e):
            arrow = "==>" if e.kind == "flow" else arrow
        label = f'|"{_mm(_printable(e.label))}"|' if e.label else ""
        lines.append(f"    {e.src} {arrow}{label} {e.dst}")
    if marks is not None:
        for cls, (fill, stroke) in _STYLE.items():
            width = "3px" if cls != "done" else "1px"
            lines.append(f"    classDef {cls} fill:{fill},stroke:{stroke},stroke-width:{width}")
        for cls in _STYLE:
            ids = [nid for nid in graph.nodes if _state_of(nid, marks) == cls]
            if ids:
                lines.append(f"    class {','.join(ids)} {cls}")
    return "\n".join(lines) + "\n"


def _with_threads(n: Node, marks: Marks | None) -> tuple[str, ...]:
    if marks is None or n.id not in marks.current or not marks.current[n.id]:
        return n.lines
    return (*n.lines, "▶ " + ", ".join(marks.current[n.id]))


# -- Graphviz DOT --------------------------------------------------------------------------

_DOT_SHAPES = {
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
    for thread, nodes in graph.threads().items():
        pad = "    "
        if thread != MAIN_THREAD:
            tid = nodes[0].parent or nodes[0].id
            lines.append(f"    subgraph cluster_{tid} {{")
            lines.append(f"        label={_dq('thread: ' + _printable(thread))}; style=dashed;")
            pad = "        "
        for n in nodes:
            attrs = [f"label={_dq(chr(10).join(_with_threads(n, marks)))}"]
            attrs.append(f"shape={_DOT_SHAPES[n.kind]}")
            if n.kind == NodeKind.STEP:
                attrs.append('style="rounded,filled"')
            state = _state_of(n.id, marks)
            if state:
                fill, stroke = _STYLE[state]
                attrs.append(f'fillcolor="{fill}", color="{stroke}"')
                if state != "done":
                    attrs.append("penwidth=3")
            lines.append(f"{pad}{n.id} [{', '.join(attrs)}];")
        if thread != MAIN_THREAD:
            lines.append("    }")
    for e in graph.edges:
        attrs = []
        if e.label:
            attrs.append(f"label={_dq(_printable(e.label))}")
        if e.kind == "back":
            attrs.append("constraint=false")
        if e.kind in ("go", "jump"):
            attrs.append("style=dashed")
        if marks is not None and marks.edge_done(e):
            attrs.append(f'color="{_STYLE["done"][1]}", penwidth=2')
        suffix = f" [{', '.join(attrs)}]" if attrs else ""
        lines.append(f"    {e.src} -> {e.dst}{suffix};")
    lines.append("}")
    return "\n".join(lines) + "\n"


# -- SVG -----------------------------------------------------------------------------------

_CHAR_W = 7.0  # px per character at the 12px sans-serif the picture uses (a safe average)
_LINE_H = 15.0
_GAP = 26.0  # vertical space between statements
_LANE_GAP = 24.0  # horizontal space between branches
_CHANNEL = 22.0  # room beside a loop for its back edge


@define
class _Box:
    """A laid out piece: size, the x of its axis, and what to draw (relative to its corner)."""

    w: float
    h: float
    ax: float
    open: bool = True  # control can leave at the bottom
    parts: list[tuple[str, Any]] = field(factory=list)

    def place(self, dx: float, dy: float) -> list[tuple[str, Any]]:
        return [(kind, _shift(kind, p, dx, dy)) for kind, p in self.parts]


def _shift(kind: str, p: Any, dx: float, dy: float) -> Any:
    if kind == "node":
        nid, x, y, w, h = p
        return (nid, x + dx, y + dy, w, h)
    if kind in ("line", "back", "dash"):
        pts, head = p
        return ([(x + dx, y + dy) for x, y in pts], head)
    if kind == "text":
        x, y, s, anchor = p
        return (x + dx, y + dy, s, anchor)
    if kind == "frame":
        x, y, w, h, label = p
        return (x + dx, y + dy, w, h, label)
    raise AssertionError(kind)


class _Layout:
    def __init__(self, graph: Graph, marks: Marks | None) -> None:
        self.g = graph
        self.marks = marks

    def size(self, nid: str) -> tuple[float, float]:
        n = self.g.nodes[nid]
        lines = _with_threads(n, self.marks)
        text = max(len(x) for x in lines) * _CHAR_W
        h = len(lines) * _LINE_H + 12
        if n.kind in (NodeKind.START, NodeKind.END):
            d = max(text + 14, 34.0)
            return d, d
        if n.kind in (NodeKind.IF, NodeKind.SWITCH):
            return text + 44, h + 16
        if n.kind in (NodeKind.FOR, NodeKind.WAIT, NodeKind.WAITFOR, NodeKind.ON, NodeKind.TIMEOUT):
            return text + 40, h
        return text + 24, h

    def node(self, nid: str) -> _Box:
        w, h = self.size(nid)
        closed = self.g.nodes[nid].kind in (
            NodeKind.RETURN,
            NodeKind.BREAK,
            NodeKind.CONTINUE,
            NodeKind.END,
            NodeKind.THREAD_END,
        )
        return _Box(w, h, w / 2, not closed, [("node", (nid, 0.0, 0.0, w, h))])

    def seq(self, seq: _Seq) -> _Box:
        return self.stack([self.item(it) for it in seq.items])

    def stack(self, boxes: list[_Box]) -> _Box:
        """Boxes one below the other on a common axis, joined where control goes on."""
        if not boxes:
            return _Box(0, 0, 0)
        left = max(b.ax for b in boxes)
        right = max(b.w - b.ax for b in boxes)
        out = _Box(left + right, 0, left)
        y = 0.0
        for i, b in enumerate(boxes):
            if i:
                if boxes[i - 1].open:
                    out.parts.append(("line", ([(left, y), (left, y + _GAP)], True)))
                y += _GAP
            out.parts += b.place(left - b.ax, y)
            y += b.h
        out.h, out.open = y, boxes[-1].open
        return out

    def item(self, it: Any) -> _Box:
        if isinstance(it, str):
            return self.node(it)
        if it.kind == "loop":
            return self.loop(it)
        if it.kind == "fork":
            return self.fork(it)
        return self.branch(it)

    def branch(self, b: _Block) -> _Box:
        head = self.node(b.head)
        lanes: list[tuple[_Box, _Lane]] = []
        for lane in b.lanes:
            body = self.seq(lane.body)
            if lane.head:
                first = self.node(lane.head)
                body = self.stack([first, body]) if body.h else first
            lanes.append((body, lane))
        label_h = 16.0 if any(lane.label for _, lane in lanes) else 0.0
        widths = [max(bx.w, len(lane.label) * _CHAR_W + 8, 30.0) for bx, lane in lanes]
        total = sum(widths) + _LANE_GAP * (len(lanes) - 1)
        w = max(total, head.w)
        ax = w / 2
        out = _Box(w, 0, ax)
        out.parts += head.place(ax - head.ax, 0)
        bus = head.h + _GAP / 2
        top = bus + _GAP / 2 + label_h
        x = (w - total) / 2
        axes = []
        for (bx, lane), lw in zip(lanes, widths, strict=True):
            lx = x + lw / 2
            axes.append(lx)
            out.parts.append(("line", ([(ax, head.h), (ax, bus), (lx, bus), (lx, top)], True)))
            if lane.label:
                out.parts.append(("text", (lx + 4, bus + 13, lane.label, "start")))
            out.parts += bx.place(lx - bx.ax, top)
            x += lw + _LANE_GAP
        bottom = top + max(bx.h for bx, _ in lanes) + _GAP / 2
        ends = [(lx, top + bx.h) for (bx, _), lx in zip(lanes, axes, strict=True) if bx.open]
        for lx, y in ends:
            out.parts.append(("line", ([(lx, y), (lx, bottom), (ax, bottom)], False)))
        out.h = bottom
        out.open = bool(ends)
        return out

    def loop(self, b: _Block) -> _Box:
        head = self.node(b.head)
        body = self.seq(b.lanes[0].body)
        left = max(head.ax, body.ax) + _CHANNEL
        right = max(head.w - head.ax, body.w - body.ax) + _CHANNEL
        out = _Box(left + right, 0, left)
        out.parts += head.place(left - head.ax, 0)
        top = head.h + _GAP
        out.parts.append(("line", ([(left, head.h), (left, top)], True)))
        out.parts.append(("text", (left + 4, head.h + 14, "repeat", "start")))
        out.parts += body.place(left - body.ax, top)
        bottom = top + body.h
        if body.open:  # the next turn: down, left, up beside the body, back into the head
            x = left - body.ax - _CHANNEL / 2
            back = [(left, bottom), (left, bottom + _GAP / 2), (x, bottom + _GAP / 2),
                    (x, head.h / 2), (left - head.w / 2, head.h / 2)]  # fmt: skip
            out.parts.append(("back", (back, True)))
        # done: from the head's right, down the right channel, to the axis below
        rx = left + max(head.w - head.ax, body.w - body.ax) + _CHANNEL / 2
        end = bottom + _GAP
        done = [(left + head.w / 2, head.h / 2), (rx, head.h / 2), (rx, end), (left, end)]
        out.parts.append(("line", (done, False)))
        out.parts.append(("text", (left + head.w / 2 + 4, head.h / 2 - 4, "done", "start")))
        out.h = end
        return out

    def fork(self, b: _Block) -> _Box:
        head = self.node(b.head)
        body = self.seq(_Seq([*b.lanes[0].body.items, b.end]))
        pad = 12.0
        fx = head.w + _LANE_GAP * 1.5
        fw = body.w + 2 * pad
        fh = body.h + 2 * pad + 18
        out = _Box(fx + fw, max(head.h, fh), head.ax)
        out.parts += head.place(0, 0)
        out.parts.append(("frame", (fx, 0.0, fw, fh, f"thread: {b.lanes[0].label}")))
        tx = fx + pad + body.ax
        out.parts.append(("dash", ([(head.w, head.h / 2), (tx, head.h / 2), (tx, pad + 18)], True)))
        out.parts += body.place(fx + pad, pad + 18)
        if out.h > head.h:
            out.parts.append(("line", ([(head.ax, head.h), (head.ax, out.h)], False)))
        return out


# Kinds drawn as closing pills: nothing follows them in their sequence.
_CLOSED = frozenset((NodeKind.RETURN, NodeKind.BREAK, NodeKind.CONTINUE, NodeKind.THREAD_END))


def _svg_node(n: Node, x: float, y: float, w: float, h: float, lines: Sequence[str]) -> str:
    k = n.kind
    if k in (NodeKind.START, NodeKind.END):
        cx, cy, rad = x + w / 2, y + h / 2, w / 2
        shape = f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="{rad:.1f}"/>'
        if k == NodeKind.END:
            shape += f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="{rad - 4:.1f}"/>'
    elif k in (NodeKind.IF, NodeKind.SWITCH):
        shape = _poly([(x + w / 2, y), (x + w, y + h / 2), (x + w / 2, y + h), (x, y + h / 2)])
    elif k == NodeKind.FOR:
        e = 12
        shape = _poly([(x + e, y), (x + w - e, y), (x + w, y + h / 2), (x + w - e, y + h),
                       (x + e, y + h), (x, y + h / 2)])  # fmt: skip
    elif k == NodeKind.WAIT:
        e = 10
        shape = _poly([(x + e, y), (x + w, y), (x + w - e, y + h), (x, y + h)])
    elif k == NodeKind.WAITFOR:
        e = 10
        shape = _poly([(x + e, y), (x + w - e, y), (x + w, y + h), (x, y + h)])
    elif k in (NodeKind.ON, NodeKind.TIMEOUT):
        e = 12
        shape = _poly([(x, y), (x + w - e, y), (x + w, y + h / 2), (x + w - e, y + h),
                       (x, y + h)])  # fmt: skip
    elif k == NodeKind.GO:
        shape = (
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{h:.1f}"/>'
            f'<path d="M{x + 6:.1f},{y:.1f}v{h:.1f}M{x + w - 6:.1f},{y:.1f}v{h:.1f}"/>'
        )
    else:
        rx = (
            h / 2
            if k in (NodeKind.RETURN, NodeKind.BREAK, NodeKind.CONTINUE, NodeKind.THREAD_END)
            else 4
        )
        shape = f'<rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{h:.1f}" rx="{rx:.1f}"/>'
    cy = y + h / 2 - (len(lines) - 1) * _LINE_H / 2 + 4
    texts = "".join(
        f'<text x="{x + w / 2:.1f}" y="{cy + i * _LINE_H:.1f}">{html.escape(s)}</text>'
        for i, s in enumerate(lines)
    )
    return shape + texts


def _poly(pts: Sequence[tuple[float, float]]) -> str:
    return '<polygon points="' + " ".join(f"{x:.1f},{y:.1f}" for x, y in pts) + '"/>'


_SVG_CSS = """
svg.gorch-graph { font: 12px system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
.gorch-graph .node > :not(text):not(title) { fill: #fff; stroke: #475569; stroke-width: 1.2; }
.gorch-graph .node text { text-anchor: middle; fill: #0f172a; }
.gorch-graph .node.on > :not(text):not(title),
.gorch-graph .node.timeout > :not(text):not(title) { fill: #eff6ff; }
.gorch-graph .node.timeout > :not(text):not(title) { stroke-dasharray: 4 2; }
.gorch-graph .node.done > :not(text):not(title) { fill: #dcfce7; stroke: #15803d; }
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


def svg(graph: Graph, marks: Marks | None = None) -> str:
    """A standalone SVG picture of ``graph`` (laid out here: no Graphviz, no network).

    Each statement is a ``<g class="node KIND [current|done|failed]" id="gorch-nID"
    data-name="NAME">`` with a ``<title>``, so a page can style it, or find a statement by name.
    """
    lay = _Layout(graph, marks)
    body = lay.seq(graph.tree)
    margin, title_h = 16.0, 24.0
    width = body.w + 2 * margin
    height = body.h + 2 * margin + title_h
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="gorch-graph" role="img" '
        f'width="{width:.0f}" height="{height:.0f}" viewBox="0 0 {width:.0f} {height:.0f}" '
        f'aria-label="{html.escape(f"diagram of workflow {_printable(graph.workflow)}")}">',
        f"<title>{html.escape(f'workflow {_printable(graph.workflow)}')}</title>",
        f"<style>{_SVG_CSS}</style>",
        '<defs><marker id="gorch-arrow" viewBox="0 0 10 10" refX="9" refY="5" '
        'markerWidth="7" markerHeight="7" orient="auto-start-reverse">'
        '<path d="M0,0L10,5L0,10z" fill="#64748b"/></marker></defs>',
        f'<text class="title" x="{margin:.0f}" y="{margin + 4:.0f}">'
        f"{html.escape(_printable(graph.workflow))}</text>",
    ]
    nodes, edges = [], []
    for kind, p in body.place(margin, margin + title_h):
        if kind == "node":
            nid, x, y, w, h = p
            n = graph.nodes[nid]
            state = _state_of(nid, marks)
            cls = f"node {n.kind}" + (f" {state}" if state else "")
            name = f' data-name="{html.escape(_printable(n.name))}"' if n.name else ""
            tip = f"{n.kind} {_printable(n.name)}".strip()
            if marks is not None and marks.current.get(nid):
                tip += " — now: " + ", ".join(marks.current[nid])
            nodes.append(
                f'<g class="{cls}" id="gorch-{nid}"{name}><title>{html.escape(tip)}</title>'
                + _svg_node(n, x, y, w, h, _with_threads(n, marks))
                + "</g>"
            )
        elif kind in ("line", "back", "dash"):
            pts, head = p
            cls = {"line": "edge", "back": "edge back", "dash": "edge go"}[kind]
            path = "M" + "L".join(f"{x:.1f},{y:.1f}" for x, y in pts)
            arrow = ' marker-end="url(#gorch-arrow)"' if head else ""
            edges.append(f'<path class="{cls}" d="{path}"{arrow}/>')
        elif kind == "text":
            x, y, s, anchor = p
            edges.append(
                f'<text class="label" x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}">'
                f"{html.escape(_printable(s))}</text>"
            )
        elif kind == "frame":
            x, y, w, h, label = p
            edges.append(
                f'<rect class="frame" x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" '
                f'height="{h:.1f}" rx="6"/><text class="label" x="{x + 8:.1f}" '
                f'y="{y + h - 7:.1f}">{html.escape(_printable(label))}</text>'
            )
    out += edges + nodes + ["</svg>"]
    return "\n".join(out) + "\n"
