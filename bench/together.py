"""Workflows that work together: ``python -m bench.together [--quick] [--base TREE]``.

Starts its own PostgreSQL server (like the tests) and prints medians and p99s for:

1. ``Engine.wait`` on PostgreSQL: from the commit that satisfies it (an event that finishes
   the instance, sent by another process) to the return of the waiting call, in the same
   process as the commit and in another one (target: within 100 ms, p50 and p99).
2. What a waiter costs while nothing changes: database statements its store runs during two
   idle seconds of a wait (target: none).
3. The per-step checkpoint cost of ``bench/engine.py`` (a 20-step workflow, a checkpoint after
   every step) with this tree and with ``--base TREE`` (a checkout of the commit before the
   change feed, e.g. ``git worktree add /tmp/base <commit>``), alternating rounds in one run,
   on SQLite and PostgreSQL (target: this tree within 1.05x of the base).
4. A parent that starts a child and takes its end: seconds from the parent's start to its
   finish with one worker, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gorch import Child, ChildResult, Engine, On, RunStatus, S, Step, Wait, Worker
from gorch.store import SQLStore

HERE = Path(__file__).resolve().parent.parent


@dataclass
class Ticket:
    """Waits for one event, then finishes."""

    closed: bool = False

    def definition(self) -> Any:
        return S(Wait("open", On("close", self.close)))

    def close(self) -> None:
        self.closed = True


@dataclass
class Kid:
    done: bool = False

    def definition(self) -> Any:
        return S(Step("work", self.work))

    def work(self) -> None:
        self.done = True


@dataclass
class Parent:
    ends: list[str] = field(default_factory=list)

    def definition(self) -> Any:
        return S(Child("kid", "kid", Kid, self.ended))

    def ended(self, r: ChildResult) -> None:
        self.ends.append(r.status.value)


WORKFLOWS: dict[str, type] = {"ticket": Ticket, "kid": Kid, "parent": Parent}


def pct(samples: list[float], p: float) -> float:
    s = sorted(samples)
    return s[min(len(s) - 1, int(p * len(s)))]


# -- 1. wait latency ---------------------------------------------------------------------------


def _sender(url: str, ids: list[str], out: Any) -> None:
    """In another process: close each ticket and write when its commit returned."""
    engine = Engine(SQLStore(url), WORKFLOWS)
    for id in ids:
        time.sleep(0.05)
        engine.send(id, "close")
        out.write(f"{id} {time.time()}\n")
        out.flush()


def wait_latency(url: str, n: int, *, other_process: bool) -> list[float]:
    """Seconds from each satisfying commit to the return of ``wait`` in this process; the
    commit is made by this process (a thread) or by another process."""
    store = SQLStore(url)
    engine = Engine(store, WORKFLOWS)
    ids = [f"t-{other_process}-{i}-{time.time_ns()}" for i in range(n)]
    for id in ids:
        engine.start("ticket", Ticket(), id=id)
    returned: dict[str, float] = {}

    def waiter(id: str) -> None:
        engine.wait(id, until=RunStatus.FINISHED, timeout=60)
        returned[id] = time.time()

    threads = [threading.Thread(target=waiter, args=(id,)) for id in ids]
    for t in threads:
        t.start()
    time.sleep(0.5)  # every waiter is waiting
    committed: dict[str, float] = {}
    if other_process:
        proc = subprocess.run(
            [sys.executable, "-m", "bench.together", "--send", url, *ids],
            cwd=HERE, capture_output=True, text=True, check=True,
        )  # fmt: skip
        for line in proc.stdout.splitlines():
            id, at = line.split()
            committed[id] = float(at)
    else:
        for id in ids:
            time.sleep(0.05)
            engine.send(id, "close")
            committed[id] = time.time()
    for t in threads:
        t.join()
    store.close()
    return [max(0.0, returned[id] - committed[id]) for id in ids]


# -- 2. idle cost ------------------------------------------------------------------------------


def idle_statements(url: str, seconds: float = 2.0) -> int:
    """Statements the store runs while one ``wait`` waits ``seconds`` on an unchanging
    instance (after its first read)."""
    store = SQLStore(url)
    engine = Engine(store, WORKFLOWS)
    engine.start("ticket", Ticket(), id=f"idle-{time.time_ns()}")
    id = engine.list(workflow="ticket", limit=1).items[0].id
    pool: Any = store._pool
    count = [0]
    run = pool.run

    def counted(*a: Any, **kw: Any) -> Any:
        count[0] += 1
        return run(*a, **kw)

    t = threading.Thread(target=lambda: _swallow(engine, id, seconds + 1.0))
    t.start()
    time.sleep(0.5)  # its first read is done
    pool.run = counted
    time.sleep(seconds)
    pool.run = run
    t.join()
    store.close()
    return count[0]


def _swallow(engine: Engine, id: str, timeout: float) -> None:
    with contextlib.suppress(Exception):  # it times out: that is the point
        engine.wait(id, timeout=timeout)


# -- 3. per-step cost, this tree against a base tree ------------------------------------------

_STEPS = """
import statistics, sys, time
from bench.engine import WORKFLOWS, TwentySteps
from gorch import Engine
from gorch.store import SQLStore
store = SQLStore(sys.argv[1])
engine = Engine(store, WORKFLOWS)
engine.start("twenty", TwentySteps())
samples = []
for _ in range(int(sys.argv[2])):
    t0 = time.perf_counter()
    engine.start("twenty", TwentySteps())
    samples.append((time.perf_counter() - t0) / 20)
