"""Tests of the pure interpreter: resume, handle_callback and the statements they run.

Part 1 ports every scenario of gorchestrate/async's Go test suite (async_test.go). Part 2 covers
what DESIGN.md sections 1 and 2 pin beyond it, including each known flaw of the Go original that
gorch promises not to copy.
"""

from __future__ import annotations

import contextlib
import copy
import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from freezegun import freeze_time

import gorch
from gorch import (
    MAIN_THREAD,
    AmbiguousCallback,
    Break,
    CallbackNotFound,
    CallbackRequest,
    Case,
    CheckpointType,
    Continue,
    Default,
    DefinitionError,
    EventStatus,
    For,
    Go,
    GorchError,
    HandlerError,
    If,
    On,
    Return,
    S,
    StaleCallback,
    State,
    StateMismatchError,
    Step,
    StepError,
    StepLimitExceeded,
    Switch,
    Thread,
    ThreadStatus,
    Timeout,
    Wait,
    WaitFor,
    WorkflowFinishedError,
    WorkflowStatus,
    handle_callback,
    new_state,
    resume,
)
from gorch.interpreter import DEFAULT_MAX_STEPS

# --------------------------------------------------------------------------------------------
# Shared helpers

SETUP_DATA = '{"a":"b"}'


class DumbHandler:
    """The Go suite's DumbHandler: fixed setup data, a teardown that checks it, an echo handle.

    Every call is recorded in ``calls`` (a list owned by the workflow, since ``definition()``
    builds a new handler each time) as ``(method, event name, setup_data, extra)``.
    """

    type = "dumb"

    def __init__(self, f: Callable[[], object] | None = None, calls: list[Any] | None = None):
        self.f = f
        self.calls = calls if calls is not None else []

    def setup(self, req: CallbackRequest) -> str:
        self.calls.append(("setup", req.name, req.setup_data, req.pc))
        return SETUP_DATA

    def handle(self, req: CallbackRequest, input: Any) -> object:
        self.calls.append(("handle", req.name, req.setup_data, input))
        if self.f is not None:
            self.f()
        return input

    def teardown(self, req: CallbackRequest, handled: bool) -> None:
        self.calls.append(("teardown", req.name, req.setup_data, handled))
        if req.setup_data != SETUP_DATA:
            raise RuntimeError("Setup Or Teardown issue")


@dataclass
class Faults:
    """How many more times a FlakyHandler's setup / teardown fail, and what it was asked."""

    setup_failures: int = 0
    teardown_failures: int = 0
    calls: list[Any] = field(default_factory=list)


class FlakyHandler:
    """A Handler whose setup and teardown fail as long as ``faults`` says so."""

    type = "flaky"

    def __init__(self, faults: Faults) -> None:
        self.faults = faults

    def setup(self, req: CallbackRequest) -> str:
        self.faults.calls.append(("setup", req.name))
        if self.faults.setup_failures > 0:
            self.faults.setup_failures -= 1
            raise RuntimeError("mail server down")
        return "token"

    def handle(self, req: CallbackRequest, input: Any) -> object:
        self.faults.calls.append(("handle", req.name))
        return input

    def teardown(self, req: CallbackRequest, handled: bool) -> None:
        self.faults.calls.append(("teardown", req.name, handled))
        if self.faults.teardown_failures > 0:
            self.faults.teardown_failures -= 1
            raise RuntimeError("cannot release the token")


def start(wf: Any, workflow: str = "test") -> State:
    """A new state with id "1" (as in the Go suite), resumed once."""
    state = new_state("1", workflow)
    resume(wf, state)
    return state


def send(wf: Any, state: State, name: str, input: Any = None, **req: Any) -> object:
    """Deliver event ``name`` (with optional CallbackRequest fields) and return the output."""
    return handle_callback(CallbackRequest(name=name, **req), wf, state, input)


def snapshot(wf: Any, state: State) -> tuple[str, Any]:
    """What "changes nothing" compares: the state as JSON and a deep copy of the data."""
    return gorch.dumps(state), copy.deepcopy(wf)


def assert_unchanged(wf: Any, state: State, before: tuple[str, Any]) -> None:
    assert gorch.dumps(state) == before[0]
    assert wf == before[1]


def main_thread(state: State) -> Thread:
    t = state.thread(MAIN_THREAD)
    assert t is not None
    return t


def assert_finished(state: State) -> None:
    assert state.status is WorkflowStatus.FINISHED
    assert state.threads == []


# ============================================================================================
# Part 1: the Go suite (async_test.go), scenario by scenario


@dataclass
class EmptyWorkflow:
    def definition(self):
        return S()


def test_empty_workflow_finishes_in_one_unit():
    """TestEmpty: S() finishes at once; one unit of work, so pc == 1."""
    state = new_state("1", "empty")
    resume(EmptyWorkflow(), state)
    assert state.id == "1"
    assert state.workflow == "empty"
    assert_finished(state)
    assert state.pc == 1


@dataclass
class StepWorkflow:
    err: str = ""
    raised: list[Exception] = field(default_factory=list)

    def definition(self):
        return S(Step("step1", self.step1))

    def step1(self) -> None:
        if self.err:
            exc = RuntimeError(self.err)
            self.raised.append(exc)
            raise exc
        self.err = "updated"


def test_step_runs_and_finishes_with_pc_3():
    """TestStep: advance to the step, execute it, advance to the end: pc == 3."""
    wf = StepWorkflow()
    state = start(wf, "empty")
    assert_finished(state)
    assert state.pc == 3
    assert wf.err == "updated"


def test_step_error_keeps_thread_at_step_and_chains_cause():
    """TestStep (error half): the error says why, names the step, and chains the cause."""
    wf = StepWorkflow(err="err1")
    state = new_state("1", "empty")
    with pytest.raises(StepError) as ei:
        resume(wf, state)
    err = ei.value
    assert "err1" in str(err)
    assert err.step == "step1"
    assert err.thread == MAIN_THREAD
    assert err.workflow_id == "1"
    assert err.__cause__ is wf.raised[0]
    t = main_thread(state)
    assert t.status is ThreadStatus.EXECUTING
    assert t.cur_step == "step1"
    assert state.status is not WorkflowStatus.FINISHED


