"""validate(): every problem of a definition at once, each with its path in the tree."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta

import pytest

from gorch import (
    Break,
    CallbackRequest,
    Case,
    Continue,
    Default,
    DefinitionError,
    For,
    Go,
    If,
    On,
    Return,
    S,
    Step,
    Switch,
    Timeout,
    Wait,
    WaitFor,
    handle_callback,
    new_state,
    resume,
    validate,
)


def noop() -> None:
    pass


def problems_of(section: object) -> list[str]:
    with pytest.raises(DefinitionError) as info:
        validate(section)
    return info.value.problems


def test_a_valid_definition_passes() -> None:
    validate(
        S(
            Step("a", noop),
            If(True, "yes", Step("b", noop)).elif_(False, "maybe", Return()).else_("no"),
            Switch(Case(True, "c1", Step("c", noop)), Default("other")),
            For("loop", True, Wait("w", On("e", noop), Timeout("t", 5)), Break()),
            Go("g", Step("in thread", noop), id="g-1"),
            WaitFor("cond", True),
        )
    )


def test_duplicate_names_name_both_places() -> None:
    [problem] = problems_of(S(Step("pay", noop), Wait("w", On("pay", noop))))
    assert "'pay' is used 2 times" in problem
    assert "S > Step 'pay'" in problem
    assert "S > Wait 'w' > On 'pay'" in problem


def test_every_named_kind_shares_one_namespace() -> None:
    """For, If branches, Case, Default, Go, WaitFor, Timeout names escaped validation in Go."""
    problems = problems_of(
        S(
            For("x", True, Step("s1", noop)),
            If(True, "x", Step("s2", noop)),
            Switch(Case(True, "x"), Default("x")),
            Go("x"),
            WaitFor("x", True),
            Wait("w", Timeout("x", 1)),
        )
    )
    assert len(problems) == 1
    assert "'x' is used 7 times" in problems[0]


def test_break_and_continue_outside_a_loop() -> None:
    problems = problems_of(S(Break(), If(True, "b", Continue())))
    assert any("S > Break[0]: Break() must be inside a For loop" in p for p in problems)
    assert any("If[1] > Case 'b' > Continue[0]: Continue() must be inside" in p for p in problems)


def test_break_inside_a_go_inside_a_loop_is_outside_a_loop() -> None:
    """A Go body is another thread: the loop around the Go is not its loop."""
    [problem] = problems_of(S(For("l", True, Step("s", noop), Go("g", Break()))))
    assert "Go 'g' > Break[0]" in problem


def test_handler_that_is_neither_handler_nor_callable() -> None:
    [problem] = problems_of(S(Wait("w", On("e", 42))))
    assert "On 'e'" in problem
    assert "a Handler (with setup, handle and teardown), a callable or None, got 42" in problem


def test_non_callable_step_action_hints_at_the_call() -> None:
    [problem] = problems_of(S(Step("s", None)))  # type: ignore[arg-type]
    assert "Step 's': the action must be callable" in problem
    assert "pass self.method, not self.method()" in problem


def test_every_problem_is_reported_at_once() -> None:
    problems = problems_of(
        S(
            Step("a", 1),  # type: ignore[arg-type]
            Step("a", noop),
            Break(),
            Wait("empty"),
            Wait("w", Step("not an event", noop)),
            "not a statement",
            For("spin", True, If(True, "never blocks")),
            Timeout("stray", 3),
            Case(True, "stray case"),
            Wait("t", Timeout("neg", -1), Timeout("bad", "soon")),  # type: ignore[arg-type]
            WaitFor("wf", True, 7),  # type: ignore[arg-type]
            Go("g", id=5),  # type: ignore[arg-type]
            Switch(Default("d"), Case(True, "late")),
            For("empty loop", True),
            Step("", noop),
        )
    )
    text = "\n".join(problems)
    for expected in [
        "Step 'a': the action must be callable",
        "'a' is used 2 times",
        "Break() must be inside a For loop",
        "Wait 'empty': a Wait needs at least one",
        "Wait 'w': item 0 must be On(...) or Timeout(...)",
        "item 5 is not a statement: 'not a statement'",
        "For 'spin': the loop body never runs a Step",
        "Timeout('stray', 3) is only allowed inside Wait",
        "Case('stray case') is only allowed inside Switch",
        "Timeout 'bad': after must be a timedelta or a number of seconds",
        "WaitFor 'wf': the handler must be callable or None",
        "Go 'g': id must be a string",
        "Default 'd' must be the last case",
        "For 'empty loop': the loop body is empty",
        "the name must be a non-empty string",
    ]:
        assert expected in text, expected
    assert "neg" not in text  # a negative delay means "due now": it may come from data
    assert len(problems) == 15
    message = str(DefinitionError(problems))
    assert message.startswith("Invalid workflow definition (15 problems):")


def test_a_list_in_a_body_suggests_unpacking() -> None:
    [problem] = problems_of(S([Step("a", noop)]))
    assert "(unpack a list with *)" in problem


def test_a_method_in_a_body_suggests_a_step() -> None:
    class Late:
        def escalate(self) -> None:
            pass

    [problem] = problems_of(S(Wait("w", Timeout("late", timedelta(days=2), Late().escalate))))
    assert "Timeout 'late': item 0 is not a statement" in problem
    assert "to run self.escalate there, write Step('escalate', self.escalate)" in problem
    [problem] = problems_of(S(noop))
    assert f"write Step({noop.__name__!r}, {noop.__name__})" in problem


def test_definition_must_return_statements() -> None:
    [problem] = problems_of([Step("a", noop)])
    assert "definition() must return a statement tree built with S(...)" in problem


def test_timeout_accepts_timedelta_and_seconds() -> None:
    validate(S(Wait("w", Timeout("a", timedelta(hours=1)), Timeout("b", 2.5))))


def test_resume_validates_the_definition_before_running_anything() -> None:
    ran: list[str] = []

    class Broken:
        def definition(self) -> object:
            return S(Step("a", lambda: ran.append("a")), Step("a", noop))

    state = new_state("1", "broken")
    before = state.threads[0].status
    with pytest.raises(DefinitionError) as info:
        resume(Broken(), state)
    assert "Broken: the name 'a' is used 2 times" in str(info.value)
    assert ran == []
    assert state.pc == 0 and state.threads[0].status == before


# -- coroutine functions are refused where gorch calls a function ----------------------------


class _AsyncHandler:
    type = "async"

    def setup(self, req: object) -> str:
        return ""

    async def handle(self, req: object, input: object) -> object:
        return input

    def teardown(self, req: object, handled: bool) -> None:
        pass


class _AsyncCallable:
    async def __call__(self) -> None:
        pass


async def _coro(x: int = 0) -> None:
    pass


async def _agen() -> AsyncIterator[int]:
    yield 1


def test_async_def_is_accepted_in_every_place_gorch_calls_a_function() -> None:
    validate(
        S(
            Step("async step", _coro),
            Step("async partial", functools.partial(_coro, 1)),
            Step("async object", _AsyncCallable()),
            Wait("w", On("async event", _coro), On("async handler", _AsyncHandler())),
            WaitFor("async waitfor", True, _coro),
        )
    )


class _AsyncGenHandler(_AsyncHandler):
    async def teardown(self, req: object, handled: bool) -> AsyncIterator[None]:  # type: ignore[override]
        yield None


def test_an_async_generator_is_refused_in_every_place_gorch_calls_a_function() -> None:
    problems = problems_of(
        S(
            Step("async generator", _agen),
            Step("generator partial", functools.partial(_agen)),
            Wait("w", On("gen event", _agen), On("gen handler", _AsyncGenHandler())),
            WaitFor("gen waitfor", True, _agen),
        )
    )
    for where in (
        "Step 'async generator': the action",
        "Step 'generator partial': the action",
        "On 'gen event': the handler",
        "On 'gen handler': the handler's teardown",
        "WaitFor 'gen waitfor': the handler",
    ):
        assert any(where in p and "async generator" in p for p in problems), where
    assert len(problems) == 5


def test_an_async_event_handler_runs() -> None:
    @dataclass
    class Flow:
        got: int = 0

        def definition(self) -> object:
            return S(Wait("w", On("go", self.go)))

        async def go(self, n: int) -> int:
            await asyncio.sleep(0)
            self.got = n
            return n + 1

    validate(Flow)
    wf, state = Flow(), new_state("1", "flow")
    resume(wf, state)
    assert handle_callback(CallbackRequest(name="go"), wf, state, 41) == 42
    assert wf.got == 41


# -- validity is a property of the class's code, not of one instance's data ------------------


@dataclass
class _Deadline:
    """Its timeout comes from data, and the class has no defaults."""

    customer: str
    seconds: float

    def definition(self) -> object:
        return S(Wait("w", Timeout("late", self.seconds, Return()), On("go")))


def test_validate_takes_a_class_without_defaults() -> None:
    validate(_Deadline)


def test_a_negative_duration_from_data_means_due_now() -> None:
    from gorch import clock

    state = new_state("1", "deadline")
    resume(_Deadline("ana", -30), state)
    [event] = [e for e in state.threads[0].wait_events if e.req.name == "late"]
    assert clock.parse_time(event.req.setup_data) <= clock.now()
    # the same class, another instance: validation does not depend on which came first
    resume(_Deadline("bo", 30), new_state("2", "deadline"))


def test_a_bad_duration_from_data_is_refused_for_that_instance_only() -> None:
    state = new_state("1", "deadline")
    bad = _Deadline("ana", "soon")  # type: ignore[arg-type]
    with pytest.raises(DefinitionError) as info:
        resume(bad, state)
    assert "Timeout 'late': after must be a timedelta or a number of seconds, got 'soon'" in str(
        info.value
    )
    assert info.value.workflow_id == "1"
    assert state.pc == 0  # nothing of the refused unit was applied
    resume(_Deadline("bo", 5), new_state("2", "deadline"))


def test_validate_a_class_reports_what_its_definition_raises() -> None:
    class Fragile:
        def definition(self) -> object:
            raise RuntimeError("needs a database")

    with pytest.raises(DefinitionError) as info:
        validate(Fragile)
    assert "Fragile.definition() on a stand-in instance raised RuntimeError" in str(info.value)


def test_validate_a_class_without_definition() -> None:
    with pytest.raises(DefinitionError) as info:
        validate(int)
    assert "int: the class has no definition() method" in str(info.value)


def test_a_condition_that_is_a_function_is_refused_everywhere() -> None:
    # bool(a function) is True: the WaitFor would pass at once, the If always take its branch.
    flag = False
    problems = problems_of(
        S(
            WaitFor("paid", lambda: flag),
            If(noop, "yes", Step("a", noop)).else_("no"),
            Switch(Case(lambda: flag, "c1", Step("c", noop)), Default("other")),
            For("loop", lambda: flag, Step("b", noop)),
        )
    )
    assert [p.split(":")[0] for p in problems] == [
        "S > WaitFor 'paid'",
        "S > If[1] > Case 'yes'",
        "S > Switch[2] > Case 'c1'",
        "S > For 'loop'",
    ]
    assert "the condition is a function (<lambda>), which is always true" in problems[0]
    assert "(noop)" in problems[1]
    assert "write the expression itself (self.paid > 0, not lambda: self.paid > 0)" in problems[3]
