"""The engine's awaiting calls: block until an instance gets somewhere (:meth:`wait`), and
read the change feed (:meth:`changes`).

Both are woken by the commit they wait for, never by a tight poll: the store signals its
waiters in-process on every commit that changes an instance's status or the statements it
waits at, and hears other processes' (``LISTEN`` on PostgreSQL, a look at the file on
SQLite; see :meth:`Store.wait_change <gorch.store.Store.wait_change>`). While nothing
changes, a waiter costs no database round trip.
"""

from __future__ import annotations

import time
from typing import Any

from gorch.children import until_text
from gorch.engine._core import EngineCore
from gorch.engine._records import Change, ChangePage, Instance, RunStatus
from gorch.errors import InputError, NotFoundError, StoreUnavailableError, WaitTimeout
from gorch.limits import MAX_PAGE
from gorch.store.base import watch_matches

_OUTAGE_NAP = 0.5  # seconds between two reads while the database cannot be used


def _timeout(timeout: Any, what: str) -> float:
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout >= 0:
        raise InputError(f"{what}: timeout must be a number of seconds, 0 or more, not {timeout!r}")
    return float(timeout)


class Awaiting(EngineCore):
    """:class:`~gorch.engine.Engine`'s awaiting calls."""

    def wait(self, id: str, until: Any = None, timeout: float = 30.0) -> Instance:
        """Block until instance ``id`` gets where ``until`` says, and return it.

        Args:
            id: the instance.
            until: None (default: it ended, finished or cancelled), a :class:`RunStatus`, a
                set of them (any one), or a statement's name (one of its threads waits
                there: a ``Wait``, a ``WaitFor``, a ``Child``).
            timeout: seconds to wait at most (0: only look).

        Returns:
            The instance as read once it got there (it may have moved on since).

        A database outage does not end the wait: it reads again every half second until the
        timeout, and raises ``StoreUnavailableError`` only if the database is still down then.

        Raises:
            NotFoundError: no instance ``id``.
            InputError: ``until`` or ``timeout`` is not one of the above.
            WaitTimeout: it did not get there in time (nothing changed; the error says where
                it stood).
        """
        try:
            spec = until_text(until)
        except TypeError as exc:
            raise InputError(f"wait({id!r}): {exc}") from None
        left = _timeout(timeout, f"wait({id!r})")
        deadline = time.monotonic() + left
        store = self.store
        while True:
            mark = store.change_mark()  # before the read: a commit after it wakes the wait
            try:
                row = store.get(id)
            except StoreUnavailableError:  # an outage: wait on through it, up to the timeout
                left = deadline - time.monotonic()
                if left <= 0:
                    raise
                time.sleep(min(_OUTAGE_NAP, left))
                continue
            if row is None:
                raise NotFoundError(f"no instance {id!r}", workflow_id=id)
            if watch_matches(spec, row.status, row.at_statements):
                return self._instance(row, timers=True)
            left = deadline - time.monotonic()
            if left <= 0:
                raise WaitTimeout(
                    f"instance {id!r} did not get to {_said(until)} within {timeout} s; it is "
                    f"{row.status}" + (f", at {', '.join(map(repr, row.at_statements))}"
                                      if row.at_statements else ""),
                    workflow_id=id, status=row.status, at_statements=row.at_statements,
                )  # fmt: skip
            store.wait_change(id, mark, left)

    def changes(self, after: int | None = None, limit: int = 100, wait: float = 0.0) -> ChangePage:
        """A page of the change feed: the commits that changed an instance's status or the
        statements it waits at, oldest first, each once.

        Args:
            after: the ``seq`` (``page.next``) of the last change read; None: from the start.
            limit: at most this many (1 to 1000).
            wait: if there is nothing after ``after`` yet, block up to this many seconds for
                the first change to come (a long poll); 0: answer at once.

        Returns:
            A :class:`ChangePage`: ``items``, and ``next`` to pass as ``after``.

        Raises:
            InputError: a bad ``after``, ``limit`` or ``wait``.

        Follow the feed from a cursor you keep: ``page = engine.changes(after=cursor)``, handle
        ``page.items``, store ``page.next`` as the new cursor (in the same transaction as your
        own effect, for exactly-once forwarding).
        """
        if after is None:
            after = 0
        if isinstance(after, bool) or not isinstance(after, int) or after < 0:
            raise InputError(f"changes: after must be a change's seq (0 or more), not {after!r}")
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE:
            raise InputError(f"changes: limit must be from 1 to {MAX_PAGE}, not {limit!r}")
        deadline = time.monotonic() + _timeout(wait, "changes")
        store = self.store
        while True:
            mark = store.change_mark()
            found = store.changes(after, limit)
            left = deadline - time.monotonic()
            if found or left <= 0:
                break
            store.wait_change(None, mark, left)
        items = [
            Change(c.seq, c.at, c.instance_id, c.workflow, RunStatus(c.status), c.at_statements)
            for c in found
        ]
        return ChangePage(items, items[-1].seq if items else after)


def _said(until: Any) -> str:
    if until is None:
        return "an end (finished or cancelled)"
    if isinstance(until, RunStatus):
        return f"status {until.value}"
    if isinstance(until, str):
        return f"statement {until!r}"
    return "status " + " or ".join(sorted(s.value for s in until))
