"""``AsyncEngine``: every :class:`~gorch.engine.Engine` call as a coroutine, for asyncio
applications (FastAPI, aiohttp) — one engine underneath, not a second implementation.

A call's work (the database, sync user code) runs on the engine's own pool of threads, so the
event loop never waits for it; the call's coroutine waits for the result. The thread's context
carries the calling loop (:data:`~gorch.interpreter._context.HOME`), so ``async def`` user code
runs *on that loop*, where the application's async clients live; sync user code runs in the
pool's thread. Everything else is the :class:`Engine`'s: the same commits, leases and history,
so ``AsyncEngine``, ``Engine`` and ``Worker`` processes share one store and its tables.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import os
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, TypeVar

from gorch.engine._engine import Engine
from gorch.engine._worker import Worker
from gorch.interpreter._context import HOME
from gorch.store.base import Store

T = TypeVar("T")

METHODS: tuple[str, ...] = tuple(
    name for name, fn in inspect.getmembers(Engine, inspect.isfunction) if not name.startswith("_")
)
"""The public methods of :class:`Engine`, each an ``async def`` of :class:`AsyncEngine`."""


class AsyncEngine:
    """An :class:`Engine` whose every method is a coroutine that never blocks the event loop.

    Args:
        store, workflows, and every keyword of :class:`Engine` (``services=``, ``lease=``, ...).
        threads: the size of the pool that does the calls' work (default: the store's
            connection pool allows as many at once; ``min(32, cpus + 4)``).

    Attributes:
        engine: the :class:`Engine` underneath (for sync code sharing it, and a ``Worker``).

    Example::

        aengine = AsyncEngine(SQLStore("sqlite:///shop.db"), {"pizza": PizzaOrder})
        inst = await aengine.start("pizza", PizzaOrder(), id="order-1")
        await aengine.send("order-1", "AddToCart", {"name": "margherita", "qty": 2})
    """

    def __init__(
        self,
        store: Store,
        workflows: Mapping[str, type],
        *,
        threads: int | None = None,
        **options: Any,
    ) -> None:
        if threads is not None and (not isinstance(threads, int) or threads < 1):
            raise ValueError(f"threads must be a whole number of at least 1, got {threads!r}")
        self.engine = Engine(store, workflows, **options)
        size = threads or min(32, (os.cpu_count() or 1) + 4)
        self._pool = ThreadPoolExecutor(size, thread_name_prefix="gorch-async")

    def __repr__(self) -> str:
        return f"AsyncEngine({self.engine.store!r}, {sorted(self.engine.workflows)})"

    if TYPE_CHECKING:  # the methods are made below, one per Engine method: tell type checkers

        def __getattr__(self, name: str) -> Callable[..., Awaitable[Any]]: ...

    @property
    def store(self) -> Store:
        return self.engine.store

    @property
    def workflows(self) -> dict[str, type]:
        return self.engine.workflows

    async def run(self, fn: Callable[..., T], *args: Any, **kw: Any) -> T:
        """``fn(*args, **kw)`` on the pool, with this loop as the home of async user code: how
        every method below runs (and how to run other blocking gorch work, a ``Worker``'s
        ``run_once`` say, from async code)."""
        loop = asyncio.get_running_loop()
        ctx = contextvars.copy_context()
        ctx.run(HOME.set, loop)
        call = functools.partial(ctx.run, fn, *args, **kw)
        return await loop.run_in_executor(self._pool, call)

    def worker(self, **options: Any) -> AsyncWorker:
        """An :class:`AsyncWorker` on this engine (``options``: those of :class:`Worker`)."""
        return AsyncWorker(self, **options)

    def close(self) -> None:
        """Stop the pool's threads (waiting for the calls in flight); the store stays open."""
        self._pool.shutdown(wait=True)

    async def __aenter__(self) -> AsyncEngine:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.get_running_loop().run_in_executor(None, self.close)


def _coroutine(name: str) -> Callable[..., Any]:
    method = getattr(Engine, name)

    @functools.wraps(method)
    async def call(self: AsyncEngine, *args: Any, **kw: Any) -> Any:
        return await self.run(getattr(self.engine, name), *args, **kw)

    call.__doc__ = f"``await`` :meth:`Engine.{name}` (see there)."
    return call


for _name in METHODS:
    setattr(AsyncEngine, _name, _coroutine(_name))


class AsyncWorker:
    """A :class:`Worker` for asyncio: the same claims, runs, backoff and health, done on the
    engine's pool while the loop stays free; ``async def`` user code runs on the loop.

    ``await worker.run_once()`` does one round (as :meth:`Worker.run_once`); ``await
    worker.run()`` works until :meth:`stop` (it holds one thread of the pool meanwhile). Async
    and sync workers, in any number of processes, share one database.
    """

    def __init__(self, engine: AsyncEngine, **options: Any) -> None:
        self.aengine = engine
        self.worker = Worker(engine.engine, **options)

    async def run_once(self) -> int:
        return await self.aengine.run(self.worker.run_once)

    async def run(self) -> None:
        await self.aengine.run(self.worker.run, handle_signals=False)

    def stop(self) -> None:
        """Ask :meth:`run` to return once the item in hand is done."""
        self.worker.stop()

    def health(self) -> Any:
        return self.worker.health()
