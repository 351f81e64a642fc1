"""The engine's delivering calls on every store: start, send (and send_json), idempotency
keys, and the listeners that watch the steps they run.

Every refused call is checked to change nothing: the instance row (version, state, data,
lease), its timers and the length of its history are compared before and after
(``unchanged``, in _engine_workflows.py). The reading calls are tested in
test_engine_reading.py, the operator calls in test_engine_operating.py, and timers, retries,
leases and the worker in test_engine_worker.py.
"""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
from _engine_workflows import (
    BARRIERS,
    FAILS,
    PEPPERONI,
    WORKFLOWS,
    Amount,
    Counter,
    Done,
    Flaky,
    Plain,
    Vote,
    kinds,
    unchanged,
)

from examples.pizza.workflow import PizzaOrder
from gorch import (
    MAIN_THREAD,
    AlreadyExistsError,
    CallbackNotFound,
    Engine,
    GorchError,
    HandlerError,
    IdempotencyKeyError,
    InputError,
    InstanceStatusError,
    NotFoundError,
    RunStatus,
    Worker,
    WorkflowFinishedError,
)
from gorch.engine import Instance, Listener
from gorch.retry import RetryPolicy
from gorch.store import Store
from gorch.testing import START

pytestmark = pytest.mark.usefixtures("engine_globals")  # tests/conftest.py


# --------------------------------------------------------------------------------------------
# start


def test_start_runs_until_blocked_and_saves(engine: Engine) -> None:
    inst = engine.start("pizza", PizzaOrder(), id="o1")
    assert isinstance(inst, Instance)
    assert (inst.id, inst.workflow, inst.status) == ("o1", "pizza", RunStatus.WAITING)
    assert inst.data.status == "cart" and inst.data.log == ["order opened"]
    assert inst.waiting_for() == ["AddToCart", "EmptyCart", "SubmitCart", "cart timed out"]
    assert inst.created_at == inst.updated_at == START

    stored = engine.get("o1")
    assert stored.data == inst.data
    assert stored.state == inst.state
    assert stored.version == inst.version
    assert [t.name for t in stored.timers] == ["cart timed out"]
    assert stored.timers[0].due_at == START + timedelta(hours=24)

    done = engine.start("done", Done(), id="d1")
    assert done.status is RunStatus.FINISHED
    assert engine.get("d1").data == Done(ran=True)
    assert engine.store.timers("d1") == []


@pytest.mark.parametrize("bad", ["a/b", "/", "order/7/", "", "x" * 201, "a\x00b", 7])
def test_start_refuses_an_id_that_cannot_be_an_instance_url(engine: Engine, bad: Any) -> None:
    with pytest.raises(InputError) as info:
        engine.start("pizza", PizzaOrder(), id=bad)
    assert '1 to 200 characters, without NUL or "/"' in str(info.value)
    assert engine.list().items == []
    engine.start("pizza", PizzaOrder(), id="x" * 200)  # the longest id there may be


def test_start_generates_an_id(engine: Engine) -> None:
    a = engine.start("counter", Counter())
    b = engine.start("counter", Counter())
    assert a.id and b.id and a.id != b.id
    assert engine.get(a.id).workflow == "counter"
    assert engine.get(b.id).status is RunStatus.WAITING


def test_start_with_an_existing_id_changes_nothing(engine: Engine) -> None:
    engine.start("pizza", PizzaOrder(), id="o1")
    engine.send("o1", "AddToCart", PEPPERONI)
    with unchanged(engine, "o1"), pytest.raises(AlreadyExistsError) as info:
        engine.start("pizza", PizzaOrder(status="other"), id="o1")
    assert isinstance(info.value, GorchError)
    assert "o1" in str(info.value)
    # also for another workflow under the same id, and for a workflow that starts with no step
    with unchanged(engine, "o1"), pytest.raises(AlreadyExistsError):
        engine.start("counter", Counter(n=7), id="o1")
    with unchanged(engine, "o1"), pytest.raises(AlreadyExistsError):
        engine.start("pizza", PizzaOrder(), id="o1", defer=True)
    assert engine.get("o1").data.cart[0].name == "pepperoni"


