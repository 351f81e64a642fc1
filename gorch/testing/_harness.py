"""The Harness: an engine, a worker and a frozen clock, usable with or without pytest.

Nothing here imports pytest; freezegun is imported only when time is frozen (``start`` given).

Frozen time and third-party libraries: freezegun swaps ``datetime.datetime``/``date`` and the
``time`` functions for fakes, and on start it also rewrites every already-imported module that
holds the real ones (``from time import time as _time``) -- calling ``getattr`` on each name of
each module, which imports the lazy submodules of packages such as pydantic, while frozen.
A module first imported while frozen keeps the fakes for good (as class bases, C-level type
checks, dictionary keys). So the Harness builds its store, engine and worker *before* it
freezes time (the store's libraries are imported as they are in production), and freezes with
:data:`REAL_TIME_MODULES` on freezegun's ignore list: those modules are left as they are, and
their own clocks keep real time -- SQLAlchemy's pool timeout and psycopg's connection and
LISTEN timeouts (with a frozen ``time.monotonic`` their waits never end), pytest's
``--durations``. gorch itself reads the time only through :func:`gorch.clock.now`
(``datetime.now``), which stays frozen.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any

from gorch import clock
from gorch.engine import Engine, Instance, RunStatus, Worker
from gorch.state import MAIN_THREAD, ThreadStatus
from gorch.store import MemoryStore, Store

__all__ = ["REAL_TIME_MODULES", "START", "Harness"]

START = datetime(2026, 1, 1, tzinfo=UTC)
"""Where frozen time starts."""

REAL_TIME_MODULES: tuple[str, ...] = (
    "sqlalchemy",
    "sqlmodel",
    "pydantic",
    "pydantic_core",
    "psycopg",
    "psycopg_binary",
    "psycopg_pool",
    "_pytest",
)
"""Module prefixes freezegun leaves alone under a Harness (see the module docstring)."""

# Running instances are read in pages of this size when looking for the next due retry.
_PAGE = 500


def frozen_time(start: datetime) -> Any:
    """freezegun's ``freeze_time(start)`` (not started), leaving :data:`REAL_TIME_MODULES` be.

    Raises:
        ImportError: freezegun is not installed (it comes with the ``testing`` extra).
    """
    try:
        from freezegun import freeze_time
    except ImportError as exc:
        raise ImportError(
            'frozen time needs freezegun: pip install "gorch[testing]" '
            "(or make the Harness with start=None to leave time alone)",
            name="freezegun",
        ) from exc
    return freeze_time(start, ignore=list(REAL_TIME_MODULES))


class Harness:
    """An engine, a worker and a frozen clock, with helpers for asserting where threads wait.

    Args:
        workflows: registered workflow classes by name.
        store: ``"memory"`` (default), ``"sqlite"`` (a file in a temporary directory; needs
            the ``sql`` extra), or a :class:`~gorch.store.Store`.
        start: the frozen clock's first instant (None: do not freeze time; then freezegun is
            not needed).
        engine_options: passed on to :class:`~gorch.Engine`; ``services={...}`` hands the
            steps fakes of the application's services (``gorch.context().services``).

    Raises:
        ValueError: ``store`` is not one of the above.
        ImportError: freezegun (``start`` given) or the SQL store (``"sqlite"``) is missing.
    """

    def __init__(
        self,
        workflows: Mapping[str, type],
        *,
        store: str | Store = "memory",
        start: datetime | None = START,
        **engine_options: Any,
    ) -> None:
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._freezer: Any = None
        self.clock: Any = None
        if isinstance(store, str) and store not in ("memory", "sqlite"):
            raise ValueError(f"store must be 'memory', 'sqlite' or a Store, not {store!r}")
        freezer = frozen_time(start) if start is not None else None  # refuse before building
        try:
            # Built in real time, before freezing: see the module docstring.
            if store == "memory":
                self.store: Store = MemoryStore()
            elif store == "sqlite":
                self.store = self._sqlite()
            else:
                self.store = store  # type: ignore[assignment]
            self.engine = Engine(self.store, workflows, **engine_options)
            self.worker = Worker(self.engine)
            if freezer is not None:
                self.clock = freezer.start()
                self._freezer = freezer
        except BaseException:
            self.close()  # a refused harness leaves time, files and connections as they were
            raise

    def _sqlite(self) -> Store:
        try:
            from gorch.store.sql import SQLStore
        except ImportError as exc:
            raise ImportError(
                f'Harness(store="sqlite") needs the SQL store: pip install "gorch[sql]" ({exc})',
                name=exc.name,
            ) from exc
        self._tmp = tempfile.TemporaryDirectory(prefix="gorch-test-")
        return SQLStore(f"sqlite:///{Path(self._tmp.name) / 'gorch.db'}")

    # -- lifecycle ---------------------------------------------------------------------------

    def close(self) -> None:
        """Let time run again and drop the store (and its temporary folder)."""
        if self._freezer is not None:
            self._freezer.stop()
            self._freezer = None
        store = getattr(self, "store", None)
        if store is not None:
            store.close()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> Harness:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- acting ------------------------------------------------------------------------------

    def start(self, workflow: str, data: Any, id: str | None = None) -> Instance:
        """Start an instance and run it until it blocks."""
        return self.engine.start(workflow, data, id)

    def send(self, id: str, event: str, payload: Any = None, **options: Any) -> Any:
        """Send an event (see :meth:`gorch.Engine.send`)."""
        return self.engine.send(id, event, payload, **options)

    def get(self, id: str) -> Instance:
        return self.engine.get(id)

    def data(self, id: str) -> Any:
        """The instance's workflow object, as stored."""
        return self.engine.get(id).data

    def run_worker(self) -> int:
        """Let the worker do everything due now; returns how many items it did."""
        return self.worker.run_once()

    def advance(self, delta: timedelta | None = None, **kw: float) -> int:
        """Move time forward (``advance(hours=24)``), doing on the way what real time would.

        The clock stops at each moment something falls due -- a timer
        (:meth:`Store.timers <gorch.store.Store.timers>`) or a step's retry (the
        ``next_attempt_at`` of a running instance) -- in due order, and the worker runs there;
        what that work arms (a loop's next timer, the next retry) is found on the next stop.
        Then the clock moves to the end and the worker runs once more. So a daily timer fires
        twice in ``advance(days=2, hours=23)``, and each time ``clock.now()`` is its due time.

        Returns:
            How many items the worker did in all.

        Raises:
            RuntimeError: the Harness does not control time (made with ``start=None``).
            ValueError: ``delta`` is negative.
        """
        if self.clock is None:
            raise RuntimeError("this Harness does not control time (it was made with start=None)")
        step = delta if delta is not None else timedelta(**kw)
        if step < timedelta(0):
            raise ValueError(f"time only moves forward; got {step}")
        target = self.now() + step
        done = 0
        while True:
            done += self.run_worker()
            due = self._next_due(self.now(), target)
            if due is None:
                break
            self.clock.move_to(due)
        if self.now() < target:
            self.clock.move_to(target)
            done += self.run_worker()
        return done

    def _next_due(self, after: datetime, until: datetime) -> datetime | None:
        """The soonest timer or retry due in ``(after, until]``, or None.

        Timers come soonest first. Retries are only on ``running`` instances (read page by
        page, so waiting and finished instances are not read at all)."""
        soonest: datetime | None = None
        for timer in self.store.timers():
            if timer.due_at > until:
                break
            if timer.due_at > after:
                soonest = timer.due_at
                break
        page = self.store.list_instances(status=[RunStatus.RUNNING.value], limit=_PAGE)
        while page:
            for row in page:
                at = row.next_attempt_at
                if at is not None and after < at <= until and (soonest is None or at < soonest):
                    soonest = at
            if len(page) < _PAGE:
                break
            last = page[-1]
            page = self.store.list_instances(
                status=[RunStatus.RUNNING.value], limit=_PAGE, after=(last.created_at, last.id)
            )
        return soonest

    def now(self) -> datetime:
        """The current time as gorch sees it (:func:`gorch.clock.now`)."""
        return clock.now()

    # -- asserting ---------------------------------------------------------------------------

    def waits(self, id: str) -> dict[str, list[str]]:
        """What each thread waits for: ``{thread id: [event names]}`` (a thread waiting on a
        ``WaitFor`` shows ``["<condition name>"]``; a thread that is not blocked, ``[]``)."""
        out: dict[str, list[str]] = {}
        for t in self.engine.get(id).state.threads:
            if t.status is ThreadStatus.WAITING_EVENT:
                out[t.id] = sorted(e.req.name for e in t.wait_events if not e.handled)
            elif t.status is ThreadStatus.WAITING_CONDITION:
                out[t.id] = [t.cur_step]
            else:
                out[t.id] = []
        return out

    def assert_waiting(self, id: str, *events: str, thread: str = MAIN_THREAD) -> None:
        """Assert that ``thread`` of ``id`` waits for (at least) each of ``events``."""
        waits = self.waits(id)
        if thread not in waits:
            raise AssertionError(
                f"instance {id!r} has no thread {thread!r}; its threads wait for {waits}"
            )
        missing = [e for e in events if e not in waits[thread]]
        if missing or not waits[thread]:
            raise AssertionError(
                f"thread {thread!r} of instance {id!r} does not wait for {missing or events}; "
                f"it waits for {waits[thread]} (all threads: {waits})"
            )

    def assert_status(self, id: str, status: RunStatus | str) -> None:
        """Assert that ``id`` is in ``status``; the failure names the last step error."""
        found = self.engine.get(id).status
        if found != RunStatus(status):
            inst = self.engine.get(id)
            raise AssertionError(
                f"instance {id!r} is {found.value}, not {RunStatus(status).value}"
                + (f" (last error: {inst.last_error})" if inst.last_error else "")
            )

    def kinds(self, id: str) -> list[str]:
        """The instance's history as ``kind:name`` strings, oldest first."""
        return [f"{h.kind}:{h.name}" if h.name else h.kind for h in self.engine.history(id)]
