"""The :class:`~gorch.AsyncEngine`, driven from synchronous test code, so that the engine tests
run unchanged against it: each public ``Engine`` method is awaited on an event loop running in
a thread of its own (as an asyncio application's loop would be); everything else (the store,
the settings, what a ``Worker`` reads) is the engine's underneath."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

from gorch import AsyncEngine
from gorch.engine._async import METHODS


class AsyncFace:
    """Looks like an ``Engine``; every public call goes through ``AsyncEngine``'s coroutine."""

    def __init__(self, aengine: AsyncEngine) -> None:
        object.__setattr__(self, "aengine", aengine)
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name="test-loop", daemon=True)
        thread.start()
        object.__setattr__(self, "loop", loop)
        object.__setattr__(self, "thread", thread)

    def __getattr__(self, name: str) -> Any:
        if name in METHODS:
            return self._awaited(name)
        return getattr(self.aengine.engine, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self.aengine.engine, name, value)

    def _awaited(self, name: str) -> Callable[..., Any]:
        def call(*args: Any, **kw: Any) -> Any:
            coro = getattr(self.aengine, name)(*args, **kw)
            return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

        return call

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()
        self.aengine.close()
