"""validate(): every problem of a definition at once, each with its path in the tree."""

from __future__ import annotations

from datetime import timedelta

import pytest

from gorch import (
    Break,
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
        "Timeout 'neg': after must not be negative",
        "Timeout 'bad': after must be a timedelta or a number of seconds",
        "WaitFor 'wf': the handler must be callable or None",
        "Go 'g': id must be a string",
        "Default 'd' must be the last case",
        "For 'empty loop': the loop body is empty",
        "the name must be a non-empty string",
    ]:
        assert expected in text, expected
    assert len(problems) == 16
    message = str(DefinitionError(problems))
    assert message.startswith("Invalid workflow definition (16 problems):")


def test_a_list_in_a_body_suggests_unpacking() -> None:
    [problem] = problems_of(S([Step("a", noop)]))
    assert "(unpack a list with *)" in problem


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
