"""Hearing other processes' changes, for :meth:`SQLStore.wait_change`.

One daemon thread per store, started by the first waiter, fires the store's
:class:`~gorch.store.signal.ChangeSignal` for each change another process commits:

- PostgreSQL: a connection of its own ``LISTEN``\\ s on ``gorch_changes``, whose
  notifications carry the instance's id. Whenever it has to connect again, notifications may
  have been lost meanwhile: it wakes every waiter, who read again.
- SQLite (a file): every :data:`POLL` seconds it compares the size and time of the database
  file and its write-ahead log with what it saw last; only when they moved (and for
  :data:`SETTLE` seconds after) does it read the feed's new entries (one query) and fire for
  each. An in-memory database has no other process.

Commits of the store itself fire the signal directly (``SQLStore.commit``), so waiters in the
same process hear them at once.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import threading
import time
from typing import TYPE_CHECKING, Any

from gorch.store.signal import ChangeSignal

if TYPE_CHECKING:
    from gorch.store.sql._store import SQLStore

__all__ = ["POLL", "Follower"]

log = logging.getLogger("gorch.store")

POLL = 0.2
"""Seconds between two looks at a SQLite file for other processes' commits."""

SETTLE = 0.1
"""Seconds it reads the feed on after the file moved (a commit in the log may not be visible
to readers yet when it looks)."""


class Follower:
    """The thread that feeds ``signal`` with ``store``'s other processes' changes."""

    def __init__(self, store: SQLStore, signal: ChangeSignal) -> None:
        self.store = store
        self.signal = signal
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def ensure(self) -> None:
        """Start the thread if it does not run (and there is another process to hear)."""
        if self._thread is not None or self._stop.is_set():
            return
        dialect = self.store.dialect
        if dialect.name == "sqlite" and getattr(dialect, "memory", False):
            return
        with self._lock:
            if self._thread is None:
                if dialect.name == "postgresql":
                    body: Any = self._listen
                else:  # its bearings now, before the caller's first read: none is missed
                    path = str(dialect.url.database)
                    body = functools.partial(
                        self._poll, path, _stamp(path), self.store.last_change()
                    )
                self._thread = threading.Thread(target=body, name="gorch-follow", daemon=True)
                self._thread.start()

    def close(self) -> None:
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=2)

    # -- PostgreSQL --------------------------------------------------------------------------

    def _listen(self) -> None:
        import psycopg

        dialect: Any = self.store.dialect
        dsn = dialect.url.set(drivername="postgresql").render_as_string(hide_password=False)
        while not self._stop.is_set():
            try:
                with psycopg.connect(dsn, autocommit=True, **dialect.connect_args) as conn:
                    conn.execute("LISTEN gorch_changes")
                    self.signal.fire_all()  # what came while it was not listening
                    while not self._stop.is_set():
                        for note in conn.notifies(timeout=0.25):
                            self.signal.fire(note.payload)
            except Exception as exc:
                log.debug("listening for changes failed (%s); trying again", exc)
                self.signal.fire_all()
                self._stop.wait(1.0)

    # -- SQLite ------------------------------------------------------------------------------

    def _poll(self, path: str, seen: tuple[int, ...], last: int) -> None:
        # After the file moved, read on for a while: the look may have fallen between a
        # commit's write to the log and the moment readers see it (its fsync).
        again_until = 0.0
        while not self._stop.wait(POLL):
            now = _stamp(path)
            if now != seen:
                seen, again_until = now, time.monotonic() + max(SETTLE, POLL)
            elif time.monotonic() > again_until:
                continue
            try:
                for seq, instance_id in self.store.changed_since(last):
                    last = max(last, seq)
                    self.signal.fire(instance_id)
            except Exception as exc:
                log.debug("reading the change feed failed (%s); trying again", exc)
                self.signal.fire_all()


def _stamp(path: str) -> tuple[int, ...]:
    """The size and time of a SQLite file and its write-ahead log (zeros for a missing one)."""
    out: list[int] = []
    for p in (path, path + "-wal"):
        st = None
        with contextlib.suppress(OSError):
            st = os.stat(p)
        out += [st.st_size, st.st_mtime_ns] if st is not None else [0, 0]
    return tuple(out)
