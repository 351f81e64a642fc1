"""``gorch.graph.position``: the marks of real instances run by the engine, as every renderer
shows them."""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from typing import Any, ClassVar

import pytest
from _graphs import Every, classes, confirmed_order, edge, marks_of, parse_svg, svg_nodes
from _together_graphs import WORKFLOWS as TOGETHER
from _together_graphs import Delivery, Kitchen, drain, kitchen

from examples.pizza.workflow import PizzaOrder
from gorch import On, S, Step, Wait
from gorch.engine import Engine, RunStatus
from gorch.graph import Graph, build, dot, mermaid, position
from gorch.graph import svg as draw_svg
from gorch.retry import RetryPolicy
from gorch.store.memory import MemoryStore

PAY = {"amount": 20.0, "address": "Via Roma 1"}
KITCHEN: list[tuple[str, Any]] = [
    ("StartCooking", {"cook": "Mario"}),
    ("Cooked", None),
    ("TakeForDelivery", None),
    ("Delivered", None),
]


@pytest.fixture(scope="module")
def pizza() -> Graph:
    return build("pizza", PizzaOrder)


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


# -- threads waiting at a Child ----------------------------------------------------------------


def test_a_thread_waiting_at_a_child_stands_on_the_childs_node() -> None:
    g = kitchen()
    engine = Engine(MemoryStore(), TOGETHER)
    engine.start("kitchen", Kitchen(), "k-1")
    deliver, trip = g.by_name["deliver"], g.by_name["return trip"]
    marks = marks_of(engine, "k-1", g)
    assert dict(marks.current) == {deliver: ("_main_",), trip: ("courier",)}
    assert deliver not in marks.done and trip not in marks.done
    assert {g.by_name["courier"], g.start} <= marks.done
    # every renderer shows it
    nodes = svg_nodes(parse_svg(draw_svg(g, marks)))
    assert "current" in classes(nodes[deliver]) and "current" in classes(nodes[trip])
    (current,) = [x.split()[1] for x in mermaid(g, marks).splitlines() if x.endswith(" current")]
    assert set(current.split(",")) == {deliver, trip}
    assert "▶ _main_" in dot(g, marks) and "▶ courier" in dot(g, marks)


def test_a_child_that_ended_is_done_and_the_thread_goes_on() -> None:
    g = kitchen()
    engine = Engine(MemoryStore(), TOGETHER)
    engine.start("kitchen", Kitchen(), "k-1")
    drain(engine)  # both deliveries run and end; the kitchen waits for the others
    assert engine.get("k-1").at_statements == ("for the others",)
    marks = marks_of(engine, "k-1", g)
    assert dict(marks.current) == {g.by_name["for the others"]: ("_main_",)}
    thread_end = next(n.id for n in g.nodes.values() if n.kind == "thread-end")
    assert {g.by_name["deliver"], g.by_name["return trip"], thread_end} <= marks.done
    assert not {g.by_name[n] for n in ("other ended", "other cooks", "other stuck")} & marks.done
    assert marks.edge_done(edge(g, g.by_name["deliver"], g.by_name["for the others"]))


def test_an_on_instance_that_fired_is_done() -> None:
    g = kitchen()
    engine = Engine(MemoryStore(), TOGETHER)
    engine.start("delivery", Delivery(), "o-2")  # the other instance the kitchen watches
    engine.start("kitchen", Kitchen(), "k-1")
    drain(engine)  # o-2 finishes: "other ended" fires, the kitchen finishes
    assert engine.get("k-1").status is RunStatus.FINISHED
    marks = marks_of(engine, "k-1", g)
    assert dict(marks.current) == {g.end: ()}
    assert {g.by_name["other ended"], g.by_name["finish"], g.by_name["deliver"]} <= marks.done
    assert g.by_name["other cooks"] not in marks.done
