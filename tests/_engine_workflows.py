"""Workflows and helpers shared by the engine's test modules (test_engine.py,
test_engine_reading.py, test_engine_operating.py, test_engine_worker.py).

Some workflows take their behaviour from module globals (``FAILS``, ``GATES``, ``CRASHES``,
``BARRIERS``), kept outside the workflow data, which a failing step does not change; each test
module's autouse fixture calls :func:`clean_globals` after every test.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, ClassVar

import attrs

from examples.pizza.workflow import PizzaOrder
from gorch import (
    Engine,
    For,
    Go,
    If,
    On,
    Return,
    S,
    Step,
    Timeout,
    Wait,
    WaitFor,
    clock,
    dumps,
)
from gorch.retry import RetryPolicy
from gorch.store import Store
from gorch.store.base import Write

# --------------------------------------------------------------------------------------------
# Workflows


@dataclass
class Amount:
    by: int


@dataclass
class Total:
    n: int
    by: int


@dataclass
class Counter:
    """Counts ``Add`` events until ``Stop``; then a step wraps up and the workflow finishes."""

    n: int = 0
    stopped: bool = False
    wrapped: bool = False

    def definition(self) -> Any:
        return S(
            For(
                "counting",
                not self.stopped,
                Wait("for input", On("Add", self.add), On("Stop", self.stop)),
            ),
            If(self.n > 0, "counted something", Step("wrap up", self.wrap_up)),
        )

    def add(self, amount: Amount) -> Total:
        self.n += amount.by
        return Total(self.n, amount.by)

    def stop(self) -> str:
        self.stopped = True
        return "stopped"

    def wrap_up(self) -> None:
        self.wrapped = True


@dataclass
class Nudger:
    """A loop whose wait has an event and a one-hour timeout: each turn sets a new timer."""

    pings: int = 0
    nudges: int = 0

    def definition(self) -> Any:
        return S(
            For(
                "nudging",
                self.nudges < 5,
                Wait(
                    "for ping",
                    On("Ping", self.ping),
                    Timeout("nudge", timedelta(hours=1), Step("count nudge", self.nudge)),
                ),
            ),
        )

    def ping(self) -> int:
        self.pings += 1
        return self.pings

    def nudge(self) -> None:
        self.nudges += 1


FAILS: dict[str, int] = {}
"""Failures left for the step of a Flaky instance, by its tag (kept outside the data, which a
failing step does not change)."""

TEN_SECONDS = RetryPolicy(max_attempts=5, initial=timedelta(seconds=10), jitter=0)


@dataclass
class Flaky:
    """``Go`` starts a step that fails ``FAILS[tag]`` times (after changing the data)."""

    POLICY: ClassVar[RetryPolicy | None] = TEN_SECONDS

    tag: str = ""
    went: bool = False
    calls: int = 0

    def definition(self) -> Any:
        return S(
            Wait("for go", On("Go", self.go)),
            Step("flaky", self.flaky, retry=self.POLICY),
            Wait("for end", On("End")),
        )

    def go(self) -> str:
        self.went = True
        return "going"

    def flaky(self) -> None:
        self.calls += 1  # a change the failure must not leave behind
        left = FAILS.get(self.tag, 0)
        if left > 0:
            FAILS[self.tag] = left - 1
            raise RuntimeError(f"flaky failure ({left} left)")


@dataclass
class Brittle(Flaky):
    POLICY: ClassVar[RetryPolicy | None] = RetryPolicy(
        max_attempts=2, initial=timedelta(seconds=10), jitter=0
    )


@dataclass
class Plain(Flaky):
    """No retry policy of its own: the engine's default applies."""

    POLICY: ClassVar[RetryPolicy | None] = None


@dataclass
class Eager(Flaky):
    """The failing step is the first statement: ``start`` runs it."""

    def definition(self) -> Any:
        return S(Step("flaky", self.flaky, retry=self.POLICY), Wait("for end", On("End")))


GATES: dict[str, tuple[threading.Event, threading.Event]] = {}
"""(entered, release) events of a Slow instance's step, by its tag."""
RUNS: dict[str, list[str]] = {}


