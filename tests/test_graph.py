"""``gorch.graph``: workflow diagrams (Mermaid, Graphviz DOT, SVG) and an instance's marks on them.

The text renderers are pinned by golden files in ``tests/golden/graph/``: the pizza order, a
workflow using every kind of statement (:class:`Every`, below), and the pizza order with an
instance's marks. After an intended change to the diagrams, rewrite the golden files with

    GORCH_UPDATE_GOLDEN=1 python -m pytest tests/test_graph.py

and read the diff before committing it. Everything else here holds whatever the golden files say:
the structure of the graph (which edge leads where), the SVG as XML, the marks of real instances
run by the engine, escaping, and a property test over random definitions.
"""

from __future__ import annotations

import doctest
import itertools
import os
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, ClassVar

import pytest
from _pizza_names import PIZZA_NAMES
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import gorch.graph
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
    Section,
    Step,
    Switch,
    Timeout,
    Wait,
    WaitFor,
)
from gorch.engine import Engine, RunStatus
from gorch.graph import Edge, Graph, Marks, Node, build, dot, duration, mermaid, position, render
from gorch.graph import svg as draw_svg
from gorch.retry import RetryPolicy
from gorch.store.memory import MemoryStore

GOLDEN = Path(__file__).resolve().parent / "golden" / "graph"
UPDATE = os.environ.get("GORCH_UPDATE_GOLDEN") == "1"
SVG_NS = "http://www.w3.org/2000/svg"
G = f"{{{SVG_NS}}}g"
TEXT = f"{{{SVG_NS}}}text"

MARGHERITA = {"pizza": {"name": "margherita"}}
CONFIRM = {"manager": "Giulia", "amount": 20.0}
PAY = {"amount": 20.0, "address": "Via Roma 1"}
KITCHEN: list[tuple[str, Any]] = [
    ("StartCooking", {"cook": "Mario"}),
    ("Cooked", None),
    ("TakeForDelivery", None),
    ("Delivered", None),
]


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


@pytest.fixture(scope="module")
def pizza() -> Graph:
    return build("pizza", PizzaOrder)


@pytest.fixture(scope="module")
def every() -> Graph:
    return build("every", Every)


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


# --------------------------------------------------------------------------------------------
# Golden files


@pytest.mark.parametrize("workflow", ["pizza", "every"])
@pytest.mark.parametrize(("fmt", "suffix"), [("mermaid", "mmd"), ("dot", "dot")])
def test_golden_diagrams(workflow: str, fmt: str, suffix: str) -> None:
    cls, _ = DEFINITIONS[workflow]
    check_golden(f"{workflow}.{suffix}", render(build(workflow, cls), fmt))


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


def test_golden_marks_of_an_order_in_the_middle(pizza: Graph) -> None:
    engine, id = confirmed_order()
    marks = marks_of(engine, id, pizza)
    check_golden("pizza_confirmed.mmd", mermaid(pizza, marks))


# --------------------------------------------------------------------------------------------
# Structure


@pytest.mark.parametrize("workflow", ["pizza", "every"])
def test_every_named_statement_has_a_node_and_is_drawn(workflow: str) -> None:
    cls, names = DEFINITIONS[workflow]
    g = build(workflow, cls)
    assert set(g.by_name) == names
    texts = {fmt: render(g, fmt) for fmt in ("mermaid", "dot", "svg")}
    for name in names:
        for fmt, text in texts.items():
            assert name in text, (fmt, name)
    check_invariants(g)
    assert reachable(g) == set(g.nodes)  # no dead code in these two


