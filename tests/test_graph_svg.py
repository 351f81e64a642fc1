"""``gorch.graph.svg``: the picture as XML, its classes and names, its marks, its escaping."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pytest
from _graphs import (
    DEFINITIONS,
    ODD,
    SVG_NS,
    TEXT,
    Every,
    G,
    Odd,
    check_golden,
    classes,
    confirmed_order,
    marks_of,
    parse_svg,
    svg_nodes,
)
from _together_graphs import kitchen

from examples.pizza.workflow import PizzaOrder
from gorch import S, Step
from gorch.graph import Graph, build
from gorch.graph import svg as draw_svg


@pytest.fixture(scope="module")
def pizza() -> Graph:
    return build("pizza", PizzaOrder)


@pytest.fixture(scope="module")
def every() -> Graph:
    return build("every", Every)


# The layout is pinned to the byte: the pizza order by docs/pizza.svg (tests/test_docs.py), every
# kind of statement and an instance's marks here.


def test_golden_svg_of_every_kind_of_statement(every: Graph) -> None:
    check_golden("every.svg", draw_svg(every))


def test_golden_svg_marks_of_an_order_in_the_middle(pizza: Graph) -> None:
    engine, id = confirmed_order()
    check_golden("pizza_confirmed.svg", draw_svg(pizza, marks_of(engine, id, pizza)))


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


# -- a Child and an OnInstance ----------------------------------------------------------------

A = f"{{{SVG_NS}}}a"


def test_golden_svg_of_the_kinds_that_work_with_other_instances() -> None:
    check_golden("kitchen.svg", draw_svg(kitchen()))


def test_svg_child_node_is_a_link_to_its_workflows_diagram() -> None:
    g = kitchen()
    root = parse_svg(draw_svg(g))
    nodes = svg_nodes(root)
    assert set(nodes) == set(g.nodes)
    links = sorted((a.get("href"), [el.get("id") for el in a.iter(G)]) for a in root.iter(A))
    assert links == [
        ("../../workflows/delivery/diagram", [f"gorch-{g.by_name[name]}"])
        for name in ("return trip", "deliver")  # n4 (in the Go thread), then n5
    ]
    deliver = nodes[g.by_name["deliver"]]
    assert classes(deliver) == {"node", "child"}
    assert deliver.get("data-name") == "deliver" and deliver.get("data-workflow") == "delivery"
    assert [t.text for t in deliver.iter(TEXT)] == [
        "child: deliver → delivery",
        "done(ChildResult)",
    ]
    title = deliver.find(f"{{{SVG_NS}}}title")
    assert title is not None and title.text == "child deliver → workflow delivery"
    assert len(deliver.findall(f"{{{SVG_NS}}}rect")) == 2  # a box in a box
    stuck = nodes[g.by_name["other stuck"]]
    assert classes(stuck) == {"node", "on-instance"} and stuck.get("data-workflow") is None
    (shape,) = stuck.findall(f"{{{SVG_NS}}}polygon")
    assert len(shape.get("points", "").split()) == 6  # a flag notched on the left
    assert [t.text for t in stuck.iter(TEXT)] == [
        "on other stuck", "(when it has status failed or paused)",
    ]  # fmt: skip


def test_svg_styles_the_new_kinds_only_where_they_are_drawn(every: Graph) -> None:
    style = parse_svg(draw_svg(kitchen())).find(f"{{{SVG_NS}}}style")
    assert style is not None and style.text is not None
    sheet = style.text
    assert ".node.child >" in sheet and ".node.on-instance >" in sheet
    assert sheet.index(".node.on-instance") < sheet.index(".node.done")  # the marks win
    for plain in (every, build("pizza", PizzaOrder)):
        text = draw_svg(plain)
        assert ".node.child" not in text and ".node.on-instance" not in text and "<a " not in text
