"""Transactional steps: ``python -m bench.transactions [--quick]``.

On a SQLite file (WAL, ``synchronous=FULL``, the default) and on PostgreSQL (started here,
fsync on), ``Engine.start`` of many instances (each start runs the step and commits) of a
workflow whose step ``reserve`` runs in one of three modes:

- ``transactional``: ``Step("reserve", ..., transaction=True)`` adds one row of a small
  SQLModel table of the bench's own through ``gorch.context().session``: the row commits in the
  step's checkpoint's transaction;
- ``separate write``: a plain step writes the same row in a transaction of its own
  (``with Session(store.sa_engine) as s: s.add(...); s.commit()``);
- ``plain, no write``: a plain step that writes nothing (one plain step's checkpoint).

And in two shapes: ``reserve`` alone (the target's), and ``reserve`` followed by a plain step
that writes nothing. They differ in what a plain ``reserve``'s checkpoint costs: alone, it
shares the run's last commit (the instance finishing); with a step after it, it is a commit of
its own, before that step. A transactional step's checkpoint always commits at once, with its
row. The modes and shapes take turns round after round (the order rotating) so that the
machine's drift hits them alike.

Prints each one's median microseconds per instance (the median over the rounds of each round's
median), the commits an instance costs, what opening a step transaction and the row's SQL in
it (add + flush, rolled back) cost by themselves, and the ratios: transactional / separate
write (the median of the rounds' ratios) and transactional - plain (the added cost). Target: a
transactional step costs no more than one plain step's checkpoint plus its own SQL, i.e.
transactional <= separate write within :data:`TOLERANCE` (both pay the row's SQL; the separate
write pays a transaction more), checked on each shape. Medians, not means: these machines are
shared and noisy. ``--quick``: fewer rounds and starts (a smoke run).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func
from sqlmodel import Field, Session, SQLModel, select

from bench.engine import sqlite_url
from gorch import Engine, S, Step, context
from gorch.store import SQLStore

TOLERANCE = 0.05  # transactional may exceed the separate write by this much and still pass
TABLE = "bench_tx_reservations"


class BenchReservation(SQLModel, table=True):
    """The row each writing step writes (both writing modes write the same one)."""

    __tablename__ = TABLE
    id: int | None = Field(default=None, primary_key=True)
    instance: str
    seats: int = 0


def reservation() -> BenchReservation:
    return BenchReservation(instance=context().instance_id, seats=2)


# -- workflows ---------------------------------------------------------------------------------


@dataclass
class Transactional:
    """``reserve`` alone; its row commits with its checkpoint."""

    reserved: bool = False
    confirmed: bool = False

    def definition(self) -> Any:
        return S(Step("reserve", self.reserve, transaction=True))

    def reserve(self) -> None:
        context().session.add(reservation())
        self.reserved = True

    def confirm(self) -> None:
        self.confirmed = True


@dataclass
class SeparateWrite(Transactional):
    """``reserve`` alone, a plain step writing the same row in a transaction of its own."""

    def definition(self) -> Any:
        return S(Step("reserve", self.reserve))

    def reserve(self) -> None:
        with Session(context().services["sa_engine"]) as s:
            s.add(reservation())
            s.commit()
        self.reserved = True


@dataclass
class PlainNoWrite(Transactional):
    """``reserve`` alone, a plain step that writes nothing: the cost of its checkpoint."""

    def definition(self) -> Any:
        return S(Step("reserve", self.reserve))

    def reserve(self) -> None:
        self.reserved = True


@dataclass
class TransactionalThen(Transactional):
    def definition(self) -> Any:
        return S(Step("reserve", self.reserve, transaction=True), Step("confirm", self.confirm))


@dataclass
class SeparateWriteThen(SeparateWrite):
    def definition(self) -> Any:
        return S(Step("reserve", self.reserve), Step("confirm", self.confirm))


@dataclass
class PlainNoWriteThen(PlainNoWrite):
    def definition(self) -> Any:
        return S(Step("reserve", self.reserve), Step("confirm", self.confirm))


MODES = {
    "transactional": "transactional step (the row in its session)",
    "separate": "plain step + the row in its own transaction",
    "plain": "plain step, no write",
}
SHAPES = {"alone": "the step alone", "then": "then a plain step"}
WORKFLOWS: dict[str, type] = {
    "transactional/alone": Transactional,
    "separate/alone": SeparateWrite,
    "plain/alone": PlainNoWrite,
    "transactional/then": TransactionalThen,
    "separate/then": SeparateWriteThen,
    "plain/then": PlainNoWriteThen,
}
WRITES = {"transactional": 1, "separate": 1, "plain": 0}  # rows per instance


@dataclass(frozen=True)
class Sizes:
    rounds: int
    starts: int  # instances started per workflow per round


FULL = Sizes(rounds=9, starts=120)
QUICK = Sizes(rounds=3, starts=8)


@dataclass
class StoreResult:
    """What one store measured: each round's median seconds, per workflow (and per part of a
    step transaction: "open", "sql")."""

    name: str
    seconds: dict[str, list[float]] = field(default_factory=dict)
    ratios: dict[str, list[float]] = field(default_factory=dict)  # per shape, each round's
    commits: dict[str, int] = field(default_factory=dict)  # per instance, per workflow
    rows: tuple[int, int] = (0, 0)  # (rows in the table, rows the instances should have written)

    def us(self, key: str) -> float:
        return statistics.median(self.seconds[key]) * 1e6

    def ratio(self, shape: str) -> float:
        """transactional / separate write: the median of the rounds' ratios."""
        return statistics.median(self.ratios[shape])

    def verdict(self, shape: str) -> str:
        ok = self.ratio(shape) <= 1 + TOLERANCE and self.rows[0] == self.rows[1]
        return "PASS" if ok else "FAIL"


