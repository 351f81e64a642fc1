""":class:`SQLStore`: the :class:`~gorch.store.base.Store` protocol on a SQL database.

What the store does is the same on every database: it runs the dialect's statements on the
pooled connections, in one transaction per commit, and turns what the database says into
gorch's errors. What differs between SQLite and PostgreSQL it asks of its dialect
(:mod:`gorch.store.sql._sqlite`, :mod:`gorch.store.sql._postgres`), never which one it is.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from functools import partial
from typing import Any, Literal

from sqlalchemy.engine import Engine as SAEngine
from sqlalchemy.engine import make_url

from gorch.errors import ConflictError, StoreError, StoreUnavailableError
from gorch.store.base import (
    HistoryRecord,
    InstanceRecord,
    KeyRecord,
    TimerRecord,
    Write,
)
from gorch.store.signal import ChangeSignal
from gorch.store.sql._dialect import Dialect, inserting, stale_version
from gorch.store.sql._erase import keys_of, rewrite
from gorch.store.sql._follow import Follower
from gorch.store.sql._links import Linked, Links
from gorch.store.sql._pool import Pool
from gorch.store.sql._postgres import PostgreSQL
from gorch.store.sql._reads import Reads
from gorch.store.sql._rows import instance as read_instance
from gorch.store.sql._rows import read_time
from gorch.store.sql._rows import timer as read_timer
from gorch.store.sql._schedules import Scheduled
from gorch.store.sql._sqlite import SQLite
from gorch.store.sql._tables import READ_VERSION, create_schema
from gorch.store.sql._transaction import StepTransaction

__all__ = ["PING_TIMEOUT", "SQLStore", "open_dialect"]

log = logging.getLogger("gorch.store")

PING_TIMEOUT = 2.0
"""Seconds :meth:`SQLStore.ping` waits for a connection (or for an earlier ping to return)."""

_URLS = "sqlite:///path/to/file.db or postgresql://user:password@host:port/database"


def open_dialect(
    url: str, *, synchronous: Literal["FULL", "NORMAL"], busy_timeout: float
) -> Dialect:
    """The dialect of the database at ``url``.

    Raises:
        ValueError: ``synchronous`` is neither ``"FULL"`` nor ``"NORMAL"``.
        StoreError: the URL is not one of a database gorch can use.
    """
    if synchronous not in ("FULL", "NORMAL"):
        raise ValueError(f"synchronous must be 'FULL' or 'NORMAL', not {synchronous!r}")
    try:
        parsed = make_url(url)
    except Exception as exc:
        raise StoreError(f"{url!r} is not a database URL; use {_URLS}") from exc
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return SQLite(parsed, synchronous=synchronous, busy_timeout=busy_timeout)
    if backend == "postgresql":
        return PostgreSQL(parsed, busy_timeout=busy_timeout)
    raise StoreError(
        f"gorch stores instances in SQLite or PostgreSQL, not {backend!r}; use {_URLS}"
    )


class SQLStore(Linked, Reads, Scheduled):
    """A store on SQLite or PostgreSQL.

    Args:
        url: a SQLAlchemy URL: ``sqlite:///path/to/gorch.db`` (created if missing) or
            ``postgresql://user:pass@host:port/db`` (psycopg 3 is used either way).
        synchronous: SQLite only: ``"FULL"`` (default; durable against an OS crash) or
            ``"NORMAL"`` (faster; a power loss may lose the last commits).
        busy_timeout: seconds a writer waits for SQLite's write lock (or any call for a
            connection from the pool) before failing with ``StoreUnavailableError``.
        pool_size: connections kept open (PostgreSQL; SQLite files too).
        create: create missing tables and apply migrations (default True).

    Raises:
        StoreError: the URL is not one of a database gorch can use, or the database was
            written by a newer gorch.
        StoreUnavailableError: the database cannot be reached (here and from every method).

    A PostgreSQL URL may set libpq's ``connect_timeout`` and ``keepalives*`` parameters
    (``?connect_timeout=10``); unless it does, :data:`PG_CONNECT_ARGS` apply.

    Attributes:
        dialect: the database (:class:`~gorch.store.sql._dialect.Dialect`); ``dialect.name``
            is ``"sqlite"`` or ``"postgresql"``.
        sa_engine: SQLAlchemy's engine of the database (not gorch's :class:`~gorch.Engine`),
            for your own queries of the tables.
        url: SQLAlchemy's URL of the database.
    """

    def __init__(
        self,
        url: str,
        *,
        synchronous: Literal["FULL", "NORMAL"] = "FULL",
        busy_timeout: float = 30.0,
        pool_size: int = 10,
        create: bool = True,
    ) -> None:
        self.dialect = open_dialect(url, synchronous=synchronous, busy_timeout=busy_timeout)
        self.url = self.dialect.url
        self.sa_engine: SAEngine = self.dialect.create_engine(pool_size)
        lock = self.dialect.lock
        self.links = Links(self.dialect)
        self.signal = ChangeSignal()
        self._follower = Follower(self, self.signal)
        self._pool = Pool(
            self.sa_engine,
            self.dialect,
            name=repr(self),
            size=1 if lock is not None else 3 * pool_size,
            timeout=busy_timeout,
            lock=lock,
        )
        if create:
            try:
                create_schema(self._pool, self.dialect, self.sa_engine.dialect, repr(self))
            except BaseException:
                self.close()
                raise

    def __repr__(self) -> str:
        return f"SQLStore({self.url.render_as_string(hide_password=True)!r})"

    # -- connections: see gorch.store.sql._pool ----------------------------------------------

    @contextmanager
    def _conn(self) -> Iterator[Any]:
        """A pooled cursor for reads (autocommit)."""
        with self._pool.conn() as cur:
            yield cur

    def schema_version(self) -> int:
        """The schema version recorded in the database."""
        return int(self._pool.fetch(READ_VERSION, one=True)[0])

    # -- writes ------------------------------------------------------------------------------

    def commit(self, write: Write) -> int:
        dialect, expected = self.dialect, write.expected_version
        version = 1 if expected is None else expected + 1
        try:
            # Asking the dialect only where it has a checkpoint of its own, and handing the
            # pool a partial (no frame of its own): each call here is on every step's path.
            if not dialect.has_checkpoint or not dialect.checkpoint(self._pool, write, version):
                woke = self._pool.run(partial(self._write, write, version), tx=True)
            else:
                woke = False
        except StoreUnavailableError as exc:
            exc.workflow_id = write.instance.id
            raise
        self.after_commit(write, woke)
        return version

    def after_commit(self, write: Write, woke: bool) -> None:
        """Once ``write`` is committed: wake this process's idle workers if it woke workers,
        and its waiters for the instances it changed."""
        if write.notify or woke:
            self.dialect.notified()
        if write.change:
            self.signal.fire(write.instance.id)
        for start in write.starts:
            self.signal.fire(start.instance.id)

    @property
    def transactions(self) -> bool:
        """Whether it runs ``Step(transaction=True)``: every database but an in-memory SQLite
        one (one connection, shared by the whole store)."""
        return self.dialect.lock is None

    def step_transaction(self) -> StepTransaction:
        """A database transaction for a ``Step(transaction=True)``: its session's writes and
        the step's checkpoint (:meth:`StepTransaction.commit`) commit together."""
        return StepTransaction(self, self._write)

    def _write(self, write: Write, version: int, cur: Any) -> bool:
        """The statements of one commit, in its transaction on ``cur`` (see
        :meth:`Store.commit`); whether it woke workers."""
        dialect, row, expected = self.dialect, write.instance, write.expected_version
        bind = dialect.bind_time
        self._row(write, version, cur)
        if write.timers is not None:
            if expected is not None:
                cur.execute(dialect.del_timers, (row.id,))
            for timer in write.timers:
                cur.execute(
                    dialect.add_timer,
                    (timer.instance_id, timer.thread_id, timer.name, timer.pc,
                     bind(timer.due_at)),
                )  # fmt: skip
        for idx, entry in enumerate(write.history, 1):
            cur.execute(
                dialect.history,
                (entry.instance_id, version, idx, bind(entry.at), entry.kind, entry.name,
                 entry.thread, entry.input, entry.output, entry.error, entry.actor,
                 entry.reason),
            )  # fmt: skip
        if write.key is not None:
            self._record_key(cur, write.key, row.id)
        woke = write.notify
        for start in write.starts:
            woke = self._write(start, 1, cur) or woke
        if write.change or write.watches is not None or write.consume is not None:
            woke = self.links.write(cur, write) or woke
        if woke:
            dialect.notify(cur)
        return woke

    def _row(self, write: Write, version: int, cur: Any) -> None:
        """Insert or update the instance's row (at the version read), in the commit's
        transaction on ``cur``."""
        dialect, row, expected = self.dialect, write.instance, write.expected_version
        params = dialect.row_params(write, version)
        if expected is None:
            dialect.lock_id(cur, row.id)  # against a watch of it committing meanwhile
            with inserting(dialect, row.id):
                cur.execute(dialect.insert, params)
        else:
            cur.execute(dialect.update_at if write.change else dialect.update, params)
            if cur.rowcount != 1:
                raise stale_version(row.id, expected)

    def erase(
        self, write: Write, history: Sequence[HistoryRecord], keys: Sequence[KeyRecord]
    ) -> int:
        expected = write.expected_version
        if expected is None:
            raise ValueError("an erasure updates a stored instance: give its expected_version")
        instance_id = write.instance.id

        def apply(cur: Any) -> None:
            self._write(write, expected + 1, cur)
            rewrite(cur, self.dialect, instance_id, history, keys)

        try:
            self._pool.run(apply, tx=True)
        except StoreUnavailableError as exc:
            exc.workflow_id = instance_id
            raise
        try:
            self.dialect.forget(self._pool)
        except Exception:  # committed all the same: the old contents stay until overwritten
            log.warning("could not clear old contents after erasing %s", instance_id,
                        exc_info=True)  # fmt: skip
        return expected + 1

    def _record_key(self, cur: Any, key: KeyRecord, instance_id: str) -> None:
        """Insert the idempotency key of a commit of ``instance_id``, in its transaction.

        Raises:
            ConflictError: another commit recorded the key meanwhile.
        """
        dialect = self.dialect
        try:
            cur.execute(
                dialect.key,
                (key.instance_id, key.key, key.fingerprint, key.output, dialect.bind_time(key.at)),
            )
        except Exception as exc:
            if dialect.is_unique_violation(exc):
                raise ConflictError(
                    f"idempotency key of instance {instance_id!r} was recorded meanwhile",
                    workflow_id=instance_id,
                ) from None
            raise

    def release(self, instance_id: str, owner: str, version: int) -> bool:
        def apply(cur: Any) -> bool:
            cur.execute(self.dialect.release, (instance_id, owner, version))
            return bool(cur.rowcount == 1)

        return self._pool.run(apply, tx=True)

    def delete_timer(self, timer: TimerRecord) -> None:
        def apply(cur: Any) -> None:
            cur.execute(
                self.dialect.delete_timer,
                (timer.instance_id, timer.thread_id, timer.name, timer.pc),
            )

        self._pool.run(apply, tx=True)

    def claim(
        self,
        owner: str,
        now: datetime,
        until: datetime,
        limit: int,
        workflows: Sequence[str] | None = None,
    ) -> list[InstanceRecord]:
        dialect = self.dialect
        query = dialect.claim_query(
            dialect.claim, dialect.claim_among, owner, now, until, limit, workflows
        )
        if query is None:
            return []

        def apply(cur: Any) -> list[Any]:
            cur.execute(*query)
            return list(cur.fetchall())

        return [read_instance(r) for r in self._pool.run(apply, tx=True)]

    def claim_timers(
        self,
        owner: str,
        now: datetime,
        until: datetime,
        limit: int,
        workflows: Sequence[str] | None = None,
    ) -> list[tuple[TimerRecord, InstanceRecord]]:
        dialect = self.dialect
        query = dialect.claim_query(
            dialect.claim_timers, dialect.claim_timers_among, owner, now, until, limit, workflows
        )
        if query is None:
            return []
        first = (dialect.due_timers, lambda row: (row.id, dialect.bind_time(now)))
        return [(read_timer(t), row) for t, row in self._claim_each(query, first, owner)]

    def _claim_each(
        self, query: tuple[str, tuple[Any, ...]], first: tuple[str, Any], owner: str
    ) -> list[tuple[Any, InstanceRecord]]:
        """Claim with ``query``, then read for each instance claimed the first row of ``first``
        (a statement, and its parameters for the instance): the due timer or the message it
        was claimed for. An instance with none is given back at once: PostgreSQL re-checks a
        row that changed meanwhile against the timer or message row it read first, so a
        commit that just took it can get the instance leased here with nothing to do."""
        dialect, (sql, params_of) = self.dialect, first

        def apply(cur: Any) -> list[tuple[Any, InstanceRecord]]:
            out = []
            cur.execute(*query)
            for row in [read_instance(r) for r in cur.fetchall()]:
                cur.execute(sql, params_of(row))
                found = cur.fetchone()
                if found is None:
                    cur.execute(dialect.unlease, (row.id, owner))
                    continue
                out.append((found, row))
            return out

        return self._pool.run(apply, tx=True)

    # -- reads -------------------------------------------------------------------------------

    def get(self, instance_id: str) -> InstanceRecord | None:
        r = self._pool.fetch(self.dialect.get, (instance_id,), one=True)
        return None if r is None else read_instance(r)

    def get_key(self, instance_id: str, key: str) -> KeyRecord | None:
        r = self._pool.fetch(self.dialect.get_key, (instance_id, key), one=True)
        return None if r is None else KeyRecord(r[0], r[1], r[2], r[3], read_time(r[4]))

    def keys(self, instance_id: str) -> list[KeyRecord]:
        rows = self._pool.fetch(keys_of(self.dialect), (instance_id,))
        return [KeyRecord(r[0], r[1], r[2], r[3], read_time(r[4])) for r in rows]

    def timers(self, instance_id: str | None = None) -> list[TimerRecord]:
        if instance_id is None:
            rows = self._pool.fetch(self.dialect.all_timers)
        else:
            rows = self._pool.fetch(self.dialect.timers_of, (instance_id,))
        return [read_timer(r) for r in rows]

    def ping(self) -> None:
        self._pool.ping(self.dialect.ping, PING_TIMEOUT)

    # -- waking workers ----------------------------------------------------------------------

    def wait_for_work(self, timeout: float) -> bool:
        return self.dialect.wait_for_work(self._pool, timeout)

    def close(self) -> None:
        self._follower.close()
        self.dialect.close()
        self._pool.close()
        self.sa_engine.dispose()
