"""The engine: durable workflow instances on a store, and the worker that moves them on.

:class:`Engine` starts instances, delivers events, and repairs, pauses, unpauses, cancels and
retries them. :class:`Worker` fires due timers, resumes runnable instances and retries failed
steps when their backoff is over.

How one instance is kept consistent (DESIGN.md section 4):

- Every change is one :meth:`Store.commit <gorch.store.Store.commit>`: the state, the data, the
  timers derived from the state, history rows and an idempotency key, in one transaction, and
  only if the instance's version is still the one read (otherwise nothing is written).
- Work that runs user code with side effects (a step, a ``WaitFor`` handler, a Handler's setup
  or teardown) first commits what is pending (the accepted event) together with a *lease* on the
  instance: ``lease_owner`` and ``lease_expires``. Every step is followed by its own commit (the
  checkpoint), which also renews the lease; the last commit releases it. A lease is taken and
  renewed in short transactions, so a step that takes seconds holds no database lock and never
  blocks other instances.
- Other callers do not start work on a leased instance: ``send`` (and the operator calls) wait
  up to ``busy_wait`` seconds for the lease to be released, then raise :class:`BusyError`
  having changed nothing. An expired lease (its holder crashed) is free to take; the holder's
  next commit then fails its version check, so two processes never both record progress.
- An event that needs no side effect before the next wait (the common case) costs one read and
  one commit. If the instance changed in between, the commit fails its version check, nothing
  was done outside memory, and ``send`` simply reads again and retries.
- A step that raises is recorded (error, attempt, next attempt time) and retried by a worker
  with the step's :class:`~gorch.retry.RetryPolicy`; past its last attempt the instance becomes
  ``FAILED``. A step is run at least once: if the process dies during it, a worker runs it again
  once the lease expires; a step whose checkpoint committed never runs again.
"""

from __future__ import annotations

import builtins
import functools
import hashlib
import itertools
import logging
import os
import random
import re
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from enum import StrEnum
from types import FrameType
from typing import Any, Generic, TypeVar, overload

import orjson
from attrs import define, field, frozen

from gorch import clock, serde
from gorch.dsl import K_GO
from gorch.errors import (
    BusyError,
    CallbackNotFound,
    ConflictError,
    DefinitionError,
    GorchError,
    HandlerError,
    IdempotencyKeyError,
    InputError,
    InstanceStatusError,
    NotFoundError,
    SerializationError,
    StaleCallback,
    StateMismatchError,
    StepError,
    StepLimitExceeded,
    StoreUnavailableError,
    UnreadableInstanceError,
    WorkflowFinishedError,
    did_you_mean,
    suggest,
)
from gorch.interpreter import (
    DEFAULT_MAX_STEPS,
    GotoPlan,
    awaited,
    class_problems,
    find_statement,
    goto,
    handle_callback,
    program,
    resume,
    waiting_for,
)
from gorch.interpreter import cancel as interpreter_cancel
from gorch.limits import MAX_PAGE, MAX_TEXT, is_text
from gorch.retry import RetryPolicy
from gorch.state import (
    MAIN_THREAD,
    CallbackRequest,
    CheckpointType,
    EventStatus,
    State,
    Thread,
    WorkflowStatus,
    new_state,
)
from gorch.store.base import HistoryRecord, InstanceRecord, KeyRecord, Store, TimerRecord, Write

__all__ = [
    "OPERATOR_STATUSES",
    "Engine",
    "HistoryEntry",
    "HistoryKind",
    "Instance",
    "Listener",
    "Page",
    "RunStatus",
    "ThreadWait",
    "Worker",
    "WorkerHealth",
]

log = logging.getLogger("gorch.engine")

_T = TypeVar("_T")


class RunStatus(StrEnum):
    """Where an instance stands, as the engine sees it."""

    RUNNING = "running"  # a worker has work to do on it (or is doing it)
    WAITING = "waiting"  # every thread waits for an event, a timer or a condition
    FINISHED = "finished"
    FAILED = "failed"  # a step kept failing past its retry policy; an operator repairs it
    PAUSED = "paused"  # no event is accepted, no timer fires, until unpaused
    CANCELLED = "cancelled"


class HistoryKind(StrEnum):
    """What one history entry records (``HistoryEntry.kind``; the store keeps the text)."""

    STARTED = "started"  # the instance was created; input: its data
    EVENT = "event"  # an event was accepted; input: its payload, output: the handler's answer
    TIMER = "timer"  # a Timeout fired; input: its due time
    STEP = "step"  # a step (or a WaitFor's handler) ran and its checkpoint committed
    STEP_FAILED = "step_failed"  # an attempt failed; error: why, output: the attempt number
    FAILED = "failed"  # the instance gave up (past its retry policy, or code and state disagree)
    FINISHED = "finished"  # the main thread returned
    GOTO = "goto"  # an operator moved a thread; input: the plan
    PAUSED = "paused"  # an operator paused it
    UNPAUSED = "unpaused"  # an operator let it go on
    CANCELLED = "cancelled"  # an operator ended it; error: teardowns that failed, if any
    RETRY = "retry"  # an operator ran its failed step again; error: the error it had


_OPEN = (RunStatus.RUNNING, RunStatus.WAITING)

_LIVE = (RunStatus.RUNNING, RunStatus.WAITING, RunStatus.PAUSED, RunStatus.FAILED)
OPERATOR_STATUSES: dict[str, tuple[RunStatus, ...]] = {
    "pause": _LIVE,
    "unpause": (RunStatus.PAUSED,),
    "cancel": _LIVE,
    "retry": (RunStatus.FAILED,),
    "goto": _LIVE,
}
"""The statuses in which each operator action is allowed (an instance that finished or was
cancelled takes none of them)."""


@define
class Instance:
    """A workflow instance as stored.

    Attributes:
        id, workflow: the instance's id and its workflow's registered name.
        status: see :class:`RunStatus`.
        data: the workflow object.
        state: the interpreter's :class:`~gorch.State`.
        created_at, updated_at: aware UTC datetimes.
        version: bumped by every write.
        attempts: consecutive failed attempts of the step the instance is at.
        next_attempt_at: when the next retry is due (or None).
        last_error: the last step failure (or None).
        timers: the instance's due timers, soonest first.
        load_error: why the stored row does not load, for a row listed as it is (its
            ``data`` is then None and its ``state`` has no threads); None for a sound row.
    """

    id: str
    workflow: str
    status: RunStatus
    data: Any
    state: State
    created_at: datetime
    updated_at: datetime
    version: int = 0
    attempts: int = 0
    next_attempt_at: datetime | None = None
    last_error: str | None = None
    timers: list[TimerRecord] = field(factory=list)
    load_error: str | None = None

    def waiting_for(self) -> list[str]:
        """The events the instance waits for now, sorted."""
        return waiting_for(self.state)


@define
class Page(Generic[_T]):
    """One page of :meth:`Engine.list` or :meth:`Engine.history`: ``items``, and ``next`` to
    pass as ``cursor`` for the next page (None on the last one).

    A page is a sequence of its items: ``for inst in engine.list()``, ``len(page)``,
    ``page[0]`` and ``page[-1]`` work on ``items``.
    """

    items: builtins.list[_T]
    next: str | None = None

    def __iter__(self) -> Iterator[_T]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    @overload
    def __getitem__(self, i: int) -> _T: ...
    @overload
    def __getitem__(self, i: slice) -> builtins.list[_T]: ...
    def __getitem__(self, i: int | slice) -> _T | builtins.list[_T]:
        return self.items[i]


@define
class HistoryEntry:
    """One entry of an instance's history.

    Attributes:
        at, kind, name, thread, error: as recorded (see :class:`~gorch.store.HistoryRecord`).
        input, output: parsed JSON. A stored text that is not JSON (a hand-edited row) is
            given as that text, and ``note`` says so.
        seq: the entry's position in the instance's history, from 1.
        note: None, or what is odd about the stored entry.
    """

    at: datetime
    kind: str
    name: str = ""
    thread: str = ""
    input: Any = None
    output: Any = None
    error: str | None = None
    seq: int = 0
    note: str | None = None


