"""``gorch.serde.check_type``: a type that cannot round-trip is refused up front, by its path.

The supported types are covered by the generated classes of ``tests/test_serde_roundtrip.py``
(each must check clean); here, each kind of unsupported type is reported with the field's path,
the type and what to do, and the user's own hooks make a type acceptable.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from collections.abc import Callable, Iterator
from datetime import date, datetime, timedelta
from decimal import Decimal
from enum import Enum, IntEnum, StrEnum
from typing import Any, Literal, NewType
from uuid import UUID

import attrs
import pytest
from _workflows import Approval, Fanout, PizzaOrder
from hypothesis import given, settings
from hypothesis import strategies as st

from examples.pizza.workflow import PizzaOrder as ExamplePizzaOrder
from gorch import State, dumps, loads
from gorch.serde import check_type, converter, error_details, structure_input


class Size(StrEnum):
    SMALL = "small"


class Level(IntEnum):
    LOW = 1


class Pair(Enum):
    A = (1, 2)


@dataclasses.dataclass(frozen=True)
class Topping:
    name: str


@dataclasses.dataclass
class Pizza:
    name: str
    extras: dict[Topping, int] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class Order:
    cart: list[Pizza]


@dataclasses.dataclass
class Card:
    number: str


@dataclasses.dataclass
class Voucher:
    number: str


class Plain:
    """Not a dataclass nor an attrs class."""


def order_with(t: Any) -> type:
    return dataclasses.make_dataclass("Order", [("field", t)])


def test_the_example_from_the_brief_names_the_path_the_type_and_the_fix() -> None:
    assert check_type(Order) == [
        "Order.cart[].extras: dict[Topping, int] — Topping (a record) cannot be a JSON object "
        "key; use a str, int, enum, date, datetime, UUID, Decimal or tuple key"
    ]


@pytest.mark.parametrize(
    ("t", "problem"),
    [
        (complex, "Order.field: complex — cannot be stored as JSON: it is not a type gorch "
         "stores, a dataclass or an attrs class; use one of those (str for text), or register "
         "a structure and an unstructure hook for it on gorch.serde.converter"),
        (Plain, "Order.field: Plain — cannot be stored as JSON"),
        (object, "Order.field: object — cannot be stored as JSON"),
        (deque[int], "Order.field: deque[int] — cannot be stored as JSON"),
        (Callable[[], None], "Order.field: Callable[[], None] — cannot be stored as JSON"),
        (list[dict[str, complex]], "Order.field[][]: complex — cannot be stored"),
        (tuple[int, complex], "Order.field[1]: complex — cannot be stored"),
        (dict[list[int], str], "Order.field: dict[list[int], str] — list[int] (a list or set) "
         "cannot be a JSON object key"),
        (dict[int | None, str], "Order.field: dict[int | None, str] — int | None (a union) "
         "cannot be a JSON object key"),
        (dict[tuple[int, Topping], str], "Order.field[1]: dict[tuple[int, Topping], str] — "
         "Topping (a record) cannot be a JSON object key"),
        (dict[timedelta | str, str], "(a union) cannot be a JSON object key"),
        (Pair, "Order.field: Pair — Pair.A has the value (1, 2); it is stored by its value, "
         "which must be text, a number, true or false"),
        (Literal[b"x"], "Literal[b'x'] — b'x' has the value b'x'"),
        (Card | Voucher, "Order.field: Card | Voucher — cattrs cannot tell Card, Voucher apart "
         "when reading"),
        (datetime | str, "Order.field: datetime | str — a datetime is written as text, which "
         "reads back as a str; keep one of the two, or wrap each case in its own record"),
        (UUID | str, "a UUID is written as text, which reads back as a str"),
        (Decimal | str, "a Decimal is written as text, which reads back as a str"),
        (date | str | None, "a date is written as text, which reads back as a str"),
        (Size | str, "a Size is written as text, which reads back as a str"),
        (Level | int, "a Level is written as a whole number, which reads back as a int"),
        (Level | float, "a Level is written as a whole number, which reads back as a float"),
        (timedelta | float, "a timedelta is written as a number, which reads back as a float"),
        (float | str, "a non-finite float (NaN, Infinity) is written as text and would read "
         "back as a str"),
        (list[int] | dict[str, int], "only records can be told apart in a union"),
        (Card | list[int], "only records can be told apart in a union"),
    ],
)  # fmt: skip
def test_each_unsupported_type_is_reported(t: Any, problem: str) -> None:
    problems = check_type(order_with(t))
    assert len(problems) == 1, problems
    assert problem in problems[0]


def test_every_problem_is_reported_not_just_the_first() -> None:
    cls = dataclasses.make_dataclass("Many", [("a", complex), ("b", list[Plain]), ("c", int)])
    assert [p.split(" — ")[0] for p in check_type(cls)] == ["Many.a: complex", "Many.b[]: Plain"]


@dataclasses.dataclass
class Forward:
    later: Later
    missing: Nowhere  # type: ignore[name-defined]  # noqa: F821


@attrs.define
class Later:
    when: datetime


def test_forward_references_are_resolved_and_a_missing_one_is_reported() -> None:
    assert check_type(Forward) == [
        "Forward.missing: Nowhere — the annotation cannot be resolved (NameError: name "
        "'Nowhere' is not defined); define the types it names at module level, or import them"
    ]


@dataclasses.dataclass
class Shadowed:
    str: str = ""  # under `from __future__ import annotations`, "str" is this field's default


def test_a_field_that_hides_its_own_type_is_explained() -> None:
    (problem,) = check_type(Shadowed)
    assert problem.startswith("Shadowed.str: str — the annotation cannot be resolved")
    assert problem.endswith("the class attribute 'str' hides the type of that name; rename the "
                            "attribute, or write builtins.str")  # fmt: skip


@dataclasses.dataclass
class Node:
    value: int
    children: list[Node]
    parent: Node | None = None
    other: Other | None = None


@attrs.define
class Other:
    back: Node
    blob: complex


def test_self_and_mutually_referencing_types_are_walked_once() -> None:
    assert check_type(Node) == ["Node.other.blob: complex — cannot be stored as JSON: it is not "
                                "a type gorch stores, a dataclass or an attrs class; use one of "
                                "those (str for text), or register a structure and an unstructure "
                                "hook for it on gorch.serde.converter"]  # fmt: skip


UserId = NewType("UserId", str)


@pytest.mark.parametrize("cls", [State, PizzaOrder, Approval, Fanout, ExamplePizzaOrder])
def test_the_workflow_classes_of_the_tests_and_examples_check_clean(cls: type) -> None:
    assert check_type(cls) == []


def test_wrappers_generics_and_plain_json_are_accepted() -> None:
    from typing import Annotated

    cls = dataclasses.make_dataclass(
        "Fine",
        [
            ("a", Annotated[int, "meta"]),
            ("b", dict[UserId, list[Any]]),
            ("c", dict),
            ("d", list),
            ("e", Any),
            ("f", tuple[()] | None),
            ("g", bytes),
            ("h", dict[tuple[int, Size | None], frozenset[str]]),
        ],
    )
    assert check_type(cls) == []


# --------------------------------------------------------------------------------------------
# The user's own hooks


class Money:
    """A type of the user's, stored as text through hooks they register."""

    def __init__(self, cents: int) -> None:
        self.cents = cents

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Money) and other.cents == self.cents

    def __hash__(self) -> int:
        return hash(self.cents)


