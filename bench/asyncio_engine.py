"""AsyncEngine against Engine: ``python -m bench.asyncio_engine [--quick]``.

On a SQLite file (WAL, ``synchronous=FULL``, the default) and on PostgreSQL (started here,
fsync on), with a workflow of its own whose every send runs an ``On`` handler (an int
payload), a ``Step`` after it and their checkpoints:

1. ``send``: median microseconds per call of ``Engine.send`` called sequentially and of
   ``await AsyncEngine.send`` called sequentially, and where the latter's time goes (to the
   pool's thread, the send there, back to the loop); sends per second of 16 concurrent
   senders, each on its own instance: 16 coroutines (``asyncio.gather``) awaiting
   ``AsyncEngine.send`` (its default pool: ``min(32, cpus + 4)`` threads) against
   ``Engine.send`` from a thread pool of as many threads, and of 16. The ratio async/sync of
   each.
2. The event loop's lag: a ticker task sleeps 5 ms again and again and records how late it
   wakes (median, p99, max, in ms) while the loop is idle; while 16 coroutines await
   ``AsyncEngine.send``; while 16 clients post the same events to the HTTP app
   (``gorch.http.create_app(aengine)``, served in-process through ``httpx.ASGITransport``);
   and while 16 coroutines call the sync ``Engine.send`` directly in the loop (it blocks).

All the figures of a store come from one run, its modes taking turns round after round, so
that the machine's drift hits them alike; each printed figure is the median over the rounds
(of per-call medians, for latencies): the machines are shared and noisy. The loop is
asyncio's default one. ``--quick``: fewer rounds and sends (a smoke run).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import statistics
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol, cast

from bench.engine import pct, sqlite_url
from gorch import AsyncEngine, Engine, For, On, S, Step, Wait
from gorch.store import SQLStore

WORKFLOW = "counter"
EVENT = "add"
SENDERS = 16  # concurrent senders, each on its own instance
TICK = 0.005  # the ticker's sleep, seconds

ASend = Callable[..., Awaitable[Any]]
"""``AsyncEngine.send``, bound."""


class Sender(Protocol):
    """What the bench calls of an ``AsyncEngine``: its methods are set on the class when
    ``gorch.engine._async`` is imported, so mypy does not see them on the class itself."""

    async def send(self, id: str, event: str, payload: Any = None) -> Any: ...


@dataclass
class Counter:
    """Waits for ``add`` (an int) forever, with a step after each: a send runs the handler, the
    step and their checkpoints, then waits again."""

    total: int = 0
    steps: int = 0

    def definition(self) -> Any:
        return S(
            For("adding", True, Wait("for add", On(EVENT, self.add)), Step("count", self.count))
        )

    def add(self, k: int) -> int:
        self.total += k
        return self.total

    def count(self) -> None:
        self.steps += 1


@dataclass(frozen=True)
class Sizes:
    rounds: int
    sequential: int  # sends per round, for each sequential mode
    per_sender: int  # sends per sender per round, for throughput and lag
    idle: float  # seconds of idle loop per round (the lag's floor)


FULL = Sizes(rounds=7, sequential=200, per_sender=25, idle=0.5)
QUICK = Sizes(rounds=3, sequential=15, per_sender=3, idle=0.05)


@dataclass(frozen=True)
class Lag:
    """One loaded round: the ticker's lag (seconds) and the load's sends per second."""

    median: float
    p99: float
    max: float
    sends_per_s: float


LAG_LOADS = {
    "idle": "idle loop (no load)",
    "async": f"{SENDERS} x await AsyncEngine.send",
    "http": f"{SENDERS} HTTP clients, create_app(aengine)",
    "blocking": f"{SENDERS} x Engine.send in the loop (blocks)",
}


@dataclass
class StoreResult:
    """What one store measured: every round's figure, per measure."""

    name: str
    seconds: dict[str, list[float]]  # median seconds per call (see Bench.round)
    rates: dict[str, list[float]]  # sends per second (see Bench.round)
    lags: dict[str, list[Lag]]  # LAG_LOADS' keys


# -- one measure each --------------------------------------------------------------------------


