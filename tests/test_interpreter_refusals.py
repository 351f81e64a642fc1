"""Tests of what the interpreter refuses: a state that names what the code no longer has, more
steps than the bound in one resume, and definitions it can only catch at run time.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import pytest
from _interpreter_helpers import (
    assert_finished,
    assert_unchanged,
    main_thread,
    send,
    snapshot,
    start,
)

from gorch import (
    MAIN_THREAD,
    AmbiguousCallback,
    CallbackNotFound,
    DefinitionError,
    For,
    Go,
    GorchError,
    HandlerError,
    If,
    On,
    S,
    StaleCallback,
    StateMismatchError,
    Step,
    StepError,
    StepLimitExceeded,
    Thread,
    ThreadStatus,
    Wait,
    WorkflowFinishedError,
    WorkflowStatus,
    new_state,
    resume,
)
from gorch.interpreter import DEFAULT_MAX_STEPS

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
    """A state naming statements the code no longer has: precise error, no change."""
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
    """A state the code no longer matches gets a precise error and changes nothing."""
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
class AsyncGenStep:
    def definition(self):
        return S(Step("async step", self.act))

    async def act(self):
        yield None


def test_an_async_generator_step_is_refused_before_anything_runs():
    wf = AsyncGenStep()
    state = new_state("1", "async")
    before = state.pc
    with pytest.raises(DefinitionError) as ei:
        resume(wf, state)
    assert "Step 'async step': the action is an async generator function" in str(ei.value)
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
    """A handler with no parameters gets none; otherwise its first one the payload."""
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
