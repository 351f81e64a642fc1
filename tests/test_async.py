"""``AsyncEngine`` and ``AsyncWorker``: every Engine call as a coroutine that keeps the event
loop free, ``async def`` user code on the caller's loop, an HTTP app served on it, and async
and sync workers sharing one database (docs/steps.md, "async def code"). The engine tests
themselves run under ``AsyncEngine`` too (the ``engine`` fixture of tests/conftest.py)."""

from __future__ import annotations

import asyncio
import inspect
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from gorch import AsyncEngine, Engine, On, RunStatus, S, Step, Wait, Worker, context
from gorch.engine._async import METHODS
from gorch.http import create_app
from gorch.store import SQLStore, Store

LOOPS: dict[str, Any] = {}


@dataclass
class Mixed:
    """A sync step, an async step and an async event handler, each noting where it ran."""

    where: dict[str, str] = field(default_factory=dict)

    def definition(self) -> Any:
        return S(
            Step("sync", self.sync),
            Step("async", self.async_),
            Wait("ask", On("go", self.go)),
        )

    def _here(self, name: str) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        on = "app loop" if loop is LOOPS.get("app") else "other loop" if loop else "no loop"
        self.where[name] = f"{on} in {threading.current_thread().name.split('_')[0]}"

    def sync(self) -> None:
        self._here("sync")

    async def async_(self) -> None:
        await asyncio.sleep(0)
        self._here("async")

    async def go(self, n: int) -> int:
        self._here("go")
        return n * 2


@dataclass
class Slow:
    """One step that notes which engine's worker ran it (its ``services``) to a file."""

    path: str = ""

    def definition(self) -> Any:
        return S(Step("work", self.work))

    def work(self) -> None:
        time.sleep(0.01)
        with open(self.path, "a") as f:
            f.write(f"{context().instance_id} {context().services['who']}\n")


WORKFLOWS: dict[str, type] = {"mixed": Mixed, "slow": Slow}


class Watched:
    """A store whose commits note the thread they ran in."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.threads: set[int] = set()
        real = store.commit

        def commit(write: Any) -> int:
            self.threads.add(threading.get_ident())
            return real(write)

        store.commit = commit  # type: ignore[method-assign]


@pytest.fixture
def sqlite(tmp_path: Path) -> Iterator[SQLStore]:
    store = SQLStore(f"sqlite:///{tmp_path / 'gorch.db'}")
    yield store
    store.close()


def test_every_engine_method_is_a_coroutine_with_its_signature() -> None:
    public = {n for n, f in inspect.getmembers(Engine, inspect.isfunction) if n[0] != "_"}
    assert set(METHODS) == public and {"start", "send", "get", "goto"} <= public
    for name in METHODS:
        method = getattr(AsyncEngine, name)
        assert inspect.iscoroutinefunction(method), name
        assert inspect.signature(method) == inspect.signature(getattr(Engine, name)), name


def test_calls_never_touch_the_database_on_the_loop_and_async_code_runs_on_it(
    sqlite: SQLStore,
) -> None:
    watched = Watched(sqlite)

    async def main() -> tuple[dict[str, str], int, list[Any]]:
        LOOPS["app"] = asyncio.get_running_loop()
        loop_thread = threading.get_ident()
        async with AsyncEngine(sqlite, WORKFLOWS) as aengine:
            await asyncio.gather(*(aengine.start("mixed", Mixed(), id=f"m-{i}") for i in range(20)))
            outs = await asyncio.gather(*(aengine.send(f"m-{i}", "go", i) for i in range(20)))
            inst = await aengine.get("m-3")
        assert loop_thread not in watched.threads
        return inst.data.where, inst.status, outs

    where, status, outs = asyncio.run(main())
    assert status is RunStatus.FINISHED
    assert outs == [i * 2 for i in range(20)]
    assert where["sync"] == "no loop in gorch-async"
    assert where["async"] == "app loop in MainThread"
    assert where["go"] == "app loop in MainThread"


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="threads must be"):
        AsyncEngine(SQLStore("sqlite://"), WORKFLOWS, threads=0)


def test_a_refusal_is_raised_from_the_coroutine(sqlite: SQLStore) -> None:
    from gorch import NotFoundError

    async def main() -> None:
        async with AsyncEngine(sqlite, WORKFLOWS) as aengine:
            with pytest.raises(NotFoundError):
                await aengine.send("nobody", "go", 1)

    asyncio.run(main())


def test_an_http_app_on_an_async_engine_keeps_its_loop_free(sqlite: SQLStore) -> None:
    """Requests in flight at once, through the ASGI app on this loop: the database work never
    runs on the loop's thread, and the loop keeps ticking (its lag is measured; the figure is
    bench.http's to report)."""
    watched = Watched(sqlite)

    async def main() -> float:
        LOOPS["app"] = asyncio.get_running_loop()
        loop_thread = threading.get_ident()
        lags: list[float] = []
        done = asyncio.Event()

        async def tick() -> None:
            while not done.is_set():
                t = time.perf_counter()
                await asyncio.sleep(0.005)
                lags.append(time.perf_counter() - t - 0.005)

        async with AsyncEngine(sqlite, WORKFLOWS) as aengine:
            app = create_app(aengine, title="async shop")
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
                ticker = asyncio.create_task(tick())
                starts = [
                    client.post("/workflows/mixed/instances", json={"id": f"h-{i}", "data": {}})
                    for i in range(30)
                ]
                answers = await asyncio.gather(*starts)
                assert {r.status_code for r in answers} == {201}, answers[0].text
                sends = [client.post(f"/instances/h-{i}/events/go", json=i) for i in range(30)]
                answers = await asyncio.gather(*sends)
                assert [r.json()["output"] for r in answers] == [i * 2 for i in range(30)]
                done.set()
                await ticker
        assert loop_thread not in watched.threads
        return max(lags)

    worst = asyncio.run(main())
    assert worst >= 0  # measured; see bench.http for the figures


@pytest.mark.parametrize("store_kind", ["sqlite", "postgres"])
def test_async_and_sync_workers_share_one_database(sql_url: str, tmp_path: Path) -> None:
    path = str(tmp_path / "ran.txt")
    sync_store, async_store = SQLStore(sql_url), SQLStore(sql_url)
    starter = Engine(sync_store, WORKFLOWS)
    n = 40
    for i in range(n):
        starter.start("slow", Slow(path=path), id=f"s-{i}", defer=True)
    sync_worker = Worker(Engine(sync_store, WORKFLOWS, services={"who": "sync"}), batch=2)

    def ran() -> int:
        return len(Path(path).read_text().splitlines()) if Path(path).exists() else 0

    def run_sync() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and ran() < n:
            if sync_worker.run_once() == 0:
                time.sleep(0.005)

    async def run_async() -> None:
        async with AsyncEngine(async_store, WORKFLOWS, services={"who": "async"}) as aengine:
            worker = aengine.worker(batch=2)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and ran() < n:
                if await worker.run_once() == 0:
                    await asyncio.sleep(0.005)

    thread = threading.Thread(target=run_sync)
    thread.start()
    asyncio.run(run_async())
    thread.join(timeout=60)
    lines = Path(path).read_text().splitlines()
    ids = [line.split()[0] for line in lines]
    assert sorted(ids) == sorted(f"s-{i}" for i in range(n))  # each step ran exactly once
    assert {line.split()[1] for line in lines} == {"sync", "async"}
    assert all(starter.get(f"s-{i}").status is RunStatus.FINISHED for i in range(n))
    sync_store.close()
    async_store.close()
