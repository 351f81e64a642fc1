"""Building a :class:`~gorch.graph.Graph` from a workflow's definition.

:func:`build` reads the definition once, statement by statement, and makes both views of the
graph at the same time (see :mod:`._model`): each statement adds its node, the edges into it
from wherever control was (the *exits* of what came before), and its place in the layout tree.
Each kind of statement has its own method of :class:`_Builder`, which returns the exits control
leaves it by: none after a ``Return``, ``Break`` or ``Continue``; every branch's end after an
``If``; the loop's ``done`` and its ``Break`` s after a ``For``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import timedelta
from typing import Any
from urllib.parse import quote

from attrs import define, evolve, field

from gorch.catalog import NO_PAYLOAD, EventInfo, WorkflowInfo, describe
from gorch.children import Child, OnInstance, ended_event
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
from gorch.graph._model import Branch, Edge, Fork, Graph, Lane, Loop, Node, NodeKind, Seq, printable
from gorch.state import MAIN_THREAD

CHILD_LINK = "../../workflows/{workflow}/diagram"
"""Where a ``Child``'s node links to by default: the child workflow's diagram as the HTTP API
serves it (``GET /workflows/{workflow}/diagram``), relative to the API's own diagram routes
(``/workflows/NAME/diagram``, ``/instances/ID/diagram``), so it holds behind a path prefix."""


def build(name: str, cls: type, data: Any = None, *, child_link: str | None = CHILD_LINK) -> Graph:
    """The diagram of workflow class ``cls`` registered as ``name``.

    Args:
        name: the registered name.
        cls: the workflow class.
        data: an instance's workflow object, to draw what its definition reads from its data
            (its own timeouts); by default a stand-in instance's.
        child_link: the link of a ``Child``'s node (``Node.link``, a Mermaid ``click``, a DOT
            ``href``, an SVG ``<a>``): ``{workflow}`` is replaced by the child workflow's name,
            URL-encoded. By default :data:`CHILD_LINK`, the HTTP API's diagram of that
            workflow; None or "" for no link.

    Raises:
        DefinitionError: the definition cannot be read, or it is invalid.
    """
    return _Builder(describe(name, cls), data, child_link or "").graph()


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


_Exit = tuple[str, str, str]
"""A way control leaves what was built so far: (source node, label, kind) of the edge the next
statement gets."""


@define
class _Scope:
    """Where a statement stands: what it joins, and where its jumps go."""

    out: Seq  # the sequence of the layout tree it is appended to
    thread: str
    parent: str  # the enclosing loop, branch, wait or Go node ("" at top level)
    end: str  # where a Return goes: the workflow's end, or its thread's end
    loop: str = ""  # the innermost enclosing For in this thread ("" if none)
    breaks: list[_Exit] = field(factory=list)  # that loop's Breaks, which leave it

    def inside(self, out: Seq, parent: str) -> _Scope:
        """The scope of a block's body: the same thread, loop and end."""
        return _Scope(out, self.thread, parent, self.end, self.loop, self.breaks)