@define
class ThreadWait:
    """Where one thread of an instance is, from :meth:`Engine.waits`.

    Attributes:
        thread: the thread's id; ``name`` its name (the ``Go`` that started it).
        status: the thread's :class:`~gorch.ThreadStatus` value.
        at: the statement it is at (a Wait, a WaitFor or a Step).
        events: the events it waits for (empty unless it waits for events).
        since: when the thread last did something (its last step, event or timer, or the
            instance's start), from history; ``None`` for a thread that has done nothing yet.
        timers: its timers, soonest first.
    """

    thread: str
    name: str
    status: str
    at: str
    events: list[str]
    since: datetime | None
    timers: list[TimerRecord] = field(factory=list)


class Listener:
    """Hooks the engine calls around steps and on status changes (for logging and metrics).

    Subclass it and override what you need; pass instances as ``Engine(listeners=[...])``. An
    exception from a listener is logged and otherwise ignored: listeners never change the
    outcome of an operation.
    """

    def before_step(self, instance: str, workflow: str, thread: str, step: str) -> None:
        """A step (or a WaitFor's handler) is about to run."""

    def after_step(
        self, instance: str, workflow: str, thread: str, step: str, error: BaseException | None
    ) -> None:
        """A step ran; ``error`` is what it raised, or None (its checkpoint then commits before
        the next step starts, or when the run reaches a wait)."""

    def on_status(
        self, instance: str, workflow: str, old: RunStatus | None, new: RunStatus
    ) -> None:
        """The instance's status changed (``old`` is None for a new instance)."""


class _Retry(Exception):
    """The instance changed under an operation that had not yet done anything: read again."""


class _Unsaved(Exception):
    """A checkpoint after user code could not be written; ``cause`` says why."""

    def __init__(self, cause: Exception) -> None:
        super().__init__(str(cause))
        self.cause = cause


@frozen
class _Attempts:
    """An instance's retry bookkeeping: consecutive failed attempts of the statement it is at,
    when the next one is due, and the last error."""

    count: int = 0
    next_at: datetime | None = None
    error: str | None = None


_NO_ATTEMPTS = _Attempts()
_UNCHANGED: Any = object()  # timers=_UNCHANGED: keep the stored timers


def _timers(state: State) -> tuple[TimerRecord, ...]:
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


def _owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _status_of(row: InstanceRecord) -> RunStatus | None:
    """The row's status, or None if its text is no status this gorch knows."""
    try:
        return RunStatus(row.status)
    except ValueError:
        return None


