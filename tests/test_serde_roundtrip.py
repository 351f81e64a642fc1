"""What the converter writes, it reads back equal: generated workflow classes, and every key type.

Hypothesis generates workflow classes (``dataclasses.make_dataclass`` and ``attrs.make_class``,
records nested in records, unions of records) from the supported types, then instances of them
from strategies derived from those types, and checks ``loads(dumps(x), cls) == x`` and that
``check_type`` finds no problem. Targeted tests pin the stored text of each dict key type and
the cases that used to brick an instance (a ``dict[Language, str]`` written but never readable).
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import typing
from collections import Counter, OrderedDict, defaultdict
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal
from enum import Enum, IntEnum, StrEnum
from pathlib import Path
from typing import Any, Literal, Optional, Union
from uuid import UUID

import attrs
import pytest
from freezegun import freeze_time
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gorch import CallbackRequest, Engine, S, Wait, dumps, handle_callback, loads, new_state, resume
from gorch.dsl import On
from gorch.serde import check_type, converter
from gorch.store import SQLStore


class Language(Enum):
    EN = "en"
    FR = "fr"


class Level(IntEnum):
    LOW = 1
    HIGH = 2


class Color(StrEnum):
    RED = "red"
    BLUE = "blue"


class Number(Enum):
    ONE = 1
    TWO = 2


INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
EXACT_SPAN = timedelta(seconds=2**32)  # float seconds hold a duration exactly up to here
# Fixed UTC offsets (to the microsecond, as Python allows): an aware datetime reads back with
# its offset. (A zone with DST has wall times that compare unequal across zones: see the docs.)
DAY = timedelta(hours=23, minutes=59)
OFFSETS = st.timedeltas(min_value=-DAY, max_value=DAY).map(timezone)
DATETIMES = st.datetimes() | st.datetimes(timezones=OFFSETS)
TIMES = st.times() | st.times(timezones=OFFSETS)

# (type, strategy of its values): the leaves of generated types
SCALARS: list[tuple[Any, st.SearchStrategy[Any]]] = [
    (str, st.text(max_size=6)),
    (int, INT64),
    (float, st.floats(allow_nan=False)),  # NaN is never equal to itself; infinities are kept
    (bool, st.booleans()),
    (Decimal, st.decimals(allow_nan=False, allow_infinity=False)),
    (UUID, st.uuids()),
    (date, st.dates()),
    (datetime, DATETIMES),
    (time, TIMES),
    (timedelta, st.timedeltas(min_value=-EXACT_SPAN, max_value=EXACT_SPAN)),
    (bytes, st.binary(max_size=6)),
    (Language, st.sampled_from(Language)),
    (Level, st.sampled_from(Level)),
    (Color, st.sampled_from(Color)),
    (Number, st.sampled_from(Number)),
    (Literal["a", "b"], st.sampled_from(["a", "b"])),
    (Literal[1, 2, 3], st.sampled_from([1, 2, 3])),
]
# Dict keys and set items: hashable, and (for keys) each with its key text
KEYS = [str, int, bool, float, Decimal, UUID, date, datetime, Language, Level, Color, Number]
SCALAR_UNIONS = [
    str | int,
    int | float,
    str | int | None,
    bool | int,
    str | bool | None,
    Literal["x", "y"] | None,
    Language | None,
    Literal["x"] | int,
]


def values_of(t: Any) -> st.SearchStrategy[Any]:
    """A strategy of values of the (generated) type ``t``."""
    for scalar, strategy in SCALARS:
        if t == scalar:
            return strategy
    origin, args = typing.get_origin(t), typing.get_args(t)
    if dataclasses.is_dataclass(t) or attrs.has(t):
        fields = attrs.fields(t) if attrs.has(t) else dataclasses.fields(t)
        return st.builds(t, **{f.name: values_of(f.type) for f in fields})
    if origin is Literal:
        return st.sampled_from(args)
    if origin in (Union, typing.get_origin(int | str)):
        return st.one_of([st.none() if a is type(None) else values_of(a) for a in args])
    if origin is list:
        return st.lists(values_of(args[0]), max_size=3)
    if origin is set:
        return st.sets(values_of(args[0]), max_size=3)
    if origin is frozenset:
        return st.frozensets(values_of(args[0]), max_size=3)
    if origin is tuple and args[-1] is Ellipsis:
        return st.lists(values_of(args[0]), max_size=3).map(tuple)
    if origin is tuple:
        return st.tuples(*map(values_of, args))
    if origin is dict:
        return st.dictionaries(values_of(args[0]), values_of(args[1]), max_size=3)
    raise AssertionError(f"no strategy for {t!r}")


_names = itertools.count()


def _record(draw: st.DrawFn, inner: st.SearchStrategy[Any]) -> type:
    """A new dataclass or attrs class whose fields have types drawn from ``inner``."""
    n = next(_names)
    # Field names are unique across all generated records, so any two of them can be told
    # apart in a union (each has fields the other lacks).
    field_types = draw(st.lists(inner, min_size=1, max_size=4))
    fields = [(f"f{n}_{i}", t) for i, t in enumerate(field_types)]
    if draw(st.booleans()):
        return dataclasses.make_dataclass(f"Data{n}", fields)
    return attrs.make_class(f"Attrs{n}", {name: attrs.field(type=t) for name, t in fields})


@st.composite
def records(draw: st.DrawFn, inner: st.SearchStrategy[Any]) -> type:
    return _record(draw, inner)


@st.composite
def record_unions(draw: st.DrawFn, inner: st.SearchStrategy[Any]) -> Any:
    a, b = _record(draw, inner), _record(draw, inner)
    return Union[a, b, None] if draw(st.booleans()) else Union[a, b]  # noqa: UP007


def _key_types() -> st.SearchStrategy[Any]:
    plain = st.sampled_from(KEYS)
    fixed = st.lists(plain, min_size=1, max_size=3).map(
        lambda ts: tuple.__class_getitem__(tuple(ts))
    )
    return plain | fixed | plain.map(lambda t: tuple[t, ...])  # type: ignore[valid-type]


def _extend(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    hashable = st.sampled_from(KEYS)
    return st.one_of(
        inner.map(lambda t: list[t]),  # type: ignore[valid-type]
        inner.map(lambda t: tuple[t, ...]),  # type: ignore[valid-type]
        st.lists(inner, min_size=1, max_size=3).map(lambda ts: tuple.__class_getitem__(tuple(ts))),
        st.tuples(_key_types(), inner).map(lambda kv: dict[kv[0], kv[1]]),  # type: ignore[misc]
        hashable.map(lambda t: set[t]),  # type: ignore[valid-type]
        hashable.map(lambda t: frozenset[t]),  # type: ignore[valid-type]
        inner.map(lambda t: Optional[t]),  # noqa: UP045
        records(inner),
        record_unions(inner),
    )


TYPES = st.recursive(
    st.sampled_from([t for t, _ in SCALARS] + SCALAR_UNIONS), _extend, max_leaves=6
)


@st.composite
def workflows(draw: st.DrawFn) -> tuple[type, Any]:
    """A generated workflow class (a record of generated types), and one instance of it."""
    cls = draw(records(TYPES))
    return cls, draw(values_of(cls))


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(workflows())
def test_generated_workflow_classes_round_trip(case: tuple[type, Any]) -> None:
    cls, value = case
    assert check_type(cls) == []
    text = dumps(value)
    json.loads(text)  # plain JSON
    assert loads(text, cls) == value


# --------------------------------------------------------------------------------------------
# Dict keys: each key type, its key text, and back (these were written but not readable)


@pytest.mark.parametrize(
    ("key_type", "key", "text"),
    [
        (str, "a b", "a b"),
        (int, -42, "-42"),
        (bool, True, "true"),
        (float, 2.5, "2.5"),
        (float, float("-inf"), "-Infinity"),
        (Language, Language.FR, "fr"),
        (Level, Level.HIGH, "2"),
        (Color, Color.RED, "red"),
        (Number, Number.ONE, "1"),
        (Literal["a", 2], 2, "2"),
        (date, date(2026, 1, 31), "2026-01-31"),
        (datetime, datetime(2026, 1, 31, 12, 30), "2026-01-31T12:30:00"),
        (datetime, datetime(2026, 1, 31, 12, 30, tzinfo=UTC), "2026-01-31T12:30:00+00:00"),
        (UUID, UUID(int=1), "00000000-0000-0000-0000-000000000001"),
        (Decimal, Decimal("9.50"), "9.50"),
        (tuple[int, str], (1, "a"), '[1,"a"]'),
        (tuple[Language, date], (Language.EN, date(2026, 1, 1)), '["en","2026-01-01"]'),
        (tuple[int, ...], (), "[]"),
    ],
)
def test_every_key_type_is_written_as_its_key_text_and_read_back(
    key_type: Any, key: Any, text: str
) -> None:
    Names = dataclasses.make_dataclass("Names", [("by_key", dict[key_type, str])])
    data = Names({key: "x"})
    assert check_type(Names) == []
    stored = dumps(data)
    assert json.loads(stored) == {"by_key": {text: "x"}}
    back = loads(stored, Names)
    assert back == data
    (back_key,) = back.by_key
    assert type(back_key) is type(key)


def test_a_key_that_is_not_the_key_type_is_refused_with_its_path() -> None:
    @dataclasses.dataclass
    class Names:
        by_lang: dict[Language, str]
        by_id: dict[int, str]

    with pytest.raises(ValueError) as info:
        loads('{"by_lang": {"de": "x"}, "by_id": {"1.5": "y", "x": "z"}}', Names)
    assert info.value.details == [  # type: ignore[attr-defined]
        "expected one of 'en', 'fr' as the key, got the text 'de' @ $.by_lang['de']",
        "expected a whole number as the key, got the text '1.5' @ $.by_id['1.5']",
        "expected a whole number as the key, got the text 'x' @ $.by_id['x']",
    ]


def test_mappings_of_other_kinds_round_trip() -> None:
    @dataclasses.dataclass
    class Tallies:
        counts: Counter[Language]
        ordered: OrderedDict[int, str]
        groups: defaultdict[Level, list[int]]
        anything: dict[str, Any]

    data = Tallies(
        Counter({Language.EN: 2}),
        OrderedDict([(2, "b"), (1, "a")]),
        defaultdict(list, {Level.LOW: [1]}),
        {"n": [1, {"x": None}]},
    )
    assert check_type(Tallies) == []
    back = loads(dumps(data), Tallies)
    assert back == data
    assert type(back.counts) is Counter and type(back.ordered) is OrderedDict
    assert list(back.ordered) == [2, 1]
    assert back.groups[Level.HIGH] == []  # still a defaultdict


def test_a_dict_with_any_keys_holds_json_keys_as_text() -> None:
    # Documented: Any means "JSON as it is"; its keys are written as key text, read as text.
    assert loads(dumps({1: "a", Language.EN: "b"}), dict[Any, str]) == {"1": "a", "en": "b"}


# --------------------------------------------------------------------------------------------
# Values


@pytest.mark.parametrize(
    ("value", "t", "stored"),
    [
        (datetime(2026, 1, 31, 12, 0, 0, 5), datetime, "2026-01-31T12:00:00.000005"),
        (
            datetime(2026, 1, 31, 12, tzinfo=timezone(timedelta(hours=5, minutes=30))),
            datetime,
            "2026-01-31T12:00:00+05:30",
        ),
        (time(23, 59, 1), time, "23:59:01"),
        (time(8, tzinfo=timezone(-timedelta(hours=3))), time, "08:00:00-03:00"),
        (date(1, 1, 1), date, "0001-01-01"),
        ({1, 2}, set[int], [1, 2]),
        (frozenset({"a"}), frozenset[str], ["a"]),
        ((1, "a", None), tuple[int, str, None], [1, "a", None]),
        ((Level.LOW, Level.HIGH), tuple[Level, ...], [1, 2]),
        (Color.BLUE, Color, "blue"),
        ("b", Literal["a", "b"], "b"),
        (7, str | int, 7),
        ("7", str | int, "7"),
        (float("inf"), int | float, "Infinity"),
        (b"\x00\xff", bytes, "0RI"),  # base85 (cattrs' orjson converter)
    ],
)
def test_values_round_trip_to_equal_values_of_the_same_type(
    value: Any, t: Any, stored: Any
) -> None:
    text = dumps(converter.unstructure(value, t))
    assert json.loads(text) == stored
    back = loads(text, t)
    assert back == value
    assert type(back) is type(value)


def test_naive_datetimes_stay_naive_and_aware_ones_keep_their_offset() -> None:
    naive = datetime(2026, 3, 1, 9, 30)
    paris = datetime(2026, 3, 1, 9, 30, tzinfo=timezone(timedelta(hours=1), "CET"))
    naive_back, paris_back = loads(dumps([naive, paris]), list[datetime])
    assert naive_back == naive and naive_back.tzinfo is None
    assert paris_back == paris and paris_back.utcoffset() == timedelta(hours=1)


@dataclasses.dataclass
class Card:
    number: str


@attrs.define
class Cash:
    amount: Decimal


@dataclasses.dataclass
class Payment:
    by: Card | Cash | None
    tips: list[Card | Cash]


def test_a_union_of_records_reads_back_as_the_record_written() -> None:
    data = Payment(Cash(Decimal("2.50")), [Card("4242"), Cash(Decimal("1"))])
    assert check_type(Payment) == []
    back = loads(dumps(data), Payment)
    assert back == data and type(back.tips[1]) is Cash
    assert loads(dumps(Payment(None, [])), Payment) == Payment(None, [])


def test_a_self_referencing_record_round_trips() -> None:
    data = Tree(1, [Tree(2, []), Tree(3, [Tree(4, [])])])
    assert check_type(Tree) == []
    assert loads(dumps(data), Tree) == data


@dataclasses.dataclass
class Tree:
    value: int
    children: list[Tree]


def test_a_subclass_of_datetime_is_written_as_a_plain_datetime_under_freezegun() -> None:
    @dataclasses.dataclass
    class Stamp:
        at: datetime
        on: date

    with freeze_time("2026-01-02T03:04:05"):
        now, today = datetime.now(), date.today()
        assert type(now).__name__ == "FakeDatetime"  # what orjson refused to write
        assert dumps(now) == '"2026-01-02T03:04:05"'
        assert dumps(today) == '"2026-01-02"'
        stored = dumps(Stamp(now, today))
        assert dumps({"at": datetime.now(UTC)}) == '{"at":"2026-01-02T03:04:05+00:00"}'
    assert loads(stored, Stamp) == Stamp(datetime(2026, 1, 2, 3, 4, 5), date(2026, 1, 2))


# --------------------------------------------------------------------------------------------
# The instance that used to be bricked: a dict with enum keys, through a real SQLite store


@dataclasses.dataclass
class Greetings:
    """A workflow whose data has a dict keyed by an enum (and one keyed by int)."""

    by_language: dict[Language, str] = dataclasses.field(default_factory=dict)
    by_level: dict[Level, int] = dataclasses.field(default_factory=dict)

    def definition(self) -> Any:
        return S(Wait("for a greeting", On("Greet", self.greet)))

    def greet(self, text: str) -> None:
        self.by_language[Language.FR] = text
        self.by_level[Level.HIGH] = len(text)


def test_an_instance_with_enum_keys_reads_back_after_it_is_committed(tmp_path: Path) -> None:
    engine = Engine(SQLStore(f"sqlite:///{tmp_path / 'gorch.db'}"), {"greetings": Greetings})
    try:
        engine.start("greetings", Greetings(), "g-1")
        engine.send("g-1", "Greet", "bonjour")
        inst = engine.get("g-1")  # before the fix: SerializationError, for ever
        assert inst.data == Greetings({Language.FR: "bonjour"}, {Level.HIGH: 7})
    finally:
        engine.store.close()


def test_the_interpreter_round_trip_of_such_data_is_exact() -> None:
    wf, state = Greetings(), new_state("g", "greetings")
    resume(wf, state)
    handle_callback(CallbackRequest(name="Greet"), wf, state, "hallo")
    assert loads(dumps(wf), Greetings) == wf