class _Builder:
    def __init__(self, info: WorkflowInfo, data: Any = None, child_link: str = "") -> None:
        self.info = info
        self.data = data
        self.child_link = child_link
        self.nodes: dict[str, Node] = {}
        self.edges: list[Edge] = []
        self.by_name: dict[str, str] = {}
        self.count = 0

    def reserve(self) -> str:
        """The next node id, for a node added later (an end, listed after what it closes)."""
        nid = f"n{self.count}"
        self.count += 1
        return nid

    def new(
        self,
        kind: NodeKind,
        name: str,
        lines: Iterable[str],
        thread: str,
        parent: str,
        nid: str = "",
    ) -> str:
        """Node ``nid`` (by default the next id), its name found by ``by_name``."""
        if not nid:  # the next id, as reserve() gives it (inline: this runs for every node)
            nid = f"n{self.count}"
            self.count += 1
        self.nodes[nid] = Node(nid, kind, name, tuple(map(printable, lines)), thread, parent)
        if name:
            self.by_name[name] = nid
        return nid

    def link(self, exits: Iterable[_Exit], dst: str) -> None:
        for src, label, kind in exits:
            self.edges.append(Edge(src, dst, label, kind))

    def enter(
        self, kind: NodeKind, name: str, lines: Iterable[str], exits: list[_Exit], scope: _Scope
    ) -> str:
        """A statement's node, with the edges into it from ``exits``."""
        nid = self.new(kind, name, lines, scope.thread, scope.parent)
        self.link(exits, nid)
        return nid

    def stand(
        self, kind: NodeKind, name: str, lines: Iterable[str], exits: list[_Exit], scope: _Scope
    ) -> str:
        """A plain statement: its node, with the edges into it, in its place in the sequence."""
        nid = self.enter(kind, name, lines, exits, scope)
        scope.out.items.append(nid)
        return nid

    def graph(self) -> Graph:
        tree = self.info.definition() if self.data is None else self.data.definition()
        start = self.new(NodeKind.START, "", ["start"], MAIN_THREAD, "")
        end = self.reserve()
        seq = Seq([start])
        exits = self.seq(_kids(tree), [(start, "", "flow")], _Scope(seq, MAIN_THREAD, "", end))
        self.new(NodeKind.END, "", ["end"], MAIN_THREAD, "", end)
        self.link(exits, end)
        seq.items.append(end)
        return Graph(self.info.name, self.nodes, self.edges, self.by_name, seq)

    def seq(self, stmts: Sequence[Any], exits: list[_Exit], scope: _Scope) -> list[_Exit]:
        """The statements ``stmts`` one after the other, entered by ``exits``; returns theirs."""
        for s in stmts:
            method = _STATEMENTS.get(getattr(s, "_kind", -1))
            if method is None:
                raise TypeError(f"not a statement: {s!r}")  # validate() refused it already
            exits = method(self, s, exits, scope)
        return exits

    def section(self, s: Any, exits: list[_Exit], scope: _Scope) -> list[_Exit]:
        return self.seq(s.kids, exits, scope)

    def step(self, s: Any, exits: list[_Exit], scope: _Scope) -> list[_Exit]:
        """A ``Step`` or a ``WaitFor``: one node, and control goes on after it."""
        if s._kind == K_STEP:
            nid = self.stand(NodeKind.STEP, s.name, [s.name], exits, scope)
        else:
            nid = self.stand(NodeKind.WAITFOR, s.name, [f"wait for: {s.name}"], exits, scope)
        return [(nid, "", "flow")]

    # A jump's second label line says where it goes (the SVG draws no edge for it).

    def return_(self, s: Any, exits: list[_Exit], scope: _Scope) -> list[_Exit]:
        where = "ends the workflow" if scope.thread == MAIN_THREAD else f"ends {scope.thread}"
        nid = self.stand(NodeKind.RETURN, "", [NodeKind.RETURN, where], exits, scope)
        self.edges.append(Edge(nid, scope.end, "", "jump"))
        return []

    def break_(self, s: Any, exits: list[_Exit], scope: _Scope) -> list[_Exit]:
        lines = [NodeKind.BREAK, *self.loop_line("leaves", scope)]
        nid = self.stand(NodeKind.BREAK, "", lines, exits, scope)
        if scope.loop:
            scope.breaks.append((nid, "", "flow"))
        return []

    def continue_(self, s: Any, exits: list[_Exit], scope: _Scope) -> list[_Exit]:
        lines = [NodeKind.CONTINUE, *self.loop_line("next turn of", scope)]
        nid = self.stand(NodeKind.CONTINUE, "", lines, exits, scope)
        if scope.loop:
            self.edges.append(Edge(nid, scope.loop, "", "back"))
        return []

    def loop_line(self, what: str, scope: _Scope) -> list[str]:
        """``what`` a ``Break`` or ``Continue`` does to its loop, if it is in one."""
        return [f"{what} {self.nodes[scope.loop].name}"] if scope.loop else []

    def branch(self, s: Any, exits: list[_Exit], scope: _Scope) -> list[_Exit]:
        """An ``If`` or ``Switch``: one lane per case, and ``otherwise`` past it if it has no
        ``else_``/``Default``."""
        kind = NodeKind.IF if s._kind == K_IF else NodeKind.SWITCH
        head = self.enter(kind, "", [kind], exits, scope)
        block = Branch(head)
        scope.out.items.append(block)
        result: list[_Exit] = []
        for case in s.kids:
            lane = Lane(case.name, "", Seq())
            block.lanes.append(lane)
            self.by_name[case.name] = head
            inner = scope.inside(lane.body, head)
            result += self.seq(case.kids, [(head, case.name, "flow")], inner)
        if not any(isinstance(c, Default) for c in s.kids):
            block.lanes.append(Lane("otherwise", "", Seq()))
            result.append((head, "otherwise", "flow"))
        return result

    def loop(self, s: Any, exits: list[_Exit], scope: _Scope) -> list[_Exit]:
        """A ``For``: ``repeat`` into the body, whose ends turn back; ``done`` past it."""
        head = self.enter(NodeKind.FOR, s.name, [f"loop: {s.name}"], exits, scope)
        block = Loop(head)
        scope.out.items.append(block)
        inner = _Scope(block.body, scope.thread, head, scope.end, head)
        body = self.seq(s.kids, [(head, "repeat", "flow")], inner)
        self.link([(src, label, "back") for src, label, _ in body], head)
        return [(head, "done", "flow"), *inner.breaks]

    def wait(self, s: Any, exits: list[_Exit], scope: _Scope) -> list[_Exit]:
        """A ``Wait``: an edge to each of its events, then each event's body. (A ``Child`` is
        a ``Wait`` too, drawn as one node of its own.)"""
        if isinstance(s, Child):
            return self.child(s, exits, scope)
        head = self.enter(NodeKind.WAIT, s.name, [f"wait: {s.name}"], exits, scope)
        block = Branch(head)
        scope.out.items.append(block)
        result: list[_Exit] = []
        for case in s.kids:
            if isinstance(case, OnInstance):
                kind, lines = NodeKind.ON_INSTANCE, _instance_lines(case)
            else:
                kind = NodeKind.TIMEOUT if case._kind == K_TIMEOUT else NodeKind.ON
                lines = _event_lines(case, self.info.events.get(case.name))
            nid = self.new(kind, case.name, lines, scope.thread, head)
            self.edges.append(Edge(head, nid))
            lane = Lane("", nid, Seq())
            block.lanes.append(lane)
            result += self.seq(case.kids, [(nid, "", "flow")], scope.inside(lane.body, head))
        return result

    def child(self, s: Child, exits: list[_Exit], scope: _Scope) -> list[_Exit]:
        """A ``Child``: one node naming the child's workflow, linked to its diagram; control
        goes on after it when the child ended. Its end event (``"NAME ended"``) leads to the
        same node, as history names it."""
        lines = [f"child: {s.name} → {s.workflow}"]
        handler = _handler_name(s.child_handler)
        if handler:
            lines.append(f"{handler}(ChildResult)")
        nid = self.stand(NodeKind.CHILD, s.name, lines, exits, scope)
        link = self.child_link.replace("{workflow}", quote(s.workflow, safe=""))
        self.nodes[nid] = evolve(self.nodes[nid], workflow=s.workflow, link=link)
        self.by_name[ended_event(s.name)] = nid
        return [(nid, "", "flow")]

    def go(self, s: Any, exits: list[_Exit], scope: _Scope) -> list[_Exit]:
        """A ``Go``: its thread, with its own end (no loop reaches into it); control goes on
        after the ``Go`` at once."""
        head = self.enter(NodeKind.GO, s.name, [f"go: {s.name}"], exits, scope)
        end = self.reserve()
        block = Fork(head, s.name, end)
        scope.out.items.append(block)
        body = self.seq(s.kids, [(head, "", "go")], _Scope(block.body, s.name, head, end))
        self.new(NodeKind.THREAD_END, "", ["thread ends"], s.name, head, end)
        self.link(body, end)
        return [(head, "", "flow")]