store.close()
print(statistics.median(samples))
"""


def per_step(tree: Path, url: str, n: int) -> float:
    env = dict(os.environ, PYTHONPATH=str(tree))
    out = subprocess.run(
        [sys.executable, "-c", _STEPS, url, str(n)], cwd=tree, env=env, capture_output=True,
        text=True, check=True,
    )  # fmt: skip
    return float(out.stdout.strip().splitlines()[-1])


def compare(base: Path, url_of: Any, rounds: int, n: int) -> tuple[float, float]:
    """Median per-step seconds of this tree and of ``base``, alternating ``rounds`` times
    (each round on a fresh database from ``url_of(tree)``)."""
    mine: list[float] = []
    theirs: list[float] = []
    for _ in range(rounds):
        mine.append(per_step(HERE, url_of(HERE), n))
        theirs.append(per_step(base, url_of(base), n))
    return statistics.median(mine), statistics.median(theirs)


# -- 4. a child's round trip ------------------------------------------------------------------


def child_round_trip(url: str, n: int) -> float:
    store = SQLStore(url)
    engine = Engine(store, WORKFLOWS)
    worker = Worker(engine)
    samples = []
    for i in range(n):
        t0 = time.perf_counter()
        engine.start("parent", Parent(), id=f"p-{i}-{time.time_ns()}")
        while worker.run_once():
            pass
        samples.append(time.perf_counter() - t0)
    store.close()
    return statistics.median(samples)


def _fresh_pg(pg_url: str) -> Any:
    import psycopg

    made = [0]

    def url_of(tree: Path) -> str:
        made[0] += 1
        name = f"bench_{os.getpid()}_{made[0]}"
        with psycopg.connect(pg_url, autocommit=True) as c:
            c.execute(f"CREATE DATABASE {name}")
        return pg_url.rsplit("/", 1)[0] + f"/{name}"

    return url_of


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="few rounds (a smoke run)")
    ap.add_argument("--base", type=Path, help="a checkout of the commit to compare with")
    ap.add_argument("--send", nargs="+", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.send:
        _sender(args.send[0], args.send[1:], sys.stdout)
        return 0
    from gorch.testing.postgres import TempPostgres

    q = args.quick
    waits = 10 if q else 60
    print(f"gorch: workflows that work together (python {sys.version.split()[0]})\n")
    with TempPostgres() as pg:
        url = pg.url
        SQLStore(url).close()
        print("1. Engine.wait on PostgreSQL: satisfying commit -> wait returns")
        for other in (False, True):
            lat = wait_latency(url, waits, other_process=other)
            where = "another process" if other else "the same process"
            ok = "PASS" if pct(lat, 0.99) < 0.1 else "FAIL"
            print(
                f"   commit in {where:<16}  p50 {statistics.median(lat) * 1e3:6.1f} ms   "
                f"p99 {pct(lat, 0.99) * 1e3:6.1f} ms   (target < 100 ms: {ok})"
            )
        idle = 0.5 if q else 2.0
        print("\n2. a wait while nothing changes")
        for name, u in (("postgresql", url), ("sqlite", _sqlite_url())):
            print(f"   {name:<11} statements in {idle:g} idle seconds: {idle_statements(u, idle)}")
        if args.base is not None:
            rounds, n = (3, 10) if q else (7, 40)
            print(f"\n3. per-step checkpoint, this tree against {args.base} ({rounds} rounds)")
            mine, base = compare(args.base, lambda tree: _sqlite_url(), rounds, n)
            _ratio("sqlite FULL", mine, base)
            mine, base = compare(args.base, _fresh_pg(url), rounds, n)
            _ratio("postgresql", mine, base)
        print("\n4. a parent that starts a child and takes its end, one worker")
        for name, u in (("sqlite", _sqlite_url()), ("postgresql", url)):
            took = child_round_trip(u, 5 if q else 30)
            print(f"   {name:<11} {took * 1e3:7.1f} ms from start to the parent's finish")
    return 0


def _ratio(name: str, mine: float, base: float) -> None:
    r = mine / base
    ok = "PASS" if r <= 1.05 else "FAIL"
    print(
        f"   {name:<11} this tree {mine * 1e6:7.1f} µs, base {base * 1e6:7.1f} µs: "
        f"{r:.3f}x  (target <= 1.05x: {ok})"
    )


def _sqlite_url() -> str:
    return f"sqlite:///{tempfile.mkdtemp()}/bench.db"


if __name__ == "__main__":
    sys.exit(main())
