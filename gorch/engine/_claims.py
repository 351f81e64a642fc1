"""What a worker does through the engine: claim runnable instances and due timers, and work on
what it claimed (run an instance on, or fire its timer).

A claim takes each row with a lease in the store's own transaction (``FOR UPDATE SKIP LOCKED``
on PostgreSQL), so the operation on a claimed row starts leased. A claimed row that does not
load is marked failed with the reason, so one bad row never stops a worker.
"""

from __future__ import annotations

import logging

from gorch import clock, serde
from gorch.engine._core import EngineCore
from gorch.engine._op import Operation
from gorch.engine._records import HistoryKind
from gorch.errors import CallbackNotFound, StaleCallback, UnreadableInstanceError
from gorch.interpreter import handle_callback, renames_of
from gorch.state import CallbackRequest
from gorch.store.base import InstanceRecord, TimerRecord

log = logging.getLogger("gorch.engine")


def claim_runnable(engine: EngineCore, limit: int) -> list[InstanceRecord]:
    """Claim up to ``limit`` runnable instances of the engine's workflows (a retry due or
    work to go on with), each leased for the engine's lease."""
    now = clock.now()
    return engine.store.claim(
        engine._lease_name(), now, now + engine.lease, limit, workflows=list(engine.workflows)
    )


def claim_timers(engine: EngineCore, limit: int) -> list[tuple[TimerRecord, InstanceRecord]]:
    """Claim up to ``limit`` due timers of the engine's workflows, each with its instance's
    row, leased for the engine's lease."""
    now = clock.now()
    return engine.store.claim_timers(
        engine._lease_name(), now, now + engine.lease, limit, workflows=list(engine.workflows)
    )


def run_claimed(engine: EngineCore, row: InstanceRecord) -> None:
    """Run a claimed instance on until it blocks."""
    with engine._observe("run", row.id, row.workflow):
        op = _claimed(engine, row)
        if op is not None:
            op.run()


def fire_claimed(engine: EngineCore, timer: TimerRecord, row: InstanceRecord) -> bool:
    """Fire a due timer on its claimed instance and run it on; False if the timer was stale
    (it is deleted, and the instance given back)."""
    with engine._observe("timer", row.id, row.workflow, timer.name):
        return _fire(engine, timer, row)


def _fire(engine: EngineCore, timer: TimerRecord, row: InstanceRecord) -> bool:
    """:func:`fire_claimed`, inside its observation."""
    op = _claimed(engine, row)
    if op is None:
        return True
    # A timer stored before its Timeout was renamed names the old event (the class's renames)
    name = renames_of(type(op.wf)).get(timer.name, timer.name)
    req = CallbackRequest(row.id, timer.thread_id, name, timer.pc)
    try:
        handle_callback(req, op.wf, op.state, host=op.host)
    except (StaleCallback, CallbackNotFound) as exc:
        log.info(
            "%s: timer %r (pc %d) is stale, deleting it: %s",
            row.id, timer.name, timer.pc, exc,
            extra={"gorch_instance": row.id},
        )  # fmt: skip
        engine.store.delete_timer(timer)
        engine.store.release(row.id, op.owner, row.version)
        return False
    op.dirty = True
    if engine.listeners:
        lag = (clock.now() - timer.due_at).total_seconds()
        engine._each("on_timer", row.id, row.workflow, timer.name, lag)
    due = serde.dumps(clock.format_time(timer.due_at))
    op.note(HistoryKind.TIMER, timer.name, timer.thread_id, input=due)
    op.run()
    return True


def _claimed(engine: EngineCore, row: InstanceRecord) -> Operation | None:
    """The operation on a claimed row; None if the row does not load, which then is marked
    failed with the reason."""
    try:
        return Operation(engine, row, leased=True)
    except UnreadableInstanceError as exc:
        op = Operation(engine, row, leased=True, load=False)
        op.note(HistoryKind.FAILED, error=str(exc))
        log.error("%s", exc, extra={"gorch_instance": row.id})
        op.fail(str(exc))
        return None
