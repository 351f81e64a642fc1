"""What the SQL store asks of a database, and the engine's statements spelt for one.

:class:`Dialect` is everything that differs between SQLite and PostgreSQL, as one interface:
each database is one subclass (:class:`~gorch.store.sql._sqlite.SQLite`,
:class:`~gorch.store.sql._postgres.PostgreSQL`) with its connection setup, how it binds a
time, how it reports a unique violation or a dead connection, and its own ways (PostgreSQL's
one-statement checkpoint and LISTEN/NOTIFY, SQLite's ``BEGIN IMMEDIATE``).
:class:`~gorch.store.sql._store.SQLStore` asks its dialect and never which database it is.

The engine's statements are few, fixed and on every step's path, so they are written once, here,
and run on the pooled DB-API connection: SQLAlchemy's expression layer would add tens of
microseconds to a checkpoint whose floor is one fsync. They are written with ``?`` for each
parameter and spelt for a database from the few words that differ (its :attr:`placeholder`, the
cast of a JSON parameter, row locks, ...), which each subclass gives; a statement only one
database has is that subclass's own.

To add a statement: write it in ``_writes``, ``_reads`` or ``_claims`` below with the words of
:class:`Dialect` where the databases differ, and run it from ``SQLStore``.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from sqlalchemy.engine import URL
from sqlalchemy.engine import Engine as SAEngine

from gorch.errors import AlreadyExistsError, ConflictError
from gorch.store.sql._rows import at_text

if TYPE_CHECKING:
    from gorch.store.base import Write
    from gorch.store.sql._pool import Pool

__all__ = [
    "INSTANCE_COLUMNS",
    "NOTIFY_CHANNEL",
    "TIMER_COLUMNS",
    "Dialect",
    "inserting",
    "stale_version",
]

INSTANCE_COLUMNS = (
    "id, workflow, status, {state}, {data}, created_at, updated_at, version, lease_owner, "
    "lease_expires, attempts, next_attempt_at, last_error, at_statements, parent_id"
)
"""The columns of an instance row as :func:`gorch.store.sql._rows.instance` reads them."""

TIMER_COLUMNS = "instance_id, thread_id, name, pc, due_at"
"""The columns of a timer row as :func:`gorch.store.sql._rows.timer` reads them."""

NOTIFY_CHANNEL = "gorch_work"
"""The channel a commit with ``notify`` wakes idle workers on (PostgreSQL's LISTEN/NOTIFY)."""


def stale_version(instance_id: str, expected: int | None) -> ConflictError:
    """The error of an update whose instance is no longer at the version it was read at."""
    return ConflictError(
        f"instance {instance_id!r} changed since it was read (expected version {expected})",
        workflow_id=instance_id,
    )


@contextmanager
def inserting(dialect: Dialect, instance_id: str) -> Iterator[None]:
    """Around the statement that inserts instance ``instance_id``: its unique violation is
    :class:`~gorch.errors.AlreadyExistsError`."""
    try:
        yield
    except Exception as exc:
        if dialect.is_unique_violation(exc):
            raise AlreadyExistsError(
                f"instance {instance_id!r} exists already", workflow_id=instance_id
            ) from None
        raise


class Dialect(ABC):
    """One database: its statements, its connections, its errors and its own ways.

    Args:
        url: SQLAlchemy's URL of the database.
        busy_timeout: seconds to wait for a lock or a connection.
    """

    name: ClassVar[str]
    """SQLAlchemy's name of the database: ``"sqlite"`` or ``"postgresql"``."""

    # -- the words of the statements that differ --------------------------------------------
    placeholder: ClassVar[str]
    """A parameter, as the driver writes it (``?``, ``%s``)."""
    json_param: ClassVar[str]
    """Written after a JSON parameter (a cast to ``json``, or nothing)."""
    json_as_text: ClassVar[str]
    """Written after a JSON column that is read, so that it reads as its text."""
    lock_claimed: ClassVar[str]
    """Written after a claim's choice of instances: lock them; concurrent claims skip them."""
    materialized: ClassVar[str]
    """Written after ``WITH name AS`` so that the database runs the query once (nothing where
    it always does)."""
    lock_claimed_of_timers: ClassVar[str]
    """The same, where the instances are joined (as ``i``) to their timers."""
    among: ClassVar[str]
    """``workflow <among>``: in the list of names that one parameter holds."""
    id_contains: ClassVar[str]
    """The condition that ``id`` contains the text of one parameter."""
    begin: ClassVar[str]
    """The statement that begins a transaction."""
    ping: ClassVar[str]
    """A trivial read, to see that the database answers."""

    has_checkpoint: ClassVar[bool]
    """Whether :meth:`checkpoint` can commit some updates in one statement of its own."""

    lock: threading.RLock | None = None
    """A lock every use of the connections holds (one shared connection), or None."""

    def __init__(self, url: URL, busy_timeout: float) -> None:
        self.url = url
        self.busy_timeout = busy_timeout
        self._writes()
        self._reads()
        self._claims()

    def claim_query(
        self,
        sql: str,
        among: str,
        owner: str,
        now: datetime,
        until: datetime,
        limit: int,
        workflows: Sequence[str] | None,
    ) -> tuple[str, tuple[Any, ...]] | None:
        """A claim statement (``sql``, or ``among`` for some workflows: both made from
        :attr:`lease`) with its parameters; None if it can claim nothing (no workflows)."""
        bind = self.bind_time
        lease = (owner, bind(until))
        if workflows is None:
            return sql, (bind(now), bind(now), limit, *lease)
        if not workflows:
            return None
        return among, (bind(now), bind(now), self.among_param(workflows), limit, *lease)

    def row_params(self, write: Write, version: int) -> tuple[Any, ...]:
        """The parameters of :attr:`insert` (a new instance), :attr:`update_at` (a
        ``change``) or :attr:`update` that write ``write``'s row at ``version``."""
        row, bind = write.instance, self.bind_time
        if write.expected_version is None:
            return (
                row.id, row.workflow, row.status, row.state, row.data, bind(row.created_at),
                bind(row.updated_at), version, row.lease_owner, bind(row.lease_expires),
                row.attempts, bind(row.next_attempt_at), row.last_error,
                at_text(row.at_statements), row.parent_id, row.id,
            )  # fmt: skip
        sets: tuple[Any, ...] = (
            row.status, row.state, row.data, bind(row.updated_at), version, row.lease_owner,
            bind(row.lease_expires), row.attempts, bind(row.next_attempt_at), row.last_error,
        )  # fmt: skip
        if write.change:
            sets += (at_text(row.at_statements),)
        return (*sets, row.id, write.expected_version)

    def spell(self, sql: str) -> str:
        """``sql`` with each ``?`` written as this database's placeholder."""
        return sql.replace("?", self.placeholder)

    def _writes(self) -> None:
        spell, j = self.spell, self.json_param
        # A new instance is watched if a watch names it already (see _links.py).
        self.insert = spell(
            "INSERT INTO gorch_instances (id, workflow, status, state, data, created_at, "
            "updated_at, version, lease_owner, lease_expires, attempts, next_attempt_at, "
            f"last_error, at_statements, parent_id, watched) VALUES (?, ?, ?, ?{j}, ?{j}, ?, ?, "
            "?, ?, ?, ?, ?, ?, ?, ?, EXISTS (SELECT 1 FROM gorch_watches WHERE target_id = ?))"
        )
        sets = (
            f"UPDATE gorch_instances SET status = ?, state = ?{j}, data = ?{j}, updated_at = ?, "
            "version = ?, lease_owner = ?, lease_expires = ?, attempts = ?, "
            "next_attempt_at = ?, last_error = ?"
        )
        where = " WHERE id = ? AND version = ?"
        self.update = spell(sets + where)
        self.update_at = spell(sets + ", at_statements = ?" + where)  # Write.change
        self.history = spell(
            "INSERT INTO gorch_history (instance_id, version, idx, at, kind, name, thread, "
            "input, output, error, actor, reason) "
            f"VALUES (?, ?, ?, ?, ?, ?, ?, ?{j}, ?{j}, ?, ?, ?)"
        )
        self.key = spell(
            "INSERT INTO gorch_keys (instance_id, key, fingerprint, output, at) "
            f"VALUES (?, ?, ?, ?{j}, ?)"
        )
        self.del_timers = spell("DELETE FROM gorch_timers WHERE instance_id = ?")
        self.add_timer = spell(f"INSERT INTO gorch_timers ({TIMER_COLUMNS}) VALUES (?, ?, ?, ?, ?)")
        self.unlease = spell(
            "UPDATE gorch_instances SET lease_owner = NULL, lease_expires = NULL "
            "WHERE id = ? AND lease_owner = ?"
        )
        self.release = spell(
            "UPDATE gorch_instances SET lease_owner = NULL, lease_expires = NULL "
            "WHERE id = ? AND lease_owner = ? AND version = ?"
        )
        self.delete_timer = spell(
            "DELETE FROM gorch_timers WHERE instance_id = ? AND thread_id = ? AND name = ? "
            "AND pc = ?"
        )
        # Instances by workflow and status, and how many of them are late: their lease is free
        # and a retry or resume, or a timer, has been due since before the threshold.
        self.counts = spell(
            "SELECT workflow, status, count(*), sum(CASE WHEN (lease_expires IS NULL OR "
            "lease_expires < ?) AND ((status = 'running' AND coalesce(next_attempt_at, "
            "updated_at) <= ?) OR (status IN ('waiting', 'running') AND EXISTS (SELECT 1 FROM "
            "gorch_timers t WHERE t.instance_id = i.id AND t.due_at <= ?))) THEN 1 ELSE 0 END) "
            "FROM gorch_instances i GROUP BY workflow, status ORDER BY workflow, status"
        )

    def _reads(self) -> None:
        spell, text = self.spell, self.json_as_text
        self.instance_columns = INSTANCE_COLUMNS.format(state=f"state{text}", data=f"data{text}")
        self.get = spell(f"SELECT {self.instance_columns} FROM gorch_instances WHERE id = ?")
        self.list_base = f"SELECT {self.instance_columns} FROM gorch_instances"
        self.get_key = spell(
            f"SELECT instance_id, key, fingerprint, output{text}, at FROM gorch_keys "
            "WHERE instance_id = ? AND key = ?"
        )
        # An instance's history is one range of the primary key (instance_id, version, idx):
        # a page starts at a place in it (``version >= ?`` bounds the range) rather than
        # counting rows; the count is read only for the first newest-first page, in the same
        # statement (one snapshot), to number its rows.
        self.history_of = spell(
            f"SELECT instance_id, at, kind, name, thread, input{text}, output{text}, error, "
            "version, idx, actor, reason{count} FROM gorch_history WHERE instance_id = ?"
        )
        self.history_count = spell(", (SELECT count(*) FROM gorch_history WHERE instance_id = ?)")
        self.history_after = spell(" AND version >= ? AND (version > ? OR idx > ?)")
        self.history_before = spell(" AND version <= ? AND (version < ? OR idx < ?)")
        self.timers_of = spell(
            f"SELECT {TIMER_COLUMNS} FROM gorch_timers WHERE instance_id = ? ORDER BY due_at"
        )
        self.all_timers = f"SELECT {TIMER_COLUMNS} FROM gorch_timers ORDER BY due_at, instance_id"
        self.due_timers = spell(
            f"SELECT {TIMER_COLUMNS} FROM gorch_timers WHERE instance_id = ? AND due_at <= ? "
            "ORDER BY due_at LIMIT 1"
        )

    def _claims(self) -> None:
        # claim(..., workflows=[...]): one parameter holds the names, so one statement text
        # serves any number of them (see among_param).
        spell, cols = self.spell, self.instance_columns
        # The choice is made once (MATERIALIZED): as a subquery of the UPDATE, PostgreSQL
        # may run it again for each row it looks at, and each run skips other rows, so that
        # the claim would take more than its limit.
        self.lease = lease = (
            f"WITH chosen AS{self.materialized} ({{choice}}) UPDATE gorch_instances SET "
            "lease_owner = ?, lease_expires = ?, version = version + 1 WHERE id IN (SELECT id "
            "FROM chosen) RETURNING " + cols
        )
        runnable = (
            "SELECT id FROM gorch_instances WHERE status = 'running' AND (lease_expires IS NULL "
            "OR lease_expires < ?) AND (next_attempt_at IS NULL OR next_attempt_at <= ?){only} "
            f"ORDER BY updated_at, id LIMIT ?{self.lock_claimed}"
        )
        # Driven from the due timers, joined to instances that can take them now, so that
        # timers of paused or busy instances never hide claimable ones.
        timed = (
            "SELECT i.id FROM gorch_timers t JOIN gorch_instances i ON i.id = t.instance_id "
            "WHERE t.due_at <= ? AND i.status IN ('waiting', 'running') AND "
            "(i.lease_expires IS NULL OR i.lease_expires < ?){only} ORDER BY t.due_at, i.id "
            f"LIMIT ?{self.lock_claimed_of_timers}"
        )

        def claim(choice: str, only: str) -> str:
            return spell(lease.format(choice=choice.format(only=only)))

        self.claim = claim(runnable, "")
        self.claim_among = claim(runnable, f" AND workflow {self.among}")
        self.claim_timers = claim(timed, "")
        self.claim_timers_among = claim(timed, f" AND i.workflow {self.among}")

    # -- values ------------------------------------------------------------------------------

    @staticmethod
    @abstractmethod
    def bind_time(at: datetime | None) -> Any:
        """``at`` as the driver binds it to a timestamp column (None stays None)."""

    @abstractmethod
    def among_param(self, names: Sequence[str]) -> Any:
        """The parameter of :attr:`among` that holds ``names``."""

    # -- connections -------------------------------------------------------------------------

    @abstractmethod
    def create_engine(self, pool_size: int) -> SAEngine:
        """SQLAlchemy's engine for this database, setting up each connection it makes (the
        store issues ``BEGIN`` and ``COMMIT`` itself)."""

    @abstractmethod
    def set_up_cursor(self, cursor: Any) -> None:
        """Set up the one cursor of each new pooled connection (how it loads values)."""

    @abstractmethod
    def dead_poll(self, raw: Any) -> Callable[[int], list[Any]] | None:
        """A poll that finds ``raw`` (SQLAlchemy's pooled connection) readable while idle: its
        server has ended it. None where a connection cannot die that way."""

    @abstractmethod
    def in_transaction(self, raw: Any) -> bool:
        """Whether ``raw`` is in a transaction (or cannot tell): not to be reused as it is."""

    @abstractmethod
    def failure(self, exc: BaseException, raw: Any) -> str | None:
        """Whether the driver's error ``exc`` means the database cannot be used now
        (:data:`~gorch.store.sql._pool.UNREACHABLE`, :data:`~gorch.store.sql._pool.LOCKED`)
        or is the statement's own (None). ``raw``: the connection it happened on (None: while
        connecting)."""

    @abstractmethod
    def is_unique_violation(self, exc: BaseException) -> bool:
        """Whether ``exc`` is the driver's error for a row whose key exists already."""

    # -- its own ways ------------------------------------------------------------------------

    @abstractmethod
    def lock_schema(self, cursor: Any) -> None:
        """Take the lock that makes creating or migrating the schema one process at a time,
        in the transaction of ``cursor``."""

    @abstractmethod
    def checkpoint(self, pool: Pool, write: Write, version: int) -> bool:
        """Commit the update ``write`` in one statement (autocommit), if it is one that fits;
        False leaves it to the transaction of ``SQLStore.commit``. Called only where
        :attr:`has_checkpoint`.

        Raises:
            ConflictError: the instance is not at ``write.expected_version``.
        """

    @abstractmethod
    def forget(self, pool: Pool) -> None:
        """After an erasure committed: remove what the database keeps of the old contents
        where it can (see :mod:`gorch.store.sql._erase`)."""

    @abstractmethod
    def lock_id(self, cursor: Any, instance_id: str) -> None:
        """In a commit's transaction: hold a lock on the id ``instance_id`` (which may name no
        instance yet) to the commit, before the commit inserts the instance or watches it
        (nothing where one writer at a time is all there is)."""

    @abstractmethod
    def announce(self, cursor: Any, instance_id: str) -> None:
        """In a commit's transaction: tell other processes that the instance changed (nothing
        where they look for themselves)."""

    @abstractmethod
    def notify(self, cursor: Any) -> None:
        """In the transaction of a commit with ``notify``: wake workers of other processes."""

    @abstractmethod
    def notified(self) -> None:
        """After a commit with ``notify``: wake workers of this process."""

    @abstractmethod
    def wait_for_work(self, pool: Pool, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for a commit with ``notify``; whether one came."""

    @abstractmethod
    def close(self) -> None:
        """Close what this dialect opened beside the pool."""
