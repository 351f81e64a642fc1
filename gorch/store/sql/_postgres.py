"""PostgreSQL (psycopg 3): many processes on many machines.

A claim locks the rows it takes with ``FOR UPDATE SKIP LOCKED``, so any number of workers share
the database without double-processing. A commit with ``notify`` sends ``NOTIFY gorch_work``
and idle workers ``LISTEN`` on a connection of their own, made again after any error. The
common checkpoint (an update with history rows) is one statement: one round trip. A dead
connection is found before it is used by a zero-timeout poll of its socket (see
:mod:`gorch.store.sql._pool`).
"""

from __future__ import annotations

import contextlib
import select
import threading
from collections.abc import Callable, Sequence
from datetime import datetime
from hashlib import blake2b
from typing import TYPE_CHECKING, Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import URL
from sqlalchemy.engine import Engine as SAEngine

from gorch.store.sql._dialect import NOTIFY_CHANNEL, Dialect, inserting, stale_version
from gorch.store.sql._pg_commit import HISTORY, history_params, one_statement
from gorch.store.sql._pool import UNREACHABLE, Pool
from gorch.store.sql._rows import safe_timestamptz

if TYPE_CHECKING:
    from gorch.store.base import Write

__all__ = ["PG_CONNECT_ARGS", "PostgreSQL"]

PG_CONNECT_ARGS: dict[str, Any] = {
    "connect_timeout": 5,
    "keepalives": 1,
    "keepalives_idle": 30,
    "keepalives_interval": 10,
    "keepalives_count": 3,
}
"""libpq connection parameters a PostgreSQL store sets unless its URL does."""

UNIQUE_VIOLATION = "23505"
"""The SQLSTATE of a row whose key exists already."""

SCHEMA_LOCK = 7262001
"""The advisory lock that makes creating or migrating the schema one process at a time."""
ID_LOCKS = 7262002
"""The first key of the advisory locks on instance ids (:meth:`PostgreSQL.lock_id`); the
second is the id's hash."""

# What the socket of an idle connection shows once the server has ended it.
_POLL_DEAD = select.POLLIN | select.POLLPRI | select.POLLERR | select.POLLHUP