def test_step_error_is_retried_by_a_later_resume():
    """TestStep "step error and retry": after fixing the cause, resume reruns the step."""
    wf = StepWorkflow(err="err1")
    state = new_state("1", "empty")
    with pytest.raises(StepError):
        resume(wf, state)
    with pytest.raises(StepError):  # still broken: still retried, still failing
        resume(wf, state)
    assert len(wf.raised) == 2
    wf.err = ""
    resume(wf, state)
    assert wf.err == "updated"
    assert_finished(state)


@dataclass
class HandlerWorkflow:
    log: str = ""
    calls: list[Any] = field(default_factory=list, compare=False)

    def definition(self):
        return S(
            Step("start", self.start),
            Wait(
                "wait",
                On(
                    "event",
                    DumbHandler(self.sync, self.calls),
                    Step("after handler", self.after_handler),
                ),
            ),
        )

    def start(self) -> None:
        self.log += "start"

    def sync(self) -> None:
        self.log += ",sync"

    def after_handler(self) -> None:
        self.log += ",async"


def test_handler_wait_is_set_up_with_its_request():
    """TestHandler, first resume: the thread waits with one set-up event and a full request."""
    wf = HandlerWorkflow()
    state = start(wf, "empty")
    assert state.status is WorkflowStatus.WAITING
    assert len(state.threads) == 1
    assert state.pc == 3  # advance to "start", execute it, advance to the wait
    t = state.threads[0]
    assert t.cur_step == "wait"
    assert t.id == MAIN_THREAD
    assert t.name == MAIN_THREAD
    assert t.status is ThreadStatus.WAITING_EVENT
    assert t.pc == 3
    assert len(t.wait_events) == 1
    ev = t.wait_events[0]
    assert ev.error == ""
    assert ev.status is EventStatus.SETUP
    assert ev.type == "dumb"
    assert ev.handled is False
    assert ev.req == CallbackRequest(
        workflow_id="1", thread_id=MAIN_THREAD, name="event", pc=3, setup_data=SETUP_DATA
    )
    assert wf.log == "start"
    assert wf.calls == [("setup", "event", "", 3)]


def test_handler_resume_while_waiting_changes_nothing():
    """TestHandler: resuming a waiting workflow again changes neither state nor data."""
    wf = HandlerWorkflow()
    state = start(wf, "empty")
    before = snapshot(wf, state)
    calls = list(wf.calls)
    resume(wf, state)
    assert_unchanged(wf, state, before)
    assert wf.calls == calls  # no second setup
    assert state.threads[0].wait_events[0].status is EventStatus.SETUP
    assert state.pc == 3


def test_handler_unknown_event_is_refused_and_changes_nothing():
    """TestHandler: an event nobody waits for ("blabla") is CallbackNotFound; no change."""
    wf = HandlerWorkflow()
    state = start(wf, "empty")
    before = snapshot(wf, state)
    with pytest.raises(CallbackNotFound) as ei:
        send(wf, state, "blabla")
    assert ei.value.event == "blabla"
    assert ei.value.waiting_for == ["event"]
    assert_unchanged(wf, state, before)


def test_handler_callback_runs_handler_and_marks_thread_to_resume():
    """TestHandler: the callback returns the handler's output and only marks the thread.

    Unlike Go's HandleEvent, gorch's handle_callback does not run on: "after handler" waits for
    the next resume.
    """
    wf = HandlerWorkflow()
    state = start(wf, "empty")
    out = send(wf, state, "event", "abc")
    assert out == "abc"
    assert wf.log == "start,sync"
    t = state.threads[0]
    assert t.pc == 4
    assert state.pc == 4
    assert t.status is ThreadStatus.RESUMING
    assert t.cur_callback == "event"
    assert state.status is WorkflowStatus.RESUMING
    assert ("handle", "event", SETUP_DATA, "abc") in wf.calls
    # The wait ended; its event waits for the next resume to be torn down.
    assert [e.status for e in t.wait_events] == [EventStatus.PENDING_TEARDOWN]
    assert t.wait_events[0].handled is True


def test_handler_final_resume_tears_down_and_finishes():
    """TestHandler, last resume: runs "after handler", tears the event down, finishes.

    state.pc is 7 where Go says 6: Go's HandleEvent also advanced the thread to "after
    handler", while gorch's handle_callback (pc 4) leaves that to resume, which advances to the
    step (5), executes it (6) and advances to the end (7).
    """
    wf = HandlerWorkflow()
    state = start(wf, "empty")
    send(wf, state, "event", "abc")
    resume(wf, state)
    assert wf.log == "start,sync,async"
    assert_finished(state)
    assert state.pc == 7
    assert wf.calls[-1] == ("teardown", "event", SETUP_DATA, True)
    assert [c[0] for c in wf.calls] == ["setup", "handle", "teardown"]


@dataclass
class LoopWorkflow:
    i: int = 0
    log: str = ""
    calls: list[Any] = field(default_factory=list, compare=False)

    def definition(self):
        return S(
            For("count to five", self.i < 5, Step("step1", self.step1)),
            Step("reset i", self.reset),
            self.event_loop(),
        )

    def event_loop(self):
        return For(
            "two events",
            self.i < 2,
            Wait(
                "wait in loop for event",
                On("event", DumbHandler(self.h, self.calls), Step("step2", self.step2)),
            ),
        )

    def step1(self) -> None:
        self.i += 1
        self.log += "l"

    def reset(self) -> None:
        self.i = 0

    def h(self) -> None:
        self.log += "h"
        self.i += 1

    def step2(self) -> None:
        self.log += "a"


@dataclass
class BreakWorkflow(LoopWorkflow):
    def definition(self):
        return S(
            For(
                "forever",
                True,
                Step("step1", self.step1),
                If(self.i >= 5, "enough", Break()),
            ),
            Step("reset i", self.reset),
            self.event_loop(),
        )