def sync_sequential(engine: Engine, id: str, n: int) -> float:
    """Median seconds per ``Engine.send``, one after another."""
    lat = []
    for j in range(n):
        t0 = time.perf_counter()
        engine.send(id, EVENT, j)
        lat.append(time.perf_counter() - t0)
    return statistics.median(lat)


async def async_sequential(send: ASend, id: str, n: int) -> float:
    """Median seconds per ``await AsyncEngine.send``, one after another."""
    lat = []
    for j in range(n):
        t0 = time.perf_counter()
        await send(id, EVENT, j)
        lat.append(time.perf_counter() - t0)
    return statistics.median(lat)


async def hop_parts(aengine: AsyncEngine, id: str, n: int) -> tuple[float, float, float]:
    """Where ``await AsyncEngine.send``'s time goes: median seconds from the ``await`` to the
    send's start in the pool's thread, of the send there, and from its end to the coroutine
    going on (``aengine.run`` of a timed ``Engine.send``: the path of ``AsyncEngine.send``)."""

    def timed(j: int) -> tuple[float, float]:
        t1 = time.perf_counter()
        aengine.engine.send(id, EVENT, j)
        return t1, time.perf_counter()

    there, send, back = [], [], []
    for j in range(n):
        t0 = time.perf_counter()
        t1, t2 = await aengine.run(timed, j)
        t3 = time.perf_counter()
        there.append(t1 - t0)
        send.append(t2 - t1)
        back.append(t3 - t2)
    return statistics.median(there), statistics.median(send), statistics.median(back)


def sync_throughput(engine: Engine, ids: list[str], per: int, pool: ThreadPoolExecutor) -> float:
    """Sends per second of ``Engine.send`` from ``pool``, ``per`` sends on each instance: each
    instance's next send is submitted when its last one returns (as a coroutine awaits it), so
    a pool smaller than ``len(ids)`` keeps every thread busy to the end."""
    left = [len(ids)]
    failed: list[BaseException] = []
    done = threading.Event()
    lock = threading.Lock()

    def chain(id: str, j: int) -> None:
        try:
            engine.send(id, EVENT, j)
            if j + 1 < per:
                pool.submit(chain, id, j + 1)
                return
        except BaseException as exc:
            failed.append(exc)
        with lock:
            left[0] -= 1
            if left[0] == 0:
                done.set()

    t0 = time.perf_counter()
    for id in ids:
        pool.submit(chain, id, 0)
    done.wait()
    elapsed = time.perf_counter() - t0
    if failed:
        raise failed[0]
    return len(ids) * per / elapsed


async def async_senders(send: ASend, ids: list[str], per: int) -> int:
    """One coroutine per instance, each awaiting ``AsyncEngine.send`` ``per`` times."""

    async def sender(id: str) -> None:
        for j in range(per):
            await send(id, EVENT, j)

    await asyncio.gather(*(sender(id) for id in ids))
    return len(ids) * per


async def async_throughput(send: ASend, ids: list[str], per: int) -> float:
    """Sends per second of :func:`async_senders`."""
    t0 = time.perf_counter()
    sends = await async_senders(send, ids, per)
    return sends / (time.perf_counter() - t0)


async def blocking_senders(engine: Engine, ids: list[str], per: int) -> int:
    """One coroutine per instance, each calling the sync ``Engine.send`` in the loop (as an
    ``async def`` handler that calls it would), yielding to the loop between two calls."""

    async def sender(id: str) -> None:
        for j in range(per):
            engine.send(id, EVENT, j)
            await asyncio.sleep(0)

    await asyncio.gather(*(sender(id) for id in ids))
    return len(ids) * per


async def http_senders(client: Any, ids: list[str], per: int) -> int:
    """One client coroutine per instance, each posting ``per`` events to the HTTP app."""

    async def sender(id: str) -> None:
        for j in range(per):
            r = await client.post(f"/workflows/{WORKFLOW}/instances/{id}/events/{EVENT}", json=j)
            if r.status_code != 200:
                raise RuntimeError(f"the app answered {r.status_code}: {r.text[:500]}")

    await asyncio.gather(*(sender(id) for id in ids))
    return len(ids) * per


async def idle(seconds: float) -> int:
    await asyncio.sleep(seconds)
    return 0


