"""Test workflows in a few lines: an engine on a memory or SQLite store, time you move by hand.

Enable the fixtures in your ``conftest.py``::

    pytest_plugins = ["gorch.testing"]

then::

    def test_cart_times_out(gorch):
        h = gorch({"pizza": PizzaOrder})           # time is frozen for the test
        h.start("pizza", PizzaOrder(), id="o1")
        h.advance(hours=23)
        h.assert_waiting("o1", "AddToCart")         # the 24-hour timer has not fired
        h.advance(hours=2)                          # it has now: the worker fired it
        h.assert_status("o1", RunStatus.FINISHED)

``Harness`` works without pytest too: ``with Harness({"pizza": PizzaOrder}) as h: ...``.
Time moves with freezegun (a development dependency of gorch).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any

import pytest

from gorch.engine import Engine, Instance, RunStatus, Worker
from gorch.state import MAIN_THREAD, ThreadStatus
from gorch.store import MemoryStore, Store

__all__ = ["START", "Harness", "gorch", "gorch_time"]

START = datetime(2026, 1, 1, tzinfo=UTC)
"""Where frozen time starts."""


class Harness:
    """An engine, a worker and a frozen clock, with helpers for asserting where threads wait.

    Args:
        workflows: registered workflow classes by name.
        store: ``"memory"`` (default), ``"sqlite"`` (a file in a temporary directory), or a
            :class:`~gorch.store.Store`.
        start: the frozen clock's first instant (None: do not freeze time).
        engine_options: passed on to :class:`~gorch.Engine`.
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
        if start is not None:
            from freezegun import freeze_time

            self._freezer = freeze_time(start)
            self.clock = self._freezer.start()
        try:
            if store == "memory":
                self.store: Store = MemoryStore()
            elif store == "sqlite":
                from gorch.store.sql import SQLStore

                self._tmp = tempfile.TemporaryDirectory(prefix="gorch-test-")
                self.store = SQLStore(f"sqlite:///{Path(self._tmp.name) / 'gorch.db'}")
            else:
                self.store = store  # type: ignore[assignment]
            self.engine = Engine(self.store, workflows, **engine_options)
        except BaseException:
            self.close()  # a refused harness leaves time, files and connections as they were
            raise
        self.worker = Worker(self.engine)

    # -- lifecycle ---------------------------------------------------------------------------

    def close(self) -> None:
        """Stop the clock and drop the store."""
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
        """Move time forward (``advance(hours=24)``) and let the worker fire what came due.

        Returns how many items the worker did.
        """
        if self.clock is None:
            raise RuntimeError("this Harness does not control time (it was made with start=None)")
        step = delta if delta is not None else timedelta(**kw)
        if step < timedelta(0):
            raise ValueError(f"time only moves forward; got {step}")
        self.clock.tick(step)
        return self.run_worker()

    def now(self) -> datetime:
        from gorch import clock

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


@pytest.fixture
def gorch() -> Iterator[Callable[..., Harness]]:
    """A factory of :class:`Harness` objects, closed after the test:
    ``h = gorch({"pizza": PizzaOrder}, store="sqlite")``."""
    made: list[Harness] = []

    def make(workflows: Mapping[str, type], **options: Any) -> Harness:
        h = Harness(workflows, **options)
        made.append(h)
        return h

    yield make
    for h in reversed(made):
        h.close()


@pytest.fixture
def gorch_time() -> Iterator[Any]:
    """Frozen time at :data:`START` for the test; ``gorch_time.tick(timedelta(hours=1))``."""
    from freezegun import freeze_time

    with freeze_time(START) as frozen:
        yield frozen
