"""JSON through one cattrs converter, for states and for workflow classes alike.

No pickle anywhere: what gorch stores is JSON that other languages can read and that is safe to
load. The converter is cattrs' preconfigured orjson converter with hooks that make every type it
writes read back to an equal value, and that refuse input of the wrong shape:

- scalars are strict: a ``str`` field takes only a JSON string, an ``int`` field only an integer
  (not ``true``), a ``float`` field an integer or a float; non-finite floats are written as
  ``"NaN"``, ``"Infinity"`` and ``"-Infinity"`` (JSON has no such numbers);
- ``Decimal``, ``UUID`` as text; ``datetime``, ``date`` and ``time`` as ISO-8601 text (a naive
  datetime stays naive; an aware one keeps its UTC offset, as a fixed-offset zone: equal under
  ``==``); subclasses such as freezegun's ``FakeDatetime`` are written as the plain type;
- ``timedelta`` as seconds (a duration that float seconds cannot hold exactly is refused);
- enums and ``Literal`` by value; sets, frozensets and tuples as arrays; records (dataclasses,
  attrs classes) only from JSON objects, arrays only from JSON arrays;
- dict keys as their *key text* (JSON object keys are text: ``"42"``, ``"en"``, ``'[1,"a"]'``),
  read back with the key type (:mod:`gorch._serde_shapes` has the rules, with the hooks for
  arrays, mappings and unions);
- unions of JSON scalars (``str | int``) by the JSON type, records by cattrs' disambiguation.

The type predicates and the error wording (``expected a whole number, got the text 'two'``)
are in :mod:`gorch._serde_types`, the walk of :func:`check_type` in :mod:`gorch._serde_check`.

:func:`loads` ignores keys a record does not have (older rows still load after a field is
removed); :func:`structure_input`, used for what users send (event payloads, start data),
refuses them and limits nesting to :data:`MAX_DEPTH`. :func:`check_type` tells, before anything
is stored, whether a workflow class round-trips. Register hooks for your own types on
:data:`converter`; they apply to stored data and to input alike.

Example:
    >>> from gorch import dumps, loads, new_state, State
    >>> text = dumps(new_state("order-1", "pizza"))
    >>> loads(text, State) == new_state("order-1", "pizza")
    True
"""

from __future__ import annotations

import functools
import math
import re
from collections import abc as cabc
from collections.abc import Mapping
from contextvars import ContextVar
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal, InvalidOperation
from enum import Enum
from typing import Any, TypeVar
from uuid import UUID

import orjson
from cattrs.errors import (
    AttributeValidationNote,
    ClassValidationError,
    ForbiddenExtraKeysError,
    IterableValidationError,
    StructureHandlerNotFoundError,
)
from cattrs.gen import make_dict_structure_fn
from cattrs.preconf.orjson import OrjsonConverter, configure_converter
from cattrs.v import format_exception

from gorch import _serde_check, _serde_shapes
from gorch._serde_types import (
    NON_FINITE,
    by_value,
    describe,
    float_text,
    init_names,
    is_literal,
    is_record,
    literal_values,
    refuse,
)
from gorch.errors import InputError, SerializationError, suggest
from gorch.limits import MAX_DEPTH
from gorch.state import (
    CallbackRequest,
    EventStatus,
    State,
    Thread,
    ThreadStatus,
    WaitEvent,
    WorkflowStatus,
)

__all__ = [
    "MAX_DEPTH",
    "check_depth",
    "check_type",
    "converter",
    "dumps",
    "error_details",
    "loads",
    "structure",
    "structure_input",
    "structure_start",
    "unstructure",
]

T = TypeVar("T")


class Converter(OrjsonConverter):
    """The orjson converter, remembering which hooks were registered after gorch's own.

    :func:`check_type` accepts a type it does not know when a user registered both a structure
    and an unstructure hook for it; every way of registering one goes through these methods.
    """

    _sealed = False
    _user_hooks: list[tuple[str, str, Any]]

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
        for d, how, target in self._user_hooks if self._sealed else ():
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


converter = Converter(unstruct_collection_overrides={cabc.Set: list})
"""The one converter gorch uses for every document it stores or receives."""
configure_converter(converter)