@pytest.mark.parametrize("cls", [LoopWorkflow, BreakWorkflow], ids=["TestLoop", "TestBreak"])
def test_loop_with_steps_then_loop_with_events(cls):
    """TestLoop / TestBreak: five steps in a loop, then two turns that each wait for "event"."""
    wf = cls()
    state = start(wf)
    assert wf.log == "lllll"
    assert state.status is WorkflowStatus.WAITING
    assert len(state.threads) == 1
    assert state.threads[0].status is ThreadStatus.WAITING_EVENT
    assert len(state.threads[0].wait_events) == 1

    send(wf, state, "event")
    assert wf.log == "lllllh"
    assert state.threads[0].status is ThreadStatus.RESUMING

    resume(wf, state)
    assert wf.log == "lllllha"
    assert state.status is WorkflowStatus.WAITING
    assert state.threads[0].status is ThreadStatus.WAITING_EVENT
    assert [e.status for e in state.threads[0].wait_events] == [EventStatus.SETUP]

    send(wf, state, "event")
    assert wf.log == "lllllhah"
    assert state.threads[0].status is ThreadStatus.RESUMING

    resume(wf, state)
    assert wf.log == "lllllhaha"
    assert_finished(state)
    # Each of the two waits was set up and torn down once.
    assert [c[0] for c in wf.calls] == ["setup", "handle", "teardown"] * 2


@dataclass
class IfElseWorkflow:
    str: str = ""
    calls: list[Any] = field(default_factory=list, compare=False)

    def definition(self):
        return S(
            If(self.str == "", "empty", Step("set to b", self.set_b))
            .elif_(self.str == "c", "is c", Return())
            .else_("other", Step("duplicate", self.duplicate), Return()),
            Switch(
                Case(self.str == "a", "case a", Step("add a", self.add("a"))),
                Case(
                    self.str == "b",
                    "case b",
                    Step("add b", self.add("b")),
                    Wait("wait after b", On("event", DumbHandler(self.add("h"), self.calls))),
                ),
            ),
        )

    def set_b(self) -> None:
        self.str = "b"

    def duplicate(self) -> None:
        self.str += self.str

    def add(self, text: str) -> Callable[[], None]:
        def action() -> None:
            self.str += text

        return action


def test_if_else_takes_the_else_branch_and_returns():
    """TestIfElse with "a": the else branch doubles the text and returns before the Switch."""
    wf = IfElseWorkflow(str="a")
    state = start(wf)
    assert wf.str == "aa"
    assert_finished(state)


def test_if_else_takes_the_if_branch_then_a_switch_case_that_waits():
    """TestIfElse with "": "set to b", then case b adds "b" and waits; the event adds "h"."""
    wf = IfElseWorkflow(str="")
    state = start(wf)
    assert wf.str == "bb"
    assert state.status is WorkflowStatus.WAITING
    assert state.threads[0].status is ThreadStatus.WAITING_EVENT
    assert state.threads[0].cur_step == "wait after b"
    send(wf, state, "event")
    assert wf.str == "bbh"
    resume(wf, state)
    assert wf.str == "bbh"
    assert_finished(state)


def test_if_else_takes_the_elif_branch_and_returns():
    """TestIfElse with "c": the elif branch returns at once; nothing touches the text."""
    wf = IfElseWorkflow(str="c")
    state = start(wf)
    assert wf.str == "c"
    assert_finished(state)


@dataclass
class GoWorkflow:
    i: int = 0
    wg: int = 0
    log: str = ""

    def definition(self):
        return S(
            For(
                "start five",
                self.i < 5,
                Step("inc", self.inc),
                Go("parallel", Step("log", self.log_a), id=str(self.i)),
            ),
            self.join(),
            Step("done", self.done),
        )

    def join(self):
        return Wait("wait for goroutines", On("event", DumbHandler()))

    def inc(self) -> None:
        self.i += 1
        self.wg += 1

    def log_a(self) -> None:
        self.log += "a"
        self.wg -= 1

    def done(self) -> None:
        self.log += "_done"


def test_go_in_a_loop_starts_threads_with_ids_from_data():
    """TestGo: five threads "1".."5" run while main waits; the event lets main finish."""
    wf = GoWorkflow()
    state = new_state("1", "go")
    seen: list[list[str]] = []
    resume(wf, state, lambda _: seen.append([t.id for t in state.threads]))
    assert wf.log == "aaaaa"
    assert wf.wg == 0
    assert state.status is WorkflowStatus.WAITING
    assert [t.id for t in state.threads] == [MAIN_THREAD]
    assert state.threads[0].status is ThreadStatus.WAITING_EVENT
    assert [MAIN_THREAD, "1", "2", "3", "4", "5"] in seen
    assert {t for ids in seen for t in ids} == {MAIN_THREAD, "1", "2", "3", "4", "5"}

    send(wf, state, "event")
    resume(wf, state)
    assert wf.log == "aaaaa_done"
    assert_finished(state)


@dataclass
class WaitGroupWorkflow(GoWorkflow):
    def join(self):
        return WaitFor("waiting for WG", self.wg == 0)


def test_wait_for_as_a_wait_group():
    """TestWait: WaitFor(wg == 0) is passed once the five threads ran; one resume finishes."""
    wf = WaitGroupWorkflow()
    state = start(wf)
    assert wf.log == "aaaaa_done"
    assert_finished(state)


@dataclass
class SubWorkflow:
    log: str = ""

    def definition(self):
        return S(
            Step("step1", self.logger("1")),
            self.sub1("sub1_"),
            self.sub1("sub1,2_"),
        )

    def sub1(self, prefix: str):
        return S(
            Step(prefix + "_step2", self.logger("2")),
            self.sub2(prefix + "_sub2,1_"),
            self.sub2(prefix + "_sub2,2_"),
        )

    def sub2(self, prefix: str):
        return S(Step(prefix + "_step3", self.logger("3")))

    def logger(self, text: str) -> Callable[[], None]:
        def action() -> None:
            self.log += text

        return action


def test_nested_sections_run_in_order():
    """TestSub: sections nested in sections run depth first, in order."""
    wf = SubWorkflow()
    state = start(wf)
    assert wf.log == "1233233"
    assert_finished(state)


# ============================================================================================
# Part 2: beyond the Go suite

# -- Continue and Break ------------------------------------------------------------------------


