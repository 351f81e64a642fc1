"""Database faults: a PostgreSQL server of this module's own is restarted, stopped and has its
connections cut while stores, workers and the HTTP API use it.

A store drops dead connections a generation at a time; it runs a call cut before its COMMIT
once more, and says of one cut during it that the outcome is unknown (the repeat with the same
idempotency key is safe). A database that cannot be used is ``StoreUnavailableError`` from
every call, and 503 with ``Retry-After`` over HTTP, never 500; ``/health`` names the unhealthy
part and why. Workers (a thread, the ``gorch worker`` process) survive restarts, cut
connections (their LISTEN connection too), bugs, and rows that do not read.
"""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, closing, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import schemathesis
from _durable_workflows import FAST_RETRY, WORKFLOWS, Steps, Tally

from gorch import Engine, RunStatus, S, Step, StoreUnavailableError, Worker
from gorch.http import create_app
from gorch.store import HistoryRecord, InstanceRecord, SQLStore, TimerRecord, Write
from gorch.store.sql._tables import emptying_postgresql
from gorch.testing.http import LiveServer
from gorch.testing.postgres import TempPostgres

TESTS = Path(__file__).resolve().parent
NOW = datetime.now(UTC)


@pytest.fixture(scope="module")
def server() -> Iterator[TempPostgres]:
    with TempPostgres() as pg:
        yield pg


@pytest.fixture
def pg(server: TempPostgres) -> TempPostgres:
    """The module's server, up (a failed test may have left it down), its tables emptied."""
    try:
        socket.create_connection(("127.0.0.1", server.port), 1).close()
    except OSError:
        server.up()
    with psycopg.connect(server.url, autocommit=True) as conn:
        conn.execute(emptying_postgresql())
    return server


def wait_for(
    pred: Callable[[], bool], timeout: float, what: str, alive: Sequence[Any] = ()
) -> None:
    """Poll ``pred`` until it holds; fail after ``timeout`` s, or if an ``alive`` process ends."""
    deadline = time.monotonic() + timeout
    while not pred():
        for p in alive:
            assert p.poll() is None, f"waiting for {what}: the process exited with {p.returncode}"
        assert time.monotonic() < deadline, f"{what} did not happen within {timeout} s"
        time.sleep(0.02)


def row(id: str, **kw: Any) -> InstanceRecord:
    return InstanceRecord(id, "wf", "running", '{"pc": 0}', "{}", NOW, NOW, **kw)


def warm(store: SQLStore, n: int) -> None:
    """Have ``n`` connections open in the store's pool."""
    with ExitStack() as held:
        for _ in range(n):
            held.enter_context(store._conn())


def backend(url: str, where: str, *, cut: bool = False) -> None:
    """Wait until one backend is ``where`` holds (``wait_event = 'SyncRep'`` ...); ``cut``
    its connection then."""
    found: list[int] = []

    def look() -> bool:
        with psycopg.connect(url, autocommit=True) as c:
            found[:] = [p for (p,) in c.execute(f"SELECT pid FROM pg_stat_activity WHERE {where}")]
            if len(found) == 1 and cut:
                c.execute("SELECT pg_terminate_backend(%s)", (found[0],))
        return len(found) == 1

    wait_for(look, 10, f"a backend where {where}")


@contextmanager
def worker_thread(engine: Engine, **kw: Any) -> Iterator[Worker]:
    """A worker running in a thread for the block; then it is stopped and the store closed."""
    worker = Worker(engine, **kw)
    th = threading.Thread(target=worker.run, kwargs={"handle_signals": False})
    th.start()
    try:
        yield worker
    finally:
        worker.stop()
        th.join(10)
        engine.store.close()


# -- the store ---------------------------------------------------------------------------------


