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
from _together_graphs import kitchen

import gorch.graph
from examples.pizza.workflow import PizzaOrder
from gorch import Child, S, Step
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


# --------------------------------------------------------------------------------------------
# A Child and an OnInstance


@pytest.mark.parametrize("fmt, suffix", [("mermaid", "mmd"), ("dot", "dot")])
def test_golden_diagrams_of_the_kinds_that_work_with_other_instances(fmt: str, suffix: str) -> None:
    check_golden(f"kitchen.{suffix}", render(kitchen(), fmt))


def test_mermaid_draws_a_child_rounded_an_on_instance_slanted_and_links_the_child() -> None:
    g = kitchen()
    lines = mermaid(g).splitlines()
    deliver, trip = g.by_name["deliver"], g.by_name["return trip"]
    assert f'    {deliver}("child: deliver → delivery<br/>done(ChildResult)")' in lines
    assert f'        {trip}("child: return trip → delivery")' in lines  # in its thread's group
    stuck = g.by_name["other stuck"]
    assert f'    {stuck}[\\"on other stuck<br/>(when it has status failed or paused)"\\]' in lines
    clicks = [x for x in lines if x.lstrip().startswith("click ")]
    assert clicks == [
        f'    click {nid} href "../../workflows/delivery/diagram" "diagram of workflow delivery"'
        for nid in sorted((deliver, trip), key=lambda i: int(i[1:]))
    ]
    assert lines.index(clicks[0]) > max(i for i, x in enumerate(lines) if "-->" in x)


def test_dot_draws_a_child_as_a_box3d_with_a_link_and_an_on_instance_as_an_arrow() -> None:
    g = kitchen()
    text = dot(g)
    assert (
        f'    {g.by_name["deliver"]} [label="child: deliver → delivery\\ndone(ChildResult)", '
        'shape=box3d, href="../../workflows/delivery/diagram", '
        'tooltip="diagram of workflow delivery"];'
    ) in text.splitlines()
    assert f'{g.by_name["other ended"]} [label="on other ended\\n(when it ends)' in text
    assert text.count("shape=rarrow") == 3 and text.count("shape=box3d") == 2


def test_a_child_of_an_oddly_named_workflow_is_escaped_in_mermaid_and_dot() -> None:
    @dataclass
    class Oddity:
        def definition(self) -> Any:
            return S(Child("ship", ODD, lambda: None))

    g = build("oddity", Oddity)
    mm = mermaid(g)
    (line,) = [x for x in mm.splitlines() if re.match(r"\s*n2\(", x)]
    assert unmermaid(re.fullmatch(r'\s*n2\("(.*)"\)', line)[1]) == [f"child: ship → {ODD}"]  # type: ignore[index]
    (click,) = [x for x in mm.splitlines() if "click" in x]
    href, tip = re.fullmatch(r'    click n2 href "([^"]*)" "([^"]*)"', click).groups()  # type: ignore[union-attr]
    assert (
        href
        == "../../workflows/say%20%22hi%22%20%3Cb%3E%231%3C%2Fb%3E%20%26%20C%3A%5Ctemp%5C/diagram"
    )
    assert tip == "diagram of workflow say 'hi' <b>#1</b> & C:\\temp\\"
    dt = dot(g)
    assert f"tooltip={dot_quote('diagram of workflow ' + ODD)}" in dt
    assert f"label={dot_quote(f'child: ship → {ODD}')}" in dt
