"""The store conformance suite for what ties instances together: the change feed, watches and
their messages, children started in a parent's commit, and waiting for a change.

Each test that takes the ``store`` fixture (tests/conftest.py) runs once per store kind
(memory, SQLite file, PostgreSQL); the SQL-only tests narrow ``store_kind`` to the SQL kinds
by parametrizing it directly, as tests/test_store.py does.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gorch.errors import AlreadyExistsError, ConflictError
from gorch.state import RunStatus
from gorch.store import (
    ChangeRecord,
    HistoryRecord,
    InstanceRecord,
    KeyRecord,
    MessageRecord,
    SQLStore,
    Store,
    WatchRecord,
    Write,
)
from gorch.store.base import END, watch_matches

# An aware UTC instant with microseconds; every time in the suite is an offset from it.
T0 = datetime.now(UTC).replace(microsecond=654321)
SQL_KINDS = ["sqlite", "postgres"]
OWNER = "worker-1"


SQLITE_LOOK_RACE = (
    "Follower._poll records the file's new size and time (seen = now) before it reads the "
    "feed: a look that falls while a commit is in the WAL but not yet visible to readers "
    "(its fsync, before the wal-index is updated) reads no new entry, and the finished "
    "commit does not move the file again, so it is never fired (about 1 commit in 20 at "
    "the default POLL of 0.2 s)"
)


def at(seconds: float = 0.0) -> datetime:
    return T0 + timedelta(seconds=seconds)


# -- record builders ---------------------------------------------------------------------------


def inst(
    id: str,
    status: str = "running",
    *,
    workflow: str = "wf",
    created: float = 0.0,
    updated: float | None = None,
    waits: Sequence[str] = (),
    parent: str | None = None,
    **kw: Any,
) -> InstanceRecord:
    return InstanceRecord(
        id,
        workflow,
        status,
        "{}",
        "{}",
        at(created),
        at(created if updated is None else updated),
        at_statements=tuple(waits),
        parent_id=parent,
        **kw,
    )


def watch(
    watcher: str,
    target: str,
    until: str = END,
    *,
    thread: str = "main",
    name: str = "Child",
    pc: int = 3,
) -> WatchRecord:
    return WatchRecord(watcher, thread, name, pc, target, until)


def hist(instance_id: str, kind: str, name: str = "", seconds: float = 0.0) -> HistoryRecord:
    return HistoryRecord(instance_id=instance_id, at=at(seconds), kind=kind, name=name)


def insert(store: Store, row: InstanceRecord, **kw: Any) -> int:
    return store.commit(Write(row, None, **kw))


def update(store: Store, row: InstanceRecord, expected: int, **kw: Any) -> int:
    return store.commit(Write(row, expected, **kw))


def seqs(changes: Sequence[ChangeRecord]) -> list[int]:
    return [c.seq for c in changes]


def is_utc(t: datetime) -> bool:
    return t.tzinfo is not None and t.utcoffset() == timedelta(0)


def links(store: Store) -> tuple[Any, ...]:
    """Everything of the feed, the watches and the messages."""
    return store.changes(0, 10_000), store.last_change(), store.watches(), store.messages()


def quiet(store: Store) -> None:
    """Let the store's follower settle: a PostgreSQL store's listener wakes every waiter
    (spuriously, as documented) once, when it first connects."""
    if isinstance(store, SQLStore) and store.dialect.name == "postgresql":
        mark = store.change_mark()
        assert store.wait_change(None, mark, 5.0), "the listener never connected"


def close_all(*stores: Store) -> None:
    """Close the stores at once (a PostgreSQL store whose follower ran takes up to a second
    to close: its listener looks for a stop between waits of 1 s)."""
    threads = [threading.Thread(target=s.close) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)


def later(delay: float, fn: Callable[[], Any]) -> tuple[threading.Thread, list[float]]:
    """Run ``fn`` in a thread after ``delay`` s; the list gets the monotonic time it returned."""
    done: list[float] = []

    def run() -> None:
        time.sleep(delay)
        fn()
        done.append(time.monotonic())

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, done


# -- the change feed ---------------------------------------------------------------------------


def test_change_commits_number_the_feed_from_1_without_gaps(store: Store) -> None:
    assert store.changes() == [] and store.last_change() == 0
    insert(store, inst("a", updated=1), change=True)
    insert(
        store, inst("b", workflow="other", status="waiting", waits=("go",), updated=2), change=True
    )
    update(store, inst("a", status="waiting", waits=("x", "y"), updated=3), 1, change=True)
    update(store, inst("a", status="finished", updated=4), 2, change=True)
    assert store.changes() == [
        ChangeRecord(1, at(1), "a", "wf", "running", ()),
        ChangeRecord(2, at(2), "b", "other", "waiting", ("go",)),
        ChangeRecord(3, at(3), "a", "wf", "waiting", ("x", "y")),
        ChangeRecord(4, at(4), "a", "wf", "finished", ()),
    ]
    assert all(is_utc(c.at) for c in store.changes())
    assert store.last_change() == 4


def test_a_commit_without_change_appends_nothing(store: Store) -> None:
    insert(store, inst("a"))
    update(store, inst("a", status="waiting", waits=("w",), updated=1), 1)
    update(store, inst("a", status="finished", updated=2), 2, history=[hist("a", "finished")])
    assert store.changes() == [] and store.last_change() == 0
    update(store, inst("a", status="finished", updated=3), 3, change=True)
    assert seqs(store.changes()) == [1]
    update(store, inst("a", status="finished", updated=4), 4, notify=True)
    assert seqs(store.changes()) == [1] and store.last_change() == 1


def test_changes_pages_by_seq(store: Store) -> None:
    insert(store, inst("a"), change=True)
    for v in range(1, 7):
        update(store, inst("a", updated=v), v, change=True)
    assert store.last_change() == 7
    assert seqs(store.changes(after=0, limit=3)) == [1, 2, 3]
    assert seqs(store.changes(after=3, limit=3)) == [4, 5, 6]
    assert seqs(store.changes(after=6, limit=3)) == [7]
    assert store.changes(after=7, limit=3) == []
    assert store.changes(after=99) == []
    assert seqs(store.changes(after=2, limit=1)) == [3]
    assert store.changes(after=2, limit=1)[0].at == at(2)
    assert seqs(store.changes()) == list(range(1, 8))


def test_failed_commits_append_nothing(store: Store) -> None:
    insert(store, inst("a"), change=True, key=KeyRecord("a", "k", "fp", "{}", at()))
    before = links(store)
    with pytest.raises(ConflictError):  # a stale version
        update(store, inst("a", status="finished", updated=1), 7, change=True)
    with pytest.raises(ConflictError):  # an instance that is not there
        update(store, inst("nope", status="finished"), 1, change=True)
    with pytest.raises(AlreadyExistsError):
        insert(store, inst("a", status="finished"), change=True)
    with pytest.raises(ConflictError):  # a recorded idempotency key
        update(
            store,
            inst("a", status="finished"),
            1,
            change=True,
            key=KeyRecord("a", "k", "fp", "{}", at()),
        )
    assert links(store) == before
    assert seqs(store.changes()) == [1]
    # ... and the next good one numbers on without a gap.
    update(store, inst("a", status="finished", updated=2), 1, change=True)
    assert seqs(store.changes()) == [1, 2]


# -- at_statements, parent_id ------------------------------------------------------------------


def test_at_statements_and_parent_id_round_trip_through_insert(store: Store) -> None:
    row = inst("c", status="waiting", waits=("approve", "deliver"), parent="p")
    insert(store, row, change=True)
    assert store.get("c") == attrs.evolve(row, version=1)
    plain = inst("d")
    insert(store, plain)
    got = store.get("d")
    assert got is not None and got.at_statements == () and got.parent_id is None


def test_at_statements_change_with_an_update_with_change(store: Store) -> None:
    insert(store, inst("c", parent="p"), change=True)
    row = inst("c", status="waiting", waits=("deliver",), parent="p", updated=1)
    update(store, row, 1, change=True)
    assert store.get("c") == attrs.evolve(row, version=2)
    row = inst("c", status="waiting", waits=("a", "b"), parent="p", updated=2)
    update(store, row, 2, change=True)
    assert store.get("c") == attrs.evolve(row, version=3)
    row = inst("c", status="finished", parent="p", updated=3)
    update(store, row, 3, change=True)
    assert store.get("c") == attrs.evolve(row, version=4)


def test_an_update_without_change_keeps_the_stored_at_statements(store: Store) -> None:
    # ``change`` says the commit changes the status or at_statements: one without it leaves
    # the stored at_statements as they are, whatever the record carries (the SQL update
    # writes at_statements only with change).
    insert(store, inst("c", status="waiting", waits=("deliver",), parent="p"), change=True)
    update(store, inst("c", status="waiting", parent="p", updated=1), 1)
    got = store.get("c")
    assert got is not None and got.version == 2
    assert got.at_statements == ("deliver",)
    assert got.parent_id == "p"
    assert store.changes()[-1].at_statements == ("deliver",)


def test_parent_id_is_written_by_the_insert_only(store: Store) -> None:
    # Who started an instance does not change: the SQL update never writes parent_id (an
    # engine row built without it, as the heartbeat's in gorch/engine/_keeper.py, keeps it).
    insert(store, inst("c", parent="p"), change=True)
    update(store, inst("c", updated=1), 1)
    update(store, inst("c", status="waiting", waits=("w",), updated=2), 2, change=True)
    got = store.get("c")
    assert got is not None and got.parent_id == "p"
    assert [r.id for r in store.list_instances(parent="p")] == ["c"]


def test_list_instances_by_parent(store: Store) -> None:
    insert(store, inst("p"))
    insert(store, inst("c1", parent="p", created=1))
    insert(store, inst("c2", parent="p", created=2, status="finished"))
    insert(store, inst("c3", parent="p", created=3, workflow="other"))
    insert(store, inst("q1", parent="q", created=4))
    insert(store, inst("orphan", created=5))
    assert [r.id for r in store.list_instances(parent="p")] == ["c3", "c2", "c1"]
    assert [r.id for r in store.list_instances(parent="q")] == ["q1"]
    assert store.list_instances(parent="c1") == []
    assert store.list_instances(parent="nope") == []
    assert [r.id for r in store.list_instances(parent="p", status=["running"])] == ["c3", "c1"]
    assert [r.id for r in store.list_instances(parent="p", workflow="wf")] == ["c2", "c1"]
    assert [r.id for r in store.list_instances(parent="p", limit=1)] == ["c3"]
    page = store.list_instances(parent="p", after=(at(3), "c3"))
    assert [r.id for r in page] == ["c2", "c1"]
    assert all(r.parent_id == "p" for r in store.list_instances(parent="p"))
    assert len(store.list_instances()) == 6


# -- watches -----------------------------------------------------------------------------------


def test_watches_are_replaced_and_read(store: Store) -> None:
    w1 = watch("w", "x", thread="t1")
    w2 = watch("w", "y", "status:failed,paused", thread="t2", name="OnX", pc=7)
    v = insert(store, inst("w", status="waiting"), watches=[w2, w1])
    insert(store, inst("v", status="waiting"), watches=[watch("v", "x", "at:deliver")])
    assert store.watches("w") == [w1, w2]
    assert store.watches("v") == [watch("v", "x", "at:deliver")]
    assert store.watches() == [watch("v", "x", "at:deliver"), w1, w2]
    assert store.watches("nope") == []
    # None leaves them; a list replaces them; [] removes them.
    v = update(store, inst("w", status="waiting", updated=1), v)
    assert store.watches("w") == [w1, w2]
    w3 = watch("w", "z", thread="t3")
    v = update(store, inst("w", status="waiting", updated=2), v, watches=[w3])
    assert store.watches("w") == [w3]
    v = update(store, inst("w", status="running", updated=3), v, watches=[])
    assert store.watches("w") == []
    assert store.watches() == [watch("v", "x", "at:deliver")]
    assert store.messages() == []


def test_a_met_watch_leaves_exactly_one_message(store: Store) -> None:
    insert(store, inst("w", status="waiting"), watches=[watch("w", "x")])
    v = insert(store, inst("x", updated=1), change=True)
    assert store.messages() == []
    v = update(store, inst("x", status="finished", updated=2), v, change=True)
    want = MessageRecord("w", "main", "Child", 3, "x", "finished", (), at(2))
    assert store.messages("w") == [want]
    assert store.messages() == [want]
    assert store.messages("x") == []
    assert is_utc(store.messages()[0].at)
    # A second commit that meets it again leaves no second message.
    update(store, inst("x", status="cancelled", updated=3), v, change=True)
    assert store.messages() == [want]
    assert store.watches("w") == [watch("w", "x")]  # a met watch stays until replaced


def test_a_change_that_does_not_meet_the_watch_leaves_nothing(store: Store) -> None:
    insert(store, inst("w", status="waiting"), watches=[watch("w", "x", "status:failed,paused")])
    v = insert(store, inst("x"), change=True)
    for n, status in enumerate(["waiting", "running", "finished"], 1):
        v = update(store, inst("x", status=status, updated=n), v, change=True)
    assert store.messages() == []
    v = update(store, inst("x", status="paused", updated=9), v, change=True)
    assert store.messages("w") == [MessageRecord("w", "main", "Child", 3, "x", "paused", (), at(9))]


def test_a_commit_without_change_meets_no_watch(store: Store) -> None:
    insert(store, inst("w", status="waiting"), watches=[watch("w", "x")])
    v = insert(store, inst("x"))
    update(store, inst("x", status="finished", updated=1), v)
    assert store.messages() == []


def test_an_at_watch_is_met_through_at_statements(store: Store) -> None:
    insert(store, inst("w", status="waiting"), watches=[watch("w", "x", "at:deliver", pc=5)])
    v = insert(store, inst("x", status="waiting", waits=("approve",)), change=True)
    assert store.messages() == []
    v = update(
        store, inst("x", status="waiting", waits=("approve", "deliver"), updated=1), v, change=True
    )
    assert store.messages("w") == [
        MessageRecord("w", "main", "Child", 5, "x", "waiting", ("approve", "deliver"), at(1))
    ]


def test_failed_does_not_meet_an_end_watch(store: Store) -> None:
    # END is met by finished and cancelled; a failed instance may be repaired and go on.
    insert(store, inst("w", status="waiting"), watches=[watch("w", "x")])
    v = insert(store, inst("x"), change=True)
    update(store, inst("x", status="failed", updated=1), v, change=True)
    assert store.messages() == []


def test_a_watch_on_a_target_that_meets_it_already_leaves_its_message_at_once(
    store: Store,
) -> None:
    insert(store, inst("x", status="finished", updated=4))
    insert(store, inst("y", status="waiting", waits=("deliver",), updated=5))
    insert(store, inst("z", status="waiting", updated=6))
    watches = [
        watch("w", "x", thread="t1"),
        watch("w", "y", "at:deliver", thread="t2"),
        watch("w", "z", END, thread="t3"),  # not met
    ]
    insert(store, inst("w", status="waiting", updated=7), watches=watches)
    assert store.messages("w") == [
        MessageRecord("w", "t1", "Child", 3, "x", "finished", (), at(4)),
        MessageRecord("w", "t2", "Child", 3, "y", "waiting", ("deliver",), at(5)),
    ]
    assert store.changes() == []  # meeting a watch is no change of the target
    # Writing the same watches again leaves no second message.
    update(store, inst("w", status="waiting", updated=8), 1, watches=watches)
    assert len(store.messages("w")) == 2


def test_a_watch_on_a_target_not_there_yet_is_met_when_it_is_inserted(store: Store) -> None:
    insert(store, inst("w", status="waiting"), watches=[watch("w", "x", "status:running")])
    assert store.messages() == []
    insert(store, inst("x", updated=2), change=True)
    assert store.messages("w") == [
        MessageRecord("w", "main", "Child", 3, "x", "running", (), at(2))
    ]


def test_a_watch_on_a_target_not_there_yet_is_met_when_a_commit_starts_it(
    store: Store,
) -> None:
    insert(store, inst("w", status="waiting"), watches=[watch("w", "c", "status:running")])
    insert(store, inst("p"))
    child = Write(
        inst("c", parent="p", updated=3), None, history=[hist("c", "started")], change=True
    )
    update(store, inst("p", status="waiting", updated=3), 1, starts=[child])
    assert store.messages("w") == [
        MessageRecord("w", "main", "Child", 3, "c", "running", (), at(3))
    ]


# -- messages ----------------------------------------------------------------------------------


def met(
    store: Store,
    watcher: InstanceRecord,
    targets: Sequence[tuple[str, float]],
) -> None:
    """Insert ``watcher`` watching each target (thread ``t-<target>``) for its end, then the
    targets, finished at their times: one message each."""
    ws = [watch(watcher.id, t, thread=f"t-{t}") for t, _ in targets]
    insert(store, watcher, watches=ws)
    for t, seconds in targets:
        insert(store, inst(t, status="finished", updated=seconds), change=True)


def test_claim_messages_leases_the_watchers_with_a_free_lease(store: Store) -> None:
    now, until = at(50), at(80)
    met(store, inst("w1", status="waiting"), [("x1", 1)])
    met(store, inst("w2", status="running"), [("x2", 2)])
    met(store, inst("w3", status="paused"), [("x3", 3)])
    met(
        store, inst("w4", status="waiting", lease_owner="other", lease_expires=at(100)), [("x4", 4)]
    )
    met(store, inst("w5", status="waiting", lease_owner="other", lease_expires=at(10)), [("x5", 5)])
    met(store, inst("w6", status="waiting", workflow="other"), [("x6", 6)])
    met(store, inst("w7", status="finished"), [("x7", 7)])
    met(store, inst("w8", status="running", next_attempt_at=at(60)), [("x8", 8)])  # backoff
    met(store, inst("w9", status="running", next_attempt_at=at(40)), [("x9", 9)])  # due
    assert len(store.messages()) == 9
    got = store.claim_messages(OWNER, now, until, 20)
    assert [(m.instance_id, m.target_id) for m, _ in got] == [
        ("w1", "x1"),
        ("w2", "x2"),
        ("w5", "x5"),
        ("w6", "x6"),
        ("w9", "x9"),
    ]
    for m, row in got:
        assert row.id == m.instance_id
        assert row.lease_owner == OWNER and row.lease_expires == until
        assert row.version == 2  # the insert made it 1
        assert store.get(row.id) == row
        assert m == store.messages(row.id)[0]  # claimed, not consumed
    assert store.get("w3").version == 1  # type: ignore[union-attr]
    assert store.get("w4").lease_owner == "other"  # type: ignore[union-attr]
    assert len(store.messages()) == 9
    # Their leases are live now: nothing more to claim.
    assert store.claim_messages("worker-2", now, until, 20) == []


def test_claim_messages_limit_and_workflows(store: Store) -> None:
    now, until = at(50), at(80)
    met(store, inst("a1", workflow="a", status="waiting"), [("x1", 1)])
    met(store, inst("b1", workflow="b", status="waiting"), [("x2", 2)])
    met(store, inst("a2", workflow="a", status="waiting"), [("x3", 3)])
    assert store.claim_messages(OWNER, now, until, 10, workflows=[]) == []
    assert [m.instance_id for m, _ in store.claim_messages(OWNER, now, until, 10, ["zzz"])] == []
    got = store.claim_messages(OWNER, now, until, 10, workflows=["b", "zzz"])
    assert [(m.instance_id, r.workflow) for m, r in got] == [("b1", "b")]
    got = store.claim_messages(OWNER, now, until, 1, workflows=["a"])
    assert [m.instance_id for m, _ in got] == ["a1"]
    got = store.claim_messages(OWNER, now, until, 10)
    assert [m.instance_id for m, _ in got] == ["a2"]


def test_claim_messages_takes_one_message_per_instance_the_oldest(store: Store) -> None:
    now, until = at(50), at(80)
    met(store, inst("w", status="waiting"), [("x2", 2), ("x1", 1), ("x3", 3)])
    assert [m.target_id for m in store.messages("w")] == ["x1", "x2", "x3"]
    got = store.claim_messages(OWNER, now, until, 10)
    assert [(m.target_id, r.id) for m, r in got] == [("x1", "w")]
    first, row = got[0]
    # Deliver it: consume the message in the watcher's commit, and let the lease go.
    v = update(store, inst("w", status="waiting", updated=60), row.version, consume=first)
    assert [m.target_id for m in store.messages("w")] == ["x2", "x3"]
    got = store.claim_messages(OWNER, now, until, 10)
    assert [(m.target_id, r.version) for m, r in got] == [("x2", v + 1)]


def test_claim_messages_fills_its_limit_with_other_instances(store: Store) -> None:
    # At most one message per instance: an instance with several does not take up the
    # places of the others in one claim (as MemoryStore.claim_messages does).
    now, until = at(50), at(80)
    met(store, inst("a", status="waiting"), [("x1", 1), ("x2", 2)])
    met(store, inst("b", status="waiting"), [("x3", 3)])
    got = store.claim_messages(OWNER, now, until, 2)
    assert [(m.instance_id, m.target_id) for m, _ in got] == [("a", "x1"), ("b", "x3")]


def test_consume_deletes_the_message_in_the_commit(store: Store) -> None:
    met(store, inst("w", status="waiting"), [("x1", 1), ("x2", 2)])
    m1, m2 = store.messages("w")
    # A commit that fails consumes nothing.
    with pytest.raises(ConflictError):
        update(store, inst("w", status="running", updated=5), 9, consume=m1)
    assert store.messages("w") == [m1, m2]
    update(store, inst("w", status="running", updated=5), 1, consume=m1, watches=[])
    assert store.messages("w") == [m2]
    assert store.watches("w") == []
    # Consuming one that is gone already is no error.
    update(store, inst("w", status="running", updated=6), 2, consume=m1)
    assert store.messages() == [m2]


def test_delete_message(store: Store) -> None:
    met(store, inst("w", status="waiting"), [("x1", 1), ("x2", 2)])
    met(store, inst("v", status="waiting"), [("y1", 3)])
    m1, m2 = store.messages("w")
    store.delete_message(m1)
    assert store.messages("w") == [m2]
    store.delete_message(m1)  # gone already: nothing happens
    assert [m.target_id for m in store.messages()] == ["x2", "y1"]
    store.delete_message(m2)
    assert [m.target_id for m in store.messages()] == ["y1"]
    assert store.get("w").version == 1  # type: ignore[union-attr]


# -- starts ------------------------------------------------------------------------------------


def test_a_start_that_exists_fails_the_whole_commit(store: Store) -> None:
    insert(store, inst("p"), history=[hist("p", "started")], change=True)
    insert(store, inst("c1", parent="other"), history=[hist("c1", "started")])
    before = (
        store.get("p"),
        store.history("p"),
        store.get("c1"),
        store.history("c1"),
        links(store),
        store.timers(),
    )
    new = Write(
        inst("c2", parent="p", updated=1), None, history=[hist("c2", "started")], change=True
    )
    dup = Write(
        inst("c1", parent="p", updated=1), None, history=[hist("c1", "started")], change=True
    )
    with pytest.raises(AlreadyExistsError) as info:
        update(
            store,
            inst("p", status="waiting", waits=("c1", "c2"), updated=1),
            1,
            history=[hist("p", "step", "spawn", 1)],
            change=True,
            notify=True,
            watches=[watch("p", "c1", thread="t1"), watch("p", "c2", thread="t2")],
            starts=[new, dup],
        )
    assert info.value.workflow_id == "c1"
    after = (
        store.get("p"),
        store.history("p"),
        store.get("c1"),
        store.history("c1"),
        links(store),
        store.timers(),
    )
    assert after == before
    assert store.get("c2") is None and store.history("c2") == []
    assert store.list_instances(parent="p") == []
    assert seqs(store.changes()) == [1]


def test_started_children_are_written_with_the_parent(store: Store) -> None:
    insert(store, inst("p"), change=True)
    kids = [
        Write(
            inst(c, parent="p", created=1), None, history=[hist(c, "started", "", 1)], change=True
        )
        for c in ("c1", "c2")
    ]
    watches = [watch("p", "c1", thread="t1"), watch("p", "c2", "status:running", thread="t2")]
    v = update(
        store,
        inst("p", status="waiting", waits=("kids",), updated=1),
        1,
        change=True,
        watches=watches,
        starts=kids,
    )
    assert v == 2
    for c in ("c1", "c2"):
        assert store.get(c) == attrs.evolve(inst(c, parent="p", created=1), version=1)
        h = store.history(c)
        assert [(x.kind, x.seq, x.version, x.idx) for x in h] == [("started", 1, 1, 1)]
    assert [r.id for r in store.list_instances(parent="p")] == ["c2", "c1"]
    got = store.get("p")
    assert got is not None and got.at_statements == ("kids",) and got.version == 2
    assert store.watches("p") == watches
    # Each start with change has its own entry; the feed has no gap.
    feed = store.changes()
    assert seqs(feed) == [1, 2, 3, 4]
    assert sorted(c.instance_id for c in feed[1:]) == ["c1", "c2", "p"]
    # The watch that the running child meets left its message in the same commit.
    assert store.messages("p") == [MessageRecord("p", "t2", "Child", 3, "c2", "running", (), at(1))]


# -- wait_change -------------------------------------------------------------------------------


def test_wait_change_times_out_then_hears_a_change_made_after_the_mark(store: Store) -> None:
    # One test, not three: a PostgreSQL store whose follower ran takes a second to close.
    insert(store, inst("x"), change=True)
    quiet(store)
    mark = store.change_mark()
    t = time.monotonic()
    assert store.wait_change("x", mark, 0.2) is False
    assert store.wait_change(None, mark, 0.05) is False
    assert time.monotonic() - t >= 0.25
    # A commit without change is no change either.
    update(store, inst("x", updated=1), 1)
    assert store.wait_change("x", mark, 0.05) is False
    # A change committed between the mark and the wait is not missed.
    update(store, inst("x", status="waiting", waits=("go",)), 2, change=True)
    t = time.monotonic()
    assert store.wait_change("x", mark, 3.0) is True
    assert store.wait_change(None, mark, 3.0) is True
    assert time.monotonic() - t < 0.5
    # A start is a change of the started instance.
    mark = store.change_mark()
    update(store, inst("x"), 3, starts=[Write(inst("c", parent="x"), None, change=True)])
    assert store.wait_change("c", mark, 3.0) is True


def test_wait_change_wakes_promptly_on_a_change_of_another_thread(store: Store) -> None:
    insert(store, inst("x"), change=True)
    quiet(store)
    mark = store.change_mark()
    thread, done = later(0.1, lambda: update(store, inst("x", "finished"), 1, change=True))
    t = time.monotonic()
    assert store.wait_change("x", mark, 5.0) is True
    woke = time.monotonic()
    thread.join()
    assert woke - t < 1.0
    assert woke - done[0] < 1.0
    assert store.wait_change(None, mark, 0.0) is True


@pytest.mark.parametrize("store_kind", ["memory"])
def test_a_change_of_another_instance_does_not_wake_a_waiter(store: Store) -> None:
    # Only asserted of the memory store: a SQL store's True may be spurious (documented).
    insert(store, inst("x"), change=True)
    insert(store, inst("y"), change=True)
    mark = store.change_mark()
    update(store, inst("y", "finished"), 1, change=True)
    assert store.wait_change("x", mark, 0.2) is False
    assert store.wait_change("y", mark, 0.2) is True
    assert store.wait_change(None, mark, 0.2) is True


@pytest.mark.parametrize("store_kind", SQL_KINDS)
def test_a_waiter_hears_another_store_object_on_the_same_database(sql_url: str) -> None:
    # The commits come between two of the SQLite follower's looks (every POLL = 0.2 s from
    # its start), away from the moment a look can miss one (see the test below).
    a, b = SQLStore(sql_url), SQLStore(sql_url)
    try:
        insert(b, inst("x"), change=True)
        insert(b, inst("y"), change=True)
        quiet(a)
        mark = a.change_mark()  # starts the follower
        time.sleep(0.25)  # the follower has taken its bearings
        thread, done = later(0.1, lambda: update(b, inst("x", "finished"), 1, change=True))
        assert a.wait_change("x", mark, 5.0) is True
        woke = time.monotonic()
        thread.join()
        assert woke - done[0] < 1.0
        got = a.get("x")
        assert got is not None and got.status == "finished"
        # Again, for the other instance (the follower keeps following).
        mark = a.change_mark()
        thread, done = later(0.1, lambda: update(b, inst("y", "waiting"), 1, change=True))
        assert a.wait_change("y", mark, 5.0) is True
        woke = time.monotonic()
        thread.join()
        assert woke - done[0] < 1.0
        assert seqs(a.changes()) == [1, 2, 3, 4]
    finally:
        close_all(a, b)


@pytest.mark.parametrize("store_kind", SQL_KINDS)
def test_every_commit_of_another_store_object_is_heard(
    sql_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # However a look of the SQLite follower falls against another process's commit, the
    # commit wakes the waiter. The follower looks every millisecond here (POLL is 0.2 s):
    # the looks that fall inside a commit come often enough to be seen in 30 commits
    # (about one commit in seven is missed on SQLite).
    from gorch.store.sql import _follow

    monkeypatch.setattr(_follow, "POLL", 0.001)
    a, b = SQLStore(sql_url), SQLStore(sql_url)
    try:
        insert(b, inst("x"), change=True)
        quiet(a)
        a.change_mark()
        time.sleep(0.2)
        missed = []
        for v in range(1, 31):
            mark = a.change_mark()
            update(b, inst("x", updated=v), v, change=True)
            if not a.wait_change("x", mark, 0.15):
                missed.append(v + 1)  # the seq of the commit not heard
        assert missed == []
    finally:
        close_all(a, b)


@pytest.mark.parametrize("store_kind", SQL_KINDS)
def test_another_store_objects_change_right_after_the_first_mark_is_not_missed(
    sql_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The first change_mark() of a store starts its follower; a change another process
    # commits after that mark must wake the waiter, however late the follower takes its
    # bearings (here: its first read of the feed is slow, as on a busy database; without
    # the delay the SQLite waiter misses the change about half the time).
    a, b = SQLStore(sql_url), SQLStore(sql_url)
    try:
        insert(b, inst("x"), change=True)
        real = a.last_change

        def slow() -> int:
            time.sleep(0.5)
            return real()

        monkeypatch.setattr(a, "last_change", slow)
        mark = a.change_mark()
        update(b, inst("x", "finished"), 1, change=True)
        assert a.wait_change("x", mark, 1.0) is True
    finally:
        close_all(a, b)


# -- concurrency -------------------------------------------------------------------------------

WRITERS, COMMITS = 4, 25


@pytest.mark.parametrize("store_kind", SQL_KINDS)
def test_concurrent_change_commits_number_the_feed_without_gaps(store: Store) -> None:
    for w in range(WRITERS):
        insert(store, inst(f"i{w}"))
    start = threading.Barrier(WRITERS + 1)
    errors: list[BaseException] = []
    done = threading.Event()

    def write(w: int) -> None:
        try:
            start.wait()
            for n in range(COMMITS):
                row = inst(f"i{w}", status="waiting", waits=(f"s{n}",), updated=n)
                update(store, row, n + 1, change=True)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    seen: list[ChangeRecord] = []

    def follow() -> None:
        cursor = 0
        try:
            start.wait()
            while True:
                last = done.is_set()  # read once more after the writers are done
                batch = store.changes(after=cursor, limit=7)
                # A reader never sees a seq before the ones below it are committed.
                assert seqs(batch) == list(range(cursor + 1, cursor + 1 + len(batch)))
                seen.extend(batch)
                if batch:
                    cursor = batch[-1].seq
                elif last:
                    return
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(w,)) for w in range(WRITERS)]
    reader = threading.Thread(target=follow)
    for t in [*threads, reader]:
        t.start()
    for t in threads:
        t.join(timeout=60)
    done.set()
    reader.join(timeout=60)
    assert not errors, errors
    total = WRITERS * COMMITS
    feed = store.changes(after=0, limit=1000)
    assert seqs(feed) == list(range(1, total + 1))
    assert store.last_change() == total
    assert seen == feed
    # Each writer's entries come in the order it committed them.
    for w in range(WRITERS):
        mine = [c.at_statements for c in feed if c.instance_id == f"i{w}"]
        assert mine == [(f"s{n}",) for n in range(COMMITS)]


def _race(*fns: Callable[[], Any]) -> None:
    """Run ``fns`` at once, each in its thread; raise what one raised."""
    go = threading.Barrier(len(fns))
    errors: list[BaseException] = []

    def run(fn: Callable[[], Any]) -> None:
        try:
            go.wait()
            fn()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(fn,)) for fn in fns]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not errors, errors


def test_a_watch_and_its_targets_change_never_miss_each_other(store: Store) -> None:
    # The watcher writes its watch while the target commits the change that meets it, in
    # whichever order they come: the message is there, once.
    rounds = 12
    for r in range(rounds):
        insert(store, inst(f"w{r}", status="running"))
        insert(store, inst(f"x{r}", status="running"))
    for r in range(rounds):
        watcher = Write(inst(f"w{r}", "waiting"), 1, watches=[watch(f"w{r}", f"x{r}")])
        target = Write(inst(f"x{r}", "finished"), 1, change=True)
        _race(partial(store.commit, watcher), partial(store.commit, target))
        assert [m.target_id for m in store.messages(f"w{r}")] == [f"x{r}"], r


def test_a_watch_and_the_insert_of_its_target_never_miss_each_other(store: Store) -> None:
    # The same, where the target does not exist yet: its insert races the watch.
    rounds = 12
    for r in range(rounds):
        insert(store, inst(f"w{r}", status="running"))
    for r in range(rounds):
        watcher = Write(inst(f"w{r}", "waiting"), 1, watches=[watch(f"w{r}", f"x{r}")])
        target = Write(inst(f"x{r}", "finished"), None, change=True)
        _race(partial(store.commit, watcher), partial(store.commit, target))
        assert [m.target_id for m in store.messages(f"w{r}")] == [f"x{r}"], r


def test_a_watched_target_meets_a_later_watch_with_each_change(store: Store) -> None:
    # A target once watched, then watched again by another: each change meets the watches
    # there are, whichever commit wrote them.
    insert(store, inst("x", status="running"), change=True)
    insert(store, inst("w1", status="waiting"), watches=[watch("w1", "x", "status:waiting")])
    update(store, inst("x", status="waiting", updated=2), 1, change=True)
    insert(store, inst("w2", status="waiting"), watches=[watch("w2", "x", END)])
    update(store, inst("x", status="finished", updated=3), 2, change=True)
    assert [(m.instance_id, m.status) for m in store.messages()] == [
        ("w1", "waiting"),
        ("w2", "finished"),
    ]


UNTILS = ["end", "status:running", "status:failed,waiting", "at:a", "at:b", "at:", "other"]
ARRIVALS = [
    (status, waits)
    for status in ("running", "waiting", "finished", "cancelled", "failed", "paused")
    for waits in ((), ("a",), ("b", "a"))
]


def test_the_watches_a_new_instance_meets_are_those_watch_matches_says(store: Store) -> None:
    # Every kind of until against every kind of arrival, through the store's own commit
    # (PostgreSQL matches a new instance's watches in SQL).
    cases = [(u, status, waits) for u in UNTILS for status, waits in ARRIVALS]
    for i, (until, _, _) in enumerate(cases):
        insert(store, inst(f"w{i}", status="waiting"), watches=[watch(f"w{i}", f"x{i}", until)])
    for i, (_, status, waits) in enumerate(cases):
        insert(store, inst(f"x{i}", status, waits=waits), change=True)
    got = {m.instance_id for m in store.messages()}
    want = {f"w{i}" for i, case in enumerate(cases) if watch_matches(*case)}
    assert got == want and 0 < len(want) < len(cases)


# -- watch_matches -----------------------------------------------------------------------------

NAMES = st.text(alphabet="abc:,", max_size=4)
STATUSES = st.one_of(st.sampled_from([s.value for s in RunStatus]), NAMES)


def _reference(until: str, status: str, at_statements: Sequence[str]) -> bool:
    """What a watch's ``until`` means (WatchRecord), spelled out without watch_matches."""
    if until == "end":
        return status == "finished" or status == "cancelled"
    if until.startswith("status:"):
        return any(status == s for s in until[len("status:") :].split(","))
    if until.startswith("at:"):
        return any(name == until[len("at:") :] for name in at_statements)
    return False