@dataclass
class ContinueWorkflow:
    i: int = 0
    recorded: list[int] = field(default_factory=list)

    def definition(self):
        return S(
            For(
                "four turns",
                self.i < 4,
                Step("inc", self.inc),
                If(self.i % 2 == 0, "even", Continue()),
                Step("record", self.record),
            )
        )

    def inc(self) -> None:
        self.i += 1

    def record(self) -> None:
        self.recorded.append(self.i)


def test_continue_skips_the_rest_of_the_turn():
    """Go flaw "Continue did nothing": only odd turns reach "record"."""
    wf = ContinueWorkflow()
    state = start(wf)
    assert wf.recorded == [1, 3]
    assert wf.i == 4
    assert_finished(state)


@dataclass
class ContinueInSwitchWorkflow:
    i: int = 0
    log: list[str] = field(default_factory=list)

    def definition(self):
        return S(
            For(
                "turns",
                self.i < 4,
                Step("inc", self.inc),
                Switch(
                    Case(self.i % 2 == 0, "even case", Continue()),
                    Default("odd case", Step("odd", self.note("odd"))),
                ),
                Step("after switch", self.note("after")),
            ),
            Step("end", self.note("end")),
        )

    def inc(self) -> None:
        self.i += 1

    def note(self, what: str) -> Callable[[], None]:
        def action() -> None:
            self.log.append(f"{what}{self.i}")

        return action


def test_continue_inside_a_switch_case_continues_the_enclosing_loop():
    """Continue in a Case skips the rest of the loop turn, not just the Switch."""
    wf = ContinueInSwitchWorkflow()
    state = start(wf)
    assert wf.log == ["odd1", "after1", "odd3", "after3", "end4"]
    assert_finished(state)


@dataclass
class BreakNowWorkflow:
    log: list[str] = field(default_factory=list)

    def definition(self):
        return S(
            For(
                "loop",
                True,
                Step("before", self.note("before")),
                If(True, "always", Break(), Step("in branch after break", self.note("branch"))),
                Step("after break", self.note("after")),
            ),
            Step("after loop", self.note("end")),
        )

    def note(self, what: str) -> Callable[[], None]:
        return lambda: self.log.append(what)


def test_break_ends_the_turn_immediately():
    """Go flaw "Break did not end the current iteration": nothing after Break runs."""
    wf = BreakNowWorkflow()
    state = start(wf)
    assert wf.log == ["before", "end"]
    assert_finished(state)


@dataclass
class BreakInEventWorkflow:
    turns: int = 0

    def definition(self):
        return S(
            For(
                "until stop",
                True,
                Wait(
                    "for a command",
                    On("stop", Break()),
                    On("tick", Step("count", self.count)),
                ),
            ),
        )

    def count(self) -> None:
        self.turns += 1


def test_break_inside_an_event_body_leaves_the_loop():
    """Break in an On body leaves the For around the Wait."""
    wf = BreakInEventWorkflow()
    state = start(wf)
    send(wf, state, "tick")
    resume(wf, state)
    assert wf.turns == 1
    assert state.status is WorkflowStatus.WAITING
    send(wf, state, "stop")
    resume(wf, state)
    assert wf.turns == 1
    assert_finished(state)


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
    """Errors must say what happened (DESIGN.md 2); the message must not claim the opposite."""
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


# -- A state that names what the code no longer has --------------------------------------------


@dataclass
class V1:
    log: list[str] = field(default_factory=list)

    def definition(self):
        return S(
            Step("first", lambda: self.log.append("first")),
            Wait("old wait", On("event")),
        )


@dataclass
class V2:
    log: list[str] = field(default_factory=list)

    def definition(self):
        return S(
            Step("first", lambda: self.log.append("first")),
            Wait("new wait", On("event")),
            Step("second", lambda: self.log.append("second")),
        )


def test_resume_with_code_that_lacks_the_current_wait_is_refused():
    """DESIGN 4: a state naming statements the code no longer has: precise error, no change."""
    state = start(V1())
    v2 = V2()
    before = snapshot(v2, state)
    with pytest.raises(StateMismatchError) as ei:
        resume(v2, state)
    assert "old wait" in str(ei.value)
    assert ei.value.statement == "old wait"
    assert ei.value.thread == MAIN_THREAD
    assert v2.log == []
    assert_unchanged(v2, state, before)


def test_callback_with_code_that_lacks_the_current_wait_is_refused():
    state = start(V1())
    v2 = V2()
    before = snapshot(v2, state)
    with pytest.raises(StateMismatchError):
        send(v2, state, "event")
    assert v2.log == []
    assert_unchanged(v2, state, before)


@dataclass
class EventInOneWait:
    log: list[str] = field(default_factory=list)

    def definition(self):
        return S(Wait("w", On("a", self.on_a)))

    def on_a(self) -> None:
        self.log.append("old a")


@dataclass
class EventMovedToAnotherWait:
    log: list[str] = field(default_factory=list)

    def definition(self):
        return S(
            Wait("w", On("b")),
            Wait("x", On("a", self.on_a)),
            Step("s", lambda: self.log.append("s")),
        )

    def on_a(self) -> None:
        self.log.append("new a")


def test_callback_for_an_event_that_moved_to_another_wait_is_refused():
    """DESIGN 4: a state the code no longer matches gets a precise error and changes nothing."""
    state = start(EventInOneWait())
    assert main_thread(state).cur_step == "w"
    wf = EventMovedToAnotherWait()
    before = snapshot(wf, state)
    with pytest.raises(StateMismatchError):
        send(wf, state, "a")
    assert wf.log == []
    assert_unchanged(wf, state, before)


def test_thread_with_an_unknown_go_name_is_refused():
    """Go flaw: an unknown thread name silently re-ran the main body."""
    wf = V1()
    state = new_state("1", "v1")
    state.threads.append(Thread(id="ghost", name="ghost go", status=ThreadStatus.RESUMING))
    before = snapshot(wf, state)
    with pytest.raises(StateMismatchError) as ei:
        resume(wf, state)
    assert "ghost go" in str(ei.value)
    assert ei.value.thread == "ghost"
    assert wf.log == []
    assert_unchanged(wf, state, before)


# -- The step bound ----------------------------------------------------------------------------


