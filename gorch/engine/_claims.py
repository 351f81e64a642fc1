"""What a worker does through the engine: claim runnable instances, due timers and met
watches, and work on what it claimed (run an instance on, fire its timer, deliver the event of
a child's end or of another instance's move).

A claim takes each row with a lease in the store's own transaction (``FOR UPDATE SKIP LOCKED``
on PostgreSQL), so the operation on a claimed row starts leased. A claimed row that does not
load is marked failed with the reason, so one bad row never stops a worker.
"""

from __future__ import annotations

import logging
from typing import Any

from gorch import clock, serde
from gorch.children import ChildResult, ended_event
from gorch.engine._core import EngineCore
from gorch.engine._op import Operation
from gorch.engine._records import HistoryKind
from gorch.errors import CallbackNotFound, HandlerError, StaleCallback, UnreadableInstanceError
from gorch.interpreter import handle_callback, renames_of
from gorch.state import CallbackRequest, RunStatus
from gorch.store.base import InstanceRecord, MessageRecord, TimerRecord

log = logging.getLogger("gorch.engine")

ENDED = ended_event("")  # the suffix of a Child's event


def claim_runnable(engine: EngineCore, limit: int) -> list[InstanceRecord]:
    """Claim up to ``limit`` runnable instances of the engine's workflows (a retry due or
    work to go on with), each leased for the engine's lease."""
    now = clock.now()
    return engine.store.claim(
        engine._lease_name(), now, now + engine.lease, limit, workflows=list(engine.workflows)
    )


def claim_messages(engine: EngineCore, limit: int) -> list[tuple[MessageRecord, InstanceRecord]]:
    """Claim up to ``limit`` instances of the engine's workflows with a met watch to take,
    each with its oldest message, leased for the engine's lease."""
    now = clock.now()
    return engine.store.claim_messages(
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
        op = claimed(engine, row)
        if op is not None:
            op.run()


def fire_claimed(engine: EngineCore, timer: TimerRecord, row: InstanceRecord) -> bool:
    """Fire a due timer on its claimed instance and run it on; False if the timer was stale
    (it is deleted, and the instance given back)."""
    with engine._observe("timer", row.id, row.workflow, timer.name):
        return _fire(engine, timer, row)


def _fire(engine: EngineCore, timer: TimerRecord, row: InstanceRecord) -> bool:
    """:func:`fire_claimed`, inside its observation."""
    op = claimed(engine, row)
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


def claimed(engine: EngineCore, row: InstanceRecord) -> Operation | None:
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


def result_of(engine: EngineCore, message: MessageRecord) -> ChildResult:
    """The payload of a met watch: the other instance's id and status at the commit that met
    it, and its data as it is now (None if it is gone or does not load)."""
    data: Any = None
    row = engine.store.get(message.target_id)
    cls = None if row is None else engine.workflows.get(row.workflow)
    if row is not None and cls is not None:
        try:
            data = serde.loads(row.data, cls)
        except Exception:  # its id and status still tell the waiting instance what happened
            log.warning("%s: the data of %s does not load", message.instance_id, row.id)
    return ChildResult(message.target_id, RunStatus(message.status), data, message.at_statements)


def deliver_claimed(engine: EngineCore, message: MessageRecord, row: InstanceRecord) -> bool:
    """Deliver a met watch's event to its claimed instance and run it on; False if its wait
    is over (the message is deleted, and the instance given back)."""
    with engine._observe("message", row.id, row.workflow, message.name):
        op = claimed(engine, row)
        if op is None:
            return True
        return _deliver(engine, op, message, row)


def _deliver(
    engine: EngineCore, op: Operation, message: MessageRecord, row: InstanceRecord
) -> bool:
    # A watch stored before its statement was renamed names the old event (the class's
    # renames; a Child's event is named after the Child).
    renames = renames_of(type(op.wf))
    name = renames.get(message.name, message.name)
    if name == message.name and message.name.endswith(ENDED):
        base = message.name.removesuffix(ENDED)
        name = ended_event(renames.get(base, base))
    req = CallbackRequest(row.id, message.thread_id, name, message.pc)
    result = result_of(engine, message)
    try:
        out = handle_callback(req, op.wf, op.state, result, host=op.host)
    except (StaleCallback, CallbackNotFound, UnreadableInstanceError) as exc:
        log.info("%s: the message of %r (pc %d) is stale, deleting it: %s", row.id,
                 message.name, message.pc, exc, extra={"gorch_instance": row.id})  # fmt: skip
        engine.store.delete_message(message)
        engine.store.release(row.id, op.owner, row.version)
        return False
    except HandlerError as exc:
        op.step_failed(exc)
        return True
    op.dirty = True
    op.consume = message
    given = {"id": result.id, "status": result.status.value}
    op.note(HistoryKind.EVENT, message.name, message.thread_id, input=serde.dumps(given),
            output=serde.dumps(out))  # fmt: skip
    op.run()
    return True
