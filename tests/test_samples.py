"""gorch.samples.sample: a stand-in instance of a workflow class, built without its data.

Each required field gets the zero value of its annotated type; these pin that value for every
kind of type the docstring promises (and the ends of the road: unknown classes, deep nesting).
"""

from __future__ import annotations

import collections
import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Annotated, Any, Literal, Optional, Union
from uuid import UUID

import attrs
import pytest

from gorch.samples import sample


class Size(enum.Enum):
    SMALL = "s"
    LARGE = "l"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


class Nothing(enum.Enum):
    pass


class Name(str):
    pass


class Count(int):
    pass


class Plain:
    def __init__(self, needed: int) -> None:
        self.needed = needed


@dataclass
class Inner:
    label: str
    qty: int


@attrs.define
class AttrsInner:
    label: str
    _secret: int  # initialised through its alias, "secret"


@dataclass
class Node:
    value: int
    next: Node


def zero_of(annotation: Any) -> Any:
    """The zero ``sample`` gives a required field annotated ``annotation``."""
    cls = dataclass(type("One", (), {"__annotations__": {"field": annotation}}))
    return sample(cls).field


@pytest.mark.parametrize(
    ("annotation", "zero"),
    [
        (bool, False),
        (int, 0),
        (float, 0.0),
        (complex, 0j),
        (str, ""),
        (bytes, b""),
        (Decimal, Decimal(0)),
        (UUID, UUID(int=0)),
        (datetime, datetime(1970, 1, 1, tzinfo=UTC)),
        (date, date(1970, 1, 1)),
        (time, time()),
        (timedelta, timedelta(0)),
        (Annotated[int, "a note"], 0),
        (Optional[int], None),  # noqa: UP045 - the typing spelling is what is tested
        (int | None, None),
        (Union[int, str], 0),  # noqa: UP007 - the typing spelling is what is tested
        (str | int, ""),
        (Literal["small", "large"], "small"),
        (tuple[int, str], (0, "")),
        (tuple[int, ...], ()),
        (tuple[()], ()),
        (tuple, ()),
        (list[int], []),
        (list, []),
        (dict[str, int], {}),
        (set[int], set()),
        (frozenset[int], frozenset()),
        (Sequence[int], []),
        (Mapping[str, int], {}),
        (collections.Counter, collections.Counter()),
        (Size, Size.SMALL),
        (Level, Level.LOW),
        (Nothing, None),
        (Name, ""),
        (Count, 0),
        (Plain, None),
        (Any, None),
    ],
)
def test_a_required_field_gets_the_zero_of_its_type(annotation: Any, zero: Any) -> None:
    got = zero_of(annotation)
    assert got == zero
    assert type(got) is type(zero)


def test_nested_records_are_sampled_too() -> None:
    assert zero_of(Inner) == Inner(label="", qty=0)
    got = zero_of(AttrsInner)
    assert (got.label, got._secret) == ("", 0)
    assert zero_of(list[Inner]) == []


def test_a_self_referencing_record_ends_in_none() -> None:
    node = sample(Node)
    depth = 0
    while node is not None:
        assert node.value == 0
        node, depth = node.next, depth + 1
    assert depth == 8  # eight levels of records, the class itself the first; then None


def test_a_class_with_defaults_is_simply_called() -> None:
    @dataclass
    class Order:
        qty: int = 3

    assert sample(Order) == Order(qty=3)


def test_a_class_that_cannot_be_built_is_made_without_init() -> None:
    got = sample(Plain)
    assert type(got) is Plain
    assert not hasattr(got, "needed")