def test_node_kinds_and_labels_of_every(every: Graph) -> None:
    kinds = {n.kind for n in every.nodes.values()}
    assert kinds == {
        "start", "end", "thread-end", "step", "if", "switch", "for", "break", "continue",
        "return", "wait", "on", "timeout", "waitfor", "go",
    }  # fmt: skip
    assert node(every, "prepare").lines == ("prepare",)
    assert node(every, "rounds").lines == ("loop: rounds",)
    assert node(every, "for input").lines == ("wait: for input",)
    assert node(every, "ready").lines == ("wait for: ready",)
    assert node(every, "watcher").lines == ("go: watcher",)
    assert node(every, "big").lines == ("if",) and node(every, "mode a").lines == ("switch",)
    # events: the handler with its payload type (or none), then who may send it
    assert node(every, "Deliver").lines == ("on Deliver", "deliver(Parcel) · by Clerk or Boss")
    assert node(every, "Ping").lines == ("on Ping", "ping()")
    assert node(every, "Nudge").lines == ("on Nudge",)  # no handler, no roles
    assert node(every, "Abort").lines == ("on Abort",)
    assert node(every, "too slow").lines == ("timeout: too slow", "after 1h30m")
    assert node(every, "no signal").lines == ("timeout: no signal", "after 1m30s")
    assert node(every, "no signal").kind == "timeout" and node(every, "Ping").kind == "on"
    # where a jump goes is said in its label (the SVG draws no edge for it)
    (main_return,) = of_kind(every, "return", "_main_")
    (thread_return,) = of_kind(every, "return", "watcher")
    assert main_return.lines == ("return", "ends the workflow")
    assert thread_return.lines == ("return", "ends watcher")
    assert [n.lines for n in of_kind(every, "break")] == [("break", "leaves rounds")]
    assert [n.lines for n in of_kind(every, "continue")] == [("continue", "next turn of rounds")]


def test_pizza_labels(pizza: Graph) -> None:
    assert node(pizza, "AddToCart").lines == (
        "on AddToCart",
        "add_to_cart(AddToCart) · by Customer",
    )
    assert node(pizza, "SubmitCart").lines == ("on SubmitCart", "submit_cart() · by Customer")
    assert node(pizza, "cart timed out").lines == ("timeout: cart timed out", "after 1d")
    assert node(pizza, "payment received").kind == "waitfor"


def test_numbering_follows_the_definition(every: Graph) -> None:
    order = [
        "prepare", "big", "handle big", "handle medium", "handle small", "negative", "fix sign",
        "mode a", "run a", "run other", "rounds", "tick", "skip one", "stop early",
        "after checks", "watcher", "for a signal", "Signal", "no signal", "note signal",
        "for input", "Deliver", "Ping", "Nudge", "nudged", "Abort", "too slow", "give up",
        "ready", "finish",
    ]  # fmt: skip
    ids = [int(every.by_name[name][1:]) for name in order]
    assert ids == sorted(ids)
    assert ids[0] == 2  # n0 is the start, n1 the end


def test_the_edges_out_of_an_if_lead_to_the_next_statement(every: Graph) -> None:
    big, negative = every.by_name["big"], every.by_name["negative"]
    # If / elif / else: one labelled edge into each branch, and every branch on to the next If
    assert {(e.dst, e.label) for e in out(every, big)} == {
        (every.by_name["handle big"], "big"),
        (every.by_name["handle medium"], "medium"),
        (every.by_name["handle small"], "small"),
    }
    for step in ("handle big", "handle medium", "handle small"):
        assert out(every, every.by_name[step]) == [Edge(every.by_name[step], negative)]
    # An If without else: its "otherwise" goes straight on to the statement after it
    switch = every.by_name["mode a"]
    assert {(e.dst, e.label) for e in out(every, negative)} == {
        (every.by_name["fix sign"], "negative"),
        (switch, "otherwise"),
    }
    assert out(every, every.by_name["fix sign"]) == [Edge(every.by_name["fix sign"], switch)]


def test_the_edges_out_of_a_switch_lead_to_the_next_statement(every: Graph) -> None:
    switch, loop = every.by_name["mode a"], every.by_name["rounds"]
    assert every.by_name["any other mode"] == switch
    assert {(e.dst, e.label) for e in out(every, switch)} == {
        (every.by_name["run a"], "mode a"),
        (every.by_name["run other"], "any other mode"),
    }  # a Default: no "otherwise"
    for step in ("run a", "run other"):
        assert out(every, every.by_name[step]) == [Edge(every.by_name[step], loop)]
    assert {e.src for e in into(every, loop) if e.kind == "flow"} == {
        every.by_name["run a"],
        every.by_name["run other"],
    }


def test_a_loop_turns_back_continue_returns_to_it_break_leaves_it(every: Graph) -> None:
    loop = every.by_name["rounds"]
    after_loop = every.by_name["watcher"]
    (cont,) = of_kind(every, "continue")
    (brk,) = of_kind(every, "break")
    assert out(every, loop) == [
        Edge(loop, every.by_name["tick"], "repeat"),
        Edge(loop, after_loop, "done"),
    ]
    assert out(every, cont.id) == [Edge(cont.id, loop, "", "back")]
    assert out(every, brk.id) == [Edge(brk.id, after_loop)]
    assert out(every, every.by_name["after checks"]) == [
        Edge(every.by_name["after checks"], loop, "", "back")
    ]
    assert {e.src for e in into(every, loop) if e.kind == "back"} == {
        cont.id,
        every.by_name["after checks"],
    }
    assert cont.parent == every.by_name["skip one"] and brk.parent == every.by_name["stop early"]
    assert set(ancestors(every, cont.id)) == {every.by_name["skip one"], loop}


