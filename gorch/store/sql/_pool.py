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

What differs between the databases (the statement that begins a transaction, whether and how
a dead connection shows, which errors mean the database cannot be used) the pool asks of its
:class:`~gorch.store.sql._dialect.Dialect`.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy.engine import Engine as SAEngine
from sqlalchemy.exc import DBAPIError

from gorch.errors import StoreUnavailableError

if TYPE_CHECKING:
    from gorch.store.sql._dialect import Dialect

__all__ = ["LOCKED", "UNREACHABLE", "Pool"]

log = logging.getLogger("gorch.store")

T = TypeVar("T")

UNREACHABLE = "unreachable"
"""A failure of the connection (or of connecting): the database cannot be reached."""
LOCKED = "locked"
"""SQLite's write lock stayed taken past ``busy_timeout``."""


class _Connection:
    """A pooled connection: SQLAlchemy's wrapper of the driver's connection (``raw``), its one
    cursor, its generation, and (where the database can tell) a poll that finds it dead."""

    __slots__ = ("cursor", "generation", "poll", "raw")

    def __init__(self, raw: Any, generation: int, dialect: Dialect) -> None:
        self.raw = raw
        self.cursor = raw.cursor()
        dialect.set_up_cursor(self.cursor)
        self.generation = generation
        self.poll = dialect.dead_poll(raw)


