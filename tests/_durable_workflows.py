"""Workflows and child-process roles for ``tests/test_durability.py``.

Child processes import this module (``PYTHONPATH`` holds ``tests/`` and the repository root) and
call :func:`child_main` with one JSON argument naming a role. Every side effect a test checks is
a line appended to a file with ``O_APPEND`` (one ``write`` per line, so lines of concurrent
writers never interleave, and a SIGKILL after the write cannot lose it): the file's path travels
in the workflow's own data, so every process that runs a step knows where to write.

Environment knobs read by steps (set only in a child's environment):

- ``GORCH_TEST_BLOCK=<step>``: after writing its marker line, that step sleeps for two minutes
  (the test kills the process meanwhile).
- ``GORCH_TEST_FAIL=<step>``: after writing its marker line, that step raises.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gorch import Engine, For, Go, GorchError, On, S, Section, Step, Timeout, Wait, Worker
from gorch.retry import RetryPolicy

BLOCK_ENV = "GORCH_TEST_BLOCK"
FAIL_ENV = "GORCH_TEST_FAIL"


def append_line(path: str | Path, text: str) -> None:
    """Append one line with a single ``write`` on an ``O_APPEND`` descriptor."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (text + "\n").encode())
    finally:
        os.close(fd)


def read_lines(path: str | Path) -> list[str]:
    """The lines of ``path`` (none if it does not exist yet)."""
    try:
        return Path(path).read_text().splitlines()
    except FileNotFoundError:
        return []


def wait_file(path: str | Path, timeout: float) -> None:
    """Wait until ``path`` exists (a start barrier between processes)."""
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} did not appear within {timeout} s")
        time.sleep(0.005)


def _effects(step: str) -> None:
    """Block or fail as the environment asks (only child processes set these)."""
    if os.environ.get(FAIL_ENV) == step:
        raise RuntimeError(f"{step} fails on purpose ({FAIL_ENV})")
    if os.environ.get(BLOCK_ENV) == step:
        time.sleep(120)


# --------------------------------------------------------------------------------------------
# A counter: every "add" event appends its payload and adds it to a total; a step per event
# counts them (so every send takes a lease, runs user code and checkpoints).


@dataclass
class Counter:
    values: list[int] = field(default_factory=list)
    total: int = 0
    steps: int = 0
    nap: float = 0.001

    def definition(self) -> Section:
        return S(
            For(
                "forever",
                True,
                Wait("for add", On("add", self.add)),
                Step("count", self.count),
            )
        )

    def add(self, value: int) -> int:
        self.values.append(value)
        self.total += value
        return self.total

    def count(self) -> None:
        time.sleep(self.nap)
        self.steps += 1


@dataclass
class Tally:
    """A counter without a step: a send is one read and one commit, with no lease."""

    values: list[int] = field(default_factory=list)
    total: int = 0
    steps: int = 0

    def definition(self) -> Section:
        return S(For("forever", True, Wait("for add", On("add", self.add))))

    def add(self, value: int) -> int:
        self.values.append(value)
        self.total += value
        return self.total


# --------------------------------------------------------------------------------------------
# Three steps that log when they ran, where, and for how long.


@dataclass
class Steps:
    name: str = ""
    log: str = ""
    nap: float = 0.005

    def definition(self) -> Section:
        return S(Step("s1", self.s1), Step("s2", self.s2), Step("s3", self.s3))

    def _work(self, step: str) -> None:
        start = time.time()
        time.sleep(self.nap)
        end = time.time()
        who = f"{os.getpid()}:{threading.current_thread().name}"
        append_line(self.log, json.dumps([self.name, step, start, end, who]))

    def s1(self) -> None:
        self._work("s1")

    def s2(self) -> None:
        self._work("s2")

    def s3(self) -> None:
        self._work("s3")


# --------------------------------------------------------------------------------------------
# An order: a step, three items collected by events, then two steps.


@dataclass
class Order:
    name: str = ""
    log: str = ""
    items: list[int] = field(default_factory=list)

    def definition(self) -> Section:
        return S(
            Step("prepare", self.prepare),
            For("collect", len(self.items) < 3, Wait("for item", On("add", self.add))),
            Step("charge", self.charge),
            Step("ship", self.ship),
        )

    def _mark(self, step: str) -> None:
        append_line(self.log, f"{self.name} {step} {os.getpid()}")
        _effects(step)

    def add(self, item: int) -> int:
        self.items.append(item)
        return len(self.items)

    def prepare(self) -> None:
        self._mark("prepare")

    def charge(self) -> None:
        self._mark("charge")

    def ship(self) -> None:
        self._mark("ship")


# --------------------------------------------------------------------------------------------
# An alarm: a timer, then a slowish step.


@dataclass
class Alarm:
    name: str = ""
    log: str = ""
    after: float = 1.0
    nap: float = 0.1

    def definition(self) -> Section:
        return S(Wait("for alarm", Timeout("alarm", self.after, Step("ring", self.ring))))

    def ring(self) -> None:
        append_line(self.log, f"{self.name} ring {os.getpid()}")
        time.sleep(self.nap)


# --------------------------------------------------------------------------------------------
# Two threads: a parallel thread runs a slow step while the main thread waits for "ping".


