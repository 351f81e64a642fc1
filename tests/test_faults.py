"""A failure at every commit point never strands an instance (SQLite and PostgreSQL).

A store that fails its N-th commit — before it applies (the database refused it), or after it
applied (the answer was lost: the outcome is unknown to the caller) — is wrapped around a real
store, for every commit point of ``start``, ``send``, the worker (a runnable instance and a due
timer) and every operator call (data repairs and erasures included). After each fault the
store is healed and workers run until nothing is left to do, with time moved past every lease
and backoff. Then:

- a call that raised applied nothing it did not also report (an event is in history at most
  once; a repeat with the same idempotency key applies nothing again);
- every instance is somewhere an operator can see and act: waiting, finished, paused,
  cancelled, or failed with its reason; never running with no worker able to move it;
- a failed one is repaired by ``retry`` (or the fault was in the operator call itself).

Also here: a step whose data cannot be written is recorded like a failing step (attempts,
``last_error``, a history row, backoff, failed past its policy); listeners that raise change
nothing; an accepted event is never reported as refused when the run after it loses its lease.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

import pytest
from freezegun import freeze_time

from gorch import (
    CallbackRequest,
    Engine,
    GorchError,
    Listener,
    On,
    RetryPolicy,
    RunStatus,
    S,
    Step,
    Timeout,
    Wait,
    Worker,
)
from gorch.store import Store, Write

FAST = RetryPolicy(max_attempts=3, initial=timedelta(seconds=1), jitter=0)
T0 = datetime(2026, 3, 1, tzinfo=UTC)
WORK_FAILS = {"now": False}


class Injected(Exception):
    """The database fault we inject."""


class Faulty:
    """A real store whose ``commit`` number ``fail_at`` (1-based, counted from ``arm()``) fails
    once: before applying (``after=False``) or after applying (``after=True``)."""

    def __init__(self, inner: Store) -> None:
        self.inner = inner
        self.count = 0
        self.fail_at = 0
        self.after = False
        self.fired = False
        self.failed: Write | None = None

    def arm(self, fail_at: int, *, after: bool) -> None:
        self.count, self.fail_at, self.after, self.fired = 0, fail_at, after, False

    def disarm(self) -> None:
        self.fail_at = 0

    def commit(self, write: Write) -> int:
        return self._apply(write, lambda: self.inner.commit(write))

    def erase(self, write: Write, history: Any, keys: Any) -> int:
        """An erasure is a commit point too (one transaction with its rewrites)."""
        return self._apply(write, lambda: self.inner.erase(write, history, keys))

    def _apply(self, write: Write, apply: Callable[[], int]) -> int:
        self.count += 1
        if self.count == self.fail_at and not self.fired:
            self.fired = True
            self.failed = write
            if self.after:
                apply()
            raise Injected(
                f"injected fault at commit {self.count} ({'after' if self.after else 'before'})"
            )
        return apply()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class Recorder:
    """A Handler with a lifecycle; it records setups and teardowns in the workflow's log."""

    type = "recorder"

    def __init__(self, log: list[str]) -> None:
        self.log = log

    def setup(self, req: CallbackRequest) -> str:
        self.log.append(f"setup {req.name}")
        return ""

    def handle(self, req: CallbackRequest, input: Any) -> object:
        return input

    def teardown(self, req: CallbackRequest, handled: bool) -> None:
        self.log.append(f"teardown {req.name}")


@dataclass
class Job:
    personal_data: ClassVar[tuple[str, ...]] = ("log",)  # for delete_data's commit point

    log: list[str] = field(default_factory=list)

    def definition(self) -> Any:
        return S(
            Step("prepare", lambda: self.log.append("prepare")),
            Wait(
                "for go",
                On("Go", self.go),
                On("Watch", Recorder(self.log)),
                Timeout("late", 60, Step("note lateness", lambda: self.log.append("late"))),
            ),
            Step("work", self.work),
            Wait("for end", On("End", Recorder(self.log))),
            Step("wrap up", lambda: self.log.append("wrap up")),
        )

    def go(self, n: int) -> int:
        self.log.append(f"go {n}")
        return n

    def work(self) -> None:
        if WORK_FAILS["now"]:
            raise RuntimeError("work failed")
        self.log.append("work")


