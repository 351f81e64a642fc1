"""The workflows and helpers the diagram tests share (``tests/test_graph*.py``).

The text renderers and the SVG are pinned by golden files in ``tests/golden/graph/``: the pizza
order, a workflow using every kind of statement (:class:`Every`, below), and the pizza order
with an instance's marks. After an intended change to the diagrams, rewrite the golden files
with

    GORCH_UPDATE_GOLDEN=1 python -m pytest tests/test_graph_text.py tests/test_graph_svg.py

and read the diff before committing it.
"""

from __future__ import annotations

import os
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from _pizza_names import PIZZA_NAMES

from examples.pizza.workflow import PizzaOrder
from gorch import (
    Break,
    Case,
    Continue,
    Default,
    For,
    Go,
    If,
    On,
    Return,
    S,
    Step,
    Switch,
    Timeout,
    Wait,
    WaitFor,
)
from gorch.engine import Engine
from gorch.graph import Edge, Graph, Marks, Node, position
from gorch.store.memory import MemoryStore

GOLDEN = Path(__file__).resolve().parent / "golden" / "graph"
UPDATE = os.environ.get("GORCH_UPDATE_GOLDEN") == "1"
SVG_NS = "http://www.w3.org/2000/svg"
G = f"{{{SVG_NS}}}g"
TEXT = f"{{{SVG_NS}}}text"

MARGHERITA = {"pizza": {"name": "margherita"}}
CONFIRM = {"manager": "Giulia", "amount": 20.0}


def check_golden(name: str, text: str) -> None:
    """``text`` is exactly the golden file ``name`` (with GORCH_UPDATE_GOLDEN=1: rewrite it)."""
    path = GOLDEN / name
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text.encode("utf-8"))
        return
    assert path.exists(), f"{path} is missing: run with GORCH_UPDATE_GOLDEN=1 to write it"
    expected = path.read_bytes().decode("utf-8")
    assert text == expected, (
        f"{name} differs from the golden file; if the change is intended, rerun with "
        "GORCH_UPDATE_GOLDEN=1 and review the diff"
    )


# --------------------------------------------------------------------------------------------
# The workflows drawn


@dataclass
class Parcel:
    sku: str
    qty: int = 1


@dataclass
class Every:
    """Every kind of statement once (and If both with and without an else)."""

    n: int = 0
    mode: str = ""
    log: list[str] = field(default_factory=list)

    def definition(self) -> Any:
        return S(
            Step("prepare", self.step),
            If(self.n > 10, "big",
                Step("handle big", self.step),
            ).elif_(self.n > 5, "medium",
                Step("handle medium", self.step),
            ).else_("small",
                Step("handle small", self.step),
            ),
            If(self.n < 0, "negative", Step("fix sign", self.step)),
            Switch(
                Case(self.mode == "a", "mode a", Step("run a", self.step)),
                Default("any other mode", Step("run other", self.step)),
            ),
            For("rounds", self.n < 3,
                Step("tick", self.step),
                If(self.n == 1, "skip one", Continue()),
                If(self.n == 2, "stop early", Break()),
                Step("after checks", self.step),
            ),
            Go("watcher",
                Wait("for a signal",
                    On("Signal", self.signal),
                    Timeout("no signal", 90, Return()),
                ),
                Step("note signal", self.step),
            ),
            Wait("for input",
                On("Deliver", self.deliver, roles=("Clerk", "Boss")),
                On("Ping", self.ping),
                On("Nudge", None, Step("nudged", self.step)),
                On("Abort", None, Return()),
                Timeout("too slow", timedelta(hours=1, minutes=30), Step("give up", self.step)),
            ),
            WaitFor("ready", self.n >= 0, self.step),
            Step("finish", self.step),
        )  # fmt: skip

    def step(self) -> None:
        self.n += 1

    def signal(self) -> None:
        self.log.append("signal")

    def deliver(self, parcel: Parcel) -> int:
        return parcel.qty

    def ping(self) -> None:
        self.log.append("ping")


