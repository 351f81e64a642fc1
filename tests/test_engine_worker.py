"""The engine's background work on every store: timers, retries of failing steps (by the
worker, and by the operator's retry and goto), leases (BusyError, crashed holders) and the
worker itself.
"""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from typing import Any

import pytest
from _engine_workflows import (
    CRASHES,
    FAILS,
    GATES,
    PEPPERONI,
    RUNS,
    WORKFLOWS,
    Brittle,
    Counter,
    Crashy,
    Eager,
    Flaky,
    Nudger,
    Plain,
    Slow,
    kinds,
    lease,
    unchanged,
)

from examples.pizza.workflow import PizzaOrder
from gorch import (
    MAIN_THREAD,
    BusyError,
    Engine,
    InstanceStatusError,
    RunStatus,
    Worker,
    clock,
)
from gorch.engine import Listener
from gorch.retry import RetryPolicy
from gorch.store import Store
from gorch.store.base import TimerRecord, Write
from gorch.testing import START

pytestmark = pytest.mark.usefixtures("engine_globals")  # tests/conftest.py


# --------------------------------------------------------------------------------------------
# timers


def test_the_cart_timeout_fires_after_24_hours(engine: Engine, worker: Worker, gorch_time):
    engine.start("pizza", PizzaOrder(), id="o1")
    engine.send("o1", "AddToCart", PEPPERONI)

    gorch_time.tick(timedelta(hours=23))
    assert worker.run_once() == 0
    inst = engine.get("o1")
    assert inst.status is RunStatus.WAITING
    assert "cart timed out" in inst.waiting_for()
    assert len(engine.store.timers("o1")) == 1

    gorch_time.tick(timedelta(hours=2))
    assert worker.run_once() >= 1
    inst = engine.get("o1")
    assert inst.status is RunStatus.FINISHED
    assert inst.data.status == "expired"
    assert inst.data.log == ["order opened", "cart timed out"]
    assert engine.store.timers("o1") == []
    assert engine.store.timers() == []
    assert kinds(engine, "o1").count("timer:cart timed out") == 1
    assert kinds(engine, "o1")[-3:] == ["timer:cart timed out", "step:expire order", "finished"]
    timer = next(h for h in engine.history("o1") if h.kind == "timer")
    assert timer.at == START + timedelta(hours=25)

    gorch_time.tick(timedelta(hours=48))
    assert worker.run_once() == 0


def test_a_stale_timer_from_an_earlier_loop_turn_is_dropped(
    engine: Engine, worker: Worker, gorch_time
) -> None:
    store = engine.store
    engine.start("nudger", Nudger(), id="n1")
    [old] = store.timers("n1")
    assert old.due_at == START + timedelta(hours=1)

    gorch_time.tick(timedelta(minutes=30))
    assert engine.send("n1", "Ping") == 1  # the loop turns: a new wait, a new timer
    [current] = store.timers("n1")
    assert current.pc != old.pc
    assert current.due_at == START + timedelta(minutes=90)

    # a timer row of the earlier turn survives (as if written by a racing process)
    stale = TimerRecord("n1", MAIN_THREAD, "nudge", old.pc, START + timedelta(hours=1))
    assert stale == old
    row = store.get("n1")
    assert row is not None
    store.commit(Write(row, row.version, timers=[stale, current]))
    assert store.timers("n1") == [stale, current]

    gorch_time.tick(timedelta(minutes=31))  # the stale one is due, the current one is not
    worker.run_once()
    inst = engine.get("n1")
    assert inst.data == Nudger(pings=1, nudges=0)
    assert inst.status is RunStatus.WAITING
    assert store.timers("n1") == [current]
    assert "timer:nudge" not in kinds(engine, "n1")

    gorch_time.tick(timedelta(minutes=30))  # now the current one is due
    assert worker.run_once() >= 1
    inst = engine.get("n1")
    assert inst.data == Nudger(pings=1, nudges=1)
    assert kinds(engine, "n1").count("timer:nudge") == 1
    [nxt] = store.timers("n1")
    assert nxt.pc != current.pc
    assert nxt.due_at == START + timedelta(minutes=151)
    assert worker.run_once() == 0
    assert engine.get("n1").data.nudges == 1


