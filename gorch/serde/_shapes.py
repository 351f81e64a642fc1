"""The converter's hooks for arrays, mappings (and their keys) and unions of JSON scalars.

Part of :mod:`gorch.serde` (see its docstring); :func:`gorch.serde.configure` registers them.
Every factory takes the converter as its second argument (a cattrs "extended" factory), so the
hooks of the items, keys and values are the converter's own, including hooks users register
later.

Dict keys. JSON object keys are text; the *key text* of a key is, by the key's type:

- ``str``: itself; an enum or a ``Literal``: the key text of its value;
- ``int``, ``float``, ``bool``: its JSON text (``"42"``, ``"2.5"``, ``"Infinity"``, ``"true"``);
- ``Decimal``, ``UUID``, ``date``, ``datetime``, ``time``: their text, as when they are values;
- a tuple: the JSON array text of its items as values (``(1, "a")`` is ``'[1,"a"]'``);
- a type with your own hooks: the text its unstructure hook returns (it must return a str).

Reading parses the key text with the key type, so a key reads back equal, or is refused with
``expected a whole number as the key, got the text 'x'``. A dict whose key type is ``Any`` (or a
bare ``dict``) gets the key text of each key by its runtime type, and reads its keys back as
text.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping
from datetime import timedelta
from enum import Enum
from typing import Any, Literal, TypeVar, Union, get_args, get_origin

import orjson
from cattrs import Converter
from cattrs.cols import list_structure_factory
from cattrs.errors import ClassValidationError, IterableValidationError, IterableValidationNote

from gorch.serde._types import (
    NATIVE,
    NON_FINITE,
    Hook,
    array_origin,
    by_value,
    choices,
    describe,
    expected,
    is_choice,
    is_union,
    literal_values,
    mapping_args,
    mapping_origin,
    refuse,
    type_name,
    unwrap,
)


def _note(e: Exception, where: int | str, t: Any) -> Exception:
    """Mark ``e`` with the index or key it happened at (cattrs' transform_error reads this)."""
    e.__notes__ = [*getattr(e, "__notes__", []), IterableValidationNote("", where, t)]
    return e


# --------------------------------------------------------------------------------------------
# Arrays: lists, tuples, sets, frozensets only from a JSON array (a string is not a list)


def list_hook(t: Any, c: Converter) -> Hook:
    """Structure a list (or MutableSequence) type: cattrs' own hook, from a JSON array only."""
    inner = list_structure_factory(t, c)

    def structure_list(value: Any, _: Any) -> Any:
        if not isinstance(value, list | tuple):
            raise ValueError(f"expected an array, got {describe(value)}")
        return inner(value, t)

    return structure_list


def array_hook(t: Any, c: Converter) -> Hook:
    """Structure a tuple, set, frozenset or Sequence type from a JSON array, item by item."""
    build = array_origin(t)
    args = get_args(t)
    fixed = build is tuple and bool(args) and not (len(args) == 2 and args[1] is Ellipsis)
    item_types = list(args) if fixed else [args[0] if args else Any]
    hooks = [c.get_structure_hook(a) for a in item_types]

    def structure_array(value: Any, _: Any) -> Any:
        if not isinstance(value, list | tuple | set | frozenset):
            raise ValueError(f"expected an array, got {describe(value)}")
        if fixed and len(value) != len(item_types):
            raise ValueError(
                f"expected an array of {len(item_types)} items, got an array of {len(value)}"
            )
        out, errors = [], []
        for i, v in enumerate(value):
            k = i if fixed else 0
            try:
                out.append(hooks[k](v, item_types[k]))
            except Exception as e:
                errors.append(_note(e, i, item_types[k]))
        if errors:
            raise IterableValidationError(f"While structuring {t!r}", errors, t)
        return build(out)  # type: ignore[misc]

    return structure_array


# --------------------------------------------------------------------------------------------
# Mappings and their keys (see the module docstring)


def _key_text_is_json(t: Any) -> bool:
    """Whether a key type's key text is JSON (numbers, tuples) rather than its text form."""
    return t in (int, float, bool, timedelta) or t is tuple or get_origin(t) is tuple


def key_codec(t: Any, c: Converter) -> tuple[Callable[[Any], str] | None, Hook | None]:
    """(write, read) for dict keys of type ``t``; None where the key is taken as it is."""
    t = unwrap(t)
    if t is str or t is Any or isinstance(t, TypeVar):
        return None, None
    if is_choice(t):
        raws = {v: v.value if isinstance(v, Enum) else v for v in choices(t)}
        to_text = {v: (key_codec(type(raw), c)[0] or str)(raw) for v, raw in raws.items()}
        to_value = {text: v for v, text in to_text.items()}

        def read_choice(text: Any, _: Any = None) -> Any:
            if text in to_value:
                return to_value[text]
            raise ValueError(f"expected {expected(t)} as the key, got {describe(text)}")

        return to_text.__getitem__, read_choice
    unstructure_key = c.get_unstructure_hook(t)
    structure_key = c.get_structure_hook(t)
    as_json = _key_text_is_json(t)

    def write(key: Any) -> str:
        raw = unstructure_key(key)
        if type(raw) is str:
            return raw
        if not as_json:
            raise ValueError(f"a dict key of type {type_name(t)} is not written as text")
        return orjson.dumps(raw).decode()

    def read(text: Any, _: Any = None) -> Any:
        try:
            return structure_key(orjson.loads(text) if as_json else text, t)
        except Exception:
            try:  # "NaN" and "Infinity" are float keys that are not JSON numbers
                return structure_key(text, t)
            except Exception:
                pass
        raise ValueError(f"expected {expected(t)} as the key, got {describe(text)}")

    return write, read


def _any_key(c: Converter) -> Callable[[Any], Any]:
    """The key text of a key of a dict whose key type is not known, by the key's own type."""

    def write_any(key: Any) -> Any:
        if type(key) is str:
            return key
        write = key_codec(type(key), c)[0]
        return write(key) if write else key

    return write_any


def unstructure_mapping_hook(t: Any, c: Converter) -> Callable[[Any], Any]:
    """Write a mapping type as a JSON object whose keys are the key text of its keys."""
    key_type, _ = mapping_args(t)
    write: Any = key_codec(key_type, c)[0] if key_type is not Any else _any_key(c)
    return c.gen_unstructure_mapping(t, unstructure_to=dict, key_handler=write)


def mapping_hook(t: Any, c: Converter) -> Hook:
    """Structure a mapping type from a JSON object, reading each key text with the key type."""
    build = mapping_origin(t)
    key_type, value_type = mapping_args(t)
    read = key_codec(key_type, c)[1]
    value_hook = c.get_structure_hook(value_type)

    def structure_mapping(value: Any, _: Any) -> Any:
        if not isinstance(value, Mapping):
            raise ValueError(f"expected an object, got {describe(value)}")
        out, errors = {}, []
        for k, v in value.items():
            try:
                item = value_hook(v, value_type)
                out[read(k, key_type) if read else k] = item
            except Exception as e:
                errors.append(_note(e, k, t))
        if errors:
            raise IterableValidationError(f"While structuring {t!r}", errors, t)
        if build is defaultdict:
            return defaultdict(value_type, out)
        return out if build is dict else build(out)  # type: ignore[misc]

    return structure_mapping


# --------------------------------------------------------------------------------------------
# Unions: JSON scalars by their JSON type, the rest (records) by cattrs' disambiguation


def scalar_union(c: Converter) -> Callable[[Any], bool]:
    """The predicate of the unions :func:`union_hook` reads: with a JSON scalar or a Literal
    member, not ``Optional[X]`` and not one the user registered a union hook for on ``c``."""

    def is_scalar_union(t: Any) -> bool:
        if not is_union(t) or t in c._union_struct_registry:  # a user's hook comes first
            return False
        args = get_args(t)
        if len(args) == 2 and type(None) in args:
            return False  # Optional[X]: cattrs' own hook (None, or an X)
        return any(a in NATIVE or get_origin(a) is Literal for a in args)

    return is_scalar_union


def union_hook(t: Any, c: Converter) -> Hook:
    """Structure a union of JSON scalars by the JSON type of the value; the rest by cattrs."""
    args = get_args(t)
    classes = {a for a in args if a in NATIVE}
    literals = by_value([v for a in args if get_origin(a) is Literal for v in literal_values(a)])
    int_as_float = float in classes and int not in classes
    non_finite = float in classes and str not in classes
    others = [a for a in args if a not in NATIVE and get_origin(a) is not Literal]
    rest: Any = (Union[tuple(others)] if len(others) > 1 else others[0]) if others else None  # noqa: UP007
    rest_hook = c.get_structure_hook(rest) if rest is not None else None

    def structure_union(value: Any, _: Any) -> Any:
        kind = type(value)
        if kind in classes:
            return value
        if literals:
            try:
                found = literals.get((kind, value), literals)
            except TypeError:  # unhashable: an array or an object
                found = literals
            if found is not literals:
                return found
        if int_as_float and kind is int:
            return float(value)
        if non_finite and kind is str and value in NON_FINITE:
            return NON_FINITE[value]
        if rest_hook is None:
            raise refuse(t, value)
        try:
            return rest_hook(value, rest)
        except (ClassValidationError, IterableValidationError):
            raise  # the value has the right shape; its own problems say more
        except Exception:
            raise refuse(t, value) from None

    return structure_union
