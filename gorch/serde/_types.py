"""What kind of type a type is, and errors in people's words, for :mod:`gorch.serde`.

Shared by the converter's hooks (:mod:`gorch.serde._scalars`, :mod:`gorch.serde._records`,
:mod:`gorch.serde._shapes`) and by ``check_type`` (:mod:`gorch.serde._check`), so that the check
and the hooks agree on what a type is. Nothing here knows the converter.
"""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from collections import Counter, OrderedDict, defaultdict
from collections import abc as cabc
from collections.abc import Callable, Mapping
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from enum import Enum
from typing import Any, Literal, Union, get_args, get_origin
from uuid import UUID

import attrs

Hook = Callable[..., Any]
"""A structure hook, ``(value, type) -> instance``, or an unstructure hook, ``value -> JSON``."""

NoneType = type(None)
NATIVE = (str, int, float, bool, NoneType)
"""The types JSON itself has: a union of them is told apart by the JSON type of the value."""
NON_FINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}

_ARRAYS: dict[Any, type] = {
    tuple: tuple,
    set: set,
    cabc.MutableSet: set,
    frozenset: frozenset,
    cabc.Set: frozenset,
    cabc.Sequence: list,  # a list, as most such fields hold (cattrs' default is a tuple)
}
_MAPPINGS: dict[Any, type] = {
    dict: dict,
    cabc.Mapping: dict,
    cabc.MutableMapping: dict,
    OrderedDict: OrderedDict,
    Counter: Counter,
    defaultdict: defaultdict,  # its default factory: the value type, as cattrs does
}


def is_record(t: Any) -> bool:
    """A dataclass or an attrs class (a class, not an instance)."""
    return isinstance(t, type) and (attrs.has(t) or dataclasses.is_dataclass(t))


def is_union(t: Any) -> bool:
    return get_origin(t) in (Union, types.UnionType)


def is_namedtuple(t: Any) -> bool:
    return isinstance(t, type) and issubclass(t, tuple) and hasattr(t, "_fields")


def is_list(t: Any) -> bool:
    return t is list or get_origin(t) in (list, cabc.MutableSequence)


def array_origin(t: Any) -> type | None:
    """What a tuple, set, frozenset or Sequence type is built as, or None for other types."""
    return None if is_namedtuple(t) else _ARRAYS.get(get_origin(t) or t)


def mapping_origin(t: Any) -> type | None:
    """What a dict, Mapping, OrderedDict, Counter or defaultdict type is built as, or None."""
    return _MAPPINGS.get(get_origin(t) or t)


def mapping_args(t: Any) -> tuple[Any, Any]:
    """(key type, value type) of a mapping type; ``Any`` where not given."""
    args = get_args(t)
    if len(args) == 2:
        return args[0], args[1]
    return (args[0] if args else Any), (int if mapping_origin(t) is Counter else Any)


def literal_values(t: Any) -> list[Any]:
    """The values of ``Literal[...]``, nested Literals flattened."""
    out: list[Any] = []
    for a in get_args(t):
        out.extend(literal_values(a) if get_origin(a) is Literal else [a])
    return out


def is_literal(t: Any) -> bool:
    return get_origin(t) is Literal


def is_enum(t: Any) -> bool:
    """An enum class (``Enum``, ``IntEnum``, ``StrEnum``, ...)."""
    return isinstance(t, type) and issubclass(t, Enum)


def is_array(t: Any) -> bool:
    """A tuple, set, frozenset or Sequence type (built by :func:`array_origin`)."""
    return array_origin(t) is not None


def is_mapping(t: Any) -> bool:
    """A dict, Mapping, OrderedDict, Counter or defaultdict type."""
    return mapping_origin(t) is not None


def is_choice(t: Any) -> bool:
    """An enum class or a ``Literal``: a value out of a fixed set."""
    return get_origin(t) is Literal or (isinstance(t, type) and issubclass(t, Enum))


