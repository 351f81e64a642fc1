"""JSON through one cattrs converter, for states and for workflow classes alike.

No pickle anywhere: what gorch stores is JSON that other languages can read and that is safe to
load. The converter is cattrs' preconfigured orjson converter (datetimes as ISO-8601 text,
enums by value) with a few extra hooks:

- ``timedelta`` as seconds (a duration that float seconds cannot hold exactly is refused);
- ``Decimal`` and ``UUID`` as text;
- non-finite floats as ``"NaN"``, ``"Infinity"`` and ``"-Infinity"`` (JSON has no such numbers);
- strict scalars: a ``str`` field takes only a JSON string, an ``int`` field only an integer
  (not ``true``), a ``float`` field an integer or a float.

Register hooks for your own types on :data:`converter`.

Example:
    >>> from gorch import dumps, loads, new_state, State
    >>> text = dumps(new_state("order-1", "pizza"))
    >>> loads(text, State) == new_state("order-1", "pizza")
    True
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from datetime import timedelta
from decimal import Decimal
from typing import Any, TypeVar
from uuid import UUID

import attrs
import orjson
from cattrs import transform_error
from cattrs.cols import is_mutable_sequence, list_structure_factory
from cattrs.gen import make_dict_structure_fn
from cattrs.preconf.orjson import make_converter
from cattrs.v import format_exception

from gorch.errors import SerializationError
from gorch.state import (
    CallbackRequest,
    EventStatus,
    State,
    Thread,
    ThreadStatus,
    WaitEvent,
    WorkflowStatus,
)

__all__ = ["converter", "dumps", "error_details", "loads", "structure", "unstructure"]

T = TypeVar("T")

converter = make_converter()
"""The one converter gorch uses for every document it stores or receives."""


_NON_FINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


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
        if cls is float and type(value) is str and value in _NON_FINITE:
            return _NON_FINITE[value]
        raise ValueError(f"expected {cls.__name__}, got {type(value).__name__} {value!r}")

    return structure_strict


for _cls, _accepted in ((str, (str,)), (int, (int,)), (float, (float, int)), (bool, (bool,))):
    converter.register_structure_hook(_cls, _strict(_cls, _accepted))


def _unstructure_float(value: float) -> float | str:
    """JSON has no NaN or infinity: write them as the strings JavaScript and Python print."""
    if math.isfinite(value):
        return value
    return "NaN" if value != value else ("Infinity" if value > 0 else "-Infinity")


converter.register_unstructure_hook(float, _unstructure_float)

# Float seconds hold any duration exactly (to the microsecond) up to 2**32 s, about 136 years.
_EXACT_SECONDS = timedelta(seconds=2**32)


def _unstructure_timedelta(value: timedelta) -> float:
    seconds = value.total_seconds()
    # Exact below ~136 years; beyond, float seconds may drop microseconds: check, never guess.
    if abs(value) > _EXACT_SECONDS and timedelta(seconds=seconds) != value:
        raise ValueError(
            f"cannot store the duration {value!r} exactly as seconds; store such a long span "
            f"as a date or a number of days instead"
        )
    return seconds


def _structure_timedelta(value: Any, _: Any) -> timedelta:
    if isinstance(value, timedelta):
        return value
    if type(value) not in (int, float):
        raise ValueError(f"expected a number of seconds, got {type(value).__name__} {value!r}")
    try:
        return timedelta(seconds=value)
    except OverflowError:
        raise ValueError(f"{value!r} seconds is longer than a timedelta can be") from None


converter.register_unstructure_hook(timedelta, _unstructure_timedelta)
converter.register_structure_hook(timedelta, _structure_timedelta)
converter.register_unstructure_hook(Decimal, str)
converter.register_structure_hook(Decimal, lambda v, _: Decimal(str(v)))
converter.register_unstructure_hook(UUID, str)
converter.register_structure_hook(UUID, lambda v, _: v if isinstance(v, UUID) else UUID(str(v)))


# Strict shapes: a record (attrs class or dataclass) only from a JSON object, a list only from a
# JSON array. cattrs' defaults take a list as a record with every field defaulted, and a string
# as a list of characters: a payload of the wrong shape must be refused, not reinterpreted.


def _is_record(t: Any) -> bool:
    return isinstance(t, type) and (attrs.has(t) or dataclasses.is_dataclass(t))


def _record_hook(cls: Any) -> Any:
    inner = make_dict_structure_fn(cls, converter)

    def structure_record(value: Any, _: Any) -> Any:
        if not isinstance(value, Mapping):
            raise ValueError(f"expected an object for {cls.__name__}, got {_kind(value)}")
        return inner(value, cls)

    return structure_record


def _list_hook(t: Any) -> Any:
    inner = list_structure_factory(t, converter)

    def structure_list(value: Any, _: Any) -> Any:
        if not isinstance(value, list | tuple):
            raise ValueError(f"expected an array, got {_kind(value)}")
        return inner(value, t)

    return structure_list


def _kind(value: Any) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) <= 60 else text[:57] + '...'}"


converter.register_structure_hook_factory(_is_record, _record_hook)
converter.register_structure_hook_factory(is_mutable_sequence, _list_hook)


# A fast path for loading states, which happens on every call of the request-handler pattern:
# build well-formed documents directly, and leave anything unusual (a missing key, a wrong
# type, an unknown status) to cattrs' generated hook, which explains precisely what is wrong.
_generic_state = make_dict_structure_fn(State, converter)
_WORKFLOW_STATUS: dict[str, WorkflowStatus] = {s.value: s for s in WorkflowStatus}
_THREAD_STATUS: dict[str, ThreadStatus] = {s.value: s for s in ThreadStatus}
_EVENT_STATUS: dict[str, EventStatus] = {s.value: s for s in EventStatus}


def _fast_event(d: dict[str, Any]) -> WaitEvent:
    r = d["req"]
    wid, tid, name, pc, data = (
        r["workflow_id"], r["thread_id"], r["name"], r["pc"], r["setup_data"])  # fmt: skip
    kind, handled, error = d["type"], d["handled"], d["error"]
    if not (
        type(wid) is str and type(tid) is str and type(name) is str and type(pc) is int
        and type(data) is str and type(kind) is str and type(handled) is bool
        and type(error) is str
    ):  # fmt: skip
        raise TypeError("not a well-formed wait event")
    req = CallbackRequest(wid, tid, name, pc, data)
    return WaitEvent(kind, req, _EVENT_STATUS[d["status"]], handled, error)


def _fast_thread(d: dict[str, Any]) -> Thread:
    tid, name, step, callback, pc = d["id"], d["name"], d["cur_step"], d["cur_callback"], d["pc"]
    if not (
        type(tid) is str and type(name) is str and type(step) is str and type(callback) is str
        and type(pc) is int
    ):  # fmt: skip
        raise TypeError("not a well-formed thread")
    events = [_fast_event(e) for e in d["wait_events"]]
    return Thread(tid, name, _THREAD_STATUS[d["status"]], step, callback, events, pc)


def _structure_state(d: Any, _: Any) -> State:
    try:
        sid, workflow, pc = d["id"], d["workflow"], d["pc"]
        if type(sid) is str and type(workflow) is str and type(pc) is int:
            threads = [_fast_thread(t) for t in d["threads"]]
            return State(sid, workflow, _WORKFLOW_STATUS[d["status"]], threads, pc)
    except Exception:  # the generic hook below reports the problem precisely
        pass
    return _generic_state(d, State)


converter.register_structure_hook(State, _structure_state)

_OPTIONS = orjson.OPT_NON_STR_KEYS


def unstructure(obj: Any) -> Any:
    """Return ``obj`` as plain JSON-ready data (dicts, lists, scalars)."""
    return converter.unstructure(obj)


def structure(data: Any, cls: type[T]) -> T:
    """Build a ``cls`` from plain data; raises cattrs' errors on a mismatch."""
    return converter.structure(data, cls)