# -- one measure each --------------------------------------------------------------------------


def per_instance(engine: Engine, workflow: str, n: int) -> float:
    """Median seconds per ``engine.start`` of ``workflow``, ``n`` instances."""
    cls = WORKFLOWS[workflow]
    lat = []
    for _ in range(n):
        t0 = time.perf_counter()
        inst = engine.start(workflow, cls())
        lat.append(time.perf_counter() - t0)
        assert inst.data.reserved, inst
    return statistics.median(lat)


def step_transaction_parts(store: SQLStore, n: int) -> tuple[float, float]:
    """Median seconds to open a step's transaction (a connection, ``BEGIN``, the session), and
    of the row's own SQL in it (add + flush); each rolled back."""
    opened, sql = [], []
    for k in range(n):
        t0 = time.perf_counter()
        tx = store.step_transaction()
        t1 = time.perf_counter()
        tx.session.add(BenchReservation(instance=f"rolled-back-{k}", seats=2))
        tx.session.flush()
        t2 = time.perf_counter()
        tx.close()  # rolls back
        opened.append(t1 - t0)
        sql.append(t2 - t1)
    return statistics.median(opened), statistics.median(sql)


def commits_per_instance(engine: Engine, workflow: str) -> int:
    """The commits one instance of ``workflow`` costs: its row's versions, plus the separate
    write's own transaction."""
    inst = engine.start(workflow, WORKFLOWS[workflow]())
    return inst.version + workflow.startswith("separate/")


def count_rows(store: SQLStore) -> int:
    with Session(store.sa_engine) as s:
        return int(s.exec(select(func.count()).select_from(BenchReservation)).one())


# -- one store ---------------------------------------------------------------------------------