def test_a_timer_fires_when_exactly_due(engine: Engine, worker: Worker, gorch_time) -> None:
    engine.start("nudger", Nudger(), id="n1")
    gorch_time.tick(timedelta(minutes=59, seconds=59))
    assert worker.run_once() == 0
    gorch_time.tick(timedelta(seconds=1))
    assert worker.run_once() == 1
    assert engine.get("n1").data.nudges == 1


def test_timers_fire_once_each_turn(engine: Engine, worker: Worker, gorch_time) -> None:
    engine.start("nudger", Nudger(), id="n1")
    for turn in range(1, 6):
        gorch_time.tick(timedelta(minutes=61))
        worker.run_once()
        assert engine.get("n1").data.nudges == turn
    assert engine.get("n1").status is RunStatus.FINISHED
    assert kinds(engine, "n1").count("timer:nudge") == 5
    assert engine.store.timers("n1") == []


# --------------------------------------------------------------------------------------------
# retries


def test_a_failing_step_is_retried_with_backoff(engine: Engine, worker: Worker, gorch_time):
    engine.start("flaky", Flaky(tag="f1"), id="f1")
    FAILS["f1"] = 2
    assert engine.send("f1", "Go") == "going"  # the step's failure does not fail the send

    inst = engine.get("f1")
    assert inst.status is RunStatus.RUNNING
    assert inst.attempts == 1
    assert inst.last_error == "RuntimeError: flaky failure (2 left)"
    assert inst.next_attempt_at == START + timedelta(seconds=10)
    # the event is committed; the failed step's change to the data is not
    assert inst.data == Flaky(tag="f1", went=True, calls=0)

    gorch_time.tick(timedelta(seconds=9))
    with unchanged(engine, "f1"):
        assert worker.run_once() == 0

    gorch_time.tick(timedelta(seconds=1))
    assert worker.run_once() == 1
    inst = engine.get("f1")
    assert inst.status is RunStatus.RUNNING
    assert inst.attempts == 2
    assert inst.last_error == "RuntimeError: flaky failure (1 left)"
    assert inst.next_attempt_at == START + timedelta(seconds=30)  # 10 s + 20 s
    assert inst.data.calls == 0

    gorch_time.tick(timedelta(seconds=19))
    assert worker.run_once() == 0
    gorch_time.tick(timedelta(seconds=1))
    assert worker.run_once() == 1
    inst = engine.get("f1")
    assert inst.status is RunStatus.WAITING
    assert (inst.attempts, inst.next_attempt_at, inst.last_error) == (0, None, None)
    assert inst.data == Flaky(tag="f1", went=True, calls=1)
    assert inst.waiting_for() == ["End"]

    failed = [h for h in engine.history("f1") if h.kind == "step_failed"]
    assert [(h.name, h.output["attempt"]) for h in failed] == [("flaky", 1), ("flaky", 2)]
    assert all(h.error and "flaky failure" in h.error for h in failed)
    assert kinds(engine, "f1") == [
        "started:flaky",
        "event:Go",
        "step_failed:flaky",
        "step_failed:flaky",
        "step:flaky",
    ]
    engine.send("f1", "End")
    assert engine.get("f1").status is RunStatus.FINISHED


def test_a_failing_first_step_at_start(engine: Engine, worker: Worker, gorch_time) -> None:
    FAILS["e1"] = 1
    inst = engine.start("eager", Eager(tag="e1"), id="e1")
    assert inst.status is RunStatus.RUNNING
    assert inst.attempts == 1
    assert inst.next_attempt_at == START + timedelta(seconds=10)
    assert inst.data == Eager(tag="e1")  # the data before the step
    assert engine.get("e1").data == Eager(tag="e1")

    gorch_time.tick(timedelta(seconds=10))
    assert worker.run_once() == 1
    inst = engine.get("e1")
    assert inst.status is RunStatus.WAITING
    assert inst.data == Eager(tag="e1", calls=1)