def test_dead_connections_are_dropped_a_generation_at_a_time(
    pg: TempPostgres, caplog: pytest.LogCaptureFixture
) -> None:
    store = SQLStore(pg.url)
    try:
        version = store.commit(Write(row("a"), None))
        warm(store, 10)
        for cut in (pg.restart, pg.terminate_backends):
            cut()
            caplog.clear()
            for i in range(15):  # every call works at once; none fails on a dead connection
                # First a checkpoint, which cannot be retried: only finding the dead
                # connection before using it saves it.
                version = store.commit(
                    Write(row("a"), version, history=[HistoryRecord("a", NOW, "step", f"s{i}")])
                )
                assert store.get("a") is not None
            dead = [r for r in caplog.records if "found dead" in r.getMessage()]
            assert len(dead) == 1, "one dead connection drops all those made before it"
            warm(store, 10)
    finally:
        store.close()


@contextmanager
def table_locked(url: str) -> Iterator[None]:
    with psycopg.connect(url) as blocker:
        blocker.execute("LOCK TABLE gorch_instances IN ACCESS EXCLUSIVE MODE")
        yield
        blocker.rollback()


def test_a_call_cut_before_its_commit_runs_once_more_a_cut_checkpoint_does_not(
    pg: TempPostgres,
) -> None:
    store = SQLStore(pg.url)
    try:
        store.commit(Write(row("a"), None))
        waiting = "wait_event_type = 'Lock' AND datname = current_database()"
        timers = [TimerRecord("a", "main", "T", 1, NOW)]
        with ThreadPoolExecutor(1) as pool:
            for call in (
                lambda: store.get("a"),  # a read
                lambda: store.commit(Write(row("a"), 1, timers=timers)),  # a transaction
            ):
                with table_locked(pg.url):
                    done = pool.submit(call)
                    backend(pg.url, waiting, cut=True)
                    backend(pg.url, waiting)  # the call waits again, on a fresh connection
                done.result(10)
            assert store.get("a").version == 2  # type: ignore[union-attr]
            assert store.timers("a") == timers

            checkpoint = Write(row("a"), 2, history=[HistoryRecord("a", NOW, "step", "s")])
            with table_locked(pg.url):
                done = pool.submit(store.commit, checkpoint)
                backend(pg.url, waiting, cut=True)
                with pytest.raises(StoreUnavailableError) as info:
                    done.result(10)
        assert info.value.outcome_unknown and info.value.workflow_id == "a"
        assert "may or may not have been committed" in str(info.value)
        # Not run again (it had not run at all: the lock held it; the store cannot know that).
        assert store.get("a").version == 2 and store.history("a") == []  # type: ignore[union-attr]
    finally:
        store.close()


@contextmanager
def commits_hang(url: str) -> Iterator[None]:
    """Make every COMMIT wait for a synchronous standby that does not exist (it has committed
    locally meanwhile): a connection cut now breaks during its COMMIT."""

    def setting(value: str) -> None:
        with psycopg.connect(url, autocommit=True) as c:
            c.execute(f"ALTER SYSTEM SET synchronous_standby_names = '{value}'")
            c.execute("SELECT pg_reload_conf()")

        def reloaded() -> bool:  # then every server process has been told to reload too
            with psycopg.connect(url, autocommit=True) as c:
                return c.execute("SHOW synchronous_standby_names").fetchone() == (value,)

        wait_for(reloaded, 10, "the configuration to be reloaded")

    setting("nobody")
    try:
        yield
    finally:
        setting("")


@pytest.mark.parametrize("path", ["transaction", "checkpoint"])
def test_a_commit_cut_during_commit_is_unknown_and_its_repeat_with_the_key_is_safe(
    pg: TempPostgres, path: str
) -> None:
    engine = Engine(SQLStore(pg.url), WORKFLOWS)
    try:
        engine.start("tally", Tally(), id="t")
        syncrep = "wait_event = 'SyncRep'"
        with commits_hang(pg.url), ThreadPoolExecutor(1) as pool:
            if path == "transaction":  # an event with its idempotency key
                done = pool.submit(engine.send, "t", "add", 5, key="k5")
            else:  # PostgreSQL's one-statement checkpoint, in autocommit
                r = engine.store.get("t")
                checkpoint = Write(r, r.version, history=[HistoryRecord("t", NOW, "step", "x")])  # type: ignore[arg-type]
                done = pool.submit(engine.store.commit, checkpoint)
            backend(pg.url, syncrep, cut=True)
            with pytest.raises(StoreUnavailableError) as info:
                done.result(10)
        assert info.value.outcome_unknown
        # It had been committed: repeating the write itself would have applied it twice.
        if path == "transaction":
            assert engine.send("t", "add", 5, key="k5") == 5  # the first answer, not 10
            assert engine.get("t").data.values == [5]
        else:
            assert [h.name for h in engine.history("t") if h.kind == "step"] == ["x"]
    finally:
        engine.store.close()