class PostgreSQL(Dialect):
    """A PostgreSQL database.

    Args:
        url: ``postgresql://user:password@host:port/database`` (any driver name: psycopg 3 is
            used); libpq's ``connect_timeout`` and ``keepalives*`` parameters in its query
            replace those of :data:`PG_CONNECT_ARGS`.
        busy_timeout: seconds to wait for a connection from the pool.
    """

    name = "postgresql"
    placeholder = "%s"
    json_param = "::json"
    json_as_text = "::text"
    lock_claimed = " FOR UPDATE SKIP LOCKED"
    materialized = " MATERIALIZED"
    lock_claimed_of_timers = " FOR UPDATE OF i SKIP LOCKED"
    among = "= ANY(?)"
    id_contains = "strpos(id, ?) > 0"
    begin = "BEGIN"
    ping = "SELECT 1"
    has_checkpoint = True

    def __init__(self, url: URL, *, busy_timeout: float) -> None:
        url = url.set(drivername="postgresql+psycopg")
        super().__init__(url, busy_timeout)
        # Without a connect timeout, connecting to a host that drops packets hangs for
        # minutes; keepalives find a dead peer of an idle connection (the LISTEN one).
        self.connect_args = {
            name: value for name, value in PG_CONNECT_ARGS.items() if name not in url.query
        }
        # The common checkpoint (update + history rows) as one statement, so one round trip
        # and one implicit transaction; the history rows depend on the update, so a failed
        # version check writes nothing (see _pg_commit.py).
        self.update_with_history = f"WITH u AS ({self.update} RETURNING id) {HISTORY}"
        self._listen: Any = None
        self._listen_lost = False
        self._listen_lock = threading.Lock()

    @staticmethod
    def bind_time(at: datetime | None) -> datetime | None:
        return at  # psycopg binds a datetime to timestamptz itself

    def among_param(self, names: Sequence[str]) -> list[str]:
        return [str(n) for n in names]

    # -- connections -------------------------------------------------------------------------

    def create_engine(self, pool_size: int) -> SAEngine:
        sa_engine = create_engine(
            self.url,
            pool_size=pool_size,
            max_overflow=2 * pool_size,
            pool_timeout=self.busy_timeout,
            pool_pre_ping=False,
            connect_args=self.connect_args,
        )
        event.listen(sa_engine, "connect", _set_up)
        return sa_engine

    def set_up_cursor(self, cursor: Any) -> None:
        safe_timestamptz(cursor)

    def dead_poll(self, raw: Any) -> Callable[[int], list[Any]]:
        # An idle connection has nothing to read unless the server ended it: a terminated
        # backend sends its FATAL message and closes the socket.
        poll = select.poll()
        poll.register(raw.driver_connection.pgconn.socket, _POLL_DEAD)
        return poll.poll

    def in_transaction(self, raw: Any) -> bool:
        from psycopg.pq import TransactionStatus

        driver = raw.driver_connection
        return bool(driver.closed or driver.info.transaction_status is not TransactionStatus.IDLE)

    def failure(self, exc: BaseException, raw: Any) -> str | None:
        import psycopg

        if not isinstance(exc, psycopg.Error):
            return None
        if raw is None:
            return UNREACHABLE if isinstance(exc, psycopg.OperationalError) else None
        driver = raw.driver_connection
        return UNREACHABLE if driver.closed or driver.broken else None

    def is_unique_violation(self, exc: BaseException) -> bool:
        # The store's cursors are psycopg's own, so its errors come unwrapped (not as
        # SQLAlchemy's IntegrityError with ``.orig``); the SQLSTATE, not the message, which
        # quotes the duplicate value and so may read like anything.
        return getattr(exc, "sqlstate", None) == UNIQUE_VIOLATION

    # -- its own ways ------------------------------------------------------------------------

    def lock_schema(self, cursor: Any) -> None:
        cursor.execute(f"SELECT pg_advisory_xact_lock({SCHEMA_LOCK})")

    def checkpoint(self, pool: Pool, write: Write, version: int) -> bool:
        """An update with history rows and nothing else, in one statement; or a start, or
        a change of status, in one statement too (:mod:`gorch.store.sql._pg_commit`). An
        update commits by itself (autocommit): a connection that breaks while it runs leaves
        its outcome unknown, so it is never repeated."""
        if write.expected_version is None or write.change:
            return self._change(pool, write, version)
        if not write.is_plain():
            return False
        row, history = write.instance, write.history
        params = list(self.row_params(write, version))
        if history:
            params += history_params(write, version)
            sql, expect = self.update_with_history, len(history)
        else:
            sql, expect = self.update, 1

        def apply(cur: Any) -> bool:
            cur.execute(sql, params)
            return bool(cur.rowcount == expect)

        if not pool.run(apply, write=True):
            raise stale_version(row.id, write.expected_version)
        return True

    def _change(self, pool: Pool, write: Write, version: int) -> bool:
        found = one_statement(self, write, version)
        if found is None:
            return False
        sql, params = found
        row = write.instance
        if write.expected_version is not None:
            # None: not at the version, or watched meanwhile; SQLStore's transaction knows.
            return pool.run(lambda cur: cur.execute(sql, params).fetchone(), write=True) is not None

        def insert(cur: Any) -> None:
            with inserting(self, row.id):
                cur.execute(sql, params)

        # The id's lock before the statement's snapshot (see _pg_commit.py), in the round
        # trip that begins the transaction.
        pool.run(insert, tx=True, begin=f"BEGIN; {_lock_id(row.id)}")
        return True

    def forget(self, pool: Pool) -> None:
        # Prune the dead tuples (the old row versions) of the erased rows; VACUUM cannot run
        # in a transaction, and the pooled connections are in autocommit.
        pool.run(lambda cur: cur.execute("VACUUM gorch_instances, gorch_history, gorch_keys"))

    def lock_id(self, cursor: Any, instance_id: str) -> None:
        cursor.execute(_lock_id(instance_id))

    def announce(self, cursor: Any, instance_id: str) -> None:
        cursor.execute("SELECT pg_notify('gorch_changes', %s)", (instance_id,))

    def notify(self, cursor: Any) -> None:
        cursor.execute(f"NOTIFY {NOTIFY_CHANNEL}")

    def notified(self) -> None:
        pass  # workers of this process LISTEN too: NOTIFY woke them

    def wait_for_work(self, pool: Pool, timeout: float) -> bool:
        import psycopg

        with self._listen_lock:
            try:
                if self._listen is None:
                    dsn = self.url.set(drivername="postgresql").render_as_string(
                        hide_password=False
                    )
                    self._listen = psycopg.connect(dsn, autocommit=True, **self.connect_args)
                    self._listen.execute(f"LISTEN {NOTIFY_CHANNEL}")
                    if self._listen_lost:
                        # Notifications sent while it was gone are lost: look for work now.
                        self._listen_lost = False
                        return True
                return any(True for _ in self._listen.notifies(timeout=timeout, stop_after=1))
            except BaseException as exc:
                # Whatever went wrong, this connection is done for: make a new one next time.
                self._drop_listen()
                if isinstance(exc, psycopg.Error):
                    raise pool.unavailable(exc, UNREACHABLE, connecting=True) from exc
                raise

    def _drop_listen(self) -> None:
        listen, self._listen, self._listen_lost = self._listen, None, True
        if listen is not None:
            with contextlib.suppress(Exception):
                listen.close()

    def close(self) -> None:
        with self._listen_lock:
            self._drop_listen()


def _lock_id(instance_id: str) -> str:
    """The statement that takes the advisory lock of ``instance_id`` (its key a number, so
    that it can be written into the statement: no parameter)."""
    key = int.from_bytes(blake2b(instance_id.encode(), digest_size=4).digest(), signed=True)
    return f"SELECT pg_advisory_xact_lock({ID_LOCKS}, {key})"


def _set_up(dbapi_connection: Any, _: Any) -> None:
    dbapi_connection.autocommit = True  # the store issues BEGIN / COMMIT itself