@dataclass
class Slow:
    """A step that blocks until the test releases it, and a side thread waiting for Ping."""

    tag: str = ""
    pinged: bool = False
    done: bool = False

    def definition(self) -> Any:
        return S(
            Go("side", Wait("for ping", On("Ping", self.ping))),
            Wait("for go", On("Go")),
            Step("slow", self.slow),
            WaitFor("pinged", self.pinged),
        )

    def ping(self) -> str:
        self.pinged = True
        return "pong"

    def slow(self) -> None:
        RUNS.setdefault(self.tag, []).append(threading.current_thread().name)
        entered, release = GATES[self.tag]
        entered.set()
        assert release.wait(10), "the test never released the step"
        self.done = True


@dataclass
class Done:
    """Finishes at once."""

    ran: bool = False

    def definition(self) -> Any:
        return S(Step("run", self.run), Return())

    def run(self) -> None:
        self.ran = True


CRASHES: dict[str, int] = {}
"""How many times the step of a Crashy instance kills its process, by tag."""


@dataclass
class Crashy:
    tag: str = ""
    calls: int = 0

    def definition(self) -> Any:
        return S(
            Wait("for go", On("Go")),
            Step("crashy", self.crashy),
            Wait("for end", On("End")),
        )

    def crashy(self) -> None:
        self.calls += 1
        if CRASHES.get(self.tag, 0) > 0:
            CRASHES[self.tag] -= 1
            raise SystemExit("the process dies in the middle of the step")


BARRIERS: dict[str, threading.Barrier] = {}


@dataclass
class Vote:
    """One wait for one ``Vote``; the handler waits until both racing senders are inside."""

    tag: str = ""
    voter: str = ""

    def definition(self) -> Any:
        return S(Wait("for a vote", On("Vote", self.vote)), Wait("for end", On("End")))

    def vote(self, who: str) -> str:
        BARRIERS[self.tag].wait(10)
        self.voter = who
        return f"{who} voted"


WORKFLOWS: dict[str, type] = {
    "counter": Counter,
    "pizza": PizzaOrder,
    "nudger": Nudger,
    "flaky": Flaky,
    "brittle": Brittle,
    "plain": Plain,
    "eager": Eager,
    "slow": Slow,
    "done": Done,
    "crashy": Crashy,
    "vote": Vote,
}

PEPPERONI = {"pizza": {"name": "pepperoni", "qty": 2}}


# --------------------------------------------------------------------------------------------
# Helpers


def clean_globals() -> None:
    """Forget what a test left in the globals, releasing any step still blocked on them."""
    FAILS.clear()
    RUNS.clear()
    CRASHES.clear()
    for barrier in BARRIERS.values():
        barrier.abort()
    BARRIERS.clear()
    for _, release in GATES.values():
        release.set()
    GATES.clear()


def snapshot(engine: Engine, id: str) -> dict[str, Any]:
    inst = engine.get(id)
    return {
        "version": inst.version,
        "status": inst.status,
        "state": dumps(inst.state),
        "data": dumps(inst.data),
        "attempts": inst.attempts,
        "next_attempt_at": inst.next_attempt_at,
        "last_error": inst.last_error,
        "timers": inst.timers,
        "history": len(engine.history(id)),
        "row": engine.store.get(id),
    }


@contextmanager
def unchanged(engine: Engine, *ids: str) -> Iterator[None]:
    """Assert that the block changes nothing of the instances ``ids``."""
    before = {i: snapshot(engine, i) for i in ids}
    yield
    after = {i: snapshot(engine, i) for i in ids}
    assert after == before


def kinds(engine: Engine, id: str) -> list[str]:
    return [f"{h.kind}:{h.name}" if h.name else h.kind for h in engine.history(id)]


def lease(store: Store, id: str, owner: str, expires_in: timedelta) -> None:
    """Commit a lease of ``owner`` on the instance, as another process would."""
    row = store.get(id)
    assert row is not None
    held = attrs.evolve(row, lease_owner=owner, lease_expires=clock.now() + expires_in)
    store.commit(Write(held, row.version))
