"""The SVG's layout: where each node, edge and label of the picture stands.

The layout tree of a :class:`~gorch.graph.Graph` is laid out bottom up. Each statement or block
becomes a :class:`Piece`: a size, the x of the axis control runs down, and what to draw, as
*parts* (:class:`NodeBox`, :class:`Path`, :class:`Label`, :class:`Frame`: one class per kind of
thing drawn, which :mod:`._svg_draw` turns into SVG elements) and the smaller pieces inside it,
each at an offset from its corner. Statements stack on one axis; the lanes of a branch stand
side by side and join below; a loop's turn runs up its left side and ``done`` down its right; a
``Go``'s thread stands in a frame to the right of its node.

All sizes are multiples of small powers of two (7px a character, 15px a line, halves of gaps),
so adding offsets is exact in any order, and the same graph always gives the same picture.
"""

from __future__ import annotations

from enum import StrEnum
from typing import assert_never

from attrs import define, field, frozen

from gorch.graph._highlight import label
from gorch.graph._model import Branch, Fork, Graph, Lane, Loop, Marks, NodeKind, Seq

CHAR_W = 7.0  # px per character at the 12px sans-serif the picture uses (a safe average)
LINE_H = 15.0
_GAP = 26.0  # vertical space between statements
_LANE_GAP = 24.0  # horizontal space between branches
_CHANNEL = 22.0  # room beside a loop for its back edge

Point = tuple[float, float]

# Kinds control does not leave at the bottom: nothing is joined below them in their sequence.
_CLOSED = frozenset(
    (NodeKind.RETURN, NodeKind.BREAK, NodeKind.CONTINUE, NodeKind.END, NodeKind.THREAD_END)
)


# Kinds with pointed or slanted sides, which need room beside their label.
_POINTED = frozenset(
    (NodeKind.FOR, NodeKind.WAIT, NodeKind.WAITFOR, NodeKind.ON, NodeKind.TIMEOUT,
     NodeKind.ON_INSTANCE)
)  # fmt: skip


class PathStyle(StrEnum):
    """What a path is, as its CSS class."""

    FLOW = "edge"  # control going on
    BACK = "edge back"  # a loop's next turn
    GO = "edge go"  # a Go starting its thread


@frozen
class NodeBox:
    """The box of node ``nid``, its top left corner at ``x``, ``y`` (as every part's, from the
    corner of the piece it is in)."""

    nid: str
    x: float
    y: float
    w: float
    h: float


@frozen
class Path:
    """An edge through ``points``, with an arrow head at its last point if ``arrow``."""

    points: tuple[Point, ...]
    arrow: bool
    style: PathStyle = PathStyle.FLOW


@frozen
class Label:
    """A branch's or a loop's label, starting at ``x`` on the baseline ``y``."""

    x: float
    y: float
    text: str


@frozen
class Frame:
    """The dashed frame of a ``Go``'s thread, labelled at its bottom left."""

    x: float
    y: float
    w: float
    h: float
    label: str


Part = NodeBox | Path | Label | Frame


@frozen
class Placed:
    """A piece inside another, its corner at ``dx``, ``dy`` from the outer piece's."""

    dx: float
    dy: float
    piece: Piece


@define
class Piece:
    """A laid out statement or block: its size, the x of its axis, and what it draws."""

    w: float
    h: float
    ax: float
    open: bool = True  # control can leave at the bottom
    parts: list[Part | Placed] = field(factory=list)  # at places from the piece's corner

    def place(self, piece: Piece, dx: float, dy: float) -> None:
        """Put ``piece`` inside this one, its corner at ``dx``, ``dy``."""
        self.parts.append(Placed(dx, dy, piece))

    def parts_at(self, x: float, y: float) -> list[tuple[float, float, Part]]:
        """Every part of the piece and of the pieces inside it, in the order they were added,
        each with where the corner of the piece it is in stands, this piece's being at ``x``,
        ``y``: a part is drawn at its own place plus that offset."""
        out: list[tuple[float, float, Part]] = []
        self._collect(x, y, out)
        return out

    def _collect(self, x: float, y: float, out: list[tuple[float, float, Part]]) -> None:
        for part in self.parts:
            if isinstance(part, Placed):
                part.piece._collect(x + part.dx, y + part.dy, out)
            else:
                out.append((x, y, part))


def layout(graph: Graph, marks: Marks | None) -> Piece:
    """The whole picture of ``graph`` but its title and margins (the marks add label lines)."""
    return _Layout(graph, marks).seq(graph.tree)


