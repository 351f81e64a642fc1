"""Durability under concurrency and crashes, on SQLite and PostgreSQL (docs/engine.md, "What the
engine guarantees").

- Many threads, and several processes, send events to one instance at once: every accepted
  event is applied exactly once, in history order; a refused one changed nothing.
- Workers in parallel threads and processes never run one instance's steps at once, and run
  each step exactly once.
- Events and a due timer racing for one wait: exactly one wins, the others change nothing.
- A process SIGKILLed in the middle of a step, just before or just after a step's checkpoint, or
  while it fires due timers, loses no accepted event; a checkpointed step never runs again; an
  interrupted one runs again (at least once); every timer fires exactly once.
- A timer claim leases only the instances it returns, even while commits end their waits.

Child processes run the roles of ``tests/_durable_workflows.py``; they share the test's database
(a SQLite file in ``tmp_path``, or the session's PostgreSQL server).
"""

from __future__ import annotations

import collections
import contextlib
import itertools
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from _durable_workflows import (
    BLOCK_ENV,
    FAIL_ENV,
    FAST_RETRY,
    WORKFLOWS,
    Alarm,
    Choice,
    Counter,
    Order,
    Parallel,
    Steps,
    Tally,
    read_lines,
)
from _subprocess import child_env

from gorch import Engine, GorchError, RunStatus, Worker, clock
from gorch.errors import ConflictError
from gorch.store import InstanceRecord, TimerRecord, Write
from gorch.store.sql import InstanceRow, SQLStore, TimerRow

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
CHILD = "import sys; from _durable_workflows import child_main; sys.exit(child_main(sys.argv[1:]))"


@pytest.fixture(params=["sqlite", "postgres"])
def store_kind(request: pytest.FixtureRequest) -> str:
    """Every test here runs on a SQLite file and on PostgreSQL (``sql_url`` follows this)."""
    return str(request.param)


@pytest.fixture
def db(sql_url: str) -> Iterator[SQLStore]:
    store = SQLStore(sql_url)
    yield store
    store.close()


