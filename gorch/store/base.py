"""The records a store keeps and the :class:`Store` protocol every store implements.

A store knows nothing of workflows: it keeps rows. State and data are JSON text (written by
:func:`gorch.dumps`), times are aware UTC datetimes. Every change the engine makes goes through
one :meth:`Store.commit` call, which writes the instance row, its timers, its history rows and
an idempotency key in one transaction, and only if the instance's version is still the one the
engine read (optimistic concurrency). The conformance suite in ``tests/test_store.py`` holds
every store to the same behaviour.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol, runtime_checkable

from attrs import define, field

from gorch.store.schedules import ScheduleRecord, ScheduleStore

__all__ = [
    "END",
    "ChangeRecord",
    "HistoryRecord",
    "InstanceRecord",
    "KeyRecord",
    "MessageRecord",
    "ScheduleRecord",
    "StatusCount",
    "Store",
    "TimerRecord",
    "WatchRecord",
    "Write",
    "watch_matches",
]

END = "end"
"""A watch's ``until`` that either end status satisfies (``finished`` or ``cancelled``; see
:func:`watch_matches`)."""

_ENDS = frozenset({"finished", "cancelled"})


@define(slots=True)
class InstanceRecord:
    """One workflow instance's row.

    Attributes:
        id, workflow: the instance's id and the name of its registered workflow.
        status: a :class:`gorch.RunStatus` value (``"running"``, ``"waiting"`` ...).
        state, data: the interpreter's State and the workflow object, as JSON text.
        version: bumped by every commit; a commit names the version it read.
        created_at, updated_at: when the row was created and last written.
        lease_owner, lease_expires: who is working on the instance, until when. A lease is
            claimed and released in short transactions; an expired lease is free to take.
        attempts: consecutive failed attempts of the step the instance is at.
        next_attempt_at: when a worker should run it next (a retry's due time), or None.
        last_error: the last step failure, or None.
        at_statements: the statements its threads wait at (a ``Wait``, a ``WaitFor``, a
            ``Child``), sorted; empty while it runs or once it ended.
        parent_id: the instance whose ``Child`` statement started it, or None.
        defects: the values of the stored row that could not be read, one ``"column:
            reason"`` each (e.g. ``"updated_at: 'garbage' is not a timestamp"``); empty for a
            sound row. Such a field holds a stand-in: the Unix epoch (UTC) for
            ``created_at`` and ``updated_at``, None for ``lease_expires`` and
            ``next_attempt_at``, 0 for ``version`` and ``attempts``. A store never raises for
            an unreadable value; it is the engine's to decide what the instance can do.
            Never written.
    """

    id: str
    workflow: str
    status: str
    state: str
    data: str
    created_at: datetime
    updated_at: datetime
    version: int = 0
    lease_owner: str | None = None
    lease_expires: datetime | None = None
    attempts: int = 0
    next_attempt_at: datetime | None = None
    last_error: str | None = None
    defects: tuple[str, ...] = ()
    at_statements: tuple[str, ...] = ()
    parent_id: str | None = None


@define(slots=True, frozen=True)
class TimerRecord:
    """A due timer: a ``Timeout`` event that a thread waits on, at the wait's ``pc``.

    ``defects``: as :attr:`InstanceRecord.defects`; a ``due_at`` that cannot be read is the
    Unix epoch. (A stored ``due_at`` that is not a time is never due to the SQL claim, which
    compares stored values, so such a timer never fires: an event can still end its wait.)
    """

    instance_id: str
    thread_id: str
    name: str
    pc: int
    due_at: datetime
    defects: tuple[str, ...] = ()


@define(slots=True)
class HistoryRecord:
    """One entry of an instance's history.

    Attributes:
        kind: what happened: ``started``, ``event``, ``timer``, ``step``, ``step_failed``,
            ``goto``, ``paused``, ``unpaused``, ``cancelled``, ``retry``, ``finished``, ``failed``
            ... (the engine's ``HistoryKind``).
        name: the event, step or statement concerned (or ``""``).
        thread: the thread concerned (or ``""``).
        input, output: JSON text, or None.
        error: the error message, or None.
        seq: the position in the instance's history, from 1 (given by the store on reading).
        version, idx: where the store keeps the row: the instance version written by the
            commit that added it, and its place in that commit, from 1 (given by the store on
            reading). History is ordered by ``(version, idx)`` and only ever appended to, so
            ``(seq, version, idx)`` of a row read once marks a place to page from.
        actor, reason: who made the change an operator entry records, and why (None when
            not given, and for the entries the engine writes by itself).

    A stored ``at`` that cannot be read as a time is read as the Unix epoch (UTC).
    """

    instance_id: str
    at: datetime
    kind: str
    name: str = ""
    thread: str = ""
    input: str | None = None
    output: str | None = None
    error: str | None = None
    seq: int = 0
    version: int = 0
    idx: int = 0
    actor: str | None = None
    reason: str | None = None


@define(slots=True)
class KeyRecord:
    """An idempotency key: the first answer to a request, kept to answer its repeats."""

    instance_id: str
    key: str
    fingerprint: str
    output: str
    at: datetime


@define(slots=True, frozen=True)
class StatusCount:
    """How many instances of ``workflow`` have ``status`` (:meth:`Store.counts`), and how
    many of them are ``late``: work is due for them since before the time asked about and no
    live lease holds them (no worker has taken it up)."""

    workflow: str
    status: str
    count: int
    late: int = 0


@define(slots=True, frozen=True)
class WatchRecord:
    """An instance's thread waits for another instance to get somewhere: a ``Child`` for its
    child's end, an ``OnInstance`` case for the instance it names.

    Attributes:
        instance_id, thread_id, name, pc: the waiting instance, its thread, the event to
            deliver to it, and the wait's ``pc``.
        target_id: the instance watched (it may not exist yet).
        until: what satisfies the watch: :data:`END` (the target finished or was cancelled),
            ``"status:a,b"`` (its status is one of these), or ``"at:name"`` (one of its
            threads waits at the statement ``name``). See :func:`watch_matches`.
    """

    instance_id: str
    thread_id: str
    name: str
    pc: int
    target_id: str
    until: str = END


@define(slots=True, frozen=True)
class MessageRecord:
    """A watch that was satisfied: the event to deliver to the waiting instance, kept until
    the commit that delivers it (or finds its wait over) deletes it.

    Attributes:
        instance_id, thread_id, name, pc: as the :class:`WatchRecord` it comes from.
        target_id, status, at_statements: the watched instance, as it stood at the commit that
            satisfied the watch.
        at: when that commit was made.
    """

    instance_id: str
    thread_id: str
    name: str
    pc: int
    target_id: str
    status: str
    at_statements: tuple[str, ...]
    at: datetime


@define(slots=True, frozen=True)
class ChangeRecord:
    """One entry of the change feed: a commit that changed an instance's status or the
    statements it waits at. ``seq`` orders the feed (from 1, with no gaps: each entry is
    numbered when its commit is, and commits are numbered in the order they commit)."""

    seq: int
    at: datetime
    instance_id: str
    workflow: str
    status: str
    at_statements: tuple[str, ...] = ()


def watch_matches(until: str, status: str, at_statements: Sequence[str]) -> bool:
    """Whether an instance with ``status``, waiting at ``at_statements``, satisfies a watch's
    ``until`` (see :class:`WatchRecord`).

    Example:
        >>> watch_matches("end", "finished", ())
        True
        >>> watch_matches("at:deliver", "waiting", ("deliver",))
        True
        >>> watch_matches("status:failed,paused", "waiting", ())
        False
    """
    if until == END:
        return status in _ENDS
    kind, _, what = until.partition(":")
    if kind == "status":
        return status in what.split(",")
    if kind == "at":
        return what in at_statements
    return False


@define(slots=True)
class Write:
    """Everything one engine operation changes, committed together or not at all.

    Attributes:
        instance: the row as it must be after the commit (its ``version`` is ignored).
        expected_version: the version read before; ``None`` inserts a new instance.
        timers: the instance's timers after the commit (they replace the ones stored), or
            ``None`` to leave them as they are.
        history: rows to append.
        key: an idempotency key to record (fails the commit if the key exists).
        notify: whether idle workers should be woken (new runnable work was committed).
        change: the commit changes the instance's status or ``at_statements``: append an
            entry to the change feed, and satisfy the watches of the instance that it meets
            (each a :class:`MessageRecord` for its watcher; idle workers are woken).
        watches: the instance's watches after the commit (they replace the stored ones; a
            new one that its target meets already is satisfied at once), or ``None`` to leave
            them as they are.
        starts: new instances to insert in the same transaction (each a ``Write`` with
            ``expected_version`` None: a ``Child``'s start).
        consume: a message of the instance that this commit delivers: deleted with it.
    """

    instance: InstanceRecord
    expected_version: int | None
    timers: Sequence[TimerRecord] | None = None
    history: Sequence[HistoryRecord] = field(factory=tuple)
    key: KeyRecord | None = None
    notify: bool = False
    change: bool = False
    watches: Sequence[WatchRecord] | None = None
    starts: Sequence[Write] = ()
    consume: MessageRecord | None = None

    def is_plain(self) -> bool:
        """Whether it writes the instance's row and history rows and nothing else (the common
        step checkpoint, which a store may commit in one statement)."""
        return (
            self.timers is None
            and self.key is None
            and not self.notify
            and not self.change
            and self.watches is None
            and not self.starts
            and self.consume is None
        )


@runtime_checkable
class Store(ScheduleStore, Protocol):
    """Where instances, timers, history and idempotency keys live.

    Implementations: :class:`gorch.store.MemoryStore` (tests) and :class:`gorch.store.SQLStore`
    (SQLite, PostgreSQL). Every method is safe to call from many threads at once.

    When the database cannot be used (down, unreachable, or locked past the busy timeout),
    every method raises :class:`~gorch.errors.StoreUnavailableError`; its
    ``outcome_unknown`` says whether a write may have been committed all the same.
    """

    def commit(self, write: Write) -> int:
        """Apply ``write`` in one transaction and return the instance's new version.

        Raises:
            AlreadyExistsError: ``expected_version`` is None and the id exists.
            ConflictError: the stored version is not ``expected_version`` (or the instance is
                gone), or ``write.key`` exists already. Nothing was written.
        """
        ...

    def erase(
        self, write: Write, history: Sequence[HistoryRecord], keys: Sequence[KeyRecord]
    ) -> int:
        """Commit ``write`` (as :meth:`commit`) and, in the same transaction, overwrite stored
        rows of its instance with scrubbed copies: each history row of ``history`` (found by
        its ``version`` and ``idx``) gets its ``input``, ``output``, ``error`` and ``reason``,
        each key of ``keys`` (found by its ``key``) its ``output``. Then remove what the
        database keeps of the old contents where it can (SQLite: secure deletion and a WAL
        checkpoint that truncates the log; PostgreSQL: ``VACUUM`` of the tables).

        Raises:
            ConflictError: as :meth:`commit`; nothing was written.
        """
        ...

    def get(self, instance_id: str) -> InstanceRecord | None:
        """The instance's row, or None."""
        ...

    def list_instances(
        self,
        *,
        workflow: str | None = None,
        status: Sequence[str] | None = None,
        limit: int = 50,
        after: tuple[datetime, str] | None = None,
        id_contains: str | None = None,
        parent: str | None = None,
    ) -> list[InstanceRecord]:
        """Instances, newest first (by ``created_at``, then ``id``), filtered; ``after`` is the
        ``(created_at, id)`` of the last row of the page before; ``id_contains``: only ids that
        contain this text (case-sensitive); ``parent``: only the children of this instance."""
        ...

    def counts(self, now: datetime, late_before: datetime) -> list[StatusCount]:
        """How many instances there are of each (workflow, status) that has any, sorted.

        ``late`` counts the ones whose lease is free at ``now`` (none, or expired) and that
        have work due since before ``late_before``: status ``running`` with a retry due
        (``next_attempt_at``) or, without one, work to go on with since ``updated_at``; or
        status ``waiting`` or ``running`` with a timer due. One query, for metrics at scrape
        time (every process sees the same numbers).
        """
        ...

    def history(
        self,
        instance_id: str,
        *,
        limit: int | None = None,
        after: tuple[int, int, int] | None = None,
        newest_first: bool = False,
    ) -> list[HistoryRecord]:
        """The instance's history, oldest first (``newest_first``: newest first), each row with
        its ``seq``, ``version`` and ``idx``.

        Args:
            limit: at most this many rows (None: all).
            after: ``(seq, version, idx)`` of the last row of the page before: only the rows
                that come after it in the order asked for. SQL stores read from that place in
                the ``(instance_id, version, idx)`` key, without counting the rows before it,
                and number the rows on from its ``seq``.
            newest_first: the newest row first (numbered from the count of rows down).
        """
        ...

    def timers(self, instance_id: str | None = None) -> list[TimerRecord]:
        """The stored timers (of one instance, or all), soonest first."""
        ...

    def get_key(self, instance_id: str, key: str) -> KeyRecord | None:
        """The idempotency key's record, or None."""
        ...

    def keys(self, instance_id: str) -> list[KeyRecord]:
        """Every idempotency key recorded for the instance, by key."""
        ...

    def claim(
        self,
        owner: str,
        now: datetime,
        until: datetime,
        limit: int,
        workflows: Sequence[str] | None = None,
    ) -> list[InstanceRecord]:
        """Lease up to ``limit`` runnable instances to ``owner`` until ``until``.

        Runnable: status ``running``, no live lease (none, or expired before ``now``), and no
        retry due later than ``now``. Each claimed row's version is bumped; the rows are
        returned as they are after the claim. Concurrent claimers never get the same row.
        ``workflows``: only instances of these workflows (None: of any; empty: none), so that
        a worker claims only what it can run.
        """
        ...

    def claim_timers(
        self,
        owner: str,
        now: datetime,
        until: datetime,
        limit: int,
        workflows: Sequence[str] | None = None,
    ) -> list[tuple[TimerRecord, InstanceRecord]]:
        """Lease instances that have a timer due at ``now`` (at most one timer per instance)
        whose status is ``waiting`` or ``running`` and whose lease is free; as :meth:`claim`
        (``workflows`` too)."""
        ...

    def release(self, instance_id: str, owner: str, version: int) -> bool:
        """Drop ``owner``'s lease if the instance is still at ``version``; whether it did."""
        ...

    def delete_timer(self, timer: TimerRecord) -> None:
        """Delete one timer (a stale one, whose wait is over)."""
        ...

    def claim_messages(
        self,
        owner: str,
        now: datetime,
        until: datetime,
        limit: int,
        workflows: Sequence[str] | None = None,
    ) -> list[tuple[MessageRecord, InstanceRecord]]:
        """Lease instances that have a message to deliver (at most one per instance, the
        oldest) whose status is ``waiting`` or ``running``, whose lease is free and that have
        no retry due later than ``now`` (a handler that failed waits for its backoff); as
        :meth:`claim_timers`."""
        ...

    def messages(self, instance_id: str | None = None) -> list[MessageRecord]:
        """The messages not yet delivered (to one instance, or to all), oldest first."""
        ...

    def delete_message(self, message: MessageRecord) -> None:
        """Delete one message (whose wait is over: it can no longer be delivered)."""
        ...

    def watches(self, instance_id: str | None = None) -> list[WatchRecord]:
        """The stored watches (of one waiting instance, or all), by instance, thread, name."""
        ...

    def changes(self, after: int = 0, limit: int = 100) -> list[ChangeRecord]:
        """The change feed's entries after ``seq`` ``after``, oldest first."""
        ...

    def last_change(self) -> int:
        """The ``seq`` of the feed's newest entry (0: none yet)."""
        ...

    def change_mark(self) -> int:
        """A mark for :meth:`wait_change`: take it before reading what you wait to see
        change, so that a change committed in between is not missed. No database work."""
        ...

    def wait_change(self, instance_id: str | None, mark: int, timeout: float) -> bool:
        """Block up to ``timeout`` seconds until a change of ``instance_id`` (None: of any
        instance) may have been committed since ``mark``; True early if one may have.

        It costs no database round trip while nothing changes: commits of this store object
        signal in-process; other processes' are heard through ``LISTEN`` (PostgreSQL) or a
        look at the database file's size and time every 0.2 s (SQLite). A True may be
        spurious (a lost connection wakes every waiter): read again to see.
        """
        ...

    def wait_for_work(self, timeout: float) -> bool:
        """Block up to ``timeout`` seconds, returning True early when a commit with ``notify``
        is seen (PostgreSQL: LISTEN/NOTIFY, across processes)."""
        ...

    def ping(self) -> None:
        """Check that the database answers, cheaply and within a short timeout (SQL: a
        trivial query, waiting at most 2 s for a connection; memory: nothing).

        Raises:
            StoreUnavailableError: it does not.
        """
        ...

    def close(self) -> None:
        """Release connections."""
        ...