@dataclass
class Forever:
    ticks: int = 0

    def definition(self):
        return S(For("forever", True, Step("tick", self.tick)))

    def tick(self) -> None:
        self.ticks += 1


def test_step_limit_stops_after_exactly_max_steps_and_can_be_resumed():
    wf = Forever()
    state = new_state("1", "forever")
    with pytest.raises(StepLimitExceeded) as ei:
        resume(wf, state, max_steps=100)
    assert ei.value.limit == 100
    assert ei.value.workflow_id == "1"
    assert wf.ticks == 100
    t = main_thread(state)
    assert t.status is ThreadStatus.EXECUTING
    assert t.cur_step == "tick"
    with pytest.raises(StepLimitExceeded):
        resume(wf, state, max_steps=100)
    assert wf.ticks == 200


@dataclass
class CountTo:
    limit: int
    n: int = 0

    def definition(self):
        return S(For("count", self.n < self.limit, Step("count one", self.inc)))

    def inc(self) -> None:
        self.n += 1


def test_default_step_limit_is_ten_thousand_steps():
    assert DEFAULT_MAX_STEPS == 10_000
    wf = CountTo(limit=10_001)
    state = new_state("1", "count")
    with pytest.raises(StepLimitExceeded) as ei:
        resume(wf, state)
    assert ei.value.limit == 10_000
    assert wf.n == 10_000
    resume(wf, state)  # the state can go on: one step left
    assert wf.n == 10_001
    assert_finished(state)


@pytest.mark.parametrize("limit", [9_999, 10_000])
def test_a_resume_within_the_default_step_limit_finishes(limit):
    """ "More than" the bound stops: 9,999 and exactly 10,000 steps both finish."""
    wf = CountTo(limit=limit)
    state = start(wf)
    assert wf.n == limit
    assert_finished(state)


@dataclass
class ThreeByThree:
    i: int = 0
    steps: int = 0

    def definition(self):
        return S(
            For(
                "three turns",
                self.i < 3,
                Step("a", self.inc),
                Step("b", self.inc),
                Step("c", self.next_turn),
            )
        )

    def inc(self) -> None:
        self.steps += 1

    def next_turn(self) -> None:
        self.steps += 1
        self.i += 1


def test_step_limit_counts_executed_steps_not_loop_turns():
    """Go flaw "the loop guard counted loop turns": 3 turns of 3 steps need a bound of 9."""
    wf = ThreeByThree()
    resume(wf, state := new_state("1", "x"), max_steps=9)
    assert wf.steps == 9
    assert_finished(state)

    wf = ThreeByThree()
    with pytest.raises(StepLimitExceeded):
        resume(wf, new_state("1", "x"), max_steps=8)
    assert wf.steps == 8


@dataclass
class ManyTurns:
    i: int = 0
    steps: int = 0

    def definition(self):
        return S(
            For(
                "5000 turns",
                self.i < 5_000,
                Wait("for a tick", On("tick", self.tick)),
                Step("x", self.step),
                Step("y", self.step),
                Step("z", self.step),
            )
        )

    def tick(self) -> None:
        self.i += 1

    def step(self) -> None:
        self.steps += 1


def test_a_long_loop_that_waits_every_turn_never_hits_the_bound():
    """5,000 turns and 15,000 steps across many resumes: the bound is per resume."""
    wf = ManyTurns()
    state = start(wf)
    turns = 0
    while state.status is not WorkflowStatus.FINISHED:
        send(wf, state, "tick")
        resume(wf, state)
        turns += 1
    assert turns == 5_000
    assert wf.steps == 15_000
    assert_finished(state)


# -- Checkpoints -------------------------------------------------------------------------------


@dataclass
class CheckpointWorkflow:
    done: bool = False
    calls: list[Any] = field(default_factory=list, compare=False)

    def definition(self):
        return S(
            Step("a", self.a),
            WaitFor("done", self.done),
            Wait("w", On("e", DumbHandler(calls=self.calls))),
        )

    def a(self) -> None:
        self.done = True


def test_checkpoint_sequence_of_resumes():
    wf = CheckpointWorkflow()
    state = new_state("1", "cp")
    seen: list[CheckpointType] = []
    resume(wf, state, seen.append)
    assert seen == [
        CheckpointType.AFTER_RESUME,  # advance to "a"
        CheckpointType.AFTER_STEP,  # ran "a"
        # advanced to WaitFor "done", which holds: passed straight on, with no checkpoint in
        # between (a state saved there would let other threads go first once reloaded)
        CheckpointType.AFTER_CONDITION,
        CheckpointType.AFTER_RESUME,  # advance to Wait "w"
        CheckpointType.AFTER_SETUP,  # set up "e"
    ]
    send(wf, state, "e")
    seen.clear()
    resume(wf, state, seen.append)
    assert seen == [
        CheckpointType.AFTER_TEARDOWN,  # tore down "e"
        CheckpointType.AFTER_RESUME,  # advance to the end
    ]
    assert_finished(state)
    assert [v.value for v in CheckpointType] == [
        "afterStep",
        "afterSetup",
        "afterTeardown",
        "afterResume",
        "afterCondition",
    ]


class SaveFailed(Exception):
    pass


def test_exception_from_checkpoint_propagates_unchanged_and_resume_continues():
    wf = StepWorkflow()
    state = new_state("1", "cp")
    boom = SaveFailed("database is gone")

    def checkpoint(kind: CheckpointType) -> None:
        if kind is CheckpointType.AFTER_STEP:
            raise boom

    with pytest.raises(SaveFailed) as ei:
        resume(wf, state, checkpoint)
    assert ei.value is boom
    assert wf.err == "updated"
    # The step completed before the checkpoint; a later resume goes on without rerunning it.
    t = main_thread(state)
    assert t.status is ThreadStatus.RESUMING
    assert t.cur_step == "step1"
    wf.err = "would fail if step1 ran again"
    resume(wf, state)
    assert_finished(state)


# -- Finished workflows ------------------------------------------------------------------------


def test_resume_of_a_finished_workflow_is_refused():
    wf = StepWorkflow()
    state = start(wf)
    assert_finished(state)
    with pytest.raises(WorkflowFinishedError) as ei:
        resume(wf, state)
    assert ei.value.workflow_id == "1"


