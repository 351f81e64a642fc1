"""Input is structured strictly: unknown fields refused, depth limited, errors in people's words.

``gorch.serde.structure_input`` is what event payloads (``handle_callback``) and start data (the
HTTP API, the CLI) go through; ``loads`` of stored rows keeps ignoring unknown keys.
"""

from __future__ import annotations

import dataclasses
import threading
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from pathlib import Path
from typing import Any, Literal
from uuid import UUID

import attrs
import cattrs
import orjson
import pytest

from gorch import (
    CallbackRequest,
    Engine,
    InputError,
    On,
    S,
    SerializationError,
    Wait,
    dumps,
    handle_callback,
    loads,
    new_state,
    resume,
)
from gorch.serde import (
    MAX_DEPTH,
    check_depth,
    converter,
    error_details,
    structure,
    structure_input,
)
from gorch.store import SQLStore


@dataclasses.dataclass
class Pizza:
    name: str
    quantity: int = 1
    size: Literal["small", "large"] = "small"


@attrs.define
class Delivery:
    street: str
    floor: int | None = None


@dataclasses.dataclass
class Card:
    number: str


@dataclasses.dataclass
class Cash:
    amount: Decimal


@dataclasses.dataclass
class AddToCart:
    pizza: Pizza
    more: list[Pizza] = dataclasses.field(default_factory=list)
    by_name: dict[str, Pizza] = dataclasses.field(default_factory=dict)
    delivery: Delivery | None = None
    pay: Card | Cash | None = None
    note: Any = None


def details_of(value: Any, t: Any = AddToCart) -> list[str]:
    with pytest.raises(Exception) as info:
        structure_input(value, t)
    return error_details(info.value)


# --------------------------------------------------------------------------------------------
# Unknown fields


def test_an_unknown_field_is_refused_with_its_path_and_the_closest_name() -> None:
    assert details_of({"pizza": {"name": "m", "quantiy": 2}}) == [
        "unknown field; did you mean 'quantity'? @ $.pizza.quantiy"
    ]


def test_unknown_fields_are_found_at_every_level_with_the_other_problems() -> None:
    payload = {
        "pizza": {"name": "m", "qty": 2},
        "more": [{"name": "a"}, {"name": "b", "sise": "large"}],
        "by_name": {"x": {"name": "x", "extra": True}},
        "delivery": {"street": "Via 1", "flor": 3},
        "pay": {"number": "4242", "cvv": "123"},
        "zzz": 1,
    }
    assert details_of(payload) == [
        "unknown field; did you mean 'quantity'? @ $.pizza.qty",
        "unknown field; did you mean 'size'? @ $.more[1].sise",
        "unknown field; Pizza's fields are 'name', 'quantity', 'size' @ $.by_name['x'].extra",
        "unknown field; did you mean 'floor'? @ $.delivery.flor",
        "unknown field; Card's fields are 'number' @ $.pay.cvv",
        "unknown field; AddToCart's fields are 'by_name', 'delivery', 'more', 'note', 'pay', "
        "'pizza' @ $.zzz",
    ]
    # ... together with what else is wrong, in one answer
    assert details_of({"pizza": {"name": 5, "qtty": 1}}) == [
        "expected text, got the number 5 @ $.pizza.name",
        "unknown field; did you mean 'quantity'? @ $.pizza.qtty",
    ]
    assert details_of({"pizza": {"name": "m"}, "nte": 1}, AddToCart)[0].startswith(
        "unknown field; did you mean 'note'?"
    )


def test_a_key_that_is_not_a_name_is_shown_quoted() -> None:
    assert details_of({"pizza": {"name": "m", "a b": 1}}) == [
        "unknown field; Pizza's fields are 'name', 'quantity', 'size' @ $.pizza['a b']"
    ]


def test_what_is_written_is_accepted_as_input() -> None:
    @dataclasses.dataclass
    class Total:
        items: list[int]
        total: int = dataclasses.field(init=False, default=0)

    written = orjson.loads(dumps(Total([1, 2])))  # what the API shows, sent back
    assert written == {"items": [1, 2]}  # (cattrs neither writes nor reads such fields)
    assert structure_input(written, Total) == Total([1, 2])
    with pytest.raises(cattrs.BaseValidationError) as info:
        structure_input({**written, "total": 3}, Total)  # not a field the input may set
    assert error_details(info.value) == ["unknown field; Total's fields are 'items' @ $.total"]


def test_stored_data_keeps_ignoring_unknown_keys() -> None:
    row = '{"pizza": {"name": "m", "removed_field": 1}, "gone": [1]}'
    assert loads(row, AddToCart) == AddToCart(Pizza("m"))
    assert structure(orjson.loads(row), AddToCart) == AddToCart(Pizza("m"))