def test_pizza_cart_loop(pizza: Graph) -> None:
    loop, wait = pizza.by_name["cart is open"], pizza.by_name["for the cart"]
    assert out(pizza, loop) == [
        Edge(loop, wait, "repeat"),
        Edge(loop, pizza.by_name["for the manager"], "done"),
    ]
    for event in ("AddToCart", "EmptyCart", "SubmitCart"):  # no body: the next turn
        assert out(pizza, pizza.by_name[event]) == [Edge(pizza.by_name[event], loop, "", "back")]
    (ret,) = of_kind(pizza, "return")
    assert out(pizza, pizza.by_name["expire order"]) == [
        Edge(pizza.by_name["expire order"], ret.id)
    ]
    assert out(pizza, ret.id) == [Edge(ret.id, pizza.end, "", "jump")]
    overpaid = pizza.by_name["overpaid"]
    assert {(e.dst, e.label) for e in out(pizza, overpaid)} == {
        (pizza.by_name["refund the difference"], "overpaid"),
        (pizza.by_name["complete"], "otherwise"),
    }
    assert out(pizza, pizza.by_name["complete"]) == [Edge(pizza.by_name["complete"], pizza.end)]


def test_a_wait_leads_to_each_event_and_each_event_on(every: Graph) -> None:
    wait, ready = every.by_name["for input"], every.by_name["ready"]
    events = ["Deliver", "Ping", "Nudge", "Abort", "too slow"]
    assert out(every, wait) == [Edge(wait, every.by_name[ev]) for ev in events]
    assert out(every, every.by_name["Deliver"]) == [Edge(every.by_name["Deliver"], ready)]
    assert out(every, every.by_name["Nudge"]) == [
        Edge(every.by_name["Nudge"], every.by_name["nudged"])
    ]
    assert {e.src for e in into(every, ready)} == {
        every.by_name[n] for n in ("Deliver", "Ping", "nudged", "give up")
    }
    (main_return,) = of_kind(every, "return", "_main_")
    assert main_return.parent == wait
    assert out(every, every.by_name["Abort"]) == [Edge(every.by_name["Abort"], main_return.id)]
    assert out(every, main_return.id) == [Edge(main_return.id, every.end, "", "jump")]
    assert out(every, every.by_name["finish"]) == [Edge(every.by_name["finish"], every.end)]


def test_a_go_thread_has_its_own_nodes_and_end(every: Graph) -> None:
    go = every.by_name["watcher"]
    thread = {n.id for n in every.nodes.values() if n.thread == "watcher"}
    tend = thread_end(every, "watcher")
    assert thread == {
        every.by_name[n] for n in ("for a signal", "Signal", "no signal", "note signal")
    } | {tend.id, of_kind(every, "return", "watcher")[0].id}
    assert every.nodes[go].thread == "_main_"
    assert out(every, go) == [
        Edge(go, every.by_name["for a signal"], "", "go"),
        Edge(go, every.by_name["for input"]),
    ]
    (ret,) = of_kind(every, "return", "watcher")
    assert out(every, ret.id) == [Edge(ret.id, tend.id, "", "jump")]  # a thread's return
    assert out(every, every.by_name["note signal"]) == [Edge(every.by_name["note signal"], tend.id)]
    assert list(every.threads()) == ["_main_", "watcher"]
    assert {n.id for n in every.threads()["watcher"]} == thread


def _mermaid_subgraphs(text: str) -> dict[str, set[str]]:
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


def _dot_clusters(text: str) -> dict[str, set[str]]:
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


def test_the_go_thread_is_a_subgraph_and_a_cluster(every: Graph, pizza: Graph) -> None:
    for g, thread in [(every, "watcher"), (pizza, "payment")]:
        members = {n.id for n in g.nodes.values() if n.thread == thread}
        go = g.by_name[thread]
        subgraphs = _mermaid_subgraphs(mermaid(g))
        assert subgraphs == {f"{go}_thread": members}
        assert f'subgraph {go}_thread["thread: {thread}"]' in mermaid(g)
        clusters = _dot_clusters(dot(g))
        assert clusters == {f"cluster_{go}": members}
        assert f'label="thread: {thread}"; style=dashed;' in dot(g)


