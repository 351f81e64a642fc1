"""Long and hung steps: the lease is renewed while a step runs (a step that outlives ``lease``
runs once), ``Step(timeout=)`` abandons an attempt and counts it failed (its late result never
committed), and ``heartbeat`` reports progress to every face (docs/steps.md)."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from gorch import (
    Engine,
    NoContextError,
    RunStatus,
    S,
    Step,
    StepContext,
    StoreUnavailableError,
    Worker,
    context,
)
from gorch.cli import cli
from gorch.http import create_app
from gorch.retry import RetryPolicy
from gorch.store import SQLStore

RAN: list[str] = []
CONTEXTS: list[StepContext] = []
TWICE = RetryPolicy(max_attempts=2, initial=0.001, max_interval=0.001, jitter=0)


@dataclass
class Long:
    """One step that runs ``seconds`` (past the lease), reporting progress as it goes."""

    seconds: float = 2.0
    done: bool = False

    def definition(self) -> Any:
        return S(Step("crunch", self.crunch))

    def crunch(self) -> None:
        RAN.append("crunch")
        ctx = context()
        end = time.monotonic() + self.seconds
        n = 0
        while time.monotonic() < end:
            time.sleep(0.05)
            n += 1
            ctx.heartbeat({"rows": n})
        self.done = True


@dataclass
class Hung:
    """A step that hangs past its timeout, then tries to change the data and report."""

    late: str = ""

    def definition(self) -> Any:
        return S(Step("call bank", self.call_bank, timeout=0.2, retry=TWICE))

    def call_bank(self) -> None:
        RAN.append("call bank")
        CONTEXTS.append(context())
        time.sleep(0.6)
        self.late = "late"


@dataclass
class AsyncHung:
    def definition(self) -> Any:
        return S(Step("await bank", self.await_bank, timeout=0.2, retry=TWICE))

    async def await_bank(self) -> None:
        import asyncio

        RAN.append("await bank")
        await asyncio.sleep(5)


WORKFLOWS: dict[str, type] = {"long": Long, "hung": Hung, "async hung": AsyncHung}


@pytest.fixture(autouse=True)
def _clean() -> Iterator[None]:
    RAN.clear()
    CONTEXTS.clear()
    yield
    RAN.clear()
    CONTEXTS.clear()


@pytest.fixture(params=["sqlite", "postgres"])
def store_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_a_step_that_outlives_its_lease_runs_once(sql_url: str) -> None:
    """One worker runs a step four leases long; another keeps trying to take it over."""
    mine, theirs = SQLStore(sql_url), SQLStore(sql_url)
    engine = Engine(mine, WORKFLOWS, lease=0.5)
    other = Engine(theirs, WORKFLOWS, lease=0.5)
    engine.start("long", Long(seconds=2.0), id="l-1", defer=True)
    runner = threading.Thread(target=Worker(engine).run_once)
    runner.start()
    while not RAN:  # the runner has the instance: from now on nobody may take it over
        time.sleep(0.01)
    seen = []
    while runner.is_alive():
        assert Worker(other).run_once() == 0  # never taken over
        seen.append(other.get("l-1").running)
        time.sleep(0.1)
    runner.join()
    assert RAN == ["crunch"]
    inst = other.get("l-1")
    assert inst.status is RunStatus.FINISHED and inst.data.done and inst.running is None
    reported = [r for r in seen if r is not None]
    assert reported, "the running step was never reported"
    assert {(r.statement, r.attempt) for r in reported} == {("crunch", 1)}
    rows = [r.details["rows"] for r in reported if r.details]
    assert rows == sorted(rows) and rows[-1] > rows[0]
    kinds = [h.kind for h in other.history("l-1")]
    assert kinds[0] == "started" and kinds[-2:] == ["step", "finished"]
    assert set(kinds[1:-2]) == {"heartbeat"}
    mine.close()
    theirs.close()


def test_a_step_past_its_timeout_is_retried_then_fails_and_its_late_result_is_dropped(
    tmp_path: Path,
) -> None:
    store = SQLStore(f"sqlite:///{tmp_path / 'g.db'}")
    engine = Engine(store, WORKFLOWS)
    inst = engine.start("hung", Hung(), id="h-1")
    assert inst.status is RunStatus.RUNNING and "StepTimeoutError" in (inst.last_error or "")
    time.sleep(0.01)
    Worker(engine).run_once()
    inst = engine.get("h-1")
    assert inst.status is RunStatus.FAILED and inst.attempts == 2
    assert "ran longer than its timeout of 0.2 s" in (inst.last_error or "")
    time.sleep(0.8)  # both abandoned attempts have woken up and changed their dead objects
    inst = engine.get("h-1")
    assert inst.data.late == "" and RAN == ["call bank", "call bank"]
    assert [h.kind for h in engine.history("h-1")] == [
        "started", "step_failed", "step_failed", "failed",
    ]  # fmt: skip
    with pytest.raises(NoContextError, match="has ended"):
        CONTEXTS[0].heartbeat({"late": True})
    store.close()


def test_an_async_step_past_its_timeout_is_cancelled(tmp_path: Path) -> None:
    store = SQLStore(f"sqlite:///{tmp_path / 'g.db'}")
    engine = Engine(store, WORKFLOWS)
    started = time.monotonic()
    engine.start("async hung", AsyncHung(), id="a-1")
    time.sleep(0.01)
    Worker(engine).run_once()
    assert time.monotonic() - started < 3
    inst = engine.get("a-1")
    assert inst.status is RunStatus.FAILED and "StepTimeoutError" in (inst.last_error or "")
    store.close()


def test_a_renewal_the_database_refuses_is_tried_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A fault while renewing is logged and retried: the step still runs once, to the end."""
    store = SQLStore(f"sqlite:///{tmp_path / 'g.db'}")
    engine = Engine(store, WORKFLOWS, lease=0.5)
    other = Engine(SQLStore(f"sqlite:///{tmp_path / 'g.db'}"), WORKFLOWS, lease=0.5)
    real = store.commit
    failed: list[int] = []

    def flaky(write: Any) -> int:
        if any(h.kind == "heartbeat" for h in write.history) and len(failed) < 2:
            failed.append(1)
            raise StoreUnavailableError("the database restarts")
        return real(write)

    store.commit = flaky  # type: ignore[method-assign]
    engine.start("long", Long(seconds=1.5), id="l-2", defer=True)
    runner = threading.Thread(target=Worker(engine).run_once)
    with caplog.at_level(logging.WARNING, logger="gorch.engine"):
        runner.start()
        while not RAN:
            time.sleep(0.01)
        while runner.is_alive():
            Worker(other).run_once()
            time.sleep(0.05)
        runner.join()
    assert len(failed) == 2 and RAN == ["crunch"]
    assert engine.get("l-2").status is RunStatus.FINISHED
    assert "could not renew the lease" in caplog.text
    store.close()
    other.store.close()


