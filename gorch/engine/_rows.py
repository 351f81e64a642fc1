"""A stored row, read: its status, its state and data as live objects, the timers a state
implies, and the error that names what does not load.

Loading applies what the class declares about older rows: its ``renames`` (old statement
names read as the new ones) and its ``data_version`` (older data migrated by its ``migrate``,
step by step, before it is structured). Every call that reads an instance goes through here,
so a row that does not load (a hand-edited column, a type the code no longer has) is refused
in one way everywhere, with :class:`UnreadableInstanceError` naming the column and the
reason, and nothing changed.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, NamedTuple, TypeVar

import orjson
from attrs import frozen

from gorch import clock, serde
from gorch.engine._records import RunStatus
from gorch.errors import MigrationError, SerializationError, UnreadableInstanceError
from gorch.interpreter import apply_renames, data_version_of, renames_of
from gorch.state import EventStatus, State
from gorch.store.base import InstanceRecord, TimerRecord

_T = TypeVar("_T")


def status_of(row: InstanceRecord) -> RunStatus | None:
    """The row's status, or None if its text is no status this gorch knows."""
    try:
        return RunStatus(row.status)
    except ValueError:
        return None


def timers_of(state: State) -> tuple[TimerRecord, ...]:
    """The timers a state implies: one per set-up Timeout event of every thread."""
    out = []
    for t in state.threads:
        for e in t.wait_events:
            if e.type == "timeout" and e.status is EventStatus.SETUP and not e.handled:
                r = e.req
                out.append(
                    TimerRecord(state.id, t.id, r.name, r.pc, clock.parse_time(r.setup_data))
                )
    return tuple(out)


class Loaded(NamedTuple):
    """A row, loaded: its state and workflow object, and what loading changed in them.

    Attributes:
        renamed: old statement names of the state were mapped to new ones (the class's
            ``renames``): the stored timers name the old events.
        migrated: the data version the stored data was migrated from, or 0 (it was current).
    """

    state: State
    data: Any
    renamed: bool = False
    migrated: int = 0


def read(row: InstanceRecord, workflows: Mapping[str, type]) -> tuple[State, Any]:
    """The row's state and workflow object (of its class in ``workflows``).

    Raises:
        UnreadableInstanceError: naming the first column that does not load, and why.
    """
    loaded = load(row, workflows)
    return loaded.state, loaded.data


def load(row: InstanceRecord, workflows: Mapping[str, type]) -> Loaded:
    """The row loaded (as :func:`read`): the state with the class's renames applied, the data
    migrated from an older data version to the class's own.

    Raises:
        UnreadableInstanceError: naming the first column that does not load, and why (a
            migration that fails: the data, with the :class:`MigrationError`'s message).
    """
    cls = registered(row, workflows)
    state = structure(row, "state", row.state, State)
    renames = renames_of(cls)
    renamed = apply_renames(state, renames) if renames else False
    text, was = row.data, state.data_version
    current = data_version_of(cls)
    if was != current:
        try:
            text = migrated(cls, text, was, current, row.id)
        except MigrationError as exc:
            raise unreadable(row, "data", exc.message) from exc
        state.data_version = current
    data: Any = structure(row, "data", text, cls)
    return Loaded(state, data, renamed, was if was != current else 0)


def registered(row: InstanceRecord, workflows: Mapping[str, type]) -> type:
    """The class of the row's workflow, once its columns are known to be sound.

    Raises:
        UnreadableInstanceError: a damaged column, an unknown status or workflow.
    """
    for defect in row.defects:
        column, _, reason = defect.partition(": ")
        raise unreadable(row, column, reason)
    if status_of(row) is None:
        known = ", ".join(s.value for s in RunStatus)
        raise unreadable(row, "status", f"{row.status!r} is not a status ({known})")
    cls = workflows.get(row.workflow)
    if cls is None:
        known = ", ".join(map(repr, sorted(workflows))) or "none"
        raise unreadable(
            row, "workflow", f"workflow {row.workflow!r} is not registered here ({known})"
        )
    return cls


def structure(row: InstanceRecord, what: str, text: str, into: type[_T]) -> _T:
    """Column ``what`` of the row (``text``) as an ``into``; UnreadableInstanceError if not."""
    try:
        return serde.loads(text, into)
    except SerializationError as exc:
        reason = f"it does not load as {into.__name__}: {'; '.join(exc.details)}"
        raise unreadable(row, what, reason) from exc


def migrated(cls: type, text: str, version: int, current: int, id: str = "") -> str:
    """Data ``text`` written at data ``version``, upgraded to ``current`` by ``cls.migrate``
    one version at a time.

    Raises:
        MigrationError: a ``migrate`` raised or returned no dict; or the data is newer than
            the code (a roll-back: no code downgrades data).
    """
    name = cls.__name__
    if version > current:
        raise MigrationError(
            name, version, f"the data was written by data version {version}, and this code "
            f"has data version {current}; deploy the code that wrote it", workflow_id=id,
        )  # fmt: skip
    try:
        doc = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise MigrationError(name, version, f"the data is not JSON: {exc}", workflow_id=id) from exc
    for v in range(version, current):
        try:
            doc = cls.migrate(doc, v)  # type: ignore[attr-defined]
        except Exception as exc:
            raise MigrationError(name, v, f"it raised {type(exc).__name__}: {exc}",
                                 workflow_id=id) from exc  # fmt: skip
        if not isinstance(doc, dict):
            raise MigrationError(name, v, f"it returned {type(doc).__name__}, not a dict",
                                 workflow_id=id)  # fmt: skip
    return orjson.dumps(doc).decode()


def unreadable(row: InstanceRecord, column: str, reason: str) -> UnreadableInstanceError:
    """The error for a row whose ``column`` does not load, saying what can still be done."""
    return UnreadableInstanceError(
        f"instance {row.id!r} cannot be read: its {column} is unreadable: {reason}. Nothing "
        f"was changed. Repair the row, or deploy code whose types match it; it can still "
        f"be paused or cancelled.",
        workflow_id=row.id,
        field=column,
        reason=reason,
    )


@frozen
class Attempts:
    """An instance's retry bookkeeping (its row's ``attempts``, ``next_attempt_at`` and
    ``last_error``): consecutive failed attempts of the statement it is at, when the next one
    is due, and the last error."""

    count: int = 0
    next_at: datetime | None = None
    error: str | None = None


NO_ATTEMPTS = Attempts()
