"""gorch.testing: the Harness, the ``gorch`` fixture and the ``gorch_time`` fixture."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from examples.pizza.workflow import PizzaOrder
from gorch import (
    MAIN_THREAD,
    Engine,
    On,
    RetryPolicy,
    RunStatus,
    S,
    Step,
    Timeout,
    Wait,
    Worker,
    clock,
)
from gorch.store import MemoryStore, SQLStore
from gorch.testing import START, Harness

pytest_plugins = ["pytester"]

PIZZA = {"pizza": PizzaOrder}
PEPPERONI = {"pizza": {"name": "pepperoni", "qty": 2}}


@dataclass
class Stubborn:
    """A step that always fails, then waits for ``End``."""

    tries: int = 0

    def definition(self) -> Any:
        return S(
            Step(
                "stubborn",
                self.stubborn,
                retry=RetryPolicy(max_attempts=3, initial=timedelta(seconds=10), jitter=0),
            ),
            Wait("for end", On("End"), Timeout("gave up", timedelta(hours=1))),
        )

    def stubborn(self) -> None:
        raise RuntimeError("no luck")


@dataclass
class Bell:
    """Rings once after an hour."""

    rung: bool = False

    def definition(self) -> Any:
        return S(Wait("for the hour", Timeout("hour", timedelta(hours=1), Step("ring", self.ring))))

    def ring(self) -> None:
        self.rung = True


def to_payment_check(h: Harness, id: str, amount: float = 20.0) -> None:
    """Take a pizza order to where the main thread waits for the payment condition."""
    h.start("pizza", PizzaOrder(), id=id)
    h.send(id, "AddToCart", PEPPERONI)
    h.send(id, "SubmitCart")
    h.send(id, "ConfirmOrder", {"manager": "ann", "amount": amount})
    for event in ("StartCooking", "Cooked", "TakeForDelivery", "Delivered"):
        h.send(id, event, {"cook": "bob"} if event == "StartCooking" else None)


# --------------------------------------------------------------------------------------------
# the gorch fixture and time


def test_the_cart_times_out(gorch: Any) -> None:
    h = gorch(PIZZA)
    assert isinstance(h, Harness)
    assert h.now() == START
    assert clock.now() == START
    h.start("pizza", PizzaOrder(), id="o1")

    assert h.advance(hours=23) == 0
    assert h.now() == START + timedelta(hours=23)
    h.assert_waiting("o1", "AddToCart", "cart timed out")
    h.assert_status("o1", RunStatus.WAITING)

    assert h.advance(hours=2) == 1  # the worker fired the timer
    h.assert_status("o1", RunStatus.FINISHED)
    h.assert_status("o1", "finished")
    assert h.kinds("o1")[-3:] == ["timer:cart timed out", "step:expire order", "finished"]
    assert h.data("o1").status == "expired"
    assert h.store.timers() == []
    assert h.advance(hours=48) == 0


def test_advance_returns_how_many_items_the_worker_did(gorch: Any) -> None:
    h = gorch({"bell": Bell, **PIZZA})
    for i in range(3):
        h.start("bell", Bell(), id=f"b{i}")
    h.start("pizza", PizzaOrder(), id="o1")
    assert h.advance(minutes=59) == 0
    assert h.advance(timedelta(minutes=1)) == 3
    assert all(h.data(f"b{i}").rung for i in range(3))
    h.assert_status("b0", RunStatus.FINISHED)
    h.assert_status("o1", RunStatus.WAITING)

    h.engine.start("pizza", PizzaOrder(), id="o2", defer=True)
    assert h.advance() == 1  # no time passes; the deferred start is run
    assert h.now() == START + timedelta(hours=1)
    h.assert_waiting("o2", "AddToCart")
    assert h.run_worker() == 0


def test_advance_drives_retries(gorch: Any) -> None:
    h = gorch({"stubborn": Stubborn})
    h.start("stubborn", Stubborn(), id="s1")
    inst = h.get("s1")
    assert (inst.status, inst.attempts) == (RunStatus.RUNNING, 1)
    assert inst.next_attempt_at == START + timedelta(seconds=10)
    assert h.advance(seconds=9) == 0
    assert h.advance(seconds=1) == 1
    assert h.get("s1").attempts == 2
    assert h.advance(seconds=20) == 1
    h.assert_status("s1", RunStatus.FAILED)
    assert h.kinds("s1") == [
        "started:stubborn",
        "step_failed:stubborn",
        "step_failed:stubborn",
        "step_failed:stubborn",
        "failed:stubborn",
    ]


def test_advance_refuses_to_go_back(gorch: Any) -> None:
    h = gorch(PIZZA)
    h.start("pizza", PizzaOrder(), id="o1")
    with pytest.raises(ValueError, match="forward"):
        h.advance(hours=-1)
    with pytest.raises(ValueError):
        h.advance(timedelta(seconds=-1))
    assert h.now() == START
    assert h.advance(timedelta(0)) == 0


def test_a_harness_that_does_not_control_time(gorch: Any) -> None:
    h = gorch(PIZZA, start=None)
    assert h.clock is None
    real = datetime.now(UTC)
    assert abs(h.now() - real) < timedelta(minutes=1)
    h.start("pizza", PizzaOrder(), id="o1")
    with pytest.raises(RuntimeError, match="start=None"):
        h.advance(hours=1)
    with pytest.raises(RuntimeError):
        h.advance(timedelta(hours=1))
    h.assert_waiting("o1", "AddToCart")
    assert h.run_worker() == 0


def test_gorch_time_freezes_the_clock(gorch_time: Any) -> None:
    assert clock.now() == START
    gorch_time.tick(timedelta(hours=2))
    assert clock.now() == START + timedelta(hours=2)


def test_engine_options_are_passed_on(gorch: Any) -> None:
    once = RetryPolicy(max_attempts=1)
    h = gorch(PIZZA, retry=once, busy_wait=0.5, owner="tester")
    assert isinstance(h.engine, Engine)
    assert isinstance(h.worker, Worker)
    assert h.engine.retry_policy == once
    assert h.engine.busy_wait == 0.5
    assert h.engine.owner == "tester"


# --------------------------------------------------------------------------------------------
# stores


def test_store_sqlite(gorch: Any) -> None:
    h = gorch(PIZZA, store="sqlite")
    assert isinstance(h.store, SQLStore)
    h.start("pizza", PizzaOrder(), id="o1")
    assert h.send("o1", "AddToCart", PEPPERONI) == 1
    h.assert_waiting("o1", "AddToCart", "SubmitCart")
    assert h.advance(hours=25) == 1
    h.assert_status("o1", RunStatus.FINISHED)
    assert h.data("o1").cart[0].name == "pepperoni"
    # a second engine on the same file sees the same instance
    assert Engine(h.store, PIZZA).get("o1").status is RunStatus.FINISHED


def test_store_object_and_bad_store(gorch: Any) -> None:
    store = MemoryStore()
    h = gorch(PIZZA, store=store)
    assert h.store is store
    h.start("pizza", PizzaOrder(), id="o1")
    assert store.get("o1") is not None
    with pytest.raises(ValueError, match="memory"):
        gorch(PIZZA, store="postgres-please", start=None)


def test_a_refused_harness_leaves_time_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    import freezegun
    import freezegun.api

    made: list[Any] = []
    real = freezegun.freeze_time

    def spy(*args: Any, **kw: Any) -> Any:
        made.append(real(*args, **kw))
        return made[-1]

    monkeypatch.setattr(freezegun, "freeze_time", spy)
    active = len(freezegun.api.freeze_factories)
    try:
        with pytest.raises(ValueError):
            Harness(PIZZA, store="postgres-please")
        with pytest.raises(ValueError):
            Harness({"not a workflow": object})
        assert clock.now() != START
    finally:
        # undo what the refused harnesses left behind, so that later tests run in real time
        for freezer in reversed(made):
            if len(freezegun.api.freeze_factories) > active:
                freezer.stop()


def test_harness_as_a_context_manager() -> None:
    with Harness(PIZZA, store="sqlite") as h:
        assert clock.now() == START
        h.start("pizza", PizzaOrder(), id="o1")
        folder = h._tmp.name if h._tmp is not None else ""
        assert os.path.isdir(folder)
    assert clock.now() != START  # time runs again
    assert not os.path.exists(folder)  # the SQLite file's folder is removed
    h.close()  # closing twice is harmless


def test_harness_can_start_elsewhere_in_time() -> None:
    at = datetime(2030, 6, 1, 12, tzinfo=UTC)
    with Harness(PIZZA, start=at) as h:
        h.start("pizza", PizzaOrder(), id="o1")
        assert h.get("o1").created_at == at
        assert h.get("o1").timers[0].due_at == at + timedelta(hours=24)


# --------------------------------------------------------------------------------------------
# asserting


def test_waits(gorch: Any) -> None:
    h = gorch(PIZZA)
    h.start("pizza", PizzaOrder(), id="o1")
    assert h.waits("o1") == {
        MAIN_THREAD: ["AddToCart", "EmptyCart", "SubmitCart", "cart timed out"]
    }
    h.send("o1", "AddToCart", PEPPERONI)
    h.send("o1", "SubmitCart")
    h.send("o1", "ConfirmOrder", {"manager": "ann", "amount": 20.0})
    assert h.waits("o1") == {MAIN_THREAD: ["StartCooking"], "payment": ["ConfirmPayment"]}

    to_payment_check(h, "o2")
    # a thread at a WaitFor shows the condition's name
    assert h.waits("o2") == {MAIN_THREAD: ["payment received"], "payment": ["ConfirmPayment"]}
    h.assert_waiting("o2", "payment received")
    h.send("o2", "ConfirmPayment", {"amount": 20.0, "address": "Main St 1"})
    h.assert_status("o2", RunStatus.FINISHED)
    assert h.waits("o2") == {}


def test_assert_waiting_passes(gorch: Any) -> None:
    h = gorch(PIZZA)
    h.start("pizza", PizzaOrder(), id="o1")
    h.assert_waiting("o1")  # waits for something
    h.assert_waiting("o1", "AddToCart")
    h.assert_waiting("o1", "SubmitCart", "AddToCart", thread=MAIN_THREAD)
    h.send("o1", "AddToCart", PEPPERONI)
    h.send("o1", "SubmitCart")
    h.send("o1", "ConfirmOrder", {"manager": "ann", "amount": 20.0})
    h.assert_waiting("o1", "ConfirmPayment", thread="payment")
    h.assert_waiting("o1", "StartCooking")


def test_assert_waiting_fails_with_what_it_waits_for(gorch: Any) -> None:
    h = gorch(PIZZA)
    h.start("pizza", PizzaOrder(), id="o1")

    with pytest.raises(AssertionError) as info:
        h.assert_waiting("o1", "StartCooking")
    msg = str(info.value)
    assert "StartCooking" in msg
    assert "'o1'" in msg and MAIN_THREAD in msg
    assert "AddToCart" in msg and "cart timed out" in msg  # what it does wait for

    with pytest.raises(AssertionError) as info:
        h.assert_waiting("o1", "AddToCart", "Nope")
    assert "Nope" in str(info.value)
    assert "['Nope']" in str(info.value)  # only what is missing

    with pytest.raises(AssertionError) as info:
        h.assert_waiting("o1", "AddToCart", thread="payment")
    assert "no thread 'payment'" in str(info.value)
    assert "AddToCart" in str(info.value)  # the threads there are, and what they wait for

    h.advance(hours=24)
    with pytest.raises(AssertionError, match="no thread"):
        h.assert_waiting("o1")  # finished: nothing waits


def test_assert_waiting_fails_for_a_thread_that_is_not_blocked(gorch: Any) -> None:
    h = gorch({"stubborn": Stubborn})
    h.start("stubborn", Stubborn(), id="s1")  # its first step failed: it is at the step
    assert h.waits("s1") == {MAIN_THREAD: []}
    with pytest.raises(AssertionError, match=r"it waits for \[\]"):
        h.assert_waiting("s1")


def test_assert_status_fails_with_the_last_error(gorch: Any) -> None:
    h = gorch({"stubborn": Stubborn, **PIZZA})
    h.start("stubborn", Stubborn(), id="s1")
    with pytest.raises(AssertionError) as info:
        h.assert_status("s1", RunStatus.WAITING)
    msg = str(info.value)
    assert "'s1' is running, not waiting" in msg
    assert "RuntimeError: no luck" in msg

    h.start("pizza", PizzaOrder(), id="o1")
    with pytest.raises(AssertionError) as info:
        h.assert_status("o1", "finished")
    assert str(info.value) == "instance 'o1' is waiting, not finished"
    with pytest.raises(ValueError):
        h.assert_status("o1", "bogus")


def test_kinds(gorch: Any) -> None:
    h = gorch(PIZZA)
    h.start("pizza", PizzaOrder(), id="o1")
    assert h.kinds("o1") == ["started:pizza", "step:setup"]
    assert h.send("o1", "AddToCart", PEPPERONI, key="k1") == 1
    assert h.send("o1", "AddToCart", PEPPERONI, key="k1") == 1  # options are passed on
    h.engine.pause("o1")
    h.engine.unpause("o1")
    h.engine.cancel("o1")
    assert h.kinds("o1") == [
        "started:pizza",
        "step:setup",
        "event:AddToCart",
        "paused",
        "unpaused",
        "cancelled",
    ]


# --------------------------------------------------------------------------------------------
# the fixture closes its harnesses


def test_the_gorch_fixture_closes_its_harnesses(pytester: pytest.Pytester) -> None:
    pytester.makeconftest('pytest_plugins = ["gorch.testing"]')
    pytester.makepyfile(
        """
        from datetime import UTC, datetime
        from gorch import clock
        from gorch.testing import START

        made = []

        def test_use(gorch):
            made.append(gorch({}, store="sqlite"))
            made.append(gorch({}))
            assert clock.now() == START

        def test_after():
            assert clock.now() != START
            assert all(h._freezer is None and h._tmp is None for h in made)
        """
    )
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