def test_mermaid_and_dot_list_every_node_once_and_every_edge(every: Graph, pizza: Graph) -> None:
    for g in (every, pizza):
        mm, dt = mermaid(g), dot(g)
        assert mm.startswith("flowchart TD\n") and mm.endswith("\n")
        assert dt.startswith(f'digraph "{g.workflow}" {{\n') and dt.endswith("}\n")
        mm_nodes = re.findall(r"^\s*(n\d+)[\[({>]", mm, re.M)
        dt_nodes = re.findall(r"^\s*(n\d+) \[", dt, re.M)
        assert sorted(mm_nodes) == sorted(dt_nodes) == sorted(g.nodes)
        mm_edges = re.findall(r"^\s*(n\d+) (?:-->|==>|-\.->)(?:\|\"[^\"]*\"\|)? (n\d+)$", mm, re.M)
        dt_edges = re.findall(r"^\s*(n\d+) -> (n\d+)", dt, re.M)
        assert mm_edges == dt_edges == [(e.src, e.dst) for e in g.edges]
    # the kinds of edge are told apart
    assert "    n13 -.-> n15" in mermaid(pizza)  # go: dashed
    assert "    n10 -.-> n1" in mermaid(pizza)  # return: dashed
    assert "    n10 -> n1 [style=dashed];" in dot(pizza)
    assert "    n5 -> n3 [constraint=false];" in dot(pizza)  # a loop's next turn


def test_render_refuses_an_unknown_format(pizza: Graph) -> None:
    with pytest.raises(ValueError, match="unknown diagram format 'png'; use mermaid, dot or svg"):
        render(pizza, "png")
    assert render(pizza, "svg") == draw_svg(pizza)
    assert gorch.graph.FORMATS == ("mermaid", "dot", "svg")


def test_build_refuses_an_invalid_definition() -> None:
    from gorch import DefinitionError

    @dataclass
    class Twice:
        def definition(self) -> Any:
            return S(Step("a", print), Step("a", print))

    with pytest.raises(DefinitionError, match="used 2 times"):
        build("twice", Twice)


@pytest.mark.parametrize(
    ("delay", "text"),
    [
        (timedelta(0), "0s"),
        (0, "0s"),
        (1.5, "1.5s"),
        (59, "59s"),
        (60, "1m"),
        (90, "1m30s"),
        (timedelta(hours=1, minutes=30), "1h30m"),
        (timedelta(hours=24), "1d"),
        (timedelta(days=2, hours=3, minutes=4, seconds=5), "2d3h4m5s"),
        (timedelta(days=1, seconds=1), "1d1s"),
    ],
)
def test_duration(delay: timedelta | float, text: str) -> None:
    assert duration(delay) == text


def test_the_module_doctest_passes() -> None:
    result = doctest.testmod(gorch.graph)
    assert result.attempted > 0
    assert result.failed == 0


# --------------------------------------------------------------------------------------------
# SVG


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


@pytest.mark.parametrize("workflow", ["pizza", "every"])
def test_svg_is_xml_with_every_node_and_name(workflow: str) -> None:
    cls, names = DEFINITIONS[workflow]
    g = build(workflow, cls)
    text = draw_svg(g)
    root = parse_svg(text)
    assert root.get("viewBox") and float(root.get("width", 0)) > 0
    assert float(root.get("height", 0)) > 0
    nodes = svg_nodes(root)
    assert set(nodes) == set(g.nodes)
    for nid, el in nodes.items():
        n = g.nodes[nid]
        assert classes(el) == {"node", n.kind}, nid  # no marks: no state class
        assert el.get("data-name", "") == n.name
        assert [t.text for t in el.iter(TEXT)] == list(n.lines)
    shown = {t.text for t in root.iter(TEXT)} | {el.get("data-name") for el in nodes.values()}
    for name in names:
        assert name in shown, name
    # standalone: no reference out of the picture but the SVG namespace itself
    assert set(re.findall(r"https?://[^\s\"'<>)]*", text)) == {SVG_NS}
    assert "href" not in text and "@import" not in text


