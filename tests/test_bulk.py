"""Operator actions over a filter (``Engine.bulk``) on every store: the filters, the dry run
that counts what the apply then changes, a failure in the middle reported and not fatal, the
history entries naming the bulk run; and 10,000 instances on SQLite. (SIGKILL in the middle:
tests/test_faults.py; the faces: tests/cli/test_cli_operators.py, tests/test_http.py.)
"""

from __future__ import annotations

import sqlite3
import time
from contextlib import closing
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from _engine_workflows import FAILS, WORKFLOWS, Counter, Flaky, lease, unchanged

from gorch import BulkReport, Engine, InputError, NotFoundError, RunStatus, Worker, clock
from gorch.store import SQLStore, Store

pytestmark = pytest.mark.usefixtures("engine_globals")  # tests/conftest.py


@pytest.fixture
def engine(store: Store, gorch_time: Any) -> Engine:
    return Engine(store, WORKFLOWS, busy_wait=0.0)


def seed(engine: Engine, gorch_time: Any) -> None:
    """c-0..c-5 counters waiting at "for input" (c-0..c-2 written 1 h 50 min ago, the others
    50 min ago), f-0 and f-1 failed flaky instances, and d-0 a finished counter."""
    for i in range(6):
        engine.start("counter", Counter(), id=f"c-{i}")
        if i == 2:
            gorch_time.tick(timedelta(hours=1))
    for i in range(2):
        FAILS[f"f-{i}"] = 100
        engine.start("flaky", Flaky(tag=f"f-{i}"), id=f"f-{i}")
        engine.send(f"f-{i}", "Go")
    worker = Worker(engine)
    for _ in range(5):
        gorch_time.tick(timedelta(minutes=10))
        worker.run_once()
    assert {engine.get(f"f-{i}").status for i in range(2)} == {RunStatus.FAILED}
    engine.start("counter", Counter(), id="d-0")
    engine.send("d-0", "Stop")


def test_a_dry_run_counts_and_lists_a_sample_and_changes_nothing(
    engine: Engine, gorch_time: Any
) -> None:
    seed(engine, gorch_time)
    ids = [f"c-{i}" for i in range(6)] + ["f-0", "f-1", "d-0"]
    with unchanged(engine, *ids):
        dry = engine.bulk("pause", dry_run=True, sample=3)
    assert isinstance(dry, BulkReport) and dry.dry_run
    assert (dry.matched, dry.changed, dry.failed, dry.more) == (8, 0, 0, False)
    assert len(dry.sample) == 3 and str(dry) == "would pause 8 instance(s)"
    assert engine.bulk("pause", workflow="counter", dry_run=True).matched == 6
    assert engine.bulk("retry", dry_run=True).sample == ("f-1", "f-0")
    assert engine.bulk("pause", older_than=timedelta(hours=1), dry_run=True).matched == 3
    assert engine.bulk("cancel", at="for input", dry_run=True).matched == 6
    assert engine.bulk("cancel", at="flaky", dry_run=True).matched == 2  # the failed step
    assert engine.bulk("cancel", at="nowhere", dry_run=True).matched == 0
    assert engine.bulk("cancel", status="failed", dry_run=True).matched == 2
    page = engine.bulk("cancel", limit=4, dry_run=True)
    assert (page.matched, page.more) == (4, True)


def test_the_apply_changes_what_the_dry_run_counted_each_with_its_entry(
    engine: Engine, gorch_time: Any
) -> None:
    seed(engine, gorch_time)
    dry = engine.bulk("pause", workflow="counter", dry_run=True)
    seen: list[int] = []
    done = engine.bulk("pause", workflow="counter", actor="ana", reason="incident 7",
                       progress=seen.append)  # fmt: skip
    assert (done.matched, done.changed, done.failed, done.ok) == (dry.matched, 6, 0, True)
    assert seen == [1, 2, 3, 4, 5, 6]
    assert str(done) == "pause: 6 of 6 changed, 0 failed"
    for i in range(6):
        assert engine.get(f"c-{i}").status is RunStatus.PAUSED
        entry = engine.history(f"c-{i}", newest_first=True, limit=1)[0]
        assert (entry.kind, entry.actor) == ("paused", "ana")
        assert entry.reason == f"[bulk pause {done.run}] incident 7"
    assert engine.get("d-0").status is RunStatus.FINISHED  # finished: never matched
    assert engine.bulk("pause", workflow="counter", dry_run=True).matched == 0  # paused now
    back = engine.bulk("unpause")
    assert (back.changed, back.failed) == (6, 0)
    entry = engine.history("c-0", newest_first=True, limit=1)[0]
    assert (entry.kind, entry.actor, entry.reason) == (
        "unpaused",
        None,
        f"[bulk unpause {back.run}]",
    )