def bench_store(name: str, url: str, sizes: Sizes) -> StoreResult:
    """Every workflow on the store at ``url``, in turns (the order rotating each round),
    ``sizes.rounds`` times."""
    store = SQLStore(url)
    SQLModel.metadata.create_all(store.sa_engine, tables=[SQLModel.metadata.tables[TABLE]])
    engine = Engine(store, WORKFLOWS, services={"sa_engine": store.sa_engine})
    res = StoreResult(name)
    order = list(WORKFLOWS)
    started = dict.fromkeys(order, 0)
    for workflow in order:  # warm up: compile, connect; and count each one's commits
        per_instance(engine, workflow, 3)
        res.commits[workflow] = commits_per_instance(engine, workflow)
        started[workflow] += 4
    step_transaction_parts(store, 3)
    for r in range(sizes.rounds):
        k = r % len(order)
        seconds: dict[str, float] = {}
        for workflow in order[k:] + order[:k]:
            seconds[workflow] = per_instance(engine, workflow, sizes.starts)
            started[workflow] += sizes.starts
        seconds["open"], seconds["sql"] = step_transaction_parts(store, sizes.starts)
        for key, value in seconds.items():
            res.seconds.setdefault(key, []).append(value)
        for shape in SHAPES:
            ratio = seconds[f"transactional/{shape}"] / seconds[f"separate/{shape}"]
            res.ratios.setdefault(shape, []).append(ratio)
    wrote = sum(n * WRITES[workflow.split("/")[0]] for workflow, n in started.items())
    res.rows = (count_rows(store), wrote)
    store.close()
    return res


# -- printing ----------------------------------------------------------------------------------


def print_store(k: int, r: StoreResult) -> None:
    print(f"{k}. {r.name}: µs per instance (engine.start), commits per instance")
    print(f"   {'reserve:':<46} " + " ".join(f"{label:>19}" for label in SHAPES.values()))
    for mode, label in MODES.items():
        cells = []
        for shape in SHAPES:
            n = r.commits[f"{mode}/{shape}"]
            commits = f"{n - 1}+1" if mode == "separate" else str(n)
            cells.append(f"{r.us(f'{mode}/{shape}'):10.0f} {commits:>8}")
        print(f"   {label:<46} " + " ".join(cells))
    ratios = " ".join(f"{r.ratio(shape):18.2f}x" for shape in SHAPES)
    print(f"   {'transactional / (plain + separate write)':<46} {ratios}")
    added = []
    for shape in SHAPES:
        tx, plain = r.us(f"transactional/{shape}"), r.us(f"plain/{shape}")
        extra = r.commits[f"transactional/{shape}"] - r.commits[f"plain/{shape}"]
        added.append(f"{tx - plain:+7.0f} µs, {extra:+d} commit{'' if extra == 1 else 's'}")
    print(f"   {'transactional - plain, no write':<46} " + " ".join(f"{a:>19}" for a in added))
    print(
        f"   in a step transaction: opening it {r.us('open'):.0f} µs, the row's SQL"
        f" (add + flush) {r.us('sql'):.0f} µs"
    )
    got, want = r.rows
    print(f"   rows written: {got:,} of {want:,} ({'ok' if got == want else 'WRONG'})\n")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="few rounds and starts (a smoke run)")
    args = ap.parse_args(argv)
    from gorch.testing.postgres import TempPostgres

    sizes = QUICK if args.quick else FULL
    started = time.monotonic()
    print(
        f"gorch transactional steps (python {sys.version.split()[0]}, {os.cpu_count()} cores; "
        f"medians of {sizes.rounds} rounds of {sizes.starts} starts each)\n"
    )
    results = []
    with TempPostgres() as pg, sqlite_url("FULL") as sqlite:
        for name, url in (("SQLite file", sqlite), ("PostgreSQL", pg.url)):
            results.append(bench_store(name, url, sizes))
    for k, r in enumerate(results, 1):
        print_store(k, r)
    print(
        "target: a transactional step costs no more than one plain step's checkpoint plus its "
        f"own SQL\n        (transactional <= plain + separate write, within {TOLERANCE:.0%})"
    )
    for r in results:
        for shape, label in SHAPES.items():
            print(f"   {f'{r.name}, {label}':<36} {r.ratio(shape):.2f}x  {r.verdict(shape)}")
    print(f"(took {time.monotonic() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