def test_past_max_attempts_the_instance_fails_and_retry_runs_it(
    engine: Engine, worker: Worker, gorch_time
) -> None:
    engine.start("brittle", Brittle(tag="b1"), id="b1")
    FAILS["b1"] = 100
    engine.send("b1", "Go")
    assert engine.get("b1").attempts == 1
    gorch_time.tick(timedelta(seconds=10))
    worker.run_once()

    inst = engine.get("b1")
    assert inst.status is RunStatus.FAILED
    assert inst.attempts == 2
    assert inst.next_attempt_at is None
    assert inst.last_error is not None and "flaky failure" in inst.last_error
    assert inst.data == Brittle(tag="b1", went=True, calls=0)
    assert kinds(engine, "b1")[-3:] == ["step_failed:flaky", "step_failed:flaky", "failed:flaky"]

    gorch_time.tick(timedelta(hours=1))
    with unchanged(engine, "b1"):
        assert worker.run_once() == 0  # a failed instance waits for an operator

    with unchanged(engine, "b1"), pytest.raises(InstanceStatusError):
        engine.send("b1", "End")

    FAILS["b1"] = 0
    inst = engine.retry("b1")
    assert inst.status is RunStatus.WAITING
    assert (inst.attempts, inst.last_error) == (0, None)
    assert inst.data.calls == 1
    assert "retry" in kinds(engine, "b1")

    with unchanged(engine, "b1"), pytest.raises(InstanceStatusError) as info:
        engine.retry("b1")
    assert info.value.status == "waiting"


def test_retry_that_fails_again_counts_from_one(engine: Engine, worker: Worker, gorch_time):
    engine.start("brittle", Brittle(tag="b1"), id="b1")
    FAILS["b1"] = 100
    engine.send("b1", "Go")
    gorch_time.tick(timedelta(seconds=10))
    worker.run_once()
    assert engine.get("b1").status is RunStatus.FAILED

    inst = engine.retry("b1")
    assert inst.status is RunStatus.RUNNING
    assert inst.attempts == 1
    assert inst.next_attempt_at == clock.now() + timedelta(seconds=10)


def test_goto_repairs_a_failed_instance(engine: Engine, worker: Worker, gorch_time) -> None:
    for id in ("skip", "rerun"):
        engine.start("brittle", Brittle(tag=id), id=id)
        FAILS[id] = 2
        engine.send(id, "Go")
        gorch_time.tick(timedelta(seconds=10))
        worker.run_once()
        assert engine.get(id).status is RunStatus.FAILED

    plan = engine.goto("skip", "for end")
    assert plan.applied
    inst = engine.get("skip")
    assert inst.status is RunStatus.WAITING
    assert (inst.attempts, inst.next_attempt_at, inst.last_error) == (0, None, None)
    assert inst.waiting_for() == ["End"]
    assert inst.data.calls == 0  # the step was skipped

    engine.goto("rerun", "flaky")  # FAILS is used up: the step succeeds now
    inst = engine.get("rerun")
    assert inst.status is RunStatus.WAITING
    assert inst.data.calls == 1
    assert kinds(engine, "rerun")[-2:] == ["goto:flaky", "step:flaky"]


def test_the_engine_default_retry_policy(store: Store, gorch_time) -> None:
    engine = Engine(
        store, WORKFLOWS, retry=RetryPolicy(max_attempts=3, initial=timedelta(seconds=7), jitter=0)
    )
    engine.start("plain", Plain(tag="p1"), id="p1")
    engine.start("flaky", Flaky(tag="f1"), id="f1")
    FAILS.update(p1=100, f1=100)
    engine.send("p1", "Go")
    engine.send("f1", "Go")
    assert engine.get("p1").next_attempt_at == START + timedelta(seconds=7)  # the default
    assert engine.get("f1").next_attempt_at == START + timedelta(seconds=10)  # its own

    worker = Worker(engine)
    gorch_time.tick(timedelta(seconds=7))
    worker.run_once()
    assert engine.get("p1").attempts == 2
    assert engine.get("p1").next_attempt_at == START + timedelta(seconds=21)
    gorch_time.tick(timedelta(seconds=14))
    worker.run_once()
    assert engine.get("p1").status is RunStatus.FAILED  # 3 attempts
    assert engine.get("f1").status is RunStatus.RUNNING  # its own policy allows 5

    once = Engine(store, WORKFLOWS, retry=RetryPolicy(max_attempts=1))
    once.start("plain", Plain(tag="p2"), id="p2")
    FAILS["p2"] = 1
    once.send("p2", "Go")
    inst = once.get("p2")
    assert inst.status is RunStatus.FAILED
    assert inst.attempts == 1


# --------------------------------------------------------------------------------------------
# leases: BusyError


