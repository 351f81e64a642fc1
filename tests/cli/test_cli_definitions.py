"""``gorch graph``: the statement tree (text and JSON) and the diagrams, marked with where an
instance stands.
"""

from __future__ import annotations

from typing import Any

import pytest
from _gorch import (
    CONFIRMED,
    Gorch,
    flat,
    order,
)
from _pizza_names import PIZZA_NAMES

from examples.pizza import PizzaOrder
from gorch import graph as gorch_graph

# -- graph ----------------------------------------------------------------------------------


def test_graph_tree(g: Gorch) -> None:
    out = g("graph", "pizza").stdout
    assert out.splitlines()[0] == "pizza (PizzaOrder)"
    for name in PIZZA_NAMES:
        assert f"'{name}'" in out, name
    lines = out.splitlines()

    def line(name: str) -> str:
        return next(x for x in lines if f"'{name}'" in x)

    assert "On 'AddToCart' payload AddToCart roles Customer" in line("AddToCart")
    assert "roles Manager" in line("ConfirmOrder")
    assert "roles Cook" in line("StartCooking") and "roles Cook" in line("Cooked")
    assert "roles Delivery" in line("Delivered")
    assert "Timeout 'cart timed out' after 1d" in line("cart timed out")
    # Nesting: the timeout's body sits deeper than the timeout.
    assert line("expire order").index("Step") > line("cart timed out").index("Timeout")


def test_graph_json(g: Gorch) -> None:
    tree = g.json("graph", "pizza")
    assert tree["kind"] == "Section"

    names: set[str] = set()
    roles: dict[str, list[str]] = {}

    def walk(node: dict[str, Any]) -> None:
        if "name" in node:
            names.add(node["name"])
        if "roles" in node:
            roles[node["name"]] = node["roles"]
        for kid in node.get("body", []):
            walk(kid)

    walk(tree)
    assert names == PIZZA_NAMES
    assert roles["AddToCart"] == ["Customer"] and roles["ConfirmOrder"] == ["Manager"]
    assert roles["TakeForDelivery"] == ["Delivery"]
    kinds = [n["kind"] for n in tree["body"]]
    assert kinds[:4] == ["Step", "For", "Wait", "Go"] and kinds[-1] == "Step"
    timeout = tree["body"][1]["body"][0]["body"][3]
    assert timeout["kind"] == "Timeout" and timeout["name"] == "cart timed out"
    assert [k["kind"] for k in timeout["body"]] == ["Step", "Return"]


def test_graph_of_an_unknown_workflow(g: Gorch) -> None:
    message = g.fail("graph", "piza")
    assert message == "error: no workflow 'piza' (registered: pizza). Did you mean 'pizza'?"
    message = g.fail("graph", "piza", "--format", "svg")
    assert message == "error: no workflow 'piza' (registered: pizza). Did you mean 'pizza'?"


@pytest.mark.parametrize("fmt", gorch_graph.FORMATS)
def test_graph_diagram_formats(g: Gorch, fmt: str) -> None:
    out = g("graph", "pizza", "--format", fmt).stdout
    assert out == gorch_graph.render(gorch_graph.build("pizza", PizzaOrder), fmt)
    assert "for the cart" in out and "complete" in out


def test_graph_default_format_is_the_tree(g: Gorch) -> None:
    tree = g("graph", "pizza").stdout
    assert tree.splitlines()[0] == "pizza (PizzaOrder)"
    assert g("graph", "pizza", "--format", "tree").stdout == tree
    assert "[default: tree]" in flat(g("graph", "--help").stdout)
    message = g("graph", "pizza", "--format", "png", code=2).stderr
    assert "'png' is not one of 'tree', 'mermaid', 'dot', 'svg'" in flat(message)


@pytest.mark.parametrize("fmt", gorch_graph.FORMATS)
def test_graph_of_an_instance_marks_where_it_stands(g: Gorch, fmt: str) -> None:
    order(g, "order-1", *CONFIRMED)
    out = g("graph", "pizza", "--instance", "order-1", "--format", fmt).stdout
    diagram = gorch_graph.build("pizza", PizzaOrder)
    with g.engine() as e:
        marks = gorch_graph.position(diagram, e.get("order-1"), e.history("order-1"))
    assert dict(marks.current) == {
        diagram.by_name["for a cook"]: ("_main_",),
        diagram.by_name["for payment"]: ("payment",),
    }
    assert out == gorch_graph.render(diagram, fmt, marks)
    assert out != gorch_graph.render(diagram, fmt)
    assert "▶ _main_" in out and "▶ payment" in out
    if fmt == "mermaid":
        assert "classDef current" in out and "classDef done" in out
    if fmt == "svg":
        cook = diagram.by_name["for a cook"]
        assert f'<g class="node wait current" id="gorch-{cook}"' in out


def test_graph_of_an_instance_of_another_workflow(flaky: Gorch) -> None:
    g = flaky
    g("start", "flaky", "--id", "f1")
    message = g.fail("graph", "pizza", "--instance", "f1", "--format", "mermaid")
    assert message == (
        "error: instance 'f1' is a 'flaky', not a 'pizza': run gorch graph flaky --instance f1"
    )
    out = g("graph", "flaky", "--instance", "f1", "--format", "mermaid").stdout
    assert "class n2 failed" in out  # the step that failed: 'charge card'


def test_graph_of_an_unknown_instance(g: Gorch) -> None:
    order(g, "order-1")
    message = g.fail("graph", "pizza", "--instance", "order-l", "--format", "dot")
    assert "no instance has id 'order-l'. Did you mean 'order-1'?" in message
    assert "Did you mean" not in g.fail("graph", "pizza", "--instance", "zzz", "--format", "svg")


def test_graph_refuses_instance_without_a_diagram_format_and_json_with_one(g: Gorch) -> None:
    order(g, "order-1")
    message = g.usage("graph", "pizza", "--instance", "order-1")
    assert message == "Error: --instance draws a diagram: add --format mermaid, dot or svg"
    message = g.usage("graph", "pizza", "--instance", "order-1", "--format", "tree")
    assert "--instance draws a diagram" in message
    for fmt in gorch_graph.FORMATS:
        message = g.usage("graph", "pizza", "--format", fmt, "--json")
        assert message == (
            "Error: --json gives the statement tree; leave out --format, or leave out --json"
        )
