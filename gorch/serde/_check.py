"""``gorch.serde.check_type``: whether a workflow class round-trips through the converter.

A walk over a class's field types that mirrors the hooks :func:`gorch.serde.configure`
registers: what they write and read back equal is accepted; anything else is reported, with the
field's path, before a value of it is ever stored (a value that is written but cannot be read
back bricks an instance). Kept apart from the hooks because it runs once per workflow class,
never on the hot path.
"""

from __future__ import annotations

import dataclasses
import re
import sys
import typing
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from enum import Enum
from typing import Any, Literal, TypeVar, Union, get_args, get_origin
from uuid import UUID

import attrs

from gorch.serde import _types as T
from gorch.serde._codec import converter
from gorch.serde._converter import Converter

NoneType = type(None)
_NATIVE = (str, int, float, bool, NoneType)
# Types the converter has a hook for, and what JSON each one is written as.
_SCALARS: dict[Any, frozenset[str]] = {
    str: frozenset({"text"}),
    int: frozenset({"int"}),
    float: frozenset({"float", "text"}),  # "NaN", "Infinity", "-Infinity"
    bool: frozenset({"bool"}),
    NoneType: frozenset({"null"}),
    Decimal: frozenset({"text"}),
    UUID: frozenset({"text"}),
    datetime: frozenset({"text"}),
    date: frozenset({"text"}),
    time: frozenset({"text"}),
    bytes: frozenset({"text"}),  # base85 (cattrs' orjson converter)
    timedelta: frozenset({"float"}),
}
_KEY_SCALARS = frozenset({str, int, float, bool, Decimal, UUID, datetime, date, time, bytes})
_EVERYTHING = frozenset({"text", "int", "float", "bool", "null", "object", "array"})
_KIND_WORDS = {
    "text": "text",
    "int": "a whole number",
    "float": "a number",
    "bool": "true or false",
    "null": "null",
    "object": "an object",
    "array": "an array",
}
_OBJECT = frozenset({"object"})
_ARRAY = frozenset({"array"})
_UNRESOLVED = object()
_KEY_ADVICE = "use a str, int, enum, date, datetime, UUID, Decimal or tuple key"
_HOOKS_ADVICE = "register a structure and an unstructure hook for it on gorch.serde.converter"


def _kind_of(value: Any) -> str:
    value = value.value if isinstance(value, Enum) else value
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    return {int: "int", float: "float", str: "text"}.get(type(value), "object")


def _captured(natives: set[Any]) -> set[str]:
    """The kinds of JSON that a union's JSON scalar members take when reading."""
    captured = {k for a in natives for k in _SCALARS[a] if not (a is float and k == "text")}
    if float in natives and int not in natives:
        captured.add("int")  # a float field takes a whole number too
    return captured


def _shape_kinds(t: Any) -> frozenset[str] | None:
    """What JSON a record, mapping or array type is written as; None for any other type."""
    if T.is_record(t) or T.is_record(get_origin(t)) or typing.is_typeddict(t) or T.is_mapping(t):
        return _OBJECT
    if T.is_array(t) or T.is_list(t) or T.is_namedtuple(t):
        return _ARRAY
    return None


