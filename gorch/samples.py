"""A stand-in instance of a workflow class, for reading the shape of its definition.

Validation, the catalog of events, the HTTP API and the diagrams need a workflow class's
statement tree before any instance exists. The tree's *shape* must not depend on the data (that
is a rule of the DSL), so any instance will do: :func:`sample` builds one without needing the
class to have defaults. It calls ``cls()`` when that works; otherwise it fills each required
field of a dataclass or attrs class with a zero value of its annotated type (``0``, ``""``, an
empty list, the first member of an enum, ``None`` for an optional field, a sample of a nested
record), and as a last resort makes the object without calling ``__init__``.

Values read from the sample (a ``Timeout``'s delay, a condition) are only examples: what an
instance does is decided by its own data.

Example:
    >>> from dataclasses import dataclass
    >>> @dataclass
    ... class Order:
    ...     customer: str
    ...     qty: int
    ...     def definition(self): ...
    >>> sample(Order)
    Order(customer='', qty=0)
"""

from __future__ import annotations

import dataclasses
import enum
import types
import typing
from collections.abc import Callable, Mapping, Sequence, Set
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, Literal, Union
from uuid import UUID

import attrs

__all__ = ["sample"]

_ZEROS: dict[Any, Any] = {
    bool: False,
    int: 0,
    float: 0.0,
    complex: 0j,
    str: "",
    bytes: b"",
    Decimal: Decimal(0),
    UUID: UUID(int=0),
    datetime: datetime(1970, 1, 1, tzinfo=UTC),
    date: date(1970, 1, 1),
    time: time(),
    timedelta: timedelta(0),
}
_DEPTH = 8  # nested records deeper than this get None (a self-referencing record ends)


def sample(cls: type) -> Any:
    """An instance of ``cls`` made without the caller's data.

    Raises:
        TypeError: ``cls`` cannot be instantiated at all (an abstract class, a ``__new__``
            that needs arguments).
    """
    return _record(cls, 0, first=True)


def _record(cls: Any, depth: int, *, first: bool = False) -> Any:
    try:
        return cls()
    except Exception:
        if not first and depth >= _DEPTH:
            return None
    kwargs = _required(cls, depth)
    if kwargs is not None:
        try:
            return cls(**kwargs)
        except Exception:
            pass
    return cls.__new__(cls)


def _required(cls: Any, depth: int) -> dict[str, Any] | None:
    """Zero values for the fields ``cls()`` needs, or None if ``cls`` is no record."""
    try:
        hints = typing.get_type_hints(cls)
    except Exception:
        hints = {}
    if attrs.has(cls):
        return {
            (f.alias or f.name): _zero(hints.get(f.name, f.type), depth)
            for f in attrs.fields(cls)
            if f.init and f.default is attrs.NOTHING
        }
    if dataclasses.is_dataclass(cls):
        return {
            f.name: _zero(hints.get(f.name, f.type), depth)
            for f in dataclasses.fields(cls)
            if f.init
            and f.default is dataclasses.MISSING
            and f.default_factory is dataclasses.MISSING
        }
    return None


def _zero(t: Any, depth: int) -> Any:
    """A plain value of type ``t``: zero, empty, the first choice, or None."""
    if t in _ZEROS:
        return _ZEROS[t]
    origin = typing.get_origin(t)
    of_form = _FORMS.get(origin)
    if of_form is not None:
        return of_form(typing.get_args(t), depth)
    return _zero_of_class(origin or t, depth)


def _zero_of_union(args: tuple[Any, ...], depth: int) -> Any:
    return None if type(None) in args else _zero(args[0], depth)


def _zero_of_tuple(args: tuple[Any, ...], depth: int) -> Any:
    if not args or (len(args) == 2 and args[1] is Ellipsis):
        return ()  # tuple[()] or tuple[X, ...]
    return tuple(_zero(a, depth) for a in args)


# The zero of a typing form, from its arguments: {origin: zero(args, depth)}.
_FORMS: dict[Any, Callable[[tuple[Any, ...], int], Any]] = {
    typing.Annotated: lambda args, depth: _zero(args[0], depth),
    Union: _zero_of_union,
    types.UnionType: _zero_of_union,
    Literal: lambda args, depth: args[0],
    tuple: _zero_of_tuple,
}
# Empty containers, most specific first: a container class that cannot be built without
# arguments gets the plain one.
_EMPTIES = ((Mapping, dict), (Set, set), (Sequence, list))


def _zero_of_class(cls: Any, depth: int) -> Any:
    """The zero of a class (or of the origin of a generic alias: ``list`` for ``list[int]``)."""
    if not isinstance(cls, type):
        return None
    if issubclass(cls, enum.Enum):
        return next(iter(cls), None)
    for base, empty in _EMPTIES:
        if issubclass(cls, base) and not issubclass(cls, str | bytes):
            try:
                return cls()
            except TypeError:
                return empty()
    if attrs.has(cls) or dataclasses.is_dataclass(cls):
        return _record(cls, depth + 1)
    for known, zero in _ZEROS.items():
        if issubclass(cls, known):
            return zero
    return None