# True while structure_input runs (per thread and per task): records then refuse unknown keys.
_STRICT_INPUT: ContextVar[bool] = ContextVar("gorch_strict_input", default=False)


# --------------------------------------------------------------------------------------------
# Scalars


def _strict(cls: type, accepted: tuple[type, ...]) -> Any:
    """A structure hook that takes JSON scalars of the right type only.

    cattrs' default coerces (``str(42)`` is ``"42"``); a workflow API must refuse a payload of
    the wrong shape instead of guessing what the sender meant.
    """

    def structure_strict(value: Any, target: Any) -> Any:
        if target is not cls:  # a subclass: an enum (str, int mix-ins) by value
            if isinstance(target, type) and issubclass(target, Enum):
                return _enum_structurer(target)(value, target)
            if type(value) in accepted or isinstance(value, target):
                return target(value)
            raise refuse(cls, value)
        if type(value) in accepted:
            return cls(value) if type(value) is not cls else value
        if cls is float and type(value) is str and value in NON_FINITE:
            return NON_FINITE[value]
        raise refuse(cls, value)

    return structure_strict


for _cls, _accepted in ((str, (str,)), (int, (int,)), (float, (float, int)), (bool, (bool,))):
    converter.register_structure_hook(_cls, _strict(_cls, _accepted))


def _unstructure_float(value: float) -> float | str:
    """JSON has no NaN or infinity: write them as the strings JavaScript and Python print."""
    return value if math.isfinite(value) else float_text(value)


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
        raise refuse(timedelta, value)
    try:
        return timedelta(seconds=value)
    except OverflowError:
        raise ValueError(f"{value!r} seconds is longer than a timedelta can be") from None


def _structure_decimal(value: Any, _: Any) -> Decimal:
    if isinstance(value, Decimal):
        return value
    if type(value) in (str, int, float):
        try:
            return Decimal(value if type(value) is not float else repr(value))
        except InvalidOperation:
            pass
    raise refuse(Decimal, value)


def _structure_uuid(value: Any, _: Any) -> UUID:
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


def _iso_hook(cls: type, exclude: type | None = None) -> Any:
    """Structure ``cls`` (datetime, date, time) from ISO-8601 text, or take an instance."""
    parse = cls.fromisoformat  # type: ignore[attr-defined]

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


_hooks: tuple[tuple[type, Any], ...] = (
    (timedelta, _structure_timedelta),
    (Decimal, _structure_decimal),
    (UUID, _structure_uuid),
    (datetime, _iso_hook(datetime)),
    (date, _iso_hook(date, exclude=datetime)),
    (time, _iso_hook(time)),
)
for _type, _hook in _hooks:
    converter.register_structure_hook(_type, _hook)
converter.register_unstructure_hook(timedelta, _unstructure_timedelta)
converter.register_unstructure_hook(Decimal, str)
converter.register_unstructure_hook(UUID, str)
# The plain types' methods: a subclass (freezegun's FakeDatetime, what datetime.now() returns
# under a frozen clock) is written as the plain type it stands for; orjson refuses subclasses.
converter.register_unstructure_hook(datetime, datetime.isoformat)
converter.register_unstructure_hook(date, date.isoformat)
converter.register_unstructure_hook(time, time.isoformat)


# --------------------------------------------------------------------------------------------
# Enums and Literals: by value, and the value's JSON type must match (``true`` is not ``1``)


def _choice_hook(t: Any, values: list[Any]) -> Any:
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
def _enum_structurer(cls: type[Enum]) -> Any:
    return _choice_hook(cls, list(cls))


converter.register_structure_hook_factory(
    lambda t: isinstance(t, type) and issubclass(t, Enum), _enum_structurer
)
converter.register_structure_hook_factory(is_literal, lambda t: _choice_hook(t, literal_values(t)))


# --------------------------------------------------------------------------------------------
# Records: only from a JSON object; in structure_input, unknown keys are refused


def _record_hook(cls: Any) -> Any:
    inner = make_dict_structure_fn(cls, converter)
    allowed = init_names(cls)
    strict: list[Any] = []  # made the first time input has a key the record lacks

    def structure_record(value: Any, _: Any) -> Any:
        if not isinstance(value, Mapping):
            raise ValueError(f"expected an object ({cls.__name__}), got {describe(value)}")
        if _STRICT_INPUT.get() and not value.keys() <= allowed:
            if not strict:
                forbid = make_dict_structure_fn(cls, converter, _cattrs_forbid_extra_keys=True)
                strict.append(forbid)
            return strict[0](value, cls)  # reports the unknown keys with any other problem
        return inner(value, cls)

    return structure_record