@pytest.fixture(params=["sqlite", "postgres"])
def store_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def faulty(sql_url: str) -> Iterator[Faulty]:
    from gorch.store.sql import SQLStore

    store = SQLStore(sql_url)
    yield Faulty(store)
    store.close()


@pytest.fixture
def clock() -> Iterator[Any]:
    with freeze_time(T0) as frozen:
        yield frozen


def settle(engine: Engine, clock: Any) -> None:
    """Workers run until nothing is due, with time moved past leases and backoffs."""
    worker = Worker(engine)
    for _ in range(20):
        clock.tick(timedelta(seconds=130))
        if worker.run_once() == 0 and not runnable(engine):
            return
    raise AssertionError("the workers never ran out of work")


def runnable(engine: Engine) -> bool:
    return any(i.status is RunStatus.RUNNING for i in engine.list(limit=1000).items)


def assert_can_act(engine: Engine, id: str) -> None:
    """The instance is where an operator can see and act; a failed one has its reason and is
    repaired by retry."""
    inst = engine.get(id)
    assert inst.status is not RunStatus.RUNNING, (id, inst)
    if inst.status is RunStatus.FAILED:
        assert inst.last_error, inst
        WORK_FAILS["now"] = False
        engine.retry(id)
        assert engine.get(id).status in (RunStatus.WAITING, RunStatus.FINISHED)


def events(engine: Engine, id: str, name: str) -> int:
    return sum(1 for h in engine.history(id) if h.kind == "event" and h.name == name)


# Each operation: how to bring an instance to where the operation applies, and the operation.
Prepare = Callable[[Engine, str, Any], None]
Act = Callable[[Engine, str, Any], Any]


def _waiting(engine: Engine, id: str, clock: Any) -> None:
    engine.start("job", Job(), id)


def _at_end(engine: Engine, id: str, clock: Any) -> None:
    engine.start("job", Job(), id)
    engine.send(id, "Go", 1)


def _runnable(engine: Engine, id: str, clock: Any) -> None:
    engine.start("job", Job(), id, defer=True)


def _timer_due(engine: Engine, id: str, clock: Any) -> None:
    engine.start("job", Job(), id)
    clock.tick(timedelta(seconds=61))


def _paused(engine: Engine, id: str, clock: Any) -> None:
    engine.start("job", Job(), id)
    engine.pause(id)


def _failed(engine: Engine, id: str, clock: Any) -> None:
    engine.start("job", Job(), id)
    WORK_FAILS["now"] = True
    engine.send(id, "Go", 1)
    settle(engine, clock)
    assert engine.get(id).status is RunStatus.FAILED
    WORK_FAILS["now"] = False


def _nothing(engine: Engine, id: str, clock: Any) -> None:
    pass


def _worker(engine: Engine, id: str, clock: Any) -> Any:
    return Worker(engine).run_once()


OPERATIONS: dict[str, tuple[Prepare, Act]] = {
    "start": (_nothing, lambda e, id, c: e.start("job", Job(), id)),
    "send": (_waiting, lambda e, id, c: e.send(id, "Go", 7, key="k-1")),
    "worker: runnable": (_runnable, _worker),
    "worker: timer": (_timer_due, _worker),
    "goto": (_waiting, lambda e, id, c: e.goto(id, "for end")),
    "pause": (_waiting, lambda e, id, c: e.pause(id)),
    "unpause": (_paused, lambda e, id, c: e.unpause(id)),
    "cancel": (_at_end, lambda e, id, c: e.cancel(id)),
    "retry": (_failed, lambda e, id, c: e.retry(id)),
    "set_data": (_waiting, lambda e, id, c: e.set_data(id, {"log": ["repaired"]})),
    "delete_data": (_at_end, lambda e, id, c: e.delete_data(id)),
}


