"""``gorch.serde.configure``: the one function that registers gorch's hooks on a converter.

The module-level converter is built by it; these check that a fresh :class:`Converter` it
configures writes and reads exactly as ``gorch.serde.converter`` does, and that the hooks a user
registers afterwards (and only those) are counted as the user's, which ``check_type`` trusts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from enum import Enum
from typing import Literal
from uuid import UUID

import orjson
import pytest

from gorch import State, new_state
from gorch.serde import Converter, configure, converter, dumps, loads


class Size(Enum):
    SMALL = "s"
    LARGE = 2


@dataclass
class Line:
    name: str
    qty: int | str = 0
    tag: Literal["a", 1] | None = None


@dataclass
class Sample:
    f: float = math.nan
    d: Decimal = Decimal("9.50")
    u: UUID = field(default_factory=lambda: UUID(int=42))
    at: datetime = datetime(2026, 1, 31, 12, tzinfo=timezone(timedelta(hours=-3)))
    day: date = date(2026, 2, 1)
    t: time = time(12, 30)
    wait: timedelta = timedelta(days=3, microseconds=7)
    size: Size = Size.LARGE
    by_key: dict[tuple[int, date], Size] = field(
        default_factory=lambda: {(1, date(2026, 1, 1)): Size.SMALL}
    )
    tags: frozenset[int] = frozenset({3, 1})
    lines: list[Line] = field(default_factory=lambda: [Line("a", "x", "a"), Line("b", 2, 1)])


class Opaque:
    """A type gorch has no rule for."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Opaque) and other.text == self.text


def configured() -> Converter:
    c = Converter()
    configure(c)
    return c


@pytest.mark.parametrize(
    ("value", "cls"), [(Sample(), Sample), (new_state("order-1", "pizza"), State)]
)
def test_a_configured_converter_writes_and_reads_as_gorch_does(value: object, cls: type) -> None:
    c = configured()
    text = orjson.dumps(c.unstructure(value), option=orjson.OPT_NON_STR_KEYS).decode()
    assert text == dumps(value)
    back = c.structure(orjson.loads(text), cls)
    assert dumps(back) == dumps(loads(text, cls))


def test_a_configured_converter_is_as_strict_as_gorch() -> None:
    c = configured()
    for value, cls in [(True, int), (42, str), ("2", int), ("x", Size), ([1], Line)]:
        with pytest.raises(Exception, match="expected "):
            c.structure(value, cls)
        with pytest.raises(Exception, match="expected "):
            converter.structure(value, cls)


def test_only_hooks_registered_after_configure_are_the_users() -> None:
    c = configured()
    for t in (int, float, datetime, Size, Sample, dict[str, int], frozenset[int], State):
        assert not c.user_hooked(t, "structure"), t
        assert not c.user_hooked(t, "unstructure"), t
    c.register_unstructure_hook(Opaque, lambda o: o.text)
    c.register_structure_hook(Opaque, lambda v, _: Opaque(v))
    assert c.user_hooked(Opaque, "structure") and c.user_hooked(Opaque, "unstructure")
    configure(c)  # again: gorch's hooks stay gorch's, the user's stay the user's
    assert not c.user_hooked(Sample, "structure")
    assert c.user_hooked(Opaque, "structure") and c.user_hooked(Opaque, "unstructure")
    assert c.structure(c.unstructure(Opaque("x")), Opaque) == Opaque("x")
