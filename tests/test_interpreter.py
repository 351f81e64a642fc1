"""Tests of the pure interpreter: resume and the statements it runs.

Part 1 ports every scenario of gorchestrate/async's Go test suite (async_test.go). Part 2 covers
what gorch pins beyond it here: Continue and Break, checkpoints, finished workflows. Delivering
events, waits and what the interpreter refuses (including each known flaw of the Go original
that gorch promises not to copy) are in the other test_interpreter_*.py modules.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from _interpreter_helpers import (
    SETUP_DATA,
    DumbHandler,
    assert_finished,
    assert_unchanged,
    main_thread,
    send,
    snapshot,
    start,
)

from gorch import (
    MAIN_THREAD,
    Break,
    CallbackNotFound,
    CallbackRequest,
    Case,
    CheckpointType,
    Continue,
    Default,
    EventStatus,
    For,
    Go,
    If,
    On,
    Return,
    S,
    Step,
    StepError,
    Switch,
    ThreadStatus,
    Wait,
    WaitFor,
    WorkflowFinishedError,
    WorkflowStatus,
    new_state,
    resume,
)

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
