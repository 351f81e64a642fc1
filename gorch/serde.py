"""JSON through one cattrs converter, for states and for workflow classes alike.

No pickle anywhere: what gorch stores is JSON that other languages can read and that is safe to
load. The converter is cattrs' preconfigured orjson converter (datetimes as ISO-8601 text,
enums by value) with a few extra hooks: ``timedelta`` as seconds, ``Decimal`` and ``UUID`` as
text, and strict scalars: a ``str`` field takes only a JSON string, an ``int`` field only an
integer (not ``true``), a ``float`` field an integer or a float. Register hooks for your own
types on :data:`converter`.

Example:
    >>> from gorch import dumps, loads, new_state, State
    >>> text = dumps(new_state("order-1", "pizza"))
    >>> loads(text, State) == new_state("order-1", "pizza")
    True
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any, TypeVar
from uuid import UUID

import orjson
from cattrs.preconf.orjson import make_converter

__all__ = ["converter", "dumps", "loads", "structure", "unstructure"]

T = TypeVar("T")

converter = make_converter()
"""The one converter gorch uses for every document it stores or receives."""


def _strict(cls: type, accepted: tuple[type, ...]) -> Any:
    """A structure hook that takes JSON scalars of the right type only.

    cattrs' default coerces (``str(42)`` is ``"42"``); a workflow API must refuse a payload of
    the wrong shape instead of guessing what the sender meant.
    """

    def structure_strict(value: Any, target: Any) -> Any:
        if target is not cls:  # a subclass such as a StrEnum: by value, as cattrs does enums
            return target(value)
        if type(value) in accepted:
            return cls(value) if type(value) is not cls else value
        raise ValueError(f"expected {cls.__name__}, got {type(value).__name__} {value!r}")

    return structure_strict


for _cls, _accepted in ((str, (str,)), (int, (int,)), (float, (float, int)), (bool, (bool,))):
    converter.register_structure_hook(_cls, _strict(_cls, _accepted))
converter.register_unstructure_hook(timedelta, lambda d: d.total_seconds())
converter.register_structure_hook(
    timedelta, lambda v, _: v if isinstance(v, timedelta) else timedelta(seconds=float(v))
)
converter.register_unstructure_hook(Decimal, str)
converter.register_structure_hook(Decimal, lambda v, _: Decimal(str(v)))
converter.register_unstructure_hook(UUID, str)
converter.register_structure_hook(UUID, lambda v, _: v if isinstance(v, UUID) else UUID(str(v)))

_OPTIONS = orjson.OPT_NON_STR_KEYS


def unstructure(obj: Any) -> Any:
    """Return ``obj`` as plain JSON-ready data (dicts, lists, scalars)."""
    return converter.unstructure(obj)


def structure(data: Any, cls: type[T]) -> T:
    """Build a ``cls`` from plain data; raises cattrs' errors on a mismatch."""
    return converter.structure(data, cls)


def dumps(obj: Any) -> str:
    """Serialize a state, a workflow object or any supported value to JSON text."""
    return orjson.dumps(converter.unstructure(obj), option=_OPTIONS).decode()


def loads(text: str | bytes, cls: type[T]) -> T:
    """Parse JSON text into an instance of ``cls`` (a ``State``, a workflow class, ...)."""
    return converter.structure(orjson.loads(text), cls)