_Method = Callable[[_Builder, Any, list[_Exit], _Scope], list[_Exit]]

_STATEMENTS: dict[int, _Method] = {
    K_SECTION: _Builder.section,
    K_STEP: _Builder.step,
    K_WAITFOR: _Builder.step,
    K_RETURN: _Builder.return_,
    K_BREAK: _Builder.break_,
    K_CONTINUE: _Builder.continue_,
    K_IF: _Builder.branch,
    K_SWITCH: _Builder.branch,
    K_FOR: _Builder.loop,
    K_WAIT: _Builder.wait,
    K_GO: _Builder.go,
}


def _kids(tree: Any) -> Sequence[Any]:
    return tree.kids if getattr(tree, "_kind", None) == K_SECTION else (tree,)


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
        hname = _handler_name(handler)
        payload = ev.payload
        arg = "" if payload is NO_PAYLOAD else _type_name(payload)
        detail.append(f"{hname}({arg})")
    if ev is not None and ev.roles:
        detail.append("by " + " or ".join(ev.roles))
    if detail:
        lines.append(" · ".join(detail))
    return lines


def _instance_lines(case: OnInstance) -> list[str]:
    """An ``OnInstance``'s label: its event, what it waits for of which instance (``it`` when
    the id is computed), and its handler."""
    who = case.target if isinstance(case.target, str) else "it"
    kind, _, what = case.until.partition(":")
    if kind == "at":
        when = f"(when {who} is at statement {what})"
    elif kind == "status":
        when = f"(when {who} has status {' or '.join(what.split(','))})"
    else:
        when = f"(when {who} ends)"
    lines = [f"on {case.name}", when]
    handler = _handler_name(getattr(case.handler, "user", None))
    if handler:
        lines.append(f"{handler}(ChildResult)")
    return lines


def _handler_name(handler: Any) -> str:
    """The name a label gives a handler ("" for none)."""
    if handler is None:
        return ""
    return getattr(handler, "__name__", None) or type(handler).__name__


def _type_name(t: Any) -> str:
    name = getattr(t, "__name__", None)
    if name and not getattr(t, "__args__", None):
        return "any" if name == "_Any" else str(name)
    return str(t).replace("typing.", "")