class Checker:
    """One walk over a type; :attr:`problems` collects one sentence per problem."""

    def __init__(self, converter: Converter) -> None:
        self.c = converter
        self.problems: list[str] = []
        self.seen: set[Any] = set()

    def check(self, cls: Any) -> list[str]:
        self.type(cls, T.type_name(cls))
        return self.problems

    def add(self, path: str, t: Any, why: str) -> None:
        self.problems.append(f"{path}: {T.type_name(t)} — {why}")

    def hooks(self, t: Any) -> tuple[bool, bool]:
        """Whether the user registered a (structure, unstructure) hook that applies to ``t``."""
        return self.c.user_hooked(t, "structure"), self.c.user_hooked(t, "unstructure")

    # -- values --------------------------------------------------------------------------------

    def type(self, t: Any, path: str) -> None:
        t = self._strip(t)
        hooks = self.hooks(t)
        if t is Any or isinstance(t, TypeVar) or t in _SCALARS or all(hooks):
            return
        if not (self.choice_or_record(t, path) or self.container(t, path)):
            self.unknown(t, path, hooks)

    def choice_or_record(self, t: Any, path: str) -> bool:
        """Walk an enum, a Literal, a union or a record; False if ``t`` is none of them."""
        if T.is_choice(t):
            self.choices(t, T.choices(t), path)
        elif T.is_union(t):
            self.union(t, path)
        elif T.is_record(t) or T.is_record(get_origin(t)):
            self.record(t, path)
        else:
            return False
        return True

    def container(self, t: Any, path: str) -> bool:
        """Walk the items of a container type; False if ``t`` is not one."""
        args = get_args(t)
        if T.is_namedtuple(t) or typing.is_typeddict(t):
            for name, hint in self.hints(t, path).items():
                self.type(hint, f"{path}.{name}")
        elif T.is_mapping(t):
            key, value = T.mapping_args(t)
            self.key(key, t, path)
            self.type(value, f"{path}[]")
        elif get_origin(t) is tuple and args and args[-1] is not Ellipsis:
            for i, item in enumerate(args):
                self.type(item, f"{path}[{i}]")
        elif T.is_array(t) or T.is_list(t):
            self.type(args[0] if args else Any, f"{path}[]")
        else:
            return False
        return True

    def unknown(self, t: Any, path: str, hooks: tuple[bool, bool]) -> None:
        """A type the converter has no rule for: only one of its hooks, or none."""
        if any(hooks):
            has, lacks = ("structure", "unstructure") if hooks[0] else ("unstructure", "structure")
            self.add(path, t, f"has a {has} hook on gorch.serde.converter but no {lacks} hook; "
                     f"register both, so that what is written can be read back")  # fmt: skip
        else:
            self.add(path, t, "cannot be stored as JSON: it is not a type gorch stores, a "
                     f"dataclass or an attrs class; use one of those (str for text), or "
                     f"{_HOOKS_ADVICE}")  # fmt: skip

    def _strip(self, t: Any) -> Any:
        t = T.unwrap(t)
        while get_origin(t) in (typing.Required, typing.NotRequired, typing.ClassVar):
            t = T.unwrap(get_args(t)[0])
        return t

    def hints(self, cls: Any, path: str) -> dict[str, Any]:
        """The resolved annotations of ``cls``; one that cannot be resolved is a problem."""
        try:
            return typing.get_type_hints(cls, include_extras=True)
        except Exception:  # say which annotation: resolve them one by one
            pass
        scope = vars(sys.modules[cls.__module__]) if cls.__module__ in sys.modules else {}
        hints = {}
        for klass in reversed(cls.__mro__):
            for name, hint in vars(klass).get("__annotations__", {}).items():
                try:
                    hints[name] = typing._eval_type(  # type: ignore[attr-defined]
                        typing.ForwardRef(hint) if isinstance(hint, str) else hint,
                        scope,
                        dict(vars(cls)),
                    )
                except Exception as exc:
                    hints[name] = _UNRESOLVED
                    words = set(re.findall(r"[A-Za-z_]\w*", str(hint)))
                    hidden = sorted(words & set(vars(cls)))
                    fix = (
                        f"the class attribute {hidden[0]!r} hides the type of that name; "
                        f"rename the attribute, or write builtins.{hidden[0]}"
                        if hidden
                        else "define the types it names at module level, or import them"
                    )
                    self.problems.append(
                        f"{path}.{name}: {hint} — the annotation cannot be resolved "
                        f"({type(exc).__name__}: {exc}); {fix}"
                    )
        return hints

    def record(self, t: Any, path: str) -> None:
        if t in self.seen:  # a type that refers to itself, or one checked already
            return
        self.seen.add(t)
        cls = get_origin(t) or t
        bound = dict(zip(getattr(cls, "__parameters__", ()), get_args(t), strict=False))
        hints = self.hints(cls, path)
        if attrs.has(cls):
            fields = [(a.name, hints.get(a.name, a.type)) for a in attrs.fields(cls)]
        else:
            fields = [(f.name, hints.get(f.name, f.type)) for f in dataclasses.fields(cls)]
        for name, hint in fields:
            if hint is _UNRESOLVED:
                continue
            hint = bound.get(hint, hint) if isinstance(hint, TypeVar) else hint
            self.type(Any if hint is None else hint, f"{path}.{name}")

    def choices(self, t: Any, values: list[Any], path: str) -> None:
        for v in values:
            raw = v.value if isinstance(v, Enum) else v
            if type(raw) not in _NATIVE or (type(raw) is float and raw != raw):
                what = f"{t.__name__}.{v.name}" if isinstance(v, Enum) else repr(v)
                self.add(path, t, f"{what} has the value {raw!r}; it is stored by its value, "
                         f"which must be text, a number, true or false")  # fmt: skip
                return

    def writes(self, t: Any) -> frozenset[str] | None:
        """The kinds of JSON a type is written as; None if unknown (a user's hooks)."""
        t = self._strip(t)
        if t is Any or isinstance(t, TypeVar):
            return _EVERYTHING
        if self.c.user_hooked(t, "unstructure"):
            return None
        if t in _SCALARS:
            return _SCALARS[t]
        if T.is_choice(t):
            return frozenset(_kind_of(v) for v in T.choices(t))
        if T.is_union(t):
            kinds = [self.writes(a) for a in get_args(t)]
            return None if None in kinds else frozenset().union(*kinds)  # type: ignore[arg-type]
        return _shape_kinds(t)

    def union(self, t: Any, path: str) -> None:
        args = get_args(t)
        for a in args:
            self.type(a, path)
        if t in self.c._union_struct_registry:  # the user's own hook reads it
            return
        if len(args) == 2 and NoneType in args:
            return  # Optional[X]: null is None, anything else is an X
        natives = {a for a in args if a in _NATIVE}
        others = [a for a in args if a not in _NATIVE and get_origin(a) is not Literal]
        self.union_scalars(t, natives, others, path)
        if len(others) > 1:
            self.union_records(t, others, path)

    def union_scalars(self, t: Any, natives: set[Any], others: list[Any], path: str) -> None:
        """Members that would read back as a JSON scalar member of the union (``str``...)."""
        captured = _captured(natives)
        if float in natives and str in natives:
            self.add(path, t, "a non-finite float (NaN, Infinity) is written as text and "
                     "would read back as a str; use a float field, or str | int")  # fmt: skip
        for o in others:
            clash = sorted((self.writes(o) or frozenset()) & captured)
            if clash:
                native = next(a for a in natives if _SCALARS[a] & {clash[0]} or a is float)
                self.add(path, t, f"a {T.type_name(o)} is written as {_KIND_WORDS[clash[0]]}, "
                         f"which reads back as a {T.type_name(native)}; keep one of the two, or "
                         f"wrap each case in its own record")  # fmt: skip

    def union_records(self, t: Any, others: list[Any], path: str) -> None:
        """Several members that are not JSON scalars: records cattrs must tell apart."""
        rest: Any = Union[tuple(others)]  # noqa: UP007 - built at run time
        names = ", ".join(map(T.type_name, others))
        if not all(T.is_record(get_origin(o) or o) for o in others):
            self.add(path, t, f"only records can be told apart in a union; {names} cannot "
                     "all be read back: wrap each case in its own record")  # fmt: skip
            return
        try:
            self.c.get_structure_hook(rest)
        except Exception as exc:
            self.add(path, t, f"cattrs cannot tell {names} apart when reading ({exc}); "
                     f"give each record a required field the others lack, or a Literal "
                     f"tag field")  # fmt: skip

    # -- dict keys -----------------------------------------------------------------------------

    def key(self, k: Any, mapping: Any, path: str) -> None:
        k = self._strip(k)
        if k is Any or isinstance(k, TypeVar) or k in _KEY_SCALARS:
            return
        if all(self.hooks(k)):
            return  # its hooks must write it as text (documented)
        if T.is_choice(k):
            self.choice_key(k, mapping, path)
        elif get_origin(k) is tuple or k is tuple:
            for i, item in enumerate(get_args(k)):
                if item is not Ellipsis:
                    self.key_item(item, mapping, f"{path}[{i}]")
        else:
            self.add(path, mapping, f"{T.type_name(k)} ({self.key_kind(k)}) cannot be a JSON "
                     f"object key; {_KEY_ADVICE}")  # fmt: skip

    def choice_key(self, k: Any, mapping: Any, path: str) -> None:
        """An enum or Literal key: its values must be scalars with distinct key texts."""
        values = T.choices(k)
        self.choices(k, values, path)
        texts = [str(v.value if isinstance(v, Enum) else v) for v in values]
        if len(set(texts)) < len(texts):
            self.add(path, mapping, f"two values of {T.type_name(k)} have the same key text; "
                     "as dict keys they would be read back as one")  # fmt: skip

    def key_kind(self, k: Any) -> str:
        """What a type that cannot be a key is, in words."""
        return (
            "a record" if T.is_record(k) or T.is_record(get_origin(k))
            else "a union" if T.is_union(k)
            else "a dict" if T.is_mapping(k)
            else "a list or set" if self.writes(k) == _ARRAY
            else "an unsupported type"
        )  # fmt: skip

    def key_item(self, item: Any, mapping: Any, path: str) -> None:
        """An item of a tuple key: written as a JSON value, and it must be hashable."""
        item = self._strip(item)
        if T.is_union(item):
            for a in get_args(item):
                if a is not NoneType:
                    self.key_item(a, mapping, path)
            return
        if item is NoneType or get_origin(item) is frozenset:
            self.type(item, path)
            return
        self.key(item, mapping, path)


def check_type(cls: Any) -> list[str]:
    """Every reason why values of ``cls`` could not be stored and read back equal.

    Walks a workflow class (a dataclass or an attrs class) field by field, through records in
    records, generics, unions and forward references (resolved with ``typing.get_type_hints``;
    a class that refers to itself is walked once). A type is accepted if this converter writes
    it and reads it back equal: see :func:`gorch.serde.configure` for the list, and
    ``docs/interpreter.md``. A type with both a structure and an unstructure hook registered on
    :data:`~gorch.serde.converter` by the user is accepted as it is (the hooks are trusted).

    Args:
        cls: the class (or any type) to check.

    Returns:
        One sentence per problem, starting with the field's path (``PizzaOrder.cart[].extras``:
        ``[]`` stands for the items of a list, set, tuple or dict), then the type and why, for
        example ``"Order.by_topping: dict[Topping, int] — Topping (a record) cannot be a JSON
        object key; use a str, int, enum, date, datetime, UUID, Decimal or tuple key"``. Empty
        when every field round-trips.
    """
    return Checker(converter).check(cls)