def test_start_unknown_workflow_suggests_the_close_one(engine: Engine) -> None:
    with pytest.raises(NotFoundError, match=r"(?i)did you mean 'pizza'"):
        engine.start("piza", PizzaOrder(), id="o1")
    with pytest.raises(NotFoundError):
        engine.get("o1")
    assert engine.list().items == []


def test_start_with_data_of_the_wrong_type(engine: Engine) -> None:
    with pytest.raises(InputError, match="PizzaOrder"):
        engine.start("pizza", Counter(), id="o1")
    with pytest.raises(InputError):
        engine.start("pizza", {"cart": []}, id="o1")
    with pytest.raises(InputError):
        engine.start("pizza", PizzaOrder(), id="")
    assert engine.list().items == []


def test_start_deferred_is_run_by_a_worker(engine: Engine, worker: Worker) -> None:
    inst = engine.start("pizza", PizzaOrder(), id="o1", defer=True)
    assert inst.status is RunStatus.RUNNING
    assert inst.data == PizzaOrder()  # nothing ran yet
    assert engine.get("o1").status is RunStatus.RUNNING
    assert kinds(engine, "o1") == ["started:pizza"]

    assert worker.run_once() >= 1
    inst = engine.get("o1")
    assert inst.status is RunStatus.WAITING
    assert inst.data.status == "cart"
    assert kinds(engine, "o1") == ["started:pizza", "step:setup"]
    assert worker.run_once() == 0


# --------------------------------------------------------------------------------------------
# send


def test_send_returns_json_data_and_records_the_event(engine: Engine) -> None:
    engine.start("counter", Counter(), id="c1")
    out = engine.send("c1", "Add", {"by": 3})
    assert out == {"n": 3, "by": 3}  # the handler's dataclass, as JSON-compatible data
    out = engine.send("c1", "Add", Amount(by=2))  # an instance of the payload type works too
    assert out == {"n": 5, "by": 2}
    inst = engine.get("c1")
    assert inst.data.n == 5
    assert inst.status is RunStatus.WAITING

    events = [h for h in engine.history("c1") if h.kind == "event"]
    assert [(e.name, e.thread, e.input, e.output) for e in events] == [
        ("Add", MAIN_THREAD, {"by": 3}, {"n": 3, "by": 3}),
        ("Add", MAIN_THREAD, {"by": 2}, {"n": 5, "by": 2}),
    ]

    assert engine.send("c1", "Stop") == "stopped"
    inst = engine.get("c1")
    assert inst.status is RunStatus.FINISHED
    assert inst.data == Counter(n=5, stopped=True, wrapped=True)
    assert kinds(engine, "c1")[-3:] == ["event:Stop", "step:wrap up", "finished"]


def test_send_json(engine: Engine) -> None:
    engine.start("counter", Counter(), id="c1")
    assert engine.send_json("c1", "Add", '{"by": 4}') == {"n": 4, "by": 4}
    assert engine.send_json("c1", "Add", b'{"by": 1}') == {"n": 5, "by": 1}
    with unchanged(engine, "c1"), pytest.raises(InputError) as info:
        engine.send_json("c1", "Add", '{"by": 4')
    assert info.value.event == "Add"
    assert "JSON" in str(info.value)
    assert engine.send_json("c1", "Stop", "") == "stopped"


def test_send_to_an_unknown_instance(engine: Engine) -> None:
    engine.start("counter", Counter(), id="c1")
    with unchanged(engine, "c1"), pytest.raises(NotFoundError, match="nope"):
        engine.send("nope", "Add", {"by": 1})
    with pytest.raises(NotFoundError):
        engine.get("nope")