def commits_of(engine: Engine, faulty: Faulty, op: str, clock: Any) -> int:
    prepare, act = OPERATIONS[op]
    prepare(engine, "probe", clock)
    faulty.arm(0, after=False)
    act(engine, "probe", clock)
    return faulty.count


@pytest.mark.parametrize("op", list(OPERATIONS))
def test_a_fault_at_every_commit_point_leaves_an_instance_an_operator_can_act_on(
    faulty: Faulty, clock: Any, op: str
) -> None:
    engine = Engine(faulty, {"job": Job}, retry=FAST, lease=timedelta(seconds=30))  # type: ignore[arg-type]
    prepare, act = OPERATIONS[op]
    points = commits_of(engine, faulty, op, clock)
    assert points >= 1
    for n in range(1, points + 1):
        for after in (False, True):
            id = f"{op}-{n}-{'after' if after else 'before'}".replace(" ", "_").replace(":", "")
            WORK_FAILS["now"] = False
            prepare(engine, id, clock)
            faulty.arm(n, after=after)
            try:
                act(engine, id, clock)
                raised = None
            except Injected as exc:
                raised = exc
            except GorchError as exc:  # a refusal the fault caused (e.g. an unknown outcome)
                raised = exc
            faulty.disarm()
            assert faulty.fired and faulty.failed is not None, (id, "the fault was not reached")
            if not after and any(h.kind == "step" for h in faulty.failed.history):
                # The checkpoint after a step failed: recorded at once like a failing step,
                # visible to an operator, not left running with no trace until a lease expires.
                inst = engine.get(id)
                assert inst.attempts == 1 and inst.next_attempt_at is not None, (id, inst)
                assert "could not be written" in (inst.last_error or ""), (id, inst)
                assert "injected fault" in (inst.last_error or ""), (id, inst)
                assert inst.status is RunStatus.RUNNING and inst.version > 0
                assert "step_failed" in [h.kind for h in engine.history(id)], id
            settle(engine, clock)
            if op == "start" and raised is not None and engine.store.get(id) is None:
                continue  # refused before anything was stored: nothing to act on
            assert_can_act(engine, id)
            if op.startswith("send"):
                assert events(engine, id, "Go") <= 1, id
                # a repeat with the same key applies nothing again, and answers as the first
                if events(engine, id, "Go") == 1:
                    assert engine.send(id, "Go", 7, key="k-1") == 7
                    assert events(engine, id, "Go") == 1


# -- a failure after user code ran is that code's failure -----------------------------------


@dataclass
class Unstorable:
    """Its step leaves a value in the data that JSON cannot hold (an int past 64 bits)."""

    n: int = 0
    fix: bool = False

    def definition(self) -> Any:
        return S(Step("grow", self.grow), Wait("for end", On("End")))

    def grow(self) -> None:
        self.n = 3 if self.fix else 2**70


def test_a_step_whose_data_cannot_be_written_is_recorded_like_a_failing_step(
    faulty: Faulty, clock: Any
) -> None:
    engine = Engine(faulty, {"u": Unstorable}, retry=FAST)  # type: ignore[arg-type]
    inst = engine.start("u", Unstorable(), "u-1")
    assert inst.status is RunStatus.RUNNING and inst.attempts == 1
    assert "the checkpoint after 'grow' could not be written" in (inst.last_error or "")
    assert "SerializationError" in (inst.last_error or "")
    assert inst.next_attempt_at is not None
    # no "step" entry: that means a step whose checkpoint committed, and this one's did not
    assert [(h.kind, h.name) for h in engine.history("u-1")] == [
        ("started", "u"),
        ("step_failed", "grow"),
    ]
    settle(engine, clock)  # the worker retries it with backoff; past the policy: failed
    inst = engine.get("u-1")
    assert inst.status is RunStatus.FAILED and inst.attempts == FAST.max_attempts
    assert inst.data.n == 0  # the last checkpoint's data, not the step's unstorable change
    kinds = [h.kind for h in engine.history("u-1")]
    assert kinds.count("step_failed") == FAST.max_attempts and kinds[-1] == "failed"


