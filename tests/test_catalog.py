"""``gorch.catalog``: what a workflow class offers the outside world (events, payload and output
types, roles, waits, timeouts), and the validation of ``On(..., roles=...)``."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, ClassVar

import pytest

from examples.pizza.workflow import (
    CART_TIMEOUT,
    AddToCart,
    ConfirmOrder,
    ConfirmPayment,
    PizzaOrder,
    StartCooking,
)
from gorch import (
    CallbackRequest,
    DefinitionError,
    For,
    Go,
    If,
    On,
    S,
    Section,
    Step,
    Timeout,
    Wait,
    WaitFor,
    validate,
)
from gorch.catalog import ANY, NO_PAYLOAD, EventInfo, WorkflowInfo, _merge, describe, walk

# --------------------------------------------------------------------------------------------
# The pizza order, described


def test_the_pizza_order_is_described() -> None:
    info = describe("pizza", PizzaOrder)
    assert isinstance(info, WorkflowInfo)
    assert (info.name, info.cls, info.start_roles) == ("pizza", PizzaOrder, ("Customer",))
    assert info.doc == (
        "A pizza order: a cart, the manager's confirmation, payment at any time, the kitchen."
    )
    assert list(info.events) == [  # definition order
        "AddToCart",
        "EmptyCart",
        "SubmitCart",
        "cart timed out",
        "ConfirmOrder",
        "ConfirmPayment",
        "StartCooking",
        "Cooked",
        "TakeForDelivery",
        "Delivered",
    ]
    fields = {name: (ev.payload, ev.output, ev.roles, ev.waits) for name, ev in info.events.items()}
    assert fields == {
        "AddToCart": (AddToCart, int, ("Customer",), ("for the cart",)),
        "EmptyCart": (NO_PAYLOAD, None, ("Customer",), ("for the cart",)),
        "SubmitCart": (NO_PAYLOAD, str, ("Customer",), ("for the cart",)),
        "cart timed out": (NO_PAYLOAD, str, (), ("for the cart",)),
        "ConfirmOrder": (ConfirmOrder, None, ("Manager",), ("for the manager",)),
        "ConfirmPayment": (ConfirmPayment, None, ("Customer",), ("for payment",)),
        "StartCooking": (StartCooking, None, ("Cook",), ("for a cook",)),
        "Cooked": (NO_PAYLOAD, None, ("Cook",), ("for the oven",)),
        "TakeForDelivery": (NO_PAYLOAD, None, ("Delivery",), ("for a courier",)),
        "Delivered": (NO_PAYLOAD, None, ("Delivery",), ("for delivery",)),
    }
    timeout = info.events["cart timed out"]
    assert timeout.timeout is True and timeout.after == CART_TIMEOUT
    assert timeout.doc == ""
    for name, ev in info.events.items():
        assert ev.name == name
        if name != "cart timed out":
            assert ev.timeout is False and ev.after is None
    assert info.events["AddToCart"].doc == (
        "Put a pizza in the cart; the answer is how many pizzas it holds."
    )
    assert info.events["SubmitCart"].doc == (
        "Send the cart to the shop (refused while it is empty)."
    )


def test_definition_builds_a_fresh_tree() -> None:
    info = describe("pizza", PizzaOrder)
    one, two = info.definition(), info.definition()
    assert one is not two
    assert [getattr(n, "name", None) for n in walk(one)] == [
        getattr(n, "name", None) for n in walk(two)
    ]


def test_describing_does_not_touch_the_class() -> None:
    before = dict(vars(PizzaOrder))
    describe("pizza", PizzaOrder)
    describe("pizza", PizzaOrder)
    assert dict(vars(PizzaOrder)) == before


# --------------------------------------------------------------------------------------------
# walk


def test_walk_is_depth_first_in_definition_order() -> None:
    tree = PizzaOrder().definition()
    nodes = list(walk(tree))
    assert nodes[0] is tree
    named = [n.name for n in nodes if isinstance(n, Step | Wait | WaitFor | On | Timeout | Go)]
    assert named == [
        "setup",
        "for the cart",
        "AddToCart",
        "EmptyCart",
        "SubmitCart",
        "cart timed out",
        "expire order",
        "for the manager",
        "ConfirmOrder",
        "payment",
        "for payment",
        "ConfirmPayment",
        "for a cook",
        "StartCooking",
        "for the oven",
        "Cooked",
        "for a courier",
        "TakeForDelivery",
        "for delivery",
        "Delivered",
        "payment received",
        "refund the difference",
        "complete",
    ]
    # every statement once (by identity), the For and the If among them
    assert len({id(n) for n in nodes}) == len(nodes)
    assert sum(isinstance(n, For) for n in nodes) == 1
    assert sum(isinstance(n, If) for n in nodes) == 1


def test_walk_of_a_leaf_is_the_leaf() -> None:
    step = Step("alone", print)
    assert list(walk(step)) == [step]
    assert list(walk(S())) != []


# --------------------------------------------------------------------------------------------
# Payload and output types, NO_PAYLOAD and ANY


@dataclass
class Box:
    size: int = 1


class Gate:
    """A lifecycle handler.

    Set up when the wait begins."""

    type = "gate"

    def setup(self, req: CallbackRequest) -> str:
        return ""

    def handle(self, req: CallbackRequest, input: Any) -> object:
        return input

    def teardown(self, req: CallbackRequest, handled: bool) -> None:
        pass


def untyped_function(x):  # type: ignore[no-untyped-def]
    return x


@dataclass
class Kinds:
    """Every kind of handler.

    The second paragraph is not part of the doc."""

    start_roles: ClassVar[str] = "Clerk"

    n: int = 0

    def definition(self) -> Any:
        return S(
            Wait("for anything",
                On("Typed", self.typed, roles=["Clerk", "Boss"]),
                On("NoPayload", self.no_payload),
                On("Untyped", self.untyped),
                On("AnyIn", self.any_in),
                On("Unannotated", self.unannotated),
                On("Bare"),
                On("WithBody", Step("after the body", self.step)),
                On("Lifecycle", Gate()),
                On("Function", untyped_function),
                On("Lambda", lambda box: None),
                On("Unresolvable", self.unresolvable),
                On("Listed", self.listed),
                Timeout("soon", 90),
                Timeout("later", timedelta(minutes=5), Step("late", self.step)),
            ),
        )  # fmt: skip

    def typed(self, box: Box) -> list[Box]:
        """Put a box.

        More words that are not the summary."""
        return [box]

    def no_payload(self) -> None:
        pass

    def untyped(self, x):  # type: ignore[no-untyped-def]
        return x

    def any_in(self, x: Any) -> Any:
        return x

    def unannotated(self, box: Box):  # type: ignore[no-untyped-def]
        return box

    def unresolvable(self, x: NoSuchType) -> AlsoMissing:  # type: ignore[name-defined]  # noqa: F821
        return x

    def listed(self, xs: list[int]) -> dict[str, int]:
        return {"n": len(xs)}

    def step(self) -> None:
        self.n += 1


def test_payload_and_output_types() -> None:
    info = describe("kinds", Kinds)
    got = {name: (ev.payload, ev.output) for name, ev in info.events.items()}
    assert got == {
        "Typed": (Box, list[Box]),
        "NoPayload": (NO_PAYLOAD, None),
        "Untyped": (ANY, ANY),
        "AnyIn": (ANY, ANY),
        "Unannotated": (Box, ANY),
        "Bare": (NO_PAYLOAD, None),
        "WithBody": (NO_PAYLOAD, None),
        "Lifecycle": (ANY, ANY),
        "Function": (ANY, ANY),
        "Lambda": (ANY, ANY),
        "Unresolvable": (ANY, ANY),  # hints that do not resolve: any JSON
        "Listed": (list[int], dict[str, int]),
        "soon": (NO_PAYLOAD, str),
        "later": (NO_PAYLOAD, str),
    }
    assert info.events["soon"].after == timedelta(seconds=90)
    assert info.events["later"].after == timedelta(minutes=5)
    assert all(info.events[t].timeout for t in ("soon", "later"))
    assert not any(ev.timeout for name, ev in info.events.items() if name not in ("soon", "later"))


def test_no_payload_and_any_are_distinct_markers() -> None:
    assert NO_PAYLOAD is not ANY
    assert repr(NO_PAYLOAD) == "NO_PAYLOAD" and repr(ANY) == "ANY"
    assert EventInfo("x").payload is ANY and EventInfo("x").output is ANY
    assert EventInfo("x") == EventInfo("x")


def test_roles_docs_and_start_roles() -> None:
    info = describe("kinds", Kinds)
    assert info.start_roles == ("Clerk",)  # a single role as a string
    assert info.doc == "Every kind of handler."
    assert info.events["Typed"].roles == ("Clerk", "Boss")
    assert info.events["Typed"].doc == "Put a box."
    assert info.events["Lifecycle"].doc == "A lifecycle handler."
    assert info.events["NoPayload"].roles == () and info.events["NoPayload"].doc == ""
    for ev in info.events.values():
        assert ev.waits == ("for anything",)


def test_a_class_without_start_roles_or_doc() -> None:
    @dataclass
    class Plain:
        def definition(self) -> Any:
            return S(Wait("w", On("E")))

    Plain.__doc__ = None
    info = describe("plain", Plain)
    assert info.start_roles == () and info.doc == ""
    assert list(info.events) == ["E"]


def test_the_docstring_dataclasses_generate_is_not_a_description() -> None:
    # A dataclass without a docstring gets its signature as __doc__; that is no description.
    @dataclass
    class Order:
        cart: list[str] = field(default_factory=list)
        paid: float = 0.0

        def definition(self) -> Any:
            return S(Wait("w", On("E")))

    assert Order.__doc__ and Order.__doc__.startswith("Order(cart: ")
    assert describe("order", Order).doc == ""

    # a docstring of its own is kept, even one that reads like a signature of another class
    @dataclass
    class Told:
        """Told(n) is how to make one: a described order."""

        n: int = 0

        def definition(self) -> Any:
            return S(Wait("w", On("E")))

    assert describe("told", Told).doc == "Told(n) is how to make one: a described order."

    # a subclass without a docstring of its own: dataclasses gives it its own signature
    @dataclass
    class More(Told):
        extra: str = ""

    assert describe("more", More).doc == ""

    class Plain:  # not a dataclass, no docstring
        def definition(self) -> Any:
            return S(Wait("w", On("E")))

    assert describe("plain", Plain).doc == ""


def test_events_in_threads_loops_and_branches_are_found() -> None:
    @dataclass
    class Nested:
        done: bool = False
        flag: bool = False

        def definition(self) -> Any:
            return S(
                Go("side", Wait("side wait", On("Side", roles="Helper"))),
                If(self.flag, "flagged", Wait("flag wait", On("Flagged"))),
                For("loop", not self.done, Wait("loop wait", On("Done", self.finish))),
            )

        def finish(self) -> None:
            self.done = True

    info = describe("nested", Nested)
    assert {name: ev.waits for name, ev in info.events.items()} == {
        "Side": ("side wait",),
        "Flagged": ("flag wait",),
        "Done": ("loop wait",),
    }
    assert info.events["Side"].roles == ("Helper",)


# --------------------------------------------------------------------------------------------
# One event in two Waits


@dataclass
class Twice:
    def definition(self) -> Any:
        return S(
            Wait("first", On("Cancel", self.cancel, roles="Customer")),
            Wait("second", On("Cancel", self.cancel, roles=["Manager", "Customer"])),
        )

    def cancel(self, box: Box) -> int:
        return box.size


def test_an_event_in_two_waits_is_refused_by_validation() -> None:
    """Every named statement, event cases included, shares one namespace: describe refuses the
    definition before it could merge the two cases."""
    with pytest.raises(DefinitionError) as err:
        describe("twice", Twice)
    (problem,) = err.value.problems
    assert "'Cancel' is used 2 times" in problem
    assert "Wait 'first'" in problem and "Wait 'second'" in problem


def test_merging_two_cases_of_one_event() -> None:
    """``_merge`` (what describe would do with one event in several Waits): the roles add up in
    order, the waits are kept in order, types that differ become ANY."""
    a = EventInfo("Cancel", False, ("first",), ("Customer",), Box, int, None, "")
    b = EventInfo("Cancel", False, ("second",), ("Manager", "Customer"), Box, int, None, "Doc.")
    same = _merge(a, b)
    assert (same.roles, same.payload, same.output, same.doc) == (
        ("Customer", "Manager"),
        Box,
        int,
        "Doc.",
    )
    assert same.waits == ("first",)  # describe appends the second Wait's name
    other = _merge(a, EventInfo("Cancel", payload=str, output=None, roles=()))
    assert (other.payload, other.output, other.roles) == (ANY, ANY, ("Customer",))
    t1 = EventInfo("late", True, after=timedelta(seconds=1))
    assert _merge(t1, t1).after == timedelta(seconds=1) and _merge(t1, t1).timeout
    t2 = EventInfo("late", True, after=timedelta(seconds=2))
    assert _merge(t1, t2).after is None
    assert _merge(t1, EventInfo("late")).timeout is False


# --------------------------------------------------------------------------------------------
# Classes that cannot be described


def test_a_class_without_defaults_is_described_from_a_stand_in() -> None:
    @dataclass
    class NeedsArgs:
        customer: str  # no default
        seconds: float

        def definition(self) -> Any:
            return S(Wait("w", On("E"), Timeout("late", self.seconds)))

    info = describe("needy", NeedsArgs)
    assert list(info.events) == ["E", "late"]
    assert info.events["late"].after == timedelta(0)  # the stand-in's: an example


def test_a_definition_that_raises_cannot_be_described() -> None:
    @dataclass
    class Broken:
        items: list[str] = field(default_factory=list)

        def definition(self) -> Any:
            return S(Wait("w", On("E", roles=self.items[0])))

    with pytest.raises(DefinitionError) as err:
        describe("broken", Broken)
    assert "definition() on a stand-in instance raised IndexError" in str(err.value)
    assert "workflow 'broken'" in str(err.value)


def test_an_invalid_definition_cannot_be_described() -> None:
    @dataclass
    class Invalid:
        def definition(self) -> Any:
            return S(Step("s", "not callable"), Wait("empty"))  # type: ignore[arg-type]

    with pytest.raises(DefinitionError) as err:
        describe("invalid", Invalid)
    assert len(err.value.problems) == 2
    assert any("must be callable" in p for p in err.value.problems)
    assert any("at least one On" in p for p in err.value.problems)


# --------------------------------------------------------------------------------------------
# On(..., roles=...)


def test_roles_are_normalised_to_a_tuple() -> None:
    assert On("E").roles == ()
    assert On("E", roles="Customer").roles == ("Customer",)
    assert On("E", roles=["A", "B"]).roles == ("A", "B")
    assert On("E", roles=("A",)).roles == ("A",)
    assert On("E", roles={"A": 1}).roles == ("A",)  # any iterable of names
    validate(S(Wait("w", On("E", roles=["A", "B"]))))  # valid: no error


@pytest.mark.parametrize(
    "roles",
    [
        "",
        [""],
        ["Customer", ""],
        [None],
        [1],
        ["Customer", b"Manager"],
        [("Customer",)],
    ],
    ids=repr,
)
def test_validate_refuses_empty_or_non_string_roles(roles: Any) -> None:
    tree = S(Wait("for it", On("E", roles=roles)))
    with pytest.raises(DefinitionError) as err:
        validate(tree)
    (problem,) = err.value.problems
    assert "On 'E'" in problem and "roles must be non-empty strings" in problem
    assert repr(list(On("E", roles=roles).roles)) in problem

    @dataclass
    class BadRoles:
        def definition(self) -> Any:
            return Section((Wait("for it", On("E", roles=roles)),))

    with pytest.raises(DefinitionError, match="roles must be non-empty strings"):
        describe("bad", BadRoles)
