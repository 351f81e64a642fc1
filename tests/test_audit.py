"""Who made an operator's change, and why, on every store: each operator call takes ``actor=``
and ``reason=`` and its history entry keeps them (``HistoryEntry.actor``, ``.reason``); a bad
one is refused before anything changes. (The faces: tests/cli/test_cli_operators.py,
tests/test_http.py, tests/test_ui.py; migrate: tests/test_migrate.py.)
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from _engine_workflows import FAILS, Brittle, unchanged

from examples.pizza.workflow import PizzaOrder
from gorch import Engine, HistoryEntry, InputError, RunStatus, Worker
from gorch.limits import MAX_REASON, MAX_TEXT

pytestmark = pytest.mark.usefixtures("engine_globals")  # tests/conftest.py


def last(engine: Engine, id: str) -> HistoryEntry:
    return engine.history(id, newest_first=True, limit=1)[0]


def test_every_operator_call_records_its_actor_and_reason(engine: Engine) -> None:
    engine.start("pizza", PizzaOrder(), id="o1")
    assert last(engine, "o1").actor is None  # the engine's own entries have none
    engine.pause("o1", actor="ana", reason="customer called")
    assert (last(engine, "o1").kind, last(engine, "o1").actor) == ("paused", "ana")
    assert last(engine, "o1").reason == "customer called"
    engine.unpause("o1", actor="bob")
    assert (last(engine, "o1").kind, last(engine, "o1").actor) == ("unpaused", "bob")
    assert last(engine, "o1").reason is None
    engine.goto("o1", "for the manager", actor="cy", reason="skip the cart\nsecond line")
    goto = next(h for h in engine.history("o1", newest_first=True) if h.kind == "goto")
    assert (goto.actor, goto.reason) == ("cy", "skip the cart\nsecond line")
    engine.cancel("o1", actor="dee", reason="  ")  # a blank reason is no reason
    assert (last(engine, "o1").kind, last(engine, "o1").actor) == ("cancelled", "dee")
    assert last(engine, "o1").reason is None


def test_retry_records_its_actor_and_reason(engine: Engine, gorch_time: Any) -> None:
    engine.start("brittle", Brittle(tag="b1"), id="b1")
    FAILS["b1"] = 2  # the brittle policy gives up after two attempts
    engine.send("b1", "Go")
    gorch_time.tick(timedelta(seconds=10))
    Worker(engine).run_once()
    assert engine.get("b1").status is RunStatus.FAILED
    engine.retry("b1", actor="ana", reason="the shop is back")
    retry = next(h for h in engine.history("b1") if h.kind == "retry")
    assert (retry.actor, retry.reason) == ("ana", "the shop is back")


BAD: list[tuple[dict[str, Any], str]] = [
    ({"actor": ""}, "actor must be a name of 1 to"),
    ({"actor": "   "}, "actor must be"),
    ({"actor": "x" * (MAX_TEXT + 1)}, f"not a text of {MAX_TEXT + 1} characters"),
    ({"actor": "a\x00b"}, "without NUL"),
    ({"actor": 7}, "not 7"),
    ({"reason": "r" * (MAX_REASON + 1)}, f"at most {MAX_REASON} characters"),
    ({"reason": b"bytes"}, "a reason must be"),
    ({"reason": "nul\x00"}, "without NUL"),
]

CALLS: dict[str, Callable[..., Any]] = {
    "pause": lambda e, **by: e.pause("o1", **by),
    "cancel": lambda e, **by: e.cancel("o1", **by),
    "goto": lambda e, **by: e.goto("o1", "for the manager", **by),
    "unpause": lambda e, **by: e.unpause("o1", **by),
    "retry": lambda e, **by: e.retry("o1", **by),
    "send": lambda e, **by: e.send("o1", "cart timed out", **by),
}


@pytest.mark.parametrize(("by", "says"), BAD)
@pytest.mark.parametrize("call", sorted(CALLS))
def test_a_bad_actor_or_reason_is_refused_and_changes_nothing(
    engine: Engine, call: str, by: dict[str, Any], says: str
) -> None:
    engine.start("pizza", PizzaOrder(), id="o1")
    with unchanged(engine, "o1"), pytest.raises(InputError) as info:
        CALLS[call](engine, **by)
    assert says in str(info.value) and "nothing changed" in str(info.value)


def test_the_longest_actor_and_reason_are_kept_whole(engine: Engine) -> None:
    engine.start("pizza", PizzaOrder(), id="o1")
    actor, reason = "a" * MAX_TEXT, "\u00e9" * MAX_REASON
    engine.pause("o1", actor=actor, reason=reason)
    assert (last(engine, "o1").actor, last(engine, "o1").reason) == (actor, reason)


def test_a_timeout_fired_by_hand_records_who_fired_it(engine: Engine) -> None:
    engine.start("pizza", PizzaOrder(), id="o1")
    engine.send("o1", "cart timed out", actor="ana", reason="the customer left")
    fired = next(h for h in engine.history("o1") if h.name == "cart timed out")
    assert (fired.kind, fired.actor, fired.reason) == ("event", "ana", "the customer left")
    engine.start("pizza", PizzaOrder(), id="o2")
    engine.send("o2", "AddToCart", {"pizza": {"name": "margherita"}})  # an event, no one named
    assert {h.actor for h in engine.history("o2")} == {None}