class Pool:
    """Connections to one database.

    Args:
        sa_engine: SQLAlchemy's engine (its pool makes the connections).
        dialect: the database (how it begins a transaction, tells a dead connection, ...).
        name: how errors name the store (its URL without the password).
        size: the most connections kept open.
        timeout: seconds to wait for a free connection when all ``size`` are busy; also
            SQLite's busy timeout, which errors quote.
        lock: a lock every use holds (SQLite in memory: one shared connection), or None.
    """

    def __init__(
        self,
        sa_engine: SAEngine,
        dialect: Dialect,
        *,
        name: str,
        size: int,
        timeout: float,
        lock: threading.RLock | None = None,
    ) -> None:
        self.sa_engine = sa_engine
        self.dialect = dialect
        self.name = name
        self.size = size
        self.timeout = timeout
        self.lock = lock
        # In memory, the one connection *is* the database: never close it.
        self.keep = lock is not None
        self.begin = dialect.begin
        self._idle: queue.SimpleQueue[_Connection] = queue.SimpleQueue()
        self._made = 0
        self._generation = 0
        self._count_lock = threading.Lock()
        self._ping_lock = threading.Lock()

    # -- connections -------------------------------------------------------------------------

    def checkout(self, wait: float | None = None) -> _Connection:
        """A live connection of the current generation: an idle one, or a new one while
        fewer than ``size`` exist, or the next one given back (up to ``wait`` seconds)."""
        dead = 0
        while True:
            try:
                conn = self._idle.get_nowait()
            except queue.Empty:
                conn = self._make_or_wait(self.timeout if wait is None else wait)
            if conn.generation < self._generation:
                self._close(conn)  # made before a connection was found dead: as dead as it
            elif conn.poll is not None and conn.poll(0):
                # Readable while idle: the server sent its goodbye (or closed the socket).
                self._dead(conn)
                dead += 1
                if dead > 2:  # even the new ones: the server ends them as soon as made
                    raise StoreUnavailableError(
                        f"{self.name}: the database ends every connection as soon as it is "
                        f"made; nothing was written; try again later"
                    )
            else:
                return conn

    def _make_or_wait(self, wait: float) -> _Connection:
        with self._count_lock:
            make = self._made < self.size
            if make:
                self._made += 1
            generation = self._generation
        if make:
            try:
                raw = self.sa_engine.raw_connection()
            except BaseException as exc:
                with self._count_lock:
                    self._made -= 1
                kind = self.kind(exc)
                if kind is None:
                    raise
                raise self.unavailable(exc, kind, connecting=True) from exc
            try:
                return _Connection(raw, generation, self.dialect)
            except BaseException:
                with contextlib.suppress(Exception):
                    raw.invalidate()
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

    def _close(self, conn: _Connection) -> None:
        if self.keep:
            self._idle.put(conn)
            return
        with contextlib.suppress(Exception):
            conn.raw.invalidate()
        with self._count_lock:
            self._made -= 1

    def _dead(self, conn: _Connection) -> None:
        """``conn`` is dead: so is every connection made before it was found so."""
        if self.keep:
            self._idle.put(conn)
            return
        with self._count_lock:
            bump = conn.generation >= self._generation
            if bump:
                self._generation = conn.generation + 1
        if bump:
            log.warning(
                "%s: a connection to the database was found dead; dropping every connection "
                "made before it (pool generation %d)",
                self.name,
                self._generation,
            )
        self._close(conn)

    def _give_back(self, conn: _Connection) -> None:
        """Return ``conn`` after an error that was not its fault, if it is clean (no
        transaction left open); close it otherwise."""
        try:
            clean = not self.dialect.in_transaction(conn.raw)
        except Exception:
            clean = False
        if clean:
            self._idle.put(conn)
        else:
            self._close(conn)

    def close(self) -> None:
        while True:
            try:
                conn = self._idle.get_nowait()
            except queue.Empty:
                break
            with contextlib.suppress(Exception):
                conn.raw.close()

    # -- errors ------------------------------------------------------------------------------

    def kind(self, exc: BaseException, conn: _Connection | None = None) -> str | None:
        """Whether ``exc`` means the database cannot be used (``UNREACHABLE``, ``LOCKED``) or
        is the statement's own error (None). ``conn``: the connection it happened on (None:
        while connecting)."""
        if self.keep:
            return None
        orig = exc.orig if isinstance(exc, DBAPIError) else exc
        if orig is None:
            return None
        return self.dialect.failure(orig, None if conn is None else conn.raw)

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
        begin: str | None = None,
    ) -> T:
        """``work(cursor)`` on a live connection, once more on a fresh one if the connection
        broke before anything could be committed.

        Args:
            work: the statements.
            tx: run them in a transaction (``BEGIN``/``BEGIN IMMEDIATE`` ... ``COMMIT``).
            write: without ``tx``: the statements write in autocommit (one statement that
                commits by itself): a broken connection leaves its outcome unknown.
            wait: seconds to wait for a free connection (default: the pool's timeout).
            begin: with ``tx``: what begins the transaction instead of ``BEGIN`` (the same
                round trip can take a lock, say).

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
                conn = self.checkout(wait)
                cur = conn.cursor
                committing = False
                try:
                    if tx:
                        cur.execute(begin or self.begin)
                    out = work(cur)
                    if tx:
                        committing = True
                        cur.execute("COMMIT")
                except BaseException as exc:
                    unknown = committing or (write and not tx)
                    error = self._failed(exc, conn, tx=tx, unknown=unknown, retried=retried)
                    if error is exc:
                        raise
                    if error is not None:
                        raise error from exc
                    retried = True
                    continue
                self._idle.put(conn)
                return out
        finally:
            if lock is not None:
                lock.release()

    def _failed(
        self, exc: BaseException, conn: _Connection, *, tx: bool, unknown: bool, retried: bool
    ) -> BaseException | None:
        """After ``exc`` on ``conn`` in :meth:`run`: what to raise (``exc`` itself: raise it
        as it is), or None to run the call once more, on a fresh connection.

        Args:
            tx: the call ran in a transaction (to roll back).
            unknown: the write may have been committed (its COMMIT was sent, or it ran in
                autocommit): never run it again.
            retried: this was the second time already.
        """
        kind = self.kind(exc, conn)
        if kind is None or kind == LOCKED:
            # Not the connection's fault (a conflict, a constraint, a lock held past
            # busy_timeout): undo and give the connection back.
            if tx:
                with contextlib.suppress(Exception):
                    conn.cursor.execute("ROLLBACK")
            self._give_back(conn)
            return exc if kind is None else self.unavailable(exc, kind)
        self._dead(conn)
        if not unknown and not retried:
            return None
        return self.unavailable(exc, kind, unknown=unknown, retried=retried)

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
            conn = self.checkout()
            try:
                yield conn.cursor
            except BaseException as exc:
                kind = self.kind(exc, conn)
                if kind == UNREACHABLE:
                    self._dead(conn)
                else:
                    self._give_back(conn)
                if kind is None:
                    raise
                raise self.unavailable(exc, kind) from exc
            self._idle.put(conn)
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