def test_send_an_event_not_awaited(engine: Engine) -> None:
    engine.start("pizza", PizzaOrder(), id="o1")
    with unchanged(engine, "o1"), pytest.raises(CallbackNotFound) as info:
        engine.send("o1", "ConfirmOrder", {"manager": "m", "amount": 10})
    assert info.value.event == "ConfirmOrder"
    assert info.value.waiting_for == ["AddToCart", "EmptyCart", "SubmitCart", "cart timed out"]
    assert "AddToCart" in str(info.value) and "SubmitCart" in str(info.value)

    with unchanged(engine, "o1"), pytest.raises(CallbackNotFound):
        engine.send("o1", "NoSuchEvent")


def test_send_a_payload_of_the_wrong_shape(engine: Engine) -> None:
    engine.start("pizza", PizzaOrder(), id="o1")
    engine.start("counter", Counter(), id="c1")
    bad = [
        ("o1", "AddToCart", {"pizza": {"qty": 2}}),  # name missing
        ("o1", "AddToCart", {"pizza": {"name": "x", "qty": "many"}}),
        ("o1", "AddToCart", None),
        ("o1", "AddToCart", [1, 2]),
        ("c1", "Add", {"by": "three"}),
        ("c1", "Add", {}),
    ]
    for id, event, payload in bad:
        with unchanged(engine, "o1", "c1"), pytest.raises(InputError) as info:
            engine.send(id, event, payload)
        assert info.value.event == event
        assert info.value.details, info.value


def test_send_whose_handler_raises_changes_nothing(engine: Engine) -> None:
    engine.start("pizza", PizzaOrder(), id="o1")
    with unchanged(engine, "o1"), pytest.raises(HandlerError, match="cart is empty"):
        engine.send("o1", "SubmitCart")


def test_send_bad_arguments(engine: Engine) -> None:
    engine.start("counter", Counter(), id="c1")
    with unchanged(engine, "c1"):
        with pytest.raises(InputError):
            engine.send("c1", "", {"by": 1})
        with pytest.raises(InputError):
            engine.send("c1", "Add", {"by": 1}, key="")
        with pytest.raises(InputError):
            engine.send("c1", "Add", {"by": 1}, key="k" * 201)
        with pytest.raises(InputError):
            engine.send("", "Add", {"by": 1})


def test_send_to_a_named_thread(engine: Engine) -> None:
    engine.start("pizza", PizzaOrder(), id="o1")
    engine.send("o1", "AddToCart", PEPPERONI)
    engine.send("o1", "SubmitCart")
    engine.send("o1", "ConfirmOrder", {"manager": "ann", "amount": 12.5})
    pay = {"amount": 12.5, "address": "Main St 1"}
    with unchanged(engine, "o1"), pytest.raises(CallbackNotFound, match="StartCooking"):
        engine.send("o1", "ConfirmPayment", pay, thread=MAIN_THREAD)
    with unchanged(engine, "o1"), pytest.raises(CallbackNotFound, match="payment"):
        engine.send("o1", "ConfirmPayment", pay, thread="nope")
    assert engine.send("o1", "ConfirmPayment", pay, thread="payment") is None
    event = engine.history("o1")[-1]
    assert (event.kind, event.name, event.thread) == ("event", "ConfirmPayment", "payment")
    assert engine.get("o1").data.paid == 12.5


def test_send_to_a_deferred_instance_not_yet_run(engine: Engine, worker: Worker) -> None:
    engine.start("pizza", PizzaOrder(), id="o1", defer=True)
    with unchanged(engine, "o1"), pytest.raises(CallbackNotFound):
        engine.send("o1", "AddToCart", PEPPERONI)
    worker.run_once()
    assert engine.send("o1", "AddToCart", PEPPERONI) == 1