converter.register_structure_hook_factory(is_record, _record_hook)


_serde_shapes.install(converter)


# --------------------------------------------------------------------------------------------
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
        version = d.get("data_version", 1)  # a state stored before data versions: 1
        if type(sid) is str and type(workflow) is str and type(pc) is int and type(version) is int:
            threads = [_fast_thread(t) for t in d["threads"]]
            return State(sid, workflow, _WORKFLOW_STATUS[d["status"]], threads, pc, version)
    except Exception:  # the generic hook below reports the problem precisely
        pass
    return _generic_state(d, State)


converter.register_structure_hook(State, _structure_state)
converter._user_hooks = []
converter._sealed = True  # from here on, registrations are the user's (see check_type)

_OPTIONS = orjson.OPT_NON_STR_KEYS


# --------------------------------------------------------------------------------------------
# The public functions


def unstructure(obj: Any) -> Any:
    """Return ``obj`` as plain JSON-ready data (dicts, lists, scalars)."""
    return converter.unstructure(obj)


def structure(data: Any, cls: type[T]) -> T:
    """Build a ``cls`` from plain data; raises cattrs' errors on a mismatch.

    Keys a record does not have are ignored, as :func:`loads` does. For what users send, use
    :func:`structure_input`.
    """
    return converter.structure(data, cls)


def structure_input(value: Any, cls: Any) -> Any:
    """Build a ``cls`` from data a user sent (an event payload, start data): strictly.

    The same hooks as :func:`structure` (including those registered on :data:`converter`),
    except that a record refuses keys it does not have (a misspelt optional field must not
    vanish) and that nesting deeper than :data:`MAX_DEPTH` is refused.

    Raises:
        InputError: the value nests deeper than :data:`MAX_DEPTH` levels.
        Exception: cattrs' errors on a mismatch, as :func:`structure`; :func:`error_details`
            turns either into lines such as ``unknown field; did you mean 'qty'? @ $.qtty``.
    """
    check_depth(value, "value")
    token = _STRICT_INPUT.set(True)
    try:
        return converter.structure(value, cls)
    finally:
        _STRICT_INPUT.reset(token)


def structure_start(value: Any, cls: type[T]) -> T:
    """The workflow object to start ``cls`` from, built from data a user sent (``None``: no
    data). No data means the class's defaults: ``{}`` for a record, so that a class without
    defaults is refused naming each required field instead of failing in ``cls()``.

    Raises:
        As :func:`structure_input`.
    """
    if value is None and not is_record(cls):
        return cls()
    return structure_input({} if value is None else value, cls)  # type: ignore[no-any-return]


_NESTS = (dict, list, tuple)  # (a tuple of types: isinstance is 3x faster than with dict | list)


def check_depth(value: Any, what: str = "payload") -> None:
    """Refuse a value that nests arrays and objects more than :data:`MAX_DEPTH` levels deep.

    A scalar is 0 levels deep, ``[]`` and ``{}`` are 1, ``{"a": [1]}`` is 2. Iterative: a value
    of any depth is measured without recursion.

    Raises:
        InputError: ``the payload is nested 300 levels deep; at most 64 levels are accepted``
            (``what`` names the value), with that sentence in ``.details``.
    """
    if not isinstance(value, _NESTS):
        return
    deepest, level = 0, [value]
    while level:  # one level of nesting per turn: no recursion, whatever the depth
        deepest += 1
        below = []
        for node in level:
            for child in node.values() if isinstance(node, dict) else node:
                if isinstance(child, _NESTS):
                    below.append(child)  # noqa: PERF401 - the plain loop is faster here
        level = below
    if deepest > MAX_DEPTH:
        detail = f"nested {deepest} levels deep; at most {MAX_DEPTH} levels are accepted"
        raise InputError(f"the {what} is {detail}", details=[detail])