def test_every_call_on_a_stopped_database_is_store_unavailable(pg: TempPostgres) -> None:
    store = SQLStore(pg.url)
    t = TimerRecord("a", "main", "T", 1, NOW)
    calls: dict[str, Callable[[], Any]] = {
        "get": lambda: store.get("a"),
        "get_key": lambda: store.get_key("a", "k"),
        "list_instances": lambda: store.list_instances(),
        "history": lambda: store.history("a"),
        "timers": lambda: store.timers(),
        "schema_version": store.schema_version,
        "ping": store.ping,
        "wait_for_work": lambda: store.wait_for_work(0.1),
        "claim": lambda: store.claim("w", NOW, NOW, 5, workflows=["wf"]),
        "claim_timers": lambda: store.claim_timers("w", NOW, NOW, 5),
        "release": lambda: store.release("a", "w", 1),
        "delete_timer": lambda: store.delete_timer(t),
        "insert": lambda: store.commit(Write(row("b"), None)),
        "checkpoint": lambda: store.commit(Write(row("a"), 1, history=[])),
        "commit": lambda: store.commit(Write(row("a"), 1, timers=[t], notify=True)),
    }
    try:
        store.commit(Write(row("a"), None))
        store.wait_for_work(0.01)  # listening
        warm(store, 5)
        pg.down()
        for name, call in calls.items():
            with pytest.raises(StoreUnavailableError) as info:
                call()
            assert not info.value.outcome_unknown, name
            assert "nothing was written" in str(info.value) or name == "ping", name
        with pytest.raises(StoreUnavailableError, match="cannot be reached"):
            SQLStore(pg.url)
        pg.up()
        assert store.get("a") is not None and store.ping() is None
        assert store.commit(Write(row("a"), 1, timers=[t], notify=True)) == 2
    finally:
        store.close()


def test_wait_for_work_makes_a_new_listen_connection_after_a_cut(pg: TempPostgres) -> None:
    a, b = SQLStore(pg.url), SQLStore(pg.url)
    try:
        a.commit(Write(row("x"), None))
        assert b.wait_for_work(0.05) is False  # listening
        pg.terminate_backends()
        with pytest.raises(StoreUnavailableError):
            b.wait_for_work(1)
        assert b.wait_for_work(1) is True  # a new one: notifications sent meanwhile are lost
        assert b.wait_for_work(0.05) is False
        with ThreadPoolExecutor(1) as pool:
            done = pool.submit(lambda: (time.sleep(0.2), a.commit(Write(row("x"), 1, notify=True))))
            assert b.wait_for_work(5) is True
            done.result(10)
    finally:
        a.close()
        b.close()


# -- workers -----------------------------------------------------------------------------------


def start_steps(engine: Engine, id: str, log: Path) -> None:
    engine.start("steps", Steps(name=id, log=str(log), nap=0), id=id, defer=True)


def finished(engine: Engine, id: str) -> Callable[[], bool]:
    return lambda: engine.get(id).status is RunStatus.FINISHED