def test_two_events_racing_for_one_wait(store: Store) -> None:
    engine = Engine(store, WORKFLOWS)
    engine.start("vote", Vote(tag="v1"), id="v1")
    BARRIERS["v1"] = threading.Barrier(2)
    results: dict[str, Any] = {}

    def vote(who: str) -> None:
        try:
            results[who] = engine.send("v1", "Vote", who)
        except BaseException as exc:
            results[who] = exc

    threads = [threading.Thread(target=vote, args=(who,)) for who in ("ann", "bob")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    winner = engine.get("v1").data.voter
    loser = "bob" if winner == "ann" else "ann"
    assert results[winner] == f"{winner} voted"
    assert isinstance(results[loser], CallbackNotFound), results
    assert results[loser].waiting_for == ["End"]
    events = [h for h in engine.history("v1") if h.kind == "event"]
    assert [(e.name, e.input, e.output) for e in events] == [("Vote", winner, f"{winner} voted")]


def test_send_to_a_finished_instance(engine: Engine) -> None:
    engine.start("done", Done(), id="d1")
    engine.start("counter", Counter(), id="c1")
    engine.send("c1", "Stop")
    for id, event in [("d1", "Anything"), ("c1", "Add"), ("c1", "Stop")]:
        with unchanged(engine, id), pytest.raises(WorkflowFinishedError):
            engine.send(id, event, {"by": 1})


def test_send_to_cancelled_paused_and_failed_instances(engine: Engine) -> None:
    engine.start("counter", Counter(), id="cancelled")
    engine.cancel("cancelled")
    engine.start("counter", Counter(), id="paused")
    engine.pause("paused")
    engine.start("plain", Plain(tag="failed"), id="failed")
    FAILS["failed"] = 100
    failing = Engine(engine.store, WORKFLOWS, retry=RetryPolicy(max_attempts=1))
    failing.send("failed", "Go")
    assert engine.get("failed").status is RunStatus.FAILED

    for id, event, status in [
        ("cancelled", "Add", "cancelled"),
        ("paused", "Add", "paused"),
        ("failed", "End", "failed"),
    ]:
        with unchanged(engine, id), pytest.raises(InstanceStatusError) as info:
            engine.send(id, event, {"by": 1})
        assert info.value.status == status
        assert status in str(info.value)


# --------------------------------------------------------------------------------------------
# idempotency keys


def test_a_repeated_key_returns_the_first_answer(engine: Engine) -> None:
    engine.start("counter", Counter(), id="c1")
    first = engine.send("c1", "Add", {"by": 2}, key="req-1")
    assert first == {"n": 2, "by": 2}
    with unchanged(engine, "c1"):
        again = engine.send("c1", "Add", {"by": 2}, key="req-1")
        again_typed = engine.send("c1", "Add", Amount(by=2), key="req-1")
    assert again == again_typed == first
    assert engine.get("c1").data.n == 2
    assert kinds(engine, "c1").count("event:Add") == 1

    # a new key is a new request
    assert engine.send("c1", "Add", {"by": 2}, key="req-2") == {"n": 4, "by": 2}
    assert engine.get("c1").data.n == 4


def test_a_key_reused_for_another_request(engine: Engine) -> None:
    engine.start("counter", Counter(), id="c1")
    engine.send("c1", "Add", {"by": 2}, key="req-1")
    for event, payload in [("Add", {"by": 3}), ("Stop", None), ("Add", None)]:
        with unchanged(engine, "c1"), pytest.raises(IdempotencyKeyError) as info:
            engine.send("c1", event, payload, key="req-1")
        assert info.value.key == "req-1"
        assert isinstance(info.value, GorchError)
    assert engine.get("c1").data.n == 2


def test_keys_are_per_instance(engine: Engine) -> None:
    engine.start("counter", Counter(), id="c1")
    engine.start("counter", Counter(), id="c2")
    assert engine.send("c1", "Add", {"by": 2}, key="k") == {"n": 2, "by": 2}
    assert engine.send("c2", "Add", {"by": 2}, key="k") == {"n": 2, "by": 2}
    assert engine.send("c2", "Add", {"by": 5}, key="k2") == {"n": 7, "by": 5}
    assert engine.get("c1").data.n == 2
    assert engine.get("c2").data.n == 7


def test_a_refused_request_does_not_use_up_its_key(engine: Engine) -> None:
    engine.start("pizza", PizzaOrder(), id="o1")
    with unchanged(engine, "o1"), pytest.raises(HandlerError):
        engine.send("o1", "SubmitCart", key="submit")
    assert engine.store.get_key("o1", "submit") is None
    engine.send("o1", "AddToCart", PEPPERONI, key="add")
    assert engine.send("o1", "SubmitCart", key="submit") == "submitted"
    assert engine.send("o1", "SubmitCart", key="submit") == "submitted"
    assert kinds(engine, "o1").count("event:SubmitCart") == 1


def test_a_repeat_after_the_instance_moved_on_still_answers(engine: Engine) -> None:
    engine.start("counter", Counter(), id="c1")
    assert engine.send("c1", "Stop", key="stop-1") == "stopped"
    assert engine.get("c1").status is RunStatus.FINISHED
    with unchanged(engine, "c1"):
        assert engine.send("c1", "Stop", key="stop-1") == "stopped"


# --------------------------------------------------------------------------------------------
# listeners


class Recorder(Listener):
    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def before_step(self, instance: str, workflow: str, thread: str, step: str) -> None:
        self.calls.append(("before", instance, workflow, thread, step))

    def after_step(self, instance, workflow, thread, step, error) -> None:
        self.calls.append(("after", instance, step, None if error is None else str(error)))

    def on_status(self, instance, workflow, old, new) -> None:
        self.calls.append(("status", instance, old, new))


class Broken(Listener):
    def before_step(self, *args: Any) -> None:
        raise RuntimeError("listener broke")

    after_step = on_status = before_step  # type: ignore[assignment]


def test_listeners_see_steps_and_status_changes(store: Store, gorch_time) -> None:
    rec = Recorder()
    engine = Engine(store, WORKFLOWS, listeners=[rec])
    engine.start("flaky", Flaky(tag="f1"), id="f1")
    FAILS["f1"] = 1
    engine.send("f1", "Go")
    gorch_time.tick(timedelta(seconds=10))
    Worker(engine).run_once()
    engine.send("f1", "End")

    assert rec.calls == [
        ("status", "f1", None, RunStatus.WAITING),
        ("status", "f1", RunStatus.WAITING, RunStatus.RUNNING),
        ("before", "f1", "flaky", MAIN_THREAD, "flaky"),
        ("after", "f1", "flaky", "flaky failure (1 left)"),
        ("before", "f1", "flaky", MAIN_THREAD, "flaky"),
        ("after", "f1", "flaky", None),
        ("status", "f1", RunStatus.RUNNING, RunStatus.WAITING),
        ("status", "f1", RunStatus.WAITING, RunStatus.FINISHED),
    ]


def test_a_listener_that_raises_breaks_nothing(store: Store, gorch_time) -> None:
    rec = Recorder()
    engine = Engine(store, WORKFLOWS, listeners=[Broken(), rec, Broken()])
    engine.start("pizza", PizzaOrder(), id="o1")
    assert engine.send("o1", "AddToCart", PEPPERONI) == 1
    engine.start("done", Done(), id="d1")
    assert engine.get("d1").status is RunStatus.FINISHED
    assert engine.get("o1").data.cart[0].qty == 2
    assert ("before", "o1", "pizza", MAIN_THREAD, "setup") in rec.calls
    assert ("status", "d1", None, RunStatus.RUNNING) in rec.calls
    assert ("status", "d1", RunStatus.RUNNING, RunStatus.FINISHED) in rec.calls
