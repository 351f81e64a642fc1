"""The personal data a workflow class declares, for :meth:`gorch.Engine.delete_data`.

A class names the fields that hold personal data::

    personal_data: ClassVar[tuple[str, ...]] = ("name", "phone", "customer.email")

Each entry is a field of the class, or a dotted path through fields that hold records
(dataclasses or attrs classes, optionally ``X | None``) to a field of the innermost one. To
erase is to set each of them to its **neutral value**: the field's default if it has one, else
the empty value of its type (``""``, ``0``, ``None`` for an optional field, ``[]``, ``{}``, a
record of neutral values; :func:`gorch.samples.sample` makes them), so that the erased data
still structures into the class and the instance can go on.

:func:`personal_problems` holds the declaration to these rules at registration: every name is
a field, and each field's neutral value round-trips through JSON into its type (a field with
no default whose type has no empty value, a validated custom class say, must be given a
default).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from typing import Any, Union

import attrs

from gorch import serde
from gorch.errors import did_you_mean, suggest
from gorch.samples import sample

_MISSING = object()


def personal_data_of(cls: type) -> tuple[str, ...]:
    """The fields the class declares as personal data (``personal_data``); empty when it
    declares none."""
    declared = getattr(cls, "personal_data", None)
    if not declared or isinstance(declared, str):
        return ()
    try:
        return tuple(p for p in declared if isinstance(p, str))
    except TypeError:
        return ()


def neutral_values(cls: type) -> dict[str, Any]:
    """Each declared path of the class with the JSON of its neutral value (see the module
    docstring), in the declared order.

    Raises:
        ValueError: the declaration breaks a rule (:func:`personal_problems` says which).
    """
    out: dict[str, Any] = {}
    for path in personal_data_of(cls):
        value, problem = _neutral(cls, path)
        if problem:
            raise ValueError(f"personal_data {path!r}: {problem}")
        out[path] = value
    return out


def personal_problems(cls: type) -> list[str]:
    """What is wrong with the class's ``personal_data`` declaration (empty if nothing, or if
    it declares none)."""
    declared = getattr(cls, "personal_data", None)
    if declared is None:
        return []
    if isinstance(declared, str) or not isinstance(declared, tuple | list):
        return [
            f"personal_data must be a tuple of field names (dotted for nested fields), got "
            f"{declared!r}; write personal_data: ClassVar[tuple[str, ...]] = ('name', ...)"
        ]
    problems = []
    for path in declared:
        if not isinstance(path, str) or not path:
            problems.append(f"personal_data holds {path!r}; each entry is a field name")
            continue
        if declared.count(path) > 1:
            problems.append(f"personal_data names {path!r} more than once")
            continue
        _, problem = _neutral(cls, path)
        if problem:
            problems.append(f"personal_data {path!r}: {problem}")
    return list(dict.fromkeys(problems))


def _neutral(cls: type, path: str) -> tuple[Any, str]:
    """The JSON of the neutral value of ``path`` in ``cls``, and "" ; or None and what is
    wrong."""
    owner: Any = cls
    parts = path.split(".")
    for i, name in enumerate(parts):
        fields = _fields(owner)
        if fields is None:
            where = ".".join(parts[:i])
            return None, (
                f"{where!r} is not a record (a dataclass or attrs class), so it has no field "
                f"{name!r}; name the field that holds the personal data"
            )
        if name not in fields:
            hint = did_you_mean(suggest(name, fields))
            return None, f"{owner.__name__} has no field {name!r}.{hint}"
        if i < len(parts) - 1:
            owner = _record_of(fields[name])
    return _neutral_of_field(owner, parts[-1], _fields(owner) or {})


def _neutral_of_field(owner: type, name: str, fields: Mapping[str, Any]) -> tuple[Any, str]:
    try:
        value = getattr(sample(owner), name, _MISSING)
    except Exception:
        value = _MISSING
    if value is _MISSING:
        return None, (
            f"no neutral value can be made for {owner.__name__}.{name}: give the field a "
            f"default (what it holds once erased)"
        )
    try:
        plain = serde.unstructure(value)
        serde.structure(plain, fields[name])
    except Exception:
        return None, (
            f"the empty value {value!r} does not fit the type of {owner.__name__}.{name}; "
            f"give the field a default (what it holds once erased)"
        )
    return plain, ""


def _fields(cls: Any) -> dict[str, Any] | None:
    """The fields of a record class, by name, with their types; None for a non-record."""
    if not isinstance(cls, type):
        return None
    try:
        hints = typing.get_type_hints(cls)
    except Exception:
        hints = {}
    if attrs.has(cls):
        return {f.name: hints.get(f.name, f.type) for f in attrs.fields(cls)}
    if dataclasses.is_dataclass(cls):
        return {f.name: hints.get(f.name, f.type) for f in dataclasses.fields(cls)}
    return None


def _record_of(t: Any) -> Any:
    """The record class a field of type ``t`` holds (``X`` of ``X | None``), else ``t``."""
    origin = typing.get_origin(t)
    if origin is typing.Annotated:
        return _record_of(typing.get_args(t)[0])
    if origin is Union or origin is types.UnionType:
        kinds = [a for a in typing.get_args(t) if a is not type(None)]
        return _record_of(kinds[0]) if len(kinds) == 1 else t
    return t