class _Layout:
    def __init__(self, graph: Graph, marks: Marks | None) -> None:
        self.g = graph
        self.marks = marks

    def size(self, nid: str) -> tuple[float, float]:
        n = self.g.nodes[nid]
        lines = label(n, self.marks)
        text = max(len(x) for x in lines) * CHAR_W
        h = len(lines) * LINE_H + 12
        if n.kind in (NodeKind.START, NodeKind.END):
            d = max(text + 14, 34.0)
            return d, d
        if n.kind in (NodeKind.IF, NodeKind.SWITCH):
            return text + 44, h + 16
        if n.kind in _POINTED:
            return text + 40, h
        if n.kind == NodeKind.CHILD:  # a double border
            return text + 32, h + 6
        return text + 24, h

    def node(self, nid: str) -> Piece:
        w, h = self.size(nid)
        closed = self.g.nodes[nid].kind in _CLOSED
        return Piece(w, h, w / 2, not closed, [NodeBox(nid, 0.0, 0.0, w, h)])

    def seq(self, seq: Seq) -> Piece:
        return self.stack([self.item(it) for it in seq.items])

    def item(self, it: str | Branch | Loop | Fork) -> Piece:
        match it:
            case str():
                return self.node(it)
            case Branch():
                return self.branch(it)
            case Loop():
                return self.loop(it)
            case Fork():
                return self.fork(it)
            case _:
                assert_never(it)

    def stack(self, pieces: list[Piece]) -> Piece:
        """Pieces one below the other on a common axis, joined where control goes on."""
        if not pieces:
            return Piece(0, 0, 0)
        left = max(p.ax for p in pieces)
        right = max(p.w - p.ax for p in pieces)
        out = Piece(left + right, 0, left)
        y = 0.0
        for i, p in enumerate(pieces):
            if i:
                if pieces[i - 1].open:
                    out.parts.append(Path(((left, y), (left, y + _GAP)), True))
                y += _GAP
            out.place(p, left - p.ax, y)
            y += p.h
        out.h, out.open = y, pieces[-1].open
        return out

    def lane(self, lane: Lane) -> Piece:
        """A branch's lane: its event's node, if it has one, over its body."""
        body = self.seq(lane.body)
        if not lane.head:
            return body
        first = self.node(lane.head)
        return self.stack([first, body]) if body.h else first

    def branch(self, b: Branch) -> Piece:
        head = self.node(b.head)
        lanes = [(self.lane(lane), lane.label) for lane in b.lanes]
        label_h = 16.0 if any(text for _, text in lanes) else 0.0
        widths = [max(p.w, len(text) * CHAR_W + 8, 30.0) for p, text in lanes]
        total = sum(widths) + _LANE_GAP * (len(lanes) - 1)
        w = max(total, head.w)
        ax = w / 2
        out = Piece(w, 0, ax)
        out.place(head, ax - head.ax, 0)
        bus = head.h + _GAP / 2
        top = bus + _GAP / 2 + label_h
        x = (w - total) / 2
        ends: list[Point] = []  # where open lanes leave their bottom
        for (p, text), lw in zip(lanes, widths, strict=True):
            lx = x + lw / 2
            out.parts.append(Path(((ax, head.h), (ax, bus), (lx, bus), (lx, top)), True))
            if text:
                out.parts.append(Label(lx + 4, bus + 13, text))
            out.place(p, lx - p.ax, top)
            if p.open:
                ends.append((lx, top + p.h))
            x += lw + _LANE_GAP
        bottom = top + max(p.h for p, _ in lanes) + _GAP / 2
        for lx, y in ends:
            out.parts.append(Path(((lx, y), (lx, bottom), (ax, bottom)), False))
        out.h = bottom
        out.open = bool(ends)
        return out

    def loop(self, b: Loop) -> Piece:
        head = self.node(b.head)
        body = self.seq(b.body)
        left = max(head.ax, body.ax) + _CHANNEL
        right = max(head.w - head.ax, body.w - body.ax) + _CHANNEL
        out = Piece(left + right, 0, left)
        out.place(head, left - head.ax, 0)
        top = head.h + _GAP
        out.parts.append(Path(((left, head.h), (left, top)), True))
        out.parts.append(Label(left + 4, head.h + 14, "repeat"))
        out.place(body, left - body.ax, top)
        bottom = top + body.h
        if body.open:  # the next turn: down, left, up beside the body, back into the head
            x = left - body.ax - _CHANNEL / 2
            back = ((left, bottom), (left, bottom + _GAP / 2), (x, bottom + _GAP / 2),
                    (x, head.h / 2), (left - head.w / 2, head.h / 2))  # fmt: skip
            out.parts.append(Path(back, True, PathStyle.BACK))
        # done: from the head's right, down the right channel, to the axis below
        rx = left + max(head.w - head.ax, body.w - body.ax) + _CHANNEL / 2
        end = bottom + _GAP
        done = ((left + head.w / 2, head.h / 2), (rx, head.h / 2), (rx, end), (left, end))
        out.parts.append(Path(done, False))
        out.parts.append(Label(left + head.w / 2 + 4, head.h / 2 - 4, "done"))
        out.h = end
        return out

    def fork(self, b: Fork) -> Piece:
        head = self.node(b.head)
        body = self.seq(Seq([*b.body.items, b.end]))
        pad = 12.0
        fx = head.w + _LANE_GAP * 1.5
        fw = body.w + 2 * pad
        fh = body.h + 2 * pad + 18
        out = Piece(fx + fw, max(head.h, fh), head.ax)
        out.place(head, 0, 0)
        out.parts.append(Frame(fx, 0.0, fw, fh, f"thread: {b.thread}"))
        tx = fx + pad + body.ax
        start = ((head.w, head.h / 2), (tx, head.h / 2), (tx, pad + 18))
        out.parts.append(Path(start, True, PathStyle.GO))
        out.place(body, fx + pad, pad + 18)
        if out.h > head.h:
            out.parts.append(Path(((head.ax, head.h), (head.ax, out.h)), False))
        return out
