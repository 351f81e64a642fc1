"""The change feed and ``Engine.wait`` at the engine (docs/together.md): what enters the feed
and what does not, the cursor, the long poll, waits woken by the commit, and a feed that
loses nothing and repeats nothing when its writer is SIGKILLed.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from _subprocess import child_env

from gorch import Engine, InputError, NotFoundError, On, RunStatus, S, Step, Wait, WaitTimeout
from gorch.store import Store

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Ticket:
    """Two waits with three steps between them."""

    steps: int = 0

    def definition(self) -> Any:
        return S(
            Wait("open", On("take")),
            Step("one", self.step),
            Step("two", self.step),
            Step("three", self.step),
            Wait("taken", On("close")),
        )

    def step(self) -> None:
        self.steps += 1


WORKFLOWS: dict[str, type] = {"ticket": Ticket}


@pytest.fixture
def eng(store: Store) -> Iterator[Engine]:
    yield Engine(store, WORKFLOWS)


def feed(engine: Engine) -> list[tuple[int, str, str, tuple[str, ...]]]:
    return [(c.seq, c.instance, c.status.value, c.at_statements) for c in engine.changes().items]


def test_the_feed_has_each_change_of_status_or_wait_and_nothing_for_steps(eng: Engine) -> None:
    eng.start("ticket", Ticket(), id="t")
    eng.send("t", "take")  # three steps, each with its checkpoint, then the next wait
    eng.send("t", "close")
    assert feed(eng) == [
        (1, "t", "waiting", ("open",)),
        (2, "t", "running", ()),  # the event's commit: it runs its steps
        (3, "t", "waiting", ("taken",)),
        (4, "t", "finished", ()),
    ]
    assert eng.get("t").data.steps == 3


def test_the_cursor_pages_and_a_long_poll_waits_for_the_next(eng: Engine) -> None:
    for i in range(5):
        eng.start("ticket", Ticket(), id=f"t{i}")
    first = eng.changes(limit=2)
    assert [c.seq for c in first] == [1, 2] and first.next == 2
    rest = eng.changes(after=first.next)
    assert [c.instance for c in rest] == ["t2", "t3", "t4"] and rest.next == 5
    assert eng.changes(after=rest.next).items == [] and eng.changes(after=5).next == 5
    threading.Timer(0.2, lambda: eng.send("t0", "take")).start()
    t0 = time.monotonic()
    polled = eng.changes(after=5, wait=30)
    # woken by the event's commit (t0 running); the next wait's commit may already be there too
    assert polled.items[0].seq == 6 and {c.instance for c in polled} == {"t0"}
    assert [c.status for c in polled] == [RunStatus.RUNNING, RunStatus.WAITING][: len(polled.items)]
    assert time.monotonic() - t0 < 10  # woken by the commit, long before its 30 s


@pytest.mark.parametrize("bad", [{"after": -1}, {"after": "x"}, {"limit": 0}, {"wait": -1}])
def test_bad_feed_arguments_are_refused(eng: Engine, bad: dict[str, Any]) -> None:
    with pytest.raises(InputError):
        eng.changes(**bad)


def test_wait_returns_soon_after_the_commit_that_satisfies_it(eng: Engine) -> None:
    eng.start("ticket", Ticket(), id="w")
    sending: list[float] = []

    def later() -> None:
        time.sleep(0.2)
        sending.append(time.monotonic())
        eng.send("w", "take")

    threading.Thread(target=later).start()
    inst = eng.wait("w", until="taken", timeout=10)
    returned = time.monotonic()
    assert inst.at_statements == ("taken",) and inst.data.steps == 3
    assert returned - sending[0] < 0.5
    assert eng.wait("w", until={RunStatus.WAITING, RunStatus.PAUSED}, timeout=0).id == "w"


def test_a_wait_that_times_out_changes_nothing_and_says_where_it_stands(eng: Engine) -> None:
    eng.start("ticket", Ticket(), id="w")
    before = eng.get("w").version
    t0 = time.monotonic()
    with pytest.raises(WaitTimeout) as err:
        eng.wait("w", timeout=0.3)
    assert 0.3 <= time.monotonic() - t0 < 2
    assert err.value.status == "waiting" and err.value.at_statements == ("open",)
    assert "at 'open'" in str(err.value)
    assert eng.get("w").version == before


@pytest.mark.parametrize("until", [3, {"finished"}, "", [RunStatus.FINISHED, "x"]])
def test_a_bad_until_is_refused(eng: Engine, until: Any) -> None:
    eng.start("ticket", Ticket(), id="w")
    with pytest.raises(InputError, match="until"):
        eng.wait("w", until=until, timeout=0)


def test_waiting_for_an_unknown_instance_is_refused(eng: Engine) -> None:
    with pytest.raises(NotFoundError):
        eng.wait("nobody", timeout=0)


_WRITER = """
import sys
from test_feed import WORKFLOWS, Ticket
from gorch import Engine
from gorch.store import SQLStore
engine = Engine(SQLStore(sys.argv[1]), WORKFLOWS)
i = 0
while True:
    engine.start("ticket", Ticket(), id=f"k{i}")
    engine.send(f"k{i}", "take")
    i += 1
"""


@pytest.mark.parametrize("store_kind", ["sqlite", "postgres"])
def test_a_sigkilled_writer_leaves_a_feed_without_gaps_losses_or_repeats(
    store: Store, sql_url: str
) -> None:
    env = child_env()
    proc = subprocess.Popen([sys.executable, "-c", _WRITER, sql_url], env=env)
    engine = Engine(store, WORKFLOWS)
    seen: list[Any] = []  # followed with a cursor while it writes, then after it died
    deadline = time.monotonic() + 60
    while store.last_change() < 40 and time.monotonic() < deadline:
        seen += engine.changes(after=seen[-1].seq if seen else 0, wait=0.2).items
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    while page := engine.changes(after=seen[-1].seq if seen else 0).items:
        seen += page
    assert [c.seq for c in seen] == list(range(1, len(seen) + 1))  # no gap, no repeat
    last: dict[str, tuple[str, tuple[str, ...]]] = {}
    for c in seen:
        last[c.instance] = (c.status.value, c.at_statements)
    rows = store.list_instances(limit=1000)
    assert len(rows) == len(last)
    for row in rows:  # every committed status is the instance's last entry: none was lost
        assert last[row.id] == (row.status, row.at_statements), row.id