def test_a_live_lease_of_another_owner_makes_send_busy(store: Store) -> None:
    engine = Engine(store, WORKFLOWS, busy_wait=0.2)
    engine.start("counter", Counter(), id="c1")
    lease(store, "c1", "other", timedelta(seconds=60))

    for call in (
        lambda: engine.send("c1", "Add", {"by": 1}),
        lambda: engine.send("c1", "Add", {"by": 1}, key="k"),
        lambda: engine.cancel("c1"),
        lambda: engine.pause("c1"),
        lambda: engine.goto("c1", "for input"),
    ):
        started = time.perf_counter()
        with unchanged(engine, "c1"), pytest.raises(BusyError) as info:
            call()
        assert time.perf_counter() - started < 3
        assert info.value.owner == "other"
        assert "busy" in str(info.value)
    assert store.get_key("c1", "k") is None


def test_an_expired_lease_does_not_block(store: Store) -> None:
    engine = Engine(store, WORKFLOWS, busy_wait=0.2)
    engine.start("counter", Counter(), id="c1")
    lease(store, "c1", "crashed", timedelta(seconds=-1))
    assert engine.send("c1", "Add", {"by": 1}) == {"n": 1, "by": 1}
    row = store.get("c1")
    assert row is not None and row.lease_owner is None
    assert engine.get("c1").data.n == 1


def start_slow(engine: Engine, tag: str) -> tuple[threading.Event, threading.Event]:
    gates = GATES[tag] = (threading.Event(), threading.Event())
    engine.start("slow", Slow(tag=tag), id=tag)
    return gates


def test_a_step_running_elsewhere_makes_send_busy(store: Store) -> None:
    a = Engine(store, WORKFLOWS)
    b = Engine(store, WORKFLOWS, busy_wait=0.2)
    entered, release = start_slow(a, "s1")
    a.start("counter", Counter(), id="other")
    errors: list[BaseException] = []

    def go() -> None:
        try:
            a.send("s1", "Go")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    t = threading.Thread(target=go)
    t.start()
    try:
        assert entered.wait(10)
        started = time.perf_counter()
        with unchanged(b, "s1"), pytest.raises(BusyError):
            b.send("s1", "Ping")
        assert time.perf_counter() - started < 3
        # a long step of one instance does not block the others
        assert b.send("other", "Add", {"by": 1}) == {"n": 1, "by": 1}
    finally:
        release.set()
        t.join(10)
    assert not t.is_alive() and errors == []
    assert b.send("s1", "Ping") == "pong"
    inst = b.get("s1")
    assert inst.status is RunStatus.FINISHED
    assert inst.data == Slow(tag="s1", pinged=True, done=True)
    assert len(RUNS["s1"]) == 1


def test_one_engine_shared_by_two_threads_serializes_operations(store: Store) -> None:
    # Found at bac7045 (the lease was named after the engine, and an engine took its own lease
    # for a free one): the second thread ran the step a second time, concurrently, and the
    # first send raised ConflictError. Each operation now leases under a name of its own.
    engine = Engine(store, WORKFLOWS, busy_wait=0.2)
    entered, release = start_slow(engine, "s1")
    outcome: list[Any] = []

    def go() -> None:
        try:
            outcome.append(engine.send("s1", "Go"))
        except BaseException as exc:  # pragma: no cover - reported below
            outcome.append(exc)

    t = threading.Thread(target=go)
    t.start()
    try:
        assert entered.wait(10)
        with unchanged(engine, "s1"), pytest.raises(BusyError):
            engine.send("s1", "Ping")
        with unchanged(engine, "s1"), pytest.raises(BusyError):
            engine.goto("s1", "slow")
    finally:
        release.set()
        t.join(10)
    assert outcome == [None]  # the first send's step committed
    assert RUNS["s1"] == [t.name]  # the step ran once, in the first sender's thread
    assert engine.send("s1", "Ping") == "pong"
    assert engine.get("s1").status is RunStatus.FINISHED
    assert RUNS["s1"] == [t.name]