def test_strictness_ends_with_the_call_even_when_it_fails() -> None:
    with pytest.raises(cattrs.BaseValidationError):
        structure_input({"pizza": {"name": "m", "x": 1}}, AddToCart)
    assert loads('{"pizza": {"name": "m", "x": 1}}', AddToCart) == AddToCart(Pizza("m"))


class Gate:
    """A value whose structuring waits, to hold one thread inside structure_input."""


def test_strictness_is_per_thread() -> None:
    inside, release = threading.Event(), threading.Event()

    def wait_inside(value: Any, _: Any) -> Gate:
        inside.set()
        assert release.wait(10)
        return Gate()

    before = list(converter._user_hooks)
    converter.register_structure_hook(Gate, wait_inside)
    try:
        Held = dataclasses.make_dataclass("Held", [("gate", Gate)])
        result: list[Any] = []
        t = threading.Thread(target=lambda: result.append(structure_input({"gate": 1}, Held)))
        t.start()
        assert inside.wait(10)
        # Another thread, while the first is strict: stored data still loads leniently.
        assert loads('{"pizza": {"name": "m", "old": 1}}', AddToCart) == AddToCart(Pizza("m"))
        release.set()
        t.join(10)
        assert type(result[0].gate) is Gate
    finally:
        release.set()
        converter._user_hooks[:] = before


def test_a_hook_registered_later_for_a_record_applies_to_input() -> None:
    @dataclasses.dataclass
    class Point:
        x: int
        y: int

    before = list(converter._user_hooks)
    converter.register_structure_hook(Point, lambda v, _: Point(*v))  # from [x, y]
    try:
        Shape = dataclasses.make_dataclass("Shape", [("at", Point)])
        assert structure_input({"at": [1, 2]}, Shape) == Shape(Point(1, 2))
        with pytest.raises(cattrs.BaseValidationError) as info:
            structure_input({"at": [1, 2], "colour": "red"}, Shape)
        assert error_details(info.value) == ["unknown field; Shape's fields are 'at' @ $.colour"]
    finally:
        converter._user_hooks[:] = before


# --------------------------------------------------------------------------------------------
# Depth


def nested(depth: int) -> Any:
    value: Any = 1
    for i in range(depth):
        value = [value] if i % 2 else {"a": value}
    return value


def test_max_depth_leaves_room_below_orjsons_limit() -> None:
    assert 16 <= MAX_DEPTH <= 128
    dumps(nested(254 - MAX_DEPTH))  # what data may put around an accepted payload


@pytest.mark.parametrize("depth", [0, 1, MAX_DEPTH])
def test_a_value_up_to_max_depth_is_accepted(depth: int) -> None:
    check_depth(nested(depth))
    structure_input({"pizza": {"name": "m"}, "note": nested(max(depth - 1, 0))}, AddToCart)


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 255, 1024])
def test_a_deeper_value_is_refused_with_its_depth(depth: int) -> None:
    with pytest.raises(InputError) as info:
        check_depth(nested(depth))
    assert str(info.value) == (
        f"the payload is nested {depth} levels deep; at most {MAX_DEPTH} levels are accepted"
    )
    assert info.value.details == [
        f"nested {depth} levels deep; at most {MAX_DEPTH} levels are accepted"
    ]
    with pytest.raises(InputError, match="the data is nested"):
        check_depth(nested(depth), "data")


def test_depth_counts_the_deepest_branch_and_is_measured_without_recursion() -> None:
    check_depth({"a": [1, 2, {"b": [[]]}], "c": {}})  # 4 levels
    very_deep: list[Any] = []
    for _ in range(100_000):
        very_deep = [very_deep]
    with pytest.raises(InputError, match="nested 100001 levels deep"):
        check_depth(very_deep)


def test_structure_input_refuses_depth_even_in_a_field_that_takes_anything() -> None:
    deep = orjson.loads("[" * 300 + "]" * 300)  # parses (orjson reads up to 1024 levels)
    with pytest.raises(InputError) as info:
        structure_input({"pizza": {"name": "m"}, "note": deep}, AddToCart)
    assert error_details(info.value, "payload") == [
        f"nested 301 levels deep; at most {MAX_DEPTH} levels are accepted @ payload"
    ]


# --------------------------------------------------------------------------------------------
# Errors in people's words


class Size(Enum):
    SMALL = "small"
    LARGE = "large"