def _format(exc: BaseException, type: Any) -> str:
    """Our strict hooks say what they expected and what came; cattrs' words otherwise."""
    if isinstance(exc, ValueError) and str(exc).startswith("expected "):
        return str(exc)
    return format_exception(exc, type)


def error_details(exc: Exception, path: str = "$") -> list[str]:
    """One line per problem of a failed structuring, each with its path (``@ $.qty``)."""
    try:
        details = transform_error(exc, path=path, format_exception=_format)
    except Exception:
        details = []
    return details or [f"{type(exc).__name__}: {exc}"]


def dumps(obj: Any) -> str:
    """Serialize a state, a workflow object or any supported value to JSON text.

    Raises:
        SerializationError: a value JSON cannot hold (an int beyond 64 bits, an unregistered
            type, a duration too long to store exactly).
    """
    try:
        return orjson.dumps(converter.unstructure(obj), option=_OPTIONS).decode()
    except Exception as exc:
        raise SerializationError(
            f"cannot write {type(obj).__name__} as JSON: {type(exc).__name__}: {exc}. Change "
            f"the value, or register an unstructure hook for its type on gorch.serde.converter."
        ) from exc


def loads(text: str | bytes, cls: type[T]) -> T:
    """Parse JSON text into an instance of ``cls`` (a ``State``, a workflow class, ...).

    Raises:
        SerializationError: the text is not JSON, or the document does not fit ``cls``;
            ``.details`` says where (``$.threads[0].pc: expected int``).
    """
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise SerializationError(
            f"cannot read {cls.__name__}: the text is not valid JSON ({exc})",
            details=[str(exc)],
        ) from exc
    try:
        return converter.structure(data, cls)
    except Exception as exc:
        details = error_details(exc)
        is_record = hasattr(cls, "__attrs_attrs__") or hasattr(cls, "__dataclass_fields__")
        if is_record and not isinstance(data, dict):
            details = [f"expected a JSON object, got {type(data).__name__} {data!r} @ $"]
        raise SerializationError(
            f"cannot read {cls.__name__} from this document: " + "; ".join(details),
            details=details,
        ) from exc