def test_svg_marks_put_classes_on_the_right_nodes(pizza: Graph) -> None:
    engine, id = confirmed_order()
    marks = marks_of(engine, id, pizza)
    nodes = svg_nodes(parse_svg(draw_svg(pizza, marks)))
    current = {nid for nid, el in nodes.items() if "current" in classes(el)}
    done = {nid for nid, el in nodes.items() if "done" in classes(el)}
    assert current == {pizza.by_name["for a cook"], pizza.by_name["for payment"]}
    assert done == set(marks.done) - current
    assert pizza.by_name["SubmitCart"] in done and pizza.by_name["EmptyCart"] not in done
    assert not any("failed" in classes(el) for el in nodes.values())
    cook = nodes[pizza.by_name["for a cook"]]
    assert [t.text for t in cook.iter(TEXT)] == ["wait: for a cook", "▶ _main_"]
    title = cook.find(f"{{{SVG_NS}}}title")
    assert title is not None and title.text == "wait for a cook — now: _main_"


# --------------------------------------------------------------------------------------------
# Positions of real instances


def test_position_in_the_middle_of_an_order(pizza: Graph) -> None:
    engine, id = confirmed_order()
    marks = marks_of(engine, id, pizza)
    by = pizza.by_name
    assert dict(marks.current) == {by["for a cook"]: ("_main_",), by["for payment"]: ("payment",)}
    ran = {"setup", "AddToCart", "SubmitCart", "ConfirmOrder"}
    containers = {"cart is open", "for the cart", "for the manager", "payment"}
    assert marks.done == {pizza.start} | {by[n] for n in ran | containers}
    assert marks.failed == frozenset()
    # what did not run is not marked
    for name in ("EmptyCart", "cart timed out", "expire order", "StartCooking", "complete"):
        assert by[name] not in marks.done and by[name] not in marks.current
    assert marks.edge_done(edge(pizza, by["setup"], by["cart is open"]))
    assert marks.edge_done(edge(pizza, by["ConfirmOrder"], by["payment"]))
    assert marks.edge_done(edge(pizza, by["payment"], by["for a cook"]))  # into a thread now
    assert not marks.edge_done(edge(pizza, by["for a cook"], by["StartCooking"]))
    assert not marks.edge_done(edge(pizza, by["for the cart"], by["EmptyCart"]))

    mm = mermaid(pizza, marks)
    assert f"    class {by['for payment']},{by['for a cook']} current" in mm
    assert f"    {by['setup']} ==> {by['cart is open']}" in mm
    assert f"    {by['for a cook']} --> {by['StartCooking']}" in mm
    dt = dot(pizza, marks)
    assert re.search(rf'\n    {by["for a cook"]} \[label="wait: for a cook\\n▶ _main_", ', dt)
    assert '"#fde68a", color="#b45309", penwidth=3' in dt


def test_position_after_payment_and_after_the_end(pizza: Graph) -> None:
    engine, id = confirmed_order()
    by = pizza.by_name
    engine.send(id, "ConfirmPayment", PAY)
    marks = marks_of(engine, id, pizza)
    assert dict(marks.current) == {by["for a cook"]: ("_main_",)}  # the payment thread ended
    assert {by["ConfirmPayment"], by["for payment"], by["payment"]} <= marks.done

    for event, payload in KITCHEN:
        engine.send(id, event, payload)
    inst = engine.get(id)
    assert inst.status is RunStatus.FINISHED
    marks = position(pizza, inst, engine.history(id))
    assert dict(marks.current) == {pizza.end: ()}
    assert {by[n] for n in ("complete", "Delivered", "StartCooking")} <= marks.done
    assert marks.edge_done(edge(pizza, by["complete"], pizza.end))
    root = parse_svg(draw_svg(pizza, marks))
    assert "current" in classes(svg_nodes(root)[pizza.end])
    assert f"    class {pizza.end} current" in mermaid(pizza, marks)


def test_a_finished_order_marks_its_whole_path(pizza: Graph) -> None:
    """Also what history does not record: a WaitFor without handler, an If whose branch taken is
    empty."""
    engine, id = confirmed_order()
    engine.send(id, "ConfirmPayment", PAY)
    for event, payload in KITCHEN:
        engine.send(id, event, payload)
    marks = marks_of(engine, id, pizza)
    by = pizza.by_name
    path = ["Delivered", "payment received", "overpaid", "complete"]
    for a, b in itertools.pairwise(path):
        assert marks.edge_done(edge(pizza, by[a], by[b])), (a, b)
    assert {by[n] for n in path} <= marks.done