@pytest.mark.parametrize(
    ("value", "t", "says"),
    [
        ("abc", float, "expected a number, got the text 'abc'"),
        (2.5, int, "expected a whole number, got the number 2.5"),
        (True, int, "expected a whole number, got true"),
        ("yes", bool, "expected true or false, got the text 'yes'"),
        (42, str, "expected text, got the number 42"),
        (None, str, "expected text, got null"),
        ([], Pizza, "expected an object (Pizza), got an array"),
        ("m", Pizza, "expected an object (Pizza), got the text 'm'"),
        ({}, list[int], "expected an array, got an object"),
        ("ab", set[str], "expected an array, got the text 'ab'"),
        ([1, 2, 3], tuple[int, int], "expected an array of 2 items, got an array of 3"),
        ([1], dict[str, int], "expected an object, got an array"),
        ("medium", Size, "expected one of 'small', 'large', got the text 'medium'"),
        ("tiny", Literal["a", "b"], "expected one of 'a', 'b', got the text 'tiny'"),
        ([1], str | int, "expected text or a whole number, got an array"),
        ({"x": 1}, int | None, "expected a whole number, got an object"),
        ("x" * 100, int, "expected a whole number, got the text 'xxxxxxxxxxxxxxxxxxxxxxxx"),
        ("soon", datetime, "expected a date and time (ISO 8601 text such as "
         "'2026-01-31T12:00:00+00:00'), got the text 'soon'"),
        (20260131, date, "expected a date (ISO 8601 text such as '2026-01-31'), got the "
         "number 20260131"),
        ("12", UUID, "expected a UUID (text such as '12345678-1234-5678-1234-567812345678'), "
         "got the text '12'"),
        ("a lot", Decimal, "expected a decimal number (a number, or text such as '9.50'), got "
         "the text 'a lot'"),
        ("an hour", __import__("datetime").timedelta, "expected a number of seconds, got the "
         "text 'an hour'"),
    ],
)  # fmt: skip
def test_errors_say_what_was_expected_and_what_came(value: Any, t: Any, says: str) -> None:
    with pytest.raises(Exception) as info:
        structure_input(value, t)
    (line,) = error_details(info.value)
    assert line.startswith(says), line
    assert line.endswith(" @ $")


class Name(str):
    """A subclass of str: as strict as str."""


def test_a_subclass_of_a_scalar_is_as_strict_as_the_scalar() -> None:
    assert type(structure_input("Ann", Name)) is Name
    with pytest.raises(ValueError, match="expected text, got the number 42"):
        structure_input(42, Name)


def test_a_validators_own_words_are_kept() -> None:
    @attrs.define
    class Line:
        qty: int = attrs.field(validator=attrs.validators.gt(0))

    with pytest.raises(cattrs.BaseValidationError) as info:
        structure_input({"qty": 0}, Line)
    assert error_details(info.value) == ["invalid value: 'qty' must be > 0: 0 @ $"]


def test_paths_are_kept() -> None:
    assert details_of({"pizza": {"name": "m", "quantity": "two"}, "more": [{"name": 1}]}) == [
        "expected a whole number, got the text 'two' @ $.pizza.quantity",
        "expected text, got the number 1 @ $.more[0].name",
    ]


# --------------------------------------------------------------------------------------------
# Wired into the interpreter: a payload goes through structure_input


@dataclasses.dataclass
class Shop:
    cart: list[Pizza] = dataclasses.field(default_factory=list)

    def definition(self) -> Any:
        return S(Wait("for pizza", On("AddToCart", self.add)))

    def add(self, order: AddToCart) -> int:
        self.cart.append(order.pizza)
        return len(self.cart)


ADD = CallbackRequest(name="AddToCart")


def test_an_event_payload_with_an_unknown_field_is_refused_and_changes_nothing() -> None:
    wf, state = Shop(), new_state("s", "shop")
    resume(wf, state)
    before = dumps(state), dumps(wf)
    with pytest.raises(InputError) as info:
        handle_callback(ADD, wf, state, {"pizza": {"name": "m", "qtty": 2}})
    assert info.value.details == ["unknown field; did you mean 'quantity'? @ payload.pizza.qtty"]
    assert "the payload of event 'AddToCart' was refused" in str(info.value)
    assert (dumps(state), dumps(wf)) == before
    assert handle_callback(ADD, wf, state, {"pizza": {"name": "m"}}) == 1


def test_a_deep_payload_is_an_input_error_not_a_serialization_error(tmp_path: Path) -> None:
    deep = orjson.loads('{"pizza": {"name": "m"}, "note": ' + "[" * 300 + "]" * 300 + "}")
    engine = Engine(SQLStore(f"sqlite:///{tmp_path / 'gorch.db'}"), {"shop": Shop})
    try:
        engine.start("shop", Shop(), "s-1")
        version = engine.get("s-1").version
        with pytest.raises(InputError) as info:  # before: SerializationError, a 500 over HTTP
            engine.send("s-1", "AddToCart", deep)
        assert not isinstance(info.value, SerializationError)
        assert info.value.details == [
            f"nested 301 levels deep; at most {MAX_DEPTH} levels are accepted @ payload"
        ]
        assert engine.get("s-1").version == version
    finally:
        engine.store.close()
