"""The converter's hooks for records (dataclasses, attrs classes), and the fast path for State.

Part of :mod:`gorch.serde` (see its docstring); :func:`gorch.serde.configure` registers them.
A record is read only from a JSON object. Keys it does not have are ignored in stored data (a
row written before a field was removed still loads) and refused in what users send, while
:data:`STRICT_INPUT` is set (by :func:`gorch.serde.structure_input`).
"""

from __future__ import annotations

from collections.abc import Mapping
from contextvars import ContextVar
from typing import Any

from cattrs import Converter
from cattrs.gen import make_dict_structure_fn

from gorch.serde._types import Hook, describe, init_names
from gorch.state import (
    CallbackRequest,
    EventStatus,
    State,
    Thread,
    ThreadStatus,
    WaitEvent,
    WorkflowStatus,
)

STRICT_INPUT: ContextVar[bool] = ContextVar("gorch_strict_input", default=False)
"""True while :func:`gorch.serde.structure_input` runs (per thread and per task): records then
refuse unknown keys."""


def record_hook(cls: Any, c: Converter) -> Hook:
    """Structure the record ``cls`` from a JSON object (cattrs' generated hook inside)."""
    inner = make_dict_structure_fn(cls, c)
    allowed = init_names(cls)
    strict: list[Any] = []  # made the first time input has a key the record lacks

    def structure_record(value: Any, _: Any) -> Any:
        if not isinstance(value, Mapping):
            raise ValueError(f"expected an object ({cls.__name__}), got {describe(value)}")
        if STRICT_INPUT.get() and not value.keys() <= allowed:
            if not strict:
                forbid = make_dict_structure_fn(cls, c, _cattrs_forbid_extra_keys=True)
                strict.append(forbid)
            return strict[0](value, cls)  # reports the unknown keys with any other problem
        return inner(value, cls)

    return structure_record


# --------------------------------------------------------------------------------------------
# A fast path for loading states, which happens on every call of the request-handler pattern:
# build well-formed documents directly, and leave anything unusual (a missing key, a wrong
# type, an unknown status) to cattrs' generated hook, which explains precisely what is wrong.
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


def state_hook(c: Converter) -> Hook:
    """Structure a :class:`~gorch.state.State`: directly if well-formed, else by cattrs.

    Call it after every other hook is registered on ``c``: cattrs' generated hook, made here,
    takes the hooks of the fields' types as they are now.
    """
    generic_state = make_dict_structure_fn(State, c)

    def structure_state(d: Any, _: Any) -> State:
        try:
            sid, workflow, pc = d["id"], d["workflow"], d["pc"]
            version = d.get("data_version", 1)  # a state stored before data versions: 1
            if (
                type(sid) is str
                and type(workflow) is str
                and type(pc) is int
                and type(version) is int
            ):
                threads = [_fast_thread(t) for t in d["threads"]]
                return State(sid, workflow, _WORKFLOW_STATUS[d["status"]], threads, pc, version)
        except Exception:  # the generic hook below reports the problem precisely
            pass
        return generic_state(d, State)

    return structure_state
