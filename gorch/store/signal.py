"""How a store tells the waiters of one process that an instance may have changed.

A :class:`ChangeSignal` is a counter and a condition. Every commit of the store that changes
an instance's status or the statements it waits at fires it with the instance's id; so does
whatever hears other processes' commits (PostgreSQL's ``LISTEN``, a look at a SQLite file).
A waiter takes a :meth:`~ChangeSignal.mark` before it reads what it waits to see change, then
:meth:`~ChangeSignal.wait`\\ s for a firing after that mark: a commit between its read and its
wait is never missed, and nothing touches the database while nothing changes.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict

__all__ = ["ChangeSignal"]


class ChangeSignal:
    """Firings counted per instance.

    The firing count of the last :data:`REMEMBERED` instances that fired is kept; an instance
    forgotten for room counts as having fired then (its waiters wake, read, and wait again).
    :meth:`fire_all` wakes every waiter (after a gap in what was heard, such as a lost
    ``LISTEN`` connection).
    """

    REMEMBERED = 4096

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._count = 0  # firings so far
        self._floor = 0  # every instance counts as fired at this count (fire_all, forgetting)
        self._last: OrderedDict[str, int] = OrderedDict()  # instance -> count at its last firing

    def mark(self) -> int:
        """The firing count now: pass it to :meth:`wait`."""
        with self._cond:
            return self._count

    def fire(self, instance_id: str) -> None:
        """``instance_id`` may have changed: wake who waits on it, or on any instance."""
        with self._cond:
            self._count += 1
            last = self._last
            last[instance_id] = self._count
            last.move_to_end(instance_id)
            if len(last) > self.REMEMBERED:
                _, count = last.popitem(last=False)
                self._floor = max(self._floor, count)
            self._cond.notify_all()

    def fire_all(self) -> None:
        """Anything may have changed: wake every waiter."""
        with self._cond:
            self._count += 1
            self._floor = self._count
            self._cond.notify_all()

    def _fired(self, instance_id: str | None) -> int:
        if instance_id is None:
            return self._count
        return max(self._floor, self._last.get(instance_id, 0))

    def wait(self, instance_id: str | None, mark: int, timeout: float) -> bool:
        """Block up to ``timeout`` seconds until ``instance_id`` (None: any instance) fires
        after ``mark``; whether it did."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._fired(instance_id) <= mark:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
            return True