EVERY_NAMES = {
    "prepare",
    "big",
    "handle big",
    "medium",
    "handle medium",
    "small",
    "handle small",
    "negative",
    "fix sign",
    "mode a",
    "run a",
    "any other mode",
    "run other",
    "rounds",
    "tick",
    "skip one",
    "stop early",
    "after checks",
    "watcher",
    "for a signal",
    "Signal",
    "no signal",
    "note signal",
    "for input",
    "Deliver",
    "Ping",
    "Nudge",
    "nudged",
    "Abort",
    "too slow",
    "give up",
    "ready",
    "finish",
}

DEFINITIONS = {"pizza": (PizzaOrder, PIZZA_NAMES), "every": (Every, EVERY_NAMES)}


# -- graph helpers -------------------------------------------------------------------------


def node(g: Graph, name: str) -> Node:
    return g.nodes[g.by_name[name]]


def of_kind(g: Graph, kind: str, thread: str | None = None) -> list[Node]:
    return [n for n in g.nodes.values() if n.kind == kind and thread in (None, n.thread)]


def out(g: Graph, nid: str) -> list[Edge]:
    return [e for e in g.edges if e.src == nid]


def into(g: Graph, nid: str) -> list[Edge]:
    return [e for e in g.edges if e.dst == nid]


def edge(g: Graph, src: str, dst: str) -> Edge:
    found = [e for e in g.edges if (e.src, e.dst) == (src, dst)]
    assert len(found) == 1, (src, dst, found)
    return found[0]


def ancestors(g: Graph, nid: str) -> Iterator[str]:
    parent = g.nodes[nid].parent
    while parent:
        yield parent
        parent = g.nodes[parent].parent


def enclosing(g: Graph, nid: str, kind: str) -> Node:
    return next(g.nodes[p] for p in ancestors(g, nid) if g.nodes[p].kind == kind)


def thread_end(g: Graph, thread: str) -> Node:
    (tend,) = of_kind(g, "thread-end", thread)
    return tend


def reachable(g: Graph) -> set[str]:
    seen = {g.start}
    todo = [g.start]
    while todo:
        for e in out(g, todo.pop()):
            if e.dst not in seen:
                seen.add(e.dst)
                todo.append(e.dst)
    return seen


def check_invariants(g: Graph) -> None:
    """What holds for the graph of every valid definition."""
    assert g.start == "n0" and g.end == "n1"
    assert g.nodes["n0"].kind == "start" and g.nodes["n1"].kind == "end"
    assert sorted(g.nodes, key=lambda i: int(i[1:])) == [f"n{i}" for i in range(len(g.nodes))]
    for nid, n in g.nodes.items():
        assert n.id == nid and n.lines and all(n.lines)
        if n.parent:
            assert n.parent in g.nodes
            assert g.nodes[n.parent].kind in ("if", "switch", "for", "wait", "go"), n
    for name, nid in g.by_name.items():
        assert nid in g.nodes
        n = g.nodes[nid]
        assert n.name == name or n.kind in ("if", "switch"), (name, n)  # a case: its branch
    for e in g.edges:
        assert e.src in g.nodes and e.dst in g.nodes, e
        assert e.kind in ("flow", "back", "go", "jump"), e
    for n in g.nodes.values():
        if n.kind in ("end", "thread-end"):
            assert out(g, n.id) == [], n
        else:
            assert out(g, n.id), f"{n} leads nowhere"
        if n.kind == "break":
            loop = enclosing(g, n.id, "for")
            (e,) = out(g, n.id)
            assert e.dst != loop.id and loop.id not in ancestors(g, e.dst), (n, e)
            assert g.nodes[e.dst].thread == n.thread
        elif n.kind == "continue":
            loop = enclosing(g, n.id, "for")
            assert out(g, n.id) == [Edge(n.id, loop.id, "", "back")]
        elif n.kind == "return":
            end = g.end if n.thread == "_main_" else thread_end(g, n.thread).id
            assert out(g, n.id) == [Edge(n.id, end, "", "jump")]
        elif n.kind == "go":
            (go,) = [e for e in out(g, n.id) if e.kind == "go"]
            assert g.nodes[go.dst].thread == n.name
            assert thread_end(g, n.name).parent == n.id
        if n.thread != "_main_":
            go_node = g.nodes[g.by_name[n.thread]]
            assert go_node.kind == "go" and go_node.id in ancestors(g, n.id), n


