"""gorch's converter class, and :func:`configure`: every rule gorch's JSON follows, in one place.

:class:`Converter` is cattrs' orjson converter that remembers which hooks were registered after
gorch's own (:func:`gorch.serde.check_type` trusts a user's hooks). :func:`configure` registers
gorch's hooks on one; their code is in :mod:`gorch.serde._scalars`, :mod:`gorch.serde._records`
and :mod:`gorch.serde._shapes`. To teach gorch a new type, write its hooks in the module of its
kind, register them in :func:`configure` with a line in its docstring, and teach
:mod:`gorch.serde._check` what the type is written as.
"""

from __future__ import annotations

from collections import abc as cabc
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

from cattrs.cols import is_mutable_sequence
from cattrs.preconf.orjson import OrjsonConverter, configure_converter

from gorch.serde import _records, _scalars, _shapes
from gorch.serde._types import is_array, is_enum, is_literal, is_mapping, is_record
from gorch.state import State


class Converter(OrjsonConverter):
    """The orjson converter, remembering which hooks were registered after gorch's own.

    :func:`~gorch.serde.check_type` accepts a type it does not know when a user registered both
    a structure and an unstructure hook for it; every way of registering one goes through these
    methods. Sets and frozensets are written as JSON arrays (a collection override, which cattrs
    takes only in the constructor).
    """

    def __init__(self, **kwargs: Any) -> None:
        self._sealed = False  # until configure() has registered gorch's hooks (and cattrs')
        self._user_hooks: list[tuple[str, str, Any]] = []
        overrides = kwargs.pop("unstruct_collection_overrides", {})
        super().__init__(unstruct_collection_overrides={cabc.Set: list, **overrides}, **kwargs)

    def seal(self, sealed: bool = True) -> None:
        """Count each hook registered from now on as the user's (``False``: as gorch's own).

        The user's hooks registered so far stay counted: cattrs keeps them too.
        """
        self._sealed = sealed

    def _note(self, direction: str, how: str, target: Any) -> None:
        if self._sealed:
            self._user_hooks.append((direction, how, target))

    def register_structure_hook(self, cl: Any, func: Any = None) -> Any:
        if func is not None:  # (the decorator form comes back here with its return type)
            self._note("structure", "type", cl)
        return super().register_structure_hook(cl, func)

    def register_unstructure_hook(self, cls: Any = None, func: Any = None) -> Any:
        if func is not None:
            self._note("unstructure", "type", cls)
        return super().register_unstructure_hook(cls, func)

    def register_structure_hook_func(self, check_func: Any, func: Any) -> None:
        self._note("structure", "predicate", check_func)
        super().register_structure_hook_func(check_func, func)

    def register_unstructure_hook_func(self, check_func: Any, func: Any) -> None:
        self._note("unstructure", "predicate", check_func)
        super().register_unstructure_hook_func(check_func, func)

    def register_structure_hook_factory(self, predicate: Any, factory: Any = None) -> Any:
        if factory is None:
            return lambda f: self.register_structure_hook_factory(predicate, f)
        self._note("structure", "predicate", predicate)
        return super().register_structure_hook_factory(predicate, factory)

    def register_unstructure_hook_factory(self, predicate: Any, factory: Any = None) -> Any:
        if factory is None:
            return lambda f: self.register_unstructure_hook_factory(predicate, f)
        self._note("unstructure", "predicate", predicate)
        return super().register_unstructure_hook_factory(predicate, factory)

    def user_hooked(self, t: Any, direction: str) -> bool:
        """Whether a hook registered by a user (not by gorch) applies to ``t``."""
        for d, how, target in self._user_hooks:
            if d != direction:
                continue
            if how == "type":
                if isinstance(target, type) and isinstance(t, type):
                    if issubclass(t, target):  # class hooks apply to subclasses
                        return True
                elif target == t:
                    return True
                continue
            try:
                if target(t):
                    return True
            except Exception:  # a predicate that cannot judge this type: not a match
                continue
        return False


def configure(converter: Converter) -> None:
    """Register every hook of gorch's JSON on ``converter``; hooks registered later are the user's.

    Each rule writes a type so that it reads back equal, and refuses input of the wrong shape.
    In the order registered (cattrs asks the latest registration first):

    - all: cattrs' orjson setup (``bytes`` as base85 text, named tuples as arrays);
    - ``str``, ``int``, ``float``, ``bool``: read only from that JSON type (``true`` is no int; a
      float takes a whole number): a payload of the wrong shape is refused, never guessed at;
    - ``float``: NaN and infinities as ``"NaN"``, ``"Infinity"``, ``"-Infinity"`` (not in JSON);
    - ``timedelta``: float seconds; a span they cannot hold exactly (over ~136 years) is refused;
    - ``Decimal``, ``UUID``: as text, exact; a Decimal is also read from a number;
    - ``datetime``, ``date``, ``time``: ISO-8601 text, a subclass (freezegun's) as the plain type,
      an offset as a fixed-offset zone (equal under ``==``);
    - enums, ``Literal``: by value, of the same JSON type (``true`` is not ``1``);
    - records (dataclasses, attrs): only from an object; unknown keys are ignored in stored data,
      refused in ``structure_input``;
    - lists: only from an array (a string is not a list of characters);
    - tuples, sets, frozensets, ``Sequence``: arrays (a fixed tuple of its length);
    - mappings: objects keyed by *key text* (see :mod:`gorch.serde._shapes`), read back with the
      key type;
    - unions with a JSON scalar or Literal member: by the JSON type of the value, records by
      cattrs' disambiguation;
    - ``State``: built directly when well-formed (every request loads one), else by cattrs.
    """
    converter.seal(False)
    configure_converter(converter)
    for cls, accepted in _scalars.STRICT_SCALARS:
        converter.register_structure_hook(cls, _scalars.strict_scalar(cls, accepted))
    converter.register_unstructure_hook(float, _scalars.unstructure_float)
    converter.register_structure_hook(timedelta, _scalars.structure_timedelta)
    converter.register_unstructure_hook(timedelta, _scalars.unstructure_timedelta)
    converter.register_structure_hook(Decimal, _scalars.structure_decimal)
    converter.register_unstructure_hook(Decimal, str)
    converter.register_structure_hook(UUID, _scalars.structure_uuid)
    converter.register_unstructure_hook(UUID, str)
    for moment in (datetime, date, time):  # the plain type's isoformat: orjson refuses subclasses
        converter.register_structure_hook(moment, _scalars.iso_hook(moment))
        converter.register_unstructure_hook(moment, moment.isoformat)
    converter.register_structure_hook_factory(is_enum, _scalars.enum_hook)
    converter.register_structure_hook_factory(is_literal, _scalars.literal_hook)
    converter.register_structure_hook_factory(is_record, _records.record_hook)
    converter.register_structure_hook_factory(is_mutable_sequence, _shapes.list_hook)
    converter.register_structure_hook_factory(is_array, _shapes.array_hook)
    converter.register_unstructure_hook_factory(is_mapping, _shapes.unstructure_mapping_hook)
    converter.register_structure_hook_factory(is_mapping, _shapes.mapping_hook)
    converter.register_structure_hook_factory(_shapes.scalar_union(converter), _shapes.union_hook)
    converter.register_structure_hook(State, _records.state_hook(converter))
    converter.seal()