def test_a_step_interrupted_by_a_crash_runs_again_when_the_lease_expires(
    store: Store, gorch_time
) -> None:
    engine = Engine(store, WORKFLOWS, busy_wait=0.1)
    engine.start("crashy", Crashy(tag="c1"), id="c1")
    CRASHES["c1"] = 1
    with pytest.raises(SystemExit):
        engine.send("c1", "Go")

    # the event was committed with a lease, before the step began
    row = store.get("c1")
    assert row is not None
    assert row.status == "running"
    assert row.lease_owner and row.lease_expires == START + timedelta(seconds=60)
    assert kinds(engine, "c1") == ["started:crashy", "event:Go"]

    other = Engine(store, WORKFLOWS, busy_wait=0.1)
    worker = Worker(other)
    with unchanged(other, "c1"):
        assert worker.run_once() == 0  # the lease is live: the step may still be running
        with pytest.raises(BusyError):
            other.send("c1", "End")

    gorch_time.tick(timedelta(seconds=61))
    assert worker.run_once() == 1
    inst = other.get("c1")
    assert inst.status is RunStatus.WAITING
    assert inst.data == Crashy(tag="c1", calls=1)
    assert kinds(engine, "c1") == ["started:crashy", "event:Go", "step:crashy"]
    assert other.send("c1", "End") is None
    assert other.get("c1").status is RunStatus.FINISHED


# --------------------------------------------------------------------------------------------
# the worker


def test_worker_run_stops_when_asked(store: Store) -> None:
    engine = Engine(store, WORKFLOWS)
    worker = Worker(engine, poll=0.05)
    engine.start("pizza", PizzaOrder(), id="o1", defer=True)
    t = threading.Thread(target=worker.run, daemon=True)
    t.start()
    deadline = time.monotonic() + 10
    while engine.get("o1").status is not RunStatus.WAITING and time.monotonic() < deadline:
        time.sleep(0.02)
    assert engine.get("o1").status is RunStatus.WAITING  # it did the work while running
    worker.stop()
    assert worker.stopping
    t.join(5)
    assert not t.is_alive()


def test_worker_run_once_returns_counts(engine: Engine, worker: Worker, gorch_time) -> None:
    assert worker.run_once() == 0
    for i in range(3):
        engine.start("pizza", PizzaOrder(), id=f"o{i}", defer=True)
    assert worker.run_once() == 3
    assert {i.status for i in engine.list().items} == {RunStatus.WAITING}
    gorch_time.tick(timedelta(hours=24))
    assert worker.run_once() == 3
    assert {i.status for i in engine.list().items} == {RunStatus.FINISHED}
    assert worker.run_once() == 0


def test_the_worker_respects_live_leases_and_takes_over_expired_ones(
    engine: Engine, worker: Worker, gorch_time
) -> None:
    engine.start("pizza", PizzaOrder(), id="run", defer=True)
    engine.start("pizza", PizzaOrder(), id="timer")
    lease(engine.store, "run", "other", timedelta(seconds=60))
    lease(engine.store, "timer", "other", timedelta(hours=30))
    assert worker.run_once() == 0
    assert engine.get("run").status is RunStatus.RUNNING

    gorch_time.tick(timedelta(seconds=61))  # "other" crashed: its lease ran out
    assert worker.run_once() == 1
    assert engine.get("run").status is RunStatus.WAITING

    gorch_time.tick(timedelta(hours=25))  # the timer is due, but "timer" is still leased
    assert worker.run_once() == 1  # only "run"'s own timer
    assert engine.get("timer").status is RunStatus.WAITING
    gorch_time.tick(timedelta(hours=5))
    assert worker.run_once() == 1
    assert engine.get("timer").status is RunStatus.FINISHED


def test_a_worker_stopped_mid_batch_releases_what_it_claimed(engine: Engine, gorch_time) -> None:
    worker = Worker(engine, batch=16)

    class StopAtFirstStep(Listener):
        def before_step(self, instance: str, workflow: str, thread: str, step: str) -> None:
            worker.stop()

    engine.listeners.append(StopAtFirstStep())
    for i in range(3):
        engine.start("pizza", PizzaOrder(), id=f"o{i}", defer=True)
    assert worker.run_once() == 1  # the item in hand is finished, the rest let go
    rows = [engine.store.get(f"o{i}") for i in range(3)]
    assert sorted(r.status for r in rows if r) == ["running", "running", "waiting"]
    assert all(r is not None and r.lease_owner is None for r in rows)

    engine.listeners.clear()
    assert Worker(engine, batch=1).run_once() == 2  # at once: no lease to wait out
    assert {i.status for i in engine.list().items} == {RunStatus.WAITING}


def test_a_stopped_worker_does_nothing(engine: Engine, worker: Worker) -> None:
    engine.start("pizza", PizzaOrder(), id="o1", defer=True)
    worker.stop()
    assert worker.run_once() == 0
    assert engine.get("o1").status is RunStatus.RUNNING
    assert Worker(engine).run_once() == 1