def test_bulk_retry_and_goto(engine: Engine, gorch_time: Any) -> None:
    seed(engine, gorch_time)
    FAILS.clear()
    retried = engine.bulk("retry", workflow="flaky")
    assert (retried.changed, retried.failed) == (2, 0)
    assert {engine.get(f"f-{i}").status for i in range(2)} == {RunStatus.WAITING}
    moved = engine.bulk("goto", workflow="counter", older_than=timedelta(hours=1),
                        to="wrap up")  # fmt: skip
    assert (moved.matched, moved.changed) == (3, 3)
    assert engine.get("c-0").status is RunStatus.FINISHED and engine.get("c-0").data.wrapped
    assert engine.get("c-5").status is RunStatus.WAITING  # written later: not old enough


def test_a_failure_in_the_middle_is_reported_and_the_others_go_on(
    engine: Engine, gorch_time: Any
) -> None:
    seed(engine, gorch_time)
    lease(engine.store, "c-3", "another-process", timedelta(minutes=5))
    report = engine.bulk("cancel", workflow="counter")
    assert (report.matched, report.changed, report.failed, report.ok) == (6, 5, 1, False)
    [failure] = report.failures
    assert failure.id == "c-3" and failure.error.startswith("BusyError: instance 'c-3' is busy")
    assert "- c-3: BusyError" in str(report)
    assert engine.get("c-3").status is RunStatus.WAITING
    assert engine.get("c-4").status is RunStatus.CANCELLED
    assert report.to_json()["failures"] == [{"id": "c-3", "error": failure.error}]


@pytest.mark.parametrize(
    ("args", "says"),
    [
        ({"action": "delete"}, "a bulk action is one of retry, cancel"),
        ({"action": "retry", "status": "waiting"}, "retry is allowed for failed instances"),
        ({"action": "pause", "status": "lost"}, "unknown status"),
        ({"action": "goto"}, "a bulk goto needs to="),
        ({"action": "pause", "to": "x"}, "to= is goto's target"),
        ({"action": "pause", "older_than": 5}, "older_than must be a timedelta"),
        ({"action": "pause", "older_than": timedelta(-1)}, "older_than must be"),
        ({"action": "pause", "limit": 0}, "limit must be a whole number from 1"),
        ({"action": "pause", "sample": -1}, "sample must be"),
        ({"action": "pause", "actor": ""}, "actor must be"),
        ({"action": "pause", "reason": "r" * 2001}, "reason must be"),
    ],
)
def test_bad_arguments_are_refused_before_anything(
    engine: Engine, gorch_time: Any, args: dict[str, Any], says: str
) -> None:
    engine.start("counter", Counter(), id="c-0")
    with unchanged(engine, "c-0"), pytest.raises(InputError, match=says):
        engine.bulk(**args)


def test_an_unknown_workflow_is_not_found(engine: Engine) -> None:
    with pytest.raises(NotFoundError, match="Did you mean 'counter'"):
        engine.bulk("pause", workflow="countr")


# -- 10,000 instances on SQLite ---------------------------------------------------------------


