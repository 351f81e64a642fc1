"""``gorch.graph``: the graph a definition becomes (its nodes, edges and labels), and that
every renderer draws it whole.

These hold whatever the golden files say: which edge leads where, what each label reads, and
a property test over random definitions. The renderers' own tests are in
``test_graph_text.py`` (Mermaid, DOT) and ``test_graph_svg.py``; an instance's marks in
``test_graph_position.py``; the workflows and helpers they share in ``_graphs.py``.
"""

from __future__ import annotations

import doctest
import re
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from _graphs import (
    DEFINITIONS,
    Every,
    ancestors,
    check_invariants,
    dot_clusters,
    into,
    mermaid_subgraphs,
    node,
    of_kind,
    out,
    parse_svg,
    reachable,
    svg_nodes,
    thread_end,
    unmermaid,
)
from _together_graphs import KITCHEN_NAMES, WORKFLOWS, Kitchen, kitchen, named
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import gorch.graph
from examples.pizza.workflow import PizzaOrder
from gorch import (
    Break,
    Case,
    Child,
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
from gorch.engine import Engine
from gorch.graph import Edge, Graph, build, dot, duration, mermaid, render
from gorch.graph import svg as draw_svg


@pytest.fixture(scope="module")
def pizza() -> Graph:
    return build("pizza", PizzaOrder)


@pytest.fixture(scope="module")
def every() -> Graph:
    return build("every", Every)


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
    assert len(mermaid_subgraphs(mm)) == len(dot_clusters(dt)) == n_threads - 1


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


# --------------------------------------------------------------------------------------------
# The statements that work with other instances: Child and OnInstance


def test_a_child_is_one_node_naming_its_workflow_and_an_on_instance_says_what_it_waits_for() -> (
    None
):
    g = kitchen()
    assert set(g.by_name) == KITCHEN_NAMES
    deliver = named(g, "deliver")
    assert deliver.kind == "child" and deliver.workflow == "delivery"
    assert deliver.lines == ("child: deliver → delivery", "done(ChildResult)")
    assert g.by_name["deliver ended"] == deliver.id  # history's name for the child's end
    trip = named(g, "return trip")
    assert (trip.kind, trip.thread, trip.lines) == (
        "child", "courier", ("child: return trip → delivery",),  # no handler: one line
    )  # fmt: skip
    assert trip.parent == g.by_name["courier"]
    assert named(g, "other ended").lines == (
        "on other ended", "(when it ends)", "moved(ChildResult)",
    )  # fmt: skip
    assert named(g, "other cooks").lines == (
        "on other cooks", "(when o-7 is at statement for a cook)", "moved(ChildResult)",
    )  # fmt: skip
    assert named(g, "other stuck").lines == (
        "on other stuck", "(when it has status failed or paused)",
    )  # fmt: skip
    wait = g.by_name["for the others"]
    cases = [g.nodes[e.dst] for e in out(g, wait)]
    assert [n.kind for n in cases] == ["on-instance"] * 3 + ["timeout"]
    assert all(n.parent == wait for n in cases)
    # a Child is a plain statement: control goes in, and on to the next one
    assert [(e.src, e.kind) for e in into(g, deliver.id)] == [(g.by_name["courier"], "flow")]
    assert [g.nodes[e.dst].name for e in out(g, deliver.id)] == ["for the others"]
    assert [g.nodes[e.dst].kind for e in out(g, trip.id)] == ["thread-end"]
    assert reachable(g) == set(g.nodes)


def test_the_kitchen_keeps_the_invariants_of_every_graph() -> None:
    """``check_invariants``, but for its one rule a Child changes: a name in ``by_name``
    leads to the node of that name, and a Child's end event to the Child's node."""
    g = kitchen()
    ended = {name: g.by_name.pop(name) for name in ("deliver ended", "return trip ended")}
    check_invariants(g)
    assert {name: g.nodes[nid].name for name, nid in ended.items()} == {
        "deliver ended": "deliver", "return trip ended": "return trip",
    }  # fmt: skip


def test_a_child_links_to_its_workflows_diagram_as_build_is_told() -> None:
    g = kitchen()
    assert {n.link for n in g.nodes.values() if n.kind == "child"} == {
        "../../workflows/delivery/diagram"
    }
    assert {n.link for n in g.nodes.values() if n.kind != "child"} == {""}
    assert gorch.graph.CHILD_LINK == "../../workflows/{workflow}/diagram"
    own = build("kitchen", Kitchen, child_link="{workflow}.svg")
    assert own.nodes[own.by_name["deliver"]].link == "delivery.svg"
    for none in (None, ""):
        bare = build("kitchen", Kitchen, child_link=none)
        assert {n.link for n in bare.nodes.values()} == {""}
        assert "click" not in mermaid(bare) and "href" not in dot(bare) + draw_svg(bare)

    @dataclass
    class Odd:
        def definition(self) -> Any:
            return S(Child("ship", 'a "b"/c #1', lambda: None))

    odd = build("odd", Odd)
    assert odd.nodes[odd.by_name["ship"]].link == "../../workflows/a%20%22b%22%2Fc%20%231/diagram"
    assert odd.nodes[odd.by_name["ship"]].workflow == 'a "b"/c #1'


def test_the_child_link_leads_to_the_childs_diagram_over_http() -> None:
    """The default link, relative to the diagram routes of the API, is the child workflow's
    diagram from either route."""
    from urllib.parse import urljoin

    import httpx

    from gorch.http import create_app
    from gorch.store.memory import MemoryStore
    from gorch.testing.http import LiveServer

    engine = Engine(MemoryStore(), WORKFLOWS)
    engine.start("kitchen", Kitchen(), "k-1")
    with LiveServer(create_app(engine)) as url, httpx.Client(base_url=url) as client:
        for path in ("/workflows/kitchen/diagram", "/instances/k-1/diagram"):
            drawn = client.get(path)
            assert drawn.status_code == 200
            (href,) = set(re.findall(r'<a href="([^"]+)">', drawn.text))
            child = client.get(urljoin(f"{url}{path}", href))
            assert child.status_code == 200, (path, href)
            assert 'aria-label="diagram of workflow delivery"' in child.text
            mermaid_text = client.get(path, params={"format": "mermaid"}).text
            assert f'href "{href}"' in mermaid_text
