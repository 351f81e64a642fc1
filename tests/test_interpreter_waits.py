"""Tests of waits: Return while others wait, setups and teardowns that fail, WaitFor, Timeout."""

from __future__ import annotations

import contextlib
import copy
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from _interpreter_helpers import (
    SETUP_DATA,
    DumbHandler,
    Faults,
    FlakyHandler,
    assert_finished,
    assert_unchanged,
    main_thread,
    send,
    snapshot,
    start,
)
from freezegun import freeze_time

import gorch
from gorch import (
    MAIN_THREAD,
    CheckpointType,
    EventStatus,
    For,
    Go,
    HandlerError,
    On,
    Return,
    S,
    StaleCallback,
    Step,
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
    """A call that raises leaves a state that a later call continues correctly."""
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
    """A timer from an earlier loop turn is refused with StaleCallback."""
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