def check_type(cls: Any) -> list[str]:
    """Every reason why values of ``cls`` could not be stored and read back equal.

    Walks a workflow class (a dataclass or an attrs class) field by field, through records in
    records, generics, unions and forward references (resolved with ``typing.get_type_hints``;
    a class that refers to itself is walked once). A type is accepted if this converter writes
    it and reads it back equal: see the module docstring for the list, and
    ``docs/interpreter.md``. A type with both a structure and an unstructure hook registered on
    :data:`converter` by the user is accepted as it is (the hooks are trusted).

    Args:
        cls: the class (or any type) to check.

    Returns:
        One sentence per problem, starting with the field's path (``PizzaOrder.cart[].extras``:
        ``[]`` stands for the items of a list, set, tuple or dict), then the type and why, for
        example ``"Order.by_topping: dict[Topping, int] — Topping (a record) cannot be a JSON
        object key; use a str, int, enum, date, datetime, UUID, Decimal or tuple key"``. Empty
        when every field round-trips.
    """
    return _serde_check.Checker(converter).check(cls)


def _transform(exc: BaseException, path: str, out: list[str], t: Any = None) -> None:
    """cattrs' error tree to ``what @ path`` lines (as cattrs' transform_error, plus keys)."""
    if isinstance(exc, ClassValidationError | IterableValidationError):
        with_notes, without = exc.group_exceptions()
        for e, note in with_notes:
            if isinstance(note, AttributeValidationNote):
                where = f"{path}.{note.name}"
            else:
                where = f"{path}[{note.index!r}]"
            _transform(e, where, out, note.type)
        for e in without:
            _transform(e, path, out)
    elif isinstance(exc, ForbiddenExtraKeysError):
        names = sorted(init_names(exc.cl))
        for key in sorted(exc.extra_fields):
            close = suggest(key, names, n=1) or _abbreviated(key, names)
            listed = ", ".join(repr(n) for n in names) or "none"
            hint = (
                f"did you mean {close[0]!r}?"
                if close
                else f"{exc.cl.__name__}'s fields are {listed}"
            )
            where = f"{path}.{key}" if re.fullmatch(r"[A-Za-z_]\w*", key) else f"{path}[{key!r}]"
            out.append(f"unknown field; {hint} @ {where}")
    elif isinstance(exc, InputError):
        out.extend(f"{line} @ {path}" for line in exc.details or [exc.message])
    elif isinstance(exc, ValueError) and str(exc).startswith("expected "):
        out.append(f"{exc} @ {path}")
    elif isinstance(exc, KeyError):
        out.append(f"required field missing @ {path}")
    elif isinstance(exc, StructureHandlerNotFoundError):
        out.append(f"cannot be read: {exc} @ {path}")
    elif isinstance(exc, ValueError | TypeError) and str(exc):  # a validator's own words
        out.append(f"invalid value: {exc} @ {path}")
    else:
        out.append(f"{format_exception(exc, t)} @ {path}")


def _abbreviated(key: str, names: list[str]) -> list[str]:
    """The field names ``key`` abbreviates (``qty`` for ``quantity``): same first letter, and
    the key's letters in order."""
    found = []
    for name in names:
        rest = iter(name)
        if key[:1] == name[:1] and all(ch in rest for ch in key):
            found.append(name)
    return found[:1]


def error_details(exc: BaseException, path: str = "$") -> list[str]:
    """One line per problem of a failed structuring, each with its path (``... @ $.qty``)."""
    details: list[str] = []
    try:
        _transform(exc, path, details)
    except Exception:
        details = []
    return details or [f"{type(exc).__name__}: {exc}"]


def dumps(obj: Any) -> str:
    """Serialize a state, a workflow object or any supported value to JSON text.

    Raises:
        SerializationError: a value JSON cannot hold (an int beyond 64 bits, an unregistered
            type, a duration too long to store exactly, nesting deeper than 254 levels).
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

    Keys a record does not have are ignored: a row written before a field was removed loads.

    Raises:
        SerializationError: the text is not JSON, or the document does not fit ``cls``;
            ``.details`` says where (``expected a whole number, got true @ $.threads[0].pc``).
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
        if is_record(cls) and not isinstance(data, dict):
            details = [f"expected an object ({cls.__name__}), got {describe(data)} @ $"]
        raise SerializationError(
            f"cannot read {cls.__name__} from this document: " + "; ".join(details),
            details=details,
        ) from exc