def test_callback_on_a_finished_workflow_is_refused():
    wf = IfElseWorkflow(str="a")
    state = start(wf)
    assert_finished(state)
    before = snapshot(wf, state)
    with pytest.raises(WorkflowFinishedError):
        send(wf, state, "event")
    assert_unchanged(wf, state, before)


# -- Return, setup and teardown ----------------------------------------------------------------


@dataclass
class ReturnWhileOthersWait:
    calls: list[Any] = field(default_factory=list, compare=False)

    def definition(self):
        return S(
            Go("side", Wait("side wait", On("side event", DumbHandler(calls=self.calls)))),
            Wait("main wait", On("finish")),
            Return(),
            Step("never", self.never),
        )

    def never(self) -> None:
        raise AssertionError("ran past Return")


def test_return_in_main_tears_down_the_other_threads_waits():
    """Go flaw: Return in the main thread abandoned the other threads' waits."""
    wf = ReturnWhileOthersWait()
    state = start(wf)
    assert [t.id for t in state.threads] == [MAIN_THREAD, "side"]
    side = state.thread("side")
    assert side is not None
    assert wf.calls == [("setup", "side event", "", side.pc)]
    send(wf, state, "finish")
    resume(wf, state)
    assert_finished(state)
    assert wf.calls[-1] == ("teardown", "side event", SETUP_DATA, False)
    assert [c[0] for c in wf.calls] == ["setup", "teardown"]


@dataclass
class ReturnInGo:
    log: list[str] = field(default_factory=list)

    def definition(self):
        return S(
            Go(
                "short thread",
                Step("go step", lambda: self.log.append("go")),
                Return(),
                Step("after go return", lambda: self.log.append("never")),
            ),
            Wait("main wait", On("finish")),
            Step("main step", lambda: self.log.append("main")),
        )


def test_return_in_a_go_thread_ends_only_that_thread():
    wf = ReturnInGo()
    state = start(wf)
    assert wf.log == ["go"]
    assert [t.id for t in state.threads] == [MAIN_THREAD]
    assert state.status is WorkflowStatus.WAITING
    send(wf, state, "finish")
    resume(wf, state)
    assert wf.log == ["go", "main"]
    assert_finished(state)


class SaveFailedOnTeardown(Exception):
    pass


def test_checkpoint_error_during_final_teardowns_leaves_a_state_a_later_resume_completes():
    """DESIGN 2: a call that raises leaves a state that a later call continues correctly."""
    wf = ReturnWhileOthersWait()
    state = start(wf)
    send(wf, state, "finish")

    def checkpoint(kind: CheckpointType) -> None:
        if kind is CheckpointType.AFTER_TEARDOWN:
            raise SaveFailedOnTeardown

    with pytest.raises(SaveFailedOnTeardown):
        resume(wf, state, checkpoint)
    assert wf.calls[-1] == ("teardown", "side event", SETUP_DATA, False)
    with contextlib.suppress(WorkflowFinishedError):
        resume(wf, state)
    assert_finished(state)


@dataclass
class FlakyWait:
    faults: Faults = field(default_factory=Faults)

    def definition(self):
        return S(Wait("mail", On("reply", FlakyHandler(self.faults))))


def test_failed_setup_is_recorded_and_retried_by_the_next_resume():
    wf = FlakyWait(Faults(setup_failures=1))
    state = start(wf)
    ev = state.threads[0].wait_events[0]
    assert ev.status is EventStatus.SETUP_ERROR
    assert "mail server down" in ev.error
    assert state.status is WorkflowStatus.WAITING

    resume(wf, state)
    ev = state.threads[0].wait_events[0]
    assert ev.status is EventStatus.SETUP
    assert ev.error == ""
    assert ev.req.setup_data == "token"
    assert wf.faults.calls == [("setup", "reply"), ("setup", "reply")]


def test_thread_whose_setup_failed_still_accepts_its_event():
    wf = FlakyWait(Faults(setup_failures=100))
    state = start(wf)
    assert state.threads[0].wait_events[0].status is EventStatus.SETUP_ERROR
    assert send(wf, state, "reply", "hello") == "hello"
    resume(wf, state)
    assert_finished(state)


@dataclass
class TwoFlakyWaits:
    faults: Faults = field(default_factory=Faults)
    calls: list[Any] = field(default_factory=list)

    def definition(self):
        return S(
            Wait("first wait", On("first", FlakyHandler(self.faults))),
            Wait("second wait", On("second", DumbHandler(calls=self.calls))),
            Step("done", lambda: self.calls.append("done")),
        )


def test_failed_teardown_is_kept_retried_and_does_not_wedge_later_callbacks():
    """Go flaw: teardown errors were never retried and then wedged later callbacks."""
    wf = TwoFlakyWaits(Faults(teardown_failures=100))
    state = start(wf)
    send(wf, state, "first")
    resume(wf, state)
    t = main_thread(state)
    assert t.cur_step == "second wait"
    kept = [e for e in t.wait_events if e.req.name == "first"]
    assert len(kept) == 1
    assert kept[0].status is EventStatus.TEARDOWN_ERROR
    assert kept[0].handled is True
    assert "cannot release the token" in kept[0].error
    teardowns = wf.faults.calls.count(("teardown", "first", True))
    assert teardowns >= 1

    # The failed teardown does not block the next event.
    send(wf, state, "second")
    resume(wf, state)
    assert wf.calls[-1] == "done"
    assert wf.faults.calls.count(("teardown", "first", True)) > teardowns  # retried
    assert state.status is WorkflowStatus.FINISHED
    assert [e.status for t in state.threads for e in t.wait_events] == [EventStatus.TEARDOWN_ERROR]

    # Once the cause is fixed, the next resume tears it down and nothing is left.
    wf.faults.teardown_failures = 0
    resume(wf, state)
    assert_finished(state)
    assert wf.faults.calls[-1] == ("teardown", "first", True)
    with pytest.raises(WorkflowFinishedError):
        resume(wf, state)


