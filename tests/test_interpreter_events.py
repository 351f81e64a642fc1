"""Tests of delivering events: which thread an event is for, and callbacks that come too late.

Beyond gorchestrate's Go suite (see test_interpreter.py): an event without a thread id finds the
one thread that waits for it, wherever it stands; several waiting threads need a thread id; an
unknown event lists what is awaited; a callback from an earlier wait is stale.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from _interpreter_helpers import (
    assert_finished,
    assert_unchanged,
    send,
    snapshot,
    start,
)

from gorch import (
    MAIN_THREAD,
    AmbiguousCallback,
    CallbackNotFound,
    For,
    Go,
    On,
    S,
    StaleCallback,
    Step,
    ThreadStatus,
    Wait,
    WaitFor,
    handle_callback,
    resume,
)

# -- Stale callbacks ---------------------------------------------------------------------------


@dataclass
class EventLoopWorkflow:
    n: int = 0

    def definition(self):
        return S(For("three turns", self.n < 3, Wait("turn wait", On("event", self.on_event))))

    def on_event(self) -> int:
        self.n += 1
        return self.n


def test_callback_from_an_earlier_turn_is_stale_and_changes_nothing():
    """A request carrying turn 1's pc is refused once the loop waits in turn 2."""
    wf = EventLoopWorkflow()
    state = start(wf)
    old = copy.deepcopy(state.threads[0].wait_events[0].req)
    assert old.pc != 0
    assert send(wf, state, "event", pc=old.pc) == 1
    resume(wf, state)
    current = state.threads[0].wait_events[0].req
    assert current.pc > old.pc

    before = snapshot(wf, state)
    with pytest.raises(StaleCallback) as ei:
        handle_callback(old, wf, state)
    assert ei.value.expected_pc == current.pc
    assert ei.value.got_pc == old.pc
    assert ei.value.event == "event"
    assert_unchanged(wf, state, before)

    # The current pc and pc=0 (no check) are accepted.
    assert handle_callback(copy.deepcopy(current), wf, state) == 2
    resume(wf, state)
    assert send(wf, state, "event", pc=0) == 3
    resume(wf, state)
    assert_finished(state)


# -- Finding the thread an event is for --------------------------------------------------------


@dataclass
class PayAfterDelivery:
    paid: float = 0.0
    log: list[str] = field(default_factory=list)

    def definition(self):
        return S(
            Go("customer pays", Wait("pay", On("Pay", self.pay))),
            Step("deliver", self.note("delivered")),
            WaitFor("payment", self.paid > 0),
            Step("close", self.note("closed")),
        )

    def pay(self, amount: float) -> str:
        self.paid = amount
        return "thanks"

    def note(self, what: str) -> Callable[[], None]:
        return lambda: self.log.append(what)


def test_event_without_thread_id_finds_a_thread_that_is_not_the_first():
    """Go flaw: an event without thread id was refused when the first thread waited on no event.

    Also: a WaitFor is re-checked when every thread is blocked, so main passes once "Pay"
    set the amount.
    """
    wf = PayAfterDelivery()
    state = start(wf)
    assert [(t.id, t.status) for t in state.threads] == [
        (MAIN_THREAD, ThreadStatus.WAITING_CONDITION),
        ("customer pays", ThreadStatus.WAITING_EVENT),
    ]
    assert wf.log == ["delivered"]
    assert send(wf, state, "Pay", 12.5) == "thanks"
    assert wf.paid == 12.5
    resume(wf, state)
    assert wf.log == ["delivered", "closed"]
    assert_finished(state)


@dataclass
class TwoWorkers:
    i: int = 0
    got: list[str] = field(default_factory=list)

    def definition(self):
        return S(
            For(
                "start workers",
                self.i < 2,
                Step("next worker", self.inc),
                Go("worker", Wait("worker wait", On("Pay", self.pay)), id=f"w{self.i}"),
            ),
            Wait("main wait", On("stop")),
        )

    def inc(self) -> None:
        self.i += 1

    def pay(self, who: str) -> None:
        self.got.append(who)


def test_event_waited_for_by_two_threads_needs_a_thread_id():
    """Two threads wait for "Pay": without thread_id it is ambiguous; with one it works."""
    wf = TwoWorkers()
    state = start(wf)
    assert [t.id for t in state.threads] == [MAIN_THREAD, "w1", "w2"]
    before = snapshot(wf, state)
    with pytest.raises(AmbiguousCallback) as ei:
        send(wf, state, "Pay", "anyone")
    assert ei.value.threads == ["w1", "w2"]
    assert "'w1'" in str(ei.value)
    assert "'w2'" in str(ei.value)
    assert_unchanged(wf, state, before)

    send(wf, state, "Pay", "second", thread_id="w2")
    assert wf.got == ["second"]
    resume(wf, state)
    assert [t.id for t in state.threads] == [MAIN_THREAD, "w1"]
    # Now only w1 waits for "Pay": no thread id needed.
    send(wf, state, "Pay", "first")
    assert wf.got == ["second", "first"]


def test_event_for_a_thread_that_does_not_exist_is_not_found():
    wf = TwoWorkers()
    state = start(wf)
    before = snapshot(wf, state)
    with pytest.raises(CallbackNotFound) as ei:
        send(wf, state, "Pay", "x", thread_id="w9")
    assert ei.value.thread == "w9"
    assert "'w9'" in str(ei.value)
    assert_unchanged(wf, state, before)


def test_unknown_event_lists_what_is_awaited_and_suggests_a_close_name():
    wf = TwoWorkers()
    state = start(wf)
    with pytest.raises(CallbackNotFound) as ei:
        send(wf, state, "Pya")
    assert ei.value.event == "Pya"
    assert ei.value.waiting_for == ["Pay", "stop"]
    assert "Did you mean 'Pay'" in str(ei.value)
    assert ei.value.workflow_id == "1"


@dataclass
class Decision:
    def definition(self):
        return S(Wait("for a request", On("Request")), Wait("for a decision", On("Decide")))


def test_an_event_the_workflow_has_but_does_not_await_now_is_named_as_such():
    wf = Decision()
    state = start(wf)
    with pytest.raises(CallbackNotFound) as ei:
        send(wf, state, "Decide")
    message = str(ei.value)
    assert "the workflow waits for 'Request'" in message
    assert "'Decide' is an event of this workflow (a case of S > Wait 'for a decision')" in message
    assert "but no thread waits there now" in message
    assert "Did you mean" not in message


def test_unknown_event_for_a_named_thread_says_the_thread_does_not_wait_for_it():
    """Errors must say what happened; the message must not claim the opposite."""
    wf = TwoWorkers()
    state = start(wf)
    with pytest.raises(CallbackNotFound) as ei:
        send(wf, state, "Pya", thread_id="w1")
    assert "thread 'w1' is waiting for event 'Pya'" not in str(ei.value)


def test_event_sent_twice_is_not_found_the_second_time():
    """A retried delivery after the wait ended is refused, not applied twice."""
    wf = EventLoopWorkflow()
    state = start(wf)
    send(wf, state, "event")
    before = snapshot(wf, state)
    with pytest.raises(CallbackNotFound):
        send(wf, state, "event")
    assert_unchanged(wf, state, before)
