"""Operator calls on the engine: cancel tears waits down as goto does (every store)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from gorch import CallbackRequest, DefinitionError, Engine, Go, On, RunStatus, S, Timeout, Wait
from gorch.state import EventStatus
from gorch.store import Store


class Lock:
    """A Handler holding a resource while its wait lasts; its teardown may fail."""

    type = "lock"

    def __init__(self, wf: Desk) -> None:
        self.wf = wf

    def setup(self, req: CallbackRequest) -> str:
        self.wf.log.append(f"lock {req.name}")
        return ""

    def handle(self, req: CallbackRequest, input: Any) -> object:
        return None

    def teardown(self, req: CallbackRequest, handled: bool) -> None:
        if self.wf.stuck:
            raise RuntimeError("the lock service is down")
        self.wf.log.append(f"unlock {req.name}")


@dataclass
class Desk:
    log: list[str] = field(default_factory=list)
    stuck: bool = False

    def definition(self) -> Any:
        return S(
            Go("helper", Wait("for help", On("Help", Lock(self)))),
            Wait("for a visitor", On("Visit", Lock(self)), On("Leave")),
        )


def test_cancel_runs_the_teardowns_of_every_thread(store: Store) -> None:
    engine = Engine(store, {"desk": Desk})
    engine.start("desk", Desk(), "d1")
    assert sorted(engine.get("d1").data.log) == ["lock Help", "lock Visit"]
    inst = engine.cancel("d1")
    assert inst.status is RunStatus.CANCELLED
    assert sorted(inst.data.log) == ["lock Help", "lock Visit", "unlock Help", "unlock Visit"]
    assert all(t.wait_events == [] for t in inst.state.threads)
    assert {t.cur_step for t in inst.state.threads} == {"for help", "for a visitor"}
    assert engine.history("d1")[-1].kind == "cancelled"
    assert engine.history("d1")[-1].error is None
    assert store.timers("d1") == []


def test_a_failed_teardown_on_cancel_is_recorded_and_kept(store: Store) -> None:
    engine = Engine(store, {"desk": Desk})
    engine.start("desk", Desk(stuck=True), "d2")
    inst = engine.cancel("d2")
    assert inst.status is RunStatus.CANCELLED
    last = engine.history("d2")[-1]
    assert last.kind == "cancelled"
    assert "teardown of 'Help' failed: RuntimeError: the lock service is down" in (last.error or "")
    assert "teardown of 'Visit' failed" in (last.error or "")
    kept = [e for t in inst.state.threads for e in t.wait_events]
    assert {e.req.name for e in kept} == {"Help", "Visit"}
    assert all(e.status is EventStatus.TEARDOWN_ERROR for e in kept)


@dataclass
class Reminder:
    seconds: Any = 60

    def definition(self) -> Any:
        return S(Wait("first", On("Go")), Wait("later", On("Done"), Timeout("nag", self.seconds)))


def test_a_goto_refused_while_applying_releases_the_instance(store: Store) -> None:
    engine = Engine(store, {"reminder": Reminder})
    engine.start("reminder", Reminder(seconds="soon"), "r1")  # a bad delay, read at 'later'
    with pytest.raises(DefinitionError, match="after must be a timedelta or a number"):
        engine.goto("r1", "later")
    row = store.get("r1")
    assert row is not None and row.lease_owner is None  # not left leased until expiry
    assert engine.get("r1").state.threads[0].cur_step == "first"