def test_failed_teardown_retry_succeeds_while_the_workflow_still_waits():
    wf = TwoFlakyWaits(Faults(teardown_failures=1))
    state = start(wf)
    send(wf, state, "first")
    resume(wf, state)
    assert [e.status for e in main_thread(state).wait_events] == [
        EventStatus.TEARDOWN_ERROR,
        EventStatus.SETUP,
    ]
    resume(wf, state)
    assert [(e.req.name, e.status) for e in main_thread(state).wait_events] == [
        ("second", EventStatus.SETUP)
    ]
    assert wf.faults.calls.count(("teardown", "first", True)) == 2


# -- WaitFor -----------------------------------------------------------------------------------


@dataclass
class WaitForWorkflow:
    ready: bool = False
    log: list[str] = field(default_factory=list)

    def definition(self):
        return S(
            Go("preparer", Wait("prepare", On("Ready", self.set_ready))),
            WaitFor("until ready", self.ready),
            Step("go on", lambda: self.log.append("went on")),
        )

    def set_ready(self) -> None:
        self.ready = True


def test_wait_for_without_handler_blocks_then_passes():
    """Go flaw: WaitFor without a handler crashed."""
    wf = WaitForWorkflow()
    state = start(wf)
    t = main_thread(state)
    assert t.status is ThreadStatus.WAITING_CONDITION
    assert t.cur_step == "until ready"
    assert state.status is WorkflowStatus.WAITING
    send(wf, state, "Ready")
    resume(wf, state)
    assert wf.log == ["went on"]
    assert_finished(state)


@dataclass
class WaitForHolds:
    log: list[str] = field(default_factory=list)

    def definition(self):
        return S(
            WaitFor("already true", True, lambda: self.log.append("handler")),
            Step("after", lambda: self.log.append("after")),
        )


def test_wait_for_whose_condition_already_holds_passes_straight_on():
    wf = WaitForHolds()
    state = start(wf)
    assert wf.log == ["handler", "after"]
    assert_finished(state)


def test_wait_for_recheck_checkpoints_after_condition():
    """A WaitFor passed when every thread is blocked is saved with AFTER_CONDITION."""
    wf = WaitForWorkflow()
    state = start(wf)
    send(wf, state, "Ready")
    seen: list[CheckpointType] = []
    resume(wf, state, seen.append)
    assert seen == [
        CheckpointType.AFTER_RESUME,  # "preparer" runs off its body and ends
        CheckpointType.AFTER_CONDITION,  # main passes "until ready"
        CheckpointType.AFTER_RESUME,  # advance to "go on"
        CheckpointType.AFTER_STEP,  # ran "go on"
        CheckpointType.AFTER_RESUME,  # advance to the end
    ]


@dataclass
class FailingWaitForHandler:
    fail: bool = True
    log: list[str] = field(default_factory=list)

    def definition(self):
        return S(
            WaitFor("ready", True, self.on_ready),
            Step("after", lambda: self.log.append("after")),
        )

    def on_ready(self) -> None:
        if self.fail:
            raise ValueError("not today")
        self.log.append("handler")


def test_wait_for_handler_that_raises_is_a_handler_error_and_is_retried():
    wf = FailingWaitForHandler()
    state = new_state("1", "wf")
    with pytest.raises(HandlerError) as ei:
        resume(wf, state)
    assert isinstance(ei.value.__cause__, ValueError)
    assert ei.value.event == "ready"
    t = main_thread(state)
    assert (t.status, t.cur_step) == (ThreadStatus.WAITING_CONDITION, "ready")
    assert wf.log == []
    wf.fail = False
    resume(wf, state)
    assert wf.log == ["handler", "after"]
    assert_finished(state)


# -- Timeout -----------------------------------------------------------------------------------


@dataclass
class Cart:
    items: list[str] = field(default_factory=list)
    expired: bool = False

    def definition(self):
        return S(
            Wait(
                "w",
                Timeout("cart timed out", timedelta(hours=24), Step("expire", self.expire)),
                On("Add", self.add),
            )
        )

    def expire(self) -> None:
        self.expired = True

    def add(self, item: str) -> None:
        self.items.append(item)


def test_timeout_event_records_its_due_time():
    """Timeout's setup_data is the due time (now + after) as ISO-8601 UTC text."""
    with freeze_time("2026-01-01 00:00:00"):
        wf = Cart()
        state = start(wf)
    events = {e.req.name: e for e in main_thread(state).wait_events}
    timer = events["cart timed out"]
    assert timer.type == "timeout"
    assert timer.status is EventStatus.SETUP
    assert timer.req.setup_data == "2026-01-02T00:00:00+00:00"
    assert timer.req.pc == main_thread(state).pc != 0
    assert timer.req.thread_id == MAIN_THREAD
    assert timer.req.workflow_id == "1"
    assert events["Add"].status is EventStatus.SETUP
    assert gorch.waiting_for(state) == ["Add", "cart timed out"]


def test_other_event_of_a_wait_with_a_timeout_ends_the_wait():
    with freeze_time("2026-01-01 00:00:00"):
        wf = Cart()
        state = start(wf)
    send(wf, state, "Add", "pizza")
    resume(wf, state)
    assert wf.items == ["pizza"]
    assert wf.expired is False
    assert_finished(state)


def test_timeout_fires_when_delivered_by_hand():
    """A test (or the engine) delivers a due timer with handle_callback; its body runs."""
    with freeze_time("2026-01-01 00:00:00"):
        wf = Cart()
        state = start(wf)
    out = send(wf, state, "cart timed out")
    assert out == "2026-01-02T00:00:00+00:00"
    assert wf.expired is False
    resume(wf, state)
    assert wf.expired is True
    assert wf.items == []
    assert_finished(state)


@dataclass
class SecondsTimeout:
    fired: bool = False

    def definition(self):
        return S(Wait("short", Timeout("90 s", 90, Step("fire", self.fire))))

    def fire(self) -> None:
        self.fired = True


def test_timeout_given_in_seconds():
    with freeze_time("2026-01-01 00:00:00"):
        wf = SecondsTimeout()
        state = start(wf)
    assert main_thread(state).wait_events[0].req.setup_data == "2026-01-01T00:01:30+00:00"


@dataclass
class TimedTurns:
    n: int = 0

    def definition(self):
        return S(
            For(
                "turns",
                self.n < 3,
                Wait("turn", Timeout("turn timer", 60), On("next", self.next)),
            )
        )

    def next(self) -> None:
        self.n += 1


