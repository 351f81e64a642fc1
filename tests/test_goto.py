"""goto: continue a thread at a named Step, Wait or WaitFor — the operator's repair tool."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from gorch import (
    MAIN_THREAD,
    CallbackRequest,
    For,
    Go,
    GotoError,
    On,
    S,
    StaleCallback,
    StateMismatchError,
    Step,
    ThreadStatus,
    Wait,
    WaitFor,
    WorkflowFinishedError,
    dumps,
    goto,
    handle_callback,
    new_state,
    resume,
)


class Recorder:
    """A Handler that records its lifecycle calls."""

    type = "recorder"

    def __init__(self, calls: list[str]) -> None:
        self.calls = calls

    def setup(self, req: CallbackRequest) -> str:
        self.calls.append(f"setup {req.name}@{req.pc}")
        return "ok"

    def handle(self, req: CallbackRequest, input: Any) -> object:
        self.calls.append(f"handle {req.name}")
        return input

    def teardown(self, req: CallbackRequest, handled: bool) -> None:
        self.calls.append(f"teardown {req.name} handled={handled}")


@dataclass
class Order:
    log: list[str] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)
    paid: bool = False
    charge_fails: bool = True

    def definition(self) -> Any:
        return S(
            Step("take order", lambda: self.log.append("take")),
            Step("charge card", self.charge),
            Wait("for kitchen", On("Cooked", Recorder(self.calls))),
            WaitFor("payment", self.paid),
            Step("deliver", lambda: self.log.append("deliver")),
            Go(
                "courier",
                Wait("for pickup", On("PickedUp", Recorder(self.calls))),
                Step("drive", lambda: self.log.append("drive")),
            ),
            Wait("for feedback", On("Feedback", Recorder(self.calls))),
        )

    def charge(self) -> None:
        if self.charge_fails:
            raise RuntimeError("payment provider down")
        self.log.append("charge")


def stuck_at_charge() -> tuple[Order, Any]:
    wf, state = Order(), new_state("o-1", "order")
    with pytest.raises(Exception, match="payment provider down"):
        resume(wf, state)
    return wf, state


def test_goto_a_step_runs_it_next() -> None:
    wf, state = stuck_at_charge()
    plan = goto(wf, state, "deliver")
    assert plan.applied
    assert (plan.from_status, plan.from_step) == (ThreadStatus.EXECUTING, "charge card")
    assert (plan.to_status, plan.to_step) == (ThreadStatus.EXECUTING, "deliver")
    resume(wf, state)
    assert wf.log == ["take", "deliver"]
    assert {t.cur_step for t in state.threads} == {"for feedback", "for pickup"}


def test_goto_a_wait_sets_it_up_and_tears_down_the_old_one() -> None:
    wf, state = stuck_at_charge()
    goto(wf, state, "for feedback")
    resume(wf, state)
    main = state.thread(MAIN_THREAD)
    assert main is not None and main.status is ThreadStatus.WAITING_EVENT
    assert main.cur_step == "for feedback"
    assert wf.calls == [f"setup Feedback@{main.pc}"]

    plan = goto(wf, state, "for kitchen")
    assert plan.teardown == ["Feedback"] and plan.setup == ["Cooked"]
    assert wf.calls[-1] == "teardown Feedback handled=False"
    resume(wf, state)
    assert wf.calls[-1] == f"setup Cooked@{main.pc}"
    assert [e.req.name for e in main.wait_events] == ["Cooked"]


def test_goto_a_waitfor_waits_on_its_condition() -> None:
    wf, state = stuck_at_charge()
    goto(wf, state, "payment")
    resume(wf, state)
    main = state.thread(MAIN_THREAD)
    assert main is not None
    assert (main.status, main.cur_step) == (ThreadStatus.WAITING_CONDITION, "payment")
    wf.paid = True
    resume(wf, state)
    assert wf.log == ["take", "deliver"]


def test_dry_run_changes_nothing_and_describes_the_move() -> None:
    wf, state = stuck_at_charge()
    before = dumps(state)
    plan = goto(wf, state, "for kitchen", dry_run=True)
    assert dumps(state) == before
    assert not plan.applied
    assert plan.describe() == [
        "thread '_main_' of workflow 'o-1' would move:",
        "  from Executing at 'charge card'",
        "  to   WaitingEvent at 'for kitchen'",
        "  set up: Cooked",
    ]


def test_unknown_name_is_refused_with_suggestions_and_nothing_changes() -> None:
    wf, state = stuck_at_charge()
    before = dumps(state)
    with pytest.raises(GotoError) as info:
        goto(wf, state, "for kitchn")
    assert "no statement named 'for kitchn'" in str(info.value)
    assert "Did you mean 'for kitchen'" in str(info.value)
    assert info.value.suggestions[0] == "for kitchen"
    assert dumps(state) == before


def test_only_steps_waits_and_waitfors_are_targets() -> None:
    wf, state = stuck_at_charge()
    with pytest.raises(GotoError, match="is not a Step, Wait or WaitFor"):
        goto(wf, state, "Cooked")


def test_a_thread_moves_only_within_its_own_body() -> None:
    wf, state = stuck_at_charge()
    with pytest.raises(GotoError, match="'drive' belongs to Go 'courier', not to thread"):
        goto(wf, state, "drive")


def test_unknown_thread_is_refused() -> None:
    wf, state = stuck_at_charge()
    with pytest.raises(GotoError, match="has no thread 'main'"):
        goto(wf, state, "deliver", thread="main")


def test_goto_in_a_go_thread() -> None:
    wf, state = Order(charge_fails=False), new_state("o-2", "order")
    goto(wf, state, "deliver")
    resume(wf, state)
    courier = state.thread("courier")
    assert courier is not None and courier.cur_step == "for pickup"
    goto(wf, state, "drive", thread="courier")
    assert wf.calls[-1] == "teardown PickedUp handled=False"
    resume(wf, state)
    assert wf.log == ["deliver", "drive"]
    assert state.thread("courier") is None


def test_a_callback_for_the_wait_before_the_goto_is_stale() -> None:
    wf, state = Order(charge_fails=False), new_state("o-3", "order")
    resume(wf, state)
    main = state.thread(MAIN_THREAD)
    assert main is not None
    old = main.wait_events[0].req
    goto(wf, state, "for kitchen")  # the same wait again, at a new pc
    resume(wf, state)
    with pytest.raises(StaleCallback):
        handle_callback(old, wf, state)
    handle_callback(CallbackRequest(name="Cooked"), wf, state)


def test_goto_repairs_a_state_the_code_no_longer_matches() -> None:
    class V1:
        def definition(self) -> Any:
            return S(Wait("old wait", On("Old")), Step("end", lambda: None))

    class V2:
        def __init__(self) -> None:
            self.log: list[str] = []

        def definition(self) -> Any:
            return S(Wait("new wait", On("New")), Step("end", lambda: self.log.append("end")))

    state = new_state("w", "versioned")
    resume(V1(), state)
    wf = V2()
    with pytest.raises(StateMismatchError, match="'old wait'"):
        resume(wf, state)
    goto(wf, state, "end")
    resume(wf, state)
    assert wf.log == ["end"]


def test_goto_into_a_loop_continues_the_loop() -> None:
    @dataclass
    class Loop:
        n: int = 0

        def definition(self) -> Any:
            return S(
                Wait("start", On("Go")),
                For("count", self.n < 3, Step("inc", self.inc)),
            )

        def inc(self) -> None:
            self.n += 1

    wf, state = Loop(), new_state("l", "loop")
    resume(wf, state)
    goto(wf, state, "inc")
    resume(wf, state)
    assert wf.n == 3


def test_goto_on_a_finished_workflow_is_refused() -> None:
    wf, state = Order(charge_fails=False), new_state("o-4", "order")
    state.status = state.status.FINISHED
    state.threads = []
    with pytest.raises(WorkflowFinishedError):
        goto(wf, state, "deliver")


class FlakyTeardown(Recorder):
    """Its teardown fails while ``fail`` holds."""

    def __init__(self, calls: list[str], fail: list[bool]) -> None:
        super().__init__(calls)
        self.fail = fail

    def teardown(self, req: CallbackRequest, handled: bool) -> None:
        super().teardown(req, handled)
        if self.fail[0]:
            raise RuntimeError("teardown down")


@dataclass
class TwoWaits:
    calls: list[str] = field(default_factory=list)
    fail: list[bool] = field(default_factory=lambda: [True])

    def definition(self) -> Any:
        return S(
            Wait("first", On("A", FlakyTeardown(self.calls, self.fail))),
            Wait("second", On("B", Recorder(self.calls))),
            Wait("third", On("C", Recorder(self.calls))),
        )


def test_the_dry_run_lists_exactly_the_teardowns_the_goto_runs() -> None:
    wf, state = TwoWaits(), new_state("t-1", "two")
    resume(wf, state)
    handle_callback(CallbackRequest(name="A"), wf, state)
    resume(wf, state)  # A's teardown fails and stays pending; the thread waits for B
    main = state.thread(MAIN_THREAD)
    assert main is not None
    assert [(e.req.name, e.status.value) for e in main.wait_events] == [
        ("A", "TeardownError"),
        ("B", "Setup"),
    ]
    before = dumps(state)
    dry = goto(wf, state, "third", dry_run=True)
    assert dumps(state) == before
    wf.fail[0] = False
    del wf.calls[:]
    plan = goto(wf, state, "third")
    ran = [c.split()[1] for c in wf.calls if c.startswith("teardown")]
    assert dry.teardown == plan.teardown == ran == ["A", "B"]
    assert plan.setup == dry.setup == ["C"]
