"""``Step(transaction=True)``: the step's writes through ``gorch.context().session`` commit in
the same transaction as its checkpoint (docs/steps.md). A process SIGKILLed before, during and
after that commit, and a PostgreSQL restart in the middle of the step, leave the row written
exactly once; a store that cannot do it is refused at registration."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from _subprocess import child_env
from _transaction_workflows import KILL_ENV, WORKFLOWS, Booking, Reservation
from sqlmodel import Session, SQLModel, select

from gorch import (
    DefinitionError,
    Engine,
    NoContextError,
    RunStatus,
    S,
    Step,
    Worker,
    context,
)
from gorch.retry import RetryPolicy
from gorch.store import MemoryStore, SQLStore
from gorch.testing import Harness

TESTS = Path(__file__).resolve().parent


@pytest.fixture(params=["sqlite", "postgres"])
def store_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def db(sql_url: str) -> Any:
    store = SQLStore(sql_url)
    SQLModel.metadata.create_all(store.sa_engine, tables=[Reservation.__table__])  # type: ignore[list-item]
    yield store
    store.close()


def rows(store: SQLStore, instance: str) -> list[Reservation]:
    with Session(store.sa_engine) as s:
        return list(s.exec(select(Reservation).where(Reservation.instance == instance)))


def kinds(engine: Engine, id: str) -> list[str]:
    return [f"{h.kind}:{h.name}" if h.name else h.kind for h in engine.history(id)]


def test_the_steps_writes_commit_with_its_checkpoint(db: SQLStore) -> None:
    engine = Engine(db, WORKFLOWS)
    inst = engine.start("booking", Booking(seats=3), id=f"ok-{db.dialect.name}")
    assert inst.status is RunStatus.FINISHED and inst.data.confirmed
    assert [r.seats for r in rows(db, inst.id)] == [3]
    assert kinds(engine, inst.id).count("step:reserve") == 1


def test_a_failing_transactional_step_writes_nothing_and_is_retried(db: SQLStore) -> None:
    tries: list[int] = []

    class Flaky(Booking):
        def reserve(self) -> None:
            context().session.add(Reservation(instance=context().instance_id, seats=1))
            context().session.flush()
            tries.append(context().attempt)
            if len(tries) == 1:
                raise RuntimeError("the payment check failed after the insert")

    fast = RetryPolicy(max_attempts=3, initial=0.001, max_interval=0.001, jitter=0)
    engine = Engine(db, {"booking": Flaky}, retry=fast)
    id = f"flaky-{db.dialect.name}"
    inst = engine.start("booking", Flaky(), id=id)
    assert inst.status is RunStatus.RUNNING and rows(db, id) == []  # rolled back with it
    time.sleep(0.01)
    Worker(engine).run_once()
    assert engine.get(id).status is RunStatus.FINISHED
    assert tries == [1, 2] and len(rows(db, id)) == 1


def test_a_checkpoint_that_cannot_commit_takes_the_steps_writes_with_it(db: SQLStore) -> None:
    """The user's row breaks a constraint at the commit: neither it nor the checkpoint is
    written; the attempt counts as failed."""

    class Twice(Booking):
        def reserve(self) -> None:
            session = context().session
            session.add(Reservation(id=1, instance=context().instance_id))
            session.add(Reservation(id=1, instance=context().instance_id))  # same key

    engine = Engine(db, {"booking": Twice}, retry=RetryPolicy(max_attempts=1))
    id = f"twice-{db.dialect.name}"
    inst = engine.start("booking", Twice(), id=id)
    assert inst.status is RunStatus.FAILED
    assert rows(db, id) == [] and "step:reserve" not in kinds(engine, id)


def test_a_store_that_cannot_is_refused_at_registration() -> None:
    with pytest.raises(DefinitionError, match=r"Step 'reserve' has transaction=True.*SQLStore"):
        Engine(MemoryStore(), WORKFLOWS)
    with pytest.raises(DefinitionError, match="needs an SQLStore"):
        Harness(WORKFLOWS)
    memory = SQLStore("sqlite://")
    with pytest.raises(DefinitionError, match="SQLite file or PostgreSQL"):
        Engine(memory, WORKFLOWS)
    memory.close()


def test_the_session_is_only_in_a_transactional_step(tmp_path: Path) -> None:
    got: list[str] = []

    class Plain(Booking):
        def confirm(self) -> None:
            try:
                context().session  # noqa: B018
            except NoContextError as exc:
                got.append(str(exc))

    store = SQLStore(f"sqlite:///{tmp_path / 'g.db'}")
    SQLModel.metadata.create_all(store.sa_engine, tables=[Reservation.__table__])  # type: ignore[list-item]
    Engine(store, {"booking": Plain}).start("booking", Plain(), id="p")
    assert "transaction=True" in got[0] and "'confirm'" in got[0]
    with pytest.raises(DefinitionError, match="transaction must be True or False"):

        class Bad:
            def definition(self) -> Any:
                return S(Step("x", lambda: None, transaction="yes"))  # type: ignore[arg-type]

        Engine(store, {"bad": Bad})
    store.close()


def test_the_harness_on_sqlite_runs_transactional_steps() -> None:
    with Harness(WORKFLOWS, store="sqlite") as h:
        SQLModel.metadata.create_all(h.store.sa_engine, tables=[Reservation.__table__])  # type: ignore[attr-defined, list-item]
        h.start("booking", Booking(), id="h")
        h.assert_status("h", "finished")
        assert len(rows(h.store, "h")) == 1  # type: ignore[arg-type]


@pytest.mark.parametrize("point", ["flushed", "commit", "committed", "next"])
def test_a_sigkill_at_every_point_leaves_the_row_written_exactly_once(
    db: SQLStore, sql_url: str, point: str, tmp_path: Path
) -> None:
    engine = Engine(db, WORKFLOWS, lease=1.0)
    id = f"kill-{point}-{db.dialect.name}"
    engine.start("booking", Booking(), id=id, defer=True)
    env = child_env(**{KILL_ENV: point})
    log = tmp_path / "child.log"
    with log.open("wb") as out:
        child = subprocess.run(
            [sys.executable, str(TESTS / "_transaction_workflows.py"), sql_url],
            env=env, stdout=out, stderr=subprocess.STDOUT, timeout=120,
        )  # fmt: skip
    assert child.returncode == -signal.SIGKILL, log.read_text()
    committed = point in ("committed", "next")
    assert len(rows(db, id)) == (1 if committed else 0)
    time.sleep(1.1)  # the dead child's lease expires
    assert Worker(engine).run_once() == 1
    inst = engine.get(id)
    assert inst.status is RunStatus.FINISHED and inst.data.confirmed
    assert len(rows(db, id)) == 1
    assert kinds(engine, id).count("step:reserve") == 1