async def lag_under(load: Awaitable[int]) -> Lag:
    """The ticker's lag while ``load`` runs on this loop, and the load's sends per second."""
    lags: list[float] = []

    async def tick() -> None:
        while True:
            t0 = time.perf_counter()
            await asyncio.sleep(TICK)
            lags.append(time.perf_counter() - t0 - TICK)

    ticker = asyncio.create_task(tick())
    await asyncio.sleep(0)  # the ticker is asleep before the load starts
    t0 = time.perf_counter()
    sends = await load
    elapsed = time.perf_counter() - t0
    ticker.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await ticker
    lags = lags or [elapsed]  # a load that never let the ticker wake: late by all of it
    return Lag(statistics.median(lags), pct(lags, 99), max(lags), sends / elapsed)


# -- one store ---------------------------------------------------------------------------------


@contextlib.contextmanager
def quiet(logger: str) -> Iterator[None]:
    """``logger``'s warnings off for the block (create_app warns that auth is off)."""
    log = logging.getLogger(logger)
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        log.setLevel(level)


@dataclass
class Bench:
    """One store's engines, instances, app client and thread pools, for the rounds."""

    aengine: AsyncEngine
    send: ASend
    client: Any  # httpx.AsyncClient on the app
    seq: str  # the instance of the sequential sends
    ids: list[str]  # one instance per concurrent sender
    pool: ThreadPoolExecutor  # as many threads as the AsyncEngine's pool
    per_sender: ThreadPoolExecutor  # a thread per sender

    @property
    def engine(self) -> Engine:
        return self.aengine.engine  # the same engine underneath: the hop is the difference

    async def warm_up(self) -> None:
        """Every path once: connections, the compiled definition, the app's routes."""
        sync_sequential(self.engine, self.seq, 3)
        await async_sequential(self.send, self.seq, 3)
        sync_throughput(self.engine, self.ids, 1, self.pool)
        sync_throughput(self.engine, self.ids, 1, self.per_sender)
        await async_senders(self.send, self.ids, 1)
        await http_senders(self.client, self.ids, 1)

    async def round(self, res: StoreResult, sizes: Sizes) -> None:
        """One round of every measure, in turns; the sync ones run in this loop's thread while
        the loop has nothing else to do."""
        engine, send, ids = self.engine, self.send, self.ids
        n, per = sizes.sequential, sizes.per_sender
        seconds = {
            "sync_seq": sync_sequential(engine, self.seq, n),
            "async_seq": await async_sequential(send, self.seq, n),
        }
        parts = await hop_parts(self.aengine, self.seq, n)
        seconds.update(zip(("there", "in_pool", "back"), parts, strict=True))
        rates = {
            "sync_pool": sync_throughput(engine, ids, per, self.pool),
            "sync_threads": sync_throughput(engine, ids, per, self.per_sender),
            "async": await async_throughput(send, ids, per),
        }
        for key, value in seconds.items():
            res.seconds.setdefault(key, []).append(value)
        for key, value in rates.items():
            res.rates.setdefault(key, []).append(value)
        loads: dict[str, Callable[[], Awaitable[int]]] = {
            "idle": lambda: idle(sizes.idle),
            "async": lambda: async_senders(send, ids, per),
            "http": lambda: http_senders(self.client, ids, per),
            "blocking": lambda: blocking_senders(engine, ids, per),
        }
        for key, load in loads.items():
            res.lags[key].append(await lag_under(load()))


async def bench_store(name: str, url: str, sizes: Sizes, threads: int) -> StoreResult:
    """Every measure on the store at ``url``, ``sizes.rounds`` times."""
    import httpx

    from gorch.http import create_app

    store = SQLStore(url, pool_size=SENDERS + 4)
    res = StoreResult(name, {}, {}, {k: [] for k in LAG_LOADS})
    pool = ThreadPoolExecutor(threads, thread_name_prefix="bench-pool")
    per_sender = ThreadPoolExecutor(SENDERS, thread_name_prefix="bench-sender")
    async with AsyncEngine(store, {WORKFLOW: Counter}, threads=threads) as aengine:
        engine = aengine.engine
        seq = engine.start(WORKFLOW, Counter(), id="sequential").id
        ids = [engine.start(WORKFLOW, Counter(), id=f"sender-{k}").id for k in range(SENDERS)]
        with quiet("gorch.http"):
            app = create_app(aengine, title="bench")
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            send: ASend = cast(Sender, aengine).send
            bench = Bench(aengine, send, client, seq, ids, pool, per_sender)
            await bench.warm_up()
            for _ in range(sizes.rounds):
                await bench.round(res, sizes)
    pool.shutdown()
    per_sender.shutdown()
    store.close()
    return res