def test_an_untaken_branch_is_not_marked(pizza: Graph) -> None:
    engine, id = confirmed_order()
    engine.send(id, "ConfirmPayment", {**PAY, "amount": 30.0})
    for event, payload in KITCHEN:
        engine.send(id, event, payload)
    marks = marks_of(engine, id, pizza)
    by = pizza.by_name
    assert by["refund the difference"] in marks.done  # the overpaid branch ran
    assert marks.edge_done(edge(pizza, by["overpaid"], by["refund the difference"]))
    otherwise = edge(pizza, by["overpaid"], by["complete"])
    assert otherwise.label == "otherwise"
    assert not marks.edge_done(otherwise)


def test_position_of_an_expired_cart(pizza: Graph) -> None:
    engine = Engine(MemoryStore(), {"pizza": PizzaOrder})
    engine.start("pizza", PizzaOrder(), "late")
    engine.send("late", "cart timed out")
    marks = marks_of(engine, "late", pizza)
    by = pizza.by_name
    assert dict(marks.current) == {pizza.end: ()}
    assert {by["cart timed out"], by["expire order"], by["for the cart"]} <= marks.done
    assert by["AddToCart"] not in marks.done
    never = ["for the manager", "payment", "for a cook", "payment received", "complete"]
    assert [name for name in never if by[name] in marks.done] == []


@dataclass
class Breaks:
    """A step that fails while ``Breaks.broken``; the engine gives up after one attempt."""

    broken: ClassVar[bool] = True
    charged: bool = False

    def definition(self) -> Any:
        return S(
            Step("charge card", self.charge),
            Wait("for shipping", On("Ship", None)),
        )

    def charge(self) -> None:
        if Breaks.broken:
            raise RuntimeError("card declined")
        self.charged = True


def test_a_failed_step_is_marked_failed_until_it_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Breaks, "broken", True)
    engine = Engine(MemoryStore(), {"breaks": Breaks}, retry=RetryPolicy(max_attempts=1))
    g = build("breaks", Breaks)
    engine.start("breaks", Breaks(), "b1")
    assert engine.get("b1").status is RunStatus.FAILED
    marks = marks_of(engine, "b1", g)
    step = g.by_name["charge card"]
    assert marks.failed == {step}
    assert dict(marks.current) == {step: ("_main_",)}
    assert step not in marks.done
    nodes = svg_nodes(parse_svg(draw_svg(g, marks)))
    assert classes(nodes[step]) == {"node", "step", "failed"}
    assert f"    class {step} failed" in mermaid(g, marks)
    assert '"#fee2e2", color="#b91c1c", penwidth=3' in dot(g, marks)

    monkeypatch.setattr(Breaks, "broken", False)
    engine.retry("b1")
    marks = marks_of(engine, "b1", g)
    assert marks.failed == frozenset()
    assert step in marks.done
    assert dict(marks.current) == {g.by_name["for shipping"]: ("_main_",)}


def test_position_ignores_statements_the_code_no_longer_has(pizza: Graph) -> None:
    engine, id = confirmed_order()
    g = build("every", Every)  # another workflow's diagram: nothing of the order's matches
    marks = marks_of(engine, id, g)
    assert dict(marks.current) == {}
    assert marks.done == {g.start} and marks.failed == frozenset()


# --------------------------------------------------------------------------------------------
# Escaping

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


def test_mermaid_escapes_labels() -> None:
    g = build("odd", Odd)
    text = mermaid(g)
    labels: dict[str, list[str]] = {}
    edge_labels: list[list[str]] = []
    for line in text.splitlines()[1:]:
        for quoted in re.findall(r'"([^"]*)"', line):  # a label never holds a raw quote
            unmermaid(quoted)
        if m := re.fullmatch(MERMAID_NODE, line):
            labels[m[1]] = unmermaid(m[2])
        elif m := re.fullmatch(r'\s*subgraph (\w+)\["(.*)"\]', line):
            assert unmermaid(m[2]) == [f"thread: thread {ODD}"]
        elif m := re.fullmatch(r'\s*n\d+ -->\|"(.*)"\| n\d+', line):
            edge_labels.append(unmermaid(m[1]))
    assert set(labels) == set(g.nodes)
    for nid, n in g.nodes.items():
        assert labels[nid] == list(n.lines), nid
    assert labels[g.by_name[ODD]] == [ODD]
    assert edge_labels == [[f"case {ODD}"], ["otherwise"]]
    assert '|"case say #quot;hi#quot; #lt;b#gt;#35;1#lt;/b#gt; & C:\\temp\\"|' in text