def copies(db: Path, template: str, n: int, lease_at: int) -> None:
    """Insert ``n`` copies of instance ``template`` (its row and history) in one transaction,
    as ids ``i-00000``...; the one at ``lease_at`` is leased to another process."""
    with closing(sqlite3.connect(db)) as conn:
        cols = [r[1] for r in conn.execute("PRAGMA table_info(gorch_instances)")]
        one = conn.execute("SELECT * FROM gorch_instances WHERE id = ?", (template,)).fetchone()
        row = dict(zip(cols, one, strict=True))
        hcols = [r[1] for r in conn.execute("PRAGMA table_info(gorch_history)")]
        history = [dict(zip(hcols, h, strict=True)) for h in conn.execute(
            "SELECT * FROM gorch_history WHERE instance_id = ?", (template,))]  # fmt: skip
        rows, entries = [], []
        for i in range(n):
            new = {**row, "id": f"i-{i:05d}", "created_at": row["created_at"][:-6] + f"{i:06d}"}
            if i == lease_at:
                new.update(
                    lease_owner="another-process", lease_expires="2999-01-01 00:00:00.000000"
                )
            rows.append(tuple(new[c] for c in cols))
            entries += [tuple({**h, "instance_id": new["id"]}[c] for c in hcols) for h in history]
        marks = ", ".join("?" * len(cols))
        conn.executemany(f"INSERT INTO gorch_instances VALUES ({marks})", rows)
        conn.executemany(
            f"INSERT INTO gorch_history VALUES ({', '.join('?' * len(hcols))})", entries
        )
        conn.execute("DELETE FROM gorch_instances WHERE id = ?", (template,))
        conn.execute("DELETE FROM gorch_history WHERE instance_id = ?", (template,))
        conn.commit()


def test_bulk_over_10000_instances_counts_what_it_changes(tmp_path: Path) -> None:
    db = tmp_path / "many.db"
    store = SQLStore(f"sqlite:///{db}", synchronous="NORMAL")
    try:
        engine = Engine(store, {"counter": Counter}, busy_wait=0.0)
        engine.start("counter", Counter(), id="template")
        copies(db, "template", 10_000, lease_at=5_000)
        dry = engine.bulk("pause", dry_run=True)
        assert (dry.matched, dry.changed) == (10_000, 0)
        started = time.perf_counter()
        done = engine.bulk("pause", reason="maintenance")
        seconds = time.perf_counter() - started
        assert (done.matched, done.changed, done.failed) == (10_000, 9_999, 1)
        assert done.matched == dry.matched
        assert [f.id for f in done.failures] == ["i-05000"]
        now = clock.now()
        counts = {(c.status, c.count) for c in store.counts(now, now)}
        assert counts == {("paused", 9_999), ("waiting", 1)}
        entry = engine.history("i-09999", newest_first=True, limit=1)[0]
        assert entry.kind == "paused" and entry.reason == f"[bulk pause {done.run}] maintenance"
        assert seconds < 50, seconds
    finally:
        store.close()


# -- SIGKILL in the middle of a bulk run -------------------------------------------------------

BULK_CHILD = """
import sys
from gorch import Engine
from gorch.store import SQLStore
from _engine_workflows import Counter
engine = Engine(SQLStore(sys.argv[1]), {"counter": Counter})
def progress(n):
    print(n, flush=True)
engine.bulk("pause", reason="killed", progress=progress)
print("done", flush=True)
"""


def test_a_bulk_run_killed_in_the_middle_leaves_each_instance_changed_with_its_entry_or_not(
    tmp_path: Path,
) -> None:
    import os
    import signal
    import subprocess
    import sys

    db = tmp_path / "kill.db"
    url = f"sqlite:///{db}"
    store = SQLStore(url)
    engine = Engine(store, {"counter": Counter})
    engine.start("counter", Counter(), id="template")
    copies(db, "template", 3_000, lease_at=-1)
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), str(root / "tests")])}
    child = subprocess.Popen(
        [sys.executable, "-c", BULK_CHILD, url], stdout=subprocess.PIPE, env=env, text=True
    )
    try:
        assert child.stdout is not None
        for line in child.stdout:
            if line.strip() == "done" or int(line) >= 1_000:
                break
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=10)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(timeout=10)
        if child.stdout is not None:
            child.stdout.close()
    assert child.returncode == -signal.SIGKILL
    changed = 0
    after: tuple[datetime, str] | None = None
    seen = 0
    while True:
        rows = store.list_instances(limit=1000, after=after)
        for row in rows:
            entries = [h for h in store.history(row.id) if h.kind == "paused"]
            if row.status == "paused":
                assert len(entries) == 1 and entries[0].reason.endswith("killed"), row.id
                changed += 1
            else:
                assert row.status == "waiting" and entries == [], (row.id, row.status, entries)
        seen += len(rows)
        if len(rows) < 1000:
            break
        after = (rows[-1].created_at, rows[-1].id)
    assert seen == 3_000 and 1_000 <= changed < 3_000, changed
    rest = engine.bulk("pause")  # the same filter again picks up the rest
    assert (rest.matched, rest.changed, rest.failed) == (3_000 - changed, 3_000 - changed, 0)
    store.close()