class _Op:
    """One operation on one instance: the row as last committed, the live objects, and the
    commits that bring the store up to date with them.

    Two kinds of write: :meth:`save` writes the live state and data (with the timers they
    imply); :meth:`keep` writes status, lease, history and retry bookkeeping but keeps the
    committed state and data (a refused or failed unit of work, an operator's mark).
    """

    __slots__ = (
        "committed",
        "dirty",
        "effect",
        "engine",
        "exists",
        "history",
        "key",
        "leased",
        "owner",
        "ran",
        "row",
        "state",
        "status",
        "succeeded",
        "timers",
        "wf",
    )

    def __init__(
        self,
        engine: Engine,
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
        if live is not None:  # the objects the row was just written from
            self.state, self.wf = live
        elif load:
            self.state, self.wf = engine._read(row)
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
        self.timers: tuple[TimerRecord, ...] | None = (
            None if new or self.state is None else _timers(self.state)
        )
        self.status: RunStatus | None = None if new else _status_of(row)

    # -- committing --------------------------------------------------------------------------

    def note(self, kind: HistoryKind, name: str = "", thread: str = "", **kw: Any) -> None:
        self.history.append(HistoryRecord(self.row.id, clock.now(), kind, name, thread, **kw))

    def save(
        self,
        status: RunStatus,
        *,
        lease: bool,
        notify: bool = False,
        attempts: _Attempts | None = None,
    ) -> None:
        """Commit the live state and data, the timers they imply and the pending history with
        ``status``; take or renew the lease, or release it. ``attempts``: the retry
        bookkeeping to write (default: cleared if a step succeeded, else as stored)."""
        state, data = serde.dumps(self.state), serde.dumps(self.wf)
        self._write(status, lease, state, data, _timers(self.state), notify, attempts)

    def keep(
        self,
        status: RunStatus,
        *,
        lease: bool,
        notify: bool = False,
        timers: tuple[TimerRecord, ...] | None = _UNCHANGED,
        attempts: _Attempts | None = None,
    ) -> None:
        """As :meth:`save`, but keep the committed state and data (and, unless given, the
        stored timers)."""
        row = self.row
        timers = self.timers if timers is _UNCHANGED else timers
        self._write(status, lease, row.state, row.data, timers, notify, attempts)

    def _write(
        self,
        status: RunStatus,
        lease: bool,
        state: str,
        data: str,
        timers: tuple[TimerRecord, ...] | None,
        notify: bool,
        attempts: _Attempts | None,
    ) -> None:
        eng, row = self.engine, self.row
        now = clock.now()
        if attempts is None:
            attempts = (
                _NO_ATTEMPTS
                if self.succeeded
                else _Attempts(row.attempts, row.next_attempt_at, row.last_error)
            )
        new = InstanceRecord(
            row.id,
            row.workflow,
            status.value,
            state,
            data,
            row.created_at,
            now,
            row.version,
            self.owner if lease else None,
            now + eng.lease if lease else None,
            attempts.count,
            attempts.next_at,
            attempts.error,
        )
        write = Write(
            new,
            row.version if self.exists else None,
            timers=None if timers == self.timers else timers,
            history=self.history,
            key=self.key,
            notify=notify,
        )
        try:
            new.version = eng.store.commit(write)
        except ConflictError:
            if not self.leased:
                raise _Retry() from None
            log.warning(
                "lost the lease on %s (another process took it over); dropping this run",
                row.id,
                extra={"gorch_instance": row.id},
            )
            raise
        old = self.status
        self.row, self.timers, self.status = new, timers, status
        self.history, self.key, self.dirty, self.succeeded = [], None, False, False
        self.leased, self.exists, self.committed, self.ran = lease, True, True, None
        if old is not status:
            eng._status(row.id, row.workflow, old, status)

    def save_progress(self, status: RunStatus, *, lease: bool, **kw: Any) -> None:
        """:meth:`save`, where a failure after user code ran is that code's failure: raised as
        :class:`_Unsaved` for :meth:`run` to record like a failing step. Anything else (no
        user code ran since the last commit, or nothing of this operation is durable yet) is
        raised as it is: the caller's call fails and changes nothing."""
        try:
            self.save(status, lease=lease, **kw)
        except (ConflictError, _Retry):
            raise
        except Exception as exc:
            if self.ran is None or not self.leased:
                raise
            raise _Unsaved(exc) from exc

    # -- running -----------------------------------------------------------------------------

    def before(self, t: Thread, name: str) -> None:
        if self.dirty or not self.leased:
            self.save_progress(RunStatus.RUNNING, lease=True)
        self.effect = (t.id, name)
        self.engine._each("before_step", self.row.id, self.row.workflow, t.id, name)

    def checkpoint(self, kind: CheckpointType) -> None:
        # A checkpoint is committed before the next side effect starts (in before()) or when
        # the run ends, whichever comes first: only pure interpreter work lies in between, so
        # this is as safe as committing at once, and the last step of a run shares its commit
        # with the run's outcome.
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
            return
        self.dirty = True  # a Handler's setup or teardown ran
        self.ran = effect or self.ran

    def run(self) -> None:
        """Resume until every thread is blocked; commit the outcome and release the lease."""
        eng = self.engine
        try:
            resume(self.wf, self.state, self.checkpoint, max_steps=eng.max_steps,
                   before=self.before)  # fmt: skip
        except (StepError, HandlerError) as exc:
            self.failed(exc)
            return
        except _Unsaved as exc:
            self.unsaved(exc.cause)
            return
        except StepLimitExceeded as exc:
            log.info("%s", exc, extra={"gorch_instance": self.row.id})
            self.finish(RunStatus.RUNNING, notify=True, attempts=None)
            return
        except (StateMismatchError, DefinitionError) as exc:
            if not self.leased:
                raise  # this call committed nothing: refuse it, nothing changed
            self.broken(exc)
            return
        except WorkflowFinishedError:
            pass
        done = self.state.status is WorkflowStatus.FINISHED and not self.state.threads
        if done:
            self.note(HistoryKind.FINISHED)
        status = RunStatus.FINISHED if done else RunStatus.WAITING
        if self.state.status is WorkflowStatus.FINISHED and self.state.threads:
            status = RunStatus.RUNNING  # teardowns failed: retried like a step
        self.finish(status, attempts=_NO_ATTEMPTS)

    def run_accepted(self, what: str) -> None:
        """:meth:`run`, for a call whose change is accepted once it is committed: a failure of
        the run after that commit (the lease taken over by another process, a database fault
        while recording a failure) does not make the call fail — a worker carries the run on
        (the instance is left leased or runnable, and its lease expires)."""
        try:
            self.run()
        except _Retry:
            raise
        except Exception as exc:
            if not self.committed:
                raise
            log.warning(
                "%s: %s was committed, but the run after it did not finish (%s: %s); a worker "
                "carries it on", self.row.id, what, type(exc).__name__, exc,
                extra={"gorch_instance": self.row.id},
            )  # fmt: skip

    def finish(
        self, status: RunStatus, *, notify: bool = False, attempts: _Attempts | None
    ) -> None:
        """The run's last commit, which releases the lease."""
        try:
            self.save_progress(status, lease=False, notify=notify, attempts=attempts)
        except _Unsaved as exc:
            self.unsaved(exc.cause)

    def failed(self, exc: GorchError) -> None:
        """A step (or WaitFor handler) raised: keep the state of the last checkpoint, count the
        attempt, and schedule a retry or give up."""
        thread, name = self.effect or (exc.thread, exc.statement)
        self.effect = None
        cause = exc.__cause__ or exc
        self.engine._each("after_step", self.row.id, self.row.workflow, thread, name, cause)
        self.count_failure(thread, name, f"{type(cause).__name__}: {cause}")

    def unsaved(self, cause: Exception) -> None:
        """The checkpoint after user code could not be written: that code's work is undone
        (the committed state is kept), and counted as a failed attempt of it."""
        thread, name = self.ran or ("", "")
        error = (
            f"the checkpoint after {name!r} could not be written ({type(cause).__name__}: "
            f"{cause}); what ran since the last checkpoint will run again"
        )
        self.count_failure(thread, name, error)

    def count_failure(self, thread: str, name: str, error: str) -> None:
        """Record a failed attempt at ``name``: retry it with backoff, or give up past its
        retry policy. The committed state and data are kept."""
        eng = self.engine
        policy = eng.policy(self.wf, name)
        attempts = self.row.attempts + 1
        self.note(HistoryKind.STEP_FAILED, name, thread, error=error,
                  output=serde.dumps({"attempt": attempts}))  # fmt: skip
        extra = {"gorch_instance": self.row.id, "gorch_step": name}
        if attempts >= policy.max_attempts:
            self.note(HistoryKind.FAILED, name, thread, error=error)
            log.error("%s: %r failed for good after %d attempts: %s", self.row.id, name,
                      attempts, error, extra=extra)  # fmt: skip
            self.keep(RunStatus.FAILED, lease=False, attempts=_Attempts(attempts, None, error))
            return
        due = clock.now() + policy.delay(attempts, eng.rng)
        log.warning(
            "%s: %r failed (attempt %d of %d), retrying at %s: %s", self.row.id, name,
            attempts, policy.max_attempts, clock.format_time(due), error, extra=extra,
        )  # fmt: skip
        self.keep(RunStatus.RUNNING, lease=False, notify=True,
                  attempts=_Attempts(attempts, due, error))  # fmt: skip

    def broken(self, exc: GorchError) -> None:
        """The code no longer fits the state: nothing can run until an operator repairs it."""
        error = f"{type(exc).__name__}: {exc}"
        self.note(HistoryKind.FAILED, exc.statement, exc.thread, error=error)
        log.error("%s: %s", self.row.id, error, extra={"gorch_instance": self.row.id})
        # The interpreter leaves a consistent state behind these errors (what ran is kept).
        self.finish(RunStatus.FAILED, attempts=_Attempts(self.row.attempts, None, error))


class Engine:
    """Durable workflow instances on a store.

    Args:
        store: where instances live (:class:`gorch.store.SQLStore` or ``MemoryStore``).
        workflows: registered workflow classes by name.
        retry: the default retry policy for failing steps (a step may override it with
            ``Step(..., retry=RetryPolicy(...))``).
        lease: how long a claim on an instance lasts without a checkpoint. A step that runs
            longer than this may be run a second time by a worker that takes the instance over.
        busy_wait: seconds an operation waits for an instance another process is working on
            before it raises :class:`BusyError`.
        max_steps: steps one resume may run before yielding the instance to a worker.
        listeners: :class:`Listener` objects.
        owner: this engine's name in leases (default: host, pid and a random suffix).

    Raises:
        DefinitionError: a registered class breaks a rule of the DSL, or one of its fields has
            a type that cannot round-trip through JSON (every problem listed; see
            :func:`gorch.validate`).

    Example::

        engine = Engine(SQLStore("sqlite:///gorch.db"), {"pizza": PizzaOrder})
        engine.start("pizza", PizzaOrder(), id="order-1")
        engine.send("order-1", "AddToCart", {"name": "margherita", "qty": 2}, key="req-17")
    """

    def __init__(
        self,
        store: Store,
        workflows: Mapping[str, type],
        *,
        retry: RetryPolicy | None = None,
        lease: timedelta | float = timedelta(seconds=60),
        busy_wait: float = 10.0,
        max_steps: int = DEFAULT_MAX_STEPS,
        listeners: Iterable[Listener] = (),
        owner: str | None = None,
    ) -> None:
        problems = []
        for name, cls in workflows.items():
            if not isinstance(name, str) or not name:
                raise ValueError(f"workflow names must be non-empty strings, not {name!r}")
            if not isinstance(cls, type) or not callable(getattr(cls, "definition", None)):
                raise ValueError(f"workflow {name!r}: {cls!r} has no definition() method")
            problems += [f"workflow {name!r} ({cls.__name__}): {p}" for p in class_problems(cls)]
        if problems:
            raise DefinitionError(problems)
        self.store = store
        self.workflows = dict(workflows)
        self.retry_policy = retry or RetryPolicy()
        self.lease = lease if isinstance(lease, timedelta) else timedelta(seconds=lease)
        self.busy_wait = busy_wait
        self.max_steps = max_steps
        self.listeners = list(listeners)
        self.owner = owner or _owner()
        self._leases = itertools.count(1)
        self.rng = random.Random()

    def __repr__(self) -> str:
        return f"Engine({self.store!r}, {sorted(self.workflows)})"

    # -- helpers -----------------------------------------------------------------------------

    def _class(self, workflow: str, instance_id: str = "") -> type:
        try:
            return self.workflows[workflow]
        except KeyError:
            hint = did_you_mean(suggest(workflow, self.workflows))
            known = ", ".join(map(repr, sorted(self.workflows))) or "none"
            where = f"instance {instance_id!r} belongs to " if instance_id else ""
            raise NotFoundError(
                f"{where}workflow {workflow!r}, which is not registered with this engine "
                f"(registered: {known}).{hint}",
                workflow_id=instance_id,
            ) from None

    def _lease_name(self) -> str:
        return f"{self.owner}#{next(self._leases)}"

    def _each(self, hook: str, *args: Any) -> None:
        for listener in self.listeners:
            try:
                getattr(listener, hook)(*args)
            except Exception:
                log.exception("listener %r failed in %s", listener, hook)

    def _status(self, id: str, workflow: str, old: RunStatus | None, new: RunStatus) -> None:
        log.info("%s: %s -> %s", id, old, new.value, extra={"gorch_instance": id})
        self._each("on_status", id, workflow, old, new)

    def policy(self, wf: Any, step: str) -> RetryPolicy:
        """The retry policy of ``step`` in workflow ``wf`` (the step's own, or the default)."""
        node = find_statement(wf, step) if step else None
        own = getattr(node, "retry", None)
        return own if isinstance(own, RetryPolicy) else self.retry_policy

    def _row(self, id: str) -> InstanceRecord:
        if not isinstance(id, str) or not id:
            raise InputError(f"an instance id must be a non-empty string, not {id!r}")
        row = self.store.get(id) if "\x00" not in id else None  # start refuses NUL in ids
        if row is None:
            raise NotFoundError(f"no instance has id {id!r}", workflow_id=id)
        return row

    def _read(self, row: InstanceRecord) -> tuple[State, Any]:
        """The row's state and workflow object; :class:`UnreadableInstanceError` naming what
        does not load."""
        for defect in row.defects:
            column, _, reason = defect.partition(": ")
            raise self._unreadable(row, column, reason)
        if _status_of(row) is None:
            known = ", ".join(s.value for s in RunStatus)
            raise self._unreadable(row, "status", f"{row.status!r} is not a status ({known})")
        cls = self.workflows.get(row.workflow)
        if cls is None:
            known = ", ".join(map(repr, sorted(self.workflows))) or "none"
            raise self._unreadable(
                row, "workflow", f"workflow {row.workflow!r} is not registered here ({known})"
            )
        loaded: builtins.list[Any] = []
        for what, text, into in (("state", row.state, State), ("data", row.data, cls)):
            try:
                loaded.append(serde.loads(text, into))
            except SerializationError as exc:
                reason = f"it does not load as {into.__name__}: {'; '.join(exc.details)}"
                raise self._unreadable(row, what, reason) from exc
        return loaded[0], loaded[1]

    def _unreadable(self, row: InstanceRecord, field: str, reason: str) -> UnreadableInstanceError:
        return UnreadableInstanceError(
            f"instance {row.id!r} cannot be read: its {field} is unreadable: {reason}. Nothing "
            f"was changed. Repair the row, or deploy code whose types match it; it can still "
            f"be paused or cancelled.",
            workflow_id=row.id,
            field=field,
            reason=reason,
        )

    def _instance(
        self, row: InstanceRecord, timers: bool | list[TimerRecord] = False, tolerant: bool = False
    ) -> Instance:
        """The row as an :class:`Instance`. ``tolerant``: a row that does not load is shown
        with what is known and ``load_error`` (else it raises UnreadableInstanceError)."""
        try:
            state, data = self._read(row)
            error = None
        except UnreadableInstanceError as exc:
            if not tolerant:
                raise
            state, data, error = State(row.id, row.workflow, threads=[]), None, str(exc)
        if timers is True:
            timers = self.store.timers(row.id)
        return Instance(
            id=row.id,
            workflow=row.workflow,
            status=_status_of(row) or RunStatus.FAILED,
            data=data,
            state=state,
            created_at=row.created_at,
            updated_at=row.updated_at,
            version=row.version,
            attempts=row.attempts,
            next_attempt_at=row.next_attempt_at,
            last_error=row.last_error,
            timers=timers or [],
            load_error=error,
        )

    def _free_row(self, id: str, waited: list[float]) -> InstanceRecord:
        """Read the instance, waiting (up to ``busy_wait`` in all) while someone else holds a
        live lease on it."""
        pause = 0.002
        while True:
            row = self._row(id)
            owner, until = row.lease_owner, row.lease_expires
            if owner is None or until is None or until < clock.now():
                return row
            if waited[0] >= self.busy_wait:
                raise BusyError(
                    f"instance {id!r} is busy: {owner} is running it (lease until "
                    f"{clock.format_time(until)}) and did not finish within "
                    f"{self.busy_wait:g} s. Nothing changed; send again later.",
                    workflow_id=id,
                    owner=owner,
                )
            # time.monotonic may be frozen by freezegun in tests: count what we slept instead
            step = min(pause, self.busy_wait - waited[0])
            time.sleep(step)
            waited[0] += step
            pause = min(pause * 2, 0.05)

    def _operate(self, id: str, body: Callable[[InstanceRecord], Any]) -> Any:
        """Run ``body`` on a freshly read, unleased row; read again while the instance changes
        under it before it did anything."""
        waited = [0.0]
        for _ in range(1000):
            row = self._free_row(id, waited)
            try:
                return body(row)
            except _Retry:
                continue
        raise ConflictError(  # pragma: no cover - needs 1000 lost races in a row
            f"instance {id!r} kept changing under this call; nothing changed, try again",
            workflow_id=id,
        )

    # -- the public calls --------------------------------------------------------------------

    def start(
        self, workflow: str, data: Any, id: str | None = None, *, defer: bool = False
    ) -> Instance:
        """Create an instance of ``workflow`` from ``data`` and run it until it blocks.

        Args:
            workflow: a registered workflow's name.
            data: the workflow object to start from (an instance of the registered class).
            id: the instance's id (default: a random one).
            defer: only commit the new instance as ``RUNNING``; a worker runs it.

        Raises:
            NotFoundError: ``workflow`` is not registered.
            AlreadyExistsError: an instance with ``id`` exists already (nothing changed).
            InputError: ``data`` is not an instance of the registered class, or a bad id.
        """
        cls = self._class(workflow)
        if not isinstance(data, cls):
            raise InputError(
                f"start({workflow!r}): data must be a {cls.__name__}, not {type(data).__name__}"
            )
        if id is None:
            id = uuid.uuid4().hex
        elif not is_text(id) or "/" in id:
            raise InputError(
                f"an instance id must be text of 1 to {MAX_TEXT} characters, without NUL or "
                f'"/" (it is part of the instance\'s URL): {id!r}'
            )
        try:
            text = serde.dumps(data)
        except SerializationError as exc:
            raise InputError(
                f"start({workflow!r}): the data cannot be stored: {exc}", details=exc.details
            ) from exc
        now = clock.now()
        state = new_state(id, workflow)
        row = InstanceRecord(
            id, workflow, RunStatus.RUNNING.value, serde.dumps(state), text, now, now
        )
        op = _Op(self, row, leased=False, new=True, live=(state, data))
        op.note(HistoryKind.STARTED, workflow, input=row.data)
        if defer:
            op.save(RunStatus.RUNNING, lease=False, notify=True)
        else:
            op.run_accepted(f"start of {id!r}")
        return self._instance(op.row, list(op.timers or ()))

    def send(
        self,
        id: str,
        event: str,
        payload: Any = None,
        *,
        key: str | None = None,
        thread: str = "",
        workflow: str | None = None,
    ) -> Any:
        """Deliver ``event`` with ``payload`` to instance ``id`` and run it until it blocks.

        The accepted event is committed (state, data, history) before any step after it runs;
        a step that then fails does not undo the event (it is retried by a worker).

        Args:
            id: the instance.
            event: the event's name (as in ``On(event, ...)``).
            payload: parsed JSON (or an instance of the handler's payload type).
            key: an idempotency key: a repeat with the same key returns the first answer and
                applies nothing again.
            thread: the thread to deliver to; by default the one thread waiting for ``event``.
            workflow: if given, refuse (``NotFoundError``) an instance of another workflow.

        Returns:
            The handler's output as JSON-compatible data (the same on a repeat with ``key``).

        Raises:
            NotFoundError, CallbackNotFound, InputError, WorkflowFinishedError,
            InstanceStatusError (paused, cancelled, failed), BusyError, IdempotencyKeyError;
            none of them changes anything.
        """
        if not isinstance(event, str) or not event:
            raise InputError(f"an event name must be a non-empty string, not {event!r}")
        try:  # also in a field the handler ignores: the payload is written to history
            serde.check_depth(payload)
        except InputError as exc:
            raise InputError(
                f"the payload of {event!r} for instance {id!r} was refused: {exc}",
                workflow_id=id,
                event=event,
                details=[f"{d} @ payload" for d in exc.details],
            ) from None
        fingerprint = ""
        if key is not None:
            if not is_text(key):
                raise InputError(
                    f"an idempotency key must be 1 to {MAX_TEXT} characters, without NUL: {key!r}"
                )
            fingerprint = _fingerprint(event, thread, payload)

        def body(row: InstanceRecord) -> Any:
            if workflow is not None and row.workflow != workflow:
                raise NotFoundError(
                    f"instance {id!r} is a {row.workflow!r} workflow, not a {workflow!r} one",
                    workflow_id=id,
                )
            if key is not None:
                done = self.store.get_key(id, key)
                if done is not None:
                    if done.fingerprint != fingerprint:
                        raise IdempotencyKeyError(
                            f"idempotency key {key!r} of instance {id!r} was used for another "
                            f"request; use a new key for a new request",
                            workflow_id=id,
                            key=key,
                        )
                    try:
                        return orjson.loads(done.output)
                    except orjson.JSONDecodeError as exc:
                        raise UnreadableInstanceError(
                            f"instance {id!r}: the answer stored for idempotency key {key!r} "
                            f"is not JSON ({exc}); nothing was applied again. Repair or delete "
                            f"the key's row (gorch_keys) to send with this key.",
                            workflow_id=id,
                            field="idempotency key",
                            reason=str(exc),
                        ) from None
            self._check_open(row, f"send {event!r} to")
            op = _Op(self, row, leased=False)
            out = handle_callback(
                CallbackRequest(workflow_id=id, thread_id=thread, name=event), op.wf, op.state,
                payload,
            )  # fmt: skip
            try:
                out_json = serde.dumps(out)
                op.dirty = True
                op.note(HistoryKind.EVENT, event, _thread_of(op.state, event, thread),
                        input=_json_or_none(payload), output=out_json)  # fmt: skip
                if key is not None:
                    op.key = KeyRecord(id, key, fingerprint, out_json, clock.now())
                op.run_accepted(f"event {event!r} for {id!r}")
            except SerializationError as exc:  # raised only while nothing was committed
                raise HandlerError(
                    f"workflow {id!r}: the event {event!r} was not applied: its handler left a "
                    f"value that cannot be stored ({exc}). Fix the handler; nothing changed.",
                    workflow_id=id,
                    statement=event,
                    event=event,
                ) from exc
            return orjson.loads(out_json)

        return self._operate(id, body)

    def send_json(
        self,
        id: str,
        event: str,
        body: str | bytes,
        *,
        key: str | None = None,
        thread: str = "",
        workflow: str | None = None,
    ) -> Any:
        """:meth:`send` with the payload as JSON text (a request body, a message)."""
        try:
            payload = orjson.loads(body) if body not in ("", b"") else None
        except orjson.JSONDecodeError as exc:
            raise InputError(
                f"the payload of {event!r} for instance {id!r} is not valid JSON: {exc}",
                workflow_id=id,
                event=event,
                details=[str(exc)],
            ) from None
        return self.send(id, event, payload, key=key, thread=thread, workflow=workflow)

    def _check_open(self, row: InstanceRecord, doing: str) -> None:
        status = _status_of(row)
        if status is None:
            self._read(row)  # raises: the status text is unknown
            raise AssertionError("unreachable")  # pragma: no cover
        if status is RunStatus.FINISHED:
            raise WorkflowFinishedError(
                f"cannot {doing} instance {row.id!r}: it has finished", workflow_id=row.id
            )
        if status not in _OPEN:
            what = {
                RunStatus.PAUSED: "it is paused; unpause it first",
                RunStatus.CANCELLED: "it was cancelled",
                RunStatus.FAILED: f"it failed ({row.last_error}); repair it with goto or retry "
                "it first",
            }[status]
            raise InstanceStatusError(
                f"cannot {doing} instance {row.id!r}: {what}",
                workflow_id=row.id,
                status=status.value,
            )

    def _require(self, row: InstanceRecord, action: str) -> RunStatus:
        """The row's status, if the operator ``action`` is allowed in it (see
        :data:`OPERATOR_STATUSES`); an unknown status text counts as failed."""
        status = _status_of(row) or RunStatus.FAILED
        allowed = OPERATOR_STATUSES[action]
        if status in allowed:
            return status
        if len(allowed) == 1:
            why = f"it is {status.value}, not {allowed[0].value}"
        else:
            why = f"it is {status.value}"
        doing = "goto in" if action == "goto" else action
        raise InstanceStatusError(
            f"cannot {doing} instance {row.id!r}: {why}", workflow_id=row.id, status=status.value
        )

    def refusal(self, action: str, id: str) -> GorchError | None:
        """Why the operator ``action`` (``"pause"``, ``"unpause"``, ``"cancel"``, ``"retry"``,
        ``"goto"``) would be refused for instance ``id`` now — it does not exist, or its status
        does not allow it — or None. Changes nothing; for checking many ids before acting on
        any (the CLI's bulk commands)."""
        try:
            self._require(self._row(id), action)
        except GorchError as exc:
            return exc
        return None

    def workflow_class(self, name: str) -> type:
        """The class registered as ``name``. Raises :class:`NotFoundError` with the closest
        registered names."""
        return self._class(name)

    def workflow_of(self, id: str) -> str:
        """The registered workflow name of instance ``id``. Raises :class:`NotFoundError`."""
        return self._row(id).workflow

    def get(self, id: str) -> Instance:
        """The instance ``id`` (with its timers). Raises :class:`NotFoundError`."""
        return self._instance(self._row(id), timers=True)

    def list(
        self,
        *,
        workflow: str | None = None,
        status: RunStatus | str | Sequence[RunStatus | str] | None = None,
        limit: int = 50,
        cursor: str | None = None,
        search: str | None = None,
    ) -> Page[Instance]:
        """Instances, newest first, filtered by workflow, status and text in the id (``search``,
        case-sensitive); one page at a time (iterate the :class:`Page`, or read its ``items``
        and ``next``)."""
        if not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE:
            raise InputError(f"limit must be an integer from 1 to {MAX_PAGE}, not {limit!r}")
        statuses: list[str] | None = None
        if status is not None:
            items = [status] if isinstance(status, str) else list(status)
            try:
                statuses = [RunStatus(s).value for s in items]
            except ValueError:
                raise InputError(
                    f"unknown status in {items!r}; use one of "
                    f"{', '.join(s.value for s in RunStatus)}"
                ) from None
        if workflow is not None and not is_text(workflow):
            raise InputError(
                f"a workflow name must be 1 to {MAX_TEXT} characters, without NUL: {workflow!r}"
            )
        if search is not None and (len(search) > MAX_TEXT or "\x00" in search):
            raise InputError(
                f"a search must be at most {MAX_TEXT} characters, without NUL: {search!r}"
            )
        after = _parse_cursor(cursor) if cursor else None
        rows = self.store.list_instances(
            workflow=workflow, status=statuses, limit=limit + 1, after=after, id_contains=search
        )
        more = len(rows) > limit
        rows = rows[:limit]
        nxt = _cursor(rows[-1]) if more else None
        return Page([self._instance(r, tolerant=True) for r in rows], nxt)

    def history(
        self,
        id: str,
        *,
        limit: int | None = None,
        cursor: str | None = None,
        newest_first: bool = False,
    ) -> Page[HistoryEntry]:
        """The instance's history, oldest first (``newest_first``: newest first).

        Without ``limit`` the page holds the whole history; with it, at most ``limit`` entries
        and ``next``, the cursor of the page after (None on the last). A cursor continues in
        the direction it was made for.

        Raises:
            NotFoundError: no instance has this id.
            InputError: ``limit`` is not 1 to 1000, or ``cursor`` is not a ``next`` of this
                kind of page.
        """
        if limit is not None and (
            not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= MAX_PAGE
        ):
            raise InputError(f"limit must be an integer from 1 to {MAX_PAGE}, not {limit!r}")
        after = _parse_history_cursor(cursor, newest_first) if cursor else None
        self._row(id)
        rows = self.store.history(
            id,
            limit=None if limit is None else limit + 1,
            after=after,
            newest_first=newest_first,
        )
        nxt = None
        if limit is not None and len(rows) > limit:
            rows = rows[:limit]
            last = rows[-1]
            nxt = f"{'n' if newest_first else 'o'}{last.seq}.{last.version}.{last.idx}"
        return Page([_entry(h) for h in rows], nxt)

    def waits(self, id: str | Instance) -> builtins.list[ThreadWait]:
        """Where every thread of instance ``id`` is, what it waits for, since when, and its
        timers. Pass the :class:`Instance` from :meth:`get` instead of its id to save reading
        it again. Raises :class:`NotFoundError`.

        ``since`` is when the thread began what it does now, as far as the history shows: the
        time of its latest entry (a step it ran, an event or timer it received, a goto that
        moved it); for the main thread without one, the instance's start. A thread started by
        a ``Go`` that has done nothing yet has no entry of its own: it has been where it is
        since the Go ran, and the Go ran right after the latest entry of the spawning thread
        for a statement before the Go in the definition (or right after the instance's start,
        or when the spawning thread itself was started), in the same run.
        """
        inst = id if isinstance(id, Instance) else self.get(id)
        records = self.store.history(inst.id)
        last: dict[str, datetime] = {}
        for h in records:
            if h.thread:
                last[h.thread] = h.at
            elif h.kind == HistoryKind.STARTED:
                last[MAIN_THREAD] = h.at
        return [
            ThreadWait(
                t.id,
                t.name,
                t.status.value,
                t.cur_step,
                awaited([t]),
                last[t.id] if t.id in last else _spawned_at(inst.data, t.name, records),
                [tm for tm in inst.timers if tm.thread_id == t.id],
            )
            for t in inst.state.threads
        ]

    def _lease(self, row: InstanceRecord, kind: HistoryKind) -> _Op:
        """Take the lease on a free row, committing a history entry (for operator calls)."""
        op = _Op(self, row, leased=False)
        op.note(kind)
        op.keep(op.status or RunStatus.FAILED, lease=True)
        return op

    def goto(
        self, id: str, name: str, thread: str = MAIN_THREAD, *, dry_run: bool = False
    ) -> GotoPlan:
        """Move ``thread`` of instance ``id`` to the statement ``name`` and run on from there.

        With ``dry_run`` nothing changes and the plan says what would. A failed instance is
        repaired this way (its retry count is reset); a paused one stays paused.
        """

        def body(row: InstanceRecord) -> GotoPlan:
            status = self._require(row, "goto")
            probe = _Op(self, row, leased=False)
            plan = goto(probe.wf, probe.state, name, thread, dry_run=True)
            if dry_run:
                return plan
            op = _Op(self, row, leased=False)
            op.keep(status, lease=True)  # hold it while teardowns run
            try:
                plan = goto(op.wf, op.state, name, thread)
            except GorchError:  # refused before anything ran (e.g. a bad delay from data)
                op.keep(status, lease=False)
                raise
            op.note(HistoryKind.GOTO, name, thread, input=serde.dumps({"plan": plan.describe()}))
            if status is RunStatus.PAUSED:
                op.save(RunStatus.PAUSED, lease=False)
            else:
                op.save(RunStatus.RUNNING, lease=True, attempts=_NO_ATTEMPTS)
                op.run_accepted(f"goto {name!r} in {id!r}")
            return plan

        plan: GotoPlan = self._operate(id, body)
        return plan

    def pause(self, id: str) -> Instance:
        """Stop the instance: no event is accepted and no timer fires until :meth:`unpause`."""

        def body(row: InstanceRecord) -> Instance:
            if self._require(row, "pause") is RunStatus.PAUSED:
                return self._instance(row, timers=True, tolerant=True)
            op = _Op(self, row, leased=False, load=False)
            op.note(HistoryKind.PAUSED)
            op.keep(RunStatus.PAUSED, lease=False)
            return self._instance(op.row, timers=True, tolerant=True)

        return self._operate(id, body)  # type: ignore[no-any-return]

    def unpause(self, id: str) -> Instance:
        """Let a paused instance go on: it runs until it blocks (due timers fire next)."""

        def body(row: InstanceRecord) -> Instance:
            self._require(row, "unpause")
            op = self._lease(row, HistoryKind.UNPAUSED)
            op.run_accepted(f"unpause of {id!r}")
            return self._instance(op.row, timers=True)

        return self._operate(id, body)  # type: ignore[no-any-return]

    def cancel(self, id: str) -> Instance:
        """End the instance for good: its waits are torn down (Handler teardowns run, as for
        goto), its timers are deleted and nothing more runs. The threads keep their
        positions, for inspection. A teardown that fails is recorded in the history; an
        instance whose row does not load is cancelled without teardowns."""

        def body(row: InstanceRecord) -> Instance:
            self._require(row, "cancel")
            done = _Attempts(row.attempts, None, row.last_error)
            try:
                op = _Op(self, row, leased=False)
            except UnreadableInstanceError as exc:
                op = _Op(self, row, leased=False, load=False)
                op.note(HistoryKind.CANCELLED, error=f"no teardowns ran: {exc}")
                op.keep(RunStatus.CANCELLED, lease=False, timers=(), attempts=done)
                return self._instance(op.row, [], tolerant=True)
            if any(t.wait_events for t in op.state.threads):
                op.keep(op.status or RunStatus.FAILED, lease=True)  # teardowns are user code
            try:
                failed = interpreter_cancel(op.wf, op.state)
            except GorchError as exc:  # the code cannot tear this state down: keep it as it is
                op.note(HistoryKind.CANCELLED, error=f"no teardowns ran: {exc}")
                op.keep(RunStatus.CANCELLED, lease=False, timers=(), attempts=done)
                return self._instance(op.row, [])
            errors = [f"teardown of {e.req.name!r} failed: {e.error}" for e in failed]
            op.note(HistoryKind.CANCELLED, error="; ".join(errors) or None)
            op.save(RunStatus.CANCELLED, lease=False, attempts=done)
            return self._instance(op.row, [])

        return self._operate(id, body)  # type: ignore[no-any-return]

    def retry(self, id: str) -> Instance:
        """Run a failed instance's step again now (its retry count starts over)."""

        def body(row: InstanceRecord) -> Instance:
            self._require(row, "retry")
            op = _Op(self, row, leased=False)
            op.note(HistoryKind.RETRY, error=row.last_error)
            op.keep(RunStatus.RUNNING, lease=True, attempts=_NO_ATTEMPTS)
            op.run_accepted(f"retry of {id!r}")
            return self._instance(op.row, timers=True)

        return self._operate(id, body)  # type: ignore[no-any-return]

    # -- for the worker ----------------------------------------------------------------------

    def _claimed(self, row: InstanceRecord) -> _Op | None:
        """The operation on a row a worker claimed; None if the row does not load, which then
        is marked failed with the reason (so one bad row never stops a worker)."""
        try:
            return _Op(self, row, leased=True)
        except UnreadableInstanceError as exc:
            op = _Op(self, row, leased=True, load=False)
            op.note(HistoryKind.FAILED, error=str(exc))
            log.error("%s", exc, extra={"gorch_instance": row.id})
            op.keep(RunStatus.FAILED, lease=False,
                    attempts=_Attempts(row.attempts, None, str(exc)))  # fmt: skip
            return None

    def _run_claimed(self, row: InstanceRecord) -> None:
        op = self._claimed(row)
        if op is not None:
            op.run()

    def _fire_claimed(self, timer: TimerRecord, row: InstanceRecord) -> bool:
        """Fire a due timer on a claimed instance; False if it was stale (and is deleted)."""
        op = self._claimed(row)
        if op is None:
            return True
        req = CallbackRequest(row.id, timer.thread_id, timer.name, timer.pc)
        try:
            handle_callback(req, op.wf, op.state)
        except (StaleCallback, CallbackNotFound) as exc:
            log.info(
                "%s: timer %r (pc %d) is stale, deleting it: %s",
                row.id, timer.name, timer.pc, exc,
                extra={"gorch_instance": row.id},
            )  # fmt: skip
            self.store.delete_timer(timer)
            self.store.release(row.id, op.owner, row.version)
            return False
        op.dirty = True
        due = serde.dumps(clock.format_time(timer.due_at))
        op.note(HistoryKind.TIMER, timer.name, timer.thread_id, input=due)
        op.run()
        return True


def _thread_of(state: State, event: str, thread: str) -> str:
    if thread:
        return thread
    for t in state.threads:
        if t.cur_callback == event:
            return t.id
    return ""


def _json_or_none(payload: Any) -> str | None:
    return None if payload is None else serde.dumps(payload)


def _fingerprint(event: str, thread: str, payload: Any) -> str:
    try:
        body = orjson.dumps(
            [event, thread, serde.unstructure(payload)], option=orjson.OPT_SORT_KEYS
        )
    except TypeError:
        body = repr((event, thread, payload)).encode()
    return hashlib.sha256(body).hexdigest()


def _cursor(row: InstanceRecord) -> str:
    return f"{clock.format_time(row.created_at)}|{row.id}"


_HISTORY_CURSOR = re.compile(r"([on])([0-9]{1,10})\.([0-9]{1,10})\.([0-9]{1,10})")


def _parse_history_cursor(cursor: str, newest_first: bool) -> tuple[int, int, int]:
    """``(seq, version, idx)`` from a history page's ``next``: ``o`` (oldest first) or ``n``
    (newest first), then the last entry's seq, version and idx."""
    found = _HISTORY_CURSOR.fullmatch(cursor) if isinstance(cursor, str) else None
    place = tuple(int(g) for g in found.groups()[1:]) if found else ()
    if not found or not all(0 < n < 2**31 for n in place):
        raise InputError(
            f"{cursor!r} is not a history page cursor; pass the 'next' value of the page before"
        )
    if (found.group(1) == "n") != newest_first:
        order = "newest first" if found.group(1) == "n" else "oldest first"
        raise InputError(
            f"the cursor {cursor!r} continues a history read {order}; read with "
            f"newest_first={not newest_first} to go on from it"
        )
    return place[0], place[1], place[2]


def _entry(h: HistoryRecord) -> HistoryEntry:
    """A stored history row as an entry; input or output text that is not JSON (a hand-edited
    row) is kept as text, with a note, so that one bad row does not hide the whole history."""
    notes: builtins.list[str] = []

    def parse(text: str | None, what: str) -> Any:
        if text is None:
            return None
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            notes.append(f"the stored {what} is not valid JSON ({exc}); shown as its text")
            return text

    entry = HistoryEntry(h.at, h.kind, h.name, h.thread, parse(h.input, "input"),
                         parse(h.output, "output"), h.error, h.seq)  # fmt: skip
    entry.note = "; ".join(notes) or None
    return entry


def _spawned_at(wf: Any, go: str, records: Sequence[HistoryRecord]) -> datetime | None:
    """When the thread that the ``Go`` named ``go`` started has been where it is, for a thread
    with no history entry of its own (see :meth:`Engine.waits`); None if history cannot say."""
    try:
        prog, _ = program(wf)
    except GorchError:
        return None
    for _ in range(100):  # up through Go statements nested in Go bodies
        info = prog.by_name.get(go)
        if info is None or info.kind != K_GO:
            return None
        body = info.thread  # the thread body the Go statement is part of
        for h in reversed(records):
            if h.kind == HistoryKind.STARTED and body == MAIN_THREAD:
                return h.at
            stmt = prog.by_name.get(h.name) if h.kind in _MOVES else None
            # The spawning thread moved on from this statement, before the Go in the body:
            # the Go ran right after it (a statement after the Go ran later).
            if stmt is not None and stmt.thread == body and stmt.path < info.path:
                return h.at
        if body == MAIN_THREAD:
            return None
        go = body  # the spawning thread did nothing before the Go: it ran when that one began
    return None


# history kinds after which a thread moves on
_MOVES = (HistoryKind.STEP, HistoryKind.EVENT, HistoryKind.TIMER, HistoryKind.GOTO)


def _parse_cursor(cursor: str) -> tuple[datetime, str]:
    at, sep, id = cursor.partition("|")
    try:
        if not sep or "\x00" in cursor:
            raise ValueError(cursor)
        return clock.parse_time(at), id
    except ValueError:
        raise InputError(
            f"{cursor!r} is not a page cursor; pass the 'next' value of the page before"
        ) from None


@define(frozen=True, slots=True)
class WorkerHealth:
    """What a :class:`Worker` is doing, for health checks (``GET /health``).

    Attributes:
        running: :meth:`Worker.run` is looping (False before it starts and once it ended).
        last_turn: when its loop last moved on (claimed work, finished an item, or waited a
            slice of its idle or backoff time), or None before it ran.
        failures: consecutive turns that failed (a store error, a bug); 0 after a good turn.
        last_error: the last failure, as ``"ErrorClass: message"``, or None.
        item: the item in hand, as ``"<instance id> (run)"`` or ``"<instance id> (timer)"``,
            or None.
        item_seconds: how long the item in hand has been running, or None.
        stalled: the item in hand has been running, or the loop has not moved on, for more
            than 3x the engine's lease: by then another worker may have taken the instance
            over (its lease expired), and a step or the database hangs. A long step within
            that bound is not a stall.
        problem: why the worker is unhealthy (not running, stalled, or its last
            :attr:`Worker.FAILING` turns failed), or None if it is healthy.
    """

    running: bool
    last_turn: datetime | None
    failures: int
    last_error: str | None
    item: str | None
    item_seconds: float | None
    stalled: bool
    problem: str | None

    @property
    def healthy(self) -> bool:
        return self.problem is None


class Worker:
    """Fires due timers, resumes runnable instances and retries failed steps.

    Any number of workers, in any number of processes and machines, can share one store: each
    item is claimed with a lease (``FOR UPDATE SKIP LOCKED`` on PostgreSQL), so none is done
    twice at once. A worker claims only instances of its engine's workflows.

    :meth:`run` survives its database: a turn that fails (the store cannot be reached, a bug)
    is logged, and the worker backs off (``min_backoff`` seconds, doubling up to
    ``max_backoff``, with jitter; back to the start after a good turn) and goes on, with new
    connections, until :meth:`stop` or SIGTERM. :meth:`health` says how it is doing.

    Args:
        engine: the engine whose store and workflows to work on.
        batch: how many items one claim takes.
        poll: seconds an idle worker waits before looking again (PostgreSQL wakes it earlier
            with LISTEN/NOTIFY when work is committed).
        min_backoff, max_backoff: the first and the longest wait after a failed turn.
    """

    FAILING = 3
    """Consecutive failed turns after which :meth:`health` calls the worker unhealthy."""

    def __init__(
        self,
        engine: Engine,
        *,
        batch: int = 16,
        poll: float = 1.0,
        min_backoff: float = 0.1,
        max_backoff: float = 30.0,
    ) -> None:
        if not 0 < min_backoff <= max_backoff:
            raise ValueError(
                f"backoff: need 0 < min_backoff <= max_backoff, not {min_backoff!r} and "
                f"{max_backoff!r}"
            )
        self.engine = engine
        self.batch = batch
        self.poll = poll
        self.min_backoff = min_backoff
        self.max_backoff = max_backoff
        self._stop = threading.Event()
        self._rng = random.Random()
        # What health() reads (each a single attribute, replaced whole: no lock needed).
        self._running = False
        self._beat: tuple[float, datetime] | None = None  # (monotonic, wall clock)
        self._failures = 0
        self._last_error: str | None = None
        self._ended: str | None = None  # what ended run(), if not stop()
        self._item: tuple[str, float] | None = None  # (what, monotonic start)
        # Claimed rows a failed turn did not finish: given back once the store answers.
        self._orphans: list[InstanceRecord] = []

    def stop(self) -> None:
        """Ask :meth:`run` to return once the item in hand is done."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    # -- health ------------------------------------------------------------------------------

    def health(self) -> WorkerHealth:
        """How the worker is doing (cheap; safe to call from any thread)."""
        now = time.monotonic()
        limit = 3 * self.engine.lease.total_seconds()
        beat, item, failures = self._beat, self._item, self._failures
        running, error = self._running, self._last_error
        seconds = None if item is None else now - item[1]
        idle = None if beat is None else now - beat[0]
        problem = None
        stalled = False
        if not running:
            ended = self._ended
            problem = "the worker is not running" + (f" (it ended with {ended})" if ended else "")
        elif item is not None and seconds is not None and seconds > limit:
            stalled = True
            problem = (
                f"the worker is stalled: the item in hand, instance {item[0]}, has been running "
                f"for {seconds:.1f} s, more than 3x the engine's lease ({limit / 3:g} s)"
            )
        elif item is None and idle is not None and idle > limit:
            stalled = True
            problem = (
                f"the worker is stalled: its loop has not moved on for {idle:.1f} s, more than "
                f"3x the engine's lease ({limit / 3:g} s)"
            )
        elif failures >= self.FAILING:
            problem = f"the worker's last {failures} turns failed; the last with {error}"
        return WorkerHealth(
            running=running,
            last_turn=None if beat is None else beat[1],
            failures=failures,
            last_error=error,
            item=None if item is None else item[0],
            item_seconds=seconds,
            stalled=stalled,
            problem=problem,
        )

    def _moved_on(self) -> None:
        self._beat = (time.monotonic(), clock.now())

    # -- work --------------------------------------------------------------------------------

    def run_once(self) -> int:
        """Do everything due now: fire due timers, run runnable instances and due retries,
        until nothing is left (or :meth:`stop` was called). Returns how many items it did.

        Raises:
            StoreUnavailableError: the store cannot be reached (the rows claimed and not done
                are given back by the next call, or their leases expire).
        """
        self._give_back_orphans()
        done = 0
        while not self._stop.is_set():
            n = self._fire_timers() + self._run_runnable()
            if n == 0:
                break
            done += n
        return done

    def _claim_window(self) -> tuple[datetime, datetime]:
        now = clock.now()
        return now, now + self.engine.lease

    def _fire_timers(self) -> int:
        eng = self.engine
        now, until = self._claim_window()
        claimed = eng.store.claim_timers(
            eng._lease_name(), now, until, self.batch, workflows=list(eng.workflows)
        )
        self._moved_on()
        rows = [row for _, row in claimed]
        for i, (timer, row) in enumerate(claimed):
            if self._stop.is_set():
                self._release(rows[i:])
                return i
            self._guard(functools.partial(eng._fire_claimed, timer, row), rows, i, "timer")
        return len(claimed)

    def _run_runnable(self) -> int:
        eng = self.engine
        now, until = self._claim_window()
        claimed = eng.store.claim(
            eng._lease_name(), now, until, self.batch, workflows=list(eng.workflows)
        )
        self._moved_on()
        for i, row in enumerate(claimed):
            if self._stop.is_set():
                self._release(claimed[i:])
                return i
            self._guard(functools.partial(eng._run_claimed, row), claimed, i, "run")
        return len(claimed)

    def _release(self, rows: Iterable[InstanceRecord]) -> None:
        for row in rows:
            if row.lease_owner:
                self.engine.store.release(row.id, row.lease_owner, row.version)

    def _give_back_orphans(self) -> None:
        """Release what a failed turn claimed and did not finish (a release names the version
        claimed, so one whose work was committed meanwhile is left alone)."""
        while self._orphans:
            self._release(self._orphans[-1:])
            self._orphans.pop()

    def _guard(
        self, work: Callable[[], object], claimed: list[InstanceRecord], i: int, what: str
    ) -> None:
        row = claimed[i]
        started = time.perf_counter()
        self._item = (f"{row.id} ({what})", time.monotonic())
        try:
            work()
        except ConflictError:
            pass  # lost the lease to another worker; it carries on
        except StoreUnavailableError:
            # The store is gone: so is the rest of this batch. Give the rows back once it
            # answers again (or their leases expire).
            self._orphans.extend(r for r in claimed[i:] if r.lease_owner)
            raise
        except Exception:
            # The instance stays as last committed; its lease expires and it is tried again.
            log.exception("%s: %s failed", row.id, what, extra={"gorch_instance": row.id})
        finally:
            self._item = None
            self._moved_on()
        log.debug(
            "%s: %s in %.1f ms", row.id, what, (time.perf_counter() - started) * 1000,
            extra={"gorch_instance": row.id, "gorch_work": what},
        )  # fmt: skip

    def _idle(self) -> None:
        """Wait up to ``poll`` seconds for new work, in short slices so that stop() is quick."""
        left = self.poll
        while left > 0 and not self._stop.is_set():
            slice_ = min(left, 0.2)
            woken = self.engine.store.wait_for_work(slice_)
            self._moved_on()
            if woken:
                return
            left -= slice_

    def _back_off(self) -> None:
        """Sleep after a failed turn: exponential, capped, with jitter (so that workers that
        failed together do not all come back at once), in slices so that stop() is quick."""
        base = min(self.max_backoff, self.min_backoff * 2 ** min(self._failures - 1, 60))
        left = base * self._rng.uniform(0.5, 1.0)
        while left > 0 and not self._stop.is_set():
            # time.sleep, not Event.wait: a signal handler that sets the event while this
            # (main) thread holds the event's lock would deadlock.
            step = min(left, 0.1)
            time.sleep(step)
            left -= step
            self._moved_on()

    def _worked(self) -> None:
        """A turn's work went through: the store answers again."""
        if self._failures:
            log.info(
                "worker %s: working again after %d failed turns", self.engine.owner, self._failures
            )
            self._failures = 0

    def _failed(self, exc: Exception) -> None:
        self._failures += 1
        self._last_error = f"{type(exc).__name__}: {exc}"
        wait = min(self.max_backoff, self.min_backoff * 2 ** min(self._failures - 1, 60))
        if isinstance(exc, StoreUnavailableError):
            log.warning(
                "worker %s: turn %d in a row failed, retrying within %.1f s: %s",
                self.engine.owner, self._failures, wait, exc,
            )  # fmt: skip
        else:
            log.exception(
                "worker %s: turn %d in a row failed (a bug), retrying within %.1f s",
                self.engine.owner, self._failures, wait,
            )  # fmt: skip

    def run(self, *, handle_signals: bool = True) -> None:
        """Work until :meth:`stop` is called or SIGTERM/SIGINT arrives (the item in hand is
        finished first). Signal handlers are installed only in the main thread.

        Nothing that happens in one turn ends this: a failed turn is logged and retried after
        a backoff. Only :meth:`stop`, a signal, or an exception that is not an ``Exception``
        (``SystemExit``, ``KeyboardInterrupt``) does."""
        restore: list[tuple[int, Any]] = []
        if handle_signals and threading.current_thread() is threading.main_thread():

            def on_signal(signum: int, _: FrameType | None) -> None:
                log.info(
                    "worker: %s received, finishing the item in hand", signal.Signals(signum).name
                )
                self._stop.set()

            restore = [(s, signal.signal(s, on_signal)) for s in (signal.SIGTERM, signal.SIGINT)]
        log.info("worker %s started", self.engine.owner)
        self._running, self._ended = True, None
        self._moved_on()
        try:
            while not self._stop.is_set():
                try:
                    # Listen before looking (PostgreSQL: LISTEN once, and again after a
                    # failure), so that work committed after the claims below wakes _idle.
                    self.engine.store.wait_for_work(0)
                    done = self.run_once()
                    self._worked()
                    if done == 0:
                        self._idle()
                except Exception as exc:
                    self._failed(exc)
                    self._back_off()
        except BaseException as exc:
            self._ended = self._last_error = f"{type(exc).__name__}: {exc}"
            log.critical("worker %s ended by %s", self.engine.owner, self._ended)
            raise
        finally:
            self._running = False
            for sig, old in restore:
                signal.signal(sig, old)
            log.info("worker %s stopped", self.engine.owner)