def test_an_event_whose_handler_leaves_unstorable_data_is_refused_and_changes_nothing(
    faulty: Faulty,
) -> None:
    @dataclass
    class Greedy:
        n: int = 0

        def definition(self) -> Any:
            return S(Wait("w", On("Grow", self.grow)), Wait("end", On("End")))

        def grow(self) -> None:
            self.n = 2**70

    engine = Engine(faulty, {"g": Greedy})  # type: ignore[arg-type]
    engine.start("g", Greedy(), "g-1")
    before = engine.store.get("g-1")
    with pytest.raises(GorchError) as info:
        engine.send("g-1", "Grow")
    assert "was not applied" in str(info.value) and "cannot be stored" in str(info.value)
    after = engine.store.get("g-1")
    assert after is not None and before is not None and after.version == before.version


class Raising(Listener):
    def before_step(self, *args: Any) -> None:
        raise RuntimeError("listener down")

    def after_step(self, *args: Any) -> None:
        raise RuntimeError("listener down")

    def on_status(self, *args: Any) -> None:
        raise RuntimeError("listener down")


def test_listeners_that_raise_change_nothing(faulty: Faulty, clock: Any) -> None:
    engine = Engine(faulty, {"job": Job}, listeners=[Raising()])  # type: ignore[arg-type]
    engine.start("job", Job(), "l-1")
    engine.send("l-1", "Go", 1)
    engine.send("l-1", "End")
    inst = engine.get("l-1")
    assert inst.status is RunStatus.FINISHED
    assert inst.data.log == ["prepare", "setup Watch", "go 1", "teardown Watch", "work",
                             "setup End", "teardown End", "wrap up"]  # fmt: skip


# -- an accepted event is never reported as refused ------------------------------------------


@dataclass
class Slow:
    log: list[str] = field(default_factory=list)

    def definition(self) -> Any:
        return S(
            Wait("w", On("Go", lambda: self.log.append("go"))),
            Step("slow", self.slow),
            Wait("end", On("End")),
        )

    def slow(self) -> None:
        if not SLOW_STARTED.is_set():  # the first run of the step blocks until released
            SLOW_STARTED.set()
            assert SLOW_GO_ON.wait(20)
        self.log.append("slow")


SLOW_STARTED = threading.Event()
SLOW_GO_ON = threading.Event()


def test_send_whose_step_outlives_its_lease_reports_the_event_accepted(
    tmp_path: Path,
) -> None:
    from gorch.store.sql import SQLStore

    store = SQLStore(f"sqlite:///{tmp_path / 'slow.db'}")
    try:
        engine = Engine(store, {"slow": Slow}, lease=timedelta(seconds=0.3))
        # No lease renewals, as if this process stalled (a long GC pause, a frozen VM): the
        # lease expires under the running step and another worker takes the instance over.
        engine.keeper.watch = lambda op: None  # type: ignore[method-assign]
        engine.start("slow", Slow(), "s-1")
        SLOW_STARTED.clear()
        SLOW_GO_ON.clear()
        answer: list[Any] = []
        sender = threading.Thread(
            target=lambda: answer.append(engine.send("s-1", "Go", key="once"))
        )
        sender.start()
        assert SLOW_STARTED.wait(10)
        time.sleep(0.5)  # the lease expires; another worker takes the instance over
        other = Engine(store, {"slow": Slow}, lease=timedelta(seconds=30))
        assert Worker(other).run_once() == 1  # took it over and ran the step again
        SLOW_GO_ON.set()  # the first run of the step ends; its checkpoint cannot commit
        sender.join(20)
        assert not sender.is_alive()
        assert answer == [None]  # accepted: the handler's output, not a ConflictError
        assert engine.send("s-1", "Go", key="once") is None  # the first answer again
        history = engine.history("s-1")
        assert sum(1 for h in history if h.kind == "event" and h.name == "Go") == 1
        assert engine.get("s-1").waiting_for() == ["End"]
    finally:
        SLOW_GO_ON.set()
        store.close()