def choices(t: Any) -> list[Any]:
    """The members of an enum class, or the values of a ``Literal``."""
    return list(typing.cast("type[Enum]", t)) if isinstance(t, type) else literal_values(t)


def unwrap(t: Any) -> Any:
    """``Annotated[X, ...]`` and ``NewType`` to the type they stand for."""
    while True:
        if get_origin(t) is typing.Annotated:
            t = get_args(t)[0]
        elif isinstance(t, typing.NewType):
            t = t.__supertype__
        else:
            return t


def init_names(cls: type) -> frozenset[str]:
    """The keys cattrs reads and writes for a record: its fields that ``__init__`` takes."""
    if attrs.has(cls):
        return frozenset(a.name for a in attrs.fields(cls) if a.init)
    return frozenset(f.name for f in dataclasses.fields(cls) if f.init)


def by_value(values: list[Any]) -> dict[tuple[type, Any], Any]:
    """Each value under (its JSON type, its JSON value); an enum member under its value."""
    table: dict[tuple[type, Any], Any] = {}
    for v in values:
        raw = v.value if isinstance(v, Enum) else v
        table[(type(raw), raw)] = v
    return table


def type_name(t: Any) -> str:
    """``Pizza``, ``dict[Topping, int]``: a type as a user wrote it, without module paths."""
    if isinstance(t, type) and not get_args(t):
        return t.__name__
    text = re.sub(r"\b(?:\w+\.)+(\w+)", r"\1", str(t))
    return text.replace("NoneType", "None")


# --------------------------------------------------------------------------------------------
# Errors in people's words: what was expected, and what came


def float_text(value: float) -> str:
    """A float as text: ``2.5``; ``NaN``, ``Infinity`` and ``-Infinity`` as JavaScript has them."""
    if math.isfinite(value):
        return repr(value)
    return "NaN" if value != value else ("Infinity" if value > 0 else "-Infinity")


def describe(value: Any) -> str:
    """A JSON value as a person would name it: ``the text 'abc'``, ``the number 2.5``."""
    if value is None:
        return "null"
    if value is True or value is False:
        return "true" if value else "false"
    if type(value) is str:
        text = repr(value)
        return f"the text {text if len(text) <= 60 else text[:56] + '...' + text[0]}"
    if type(value) in (int, float):
        return f"the number {float_text(value) if type(value) is float else value}"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list | tuple):
        return "an array"
    return f"a {type(value).__name__}"


_WORDS: dict[Any, str] = {
    str: "text",
    int: "a whole number",
    float: "a number",
    bool: "true or false",
    NoneType: "null",
    Decimal: "a decimal number (a number, or text such as '9.50')",
    UUID: "a UUID (text such as '12345678-1234-5678-1234-567812345678')",
    datetime: "a date and time (ISO 8601 text such as '2026-01-31T12:00:00+00:00')",
    date: "a date (ISO 8601 text such as '2026-01-31')",
    time: "a time of day (ISO 8601 text such as '12:30:00')",
    timedelta: "a number of seconds",
}


def expected(t: Any) -> str:
    """What a type takes, in words: ``a whole number``, ``an object (Pizza)``, ``one of ...``."""
    try:
        words = _WORDS.get(t)
    except TypeError:  # an unhashable annotation
        words = None
    if words:
        return words
    if is_choice(t):
        values = [v.value if isinstance(v, Enum) else v for v in choices(t)]
        shown = ", ".join(repr(v) for v in values[:12])
        return f"one of {shown}{', ...' if len(values) > 12 else ''}"
    if is_union(t):
        parts = [expected(a) for a in get_args(t)]
        return ", ".join(parts[:-1]) + " or " + parts[-1]
    if is_record(t):
        return f"an object ({t.__name__})"
    if mapping_origin(t) is not None:
        return "an object"
    if array_origin(t) is not None or is_list(t):
        return "an array"
    return type_name(t)


def refuse(t: Any, value: Any) -> ValueError:
    """``expected a whole number, got the text 'two'``: the error every strict hook raises."""
    return ValueError(f"expected {expected(t)}, got {describe(value)}")