class Children:
    """Child processes running ``_durable_workflows.child_main``; each one's output goes to a
    file, and any still running at the end of the test is killed."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp = tmp_path
        self.procs: list[tuple[subprocess.Popen[bytes], Path]] = []

    def spawn(
        self, cfg: dict[str, Any], env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        path = self.tmp / f"child{len(self.procs)}.out"
        full = child_env({k: v for k, v in os.environ.items() if k not in (BLOCK_ENV, FAIL_ENV)})
        full.update(env or {})
        with path.open("wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-c", CHILD, json.dumps(cfg)],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=full,
                cwd=self.tmp,
            )
        self.procs.append((proc, path))
        return proc

    def output(self, proc: subprocess.Popen[bytes]) -> str:
        for p, path in self.procs:
            if p is proc:
                return path.read_text(errors="replace")
        raise KeyError(proc)

    def kill(self, proc: subprocess.Popen[bytes]) -> None:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)

    def close(self) -> None:
        for proc, _ in self.procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=10)


@pytest.fixture
def children(tmp_path: Path) -> Iterator[Children]:
    c = Children(tmp_path)
    yield c
    c.close()


def wait_for(
    pred: Callable[[], bool],
    timeout: float,
    what: str,
    alive: Sequence[subprocess.Popen[bytes]] = (),
    children: Children | None = None,
) -> None:
    """Poll ``pred`` until it holds; fail (with the children's output) after ``timeout`` or as
    soon as one of the ``alive`` processes exits."""
    deadline = time.monotonic() + timeout
    while not pred():
        for p in alive:
            if p.poll() is not None:
                out = children.output(p) if children else ""
                pytest.fail(f"waiting for {what}: child exited with {p.returncode}:\n{out}")
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not happen within {timeout} s")
        time.sleep(0.01)


def wait_lease_expired(store: SQLStore, id: str, timeout: float = 10) -> None:
    """Wait until nobody holds a live lease on the instance (a killed process's lease runs out)."""

    def free() -> bool:
        row = store.get(id)
        assert row is not None
        return row.lease_expires is None or row.lease_expires < clock.now()

    wait_for(free, timeout, f"the lease on {id!r} to expire")


def marks(log: Path, *words: str) -> list[str]:
    """Lines of ``log`` that start with ``words`` (e.g. an instance's name and a step)."""
    prefix = " ".join(words) + " "
    return [line for line in read_lines(log) if line.startswith(prefix)]


# --------------------------------------------------------------------------------------------
# Many senders, one instance.

DUPLICATES = [900_001, 900_002, 900_003, 900_004]
"""Payloads every sender sends, each under its one key ``k<payload>``: applied at most once."""


def check_counter(engine: Engine, id: str, results: list[tuple[int, str, Any]]) -> None:
    """``results`` are ``(payload, outcome, output or message)`` of every send (outcome "ok" or
    the error's class name). Every accepted event is in the history exactly once, a refused one
    changed nothing, and the data is the serial application of the history's events."""
    others = [r for r in results if r[1].startswith("OTHER")]
    assert not others, f"sends raised errors that are not GorchErrors: {others[:5]}"
    accepted = {p for p, outcome, _ in results if outcome == "ok"}
    events = [h.input for h in engine.history(id) if h.kind == "event"]
    repeated = {p: n for p, n in collections.Counter(events).items() if n > 1}
    assert not repeated, f"events applied more than once: {repeated}"
    assert set(events) == accepted, (
        f"in history but refused: {sorted(set(events) - accepted)[:10]}; "
        f"accepted but not in history (lost): {sorted(accepted - set(events))[:10]}"
    )
    # Each send returned the total right after its event: the running sum in history order.
    running, total_at = 0, {}
    for p in events:
        running += p
        total_at[p] = running
    wrong = [(p, out, total_at[p]) for p, outcome, out in results if outcome == "ok"]
    wrong = [w for w in wrong if w[1] != w[2]]
    assert not wrong, f"(payload, answer, running total in history order): {wrong[:5]}"
    inst = engine.get(id)
    assert inst.status is RunStatus.WAITING
    assert inst.data.values == events
    assert inst.data.total == sum(events)
    with_steps = isinstance(inst.data, Counter)  # a Tally has no step
    assert inst.data.steps == (len(events) if with_steps else 0)
    steps = [h.name for h in engine.history(id) if h.kind == "step"]
    assert steps == (["count"] * len(events) if with_steps else [])
    row = engine.store.get(id)
    assert row is not None and row.lease_owner is None


def hammer_with_threads(
    url: str, workflow: str, *, shared: bool, threads: int = 8, per_thread: int = 20
) -> list[tuple[int, str, Any]]:
    """Start a counter, let ``threads`` threads send their own payloads and the duplicates at
    once (each thread with its own Engine, or all sharing one); check the outcome."""
    store = SQLStore(url)
    try:
        first = Engine(store, WORKFLOWS, busy_wait=30)
        first.start(workflow, WORKFLOWS[workflow](), id="c")
        barrier = threading.Barrier(threads)
        results: list[tuple[int, str, Any]] = []
        lock = threading.Lock()

        def send_all(t: int) -> None:
            engine = first if shared else Engine(store, WORKFLOWS, busy_wait=30)
            mine = [t * 1000 + i for i in range(per_thread)] + DUPLICATES
            random.Random(t).shuffle(mine)
            got: list[tuple[int, str, Any]] = []
            try:
                barrier.wait(timeout=20)
            except threading.BrokenBarrierError:
                got.append((-1, "OTHER BrokenBarrierError", ""))
            for p in mine:
                try:
                    got.append((p, "ok", engine.send("c", "add", p, key=f"k{p}")))
                except GorchError as exc:
                    got.append((p, type(exc).__name__, str(exc)))
                except Exception as exc:
                    got.append((p, f"OTHER {type(exc).__name__}", repr(exc)))
            with lock:
                results.extend(got)

        pool = [threading.Thread(target=send_all, args=(t,)) for t in range(threads)]
        for th in pool:
            th.start()
        for th in pool:
            th.join(timeout=50)
        assert not any(th.is_alive() for th in pool), "a sender hung"
        assert len(results) == threads * (per_thread + len(DUPLICATES))
        check_counter(first, "c", results)
        return results
    finally:
        store.close()


@pytest.mark.parametrize("shared", [False, True], ids=["engine-per-thread", "shared-engine"])
@pytest.mark.parametrize("workflow", ["counter", "tally"])
def test_threads_sending_to_one_instance_apply_each_accepted_event_once(
    sql_url: str, workflow: str, shared: bool
) -> None:
    # "counter" runs a step after every event (each send takes the instance's lease);
    # "tally" runs none (each send is one read and one version-checked commit).
    results = hammer_with_threads(sql_url, workflow, shared=shared)
    # Every call waits for the instance's lease (busy_wait), whether the lease is held by
    # another engine or by another thread of the same engine: nothing is refused.
    refused = collections.Counter(outcome for _, outcome, _ in results if outcome != "ok")
    assert not refused, refused


@pytest.mark.parametrize(
    "shared",
    [False, True],
    ids=["two-engines", "shared-engine"],
)
def test_a_send_waits_while_another_thread_runs_a_step(db: SQLStore, shared: bool) -> None:
    # The counter waits for "add" again after every step, so a send that waits for the
    # instance's lease is accepted. (Before each operation leased under a name of its own,
    # threads of one engine took each other's leases as their own: this send was refused with
    # CallbackNotFound "the workflow waits for no event at all".)
    first = Engine(db, WORKFLOWS, busy_wait=10)
    second = first if shared else Engine(db, WORKFLOWS, busy_wait=10)
    first.start("counter", Counter(nap=0.3), id="c")
    answers: list[Any] = []

    def send_first() -> None:
        try:
            answers.append(first.send("c", "add", 1))
        except Exception as exc:
            answers.append(repr(exc))

    sender = threading.Thread(target=send_first)
    sender.start()
    try:
        wait_for(lambda: db.get("c").lease_owner is not None, 10, "the first send's lease")
        assert second.send("c", "add", 2) == 3
    finally:
        sender.join(timeout=10)
    assert answers == [1]
    assert first.get("c").data.values == [1, 2]


@pytest.mark.parametrize(
    "shared",
    [False, True],
    ids=["two-engines", "shared-engine"],
)
def test_a_send_waits_for_a_parallel_thread_step_in_another_thread(
    db: SQLStore, tmp_path: Path, shared: bool
) -> None:
    log = tmp_path / "parallel.log"
    first = Engine(db, WORKFLOWS, busy_wait=10)
    second = first if shared else Engine(db, WORKFLOWS, busy_wait=10)
    outcome: dict[str, str] = {}

    def start() -> None:
        try:
            first.start("parallel", Parallel(log=str(log)), id="p")
            outcome["start"] = "ok"
        except Exception as exc:
            outcome["start"] = repr(exc)

    starter = threading.Thread(target=start, name="starter")
    starter.start()
    try:
        wait_for(lambda: bool(marks(log, "slow", "start")), 10, "the slow step to start")
        second.send("p", "ping")  # the main thread waits at "for ping" meanwhile
    finally:
        starter.join(timeout=10)
    assert not starter.is_alive()
    # (When threads of one engine took each other's leases as their own, the send ran "slow"
    # a second time, at the same time, in this thread, and start() failed with ConflictError.)
    assert read_lines(log) == ["slow start starter", "slow end starter", "pinged MainThread"]
    assert outcome == {"start": "ok"}
    assert [h.name for h in first.history("p") if h.kind == "step"] == ["slow", "pinged"]
    assert first.get("p").status is RunStatus.WAITING


def test_events_and_a_timer_racing_for_one_wait_have_exactly_one_winner(db: SQLStore) -> None:
    """Several senders (each with its own engine, or sharing one) and two worker threads race
    for one wait per instance: a "pick" event from each sender and a due timer. Exactly one
    wins; every other sender gets CallbackNotFound and changed nothing; no timer is left."""
    n, senders = 12, 6
    engine = Engine(db, WORKFLOWS, busy_wait=30)
    for i in range(n):
        # Timers fall due while the senders are at it: some instances go to the timer.
        engine.start("choice", Choice(after=0.01 + 0.02 * i), id=f"c{i}")
    results: list[tuple[str, str, str]] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    barrier = threading.Barrier(senders + 2)
    stop = threading.Event()

    def send(k: int) -> None:
        mine = engine if k % 2 else Engine(db, WORKFLOWS, busy_wait=30)
        rng = random.Random(k)
        try:
            barrier.wait(timeout=20)
            for i in rng.sample(range(n), n):
                time.sleep(rng.random() * 0.01)
                try:
                    out = mine.send(f"c{i}", "pick", f"sender{k}")
                    outcome = ("ok", out)
                except GorchError as exc:
                    outcome = (type(exc).__name__, str(exc))
                with lock:
                    results.append((f"c{i}", *outcome))
        except BaseException as exc:
            errors.append(exc)

    def work() -> None:
        worker = Worker(engine, batch=2)
        try:
            barrier.wait(timeout=20)
            while not stop.is_set():
                worker.run_once()
                time.sleep(0.002)
        except BaseException as exc:
            errors.append(exc)

    pool = [threading.Thread(target=send, args=(k,)) for k in range(senders)]
    pool += [threading.Thread(target=work) for _ in range(2)]
    for th in pool:
        th.start()
    for th in pool[:senders]:
        th.join(timeout=40)
    time.sleep(0.3)  # the last timers fall due
    stop.set()
    for th in pool[senders:]:
        th.join(timeout=20)
    assert not any(th.is_alive() for th in pool)
    assert not errors
    Worker(engine).run_once()

    winners = {"timer": 0, "event": 0}
    for i in range(n):
        id = f"c{i}"
        mine = [r for r in results if r[0] == id]
        assert len(mine) == senders
        won = [r[2] for r in mine if r[1] == "ok"]
        lost = collections.Counter(r[1] for r in mine if r[1] != "ok")
        assert set(lost) <= {"CallbackNotFound"}, mine
        inst = engine.get(id)
        history = engine.history(id)
        events = [h.input for h in history if h.kind == "event"]
        timers = [h for h in history if h.kind == "timer"]
        assert len(events) + len(timers) == 1, history
        assert inst.data.decisions == 1
        if timers:
            winners["timer"] += 1
            assert won == [] and inst.data.picked == "timeout"
        else:
            winners["event"] += 1
            assert won == events and inst.data.picked == events[0]
        steps = [h.name for h in history if h.kind == "step"]
        assert steps == (["expire", "settle"] if timers else ["settle"])
        assert inst.status is RunStatus.WAITING and inst.waiting_for() == ["end"]
    assert db.timers() == []
    assert winners["event"] > 0, winners


@pytest.mark.timeout(120)
def test_processes_sending_to_one_instance_apply_each_accepted_event_once(
    sql_url: str, db: SQLStore, children: Children, tmp_path: Path
) -> None:
    engine = Engine(db, WORKFLOWS)
    engine.start("counter", Counter(), id="c")
    engine.start("tally", Tally(), id="t")
    procs = []
    for n in range(4):
        payloads = [n * 1000 + i for i in range(15)] + DUPLICATES
        random.Random(n).shuffle(payloads)
        cfg = {
            "role": "send_many",
            "url": sql_url,
            "instances": ["c", "t"],
            "payloads": payloads,
            "ready": str(tmp_path / f"ready{n}"),
            "go": str(tmp_path / "go"),
            "out": str(tmp_path / f"out{n}.jsonl"),
        }
        procs.append(children.spawn(cfg))
    wait_for(
        lambda: all((tmp_path / f"ready{n}").exists() for n in range(4)),
        60,
        "the senders to be ready",
        procs,
        children,
    )
    (tmp_path / "go").touch()
    for p in procs:
        assert p.wait(timeout=60) == 0, children.output(p)
    results = collections.defaultdict(list)
    for n in range(4):
        for line in read_lines(tmp_path / f"out{n}.jsonl"):
            id, *result = json.loads(line)
            results[id].append(tuple(result))
    for id in ("c", "t"):
        assert len(results[id]) == 4 * (15 + len(DUPLICATES))
        check_counter(engine, id, results[id])
        refused = collections.Counter(r[1] for r in results[id] if r[1] != "ok")
        assert not refused, refused


# --------------------------------------------------------------------------------------------
# Many workers, many instances.


def start_steps(engine: Engine, log: Path, n: int, nap: float) -> None:
    for i in range(n):
        engine.start("steps", Steps(name=f"s{i}", log=str(log), nap=nap), id=f"s{i}", defer=True)


def check_steps(engine: Engine, log: Path, n: int) -> set[str]:
    """Each instance ran s1, s2, s3 once each, one after the other (never two of its steps at
    once), and finished. Returns who ran steps (``pid:thread``)."""
    runs = collections.defaultdict(list)
    for line in read_lines(log):
        name, step, start, end, who = json.loads(line)
        runs[name].append((start, end, step, who))
    assert set(runs) == {f"s{i}" for i in range(n)}
    for i in range(n):
        mine = sorted(runs[f"s{i}"])
        assert [r[2] for r in mine] == ["s1", "s2", "s3"], mine
        for a, b in itertools.pairwise(mine):
            assert a[1] <= b[0], f"s{i}: {a} overlaps {b}"
        inst = engine.get(f"s{i}")
        assert inst.status is RunStatus.FINISHED
        assert [h.name for h in engine.history(f"s{i}") if h.kind == "step"] == ["s1", "s2", "s3"]
    return {who for r in runs.values() for *_, who in r}


def test_worker_threads_never_run_one_instance_twice_at_once(db: SQLStore, tmp_path: Path) -> None:
    log = tmp_path / "steps.log"
    engine = Engine(db, WORKFLOWS)
    start_steps(engine, log, 50, nap=0.004)
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def work() -> None:
        try:
            barrier.wait(timeout=10)
            Worker(engine, batch=4).run_once()
        except BaseException as exc:
            errors.append(exc)

    pool = [threading.Thread(target=work, name=f"worker{k}") for k in range(4)]
    for th in pool:
        th.start()
    for th in pool:
        th.join(timeout=50)
    assert not any(th.is_alive() for th in pool)
    assert not errors
    who = check_steps(engine, log, 50)
    assert len(who) >= 2, f"only {who} did any work: the test did not run workers in parallel"
    assert db.timers() == []


@pytest.mark.timeout(120)
def test_worker_processes_never_run_one_instance_twice_at_once(
    sql_url: str, db: SQLStore, children: Children, tmp_path: Path
) -> None:
    log = tmp_path / "steps.log"
    engine = Engine(db, WORKFLOWS)
    start_steps(engine, log, 50, nap=0.01)
    procs = [
        children.spawn(
            {
                "role": "work",
                "mode": "once",
                "batch": 4,
                "url": sql_url,
                "ready": str(tmp_path / f"ready{n}"),
                "go": str(tmp_path / "go"),
            }
        )
        for n in range(2)
    ]
    wait_for(
        lambda: all((tmp_path / f"ready{n}").exists() for n in range(2)),
        60,
        "the workers to be ready",
        procs,
        children,
    )
    (tmp_path / "go").touch()
    for p in procs:
        assert p.wait(timeout=60) == 0, children.output(p)
    who = check_steps(engine, log, 50)
    pids = {w.split(":")[0] for w in who}
    assert len(pids) == 2, f"only {pids} did any work: the test did not run workers in parallel"


# --------------------------------------------------------------------------------------------
# SIGKILL in the middle of a step, around a step's checkpoint, and while firing timers.

CRASHES = [
    # (how, expected runs of "charge" in all)
    pytest.param("send-mid-step", 2, id="send-killed-mid-step"),
    pytest.param("send-before-checkpoint", 2, id="send-killed-before-checkpoint"),
    pytest.param("send-after-checkpoint", 1, id="send-killed-after-checkpoint"),
    # The parent's attempt fails first (the event stays accepted); a worker retries it.
    pytest.param("worker-mid-step", 3, id="worker-killed-mid-retry"),
    pytest.param("worker-before-checkpoint", 3, id="worker-killed-before-checkpoint"),
]


@pytest.mark.timeout(120)
@pytest.mark.parametrize(("how", "charges"), CRASHES)
def test_a_killed_process_loses_nothing_and_repeats_only_the_interrupted_step(
    sql_url: str,
    db: SQLStore,
    children: Children,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    how: str,
    charges: int,
) -> None:
    log = tmp_path / "order.log"
    engine = Engine(db, WORKFLOWS, busy_wait=10, retry=FAST_RETRY)
    engine.start("order", Order(name="o", log=str(log)), id="o")  # runs "prepare" here
    assert engine.send("o", "add", 1, key="k1") == 1
    assert engine.send("o", "add", 2, key="k2") == 2
    via, _, when = how.partition("-")
    cfg: dict[str, Any] = {"url": sql_url, "lease": 0.5}
    env: dict[str, str] = {}
    if when == "mid-step":
        env[BLOCK_ENV] = "charge"
    else:
        cfg.update(kill_step="charge", kill_when=when.split("-")[0])
    if via == "send":
        cfg.update(role="send_one", instance="o", event="add", payload=3, key="k3")
    else:
        # "charge" fails here, after the event was accepted; a worker process retries it.
        monkeypatch.setenv(FAIL_ENV, "charge")
        assert engine.send("o", "add", 3, key="k3") == 3
        monkeypatch.delenv(FAIL_ENV)
        assert engine.get("o").status is RunStatus.RUNNING
        cfg.update(role="work", mode="forever")
    proc = children.spawn(cfg, env)

    def child_charged() -> bool:
        return any(line.endswith(f" {proc.pid}") for line in marks(log, "o", "charge"))

    if when == "mid-step":
        wait_for(child_charged, 30, "the child to start 'charge'", [proc], children)
        children.kill(proc)
    else:
        proc.wait(timeout=30)
        assert marks(log, "KILL", when.split("-")[0], "charge"), children.output(proc)
    assert proc.returncode == -signal.SIGKILL, children.output(proc)
    assert child_charged()

    # The event accepted before the crash survived it...
    assert [h.input for h in engine.history("o") if h.kind == "event"] == [1, 2, 3]
    assert engine.get("o").data.items == [1, 2, 3]
    # ... and a repeat of its key answers as the first time and applies nothing (the repeat
    # waits out the dead process's lease).
    before = len(engine.history("o"))
    assert engine.send("o", "add", 3, key="k3") == 3
    assert len(engine.history("o")) == before
    wait_lease_expired(db, "o")
    deadline = time.monotonic() + 20
    while engine.get("o").status is not RunStatus.FINISHED:
        assert time.monotonic() < deadline, engine.get("o")
        Worker(engine).run_once()
        time.sleep(0.02)

    inst = engine.get("o")
    assert inst.data.items == [1, 2, 3]
    history = engine.history("o")
    assert [h.input for h in history if h.kind == "event"] == [1, 2, 3]
    assert [h.name for h in history if h.kind == "step"] == ["prepare", "charge", "ship"]
    failures = [h.name for h in history if h.kind == "step_failed"]
    assert failures == (["charge"] if via == "worker" else [])
    assert len(marks(log, "o", "prepare")) == 1
    assert len(marks(log, "o", "charge")) == charges, read_lines(log)
    assert len(marks(log, "o", "ship")) == 1
    assert db.timers() == []


@pytest.mark.timeout(120)
def test_timers_fire_exactly_once_across_killed_workers(
    sql_url: str, db: SQLStore, children: Children, tmp_path: Path
) -> None:
    log = tmp_path / "alarm.log"
    n = 20
    worker_cfg = {"role": "work", "mode": "forever", "url": sql_url, "lease": 1, "batch": 4}
    first = children.spawn(worker_cfg)  # it starts up while the instances are created
    engine = Engine(db, WORKFLOWS)
    for i in range(n):
        engine.start("alarm", Alarm(name=f"a{i}", log=str(log), after=1.0, nap=0.1), id=f"a{i}")
    assert len(db.timers()) == n

    def rings() -> int:
        return len([line for line in read_lines(log) if " ring " in line])

    wait_for(lambda: rings() >= 4, 30, "the first worker to fire 4 timers", [first], children)
    children.kill(first)
    so_far = rings()
    second = children.spawn(worker_cfg)
    wait_for(lambda: rings() >= so_far + 4, 30, "a second worker to fire 4", [second], children)
    children.kill(second)
    assert rings() < n, "the workers were not killed while firing timers"

    deadline = time.monotonic() + 30
    while any(engine.get(f"a{i}").status is not RunStatus.FINISHED for i in range(n)):
        assert time.monotonic() < deadline, [engine.get(f"a{i}").status for i in range(n)]
        Worker(engine).run_once()
        time.sleep(0.05)

    assert db.timers() == []
    again = 0
    for i in range(n):
        history = engine.history(f"a{i}")
        fired = [h for h in history if h.kind == "timer"]
        assert len(fired) == 1, history
        assert fired[0].at >= clock.parse_time(fired[0].input), "fired before it was due"
        assert [h.name for h in history if h.kind == "step"] == ["ring"]
        runs = len(marks(log, f"a{i}", "ring"))
        assert 1 <= runs <= 2, f"a{i}: 'ring' ran {runs} times"
        again += runs - 1
    # Each killed worker was in the middle of at most one step.
    assert again <= 2


# --------------------------------------------------------------------------------------------
# A timer claim racing with the commit that ends the timer's wait. (On PostgreSQL a claim once
# leased such an instance without returning it, leaving it busy until the lease expired.)


@pytest.mark.parametrize(
    "store_kind",
    [
        "sqlite",  # claims are serialized by the write lock: never
        "postgres",
    ],
)
def test_a_timer_claim_leases_only_the_instances_it_returns(db: SQLStore) -> None:
    """One thread ends and begins again the wait of instance X (as sends do: X's timer is
    deleted and written again, X's version bumped) while another claims due timers. Every
    instance a claim leases must be among the rows it returns: a leased row nobody works on is
    busy for the whole lease."""
    now = clock.now()
    due = now - timedelta(seconds=10)
    x = InstanceRecord("X", "choice", "waiting", "{}", "{}", now, now)
    db.commit(Write(x, None, timers=[TimerRecord("X", "_main_", "too late", 1, due)]))
    # Many other due timers (falling due after X's, so X is claimed first): the claim's query
    # takes long enough to overlap the other thread's commits.
    with db.sa_engine.begin() as conn:
        conn.execute(
            InstanceRow.__table__.insert(),  # type: ignore[attr-defined]
            [
                dict(id=f"f{i}", workflow="choice", status="waiting", state={}, data={},
                     created_at=now, updated_at=now, version=1, attempts=0)
                for i in range(2000)
            ],
        )  # fmt: skip
        conn.execute(
            TimerRow.__table__.insert(),  # type: ignore[attr-defined]
            [
                dict(instance_id=f"f{i}", thread_id="_main_", name="too late", pc=1,
                     due_at=due + timedelta(seconds=1))
                for i in range(2000)
            ],
        )  # fmt: skip
    stop = threading.Event()
    errors: list[BaseException] = []

    def toggle() -> None:
        present = True
        try:
            while not stop.is_set():
                row = db.get("X")
                assert row is not None
                if row.lease_owner is not None:
                    time.sleep(0.0005)
                    continue
                present = not present
                timers = [TimerRecord("X", "_main_", "too late", 1, due)] if present else []
                with contextlib.suppress(ConflictError):  # a claim took X meanwhile
                    db.commit(Write(row, row.version, timers=timers))
        except BaseException as exc:
            errors.append(exc)

    toggler = threading.Thread(target=toggle)
    toggler.start()
    stray: list[str] = []
    try:
        # On PostgreSQL the race shows within a fraction of a second (a few claims).
        deadline = time.monotonic() + (5 if db.dialect.name == "postgresql" else 1)
        n = 0
        while time.monotonic() < deadline and not stray:
            n += 1
            owner = f"claimer#{n}"
            at = clock.now()
            got = db.claim_timers(owner, at, at + timedelta(minutes=1), 16)
            claimed = {row.id for _, row in got}
            row = db.get("X")
            assert row is not None
            if row.lease_owner == owner and "X" not in claimed:
                stray.append(f"claim #{n} leased X until {row.lease_expires} without returning it")
            with db.sa_engine.begin() as conn:
                conn.exec_driver_sql(
                    "UPDATE gorch_instances SET lease_owner = NULL, lease_expires = NULL"
                )
    finally:
        stop.set()
        toggler.join(timeout=10)
    assert not errors
    assert not stray, stray
