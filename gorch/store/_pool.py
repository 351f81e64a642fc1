"""The SQL store's connections: kept in a queue of our own, and safe across database outages.

Connections come from SQLAlchemy's pool once and are then kept, each with its cursor, in a
queue of our own: checking one out and in is two C calls, where a pool round trip costs
~15 µs, a tenth of a durable commit. On top of that queue:

- **A dead connection is found before it is used.** An idle PostgreSQL connection has nothing
  to read unless the server ended it: a terminated backend sends its FATAL message and closes
  the socket, a server that stops or crashes closes it. So a zero-timeout ``poll`` of the
  socket (under a microsecond) tells a dead connection from a live one without a round trip;
  a ``SELECT 1`` pre-ping would add a round trip to every checkpoint.
- **Generations.** Dead connections come in herds: after a restart, every connection made
  before it is dead, including those whose death ``poll`` cannot see (a network cut, a
  crashed host). A connection found dead moves the pool to a new generation, and every
  connection of an older one is closed when it is next taken, instead of failing one request
  each.
- **One transparent retry, where it is safe.** A call that failed because its connection
  broke runs once more on a fresh connection if nothing of it can have been committed: a
  read, or a transaction whose COMMIT was not sent yet. A write whose COMMIT was sent (or a
  one-statement write in autocommit, which commits by itself) is never repeated: its outcome
  is unknown, and it raises :class:`~gorch.errors.StoreUnavailableError` with
  ``outcome_unknown=True``.
- **One error for a database that cannot be used.** A failure of the connection (or of
  connecting) raises ``StoreUnavailableError``, as does SQLite's ``database is locked`` once
  ``busy_timeout`` has passed (another connection held the write lock all that time: as for
  an outage, nothing was written and the answer is to try again later) and SQLite's errors of
  the environment (the file cannot be opened or read or written: I/O errors, a full disk, a
  read-only file). Errors of the statement itself (a conflict, a constraint, a damaged file)
  are raised as they are.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import select
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from sqlalchemy.engine import Engine as SAEngine
from sqlalchemy.exc import DBAPIError

from gorch.errors import StoreUnavailableError

__all__ = ["Pool"]

log = logging.getLogger("gorch.store")

T = TypeVar("T")

UNREACHABLE = "unreachable"
LOCKED = "locked"

# SQLite's primary result codes (https://sqlite.org/rescode.html) that mean the database file
# cannot be used now, rather than that the statement is wrong or the file is damaged.
_SQLITE_LOCKED = {5, 6}  # SQLITE_BUSY (after busy_timeout), SQLITE_LOCKED
_SQLITE_UNREACHABLE = {
    3,  # SQLITE_PERM: access permission denied
    8,  # SQLITE_READONLY: e.g. the file became read-only, or was moved
    10,  # SQLITE_IOERR: disk I/O error
    13,  # SQLITE_FULL: the disk is full
    14,  # SQLITE_CANTOPEN: unable to open the database file
    15,  # SQLITE_PROTOCOL: WAL lock protocol error
    22,  # SQLITE_NOLFS
}
_POLL_DEAD = select.POLLIN | select.POLLPRI | select.POLLERR | select.POLLHUP


class _Conn:
    """A pooled connection: SQLAlchemy's wrapper, its cursor, its generation, and (PostgreSQL)
    a poll of its socket."""

    __slots__ = ("cur", "fairy", "gen", "poll")

    def __init__(
        self, fairy: Any, gen: int, pg: bool, on_cursor: Callable[[Any], None] | None
    ) -> None:
        self.fairy = fairy
        self.cur = fairy.cursor()
        if on_cursor is not None:
            on_cursor(self.cur)
        self.gen = gen
        self.poll: Callable[[int], list[Any]] | None = None
        if pg:
            p = select.poll()
            p.register(fairy.driver_connection.pgconn.socket, _POLL_DEAD)
            self.poll = p.poll


class Pool:
    """Connections to one database.

    Args:
        engine: SQLAlchemy's engine (its pool makes the connections).
        name: how errors name the store (its URL without the password).
        pg: PostgreSQL (else SQLite).
        size: the most connections kept open.
        timeout: seconds to wait for a free connection when all ``size`` are busy; also
            SQLite's busy timeout, which errors quote.
        lock: a lock every use holds (SQLite in memory: one shared connection), or None.
        on_cursor: called with each new cursor (to set up how it loads values).
    """

    def __init__(
        self,
        engine: SAEngine,
        *,
        name: str,
        pg: bool,
        size: int,
        timeout: float,
        lock: threading.RLock | None = None,
        on_cursor: Callable[[Any], None] | None = None,
    ) -> None:
        self.engine = engine
        self.on_cursor = on_cursor
        self.name = name
        self.pg = pg
        self.size = size
        self.timeout = timeout
        self.lock = lock
        # In memory, the one connection *is* the database: never close it.
        self.keep = lock is not None
        self.begin = "BEGIN" if pg else "BEGIN IMMEDIATE"
        self._idle: queue.SimpleQueue[_Conn] = queue.SimpleQueue()
        self._made = 0
        self._gen = 0
        self._count_lock = threading.Lock()
        self._ping_lock = threading.Lock()

    # -- connections -------------------------------------------------------------------------

    def checkout(self, wait: float | None = None) -> _Conn:
        """A live connection of the current generation: an idle one, or a new one while
        fewer than ``size`` exist, or the next one given back (up to ``wait`` seconds)."""
        dead = 0
        while True:
            try:
                c = self._idle.get_nowait()
            except queue.Empty:
                c = self._make_or_wait(self.timeout if wait is None else wait)
            if c.gen < self._gen:
                self._close(c)  # made before a connection was found dead: as dead as it
            elif c.poll is not None and c.poll(0):
                # Readable while idle: the server sent its goodbye (or closed the socket).
                self._dead(c)
                dead += 1
                if dead > 2:  # even the new ones: the server ends them as soon as made
                    raise StoreUnavailableError(
                        f"{self.name}: the database ends every connection as soon as it is "
                        f"made; nothing was written; try again later"
                    )
            else:
                return c

    def _make_or_wait(self, wait: float) -> _Conn:
        with self._count_lock:
            make = self._made < self.size
            if make:
                self._made += 1
            gen = self._gen
        if make:
            try:
                fairy = self.engine.raw_connection()
            except BaseException as exc:
                with self._count_lock:
                    self._made -= 1
                kind = self.kind(exc)
                if kind is None:
                    raise
                raise self.unavailable(exc, kind, connecting=True) from exc
            try:
                return _Conn(fairy, gen, self.pg, self.on_cursor)
            except BaseException:
                with contextlib.suppress(Exception):
                    fairy.invalidate()
                with self._count_lock:
                    self._made -= 1
                raise
        try:
            return self._idle.get(timeout=wait)
        except queue.Empty:
            raise StoreUnavailableError(
                f"{self.name}: all {self.size} connections stayed busy for {wait:g} s; "
                f"nothing was written; try again, or raise pool_size or busy_timeout"
            ) from None

    def _close(self, c: _Conn) -> None:
        if self.keep:
            self._idle.put(c)
            return
        with contextlib.suppress(Exception):
            c.fairy.invalidate()
        with self._count_lock:
            self._made -= 1

    def _dead(self, c: _Conn) -> None:
        """``c`` is dead: so is every connection made before it was found so."""
        if self.keep:
            self._idle.put(c)
            return
        with self._count_lock:
            bump = c.gen >= self._gen
            if bump:
                self._gen = c.gen + 1
        if bump:
            log.warning(
                "%s: a connection to the database was found dead; dropping every connection "
                "made before it (pool generation %d)",
                self.name,
                self._gen,
            )
        self._close(c)

    def _give_back(self, c: _Conn) -> None:
        """Return ``c`` after an error that was not its fault, if it is clean (no transaction
        left open); close it otherwise."""
        driver = c.fairy.driver_connection
        try:
            if self.pg:
                from psycopg.pq import TransactionStatus

                clean = not driver.closed and driver.info.transaction_status is (
                    TransactionStatus.IDLE
                )
            else:
                clean = not driver.in_transaction
        except Exception:
            clean = False
        if clean:
            self._idle.put(c)
        else:
            self._close(c)

    def close(self) -> None:
        while True:
            try:
                c = self._idle.get_nowait()
            except queue.Empty:
                break
            with contextlib.suppress(Exception):
                c.fairy.close()

    # -- errors ------------------------------------------------------------------------------

    def kind(self, exc: BaseException, c: _Conn | None = None) -> str | None:
        """Whether ``exc`` means the database cannot be used (``UNREACHABLE``, ``LOCKED``) or
        is the statement's own error (None). ``c``: the connection it happened on (None:
        while connecting)."""
        if self.keep:
            return None
        orig = exc.orig if isinstance(exc, DBAPIError) else exc
        if self.pg:
            import psycopg

            if not isinstance(orig, psycopg.Error):
                return None
            if c is None:
                return UNREACHABLE if isinstance(orig, psycopg.OperationalError) else None
            driver = c.fairy.driver_connection
            return UNREACHABLE if driver.closed or driver.broken else None
        if not isinstance(orig, sqlite3.Error):
            return None
        code = getattr(orig, "sqlite_errorcode", None)
        if code is None:
            return None
        if code & 0xFF in _SQLITE_LOCKED:
            return LOCKED
        if code & 0xFF in _SQLITE_UNREACHABLE:
            return UNREACHABLE
        return None

    def unavailable(
        self,
        exc: BaseException,
        kind: str | None,
        *,
        connecting: bool = False,
        unknown: bool = False,
        retried: bool = False,
    ) -> StoreUnavailableError:
        """The error to raise for ``exc``, saying what happened and what to do."""
        orig = exc.orig if isinstance(exc, DBAPIError) else exc
        why = " ".join(line.strip() for line in str(orig).splitlines() if line.strip())
        why = f"{type(orig).__name__}: {why}" if why else type(orig).__name__
        if kind == LOCKED:
            text = (
                f"the SQLite database stayed locked by another connection for more than "
                f"{self.timeout:g} s (busy_timeout) ({why}); nothing was written; try again "
                f"later, or raise busy_timeout"
            )
        elif unknown:
            text = (
                f"the connection to the database broke while a write was being committed "
                f"({why}); it may or may not have been committed. Repeat the request with the "
                f"same idempotency key (if it was committed, the repeat returns its first "
                f"answer and applies nothing again), or read the instance to see"
            )
        else:
            if connecting:
                what = "the database cannot be reached"
            elif retried:
                what = "the connection to the database broke, and so did a fresh one"
            else:
                what = "the connection to the database broke"
            text = f"{what} ({why}); nothing was written; try again later"
        return StoreUnavailableError(f"{self.name}: {text}", outcome_unknown=unknown)

    # -- running statements ------------------------------------------------------------------

    def run(
        self,
        work: Callable[[Any], T],
        *,
        tx: bool = False,
        write: bool = False,
        wait: float | None = None,
    ) -> T:
        """``work(cursor)`` on a live connection, once more on a fresh one if the connection
        broke before anything could be committed.

        Args:
            work: the statements.
            tx: run them in a transaction (``BEGIN``/``BEGIN IMMEDIATE`` ... ``COMMIT``).
            write: without ``tx``: the statements write in autocommit (one statement that
                commits by itself): a broken connection leaves its outcome unknown.
            wait: seconds to wait for a free connection (default: the pool's timeout).

        Raises:
            StoreUnavailableError: the database cannot be used; ``outcome_unknown`` if the
                connection broke after the COMMIT (or the autocommit write) was sent.
        """
        lock = self.lock
        if lock is not None:
            lock.acquire()
        try:
            retried = False
            while True:
                c = self.checkout(wait)
                cur = c.cur
                committing = False
                try:
                    if tx:
                        cur.execute(self.begin)
                    out = work(cur)
                    if tx:
                        committing = True
                        cur.execute("COMMIT")
                except BaseException as exc:
                    kind = self.kind(exc, c)
                    if kind is None or kind == LOCKED:
                        # Not the connection's fault (a conflict, a constraint, a lock held
                        # past busy_timeout): undo and give the connection back.
                        if tx:
                            with contextlib.suppress(Exception):
                                cur.execute("ROLLBACK")
                        self._give_back(c)
                        if kind is None:
                            raise
                        raise self.unavailable(exc, kind) from exc
                    self._dead(c)
                    unknown = committing or (write and not tx)
                    if not unknown and not retried:
                        retried = True
                        continue
                    raise self.unavailable(exc, kind, unknown=unknown, retried=retried) from exc
                self._idle.put(c)
                return out
        finally:
            if lock is not None:
                lock.release()

    def fetch(self, sql: str, params: Any = None, *, one: bool = False) -> Any:
        """A read: ``fetchone()`` (with ``one``) or ``fetchall()`` of one statement."""

        def read(cur: Any) -> Any:
            if params is None:
                cur.execute(sql)
            else:
                cur.execute(sql, params)
            return cur.fetchone() if one else cur.fetchall()

        return self.run(read)

    @contextmanager
    def conn(self) -> Iterator[Any]:
        """A cursor for reads (no retry: the body cannot be run again from here); a broken
        connection raises ``StoreUnavailableError``."""
        lock = self.lock
        if lock is not None:
            lock.acquire()
        try:
            c = self.checkout()
            try:
                yield c.cur
            except BaseException as exc:
                kind = self.kind(exc, c)
                if kind == UNREACHABLE:
                    self._dead(c)
                else:
                    self._give_back(c)
                if kind is None:
                    raise
                raise self.unavailable(exc, kind) from exc
            self._idle.put(c)
        finally:
            if lock is not None:
                lock.release()

    def ping(self, sql: str, timeout: float) -> None:
        """Run ``sql`` (a trivial read), waiting at most ``timeout`` seconds for a connection;
        at most one ping at a time, so pings of a database that hangs do not pile up."""
        if not self._ping_lock.acquire(timeout=timeout):
            raise StoreUnavailableError(
                f"{self.name}: the database has not answered an earlier ping for more than "
                f"{timeout:g} s"
            )
        try:
            self.run(lambda cur: cur.execute(sql).fetchall(), wait=timeout)
        finally:
            self._ping_lock.release()