@st.composite
def untils(draw: Any) -> str:
    kind = draw(st.sampled_from(["end", "status", "at", "other"]))
    if kind == "end":
        return END
    if kind == "status":
        return "status:" + ",".join(draw(st.lists(STATUSES, min_size=1, max_size=3)))
    if kind == "at":
        return "at:" + draw(NAMES)
    return draw(st.text(max_size=8))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(untils(), STATUSES, st.lists(NAMES, max_size=4))
def test_watch_matches_agrees_with_the_reference(
    until: str, status: str, at_statements: list[str]
) -> None:
    want = _reference(until, status, at_statements)
    assert watch_matches(until, status, at_statements) is want
    assert watch_matches(until, status, tuple(at_statements)) is want


def test_end_is_met_by_the_engines_end_statuses_only() -> None:
    from gorch.engine._links import ENDS

    assert END == "end"
    met_by = {s.value for s in RunStatus if watch_matches(END, s.value, ())}
    assert met_by == {s.value for s in ENDS} == {"finished", "cancelled"}


@pytest.mark.parametrize("end", ["finished", "cancelled"])
def test_the_commit_that_ends_an_instance_drops_its_messages(store: Store, end: str) -> None:
    # A watcher that ends (cancelled while its child's end waits to be taken, say) takes no
    # more events: its messages go with that commit; other instances' stay.
    met(store, inst("w", status="waiting"), [("x1", 1), ("x2", 2)])
    met(store, inst("v", status="waiting"), [("y", 3)])
    assert len(store.messages("w")) == 2
    update(store, inst("w", status="running", updated=5), 1, change=True)
    assert len(store.messages("w")) == 2  # not ended: kept
    update(store, inst("w", status=end, updated=6), 2, change=True)
    assert store.messages("w") == [] and [m.target_id for m in store.messages()] == ["y"]
