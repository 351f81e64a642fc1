"""The engine's vocabulary and what its calls return: plain records, no behaviour.

:class:`RunStatus` and :class:`HistoryKind` are the words a stored row and its history use;
:data:`OPERATOR_STATUSES` says which operator action each status allows. :class:`Instance`,
:class:`Page`, :class:`HistoryEntry` and :class:`ThreadWait` are what the reading calls give
back, and :class:`Listener` is the hook a caller passes in. They live apart from the engine so
that a face (the CLI, the HTTP API, the views) can read them without the machinery that makes
them.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterator
from datetime import datetime
from enum import StrEnum
from typing import Any, Generic, TypeVar, overload

from attrs import define, field, frozen

from gorch.interpreter import waiting_for
from gorch.state import RunStatus as RunStatus
from gorch.state import State
from gorch.store.base import TimerRecord

_T = TypeVar("_T")


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
    CHILD = "child"  # a Child started an instance; name: the Child's event, input: id, workflow
    MIGRATED = "migrated"  # its data was upgraded by migrate(); input: {"from": v, "to": w}
    DATA_SET = "data_set"  # an operator changed its data (set_data); input: before, output: after
    DATA_DELETED = "data_deleted"  # an operator erased its personal data; input: the fields
    # a step still runs (long, or it reported progress); output: {"attempt", "started_at",
    # "details"}: what gorch.context().heartbeat() said last (None if it said nothing)
    HEARTBEAT = "heartbeat"


OPEN_STATUSES = (RunStatus.RUNNING, RunStatus.WAITING)
"""The statuses in which an instance accepts events."""

_LIVE = (RunStatus.RUNNING, RunStatus.WAITING, RunStatus.PAUSED, RunStatus.FAILED)
OPERATOR_STATUSES: dict[str, tuple[RunStatus, ...]] = {
    "pause": _LIVE,
    "unpause": (RunStatus.PAUSED,),
    "cancel": _LIVE,
    "retry": (RunStatus.FAILED,),
    "goto": _LIVE,
    "set_data": _LIVE,
    "delete_data": tuple(RunStatus),  # a request to erase comes after the fact, too
}
"""The statuses in which each operator action is allowed (an instance that finished or was
cancelled takes none of them but delete_data)."""


@frozen
class RunningStep:
    """The user code an instance runs now, as its process last reported it (a long step's
    lease renewal, or ``gorch.context().heartbeat``).

    Attributes:
        thread, statement: where it runs.
        attempt: which attempt this is (1: the first).
        started_at: when the attempt started.
        heartbeat_at: when the process last reported it.
        details: what the step said with its last ``heartbeat(details)`` (None if nothing).
        owner: the lease owner running it (host, pid, suffix).
    """

    thread: str
    statement: str
    attempt: int
    started_at: datetime
    heartbeat_at: datetime
    details: Any = None
    owner: str = ""


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
        running: the step a process runs now, if it reported one (:meth:`Engine.get` reads
            it; lists leave it None).
        at_statements: the statements its threads wait at, sorted.
        parent: the instance whose ``Child`` started it, or None.
        children: the instances its ``Child`` statements started, oldest first
            (:meth:`Engine.get` reads them; lists leave them empty).
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
    running: RunningStep | None = None
    at_statements: tuple[str, ...] = ()
    parent: str | None = None
    children: builtins.list[str] = field(factory=list)

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


@frozen
class Change:
    """One entry of the change feed (:meth:`Engine.changes`): a commit that changed an
    instance's status or the statements it waits at.

    Attributes:
        seq: its place in the feed, from 1, without gaps (pass the last one read as
            ``after``).
        at: when it was committed.
        instance, workflow: the instance and its workflow's name.
        status: the instance's status after the commit.
        at_statements: the statements its threads wait at after it, sorted.
    """

    seq: int
    at: datetime
    instance: str
    workflow: str
    status: RunStatus
    at_statements: tuple[str, ...] = ()


@define
class ChangePage:
    """A page of the change feed: ``items``, oldest first, and ``next``, the cursor to pass as
    ``after`` for what comes after them (the last item's ``seq``; the ``after`` asked for if
    the page is empty). It iterates over its items and has a ``len()``."""

    items: builtins.list[Change]
    next: int = 0

    def __iter__(self) -> Iterator[Change]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)


@define
class HistoryEntry:
    """One entry of an instance's history.

    Attributes:
        at, kind, name, thread, error: as recorded (see :class:`~gorch.store.HistoryRecord`).
        input, output: parsed JSON. A stored text that is not JSON (a hand-edited row) is
            given as that text, and ``note`` says so.
        seq: the entry's position in the instance's history, from 1.
        note: None, or what is odd about the stored entry.
        actor, reason: who made the change an operator's entry records (the ``actor=`` of
            the call: a token's name over HTTP, the OS user in the CLI), and why; None when
            not given, and for the entries the engine writes by itself.
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
    actor: str | None = None
    reason: str | None = None


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
    """Hooks the engine calls around its calls and steps and on status changes (for logging,
    metrics and traces: :mod:`gorch.metrics`, :mod:`gorch.tracing`).

    Subclass it and override what you need; pass instances as ``Engine(listeners=[...])``. An
    exception from a listener is logged and otherwise ignored: listeners never change the
    outcome of an operation. Hooks are called in the thread doing the work, so a hook may use
    thread-local or context-local state (an operation's steps run between its
    :meth:`before_operation` and :meth:`after_operation`, in the same thread).
    """

    def before_operation(self, operation: str, instance: str, workflow: str, detail: str) -> None:
        """An engine call begins. ``operation``: ``"start"``, ``"send"``, ``"goto"``,
        ``"pause"``, ``"unpause"``, ``"cancel"``, ``"retry"``, ``"migrate"``, ``"set_data"``,
        ``"delete_data"`` (the Engine's calls), or ``"run"``, ``"timer"`` (a worker's claimed
        item). ``workflow`` is ``""`` while not known (a call by id reads the row first;
        :meth:`after_operation` has it); ``instance`` is ``""`` for a start whose id is not
        chosen yet. ``detail``: the event (send), the target statement (goto), the timer
        (timer), else ``""``."""

    def after_operation(
        self,
        operation: str,
        instance: str,
        workflow: str,
        detail: str,
        error: BaseException | None,
        seconds: float,
    ) -> None:
        """The call ended after ``seconds``: ``error`` is what it raised (a refusal, a busy
        instance), or None. ``workflow`` is ``""`` if no row was read (an unknown id)."""

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

    def on_step_failed(
        self,
        instance: str,
        workflow: str,
        thread: str,
        step: str,
        attempt: int,
        retry_at: datetime | None,
    ) -> None:
        """A failed attempt at ``step`` was recorded (the step raised, or its checkpoint could
        not be written): it is retried at ``retry_at``, or, if that is None, the instance gave
        up and is failed."""

    def on_timer(self, instance: str, workflow: str, timer: str, lag: float) -> None:
        """A worker fired the ``Timeout`` ``timer``, ``lag`` seconds after it was due."""

    def on_claim(self, kind: str, claimed: int, seconds: float) -> None:
        """A worker's claim (``kind``: ``"run"`` for runnable instances and due retries,
        ``"timer"`` for due timers) took ``claimed`` items in ``seconds``."""

    def on_idle(self, seconds: float) -> None:
        """A worker found nothing to do and waited ``seconds`` for work."""