# -- instances ------------------------------------------------------------------------------


def confirmed_order() -> tuple[Engine, str]:
    """A pizza order confirmed by the manager: main at 'for a cook', payment at 'for payment'."""
    engine = Engine(MemoryStore(), {"pizza": PizzaOrder})
    engine.start("pizza", PizzaOrder(), "o1")
    engine.send("o1", "AddToCart", MARGHERITA)
    engine.send("o1", "SubmitCart")
    engine.send("o1", "ConfirmOrder", CONFIRM)
    return engine, "o1"


def marks_of(engine: Engine, id: str, g: Graph) -> Marks:
    return position(g, engine.get(id), engine.history(id))


# -- reading the texts ----------------------------------------------------------------------


def mermaid_subgraphs(text: str) -> dict[str, set[str]]:
    groups: dict[str, set[str]] = {}
    current = None
    for line in text.splitlines():
        if m := re.match(r"\s*subgraph (\w+)\[", line):
            current = m[1]
            groups[current] = set()
        elif line.strip() == "end":
            current = None
        elif current is not None:
            groups[current].add(re.match(r"\s*(n\d+)", line)[1])  # type: ignore[index]
    return groups


def dot_clusters(text: str) -> dict[str, set[str]]:
    groups: dict[str, set[str]] = {}
    current = None
    for line in text.splitlines():
        if line.strip().startswith("subgraph "):
            current = line.split()[1]
            groups[current] = set()
        elif line.strip() == "}":
            current = None
        elif current is not None and (m := re.match(r"\s*(n\d+) \[", line)):
            groups[current].add(m[1])
    return groups


def parse_svg(text: str) -> ET.Element:
    root = ET.fromstring(text)
    assert root.tag == f"{{{SVG_NS}}}svg"
    return root


def svg_nodes(root: ET.Element) -> dict[str, ET.Element]:
    """The node groups by graph node id (``gorch-n3`` -> ``n3``)."""
    groups = [g for g in root.iter(G) if (g.get("id") or "").startswith("gorch-")]
    out = {g.get("id", "").removeprefix("gorch-"): g for g in groups}
    assert len(out) == len(groups)  # no id twice
    return out


def classes(el: ET.Element) -> set[str]:
    return set((el.get("class") or "").split())


# -- names that need escaping ---------------------------------------------------------------

ODD = 'say "hi" <b>#1</b> & C:\\temp\\'


@dataclass
class Odd:
    def definition(self) -> Any:
        return S(
            Step(ODD, self.step),
            If(True, f"case {ODD}", Step(f"inner {ODD}", self.step)),
            Go(f"thread {ODD}", Wait(f"wait {ODD}", On(f"Event {ODD}", None))),
            WaitFor(f"until {ODD}", True),
        )

    def step(self) -> None: ...


MERMAID_NODE = r'\s*(n\d+)(?:\(\(\(|\(\(|\(\[|\[\[|\[/|\[\\|\[|\{\{|\{|>)"(.*)".*'
"""A node's line: its id, an opening shape, its quoted label, the closing shape."""
_MM_ENTITIES = {"quot": '"', "lt": "<", "gt": ">", "35": "#", "amp": "&"}


def unmermaid(label: str) -> list[str]:
    """The lines of a Mermaid label, entities decoded; refuses raw characters that would break
    the syntax."""
    lines = label.split("<br/>")
    for line in lines:
        assert '"' not in line and "<" not in line and ">" not in line, line
        assert not re.search(r"#(?!(?:quot|lt|gt|35|amp);)", line), line
    return [re.sub(r"#(\w+);", lambda m: _MM_ENTITIES[m[1]], line) for line in lines]


def undot(quoted: str) -> str:
    """A DOT double-quoted string's text (``\\"`` a quote, ``\\\\`` a backslash, ``\\n`` a line
    break)."""
    assert quoted[0] == quoted[-1] == '"'
    body = quoted[1:-1]
    assert re.fullmatch(r'(?:[^"\\]|\\.)*', body), body  # every quote and backslash escaped
    return re.sub(r"\\(.)", lambda m: "\n" if m[1] == "n" else m[1], body)


def dot_quote(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'
