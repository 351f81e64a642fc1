"""What ties an instance to others, as the engine writes and delivers it.

A state implies, like its timers (``_rows.timers_of``), the statements it waits at
(:func:`at_statements_of`, for the change feed and ``Engine.wait``) and its watches
(:func:`links_of`): one per set-up event of a ``Child`` or an ``OnInstance``. A watch that is
new in a commit and belongs to a ``Child`` starts the child in that same commit
(:func:`child_write`): the child's row is inserted with the parent's checkpoint, or neither
is. A met watch leaves a message in the store (in the commit that met it); a worker claims
the waiting instance and delivers it (``_claims.deliver_claimed``), consuming the message in
the commit that records the event.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import orjson

from gorch import clock, serde
from gorch.engine._records import HistoryKind
from gorch.errors import NotFoundError, did_you_mean, suggest
from gorch.interpreter import data_version_of
from gorch.state import EventStatus, RunStatus, State, ThreadStatus, new_state
from gorch.store.base import HistoryRecord, InstanceRecord, WatchRecord, Write

if TYPE_CHECKING:
    from gorch.engine._core import EngineCore

_WAITING = (ThreadStatus.WAITING_EVENT, ThreadStatus.WAITING_CONDITION)
_LINKED = ("child", "instance")
_ENDED = ("finished", "cancelled")
ENDS = (RunStatus.FINISHED, RunStatus.CANCELLED)
"""The statuses an instance ends in: no statement waits any more."""

NO_LINKS: tuple[tuple[WatchRecord, ...], dict[WatchRecord, tuple[str, str]]] = ((), {})


def at_statements_of(state: State, status: str) -> tuple[str, ...]:
    """The statements the state's threads wait at, sorted (none once it ended)."""
    if status in _ENDED:
        return ()
    at = [t.cur_step for t in state.threads if t.status in _WAITING]
    return tuple(sorted(set(at))) if at else ()


def delivered_by_engine(state: State, event: str) -> bool:
    """Whether ``event`` is one a thread of ``state`` waits for from the engine (a child's end,
    another instance's move), which no caller may send."""
    return any(e.req.name == event and e.type in _LINKED for t in state.threads
               for e in t.wait_events)  # fmt: skip


def links_of(state: State) -> tuple[tuple[WatchRecord, ...], dict[WatchRecord, tuple[str, str]]]:
    """The watches a state implies, and for each of a ``Child`` the child's workflow and data
    (JSON text) to start it with."""
    watches: list[WatchRecord] = []
    children: dict[WatchRecord, tuple[str, str]] = {}
    for t in state.threads:
        for e in t.wait_events:
            if e.type not in _LINKED or e.status is not EventStatus.SETUP or e.handled:
                continue
            r = e.req
            spec = orjson.loads(r.setup_data)
            w = WatchRecord(state.id, t.id, r.name, r.pc, spec["instance"], spec["until"])
            watches.append(w)
            if e.type == "child":
                children[w] = (spec["workflow"], spec["data"])
    if not watches:
        return NO_LINKS
    return tuple(watches), children


def child_write(
    engine: EngineCore, parent: str, watch: WatchRecord, workflow: str, data: str
) -> Write:
    """The insert of a ``Child``'s child, for its parent's commit.

    Raises:
        NotFoundError: ``workflow`` is not registered (the parent's checkpoint fails: its
            step is retried, then the parent fails with this error for an operator).
        SerializationError: the data does not load as the registered class.
    """
    cls = engine.workflows.get(workflow)
    if cls is None:
        raise NotFoundError(
            f"Child {watch.name!r} of {parent!r} starts workflow {workflow!r}, which is not "
            "registered (register it with the engine)."
            + did_you_mean(suggest(workflow, list(engine.workflows)))
        )
    serde.loads(data, cls)  # refuse data that would not load before it is stored
    now = clock.now()
    child_id = watch.target_id
    state = new_state(child_id, workflow)
    state.data_version = data_version_of(cls)
    row = InstanceRecord(child_id, workflow, RunStatus.RUNNING.value, serde.dumps(state), data,
                         now, now, parent_id=parent)  # fmt: skip
    started = HistoryRecord(child_id, now, HistoryKind.STARTED, workflow, input=data)
    return Write(row, None, history=(started,), notify=True, change=True)


def starts_of(
    engine: EngineCore,
    parent: str,
    stored: tuple[WatchRecord, ...],
    children: dict[WatchRecord, tuple[str, str]],
    history: list[HistoryRecord],
) -> tuple[tuple[Write, ...], list[HistoryRecord]]:
    """The children to start in a commit of ``parent`` (those of its ``Child`` watches that
    are not ``stored`` yet), and its history with a ``child`` entry for each."""
    starts = []
    history = list(history)
    for watch, (workflow, data) in children.items():
        if watch in stored:
            continue
        starts.append(child_write(engine, parent, watch, workflow, data))
        given = serde.dumps({"id": watch.target_id, "workflow": workflow})
        history.append(HistoryRecord(parent, clock.now(), HistoryKind.CHILD, watch.name,
                                     watch.thread_id, input=given))  # fmt: skip
    return tuple(starts), history