def test_heartbeat_details_must_be_json(tmp_path: Path) -> None:
    @dataclass
    class Bad:
        def definition(self) -> Any:
            return S(Step("bad", self.bad, retry=RetryPolicy(max_attempts=1)))

        def bad(self) -> None:
            context().heartbeat(object())

    engine = Engine(SQLStore(f"sqlite:///{tmp_path / 'g.db'}"), {"bad": Bad})
    inst = engine.start("bad", Bad(), id="b")
    assert inst.status is RunStatus.FAILED
    assert "heartbeat details must be JSON" in (inst.last_error or "")


def test_every_face_shows_the_running_step(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'g.db'}"
    store = SQLStore(url)
    engine = Engine(store, WORKFLOWS, lease=0.5)
    engine.start("long", Long(seconds=1.5), id="l-3", defer=True)
    runner = threading.Thread(target=Worker(engine).run_once)
    runner.start()
    reader = Engine(SQLStore(url), WORKFLOWS)
    deadline = time.monotonic() + 10
    while reader.get("l-3").running is None or not reader.get("l-3").running.details:  # type: ignore[union-attr]
        assert time.monotonic() < deadline
        time.sleep(0.05)
    argv = ["--store", url, "--workflows", "test_long_steps:WORKFLOWS", "show", "l-3"]
    shown = CliRunner().invoke(cli, argv, env={"COLUMNS": "200"})
    assert shown.exit_code == 0, shown.output
    assert "running crunch" in shown.output and "attempt 1" in shown.output
    assert '{"rows":' in shown.output
    app = create_app(reader)

    async def read() -> Any:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
            return (await client.get("/instances/l-3")).json()

    view = asyncio.run(read())
    assert view["running"]["statement"] == "crunch" and view["running"]["attempt"] == 1
    assert view["running"]["details"]["rows"] >= 1 and view["running"]["since"]
    runner.join()
    assert reader.get("l-3").running is None
    store.close()
    reader.store.close()
