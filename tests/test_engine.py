"""The engine on every store: start, send, idempotency, timers, retries, goto, pause, cancel,
list, history, listeners, leases and the worker (DESIGN.md sections 4 and 6).

Every refused call is checked to change nothing: the instance row (version, state, data,
lease), its timers and the length of its history are compared before and after.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, ClassVar

import attrs
import pytest

from examples.pizza.workflow import PizzaOrder
from gorch import (
    MAIN_THREAD,
    AlreadyExistsError,
    BusyError,
    CallbackNotFound,
    Engine,
    For,
    Go,
    GorchError,
    GotoError,
    GotoPlan,
    HandlerError,
    IdempotencyKeyError,
    If,
    InputError,
    InstanceStatusError,
    NotFoundError,
    On,
    Return,
    RunStatus,
    S,
    Step,
    ThreadStatus,
    Timeout,
    Wait,
    WaitFor,
    Worker,
    WorkflowFinishedError,
    clock,
    dumps,
)
from gorch.engine import Instance, Listener, Page
from gorch.retry import RetryPolicy
from gorch.store import Store
from gorch.store.base import TimerRecord, Write
from gorch.testing import START

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


@pytest.fixture(autouse=True)
def _clean_globals() -> Iterator[None]:
    yield
    FAILS.clear()
    RUNS.clear()
    CRASHES.clear()
    for barrier in BARRIERS.values():
        barrier.abort()
    BARRIERS.clear()
    for _, release in GATES.values():
        release.set()
    GATES.clear()


@pytest.fixture
def engine(store: Store, gorch_time: Any) -> Engine:
    """An engine on each store, with time frozen at START (move it with ``gorch_time``)."""
    return Engine(store, WORKFLOWS)


@pytest.fixture
def worker(engine: Engine) -> Worker:
    return Worker(engine)


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


def test_waits_says_where_each_thread_is_from_an_id_or_an_instance(engine: Engine) -> None:
    engine.start("pizza", PizzaOrder(), id="o1")
    engine.send("o1", "AddToCart", {"pizza": {"name": "margherita"}})
    engine.send("o1", "SubmitCart")
    engine.send("o1", "ConfirmOrder", {"manager": "Giulia", "amount": 10})
    waits = engine.waits("o1")
    assert [(w.thread, w.at, w.events) for w in waits] == [
        ("_main_", "for a cook", ["StartCooking"]),
        ("payment", "for payment", ["ConfirmPayment"]),
    ]
    assert waits[0].since == START and waits[1].since == START
    assert engine.waits(engine.get("o1")) == waits
    with pytest.raises(NotFoundError):
        engine.waits("nope")


def test_since_of_a_thread_a_go_started_is_when_the_go_ran(engine: Engine, gorch_time) -> None:
    # The Go "payment" runs right after ConfirmOrder; its thread then waits, doing nothing of
    # its own, while the main thread moves on: its since stays at ConfirmOrder.
    engine.start("pizza", PizzaOrder(), id="o1")
    for hours, (event, payload) in enumerate(
        [("AddToCart", PEPPERONI), ("SubmitCart", None),
         ("ConfirmOrder", {"manager": "Giulia", "amount": 10}),
         ("StartCooking", {"cook": "Marco"}), ("Cooked", None)], 1,
    ):  # fmt: skip
        gorch_time.tick(timedelta(hours=1))
        engine.send("o1", event, payload)
        assert engine.get("o1").updated_at == START + timedelta(hours=hours)
    since = {w.thread: w.since for w in engine.waits("o1")}
    assert since == {"_main_": START + timedelta(hours=5), "payment": START + timedelta(hours=3)}
    gorch_time.tick(timedelta(hours=1))
    engine.send("o1", "ConfirmPayment", {"amount": 10, "address": "Via Roma 1"})
    assert [w.thread for w in engine.waits("o1")] == ["_main_"]  # payment has ended


@dataclass
class Nest:
    """A Go whose thread starts a Go of its own before it waits."""

    def definition(self) -> Any:
        return S(
            Wait("for go", On("Go", None)),
            Go("outer",
                Go("inner", Wait("for x", On("X", None))),
                Wait("for y", On("Y", None)),
                Wait("for z", On("Z", None)),
            ),
            Wait("for b", On("B", None)),
            Wait("for end", On("End", None)),
        )  # fmt: skip


def test_since_of_nested_go_threads(store: Store, gorch_time) -> None:
    engine = Engine(store, {"nest": Nest})
    engine.start("nest", Nest(), id="n1")
    assert [w.since for w in engine.waits("n1")] == [START]
    for event in ("Go", "B", "Y"):
        gorch_time.tick(timedelta(hours=1))
        engine.send("n1", event)
    since = {w.thread: w.since for w in engine.waits("n1")}
    hour = timedelta(hours=1)
    # main: B (2 h); outer: Y (3 h); inner, which did nothing: the Go of outer ran at 1 h
    assert since == {"_main_": START + 2 * hour, "outer": START + 3 * hour, "inner": START + hour}


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


# --------------------------------------------------------------------------------------------
# list


def test_list_filters_by_workflow_and_status(engine: Engine) -> None:
    for i in range(4):
        engine.start("counter", Counter(), id=f"c{i}")
    engine.send("c1", "Stop")
    engine.send("c2", "Stop")
    engine.start("pizza", PizzaOrder(), id="o1")
    engine.pause("o1")

    def ids(**kw: Any) -> set[str]:
        return {i.id for i in engine.list(**kw).items}

    assert ids() == {"c0", "c1", "c2", "c3", "o1"}
    assert ids(workflow="counter") == {"c0", "c1", "c2", "c3"}
    assert ids(workflow="pizza") == {"o1"}
    assert ids(workflow="nope") == set()
    assert ids(status=RunStatus.FINISHED) == {"c1", "c2"}
    assert ids(status="waiting") == {"c0", "c3"}
    assert ids(status=[RunStatus.WAITING, "paused"]) == {"c0", "c3", "o1"}
    assert ids(status=[]) == set()
    assert ids(workflow="pizza", status="waiting") == set()
    assert ids(workflow="counter", status=("finished",)) == {"c1", "c2"}
    page = engine.list(workflow="pizza")
    assert isinstance(page, Page) and page.next is None
    assert page.items[0].data == engine.get("o1").data
    assert page.items[0].status is RunStatus.PAUSED


def test_list_pages_cover_every_instance_once(engine: Engine, gorch_time) -> None:
    expected = set()
    for i in range(11):
        # several instances share a created_at: the cursor must tell them apart by id
        if i % 4 == 0:
            gorch_time.tick(timedelta(seconds=1))
        expected.add(engine.start("counter", Counter(), id=f"c{i:02}").id)

    for limit in (1, 2, 3, 5, 11, 50):
        seen: list[str] = []
        cursor = None
        pages = 0
        while True:
            page = engine.list(limit=limit, cursor=cursor)
            pages += 1
            assert len(page.items) <= limit
            seen += [i.id for i in page.items]
            if page.next is None:
                break
            cursor = page.next
        assert sorted(seen) == sorted(expected), limit
        assert len(seen) == len(set(seen))
        assert pages == -(-11 // limit)
    # newest first
    order = [i.id for i in engine.list(limit=50).items]
    created = [engine.get(i).created_at for i in order]
    assert created == sorted(created, reverse=True)


def test_list_pages_in_real_time(store: Store) -> None:
    engine = Engine(store, WORKFLOWS)
    ids = {engine.start("done", Done()).id for _ in range(7)}
    seen: list[str] = []
    cursor = None
    while True:
        page = engine.list(workflow="done", status=RunStatus.FINISHED, limit=2, cursor=cursor)
        seen += [i.id for i in page.items]
        if page.next is None:
            break
        cursor = page.next
    assert sorted(seen) == sorted(ids)


def test_a_page_is_a_sequence_of_its_items(engine: Engine) -> None:
    for i in range(3):
        engine.start("counter", Counter(), id=f"c{i}")
    page = engine.list(limit=2)
    assert [i.id for i in page] == [i.id for i in page.items] and len(page) == 2
    assert page[0] is page.items[0] and page[-1] is page.items[1]
    assert page[:1] == page.items[:1]
    assert page.next is not None
    rest = engine.list(limit=2, cursor=page.next)
    assert len(rest) == 1 and rest.next is None and bool(engine.list(workflow="nope")) is False
    assert [i.id for i in [*page, *rest]] == ["c2", "c1", "c0"]


def test_list_bad_arguments(engine: Engine) -> None:
    engine.start("counter", Counter(), id="c1")
    for kw in (
        {"limit": 0},
        {"limit": 1001},
        {"limit": -1},
        {"limit": "5"},
        {"status": "nope"},
        {"status": ["waiting", "nope"]},
        {"cursor": "garbage"},
        {"cursor": "not a time|c1"},
    ):
        with pytest.raises(InputError):
            engine.list(**kw)


# --------------------------------------------------------------------------------------------
# history


def test_history_oldest_first(engine: Engine, worker: Worker, gorch_time) -> None:
    engine.start("pizza", PizzaOrder(), id="o1")
    gorch_time.tick(timedelta(hours=1))
    engine.send("o1", "AddToCart", PEPPERONI)
    gorch_time.tick(timedelta(hours=24))
    worker.run_once()

    history = engine.history("o1")
    assert [(h.kind, h.name) for h in history] == [
        ("started", "pizza"),
        ("step", "setup"),
        ("event", "AddToCart"),
        ("timer", "cart timed out"),
        ("step", "expire order"),
        ("finished", ""),
    ]
    assert [h.at for h in history] == [START, START] + [START + timedelta(hours=1)] + [
        START + timedelta(hours=25)
    ] * 3
    seqs = [h.seq for h in history]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert history[0].input == dumps_obj(PizzaOrder())
    assert history[1].thread == MAIN_THREAD
    assert history[2].input == PEPPERONI and history[2].output == 1
    # the event began a new loop turn, and with it a new 24-hour wait
    assert history[3].input == clock.format_time(START + timedelta(hours=25))

    with pytest.raises(NotFoundError):
        engine.history("nope")
    with pytest.raises(NotFoundError):
        engine.history("nope", limit=5, newest_first=True)


def _busy_counter(engine: Engine, adds: int) -> list[tuple[int, str]]:
    engine.start("counter", Counter(), id="c1")
    for _ in range(adds):
        engine.send("c1", "Add", {"by": 1})
    engine.send("c1", "Stop")
    return [(h.seq, f"{h.kind}:{h.name}") for h in engine.history("c1")]


@pytest.mark.parametrize("newest_first", [False, True], ids=["oldest-first", "newest-first"])
def test_history_pages_with_cursors(engine: Engine, newest_first: bool) -> None:
    full = _busy_counter(engine, 6)
    assert [seq for seq, _ in full] == list(range(1, len(full) + 1)) and len(full) == 10
    assert isinstance(engine.history("c1"), Page) and engine.history("c1").next is None
    want = full[::-1] if newest_first else full
    for limit in (1, 3, 9, 10, 11, 1000):
        seen: list[tuple[int, str]] = []
        cursor = None
        pages = 0
        while True:
            page = engine.history("c1", limit=limit, cursor=cursor, newest_first=newest_first)
            pages += 1
            assert len(page) <= limit and isinstance(page.next, str | None)
            seen += [(h.seq, f"{h.kind}:{h.name}") for h in page]
            if page.next is None:
                break
            cursor = page.next
        assert seen == want, limit
        assert pages == -(-10 // limit), limit  # no empty page at the end
    assert engine.history("c1", newest_first=True).items == engine.history("c1").items[::-1]


def test_history_bad_limit_or_cursor_is_refused(engine: Engine) -> None:
    _busy_counter(engine, 3)
    oldest = engine.history("c1", limit=2).next
    newest = engine.history("c1", limit=2, newest_first=True).next
    assert oldest and newest
    for kw in (
        {"limit": 0},
        {"limit": 1001},
        {"limit": -3},
        {"limit": "5"},
        {"limit": True},
        {"limit": 2.0},
        {"cursor": "garbage"},
        {"cursor": "o0.1.1"},
        {"cursor": "o3.1"},
        {"cursor": f"{oldest} "},
        {"cursor": "o99999999999.1.1"},
        {"cursor": "o1.2147483648.1"},
        {"cursor": "x1.1.1"},
        {"cursor": "o1.1.1\x00"},
        {"cursor": newest},  # a newest-first cursor, read oldest first
        {"cursor": oldest, "newest_first": True},
    ):
        with pytest.raises(InputError) as info:
            engine.history("c1", **kw)
        assert "limit" in str(info.value) or "cursor" in str(info.value)
    with pytest.raises(InputError, match="newest_first=True to go on"):
        engine.history("c1", cursor=newest)


def test_a_history_row_that_is_not_json_is_shown_as_text(tmp_path: Any) -> None:
    import sqlite3

    from gorch.store.sql import SQLStore

    path = tmp_path / "edited.db"
    engine = Engine(SQLStore(f"sqlite:///{path}"), WORKFLOWS)
    try:
        engine.start("counter", Counter(), id="c1")
        engine.send("c1", "Add", {"by": 2})
        with sqlite3.connect(path) as db:  # an operator edits a row by hand
            db.execute("UPDATE gorch_history SET input = '{by: 2' WHERE kind = 'event'")
            db.execute("UPDATE gorch_history SET output = 'oops' WHERE kind = 'event'")
        [started, event] = engine.history("c1")
        assert started.note is None and started.input == {"n": 0, "stopped": False,
                                                           "wrapped": False}  # fmt: skip
        assert (event.kind, event.name, event.input, event.output) == (
            "event",
            "Add",
            "{by: 2",
            "oops",
        )
        assert event.note is not None
        assert "the stored input is not valid JSON" in event.note
        assert "the stored output is not valid JSON" in event.note
        # the rest of the engine reads past it
        assert [w.since for w in engine.waits("c1")] == [event.at]
        assert engine.send("c1", "Add", {"by": 1}) == {"n": 3, "by": 1}
        assert len(engine.history("c1", limit=1, newest_first=True)) == 1
    finally:
        engine.store.close()


def dumps_obj(obj: Any) -> Any:
    import orjson

    return orjson.loads(dumps(obj))


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
