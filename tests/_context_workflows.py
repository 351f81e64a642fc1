"""Workflows for ``tests/test_context.py``, importable by its child processes.

Every context a workflow's user code sees is appended to :data:`SEEN` (in this process) and, if
the data names a file, written as a JSON line to it (for child processes: one ``write`` on an
``O_APPEND`` descriptor, so a SIGKILL after it cannot lose the line).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from dataclasses import dataclass
from typing import Any

from gorch import (
    Engine,
    For,
    Go,
    Handler,
    On,
    S,
    Step,
    Wait,
    WaitFor,
    Worker,
    context,
)
from gorch.retry import RetryPolicy

SEEN: list[dict[str, Any]] = []
FAST = RetryPolicy(max_attempts=3, initial=0.001, max_interval=0.001, jitter=0)


def record(role: str, path: str = "") -> dict[str, Any]:
    """What :func:`gorch.context` says now, as a dict, kept in :data:`SEEN` (and in ``path``)."""
    ctx = context()
    seen = {
        "role": role,
        "instance_id": ctx.instance_id,
        "workflow": ctx.workflow,
        "thread": ctx.thread,
        "statement": ctx.statement,
        "attempt": ctx.attempt,
        "started_at": ctx.started_at.isoformat(),
        "key": ctx.idempotency_key,
        "services": sorted(ctx.services),
    }
    SEEN.append(seen)
    if path:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, (json.dumps(seen) + "\n").encode())
        finally:
            os.close(fd)
    return seen


class Booking(Handler):
    """A Handler whose every method records its context."""

    def setup(self, req: Any) -> str:
        record("setup")
        return "booked"

    def handle(self, req: Any, input: Any) -> Any:
        record("handle")
        return input

    def teardown(self, req: Any, handled: bool) -> None:
        record("teardown")


@dataclass
class Everywhere:
    """User code of every kind, sync and async, each recording its context."""

    ready: bool = False

    def definition(self) -> Any:
        return S(
            Step("sync step", self.sync_step),
            Step("async step", self.async_step),
            Go("side", Step("side step", self.sync_step), id="side-1"),
            Wait(
                "ask",
                On("plain", self.plain),
                On("async plain", self.async_plain),
                On("booking", Booking(), Step("booked", self.booked)),
            ),
            WaitFor("ready", self.ready, self.passed),
        )

    def sync_step(self) -> None:
        record("step")

    async def async_step(self) -> None:
        await asyncio.sleep(0)
        record("async step")

    def plain(self, n: int) -> int:
        record("handler")
        self.ready = True
        return n

    async def async_plain(self, n: int) -> int:
        await asyncio.sleep(0)
        record("async handler")
        self.ready = True
        return n

    def booked(self) -> None:
        self.ready = True

    def passed(self) -> None:
        record("condition")


@dataclass
class Turns:
    """A loop whose step fails on the first attempt of every turn (the first time its key is
    seen: a failed attempt's changes to the data are not kept): the key must be the same on
    the retry and new on the next turn."""

    turn: int = 0

    def definition(self) -> Any:
        return S(
            For("turns", self.turn < 3, Step("charge", self.charge, retry=FAST)),
        )

    def charge(self) -> None:
        key = record("step")["key"]
        if sum(s["key"] == key for s in SEEN) == 1:
            raise RuntimeError("the bank is down")
        self.turn += 1


@dataclass
class Charge:
    """One step that records its context to ``path`` and then sleeps (a child is SIGKILLed in
    it) unless this process may finish it."""

    path: str = ""

    def definition(self) -> Any:
        return S(Step("charge", self.charge))

    def charge(self) -> None:
        record("step", self.path)
        if os.environ.get("GORCH_TEST_HANG") == "1":
            time.sleep(120)


WORKFLOWS: dict[str, type] = {"everywhere": Everywhere, "turns": Turns, "charge": Charge}


def child_main(argv: list[str]) -> int:
    """A child process: run a worker on the database ``argv[0]`` until it has done one run."""
    from gorch.store import SQLStore

    store = SQLStore(argv[0])
    engine = Engine(store, WORKFLOWS, lease=1.0, services={"bank": object()})
    Worker(engine).run_once()
    store.close()
    return 0


if __name__ == "__main__":
    sys.exit(child_main(sys.argv[1:]))
