"""The statement constructors: plain data, with the shapes docs/concepts.md gives them."""

from __future__ import annotations

from datetime import timedelta

from gorch import Case, Default, For, Go, If, On, S, Step, Switch, Timeout, Wait, WaitFor
from gorch.state import CallbackRequest


def noop() -> None:
    pass


def test_if_chains_return_the_same_if() -> None:
    branch = If(True, "a", Step("s1", noop))
    same = branch.elif_(False, "b").else_("c", Step("s2", noop))
    assert same is branch
    assert [k.name for k in branch.kids] == ["a", "b", "c"]
    assert isinstance(branch.kids[-1], Default)


def test_on_takes_a_statement_in_the_handler_place_as_the_body() -> None:
    step = Step("after", noop)
    on = On("x", step, Step("more", noop))
    assert on.handler is None
    assert [s.name for s in on.kids] == ["after", "more"]
    assert On("y", noop).handler is noop


def test_go_id_defaults_to_none_and_is_keyword_only() -> None:
    assert Go("g").id is None
    assert Go("g", Step("s", noop), id="7").id == "7"


def test_timeout_is_its_own_handler() -> None:
    t = Timeout("late", 90)
    assert t.delay == timedelta(seconds=90)
    assert Timeout("later", timedelta(hours=1)).delay == timedelta(hours=1)
    req = CallbackRequest(name="late", setup_data="2026-01-01T00:00:00+00:00")
    assert t.handle(req, None) == "2026-01-01T00:00:00+00:00"
    assert t.teardown(req, True) is None


def test_reprs_name_the_statements() -> None:
    tree = S(
        Step("a", noop),
        For("l", True, Wait("w", On("e"))),
        Switch(Case(True, "c"), Default("d")),
        WaitFor("f", True),
    )
    assert repr(tree) == ("S(Step('a'), For('l'), Switch(Case('c'), Default('d')), WaitFor('f'))")
    assert repr(Wait("w", On("e"), Timeout("t", 1))) == "Wait('w', On('e'), Timeout('t', 1))"