def test_a_worker_thread_survives_restarts_and_cut_connections(
    pg: TempPostgres, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    engine = Engine(SQLStore(pg.url), WORKFLOWS)
    log = tmp_path / "steps.log"

    def failed_turns() -> int:
        return sum("in a row failed" in r.getMessage() for r in caplog.records)

    with worker_thread(engine, poll=30) as worker:  # only a NOTIFY wakes it soon
        start_steps(engine, "a", log)
        wait_for(finished(engine, "a"), 10, "a worked on")
        pg.restart()
        wait_for(lambda: failed_turns() > 0, 10, "the worker to notice")
        start_steps(engine, "b", log)
        wait_for(finished(engine, "b"), 20, "b worked on after the restart")
        seen = failed_turns()
        pg.terminate_backends()
        wait_for(lambda: failed_turns() > seen, 10, "the worker to notice the cut")
        wait_for(lambda: worker.health().failures == 0, 10, "the worker to listen again")
        time.sleep(0.3)
        began = time.monotonic()
        start_steps(engine, "c", log)
        wait_for(finished(engine, "c"), 10, "c worked on")
        assert time.monotonic() - began < 5, "woken by NOTIFY on its new LISTEN connection"
        h = worker.health()
        assert h.running and h.healthy and h.last_error is not None, h
    assert not worker.health().running


def test_the_gorch_worker_process_survives_a_restart(pg: TempPostgres, tmp_path: Path) -> None:
    engine = Engine(SQLStore(pg.url), WORKFLOWS)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(TESTS), str(TESTS.parent)]))
    argv = [sys.executable, "-m", "gorch", "--store", pg.url, "--workflows",
            "_durable_workflows:WORKFLOWS", "worker", "--poll", "0.2"]  # fmt: skip
    out = tmp_path / "worker.out"
    with out.open("wb") as f:
        proc = subprocess.Popen(argv, env=env, stdout=f, stderr=subprocess.STDOUT)
    try:
        start_steps(engine, "a", tmp_path / "steps.log")
        wait_for(finished(engine, "a"), 20, "a worked on", alive=[proc])
        pg.restart()
        start_steps(engine, "b", tmp_path / "steps.log")
        wait_for(finished(engine, "b"), 20, "b worked on after the restart", alive=[proc])
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0, out.read_text()
        assert "turn 1 in a row failed" in out.read_text()  # the fault was logged
    finally:
        if proc.poll() is None:
            proc.kill()
        engine.store.close()