def test_dot_escapes_labels() -> None:
    g = build("odd", Odd)
    text = dot(g)
    seen = set()
    for line in text.splitlines():
        strings = re.findall(r'"(?:[^"\\]|\\.)*"', line)
        # outside the quoted strings, no quote is left over
        assert '"' not in re.sub(r'"(?:[^"\\]|\\.)*"', "", line), line
        if m := re.match(r"\s*(n\d+) \[label=(\"(?:[^\"\\]|\\.)*\")", line):
            assert undot(m[2]) == "\n".join(g.nodes[m[1]].lines)
            seen.add(m[1])
        elif "cluster" in line or "thread:" in line:
            assert all(undot(s) for s in strings)
    assert seen == set(g.nodes)
    assert 'label="case say \\"hi\\" <b>#1</b> & C:\\\\temp\\\\"' in text
    assert f"label={_dot_quote(f'thread: thread {ODD}')}; style=dashed;" in text


def _dot_quote(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def test_svg_escapes_labels_and_names() -> None:
    g = build("odd", Odd)
    root = parse_svg(draw_svg(g))
    nodes = svg_nodes(root)
    el = nodes[g.by_name[ODD]]
    assert el.get("data-name") == ODD
    assert [t.text for t in el.iter(TEXT)] == [ODD]
    assert f"case {ODD}" in {t.text for t in root.iter(TEXT)}  # the branch's label
    assert f"thread: thread {ODD}" in {t.text for t in root.iter(TEXT)}  # the thread's frame


def test_svg_of_a_name_with_a_control_character_is_still_xml() -> None:
    @dataclass
    class Bell:
        def definition(self) -> Any:
            return S(Step("ring\x07", print))

    parse_svg(draw_svg(build("bell", Bell)))


def test_a_name_with_a_newline_stays_on_one_line_of_mermaid_and_dot() -> None:
    @dataclass
    class Two:
        def definition(self) -> Any:
            return S(Step("two\nlines", print))

    g = build("two", Two)
    text = gorch.graph.mermaid(g)
    assert '    n2["two\\nlines"]' in text.splitlines()
    assert 'n2 [label="two\\\\nlines", shape=box' in gorch.graph.dot(g)
    assert g.by_name["two\nlines"] == "n2"  # the name itself is kept as written


def test_duration_of_small_and_large_delays() -> None:
    assert gorch.graph.duration(timedelta(microseconds=1)) == "0.000001s"
    assert gorch.graph.duration(1.5) == "1.5s"
    assert gorch.graph.duration(timedelta(days=1, hours=2, minutes=3)) == "1d2h3m"


# --------------------------------------------------------------------------------------------
# Random definitions


def noop() -> None:
    pass


LEAVES = st.sampled_from(["step", "waitfor", "return", "break", "continue"])


def _compound(kids: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    body = st.lists(kids, max_size=3)
    events = st.lists(st.tuples(st.booleans(), body), min_size=1, max_size=3)  # timeout?, body
    return st.one_of(
        st.tuples(st.just("if"), st.lists(body, min_size=1, max_size=3), st.booleans()),
        st.tuples(st.just("switch"), st.lists(body, min_size=1, max_size=3), st.booleans()),
        st.tuples(st.just("for"), body),
        st.tuples(st.just("wait"), events),
        st.tuples(st.just("go"), body),
        st.tuples(st.just("section"), body),
    )


SPECS = st.lists(st.recursive(LEAVES, _compound, max_leaves=14), min_size=1, max_size=5)
SUFFIXES = st.text(alphabet=list(' ab"<>#\\&;|{}[]()é·'), max_size=4)


class _Maker:
    """Statements from specs, every name unique (a counter, then the drawn suffix)."""

    def __init__(self, suffix: str) -> None:
        self.suffix = suffix
        self.names: set[str] = set()

    def name(self, word: str) -> str:
        name = f"{word} {len(self.names)}{self.suffix}"
        self.names.add(name)
        return name

    def body(self, specs: list[Any], loop: bool) -> list[Any]:
        return [self.stmt(s, loop) for s in specs]

    def stmt(self, spec: Any, loop: bool) -> Any:
        if spec == "step" or (spec in ("break", "continue") and not loop):
            return Step(self.name("step"), noop)
        if spec == "waitfor":
            return WaitFor(self.name("until"), True)
        if spec == "return":
            return Return()
        if spec == "break":
            return Break()
        if spec == "continue":
            return Continue()
        kind = spec[0]
        if kind in ("if", "switch"):
            bodies, default = spec[1], spec[2] and len(spec[1]) > 1
            cases = [
                (self.name("case"), self.body(b, loop)) for b in bodies[: len(bodies) - default]
            ]
            last = (self.name("default"), self.body(bodies[-1], loop)) if default else None
            if kind == "switch":
                return Switch(
                    *(Case(True, n, *b) for n, b in cases),
                    *([Default(last[0], *last[1])] if last else []),
                )
            (first, first_body), *rest = cases
            s = If(True, first, *first_body)
            for n, b in rest:
                s.elif_(True, n, *b)
            return s.else_(last[0], *last[1]) if last else s
        if kind == "for":
            name = self.name("loop")
            return For(name, True, Step(self.name("step"), noop), *self.body(spec[1], True))
        if kind == "wait":
            name = self.name("wait")
            events = [
                Timeout(self.name("timer"), 5, *self.body(b, loop))
                if timeout
                else On(self.name("Event"), None, *self.body(b, loop))
                for timeout, b in spec[1]
            ]
            return Wait(name, *events)
        if kind == "go":
            name = self.name("thread")
            return Go(name, *self.body(spec[1], False))
        assert kind == "section"
        return Section(tuple(self.body(spec[1], loop)))


@settings(
    max_examples=100,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(specs=SPECS, suffix=SUFFIXES)
def test_random_definitions_draw(specs: list[Any], suffix: str) -> None:
    maker = _Maker(suffix)
    tree = S(*maker.body(specs, False))

    class Random:
        def definition(self) -> Any:
            return tree

    g = build("random", Random)
    assert set(g.by_name) == maker.names
    check_invariants(g)

    root = parse_svg(draw_svg(g))
    assert set(svg_nodes(root)) == set(g.nodes)
    mm = mermaid(g)
    node_lines = re.findall(r"^\s*(n\d+)[\[({>]", mm, re.M)
    assert sorted(node_lines) == sorted(g.nodes)  # one line per node
    for line in mm.splitlines()[1:]:
        for quoted in re.findall(r'"([^"]*)"', line):
            unmermaid(quoted)
    dt = dot(g)
    assert sorted(re.findall(r"^\s*(n\d+) \[", dt, re.M)) == sorted(g.nodes)
    bare = re.sub(r'"(?:[^"\\]|\\.)*"', "", dt)  # the text outside the quoted strings
    assert '"' not in bare and bare.count("{") == bare.count("}")
    n_threads = len({n.thread for n in g.nodes.values()})
    assert len(_mermaid_subgraphs(mm)) == len(_dot_clusters(dt)) == n_threads - 1


@dataclass
class Deadline:
    """No defaults; its timeout comes from its data."""

    customer: str
    hours: float

    def definition(self) -> object:
        return S(
            Wait(
                "for an answer",
                On("Answer"),
                Timeout("too late", timedelta(hours=self.hours), Return()),
            )
        )


def test_a_class_without_defaults_is_drawn() -> None:
    g = build("deadline", Deadline)
    assert {"for an answer", "Answer", "too late"} <= set(g.by_name)


def test_an_instance_is_drawn_with_its_own_timeouts() -> None:
    default = mermaid(build("deadline", Deadline))
    own = mermaid(build("deadline", Deadline, Deadline("ana", 36)))
    assert "after 0s" in default
    assert "after 1d12h" in own and "after 0s" not in own


DEADLINES = {"deadline": Deadline}


def test_an_instance_diagram_over_http_and_the_cli_shows_its_own_timeouts(tmp_path: Path) -> None:
    import httpx
    from click.testing import CliRunner

    from gorch.cli import cli
    from gorch.http import create_app
    from gorch.store.sql import SQLStore
    from gorch.testing.http import LiveServer

    store = SQLStore(f"sqlite:///{tmp_path / 'g.db'}")
    engine = Engine(store, DEADLINES)
    engine.start("deadline", Deadline("ana", 36), "d-1")
    try:
        with LiveServer(create_app(engine)) as url, httpx.Client(base_url=url) as client:
            own = client.get("/instances/d-1/diagram", params={"format": "mermaid"}).text
            default = client.get("/workflows/deadline/diagram", params={"format": "mermaid"}).text
        assert "after 1d12h" in own and "after 1d12h" not in default
        out = CliRunner().invoke(
            cli,
            ["--store", str(tmp_path / "g.db"), "--workflows", "test_graph:DEADLINES",
             "graph", "deadline", "--format", "mermaid", "--instance", "d-1"],
        )  # fmt: skip
        assert out.exit_code == 0, out.output
        assert "after 1d12h" in out.output
    finally:
        store.close()
