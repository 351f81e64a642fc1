"""A stored row, read: its status, its state and data as live objects, the timers a state
implies, and the error that names what does not load.

Every call that reads an instance goes through here, so a row that does not load (a
hand-edited column, a type the code no longer has) is refused in one way everywhere, with
:class:`UnreadableInstanceError` naming the column and the reason, and nothing changed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gorch import clock, serde
from gorch.engine._records import RunStatus
from gorch.errors import SerializationError, UnreadableInstanceError
from gorch.state import EventStatus, State
from gorch.store.base import InstanceRecord, TimerRecord


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


def read(row: InstanceRecord, workflows: Mapping[str, type]) -> tuple[State, Any]:
    """The row's state and workflow object (of its class in ``workflows``).

    Raises:
        UnreadableInstanceError: naming the first column that does not load, and why.
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
    loaded: list[Any] = []
    for what, text, into in (("state", row.state, State), ("data", row.data, cls)):
        try:
            loaded.append(serde.loads(text, into))
        except SerializationError as exc:
            reason = f"it does not load as {into.__name__}: {'; '.join(exc.details)}"
            raise unreadable(row, what, reason) from exc
    return loaded[0], loaded[1]


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
