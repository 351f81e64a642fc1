"""``gorch.context()``: what running user code may know, in every kind of user code, under the
pure API, the engine on every store, the worker and ``gorch.testing``; the idempotency key
stable across retries and a SIGKILL mid-step, new on the next loop turn (docs/steps.md)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from _context_workflows import SEEN, WORKFLOWS, Charge, Everywhere, Turns, record
from _subprocess import child_env

from gorch import (
    MAIN_THREAD,
    CallbackRequest,
    Engine,
    NoContextError,
    RunStatus,
    S,
    Step,
    StepContext,
    StepError,
    WaitFor,
    Worker,
    WorkflowStatus,
    context,
    handle_callback,
    new_state,
    resume,
    run,
)
from gorch.store import Store
from gorch.testing import START, Harness

TESTS = Path(__file__).resolve().parent


@pytest.fixture(autouse=True)
def _clean() -> Iterator[None]:
    SEEN.clear()
    yield
    SEEN.clear()


def by_role() -> dict[str, dict[str, Any]]:
    return {s["role"]: s for s in SEEN}


# -- the pure API ------------------------------------------------------------------------------


def test_every_kind_of_user_code_sees_its_context_under_the_pure_api() -> None:
    wf, state = Everywhere(), new_state("order-1", "everywhere")
    resume(wf, state, services={"bank": 1}, attempt=2)
    handle_callback(CallbackRequest(name="booking"), wf, state, "x", services={"bank": 1})
    resume(wf, state, services={"bank": 1})
    seen = by_role()
    assert set(seen) == {"step", "async step", "setup", "handle", "teardown", "condition"}
    for s in seen.values():
        assert s["instance_id"] == "order-1" and s["workflow"] == "everywhere"
        assert s["services"] == ["bank"]
        uuid.UUID(s["key"])
    assert [s["statement"] for s in SEEN if s["role"] == "step"] == ["sync step", "side step"]
    assert [s["thread"] for s in SEEN if s["role"] == "step"] == [MAIN_THREAD, "side-1"]
    assert seen["async step"]["statement"] == "async step"
    assert seen["setup"]["statement"] == seen["handle"]["statement"] == "booking"
    assert seen["condition"]["statement"] == "ready"
    assert seen["step"]["attempt"] == 2 and seen["handle"]["attempt"] == 1
    # setup and teardown of one event are different executions: different keys
    assert seen["setup"]["key"] != seen["teardown"]["key"]


def test_async_event_handlers_see_their_context() -> None:
    wf, state = Everywhere(), new_state("order-2", "everywhere")
    resume(wf, state)
    assert handle_callback(CallbackRequest(name="async plain"), wf, state, 5) == 5
    assert by_role()["async handler"]["statement"] == "async plain"


def test_run_hands_services_and_attempt_to_the_code() -> None:
    out = run(Charge(), new_state("t", "charge"), services={"bank": 1}, attempt=3)
    assert out.error is None
    assert {s["attempt"] for s in SEEN} == {3}
    assert {tuple(s["services"]) for s in SEEN} == {("bank",)}


def test_started_at_is_when_the_attempt_started() -> None:
    before = datetime.now(UTC)
    resume(Charge(), new_state("c", "charge"))
    assert before <= datetime.fromisoformat(SEEN[0]["started_at"]) <= datetime.now(UTC)


def test_started_at_follows_frozen_time() -> None:
    with Harness({"charge": Charge}) as h:
        h.start("charge", Charge(), id="c")
    assert datetime.fromisoformat(SEEN[0]["started_at"]) == START


def test_the_key_is_the_same_for_the_same_execution_and_new_on_the_next_turn() -> None:
    state = new_state("t", "turns")
    wf = Turns()
    while state.status is not WorkflowStatus.FINISHED:
        with contextlib.suppress(StepError):
            resume(wf, state)
    keys = [s["key"] for s in SEEN]
    # turn 0: fail, retry; turn 1: fail, retry; turn 2: fail, retry
    assert keys[0] == keys[1] != keys[2] == keys[3] != keys[4] == keys[5]
    assert len(set(keys)) == 3


def test_outside_user_code_context_refuses_clearly() -> None:
    with pytest.raises(NoContextError, match="outside running user code"):
        context()

    class InDefinition:
        def definition(self) -> Any:
            context()
            return S(Step("a", lambda: None))

    with pytest.raises(NoContextError):
        resume(InDefinition(), new_state("d", "d"))

    class InCondition:
        def definition(self) -> Any:
            return S(WaitFor("w", self.cond()))

        def cond(self) -> bool:
            context()
            return True

    with pytest.raises(NoContextError):
        resume(InCondition(), new_state("c", "c"))


def test_session_outside_a_transactional_step_refuses_clearly() -> None:
    got: list[BaseException] = []

    class NoSession:
        def definition(self) -> Any:
            return S(Step("plain", self.plain))

        def plain(self) -> None:
            try:
                context().session  # noqa: B018
            except NoContextError as exc:
                got.append(exc)

    resume(NoSession(), new_state("n", "n"))
    assert "transaction=True" in str(got[0]) and "'plain'" in str(got[0])


def test_bad_services_and_attempts_are_refused() -> None:
    with pytest.raises(TypeError, match="services must be a mapping"):
        resume(Charge(), new_state("c", "charge"), services=["bank"])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="attempt must be"):
        resume(Charge(), new_state("c", "charge"), attempt=0)
    with pytest.raises(TypeError, match="services must be a mapping"):
        Engine(_memory(), WORKFLOWS, services=3)  # type: ignore[arg-type]


def _memory() -> Store:
    from gorch.store import MemoryStore

    return MemoryStore()


def test_context_in_a_step_that_runs_another_workflow_is_its_own_again() -> None:
    """A step that resumes another workflow gets its own context back afterwards."""
    outer: list[StepContext] = []

    class Outer:
        def definition(self) -> Any:
            return S(Step("outer", self.outer))

        def outer(self) -> None:
            resume(Charge(), new_state("inner", "charge"))
            outer.append(context())

    resume(Outer(), new_state("outer", "outer"))
    assert SEEN[0]["instance_id"] == "inner"
    assert outer[0].instance_id == "outer" and outer[0].statement == "outer"


def test_a_step_awaiting_inside_a_running_event_loop_still_runs() -> None:
    """Sync gorch called from async code: the coroutine runs on a helper loop."""

    async def main() -> None:
        resume(Everywhere(), new_state("e", "everywhere"))

    asyncio.run(main())
    assert "async step" in by_role()


# -- the engine, on every store -------------------------------------------------------------


def test_the_engine_hands_services_attempts_and_keys_to_the_code(store: Store) -> None:
    bank = object()
    engine = Engine(store, WORKFLOWS, services={"bank": bank}, retry=None)
    worker = Worker(engine)
    engine.start("everywhere", Everywhere(), id="e-1")
    engine.send("e-1", "plain", 3)
    seen = by_role()
    assert {"step", "async step", "handler", "condition"} <= set(seen)
    assert all(s["services"] == ["bank"] and s["instance_id"] == "e-1" for s in SEEN)
    assert seen["handler"]["attempt"] == 1
    SEEN.clear()
    engine.start("turns", Turns(), id="t-1")
    for _ in range(10):
        time.sleep(0.01)
        worker.run_once()
        if engine.get("t-1").status is RunStatus.FINISHED:
            break
    assert engine.get("t-1").status is RunStatus.FINISHED
    attempts = [s["attempt"] for s in SEEN]
    keys = [s["key"] for s in SEEN]
    assert attempts == [1, 2, 1, 2, 1, 2]
    assert keys[0] == keys[1] != keys[2] == keys[3] != keys[4] == keys[5]


def test_the_harness_swaps_services() -> None:
    calls: list[str] = []

    class FakeBank:
        def charge(self, key: str) -> None:
            calls.append(key)

    @dataclass
    class Pay:
        def definition(self) -> Any:
            return S(Step("pay", self.pay))

        def pay(self) -> None:
            ctx = context()
            ctx.services["bank"].charge(ctx.idempotency_key)

    with Harness({"pay": Pay}, services={"bank": FakeBank()}) as h:
        h.start("pay", Pay(), id="p")
        h.assert_status("p", "finished")
    assert len(calls) == 1


# -- a SIGKILL mid-step ----------------------------------------------------------------------


@pytest.mark.parametrize("store_kind", ["sqlite", "postgres"])
def test_the_key_survives_a_sigkill_mid_step(sql_url: str, tmp_path: Path) -> None:
    from gorch.store import SQLStore

    path = str(tmp_path / "seen.jsonl")
    store = SQLStore(sql_url)
    engine = Engine(store, WORKFLOWS, lease=1.0)
    engine.start("charge", Charge(path=path), id="c-1", defer=True)
    env = child_env(GORCH_TEST_HANG="1")
    log = tmp_path / "child.log"
    with log.open("wb") as out:
        child = subprocess.Popen(
            [sys.executable, str(TESTS / "_context_workflows.py"), sql_url],
            env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not (os.path.exists(path) and Path(path).read_text().strip()):
            assert child.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "the child never reached the step"
            time.sleep(0.02)
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=10)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    time.sleep(1.1)  # the dead child's lease expires
    Worker(engine).run_once()
    assert engine.get("c-1").status is RunStatus.FINISHED
    import json

    lines = [json.loads(x) for x in Path(path).read_text().splitlines()]
    assert len(lines) == 2
    assert lines[0]["key"] == lines[1]["key"]
    assert lines[0]["services"] == ["bank"] and lines[1]["services"] == []
    store.close()


def test_record_is_only_usable_in_user_code() -> None:
    with pytest.raises(NoContextError):
        record("nowhere")
