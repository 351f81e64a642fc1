"""The converter's hooks for scalars: JSON's own, numbers and times as text, enums and Literals.

Part of :mod:`gorch.serde` (see its docstring); :func:`gorch.serde.configure` registers them.
Every structure hook here is strict: it takes the JSON type the scalar is written as and
refuses any other (cattrs' default coerces: ``str(42)`` is ``"42"``, ``int(True)`` is ``1``),
because a workflow API must refuse a payload of the wrong shape instead of guessing what the
sender meant. Each is also given an instance of its type as it is (a value already built).
"""

from __future__ import annotations

import functools
import math
import re
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from enum import Enum
from typing import Any
from uuid import UUID

from gorch.serde._types import NON_FINITE, Hook, by_value, float_text, literal_values, refuse

STRICT_SCALARS: tuple[tuple[type, tuple[type, ...]], ...] = (
    (str, (str,)),
    (int, (int,)),
    (float, (float, int)),  # a whole number is a float too (JSON writes 2.0 as 2 elsewhere)
    (bool, (bool,)),
)
"""Each of JSON's own scalar types, with the Python types of the JSON values it takes."""


def strict_scalar(cls: type, accepted: tuple[type, ...]) -> Hook:
    """A structure hook for ``cls`` (str, int, float, bool) that takes ``accepted`` only.

    A subclass target (an enum with a str or int mix-in, an ``IntEnum``) is read by value; a
    ``float`` also takes the text ``"NaN"``, ``"Infinity"`` or ``"-Infinity"``.
    """

    def structure_strict(value: Any, target: Any) -> Any:
        if target is not cls:  # a subclass: an enum (str, int mix-ins) by value
            if isinstance(target, type) and issubclass(target, Enum):
                return enum_hook(target)(value, target)
            if type(value) in accepted or isinstance(value, target):
                return target(value)
            raise refuse(cls, value)
        if type(value) in accepted:
            return cls(value) if type(value) is not cls else value
        if cls is float and type(value) is str and value in NON_FINITE:
            return NON_FINITE[value]
        raise refuse(cls, value)

    return structure_strict


def unstructure_float(value: float) -> float | str:
    """JSON has no NaN or infinity: write them as the strings JavaScript and Python print."""
    return value if math.isfinite(value) else float_text(value)


# Float seconds hold any duration exactly (to the microsecond) up to 2**32 s, about 136 years.
_EXACT_SECONDS = timedelta(seconds=2**32)


def unstructure_timedelta(value: timedelta) -> float:
    """A duration as float seconds; one that they cannot hold exactly is refused."""
    seconds = value.total_seconds()
    # Exact below ~136 years; beyond, float seconds may drop microseconds: check, never guess.
    if abs(value) > _EXACT_SECONDS and timedelta(seconds=seconds) != value:
        raise ValueError(
            f"cannot store the duration {value!r} exactly as seconds; store such a long span "
            f"as a date or a number of days instead"
        )
    return seconds


def structure_timedelta(value: Any, _: Any) -> timedelta:
    """A duration from a number of seconds."""
    if isinstance(value, timedelta):
        return value
    if type(value) not in (int, float):
        raise refuse(timedelta, value)
    try:
        return timedelta(seconds=value)
    except OverflowError:
        raise ValueError(f"{value!r} seconds is longer than a timedelta can be") from None


def structure_decimal(value: Any, _: Any) -> Decimal:
    """A ``Decimal`` from its text (as written) or from a number (as users send it)."""
    if isinstance(value, Decimal):
        return value
    if type(value) in (str, int, float):
        try:
            return Decimal(value if type(value) is not float else repr(value))
        except InvalidOperation:
            pass
    raise refuse(Decimal, value)


def structure_uuid(value: Any, _: Any) -> UUID:
    """A ``UUID`` from its text."""
    if isinstance(value, UUID):
        return value
    if type(value) is str:
        try:
            return UUID(value)
        except ValueError:
            pass
    raise refuse(UUID, value)


# CPython 3.11 reads an offset under one second ("+00:00:00.000001") as UTC: read it here.
_SUB_SECOND_OFFSET = re.compile(r"([+-])00:00:00\.(\d{6})$")


def iso_hook(cls: type) -> Hook:
    """Structure ``cls`` (datetime, date, time) from ISO-8601 text, or take an instance.

    A datetime is a date to ``isinstance``; a ``date`` field takes a date only.
    """
    parse = cls.fromisoformat  # type: ignore[attr-defined]
    exclude = datetime if cls is date else None

    def structure_iso(value: Any, _: Any) -> Any:
        if isinstance(value, cls) and not (exclude and isinstance(value, exclude)):
            return value
        if type(value) is str:
            try:
                parsed = parse(value)
            except ValueError:
                raise refuse(cls, value) from None
            aware = getattr(parsed, "tzinfo", None) is not None
            if aware and "." in value[-8:] and (m := _SUB_SECOND_OFFSET.search(value)):
                offset = timedelta(microseconds=int(m[2]) * (-1 if m[1] == "-" else 1))
                parsed = parsed.replace(tzinfo=timezone(offset))
            return parsed
        raise refuse(cls, value)

    return structure_iso


# --------------------------------------------------------------------------------------------
# Enums and Literals: by value, and the value's JSON type must match (``true`` is not ``1``)


def _choice_hook(t: Any, values: list[Any]) -> Hook:
    table = by_value(values)
    floats = any(k[0] is float for k in table)
    cls = t if isinstance(t, type) else None

    def structure_choice(value: Any, _: Any = None) -> Any:
        if cls is not None and isinstance(value, cls):
            return value
        try:
            found = table.get((type(value), value), table)
            if found is table and floats and type(value) is int:
                found = table.get((float, float(value)), table)
        except TypeError:  # unhashable: an array or an object
            found = table
        if found is table:
            raise refuse(t, value)
        return found

    return structure_choice


@functools.cache
def enum_hook(cls: type[Enum]) -> Hook:
    """Structure the enum ``cls`` by value (one hook per class, shared by every converter)."""
    return _choice_hook(cls, list(cls))


def literal_hook(t: Any) -> Hook:
    """Structure ``Literal[...]`` by value."""
    return _choice_hook(t, literal_values(t))