@pytest.fixture
def money_hooks() -> Iterator[None]:
    """Hooks for Money, registered after gorch's (as a user does), removed afterwards."""
    before = list(converter._user_hooks)
    converter.register_structure_hook(Money, lambda v, _: Money(int(v.removesuffix("c"))))
    converter.register_unstructure_hook(Money, lambda m: f"{m.cents}c")
    yield
    converter._user_hooks[:] = before
    converter.register_structure_hook(Money, _no_hook)  # (cattrs cannot unregister)
    converter.register_unstructure_hook(Money, _no_hook)
    converter._user_hooks[:] = before


def _no_hook(*_: Any) -> Any:
    raise TypeError("no hook for Money")


@dataclasses.dataclass
class Till:
    total: Money
    by_price: dict[Money, int]


def test_a_type_is_accepted_once_both_hooks_are_registered(money_hooks: None) -> None:
    data = Till(Money(250), {Money(100): 2})
    assert check_type(Till) == []
    assert dumps(data) == '{"total":"250c","by_price":{"100c":2}}'
    assert loads(dumps(data), Till) == data
    # Hooks registered after gorch's apply to input too (a record still refuses unknown keys).
    assert structure_input({"total": "5c", "by_price": {}}, Till) == Till(Money(5), {})
    with pytest.raises(Exception) as info:
        structure_input({"total": "5c", "by_price": {}, "totl": 1}, Till)
    assert error_details(info.value) == ["unknown field; did you mean 'total'? @ $.totl"]


def test_without_hooks_the_type_is_refused() -> None:
    paths = [p.split(" — ")[0] for p in check_type(Till)]
    assert paths == ["Till.total: Money", "Till.by_price: dict[Money, int]"]


def test_one_hook_is_not_enough() -> None:
    class Half:
        pass

    before = list(converter._user_hooks)
    try:
        converter.register_structure_hook(Half, lambda v, _: Half())
        assert check_type(order_with(Half)) == [
            "Order.field: Half — has a structure hook on gorch.serde.converter but no "
            "unstructure hook; register both, so that what is written can be read back"
        ]
    finally:
        converter._user_hooks[:] = before


def test_hooks_registered_by_predicate_or_factory_count_too() -> None:
    class Celsius(float):
        pass

    before = list(converter._user_hooks)
    try:

        @converter.register_structure_hook_factory(lambda t: t is Celsius)
        def _make(_: Any) -> Any:
            return lambda v, _: Celsius(v)

        converter.register_unstructure_hook_func(lambda t: t is Celsius, float)
        assert check_type(order_with(list[Celsius])) == []
    finally:
        converter._user_hooks[:] = before


# --------------------------------------------------------------------------------------------
# What check_type accepts, round-trips (a property over the types it is asked about)


@settings(max_examples=60, deadline=None)
@given(st.sampled_from([int, str, Size, Level, date, UUID]), st.sampled_from([int, str, Size]))
def test_accepted_dicts_round_trip(key: Any, value: Any) -> None:
    cls = dataclasses.make_dataclass("D", [("d", dict[key, list[value]])])
    assert check_type(cls) == []
    samples = {int: 7, str: "k", Size: Size.SMALL, Level: Level.LOW, date: date(2026, 1, 1),
               UUID: UUID(int=3)}  # fmt: skip
    data = cls({samples[key]: [samples[value]]})
    assert loads(dumps(data), cls) == data
