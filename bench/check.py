"""The deploy check on many instances (issue 13): ``python -m bench.check [--quick] [-n N]``.

Seeds a SQLite file with N unfinished instances (default 100,000) of a workflow with a Go
thread, a Wait with a Timeout and two shapes of state, then times :meth:`Engine.check
<gorch.engine.Engine.check>`:

1. against the code that wrote them (ok);
2. against code that renamed a Wait and deleted an event without saying so (two problems,
   each listing its count and first ids);
3. against that code with ``renames`` declared (ok again).

Target: 100,000 instances checked in under a minute. The rows are seeded by copying the rows
of a few real instances (started by the engine) with ``executemany``, changing the id and
the data of each, so that every copy is in the stored format and the check structures every
instance's data on its own.
"""

from __future__ import annotations

import argparse
import resource
import sqlite3
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import orjson

from gorch import Engine, Go, On, S, Step, Timeout, Wait
from gorch.store import SQLStore


@dataclass
class Order:
    """The code that wrote the instances."""

    items: list[str] = field(default_factory=list)
    qty: int = 0
    acked: bool = False

    def definition(self) -> Any:
        return S(
            Step("take", self.take),
            Go("notify", S(Wait("for ack", On("Ack", self.ack)))),
            Wait("for payment", On("Pay", self.pay), Timeout("payment late", 3600)),
            Step("ship", self.take),
        )

    def take(self) -> None:
        self.qty += 1

    def ack(self) -> None:
        self.acked = True

    def pay(self) -> None:
        self.qty += 1


@dataclass
class Renamed(Order):
    """The next deploy: a Wait renamed, an event deleted, and no rename declared."""

    def definition(self) -> Any:
        return S(
            Step("take", self.take),
            Go("notify", S(Wait("for ack", On("Ack", self.ack)))),
            Wait("for a payment", On("Pay", self.pay)),
            Step("ship", self.take),
        )


@dataclass
class Declared(Renamed):
    """The same deploy, with its rename declared and the timeout kept."""

    renames: ClassVar[dict[str, str]] = {"for payment": "for a payment"}

    def definition(self) -> Any:
        return S(
            Step("take", self.take),
            Go("notify", S(Wait("for ack", On("Ack", self.ack)))),
            Wait("for a payment", On("Pay", self.pay), Timeout("payment late", 3600)),
            Step("ship", self.take),
        )


def seed(path: Path, n: int) -> float:
    """``n`` instances in the SQLite file ``path`` (two shapes); the seconds it took."""
    t0 = time.perf_counter()
    url = f"sqlite:///{path}"
    store = SQLStore(url)
    engine = Engine(store, {"order": Order})
    engine.start("order", Order(items=["a"]), id="template-0")
    engine.start("order", Order(items=["b"]), id="template-1")
    engine.send("template-1", "Ack")  # the second shape: the notify thread is done
    store.close()
    db = sqlite3.connect(path)
    cols = [r[1] for r in db.execute("PRAGMA table_info(gorch_instances)")]
    templates = db.execute(f"SELECT {', '.join(cols)} FROM gorch_instances").fetchall()
    at_id, at_state, at_data = cols.index("id"), cols.index("state"), cols.index("data")
    rows = []
    for i in range(n):
        row = list(templates[i % len(templates)])
        new_id = f"order-{i:07d}"
        row[at_state] = row[at_state].replace(f'"{row[at_id]}"', f'"{new_id}"', 1)
        data = orjson.loads(row[at_data])
        data["items"] = [f"item {i}"] * (1 + i % 3)
        row[at_data], row[at_id] = orjson.dumps(data).decode(), new_id
        rows.append(row)
    marks = ", ".join("?" * len(cols))
    with db:
        db.execute("DELETE FROM gorch_instances")
        db.executemany(f"INSERT INTO gorch_instances ({', '.join(cols)}) VALUES ({marks})", rows)
    db.close()
    return time.perf_counter() - t0


def timed_check(path: Path, cls: type) -> tuple[float, Any]:
    """One check of the file against ``cls``: seconds, report."""
    store = SQLStore(f"sqlite:///{path}")
    try:
        engine = Engine(store, {"order": cls})
        t0 = time.perf_counter()
        report = engine.check()
        return time.perf_counter() - t0, report
    finally:
        store.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="2,000 instances (a smoke run)")
    ap.add_argument("-n", type=int, default=None, help="instances to seed (default 100,000)")
    args = ap.parse_args(argv)
    n = args.n or (2_000 if args.quick else 100_000)
    print(f"gorch deploy check (python {sys.version.split()[0]}), {n:,} instances on SQLite\n")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "check.db"
        print(f"0. seeding: {seed(path, n):.1f} s")
        cases = (
            ("1. the code that wrote them", Order),
            ("2. a Wait renamed and an event deleted, undeclared", Renamed),
            ("3. the rename declared", Declared),
        )
        for title, cls in cases:
            seconds, report = timed_check(path, cls)
            rate = report.checked / seconds if seconds else float("inf")
            print(f"\n{title}: {seconds:.2f} s, {rate:,.0f} instances/s, ok={report.ok}")
            for p in report.problems:
                print(f"   {p.kind} {p.name!r}: {p.count:,} instances, e.g. {', '.join(p.ids[:3])}")
            assert report.checked == n, report.checked
            assert report.ok is (cls is not Renamed), report
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\npeak memory (max RSS): {peak:.0f} MB; target: {n:,} checked in under 60 s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
