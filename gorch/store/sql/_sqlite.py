"""SQLite, the embedded default: one file, many threads and processes on one machine.

The file runs in WAL mode with ``synchronous=FULL`` by default, so a committed step survives
an operating-system crash; ``synchronous="NORMAL"`` trades that for ~10x faster commits (a
power loss may then lose the last commits, never corrupt the file). Writers take SQLite's write
lock with ``BEGIN IMMEDIATE`` and wait for it up to ``busy_timeout``; there is one writer at a
time, so a claim needs no row locks. A database in memory is one shared connection, used under
a lock. Idle workers of this process are woken by a condition; those of other processes find
the work when they next look.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

import orjson
from sqlalchemy import create_engine, event
from sqlalchemy.engine import URL
from sqlalchemy.engine import Engine as SAEngine
from sqlalchemy.pool import StaticPool

from gorch.store.sql._dialect import Dialect
from gorch.store.sql._pool import LOCKED, UNREACHABLE, Pool

if TYPE_CHECKING:
    from gorch.store.base import Write

__all__ = ["SQLite"]

# SQLite's primary result codes (https://sqlite.org/rescode.html) that mean the database file
# cannot be used now, rather than that the statement is wrong or the file is damaged.
_LOCKED = {
    5,  # SQLITE_BUSY (after busy_timeout)
    6,  # SQLITE_LOCKED
}
_UNREACHABLE = {
    3,  # SQLITE_PERM: access permission denied
    8,  # SQLITE_READONLY: e.g. the file became read-only, or was moved
    10,  # SQLITE_IOERR: disk I/O error
    13,  # SQLITE_FULL: the disk is full
    14,  # SQLITE_CANTOPEN: unable to open the database file
    15,  # SQLITE_PROTOCOL: WAL lock protocol error
    22,  # SQLITE_NOLFS
}
# The extended result codes of a row whose key exists already (a PRIMARY KEY of a table, or a
# UNIQUE index); other constraints (NOT NULL, CHECK) are errors of the statement.
_DUPLICATE = {sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY, sqlite3.SQLITE_CONSTRAINT_UNIQUE}


class SQLite(Dialect):
    """A SQLite file (or a database in memory).

    Args:
        url: ``sqlite:///path/to/file.db`` (created if missing), or ``sqlite://`` (in memory).
        synchronous: ``"FULL"`` (durable against an OS crash) or ``"NORMAL"`` (faster).
        busy_timeout: seconds a writer waits for the write lock.
    """

    name = "sqlite"
    placeholder = "?"
    json_param = ""
    json_as_text = ""
    lock_claimed = ""  # one writer at a time: BEGIN IMMEDIATE holds the write lock
    materialized = ""
    lock_claimed_of_timers = ""
    among = "IN (SELECT value FROM json_each(?))"
    id_contains = "instr(id, ?) > 0"
    begin = "BEGIN IMMEDIATE"
    ping = "SELECT 1 FROM sqlite_master LIMIT 1"
    has_checkpoint = False  # each commit is its own BEGIN IMMEDIATE ... COMMIT

    def __init__(
        self, url: URL, *, synchronous: Literal["FULL", "NORMAL"], busy_timeout: float
    ) -> None:
        super().__init__(url, busy_timeout)
        self.synchronous = synchronous
        self.memory = url.database in (None, "", ":memory:")
        if self.memory:  # one shared connection; serialize its use
            self.lock = threading.RLock()
        self._work = threading.Condition()

    @staticmethod
    def bind_time(at: datetime | None) -> str | None:
        # SQLAlchemy's own SQLite storage format (naive UTC), fixed width so that text compares
        # as time.
        if at is None:
            return None
        if at.tzinfo is not UTC:
            at = at.astimezone(UTC)
        return at.replace(tzinfo=None).isoformat(" ", "microseconds")

    def among_param(self, names: Sequence[str]) -> str:
        return orjson.dumps([str(n) for n in names]).decode()

    # -- connections -------------------------------------------------------------------------

    def create_engine(self, pool_size: int) -> SAEngine:
        options: dict[str, Any] = {"connect_args": {"check_same_thread": False}}
        if self.memory:
            options["poolclass"] = StaticPool
        else:
            options["pool_size"] = pool_size
            options["max_overflow"] = 2 * pool_size
            options["pool_timeout"] = self.busy_timeout
        sa_engine = create_engine(self.url, **options)
        event.listen(sa_engine, "connect", self._set_up)
        return sa_engine

    def _set_up(self, dbapi_connection: Any, _: Any) -> None:
        dbapi_connection.isolation_level = None  # the store issues BEGIN IMMEDIATE / COMMIT
        cur = dbapi_connection.cursor()
        # First, so that the PRAGMAs below wait for locks as every statement does.
        cur.execute(f"PRAGMA busy_timeout={int(self.busy_timeout * 1000)}")
        if not self.memory:
            self._wal(cur)
        cur.execute(f"PRAGMA synchronous={self.synchronous}")
        cur.execute("PRAGMA secure_delete=ON")  # freed space is zeroed: erased data is gone
        cur.close()

    def _wal(self, cur: Any) -> None:
        """Put the file in WAL mode. Connections opening a new file at once contend for the
        lock this takes; wait for it up to ``busy_timeout`` as every statement does."""
        deadline = time.monotonic() + self.busy_timeout
        while True:
            try:
                cur.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as exc:
                if _primary_code(exc) not in _LOCKED or time.monotonic() > deadline:
                    raise
                time.sleep(0.01)

    def set_up_cursor(self, cursor: Any) -> None:
        pass  # sqlite3 loads every value Python can hold

    def dead_poll(self, raw: Any) -> None:
        return None  # a file does not end a connection

    def in_transaction(self, raw: Any) -> bool:
        return bool(raw.driver_connection.in_transaction)

    def failure(self, exc: BaseException, raw: Any) -> str | None:
        if not isinstance(exc, sqlite3.Error):
            return None
        code = _primary_code(exc)
        if code in _LOCKED:
            return LOCKED
        if code in _UNREACHABLE:
            return UNREACHABLE
        return None

    def is_unique_violation(self, exc: BaseException) -> bool:
        return isinstance(exc, sqlite3.IntegrityError) and exc.sqlite_errorcode in _DUPLICATE

    # -- its own ways ------------------------------------------------------------------------

    def lock_schema(self, cursor: Any) -> None:
        pass  # BEGIN IMMEDIATE took the write lock

    def checkpoint(self, pool: Pool, write: Write, version: int) -> bool:
        return False  # each commit is its own BEGIN IMMEDIATE ... COMMIT

    def forget(self, pool: Pool) -> None:
        # secure_delete zeroed the freed space of the file; the old page images are in the
        # log: write it into the file and truncate it.
        if not self.memory:
            pool.run(lambda cur: cur.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall())

    def lock_id(self, cursor: Any, instance_id: str) -> None:
        pass  # BEGIN IMMEDIATE holds the write lock to the commit: one writer at a time

    def announce(self, cursor: Any, instance_id: str) -> None:
        pass  # other processes look at the file (_follow.py)

    def notify(self, cursor: Any) -> None:
        pass  # workers of other processes find the work when they next look

    def notified(self) -> None:
        with self._work:
            self._work.notify_all()

    def wait_for_work(self, pool: Pool, timeout: float) -> bool:
        with self._work:
            return self._work.wait(timeout)

    def close(self) -> None:
        pass  # nothing beside the pool


def _primary_code(exc: sqlite3.Error) -> int | None:
    """SQLite's primary result code of ``exc`` (the low byte of its extended code)."""
    code = getattr(exc, "sqlite_errorcode", None)
    return None if code is None else code & 0xFF