# -- printing ----------------------------------------------------------------------------------


def med(xs: list[float]) -> float:
    return statistics.median(xs)


def print_sends(results: list[StoreResult], threads: int) -> None:
    print("1. send: an On handler, a Step and their checkpoints per call")
    print(
        f"   {'sequential, µs per send':<24} {'Engine':>7} {'AsyncEngine':>12} {'async/sync':>11}"
        f" {'added':>7} | of which: {'to thread':>9} {'send there':>11} {'back':>6}"
    )
    for r in results:
        us = {k: med(v) * 1e6 for k, v in r.seconds.items()}
        sync, asyn = us["sync_seq"], us["async_seq"]
        print(
            f"   {r.name:<24} {sync:7.0f} {asyn:12.0f} {asyn / sync:10.2f}x {asyn - sync:+7.0f} |"
            f" {'':9} {us['there']:9.0f} {us['in_pool']:11.0f} {us['back']:6.0f}"
        )
    print(
        f"\n   {f'{SENDERS} senders, sends/s':<24} {f'Engine, {threads} th':>13}"
        f" {f'Engine, {SENDERS} th':>13} {f'AsyncEngine, {threads} th':>18}"
        f" {f'async/sync {threads}':>14} {f'async/sync {SENDERS}':>14}"
    )
    for r in results:
        rate = {k: med(v) for k, v in r.rates.items()}
        pool, own, asyn = rate["sync_pool"], rate["sync_threads"], rate["async"]
        print(
            f"   {r.name:<24} {pool:13.0f} {own:13.0f} {asyn:18.0f}"
            f" {asyn / pool:13.2f}x {asyn / own:13.2f}x"
        )
    print(
        f"   (medians; each sender on its own instance; AsyncEngine: {SENDERS} coroutines in"
        f" asyncio.gather,\n    its pool {threads} threads; Engine: a thread pool of {threads}"
        f" or {SENDERS} threads, each instance's\n    next send submitted when its last one"
        f" returns; of which: each part's own median)"
    )


def print_lags(results: list[StoreResult]) -> None:
    print(f"\n2. event loop lag: a ticker sleeps {TICK * 1e3:.0f} ms and records how late it wakes")
    print(f"   {'':<12} {'load':<44} {'sends/s':>8} {'median':>8} {'p99':>8} {'max':>8}")
    for r in results:
        for key, label in LAG_LOADS.items():
            lags = r.lags[key]
            rate = med([x.sends_per_s for x in lags])
            shown = f"{rate:8.0f}" if rate else f"{'-':>8}"
            figures = [med([getattr(x, f) for x in lags]) * 1e3 for f in ("median", "p99", "max")]
            ms = " ".join(f"{v:8.2f}" for v in figures)
            print(f"   {r.name:<12} {label:<44} {shown} {ms}")
    print("   (ms; medians over the rounds of each round's median, p99 and max)")


# -- main --------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="few rounds and sends (a smoke run)")
    args = ap.parse_args(argv)
    from gorch.testing.postgres import TempPostgres

    sizes = QUICK if args.quick else FULL
    threads = min(32, (os.cpu_count() or 1) + 4)  # the size of AsyncEngine's default pool
    started = time.monotonic()
    print(
        f"gorch AsyncEngine vs Engine (python {sys.version.split()[0]}, {os.cpu_count()} cores; "
        f"medians of {sizes.rounds} rounds)\n"
    )
    results = []
    with TempPostgres() as pg, sqlite_url("FULL") as sqlite:
        for name, url in (("SQLite file", sqlite), ("PostgreSQL", pg.url)):
            results.append(asyncio.run(bench_store(name, url, sizes, threads)))
    print_sends(results, threads)
    print_lags(results)
    print(f"(took {time.monotonic() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
