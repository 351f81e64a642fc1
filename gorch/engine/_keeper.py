"""Keeping the leases of long runs: while an operation's user code runs, its lease is renewed
in the background, so no other process takes the instance over and runs the step twice while
this process lives; and what a long step reports (``gorch.context().heartbeat``) is written
where operators see it.

One :class:`LeaseKeeper` per engine, with one daemon thread while it watches anything. An
operation is watched from the first user code of its run (:meth:`Operation.before
<gorch.engine._op.Operation.before>`) to the run's end. Every tick the keeper renews the
lease of each watched operation that still holds one and has used a third of it, or that has
a heartbeat to write: :meth:`Operation.renew <gorch.engine._op.Operation.renew>`, a commit of
the stored texts with a new lease expiry (and a ``heartbeat`` history entry for a step that
has run long or reported progress). A renewal that fails is logged and tried again next tick;
one that finds the instance taken over marks the operation lost, and its next commit fails as
any commit after a takeover does.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from gorch import clock, serde
from gorch.engine._records import HistoryKind
from gorch.errors import ConflictError, InputError
from gorch.store.base import HistoryRecord, InstanceRecord, Write

if TYPE_CHECKING:
    from gorch.engine._core import EngineCore
    from gorch.engine._op import Operation

NO_BEAT: tuple[Any, bool] = (None, False)
"""``Operation.beat`` before the running code reported anything: ``(details, unwritten)``."""

log = logging.getLogger("gorch.engine")


class LeaseKeeper:
    """Renews the leases of the engine's running operations (see the module docstring)."""

    def __init__(self, engine: EngineCore) -> None:
        self.engine = engine
        self.watched: dict[int, Operation] = {}
        self.lock = threading.Lock()
        self.wake = threading.Event()
        self.thread: threading.Thread | None = None

    @property
    def tick(self) -> float:
        """Seconds between looks: a sixth of the lease (at most 5 s, at least 10 ms)."""
        return min(5.0, max(0.01, self.engine.lease.total_seconds() / 6))

    def watch(self, op: Operation) -> None:
        with self.lock:
            self.watched[id(op)] = op
            if self.thread is None:
                self.thread = threading.Thread(
                    target=self._loop, name=f"gorch-lease-keeper {self.engine.owner}", daemon=True
                )
                self.thread.start()

    def unwatch(self, op: Operation) -> None:
        with self.lock:
            self.watched.pop(id(op), None)

    def nudge(self) -> None:
        """Look now (a heartbeat arrived)."""
        self.wake.set()

    def _loop(self) -> None:
        """Look every tick while anything is watched; end when nothing is (:meth:`watch`
        starts the thread again), so an idle engine holds no thread."""
        while True:
            self.wake.wait(self.tick)
            self.wake.clear()
            with self.lock:
                ops = list(self.watched.values())
                if not ops:
                    self.thread = None
                    return
            for op in ops:
                self._renew(op)

    def _renew(self, op: Operation) -> None:
        try:
            renew(op)
        except Exception as exc:  # a database fault: the next tick tries again
            log.warning(
                "%s: could not renew the lease of its running step (%s: %s); trying again",
                op.row.id, type(exc).__name__, exc, extra={"gorch_instance": op.row.id},
            )  # fmt: skip


def heartbeat(op: Operation, details: Any) -> None:
    """The running code of ``op`` reports progress: keep it for the keeper to write (and
    renew the lease) soon."""
    try:
        serde.dumps(details)
    except Exception as exc:
        raise InputError(
            f"heartbeat details must be JSON (a dict, a list, text, a number), got "
            f"{type(details).__name__}: {exc}"
        ) from None
    op.beat = (details, True)
    op.engine.keeper.nudge()


def renew(op: Operation) -> None:
    """Renew ``op``'s lease if user code runs and a third of the lease is used, or write what
    it reported (at most once a keeper's tick): one commit of the stored texts, with a
    ``heartbeat`` history entry."""
    if not op.lock.acquire(blocking=False):
        return  # the operation commits now: that renews the lease anyway
    try:
        row, effect, started = op.row, op.effect, op.started
        if not op.leased or op.lost or effect is None or started is None:
            return
        if op.tx is not None and op.engine.store.dialect.name == "sqlite":  # type: ignore[attr-defined]
            return  # its transaction holds SQLite's write lock: a renewal would wait for it
        eng, now = op.engine, clock.now()
        details, fresh = op.beat
        expires = row.lease_expires
        due = expires is None or expires - now <= eng.lease * 2 / 3
        recent = now - row.updated_at < timedelta(seconds=eng.keeper.tick)
        if not due and (not fresh or recent):
            return
        _write(op, row, effect, started, details)
        op.beat = (details, False)
    finally:
        op.lock.release()


def _write(op: Operation, row: InstanceRecord, effect: tuple[str, str], started: float,
           details: Any) -> None:  # fmt: skip
    """The renewal's commit; a takeover marks ``op`` lost."""
    eng, now = op.engine, clock.now()
    thread, name = effect
    since = datetime.fromtimestamp(started, UTC)
    report = {"attempt": row.attempts + 1, "started_at": clock.format_time(since),
              "details": details}  # fmt: skip
    entry = HistoryRecord(row.id, now, HistoryKind.HEARTBEAT, name, thread,
                          output=serde.dumps(report))  # fmt: skip
    new = InstanceRecord(
        row.id, row.workflow, row.status, row.state, row.data, row.created_at, now,
        row.version, op.owner, now + eng.lease, row.attempts, row.next_attempt_at,
        row.last_error, at_statements=row.at_statements, parent_id=row.parent_id,
    )  # fmt: skip
    try:
        new.version = eng.store.commit(Write(new, row.version, history=[entry]))
    except ConflictError:
        op.lost = True
        log.warning(
            "%s: another process took the instance over while %r ran; this run's result "
            "will not be committed", row.id, name, extra={"gorch_instance": row.id},
        )  # fmt: skip
        return
    op.row = new
