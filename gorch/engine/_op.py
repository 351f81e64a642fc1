"""One operation on one instance: the row as last committed, the live objects, and the commits
that bring the store up to date with them.

An :class:`Operation` loads the workflow object and the state from a row; the interpreter and
user code change those live objects, and each commit writes them (or keeps what is stored) in
one :meth:`Store.commit <gorch.store.Store.commit>`, only if the row's version is still the one
read. Each commit is a method named for what it records:

=========================  ==========================================  =============  ========
commit                     when                                        writes         lease
=========================  ==========================================  =============  ========
:meth:`queue`              ``start(defer=True)``: for a worker         live objects   released
:meth:`checkpoint`         before user code runs (steps, handlers,     live objects   taken
                           setups, teardowns)
:meth:`finish`             the run reached a wait, or the end          live objects   released
:meth:`hand_over`          the run used its ``max_steps``              live objects   released
:meth:`fail`               nothing can run until an operator repairs   live (if       released
                           it (code and state disagree; a row that     loaded)
                           does not load)
:meth:`record_failure`     user code raised, or its checkpoint could   as stored      released
                           not be written: retry later, or give up
:meth:`hold`               before an operator's user code (goto's and  as stored      taken
                           cancel's teardowns), unpause
:meth:`release`            a goto refused after :meth:`hold`           as stored      released
:meth:`restart`            an operator's retry or goto: the retry      live objects   taken
                           count starts over
:meth:`mark`               an operator's pause; a goto in a paused     live (if       released
                           instance                                    loaded)
:meth:`mark_cancelled`     an operator's cancel: no timers, no retry   as told        released
=========================  ==========================================  =============  ========

A commit that fails its version check raises :class:`ReadAgain` if this operation holds no
lease (nothing was done outside memory: the caller reads again), and ``ConflictError`` if it
does (another process took the instance over). A commit after user code ran that fails for
another reason raises :class:`Unsaved` inside a run, which records it like a failing step.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Any

from gorch import clock, serde
from gorch.engine._failures import Failures
from gorch.engine._host import OperationHost
from gorch.engine._keeper import NO_BEAT
from gorch.engine._links import ENDS, at_statements_of, links_of, starts_of
from gorch.engine._records import HistoryKind, RunStatus
from gorch.engine._rows import NO_ATTEMPTS, Attempts, status_of, timers_of
from gorch.engine._rows import load as load_row
from gorch.errors import (
    ConflictError,
    DefinitionError,
    HandlerError,
    StateMismatchError,
    StepError,
    StepLimitExceeded,
    WorkflowFinishedError,
)
from gorch.interpreter import resume
from gorch.state import CheckpointType, State, Thread, WorkflowStatus
from gorch.store.base import (
    HistoryRecord,
    InstanceRecord,
    KeyRecord,
    MessageRecord,
    TimerRecord,
    WatchRecord,
    Write,
)

if TYPE_CHECKING:
    from gorch.engine._core import EngineCore

log = logging.getLogger("gorch.engine")  # one logger for the whole engine (docs/engine.md)


class ReadAgain(Exception):
    """The instance changed under an operation that had not yet done anything: read again."""


class Unsaved(Exception):
    """A checkpoint after user code could not be written; ``cause`` says why."""

    def __init__(self, cause: Exception) -> None:
        super().__init__(str(cause))
        self.cause = cause


class Operation(Failures):
    """One operation on one instance (see the module docstring for its commits).

    Args:
        engine: the engine it runs for.
        row: the row as read (or, for a new instance, as it is to be inserted).
        leased: the row is leased to this operation already (a worker claimed it).
        new: the row is not in the store yet (its first commit inserts it).
        live: the objects the row was just made from, instead of loading them.
        load: load the live objects; False for an operation that only changes status, lease
            and history (its commits write the stored texts back).

    Raises:
        UnreadableInstanceError: the row does not load (with ``load``).
    """

    __slots__ = ("beat", "committed", "consume", "dirty", "effect", "engine", "exists",
                 "history", "host", "key", "leased", "lock", "lost", "migrated", "owner", "ran",
                 "row", "started", "state", "status", "succeeded", "timers", "tx", "watched",
                 "watches", "wf")  # fmt: skip

    def __init__(
        self,
        engine: EngineCore,
        row: InstanceRecord,
        *,
        leased: bool,
        new: bool = False,
        live: tuple[State, Any] | None = None,
        load: bool = True,
    ):
        self.engine = engine
        self.row = row
        # Each operation leases under a name of its own, so that two threads of one process
        # exclude each other as two processes do.
        self.owner = row.lease_owner if leased and row.lease_owner else engine._lease_name()
        self.state: Any
        self.wf: Any
        self.migrated = 0  # the data version the loaded data was migrated from, if it was
        renamed = False
        if live is not None:  # the objects the row was just written from
            self.state, self.wf = live
        elif load:
            self.state, self.wf, renamed, self.migrated = load_row(row, engine.workflows)
        else:  # only status, lease and history change: the stored texts are written back
            self.state = self.wf = None
        self.leased = leased
        self.exists = not new  # the row is in the store (a commit updates it)
        self.committed = False  # this operation committed: what it accepted is durable
        self.dirty = new  # changes not yet committed that a replay would not reproduce
        self.effect: tuple[str, str] | None = None  # (thread, name) of user code running now
        self.ran: tuple[str, str] | None = None  # user code whose checkpoint is pending
        self.succeeded = False  # a step succeeded since the last commit: its retry count ends
        self.history: list[HistoryRecord] = []
        self.key: KeyRecord | None = None
        # None: the stored timers are unknown (a renamed event's timer has its old name), so
        # the first commit of the live objects writes theirs.
        self.timers: tuple[TimerRecord, ...] | None = (
            None if new or self.state is None or renamed else timers_of(self.state)
        )
        # The same for the watches (_links.py); a new instance has none yet.
        self.watches: tuple[WatchRecord, ...] | None = (
            () if new else None if self.state is None or renamed else links_of(self.state)[0]
        )
        self.consume: MessageRecord | None = None  # the met watch this operation delivers
        self.status: RunStatus | None = None if new else status_of(row)
        self.host = OperationHost(self)
        self.lock = threading.Lock()  # taken by each commit, and by the keeper's (_keeper.py)
        self.watched = False  # the keeper watches this operation
        self.lost = False  # a renewal found the instance taken over
        self.started: float | None = None  # when the user code running now started
        self.beat = NO_BEAT  # (what the running code reported last, not yet written)
        self.tx: Any = None  # a transactional step's open transaction (its checkpoint's)

    def note(self, kind: HistoryKind, name: str = "", thread: str = "", **kw: Any) -> None:
        """Add a history entry to the next commit."""
        self.history.append(HistoryRecord(self.row.id, clock.now(), kind, name, thread, **kw))

    def migration(self, actor: str | None = None, reason: str | None = None) -> HistoryRecord:
        """The history entry of the data's migration, for the commit that writes the migrated
        data (after which the data is current: ``migrated`` is reset); ``actor`` and
        ``reason`` for an operator's ``migrate``."""
        versions = serde.dumps({"from": self.migrated, "to": self.state.data_version})
        self.migrated = 0
        return HistoryRecord(self.row.id, clock.now(), HistoryKind.MIGRATED, self.row.workflow,
                             input=versions, actor=actor, reason=reason)  # fmt: skip

    # -- the commits -------------------------------------------------------------------------

    def queue(self) -> None:
        """Commit the live objects as runnable, leaving the run to a worker (and waking one)."""
        self._commit(RunStatus.RUNNING, live=True, lease=False, notify=True)

    def checkpoint(self) -> None:
        """Commit what is pending (an accepted event or timer, the steps run since the last
        commit) and take or renew the lease: the commit before user code runs."""
        self._progress(RunStatus.RUNNING, lease=True, attempts=None, notify=False, live=True)

    def finish(self, status: RunStatus) -> None:
        """The run's last commit: ``status``, the retry count cleared, the lease released."""
        self._last(status, attempts=NO_ATTEMPTS, notify=False, live=True)

    def hand_over(self) -> None:
        """The run's last commit when it used its steps: runnable, for a worker to go on."""
        self._last(RunStatus.RUNNING, attempts=None, notify=True, live=True)

    def fail(self, error: str) -> None:
        """Stop as ``FAILED`` with ``error``: nothing runs until an operator repairs it. Writes
        the live objects if they were loaded (the interpreter leaves a consistent state behind
        the errors that stop a run), else keeps the stored ones (a row that does not load)."""
        attempts = Attempts(self.row.attempts, None, error)
        self._last(RunStatus.FAILED, attempts=attempts, notify=False, live=self.state is not None)

    def hold(self) -> None:
        """Take the lease, changing nothing else: before an operator's call runs user code."""
        self._commit(self.status or RunStatus.FAILED, live=False, lease=True)

    def release(self) -> None:
        """Give the lease back, changing nothing else (a call refused after :meth:`hold`)."""
        self._commit(self.status or RunStatus.FAILED, live=False, lease=False)

    def restart(self) -> None:
        """Hold the lease as running with the retry count reset, for the run that follows: an
        operator's retry, or a goto (whose move the live objects hold)."""
        self._commit(RunStatus.RUNNING, live=True, lease=True, attempts=NO_ATTEMPTS)

    def mark(self, status: RunStatus) -> None:
        """Commit an operator's ``status`` (a pause; a goto in a paused instance), releasing
        the lease; the live objects if they were loaded, else the stored ones."""
        self._commit(status, live=self.state is not None, lease=False)

    def mark_cancelled(self, *, torn_down: bool) -> None:
        """End the instance for good: no timers and no retry due, the lease released.
        ``torn_down``: write the live objects, whose waits were torn down; else keep the
        stored ones (the row does not load, or its code cannot tear it down)."""
        ended = Attempts(self.row.attempts, None, self.row.last_error)
        self._commit(RunStatus.CANCELLED, live=torn_down, lease=False, timers=(),
                     attempts=ended)  # fmt: skip

    def _last(self, status: RunStatus, attempts: Attempts | None, notify: bool, live: bool) -> None:
        """A run's last commit, which releases the lease; one that cannot be written after
        user code ran is recorded as that code's failure."""
        try:
            self._progress(status, lease=False, attempts=attempts, notify=notify, live=live)
        except Unsaved as exc:
            self.checkpoint_failed(exc.cause)

    def _progress(
        self, status: RunStatus, lease: bool, attempts: Attempts | None, notify: bool, live: bool
    ) -> None:
        """:meth:`_commit`, where a failure after user code ran is that code's failure: raised
        as :class:`Unsaved` for :meth:`run` to record like a failing step. Anything else (no
        user code ran since the last commit, or nothing of this operation is durable yet) is
        raised as it is: the caller's call fails and changes nothing."""
        try:
            self._commit(status, live, lease, notify, attempts)  # positional: the hot path
        except (ConflictError, ReadAgain):
            raise
        except Exception as exc:
            if self.ran is None or not self.leased:
                raise
            raise Unsaved(exc) from exc

    def _commit(
        self,
        status: RunStatus,
        live: bool,
        lease: bool,
        notify: bool = False,
        attempts: Attempts | None = None,
        timers: tuple[TimerRecord, ...] | None = None,
    ) -> None:
        """The one writer behind the commits above. ``live``: write the live state and data
        and the timers they imply; else the committed texts and the stored timers. ``timers``:
        these instead. ``attempts``: the retry bookkeeping (default: cleared if a step
        succeeded since the last commit, else as stored)."""
        with self.lock:  # the lease keeper's renewals take it too (_keeper.py)
            eng, row = self.engine, self.row
            state, data, timers, history, watches, at, starts = self._contents(status, live, timers)
            if attempts is None and self.succeeded:
                attempts = NO_ATTEMPTS
            elif attempts is None:
                attempts = Attempts(row.attempts, row.next_attempt_at, row.last_error)
            now = clock.now()
            new = InstanceRecord(
                row.id, row.workflow, status.value, state, data, row.created_at, now, row.version,
                self.owner if lease else None, now + eng.lease if lease else None,
                attempts.count, attempts.next_at, attempts.error, at_statements=at,
                parent_id=row.parent_id,
            )  # fmt: skip
            write = Write(
                new,
                row.version if self.exists else None,
                timers=None if timers == self.timers else timers,
                history=history,
                key=self.key,
                notify=notify,
                change=not self.exists or new.status != row.status or at != row.at_statements,
                watches=None if watches == self.watches else watches,
                starts=starts,
                consume=self.consume,
            )
            new.version = self._store(write)
            old = self.status
            self.row, self.timers, self.status = new, timers, status
            self.watches, self.consume = watches, None
            self.history, self.key, self.dirty, self.succeeded = [], None, False, False
            self.leased, self.exists, self.committed, self.ran = lease, True, True, None
            if old is not status:
                eng._status(row.id, row.workflow, old, status)

    def _contents(
        self, status: RunStatus, live: bool, timers: tuple[TimerRecord, ...] | None
    ) -> Any:
        """What a commit writes besides status, lease and attempts: state, data, timers,
        history, watches, the statements it waits at, and the children it starts."""
        row = self.row
        if not live:
            timers = self.timers if timers is None else timers
            at = () if status in ENDS else row.at_statements
            return row.state, row.data, timers, self.history, self.watches, at, ()
        timers = timers_of(self.state) if timers is None else timers
        history = self.history
        if self.migrated:  # written with the migrated data (once: migration() resets it)
            history = [self.migration(), *history]
        watches, children = links_of(self.state)
        starts: tuple[Write, ...] = ()
        if children and self.watches is not None and watches != self.watches:
            starts, history = starts_of(self.engine, row.id, self.watches, children, history)
        state, data = serde.dumps(self.state), serde.dumps(self.wf)
        at = at_statements_of(self.state, status.value)
        return state, data, timers, history, watches, at, starts

    def _store(self, write: Write) -> int:
        """Commit ``write`` (in a transactional step's open transaction, with its work, if there
        is one); a version conflict is :class:`ReadAgain` without a lease, else a takeover."""
        tx, self.tx = self.tx, None
        try:
            return self.engine.store.commit(write) if tx is None else int(tx.commit(write))
        except ConflictError:
            if not self.leased:
                raise ReadAgain() from None
            log.warning(
                "lost the lease on %s (another process took it over); dropping this run",
                write.instance.id,
                extra={"gorch_instance": write.instance.id},
            )
            raise

    # -- running -----------------------------------------------------------------------------

    def before(self, t: Thread, name: str) -> None:
        """The interpreter is about to run user code ``name`` in thread ``t``."""
        if self.dirty or not self.leased:
            self.checkpoint()
        if not self.watched:
            self.watched = True
            self.engine.keeper.watch(self)
        self.started, self.beat = time.time(), NO_BEAT
        self.effect = (t.id, name)
        self.engine._each("before_step", self.row.id, self.row.workflow, t.id, name)

    def reached(self, kind: CheckpointType) -> None:
        """The interpreter reached a checkpoint of ``kind``: note what it records.

        It is committed before the next side effect starts (in :meth:`before`) or when the run
        ends, whichever comes first: only pure interpreter work lies in between, so this is as
        safe as committing at once, and the last step of a run shares its commit with the
        run's outcome."""
        if kind is CheckpointType.AFTER_RESUME:
            return  # replaying from the last commit reproduces it
        effect, self.effect = self.effect, None
        if kind is CheckpointType.AFTER_STEP or kind is CheckpointType.AFTER_CONDITION:
            if effect is None:
                return  # a WaitFor without a handler passed: reproducible
            thread, name = effect
            self.note(HistoryKind.STEP, name, thread)
            self.dirty = self.succeeded = True
            self.ran = effect
            self.engine._each("after_step", self.row.id, self.row.workflow, thread, name, None)
            if self.tx is not None:  # a transactional step: the next commit commits its work
                self.tx.ready = True
            return
        self.dirty = True  # a Handler's setup or teardown ran
        self.ran = effect or self.ran

    def run(self) -> None:
        """Resume until every thread is blocked; commit the outcome and release the lease.

        How a run ends, and what it commits:

        - every thread blocks, or the instance finishes: :meth:`finish`;
        - user code raises (``StepError``, ``HandlerError``): :meth:`step_failed`;
        - a checkpoint after user code cannot be written: :meth:`checkpoint_failed`;
        - it used ``max_steps`` (``StepLimitExceeded``): :meth:`hand_over`;
        - the code no longer fits the state (``StateMismatchError``, ``DefinitionError``):
          :meth:`broken` once this operation holds the lease; before that, the error is
          raised and the call changed nothing.

        A transactional step's work commits with the first of these commits after it (only
        interpreter work lies in between, as for any checkpoint), or is undone if none comes.
        """
        try:
            self._run()
        finally:
            if self.tx is not None:
                self.tx.close()
                self.tx = None

    def _run(self) -> None:
        """:meth:`run`'s body."""
        try:
            self._resume()
        except WorkflowFinishedError:
            pass  # nothing left to run: the outcome is recorded as it stands
        except (StepError, HandlerError) as exc:
            self.step_failed(exc)
            return
        except Unsaved as exc:
            self.checkpoint_failed(exc.cause)
            return
        except StepLimitExceeded as exc:
            log.info("%s", exc, extra={"gorch_instance": self.row.id})
            self.hand_over()
            return
        except (StateMismatchError, DefinitionError) as exc:
            if not self.leased:
                raise
            self.broken(exc)
            return
        self.finish(self.outcome())

    def _resume(self) -> None:
        """The interpreter's run; the lease keeper watches it from its first user code on."""
        try:
            resume(self.wf, self.state, self.reached, max_steps=self.engine.max_steps,
                   before=self.before, host=self.host)  # fmt: skip
        finally:
            if self.watched:
                self.watched = False
                self.engine.keeper.unwatch(self)
            if self.tx is not None and not self.tx.ready:  # its step failed: undo its work
                self.tx.close()
                self.tx = None

    def outcome(self) -> RunStatus:
        """The status a run that ended without an error leaves: waiting; finished (noting it
        in the history); or running, if teardowns failed after the main thread returned (they
        are retried like a step)."""
        if self.state.status is not WorkflowStatus.FINISHED:
            return RunStatus.WAITING
        if self.state.threads:
            return RunStatus.RUNNING
        self.note(HistoryKind.FINISHED)
        return RunStatus.FINISHED

    def run_accepted(self, what: str) -> None:
        """:meth:`run`, for a call whose change is accepted once it is committed: a failure of
        the run after that commit (the lease taken over by another process, a database fault
        while recording a failure) does not make the call fail — a worker carries the run on
        (the instance is left leased or runnable, and its lease expires)."""
        try:
            self.run()
        except ReadAgain:
            raise
        except Exception as exc:
            if not self.committed:
                raise
            log.warning(
                "%s: %s was committed, but the run after it did not finish (%s: %s); a worker "
                "carries it on", self.row.id, what, type(exc).__name__, exc,
                extra={"gorch_instance": self.row.id},
            )  # fmt: skip