def test_timer_from_an_earlier_loop_turn_is_stale():
    """DESIGN 2: a timer from an earlier loop turn is refused with StaleCallback."""
    wf = TimedTurns()
    state = start(wf)
    old_timer = copy.deepcopy(
        next(e.req for e in main_thread(state).wait_events if e.req.name == "turn timer")
    )
    send(wf, state, "next")
    resume(wf, state)
    before = snapshot(wf, state)
    with pytest.raises(StaleCallback) as ei:
        handle_callback(old_timer, wf, state)
    assert ei.value.got_pc == old_timer.pc
    assert ei.value.expected_pc == main_thread(state).pc
    assert_unchanged(wf, state, before)


# -- Definitions the interpreter refuses at run time -------------------------------------------


@dataclass
class Spinner:
    def definition(self):
        return S(For("spin", True, If(False, "never", Step("unreachable", lambda: None))))


def test_loop_turn_that_runs_nothing_is_refused_instead_of_hanging():
    wf = Spinner()
    state = new_state("1", "spin")
    before = snapshot(wf, state)
    with pytest.raises(DefinitionError) as ei:
        resume(wf, state)
    assert "'spin'" in str(ei.value)
    assert len(ei.value.problems) == 1
    assert_unchanged(wf, state, before)


@dataclass
class DuplicateGoIds:
    i: int = 0

    def definition(self):
        return S(
            For(
                "two workers",
                self.i < 2,
                Step("next", self.inc),
                Go("worker", Wait("work", On("job")), id="same"),
            ),
        )

    def inc(self) -> None:
        self.i += 1


def test_go_starting_a_second_live_thread_with_the_same_id_is_refused():
    wf = DuplicateGoIds()
    state = new_state("1", "dup")
    with pytest.raises(DefinitionError) as ei:
        resume(wf, state)
    assert "id=" in str(ei.value)
    assert "'same'" in str(ei.value)
    assert [t.id for t in state.threads].count("same") == 1


@dataclass
class AsyncStep:
    def definition(self):
        return S(Step("async step", self.act))

    async def act(self) -> None:
        pass


def test_async_step_is_refused_before_anything_runs():
    wf = AsyncStep()
    state = new_state("1", "async")
    before = state.pc
    with pytest.raises(DefinitionError) as ei:
        resume(wf, state)
    assert "Step 'async step': the action is a coroutine function (async def)" in str(ei.value)
    assert state.pc == before and main_thread(state).cur_step == ""


@dataclass
class RenamesBranch:
    done: bool = False

    def definition(self):
        name = "other" if self.done else "branch"
        return S(Step("a", self.a), If(True, name, Step("b", lambda: None)))

    def a(self) -> None:
        self.done = True


def test_definition_whose_shape_changes_with_data_is_refused():
    wf = RenamesBranch()
    state = new_state("1", "shape")
    with pytest.raises(DefinitionError) as ei:
        resume(wf, state)
    assert "shape" in str(ei.value)
    assert "'branch'" in str(ei.value)
    # "a" completed as its own unit; the thread stays right after it.
    t = main_thread(state)
    assert (t.status, t.cur_step) == (ThreadStatus.RESUMING, "a")


@dataclass
class DropsStatement:
    done: bool = False

    def definition(self):
        if self.done:
            return S(Step("a", self.a))
        return S(Step("a", self.a), If(True, "branch", Step("b", lambda: None)))

    def a(self) -> None:
        self.done = True


@dataclass
class ReplacesIfWithStep:
    done: bool = False

    def definition(self):
        if self.done:
            return S(Step("a", self.a), Step("c", lambda: None))
        return S(Step("a", self.a), If(True, "branch", Step("b", lambda: None)))

    def a(self) -> None:
        self.done = True


@pytest.mark.parametrize("cls", [DropsStatement, ReplacesIfWithStep])
def test_definition_that_loses_or_replaces_a_statement_is_a_definition_error(cls):
    wf = cls()
    with pytest.raises(DefinitionError) as ei:
        resume(wf, new_state("1", "shape"))
    assert "shape" in str(ei.value)


@dataclass
class FailingHandler:
    def definition(self):
        return S(Wait("w", On("e", self.on_e)))

    def on_e(self, payload: dict[str, int]) -> None:
        raise ValueError(f"bad payload {payload}")


def test_handler_that_raises_is_a_handler_error_and_changes_nothing():
    wf = FailingHandler()
    state = start(wf)
    before = snapshot(wf, state)
    with pytest.raises(HandlerError) as ei:
        send(wf, state, "e", {"x": 1})
    assert isinstance(ei.value.__cause__, ValueError)
    assert "bad payload {'x': 1}" in str(ei.value)
    assert ei.value.event == "e"
    assert ei.value.thread == MAIN_THREAD
    assert_unchanged(wf, state, before)
    # The event can still be delivered (and fail again) later: it was not consumed.
    with pytest.raises(HandlerError):
        send(wf, state, "e", {"x": 2})


@dataclass
class PartialHandlers:
    log: list[str] = field(default_factory=list)

    def definition(self):
        return S(
            Wait("first", On("no payload", functools.partial(self.note, "fixed"))),
            Wait("second", On("with payload", functools.partial(self.note_payload, "got"))),
        )

    def note(self, text: str) -> None:
        self.log.append(text)

    def note_payload(self, prefix: str, payload: int) -> None:
        self.log.append(f"{prefix} {payload}")


def test_partial_function_handlers_each_get_their_own_signature():
    """DESIGN 1: a handler with no parameters gets none; otherwise its first one the payload."""
    wf = PartialHandlers()
    state = start(wf)
    send(wf, state, "no payload")
    resume(wf, state)
    send(wf, state, "with payload", 7)
    assert wf.log == ["fixed", "got 7"]


def test_every_error_raised_here_is_a_gorch_error():
    for cls in (
        AmbiguousCallback,
        CallbackNotFound,
        DefinitionError,
        HandlerError,
        StaleCallback,
        StateMismatchError,
        StepError,
        StepLimitExceeded,
        WorkflowFinishedError,
    ):
        assert issubclass(cls, GorchError)
