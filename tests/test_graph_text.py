"""``gorch.graph``'s text renderers, Mermaid and Graphviz DOT: their golden files, their
thread groups, and their escaping."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pytest
from _graphs import (
    DEFINITIONS,
    MERMAID_NODE,
    ODD,
    Every,
    Odd,
    check_golden,
    confirmed_order,
    dot_clusters,
    dot_quote,
    marks_of,
    mermaid_subgraphs,
    undot,
    unmermaid,
)

import gorch.graph
from examples.pizza.workflow import PizzaOrder
from gorch import S, Step
from gorch.graph import Graph, build, dot, mermaid, render
from gorch.graph import svg as draw_svg


@pytest.fixture(scope="module")
def pizza() -> Graph:
    return build("pizza", PizzaOrder)


@pytest.fixture(scope="module")
def every() -> Graph:
    return build("every", Every)


# --------------------------------------------------------------------------------------------
# Golden files


@pytest.mark.parametrize("workflow", ["pizza", "every"])
@pytest.mark.parametrize(("fmt", "suffix"), [("mermaid", "mmd"), ("dot", "dot")])
def test_golden_diagrams(workflow: str, fmt: str, suffix: str) -> None:
    cls, _ = DEFINITIONS[workflow]
    check_golden(f"{workflow}.{suffix}", render(build(workflow, cls), fmt))


def test_golden_marks_of_an_order_in_the_middle(pizza: Graph) -> None:
    engine, id = confirmed_order()
    marks = marks_of(engine, id, pizza)
    check_golden("pizza_confirmed.mmd", mermaid(pizza, marks))


def test_golden_dot_marks_of_an_order_in_the_middle(pizza: Graph) -> None:
    engine, id = confirmed_order()
    check_golden("pizza_confirmed.dot", dot(pizza, marks_of(engine, id, pizza)))


# --------------------------------------------------------------------------------------------
# Structure


def test_the_go_thread_is_a_subgraph_and_a_cluster(every: Graph, pizza: Graph) -> None:
    for g, thread in [(every, "watcher"), (pizza, "payment")]:
        members = {n.id for n in g.nodes.values() if n.thread == thread}
        go = g.by_name[thread]
        subgraphs = mermaid_subgraphs(mermaid(g))
        assert subgraphs == {f"{go}_thread": members}
        assert f'subgraph {go}_thread["thread: {thread}"]' in mermaid(g)
        clusters = dot_clusters(dot(g))
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


# --------------------------------------------------------------------------------------------
# Escaping


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
    assert f"label={dot_quote(f'thread: thread {ODD}')}; style=dashed;" in text


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