def test_a_turn_that_fails_for_another_reason_does_not_end_the_worker_either(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"sqlite:///{tmp_path / 'g.db'}"
    engine = Engine(SQLStore(url), WORKFLOWS)
    with worker_thread(engine, poll=0.05, max_backoff=0.2) as worker:
        start_steps(engine, "a", tmp_path / "steps.log")
        wait_for(finished(engine, "a"), 10, "a worked on")
        with sqlite3.connect(tmp_path / "g.db") as raw:  # every claim fails now
            raw.execute("DROP TABLE gorch_timers")
        wait_for(lambda: worker.health().failures >= Worker.FAILING, 10, "failed turns")
        assert "no such table: gorch_timers" in (worker.health().problem or "")
        assert worker.health().running
        assert any(r.exc_info for r in caplog.records if "(a bug)" in r.getMessage())
        SQLStore(url).close()  # opening a store makes the missing table again
        start_steps(engine, "b", tmp_path / "steps.log")
        wait_for(finished(engine, "b"), 10, "b worked on")
        assert worker.health().healthy


@pytest.mark.parametrize("store_kind", ["sqlite", "postgres"])
def test_a_row_that_does_not_read_does_not_stop_a_worker(
    store_kind: str, pg: TempPostgres, tmp_path: Path
) -> None:
    url = pg.url if store_kind == "postgres" else f"sqlite:///{tmp_path / 'g.db'}"
    engine = Engine(SQLStore(url), WORKFLOWS)
    try:
        for i in range(7):
            start_steps(engine, f"i{i}", tmp_path / "steps.log")
        bad = "'infinity'" if store_kind == "postgres" else "'garbage'"
        with engine.store.sa_engine.begin() as conn:  # type: ignore[attr-defined]
            conn.exec_driver_sql(f"UPDATE gorch_instances SET updated_at = {bad} WHERE id = 'i3'")
        assert engine.store.get("i3").defects  # type: ignore[attr-defined, union-attr]
        Worker(engine).run_once()
        assert all(finished(engine, f"i{i}")() for i in range(7) if i != 3)
    finally:
        engine.store.close()


# -- HTTP --------------------------------------------------------------------------------------


def test_http_answers_503_during_an_outage_and_no_500_after_it(pg: TempPostgres) -> None:
    engine = Engine(SQLStore(pg.url, pool_size=4), WORKFLOWS)
    app = create_app(engine, worker=Worker(engine, poll=0.2, max_backoff=0.5))
    health_doc = schemathesis.openapi.from_dict(app.openapi())["/health"]["GET"]
    with (
        closing(engine.store),
        LiveServer(app) as url,
        httpx.Client(base_url=url, timeout=30) as http,
    ):

        def calls() -> list[httpx.Response]:
            return [
                http.get("/instances"),
                http.get("/instances/t0"),
                http.post("/workflows/tally/instances", json={}),
                http.post("/instances/t1/events/add", json=1),
            ]

        wait_for(lambda: http.get("/health").status_code == 200, 10, "healthy")
        assert http.get("/health").json() == {"status": "ok"}
        for i in range(4):
            assert http.post("/workflows/tally/instances", json={"id": f"t{i}"}).is_success
        with ThreadPoolExecutor(8) as pool:  # many connections in the pool
            list(pool.map(lambda i: http.get(f"/instances/t{i % 4}"), range(32)))
        pg.restart()
        got = [r.status_code for _ in range(10) for r in calls()]
        assert got == [200, 200, 201, 200] * 10, "no 500 after a restart"

        pg.down()
        try:
            for r in calls():
                assert r.status_code == 503 and r.headers["retry-after"], r.text
                body = r.json()
                assert body["type"] == "urn:gorch:problem:store-unavailable", body
                assert body["error"] == "StoreUnavailableError" and "try again" in body["detail"]
            wait_for(lambda: len(http.get("/health").json().get("unhealthy", {})) == 2, 10,
                     "the store and the worker reported")  # fmt: skip
            r = http.get("/health")
            assert r.status_code == 503 and r.headers["content-type"] == "application/problem+json"
            unhealthy = r.json()["unhealthy"]
            assert "cannot be reached" in unhealthy["store"], unhealthy
            assert "turns failed" in unhealthy["worker"], unhealthy
            health_doc.validate_response(r)  # documented
        finally:
            pg.up()
        wait_for(lambda: http.get("/health").status_code == 200, 15, "healthy again")
        assert all(r.is_success for _ in range(5) for r in calls())


@dataclass
class Nap:
    """One step: it sleeps ``seconds``, or (``quit``) calls ``sys.exit``."""

    seconds: float = 0.0
    quit: bool = False

    def definition(self) -> Any:
        return S(Step("nap", self.nap))

    def nap(self) -> None:
        if self.quit:
            sys.exit("a step called sys.exit")
        time.sleep(self.seconds)


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")  # SystemExit
def test_health_reports_a_stalled_and_then_a_dead_worker(tmp_path: Path) -> None:
    engine = Engine(SQLStore(f"sqlite:///{tmp_path / 'g.db'}"), {"nap": Nap},
                    lease=timedelta(seconds=0.3))  # fmt: skip
    worker = Worker(engine, poll=0.05)
    app = create_app(engine, worker=worker)
    health_doc = schemathesis.openapi.from_dict(app.openapi())["/health"]["GET"]
    with closing(engine.store), LiveServer(app) as url, httpx.Client(base_url=url) as http:
        engine.start("nap", Nap(2.0), id="long", defer=True)
        wait_for(lambda: worker.health().item is not None, 10, "the step to start")
        h = worker.health()
        assert h.item == "long (run)" and (h.stalled is (h.item_seconds > 0.9)), h  # type: ignore[operator]
        wait_for(lambda: http.get("/health").status_code == 503, 10, "a stall reported")
        r = http.get("/health")
        assert "instance long (run), has been running for" in r.json()["unhealthy"]["worker"]
        health_doc.validate_response(r)
        wait_for(lambda: http.get("/health").status_code == 200, 10, "the step to end")

        engine.start("nap", Nap(quit=True), id="quit", defer=True)
        wait_for(lambda: not worker.health().running, 10, "the worker thread to end")
        r = http.get("/health")
        assert r.status_code == 503, r.text
        assert r.json()["unhealthy"] == {
            "worker": "the worker is not running (it ended with SystemExit: a step called sys.exit)"
        }
        health_doc.validate_response(r)


# -- a transactional step across a restart ----------------------------------------------------

IN_RESERVE = threading.Event()
GO_ON = threading.Event()


@dataclass
class Reserve:
    """A transactional step that waits, after its insert, until the test restarted the
    server under it."""

    def definition(self) -> Any:
        return S(Step("reserve", self.reserve, transaction=True, retry=FAST_RETRY))

    def reserve(self) -> None:
        from _transaction_workflows import Reservation

        from gorch import context

        context().session.add(Reservation(instance=context().instance_id, seats=1))
        context().session.flush()
        if not IN_RESERVE.is_set():
            IN_RESERVE.set()
            assert GO_ON.wait(30)


def test_a_restart_during_a_transactional_step_writes_its_row_exactly_once(
    pg: TempPostgres,
) -> None:
    from _transaction_workflows import Reservation
    from sqlmodel import Session, SQLModel, select

    store = SQLStore(pg.url)
    SQLModel.metadata.create_all(store.sa_engine, tables=[Reservation.__table__])  # type: ignore[list-item]
    engine = Engine(store, {"reserve": Reserve})
    IN_RESERVE.clear()
    GO_ON.clear()
    runner = threading.Thread(target=lambda: engine.start("reserve", Reserve(), id="r-1"))
    runner.start()
    assert IN_RESERVE.wait(30)
    pg.restart()  # the step's transaction dies with its connection
    GO_ON.set()
    runner.join(30)
    inst = engine.get("r-1")
    assert inst.status is RunStatus.RUNNING and "could not be written" in (inst.last_error or "")
    time.sleep(0.05)
    wait_for(lambda: Worker(engine).run_once() >= 0 and finished(engine, "r-1")(), 20, "retry")
    with Session(store.sa_engine) as s:
        got = s.exec(select(Reservation).where(Reservation.instance == "r-1")).all()
    assert len(got) == 1
    assert [h.kind for h in engine.history("r-1")].count("step") == 1
    store.close()


# -- workflows that work together --------------------------------------------------------------


def test_a_wait_and_a_childs_end_outlive_a_restart(pg: TempPostgres) -> None:
    from _child_workflows import WORKFLOWS as TOGETHER
    from _child_workflows import Delivery, Shop

    engine = Engine(SQLStore(pg.url), TOGETHER, lease=1.0)
    engine.start("delivery", Delivery(hold=True), id="parked")
    got: list[Any] = []
    waiter = threading.Thread(
        target=lambda: got.append(engine.wait("parked", until=RunStatus.CANCELLED, timeout=60))
    )
    waiter.start()
    with worker_thread(Engine(SQLStore(pg.url), TOGETHER, lease=1.0), poll=0.2):
        engine.start("shop", Shop(), id="shop", defer=True)
        pg.restart()  # while the waiter waits and the worker runs the parent and its child
        wait_for(lambda: _status(engine, "shop") is RunStatus.FINISHED, 30, "the parent")
        began = time.monotonic()
        engine.cancel("parked", actor="ops", reason="test")
        waiter.join(30)
    assert got and got[0].status is RunStatus.CANCELLED
    assert time.monotonic() - began < 5, "woken on its new LISTEN connection"
    inst = engine.get("shop")
    assert inst.children == ["shop.deliver.1"] and len(inst.data.ends) == 1
    assert [h.kind for h in engine.history("shop")].count("child") == 1
    engine.store.close()


def _status(engine: Engine, id: str) -> RunStatus | None:
    try:
        return engine.get(id).status
    except StoreUnavailableError:
        return None
