"""The engine's operator calls on every store: goto, pause, unpause and cancel (retry, which
repairs a failed step, is with the retries in test_engine_worker.py).

Every refused call is checked to change nothing (``unchanged``, in _engine_workflows.py).
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from _engine_workflows import (
    FAILS,
    PEPPERONI,
    Done,
    Flaky,
    kinds,
    unchanged,
)

from examples.pizza.workflow import PizzaOrder
from gorch import (
    MAIN_THREAD,
    Engine,
    GorchError,
    GotoError,
    GotoPlan,
    InstanceStatusError,
    NotFoundError,
    RunStatus,
    ThreadStatus,
    Worker,
)

pytestmark = pytest.mark.usefixtures("engine_globals")  # tests/conftest.py


# --------------------------------------------------------------------------------------------
# goto


def test_goto_dry_run_changes_nothing(engine: Engine) -> None:
    engine.start("pizza", PizzaOrder(), id="o1")
    with unchanged(engine, "o1"):
        plan = engine.goto("o1", "for the manager", dry_run=True)
    assert isinstance(plan, GotoPlan)
    assert not plan.applied
    assert (plan.from_step, plan.to_step) == ("for the cart", "for the manager")
    assert plan.to_status is ThreadStatus.WAITING_EVENT
    assert plan.setup == ["ConfirmOrder"]


def test_goto_moves_the_thread_and_runs_on(engine: Engine) -> None:
    engine.start("pizza", PizzaOrder(), id="o1")
    plan = engine.goto("o1", "for the manager")
    assert plan.applied
    inst = engine.get("o1")
    assert inst.status is RunStatus.WAITING
    assert inst.waiting_for() == ["ConfirmOrder"]
    assert inst.timers == []  # the cart's timeout ended with its wait
    goto = engine.history("o1")[-1]
    assert (goto.kind, goto.name, goto.thread) == ("goto", "for the manager", MAIN_THREAD)
    assert goto.input["plan"] == plan.describe()

    engine.send("o1", "ConfirmOrder", {"manager": "ann", "amount": 12.5})
    assert engine.get("o1").waiting_for() == ["ConfirmPayment", "StartCooking"]

    # a goto to a step runs it
    engine.goto("o1", "complete")
    inst = engine.get("o1")
    assert inst.data.status == "completed"
    assert inst.status is RunStatus.FINISHED  # the main thread's end ends the workflow
    assert inst.waiting_for() == []


def test_goto_refused(engine: Engine) -> None:
    engine.start("pizza", PizzaOrder(), id="o1")
    with unchanged(engine, "o1"), pytest.raises(GotoError) as info:
        engine.goto("o1", "for the manger")
    assert isinstance(info.value, GorchError)
    assert info.value.suggestions[0] == "for the manager"
    assert "for the manager" in str(info.value)

    with unchanged(engine, "o1"), pytest.raises(GotoError):
        engine.goto("o1", "for the manager", dry_run=True, thread="no such thread")
    with unchanged(engine, "o1"), pytest.raises(GotoError):
        engine.goto("o1", "for payment")  # belongs to the payment thread
    with pytest.raises(NotFoundError):
        engine.goto("nope", "for the manager")

    engine.cancel("o1")
    with unchanged(engine, "o1"), pytest.raises(InstanceStatusError) as status:
        engine.goto("o1", "for the manager")
    assert status.value.status == "cancelled"

    engine.start("done", Done(), id="d1")
    with unchanged(engine, "d1"), pytest.raises(InstanceStatusError):
        engine.goto("d1", "run")


def test_goto_on_a_paused_instance_keeps_it_paused(engine: Engine) -> None:
    engine.start("pizza", PizzaOrder(), id="o1")
    engine.pause("o1")
    engine.goto("o1", "for the manager")
    inst = engine.get("o1")
    assert inst.status is RunStatus.PAUSED
    engine.unpause("o1")
    assert engine.get("o1").waiting_for() == ["ConfirmOrder"]


# --------------------------------------------------------------------------------------------
# pause, unpause, cancel


def test_pause_stops_events_and_timers_until_unpaused(
    engine: Engine, worker: Worker, gorch_time
) -> None:
    engine.start("pizza", PizzaOrder(), id="o1")
    inst = engine.pause("o1")
    assert inst.status is RunStatus.PAUSED
    assert engine.pause("o1").status is RunStatus.PAUSED  # pausing again is harmless

    with unchanged(engine, "o1"), pytest.raises(InstanceStatusError) as info:
        engine.send("o1", "AddToCart", PEPPERONI)
    assert info.value.status == "paused"

    gorch_time.tick(timedelta(hours=25))
    with unchanged(engine, "o1"):
        assert worker.run_once() == 0  # the due timer does not fire while paused
    assert len(engine.store.timers("o1")) == 1

    inst = engine.unpause("o1")
    assert inst.status is RunStatus.WAITING
    assert worker.run_once() >= 1
    inst = engine.get("o1")
    assert inst.status is RunStatus.FINISHED
    assert inst.data.status == "expired"
    assert kinds(engine, "o1") == [
        "started:pizza",
        "step:setup",
        "paused",
        "unpaused",
        "timer:cart timed out",
        "step:expire order",
        "finished",
    ]


def test_pause_a_deferred_instance(engine: Engine, worker: Worker) -> None:
    engine.start("pizza", PizzaOrder(), id="o1", defer=True)
    engine.pause("o1")
    with unchanged(engine, "o1"):
        assert worker.run_once() == 0
    inst = engine.unpause("o1")  # it runs on until it blocks
    assert inst.status is RunStatus.WAITING
    assert inst.waiting_for() == ["AddToCart", "EmptyCart", "SubmitCart", "cart timed out"]
    assert len(engine.store.timers("o1")) == 1


def test_unpause_of_an_instance_not_paused(engine: Engine) -> None:
    engine.start("pizza", PizzaOrder(), id="o1")
    with unchanged(engine, "o1"), pytest.raises(InstanceStatusError) as info:
        engine.unpause("o1")
    assert info.value.status == "waiting"


def test_cancel(engine: Engine, worker: Worker, gorch_time) -> None:
    engine.start("pizza", PizzaOrder(), id="o1")
    engine.send("o1", "AddToCart", PEPPERONI)
    assert engine.store.timers("o1") != []
    inst = engine.cancel("o1")
    assert inst.status is RunStatus.CANCELLED
    assert engine.store.timers("o1") == []
    assert engine.get("o1").data.cart[0].name == "pepperoni"  # kept for inspection
    assert kinds(engine, "o1")[-1] == "cancelled"

    with unchanged(engine, "o1"), pytest.raises(InstanceStatusError) as info:
        engine.send("o1", "SubmitCart")
    assert info.value.status == "cancelled"
    for call in (engine.cancel, engine.pause, engine.unpause, engine.retry):
        with unchanged(engine, "o1"), pytest.raises(InstanceStatusError):
            call("o1")

    gorch_time.tick(timedelta(hours=25))
    with unchanged(engine, "o1"):
        assert worker.run_once() == 0


def test_cancel_a_running_instance_stops_its_retries(
    engine: Engine, worker: Worker, gorch_time
) -> None:
    engine.start("flaky", Flaky(tag="f1"), id="f1")
    FAILS["f1"] = 100
    engine.send("f1", "Go")
    assert engine.get("f1").status is RunStatus.RUNNING
    engine.cancel("f1")
    gorch_time.tick(timedelta(hours=1))
    with unchanged(engine, "f1"):
        assert worker.run_once() == 0
    assert engine.get("f1").status is RunStatus.CANCELLED