@dataclass
class Parallel:
    log: str = ""
    nap: float = 0.3

    def definition(self) -> Section:
        return S(
            Go("background", Step("slow", self.slow)),
            Wait("for ping", On("ping")),
            Step("pinged", self.pinged),
            Wait("for end", On("end")),
        )

    def slow(self) -> None:
        append_line(self.log, f"slow start {threading.current_thread().name}")
        time.sleep(self.nap)
        append_line(self.log, f"slow end {threading.current_thread().name}")

    def pinged(self) -> None:
        append_line(self.log, f"pinged {threading.current_thread().name}")


# --------------------------------------------------------------------------------------------
# One wait, many contenders: "pick" events and a timer race for it.


@dataclass
class Choice:
    picked: str = ""
    decisions: int = 0
    after: float = 0.05

    def definition(self) -> Section:
        return S(
            Wait(
                "choose",
                Timeout("too late", self.after, Step("expire", self.expire)),
                On("pick", self.pick),
            ),
            Step("settle", self.settle),
            Wait("for end", On("end")),
        )

    def pick(self, who: str) -> str:
        self.picked = who
        self.decisions += 1
        return who

    def expire(self) -> None:
        self.picked = "timeout"
        self.decisions += 1

    def settle(self) -> None:
        time.sleep(0.002)


WORKFLOWS: dict[str, type] = {
    "choice": Choice,
    "counter": Counter,
    "tally": Tally,
    "steps": Steps,
    "order": Order,
    "alarm": Alarm,
    "parallel": Parallel,
}

FAST_RETRY = RetryPolicy(max_attempts=5, initial=0.05, jitter=0)
"""Retries after 50 ms, 100 ms, ...: failed steps come back quickly in tests."""


# --------------------------------------------------------------------------------------------
# Child processes.


def killing_store(url: str, step: str, when: str) -> Any:
    """A SQLStore that SIGKILLs its own process at the checkpoint of ``step``: just ``before``
    the commit that records it (the step ran, its checkpoint never commits) or just ``after``
    it (the checkpoint committed, nothing after it happened). A ``KILL`` line is logged first,
    to the file named by the instance's data (``log``)."""
    from gorch.store.sql import SQLStore

    class KillingStore(SQLStore):
        def commit(self, write: Any) -> int:
            hit = any(h.kind == "step" and h.name == step for h in write.history)
            if hit and when == "before":
                self._die(write)
            version = int(super().commit(write))
            if hit and when == "after":
                self._die(write)
            return version

        def _die(self, write: Any) -> None:
            log = json.loads(write.instance.data)["log"]
            append_line(log, f"KILL {when} {step} {os.getpid()}")
            os.kill(os.getpid(), signal.SIGKILL)
            time.sleep(60)  # pragma: no cover - the signal arrives first

    return KillingStore(url)


def _send_many(cfg: dict[str, Any], store: Any) -> int:
    """Send ``payloads`` (each with its key ``k<payload>``) to each of ``instances``; write
    every outcome as a JSON line ``[instance, payload, outcome, output or message]`` to
    ``out``."""
    engine = Engine(store, WORKFLOWS, busy_wait=cfg.get("busy_wait", 30))
    Path(cfg["ready"]).touch()
    wait_file(cfg["go"], 30)
    lines = []
    for p in cfg["payloads"]:
        for id in cfg["instances"]:
            try:
                out = engine.send(id, "add", p, key=f"k{p}")
                lines.append(json.dumps([id, p, "ok", out]))
            except GorchError as exc:
                lines.append(json.dumps([id, p, type(exc).__name__, str(exc)]))
            except Exception as exc:  # a non-GorchError is a bug: report it
                lines.append(json.dumps([id, p, "OTHER " + type(exc).__name__, repr(exc)]))
    Path(cfg["out"]).write_text("\n".join(lines) + "\n")
    return 0


def _work(cfg: dict[str, Any], store: Any) -> int:
    """Run a worker: ``once`` (run_once, then exit) or ``forever`` (until killed)."""
    engine = Engine(store, WORKFLOWS, lease=cfg.get("lease", 60), retry=FAST_RETRY)
    worker = Worker(engine, batch=cfg.get("batch", 16), poll=cfg.get("poll", 0.05))
    if "ready" in cfg:
        Path(cfg["ready"]).touch()
        wait_file(cfg["go"], 30)
    if cfg["mode"] == "once":
        worker.run_once()
    else:
        worker.run()
    return 0


def _send_one(cfg: dict[str, Any], store: Any) -> int:
    """Send one event (the test kills this process while it runs a step)."""
    engine = Engine(store, WORKFLOWS, lease=cfg.get("lease", 60), retry=FAST_RETRY)
    out = engine.send(cfg["instance"], cfg["event"], cfg["payload"], key=cfg.get("key"))
    print(json.dumps(out))
    return 0


def child_main(argv: list[str]) -> int:
    """Entry point of a child process: ``argv[0]`` is a JSON object with ``role`` and ``url``
    (and, for fault injection, ``kill_step`` and ``kill_when``)."""
    cfg = json.loads(argv[0])
    if cfg.get("kill_step"):
        store = killing_store(cfg["url"], cfg["kill_step"], cfg["kill_when"])
    else:
        from gorch.store.sql import SQLStore

        store = SQLStore(cfg["url"])
    roles = {"send_many": _send_many, "work": _work, "send_one": _send_one}
    try:
        return roles[cfg["role"]](cfg, store)
    finally:
        store.close()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(child_main(sys.argv[1:]))
