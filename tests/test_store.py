"""The store conformance suite: every store (memory, SQLite, PostgreSQL) behaves the same.

Each test that takes the ``store`` fixture runs once per store kind. The SQL-only tests at the
end take ``sql_url`` and narrow ``store_kind`` to the SQL kinds by parametrizing it directly.
"""

from __future__ import annotations

import gc
import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing, contextmanager
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import attrs
import pytest

from gorch.errors import AlreadyExistsError, ConflictError, StoreUnavailableError
from gorch.store import (
    HistoryRecord,
    InstanceRecord,
    KeyRecord,
    MemoryStore,
    ScheduleRecord,
    StatusCount,
    Store,
    TimerRecord,
    Write,
)

# An aware UTC instant with microseconds; every time in the suite is an offset from it.
T0 = datetime.now(UTC).replace(microsecond=123456)
SQL_KINDS = ["sqlite", "postgres"]


def at(seconds: float = 0.0) -> datetime:
    return T0 + timedelta(seconds=seconds)


# -- record builders ---------------------------------------------------------------------------


def inst(
    id: str,
    *,
    workflow: str = "wf",
    status: str = "running",
    created_at: datetime | None = None,
    state: str | None = None,
    data: str = '{"n": 0}',
    **kw: Any,
) -> InstanceRecord:
    created = at() if created_at is None else created_at
    return InstanceRecord(
        id=id,
        workflow=workflow,
        status=status,
        state=state if state is not None else f'{{"id": "{id}", "pc": 0}}',
        data=data,
        created_at=created,
        updated_at=kw.pop("updated_at", created),
        **kw,
    )


def timer(
    instance_id: str, due: datetime, *, thread: str = "main", name: str = "Timeout", pc: int = 1
) -> TimerRecord:
    return TimerRecord(instance_id, thread, name, pc, due)


def hist(instance_id: str, kind: str, name: str = "", **kw: Any) -> HistoryRecord:
    return HistoryRecord(instance_id=instance_id, at=kw.pop("at", at()), kind=kind, name=name, **kw)


def key(instance_id: str, k: str, output: str = '{"ok": true}') -> KeyRecord:
    return KeyRecord(instance_id, k, f"fp-{k}", output, at(1))


def insert(store: Store, row: InstanceRecord, **kw: Any) -> int:
    return store.commit(Write(row, None, **kw))


def update(store: Store, row: InstanceRecord, expected: int, **kw: Any) -> int:
    return store.commit(Write(row, expected, **kw))


def snapshot(store: Store, instance_id: str, keys: Sequence[str] = ()) -> tuple[Any, ...]:
    """Everything a commit for ``instance_id`` could have written."""
    return (
        store.get(instance_id),
        store.timers(instance_id),
        store.timers(),
        store.history(instance_id),
        [store.get_key(instance_id, k) for k in keys],
    )


def unseq(rows: Sequence[HistoryRecord]) -> list[HistoryRecord]:
    """The rows without what the store adds on reading (seq, version, idx)."""
    return [attrs.evolve(h, seq=0, version=0, idx=0) for h in rows]


def is_utc(t: datetime | None) -> bool:
    return t is not None and t.tzinfo is not None and t.utcoffset() == timedelta(0)


# -- commit: insert ----------------------------------------------------------------------------


def test_store_implements_the_protocol(store: Store) -> None:
    assert isinstance(store, Store)


def test_insert_returns_version_1_and_get_reads_it_back(store: Store) -> None:
    row = inst("a")
    assert insert(store, row) == 1
    assert store.get("a") == attrs.evolve(row, version=1)


def test_insert_ignores_the_version_of_the_record(store: Store) -> None:
    assert insert(store, inst("a", version=41)) == 1
    got = store.get("a")
    assert got is not None and got.version == 1
    assert update(store, inst("a", version=7), 1) == 2


def test_get_of_unknown_id_is_none(store: Store) -> None:
    assert store.get("nope") is None
    insert(store, inst("a"))
    assert store.get("A") is None
    assert store.get("a ") is None


def test_insert_of_existing_id_raises_and_changes_nothing(store: Store) -> None:
    insert(
        store,
        inst("a", data='{"first": true}'),
        timers=[timer("a", at(10))],
        history=[hist("a", "started")],
        key=key("a", "k0"),
    )
    before = snapshot(store, "a", ["k0", "k1"])
    with pytest.raises(AlreadyExistsError) as info:
        insert(
            store,
            inst("a", status="waiting", data='{"second": true}'),
            timers=[timer("a", at(5), name="Other"), timer("a", at(20))],
            history=[hist("a", "started"), hist("a", "event", "X")],
            key=key("a", "k1"),
        )
    assert info.value.workflow_id == "a"
    assert snapshot(store, "a", ["k0", "k1"]) == before
    assert store.get_key("a", "k1") is None


def test_insert_of_existing_id_with_an_existing_key_is_already_exists(store: Store) -> None:
    insert(store, inst("a"), key=key("a", "k0"))
    before = snapshot(store, "a", ["k0"])
    with pytest.raises(AlreadyExistsError):
        insert(store, inst("a", status="waiting"), key=key("a", "k0"))
    assert snapshot(store, "a", ["k0"]) == before


@pytest.mark.parametrize("instance_id", ["gorch_keys", "duplicate key UNIQUE gorch_keys.key"])
def test_an_existing_id_is_told_by_the_error_code_not_the_message(
    store: Store, instance_id: str
) -> None:
    # PostgreSQL quotes the duplicate value in its message ("Key (id)=(gorch_keys) already
    # exists"): an id that reads like the key table must still be an existing instance.
    insert(store, inst(instance_id))
    before = snapshot(store, instance_id)
    with pytest.raises(AlreadyExistsError) as info:
        insert(store, inst(instance_id, status="waiting"))
    assert info.value.workflow_id == instance_id
    assert snapshot(store, instance_id) == before


# -- commit: update ----------------------------------------------------------------------------


def test_update_with_the_right_version_bumps_it_by_one(store: Store) -> None:
    insert(store, inst("a"))
    v = 1
    for n in range(1, 4):
        row = inst("a", status="waiting", data=f'{{"n": {n}}}', updated_at=at(n), attempts=n)
        assert update(store, row, v) == v + 1
        v += 1
        assert store.get("a") == attrs.evolve(row, version=v)
    assert v == 4


def test_update_changes_every_mutable_field(store: Store) -> None:
    insert(store, inst("a"))
    row = inst(
        "a",
        status="failed",
        state='{"changed": 1}',
        data='{"changed": 2}',
        updated_at=at(60),
        lease_owner="w1",
        lease_expires=at(90),
        attempts=3,
        next_attempt_at=at(120),
        last_error="boom: ÿ ✗",
    )
    assert update(store, row, 1) == 2
    assert store.get("a") == attrs.evolve(row, version=2)
    # ... and back to the empty values.
    cleared = inst("a", updated_at=at(61))
    assert update(store, cleared, 2) == 3
    assert store.get("a") == attrs.evolve(cleared, version=3)


@pytest.mark.parametrize("expected", [0, 2, 5])
def test_update_with_a_wrong_version_conflicts_and_writes_nothing(
    store: Store, expected: int
) -> None:
    insert(store, inst("a"), timers=[timer("a", at(10))], history=[hist("a", "started")])
    insert(store, inst("b"), timers=[timer("b", at(3))])
    before = snapshot(store, "a", ["k"])
    with pytest.raises(ConflictError) as info:
        update(
            store,
            inst("a", status="finished", data='{"lost": true}', updated_at=at(1)),
            expected,
            timers=(),
            history=[hist("a", "finished")],
            key=key("a", "k"),
        )
    assert info.value.workflow_id == "a"
    assert snapshot(store, "a", ["k"]) == before
    assert store.get_key("a", "k") is None
    assert store.timers("b") == [timer("b", at(3))]
    # The right version still works afterwards.
    assert update(store, inst("a", updated_at=at(2)), 1, key=key("a", "k")) == 2
    assert store.get_key("a", "k") == key("a", "k")


def test_update_with_a_wrong_version_does_not_add_timers(store: Store) -> None:
    insert(store, inst("a"))
    with pytest.raises(ConflictError):
        update(store, inst("a"), 3, timers=[timer("a", at(1))])
    assert store.timers("a") == []
    assert store.timers() == []


def test_update_of_an_unknown_instance_conflicts_and_writes_nothing(store: Store) -> None:
    with pytest.raises(ConflictError):
        update(
            store,
            inst("ghost"),
            1,
            timers=[timer("ghost", at(1))],
            history=[hist("ghost", "started")],
            key=key("ghost", "k"),
        )
    assert snapshot(store, "ghost", ["k"]) == (None, [], [], [], [None])


def test_a_stale_writer_loses_to_the_first(store: Store) -> None:
    insert(store, inst("a"))
    assert update(store, inst("a", data='{"by": "first"}'), 1) == 2
    with pytest.raises(ConflictError):
        update(store, inst("a", data='{"by": "second"}'), 1)
    got = store.get("a")
    assert got is not None and (got.version, got.data) == (2, '{"by": "first"}')


# -- timers ------------------------------------------------------------------------------------


def test_timers_none_leaves_them(store: Store) -> None:
    ts = [timer("a", at(10)), timer("a", at(20), thread="t2", pc=4)]
    insert(store, inst("a"), timers=ts)
    assert update(store, inst("a", status="waiting"), 1) == 2  # timers=None by default
    assert store.timers("a") == ts
    assert update(store, inst("a"), 2, timers=None) == 3
    assert store.timers("a") == ts


def test_timers_sequence_replaces_them(store: Store) -> None:
    insert(store, inst("a"), timers=[timer("a", at(10)), timer("a", at(20), name="B")])
    insert(store, inst("b"), timers=[timer("b", at(15))])
    new = [timer("a", at(30), name="C", pc=7)]
    update(store, inst("a"), 1, timers=new)
    assert store.timers("a") == new
    assert store.timers("b") == [timer("b", at(15))]
    # A timer with the same key as a replaced one, at another time.
    again = [timer("a", at(5), name="C", pc=7), timer("a", at(1))]
    update(store, inst("a"), 2, timers=again)
    assert store.timers("a") == [timer("a", at(1)), timer("a", at(5), name="C", pc=7)]


def test_empty_timers_delete_them(store: Store) -> None:
    insert(store, inst("a"), timers=[timer("a", at(10)), timer("a", at(20), name="B")])
    insert(store, inst("b"), timers=[timer("b", at(15))])
    update(store, inst("a"), 1, timers=())
    assert store.timers("a") == []
    assert store.timers() == [timer("b", at(15))]
    update(store, inst("a"), 2, timers=[])
    assert store.timers("a") == []


def test_timers_of_an_instance_soonest_first(store: Store) -> None:
    ts = [
        timer("a", at(30), name="T3"),
        timer("a", at(10), name="T1"),
        timer("a", at(20.000001), name="T2b"),
        timer("a", at(20), name="T2", thread="t9", pc=99),
    ]
    insert(store, inst("a"), timers=ts)
    assert [t.name for t in store.timers("a")] == ["T1", "T2", "T2b", "T3"]
    assert store.timers("unknown") == []


def test_all_timers_soonest_first(store: Store) -> None:
    assert store.timers() == []
    insert(store, inst("a"), timers=[timer("a", at(30)), timer("a", at(5), name="X")])
    insert(store, inst("b"), timers=[timer("b", at(20))])
    insert(store, inst("c"), timers=[timer("c", at(-10))])
    insert(store, inst("d"))
    assert store.timers() == [
        timer("c", at(-10)),
        timer("a", at(5), name="X"),
        timer("b", at(20)),
        timer("a", at(30)),
    ]


def test_timer_times_round_trip_as_utc(store: Store) -> None:
    plus2 = timezone(timedelta(hours=2))
    due = datetime(2030, 6, 1, 14, 30, 15, 999999, tzinfo=plus2)
    insert(store, inst("a"), timers=[timer("a", due)])
    [got] = store.timers("a")
    assert got.due_at == due  # the same instant
    assert isinstance(got.due_at, datetime) and got.due_at.tzinfo is not None
    assert got.due_at.astimezone(UTC) == datetime(2030, 6, 1, 12, 30, 15, 999999, tzinfo=UTC)


def test_delete_timer_deletes_exactly_that_timer(store: Store) -> None:
    a1 = timer("a", at(10))
    a2 = timer("a", at(10), pc=2)  # same thread and name, other pc
    a3 = timer("a", at(11), thread="t2")
    a4 = timer("a", at(12), name="Other")
    b1 = timer("b", at(10))  # same thread, name and pc, other instance
    insert(store, inst("a"), timers=[a1, a2, a3, a4])
    insert(store, inst("b"), timers=[b1])
    store.delete_timer(a1)
    assert sorted(store.timers("a"), key=lambda t: (t.due_at, t.pc)) == [a2, a3, a4]
    assert store.timers("b") == [b1]
    store.delete_timer(a1)  # gone already: no error
    store.delete_timer(timer("zzz", at(1)))
    assert len(store.timers()) == 4
    for t in (a2, a3, a4, b1):
        store.delete_timer(t)
    assert store.timers() == []
    # The instance rows are untouched by timer deletes.
    got = store.get("a")
    assert got is not None and got.version == 1


# -- history -----------------------------------------------------------------------------------


def test_history_is_appended_in_order_with_increasing_seq(store: Store) -> None:
    assert store.history("a") == []
    first = [hist("a", "started"), hist("a", "step", "charge", thread="main", at=at(1))]
    insert(store, inst("a"), history=first)
    insert(store, inst("b"), history=[hist("b", "started")])
    second = [
        hist("a", "event", "Paid", input='{"amount": 3}', at=at(2)),
        hist("a", "step_failed", "ship", error="no stock", at=at(3)),
        hist("a", "retry", "ship", at=at(3)),
    ]
    update(store, inst("a"), 1, history=second)
    update(store, inst("a"), 2)  # no history
    update(store, inst("a"), 3, history=[hist("a", "finished", at=at(4))])
    got = store.history("a")
    assert unseq(got) == [*first, *second, hist("a", "finished", at=at(4))]
    assert [h.seq for h in got] == [1, 2, 3, 4, 5, 6]  # the position, from 1
    assert [h.seq for h in store.history("b")] == [1]
    assert unseq(store.history("b")) == [hist("b", "started")]
    assert store.history("unknown") == []


def test_history_keeps_who_made_a_change_and_why(store: Store) -> None:
    by = {"actor": "ana", "reason": "customer called: wants \u00e9 \U0001f355, 'quoted'"}
    insert(store, inst("a"), history=[hist("a", "started")])
    # An update with history only (PostgreSQL's one-statement checkpoint), and one with timers
    # and a key (the general commit): both keep actor and reason.
    v = update(store, inst("a"), 1, history=[hist("a", "paused", **by), hist("a", "step", "s")])
    update(store, inst("a"), v, timers=[timer("a", at(9))], key=key("a", "k"),
           history=[hist("a", "goto", "s", actor="bob")])  # fmt: skip
    got = store.history("a")
    assert [(h.kind, h.actor, h.reason) for h in got] == [
        ("started", None, None),
        ("paused", "ana", by["reason"]),
        ("step", None, None),
        ("goto", "bob", None),
    ]
    newest = store.history("a", newest_first=True, limit=2)
    assert [(h.kind, h.actor, h.seq) for h in newest] == [("goto", "bob", 4), ("step", None, 3)]


def test_history_keeps_its_order_across_claims_and_every_kind_of_commit(store: Store) -> None:
    insert(store, inst("a"), history=[hist("a", "started")])
    [row] = store.claim("w", at(0), at(30), 1)  # the version moves on without history
    v = update(store, row, row.version, history=[hist("a", "step", "s1")])
    v = update(store, row, v, timers=[timer("a", at(9))], history=[hist("a", "step", "s2")])
    v = update(store, row, v, key=key("a", "k"), history=[hist("a", "event", "E")])
    v = update(store, row, v, notify=True, history=[hist("a", "step", "s3")])
    assert store.release("a", "w", v) is True
    [row] = store.claim("w", at(1), at(30), 1)
    update(store, row, row.version, history=[hist("a", "finished"), hist("a", "x", "last")])
    got = store.history("a")
    assert [(h.kind, h.name) for h in got] == [
        ("started", ""),
        ("step", "s1"),
        ("step", "s2"),
        ("event", "E"),
        ("step", "s3"),
        ("finished", ""),
        ("x", "last"),
    ]
    assert [h.seq for h in got] == [1, 2, 3, 4, 5, 6, 7]


def _long_history(store: Store) -> list[HistoryRecord]:
    """Instance "a" with 9 history rows over 5 commits (and claims in between, which move the
    version on without history), and a neighbour "b" whose rows must never show up."""
    insert(store, inst("a"), history=[hist("a", "started"), hist("a", "step", "s1", at=at(1))])
    # "b" changed last, so that each claim of one takes "a" (claims take the oldest first)
    b = inst("b", updated_at=at(20))
    insert(store, b, history=[hist("b", "started"), hist("b", "step", "b1")])
    [row] = store.claim("w", at(0), at(30), 1)
    v = update(store, row, row.version, history=[hist("a", "step", "s2", at=at(2))])
    v = update(store, row, v, history=[hist("a", "event", f"E{i}", at=at(3)) for i in range(3)])
    store.release("a", "w", v)
    [row] = store.claim("w", at(1), at(30), 1)
    v = update(store, row, row.version, timers=[timer("a", at(9))],
               history=[hist("a", "step", "s3", at=at(4))])  # fmt: skip
    update(store, row, v, history=[hist("a", "timer", "T", at=at(5)), hist("a", "finished")])
    return store.history("a")


def test_history_rows_carry_their_commit_version_and_place(store: Store) -> None:
    full = _long_history(store)
    assert [h.seq for h in full] == list(range(1, 10))
    places = [(h.version, h.idx) for h in full]
    assert places == sorted(places) and len(set(places)) == 9
    assert places[:2] == [(1, 1), (1, 2)]  # the insert's commit
    versions = [v for v, _ in places]
    assert versions[3:6] == [versions[3]] * 3  # one commit of three rows, in order
    assert [i for _, i in places[3:6]] == [1, 2, 3]
    assert [(h.kind, h.name) for h in store.history("b")] == [("started", ""), ("step", "b1")]


@pytest.mark.parametrize("newest_first", [False, True], ids=["oldest-first", "newest-first"])
@pytest.mark.parametrize("limit", [1, 2, 4, 8, 9, 10])
def test_history_pages_from_a_place_in_either_order(
    store: Store, limit: int, newest_first: bool
) -> None:
    full = _long_history(store)
    want = full[::-1] if newest_first else full
    pages: list[list[HistoryRecord]] = []
    after: tuple[int, int, int] | None = None
    while True:
        page = store.history("a", limit=limit, after=after, newest_first=newest_first)
        assert len(page) <= limit
        if not page:
            break
        pages.append(page)
        after = (page[-1].seq, page[-1].version, page[-1].idx)
    # every row once, in order, each with its own seq, version and idx
    assert [h for p in pages for h in p] == want
    assert len(pages) == -(-9 // limit)
    assert store.history("a", limit=limit, newest_first=newest_first) == want[:limit]


def test_history_without_limit_from_a_place_and_of_an_unknown_instance(store: Store) -> None:
    full = _long_history(store)
    third = (full[2].seq, full[2].version, full[2].idx)
    assert store.history("a", after=third) == full[3:]
    assert store.history("a", after=third, newest_first=True) == full[:2][::-1]
    assert store.history("a", newest_first=True) == full[::-1]
    last = (full[-1].seq, full[-1].version, full[-1].idx)
    assert store.history("a", after=last) == []
    first = (1, full[0].version, full[0].idx)
    assert store.history("a", after=first, newest_first=True) == []
    for kw in ({}, {"limit": 3}, {"newest_first": True}, {"after": third, "limit": 2}):
        assert store.history("ghost", **kw) == []


def test_history_pages_stay_right_while_rows_are_appended(store: Store) -> None:
    insert(store, inst("a"), history=[hist("a", "started"), hist("a", "step", "s1")])
    oldest = store.history("a", limit=2)
    newest = store.history("a", limit=1, newest_first=True)
    assert [h.seq for h in newest] == [2]
    update(store, inst("a"), 1, history=[hist("a", "step", "s2"), hist("a", "step", "s3")])
    # the page after an oldest-first page goes on with the new rows, numbered on
    h = oldest[-1]
    more = store.history("a", limit=5, after=(h.seq, h.version, h.idx))
    assert [(x.seq, x.name) for x in more] == [(3, "s2"), (4, "s3")]
    # a newest-first page goes on into the older rows, not the new ones
    h = newest[-1]
    older = store.history("a", limit=5, after=(h.seq, h.version, h.idx), newest_first=True)
    assert [(x.seq, x.kind) for x in older] == [(1, "started")]
    assert [x.seq for x in store.history("a", limit=2, newest_first=True)] == [4, 3]
    assert more == store.history("a")[2:] and older == store.history("a")[:1]


def test_a_stale_commit_with_only_history_writes_nothing(store: Store) -> None:
    insert(store, inst("a"), history=[hist("a", "started")])
    update(store, inst("a"), 1, history=[hist("a", "step", "s1")])
    before = snapshot(store, "a")
    for expected in (0, 1, 3):
        with pytest.raises(ConflictError):
            update(store, inst("a", status="finished"), expected, history=[hist("a", "lost")])
        with pytest.raises(ConflictError):
            update(store, inst("a", status="finished"), expected)
    assert snapshot(store, "a") == before
    with pytest.raises(ConflictError):
        update(store, inst("ghost"), 1, history=[hist("ghost", "lost"), hist("ghost", "x")])
    assert store.history("ghost") == []
    assert store.get("ghost") is None


JSON_SCALARS = [
    None,
    "null",
    "1",
    "1.0",
    "0.1",
    "-0.0",
    "1e-07",
    "123456789012345678901234567890",
    '"x"',
    '"1.0"',
    '""',
    "true",
    '"ünïcødé ✓ 𝄞"',
    '{"b": [1, 2.0, {"c": null}], "a": "1"}',
    "[]",
]


@pytest.mark.parametrize("how", ["insert", "update", "update+timers", "update+notify"])
def test_history_input_and_output_round_trip_exactly(store: Store, how: str) -> None:
    # Each kind of commit may take its own path (PostgreSQL writes a plain checkpoint in one
    # statement): every path keeps the values exactly.
    rows = [
        hist("a", "event", f"E{i}", thread="t-1", input=v, output=w, at=at(i / 1000))
        for i, (v, w) in enumerate(zip(JSON_SCALARS, reversed(JSON_SCALARS), strict=True))
    ]
    rows.append(hist("a", "failed", "ünï", thread="θ", error="Traceback ✗\n  line 1"))
    rows.append(hist("a", "event", "", thread="", at=datetime(2030, 1, 1, tzinfo=UTC)))
    if how == "insert":
        insert(store, inst("a"), history=rows)
    else:
        insert(store, inst("a"))
        extra: dict[str, Any] = {
            "update": {},
            "update+timers": {"timers": [timer("a", at(5))]},
            "update+notify": {"notify": True},
        }[how]
        update(store, inst("a"), 1, history=rows, **extra)
    got = store.history("a")
    assert unseq(got) == rows
    for h, want in zip(got, rows, strict=True):
        assert type(h.input) is type(want.input)
        assert type(h.output) is type(want.output)
        assert is_utc(h.at) and h.at == want.at


# -- idempotency keys --------------------------------------------------------------------------


def test_key_is_recorded_with_the_commit(store: Store) -> None:
    k = key("a", "req-1", output='"1.0"')
    insert(store, inst("a"), key=k)
    assert store.get_key("a", "req-1") == k
    got = store.get_key("a", "req-1")
    assert got is not None and is_utc(got.at) and got.output == '"1.0"'
    assert store.get_key("a", "req-2") is None
    assert store.get_key("b", "req-1") is None
    k2 = key("a", "req-2", output="null")
    update(store, inst("a"), 1, key=k2)
    assert store.get_key("a", "req-2") == k2
    assert store.get_key("a", "req-1") == k


@pytest.mark.parametrize("output", JSON_SCALARS[1:])
def test_key_output_round_trips_exactly(store: Store, output: str) -> None:
    k = KeyRecord("a", "κ-1", "sha256:abc", output, at(0.5))
    insert(store, inst("a"), key=k)
    assert store.get_key("a", "κ-1") == k


def test_a_repeated_key_conflicts_and_writes_nothing(store: Store) -> None:
    insert(store, inst("a"), timers=[timer("a", at(10))], history=[hist("a", "started")])
    update(store, inst("a"), 1, key=key("a", "k", output='"first"'))
    before = snapshot(store, "a", ["k"])
    with pytest.raises(ConflictError) as info:
        update(
            store,
            inst("a", status="finished", data='{"lost": 1}'),
            2,  # the right version: only the key is in the way
            timers=[timer("a", at(99))],
            history=[hist("a", "event", "again")],
            key=key("a", "k", output='"second"'),
        )
    assert info.value.workflow_id == "a"
    assert snapshot(store, "a", ["k"]) == before
    assert store.get_key("a", "k") == key("a", "k", output='"first"')
    # The same key on another instance is another key.
    insert(store, inst("b"), key=key("b", "k"))
    assert store.get_key("b", "k") == key("b", "k")


# -- values round-trip -------------------------------------------------------------------------


JSON_DOCS = [
    "{}",
    '{"a":1}',
    '{"z": 1, "a": 2, "m": {"y": [], "b": {}}}',
    '{"name": "Zoë ☕ 日本語 𝄞 \\u00e9", "nested": {"l": [1, 2.5, {"x": null}], "t": [true]}}',
    '{"big": 123456789012345678901234567890, "neg": -9223372036854775809}',
    '{"i64": 9223372036854775807, "u64": 18446744073709551615, "e": 1E+2}',
    '{"f1": 1.0, "f2": 0.1, "f3": 1e-07, "f4": 1.5e+300, "f5": -0.0}',
    '{"s": "1.0", "t": "0.1", "n": "123", "e": "", "nl": "null", "b": "true"}',
    '{"q": "he said \\"hi\\"\\n\\ttab \\\\ back / \\/"}',
    '{\n  "pretty": [\n    1,\n    2\n  ]\n}',
]


@pytest.mark.parametrize("doc", JSON_DOCS)
def test_state_and_data_round_trip_exactly(store: Store, doc: str) -> None:
    row = inst("a", state=doc, data=doc)
    insert(store, row)
    got = store.get("a")
    assert got is not None
    assert got.state == doc and got.data == doc
    assert type(got.state) is str and type(got.data) is str
    update(store, inst("a", state=doc, data=doc, status="waiting"), 1)
    got = store.get("a")
    assert got is not None and (got.state, got.data) == (doc, doc)


def test_times_round_trip_as_aware_utc_with_microseconds(store: Store) -> None:
    row = inst(
        "a",
        created_at=datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC),
        updated_at=datetime(2026, 1, 2, 3, 4, 5, 678902, tzinfo=UTC),
        lease_owner="w",
        lease_expires=datetime(2026, 1, 2, 3, 5, 0, 1, tzinfo=UTC),
        next_attempt_at=datetime(2026, 1, 2, 3, 6, 0, 999999, tzinfo=UTC),
    )
    insert(store, row)
    got = store.get("a")
    assert got == attrs.evolve(row, version=1)
    assert got is not None
    for t in (got.created_at, got.updated_at, got.lease_expires, got.next_attempt_at):
        assert is_utc(t)
    assert got.created_at.microsecond == 678901
    assert got.updated_at.microsecond == 678902
    assert got.lease_expires is not None and got.lease_expires.microsecond == 1


def test_times_in_another_zone_are_the_same_instant(store: Store) -> None:
    minus5 = timezone(timedelta(hours=-5))
    created = datetime(2026, 1, 1, 23, 30, 0, 5, tzinfo=minus5)
    insert(store, inst("a", created_at=created))
    got = store.get("a")
    assert got is not None and got.created_at == created
    assert got.created_at.astimezone(UTC) == datetime(2026, 1, 2, 4, 30, 0, 5, tzinfo=UTC)


def test_get_returns_a_copy(store: Store) -> None:
    insert(store, inst("a"))
    got = store.get("a")
    assert got is not None
    got.status = "finished"
    got.version = 99
    again = store.get("a")
    assert again is not None and (again.status, again.version) == ("running", 1)


# -- list_instances ----------------------------------------------------------------------------


def _listing_rows(store: Store) -> list[InstanceRecord]:
    """Nine rows over five instants; three share one created_at."""
    specs = [
        ("i1", "pizza", "running", 1),
        ("i2", "pizza", "waiting", 2),
        ("i3", "burger", "finished", 3),
        ("i5b", "pizza", "waiting", 5),
        ("i5a", "burger", "running", 5),
        ("i5c", "pizza", "failed", 5),
        ("i7", "pizza", "paused", 7),
        ("i8", "burger", "waiting", 8),
        ("i9", "pizza", "cancelled", 9.000001),
    ]
    rows = []
    for id, wf, status, s in specs:
        row = inst(id, workflow=wf, status=status, created_at=at(s), updated_at=at(100 - s))
        insert(store, row)
        rows.append(attrs.evolve(row, version=1))
    return rows


def _newest_first(rows: Sequence[InstanceRecord]) -> list[InstanceRecord]:
    return sorted(rows, key=lambda r: (r.created_at, r.id), reverse=True)


def test_list_instances_newest_first(store: Store) -> None:
    assert store.list_instances() == []
    rows = _listing_rows(store)
    got = store.list_instances()
    assert got == _newest_first(rows)
    assert [r.id for r in got] == ["i9", "i8", "i7", "i5c", "i5b", "i5a", "i3", "i2", "i1"]


def test_list_instances_filters(store: Store) -> None:
    rows = _listing_rows(store)
    ids = lambda rs: [r.id for r in rs]  # noqa: E731
    pizza = [r for r in _newest_first(rows) if r.workflow == "pizza"]
    assert store.list_instances(workflow="pizza") == pizza
    assert store.list_instances(workflow="nope") == []
    assert ids(store.list_instances(status=["waiting"])) == ["i8", "i5b", "i2"]
    assert ids(store.list_instances(status=("running", "paused"))) == ["i7", "i5a", "i1"]
    assert ids(store.list_instances(status=["waiting"], workflow="pizza")) == ["i5b", "i2"]
    assert ids(store.list_instances(status=["nope"])) == []
    assert store.list_instances(status=[]) == []
    assert store.list_instances(status=[], workflow="pizza") == []


def test_list_instances_limit(store: Store) -> None:
    rows = _newest_first(_listing_rows(store))
    assert store.list_instances(limit=3) == rows[:3]
    assert store.list_instances(limit=1) == rows[:1]
    assert store.list_instances(limit=100) == rows
    assert store.list_instances(limit=0) == []
    assert len(store.list_instances()) == len(rows)  # default limit 50 > 9


def _walk(store: Store, page: int, **filters: Any) -> list[list[InstanceRecord]]:
    pages: list[list[InstanceRecord]] = []
    after = None
    while True:
        got = store.list_instances(limit=page, after=after, **filters)
        assert len(got) <= page
        if not got:
            return pages
        pages.append(got)
        after = (got[-1].created_at, got[-1].id)
        assert len(pages) < 50, "pagination does not end"


@pytest.mark.parametrize("page", [1, 2, 3, 4, 9, 10])
def test_list_instances_keyset_pagination_walks_everything_once(store: Store, page: int) -> None:
    rows = _newest_first(_listing_rows(store))
    pages = _walk(store, page)
    flat = [r for p in pages for r in p]
    assert flat == rows  # no gaps, no repeats, same order
    assert all(len(p) == page for p in pages[:-1])
    pizza = _walk(store, page, workflow="pizza")
    assert [r for p in pizza for r in p] == [r for r in rows if r.workflow == "pizza"]
    live = _walk(store, page, status=["waiting", "running"])
    assert [r.id for p in live for r in p] == ["i8", "i5b", "i5a", "i2", "i1"]


def test_list_instances_after_a_row_sharing_its_created_at(store: Store) -> None:
    _listing_rows(store)
    ids = lambda rs: [r.id for r in rs]  # noqa: E731
    assert ids(store.list_instances(after=(at(5), "i5c"))) == ["i5b", "i5a", "i3", "i2", "i1"]
    assert ids(store.list_instances(after=(at(5), "i5b"))) == ["i5a", "i3", "i2", "i1"]
    assert ids(store.list_instances(after=(at(5), "i5a"))) == ["i3", "i2", "i1"]
    # An id that is not stored is a position all the same.
    assert ids(store.list_instances(after=(at(5), "i5bb"))) == ["i5b", "i5a", "i3", "i2", "i1"]
    assert ids(store.list_instances(after=(at(5), "zzz"), limit=2)) == ["i5c", "i5b"]
    # A microsecond later than i9 includes i9; its own instant and id excludes it.
    assert ids(store.list_instances(after=(at(9.000002), ""), limit=1)) == ["i9"]
    assert ids(store.list_instances(after=(at(9.000001), "i9"), limit=1)) == ["i8"]
    assert store.list_instances(after=(at(1), "i1")) == []
    assert store.list_instances(after=(at(0), "zzz")) == []


def _search_rows(store: Store) -> list[InstanceRecord]:
    """Ids to search in: cases, LIKE's wildcards and escape, non-ASCII; newest last."""
    specs = [
        ("order-1", "pizza", "waiting"),
        ("Order-2", "pizza", "waiting"),
        ("order-10", "burger", "finished"),
        ("shop-order-3", "pizza", "failed"),
        ("shop-7", "pizza", "waiting"),
        ("a%b", "pizza", "running"),
        ("axb", "pizza", "running"),
        ("a_b", "burger", "waiting"),
        ("abb", "pizza", "waiting"),
        ("a\\b", "pizza", "waiting"),
        ("café-1", "pizza", "waiting"),
        ("CAFÉ-2", "burger", "waiting"),
    ]
    rows = []
    for i, (id, wf, status) in enumerate(specs):
        row = inst(id, workflow=wf, status=status, created_at=at(i))
        insert(store, row)
        rows.append(attrs.evolve(row, version=1))
    return rows


def test_list_instances_id_contains(store: Store) -> None:
    _search_rows(store)

    def ids(text: str | None, **filters: Any) -> list[str]:
        return [r.id for r in store.list_instances(id_contains=text, **filters)]

    assert ids("order") == ["shop-order-3", "order-10", "order-1"]  # newest first
    assert ids("Order") == ["Order-2"]  # case-sensitive
    assert ids("ORDER") == []
    assert ids("order-1") == ["order-10", "order-1"]
    assert ids("order-10") == ["order-10"]
    assert ids("shop-") == ["shop-7", "shop-order-3"]
    assert ids("-3") == ["shop-order-3"]
    assert ids("s") == ["shop-7", "shop-order-3"]  # anywhere in the id
    assert ids("café-1") == ["café-1"]
    assert ids("é") == ["café-1"] and ids("É") == ["CAFÉ-2"]
    assert ids("CAF") == ["CAFÉ-2"]
    assert ids("nope") == [] and ids("order-1-") == []
    everything = ids(None)
    assert len(everything) == 12
    assert ids("") == everything  # an empty text filters nothing


def test_list_instances_id_contains_takes_wildcards_literally(store: Store) -> None:
    _search_rows(store)

    def ids(text: str) -> list[str]:
        return [r.id for r in store.list_instances(id_contains=text)]

    assert ids("%") == ["a%b"]
    assert ids("_") == ["a_b"]
    assert ids("a%b") == ["a%b"]
    assert ids("a_b") == ["a_b"]
    assert ids("\\") == ["a\\b"]
    assert ids("a\\b") == ["a\\b"]
    assert ids("%%") == [] and ids("__") == [] and ids("a%") == ["a%b"]
    assert ids("[a]") == [] and ids("*") == [] and ids(".") == [] and ids("'") == []


def test_list_instances_id_contains_with_filters_and_pages(store: Store) -> None:
    rows = _newest_first(_search_rows(store))

    def ids(rs: Sequence[InstanceRecord]) -> list[str]:
        return [r.id for r in rs]

    assert ids(store.list_instances(id_contains="order", workflow="pizza")) == [
        "shop-order-3",
        "order-1",
    ]
    assert ids(store.list_instances(id_contains="order", workflow="burger")) == ["order-10"]
    assert ids(store.list_instances(id_contains="order", status=["waiting"])) == ["order-1"]
    assert ids(store.list_instances(id_contains="a", status=["waiting", "running"])) == [
        "café-1", "a\\b", "abb", "a_b", "axb", "a%b",
    ]  # fmt: skip
    assert ids(
        store.list_instances(id_contains="a", status=["waiting"], workflow="pizza", limit=2)
    ) == ["café-1", "a\\b"]
    assert store.list_instances(id_contains="order", status=[]) == []
    assert store.list_instances(id_contains="order", workflow="nope") == []
    assert store.list_instances(id_contains="order", limit=0) == []
    full = [r for r in rows if "a" in r.id]
    assert store.list_instances(id_contains="a") == full  # whole records, in order
    for page in (1, 2, 3, 5):
        walked = _walk(store, page, id_contains="a")
        assert [r for p in walked for r in p] == full
        assert all(len(p) == page for p in walked[:-1])
        pizza = _walk(store, page, id_contains="b", workflow="pizza", status=["waiting"])
        assert [r.id for p in pizza for r in p] == ["a\\b", "abb"]
    # the position of a row the search would not match is a position all the same
    after = (at(5), "a%b")
    assert ids(store.list_instances(id_contains="order", after=after)) == [
        "shop-order-3",
        "order-10",
        "order-1",
    ]
    assert ids(store.list_instances(id_contains="order", after=(at(2), "order-10"))) == ["order-1"]


def test_list_instances_after_in_another_zone(store: Store) -> None:
    _listing_rows(store)
    plus9 = timezone(timedelta(hours=9))
    after = (at(5).astimezone(plus9), "i5b")
    assert [r.id for r in store.list_instances(after=after)] == ["i5a", "i3", "i2", "i1"]


# -- claim -------------------------------------------------------------------------------------


def test_claim_takes_only_runnable_rows(store: Store) -> None:
    now = at(100)
    runnable = {"free", "expired", "due-now", "due-before", "released"}
    rows = [
        inst("free"),
        inst("expired", lease_owner="dead", lease_expires=now - timedelta(microseconds=1)),
        inst("due-now", attempts=1, next_attempt_at=now),
        inst("due-before", attempts=2, next_attempt_at=at(50)),
        inst("released", lease_owner=None, lease_expires=None, attempts=0),
        inst("leased", lease_owner="other", lease_expires=at(200)),
        inst("lease-ends-now", lease_owner="other", lease_expires=now),
        inst("retry-later", attempts=1, next_attempt_at=now + timedelta(microseconds=1)),
        inst("retry-much-later", attempts=1, next_attempt_at=at(1000)),
        *(inst(s, status=s) for s in ("waiting", "paused", "cancelled", "finished", "failed")),
        inst("waiting-due", status="waiting", next_attempt_at=at(1)),
    ]
    for r in rows:
        insert(store, r)
    claimed = store.claim("w1", now, at(130), 100)
    assert {r.id for r in claimed} == runnable
    for r in claimed:
        assert (r.lease_owner, r.lease_expires, r.version) == ("w1", at(130), 2)
        assert is_utc(r.lease_expires)
        assert store.get(r.id) == r  # returned as they are after the claim
        orig = next(o for o in rows if o.id == r.id)
        assert attrs.evolve(r, lease_owner=None, lease_expires=None, version=0) == attrs.evolve(
            orig, lease_owner=None, lease_expires=None, version=0
        )
    for o in rows:
        if o.id not in runnable:
            assert store.get(o.id) == attrs.evolve(o, version=1)
    assert store.claim("w2", now, at(130), 100) == []


def test_claim_lease_holds_until_it_expires(store: Store) -> None:
    for i in range(3):
        insert(store, inst(f"r{i}"))
    first = store.claim("w1", at(0), at(30), 10)
    assert sorted(r.id for r in first) == ["r0", "r1", "r2"]
    assert store.claim("w2", at(10), at(40), 10) == []
    assert store.claim("w1", at(29), at(40), 10) == []  # not even the owner takes it again
    assert store.claim("w2", at(30), at(40), 10) == []  # expires *after* until
    again = store.claim("w2", at(30.5), at(60), 10)
    assert sorted(r.id for r in again) == ["r0", "r1", "r2"]
    for r in again:
        assert (r.lease_owner, r.lease_expires, r.version) == ("w2", at(60), 3)


def test_claim_respects_limit(store: Store) -> None:
    for i in range(7):
        insert(store, inst(f"r{i}"))
    seen: list[str] = []
    assert store.claim("w", at(0), at(30), 0) == []
    for want in (3, 3, 1, 0):
        got = store.claim("w", at(0), at(30), 3)
        assert len(got) == want
        seen += [r.id for r in got]
    assert sorted(seen) == [f"r{i}" for i in range(7)]
    assert len(set(seen)) == 7


def test_claim_makes_an_earlier_read_stale(store: Store) -> None:
    insert(store, inst("a"))
    [claimed] = store.claim("w", at(0), at(30), 1)
    assert claimed.version == 2
    with pytest.raises(ConflictError):
        update(store, inst("a", status="finished"), 1)
    assert update(store, attrs.evolve(claimed, status="waiting"), 2) == 3


def test_claim_does_not_take_a_retry_due_later(store: Store) -> None:
    insert(store, inst("a", attempts=1, next_attempt_at=at(60)))
    assert store.claim("w", at(59.999999), at(90), 10) == []
    [got] = store.claim("w", at(60), at(90), 10)
    assert got.id == "a" and got.attempts == 1 and got.next_attempt_at == at(60)


# -- claim_timers ------------------------------------------------------------------------------


def test_claim_timers_takes_due_timers_of_live_free_instances(store: Store) -> None:
    now = at(100)
    insert(store, inst("wait", status="waiting"), timers=[timer("wait", at(90))])
    insert(store, inst("run", status="running"), timers=[timer("run", now)])  # due exactly now
    insert(store, inst("later", status="waiting"), timers=[timer("later", at(100.000001))])
    insert(
        store,
        inst("leased", status="waiting", lease_owner="x", lease_expires=at(150)),
        timers=[timer("leased", at(1))],
    )
    insert(
        store,
        inst("expired", status="waiting", lease_owner="x", lease_expires=at(99)),
        timers=[timer("expired", at(2))],
    )
    for s in ("paused", "cancelled", "finished", "failed"):
        insert(store, inst(s, status=s), timers=[timer(s, at(0))])
    insert(store, inst("none", status="waiting"))
    got = store.claim_timers("w1", now, at(130), 100)
    by_id = {row.id: (t, row) for t, row in got}
    assert sorted(by_id) == ["expired", "run", "wait"]
    assert len(got) == 3
    assert by_id["wait"][0] == timer("wait", at(90))
    assert by_id["run"][0] == timer("run", now)
    assert by_id["expired"][0] == timer("expired", at(2))
    for t, row in got:
        assert t.instance_id == row.id
        assert (row.lease_owner, row.lease_expires, row.version) == ("w1", at(130), 2)
        assert store.get(row.id) == row
    # Claiming a timer leaves the timer in place (the worker deletes or replaces it).
    assert len(store.timers()) == 9
    for s in ("paused", "cancelled", "finished", "failed", "later", "leased", "none"):
        got_row = store.get(s)
        assert got_row is not None and got_row.version == 1
    assert store.claim_timers("w2", now, at(130), 100) == []


def test_claim_timers_takes_one_timer_per_instance_the_earliest(store: Store) -> None:
    ts = [
        timer("a", at(30), name="T3"),
        timer("a", at(10), name="T1"),
        timer("a", at(20), name="T2", thread="t2"),
        timer("a", at(500), name="future"),
    ]
    insert(store, inst("a", status="waiting"), timers=ts)
    [(t, row)] = store.claim_timers("w", at(100), at(130), 10)
    assert t == timer("a", at(10), name="T1")
    # Held by w: no timer of it is claimed again while the lease lasts.
    assert store.claim_timers("w2", at(101), at(130), 10) == []
    # The worker deals with the timer and lets go; the next one is due.
    store.delete_timer(t)
    assert store.release("a", "w", row.version) is True
    [(t2, row2)] = store.claim_timers("w", at(102), at(130), 10)
    assert t2 == timer("a", at(20), name="T2", thread="t2")
    assert row2.version == row.version + 1
    # After the lease expires, the same timer can be claimed again.
    [(t3, row3)] = store.claim_timers("w3", at(131), at(160), 10)
    assert t3 == t2 and row3.lease_owner == "w3" and row3.version == row2.version + 1


def test_claim_timers_respects_limit(store: Store) -> None:
    for i in range(7):
        insert(store, inst(f"i{i}", status="waiting"), timers=[timer(f"i{i}", at(i))])
    seen: list[str] = []
    for want in (3, 3, 1, 0):
        got = store.claim_timers("w", at(100), at(130), 3)
        assert len(got) == want
        seen += [row.id for _, row in got]
    assert sorted(seen) == [f"i{i}" for i in range(7)]


def test_claim_timers_is_not_starved_by_due_timers_it_cannot_take(
    store: Store,
) -> None:
    # Paused instances keep their timers (they fire after unpause); earlier due timers that
    # cannot be taken must not hide a due timer that can.
    for i in range(5):
        insert(store, inst(f"p{i}", status="paused"), timers=[timer(f"p{i}", at(i))])
    insert(store, inst("w", status="waiting"), timers=[timer("w", at(50))])
    got = store.claim_timers("worker", at(100), at(130), 1)
    assert [(t.instance_id, row.id) for t, row in got] == [("w", "w")]


def test_claim_timers_is_not_starved_by_many_timers_of_a_leased_instance(
    store: Store,
) -> None:
    many = [timer("busy", at(i), name=f"T{i}") for i in range(8)]
    insert(
        store, inst("busy", status="waiting", lease_owner="x", lease_expires=at(500)), timers=many
    )
    insert(store, inst("free", status="waiting"), timers=[timer("free", at(50))])
    got = store.claim_timers("worker", at(100), at(130), 1)
    assert [row.id for _, row in got] == ["free"]


# -- claiming only some workflows --------------------------------------------------------------

# Names a statement must carry as data: quotes, SQL wildcards, JSON and array syntax, non-ASCII.
ODD_NAMES = ["o'clock", 'say "hi"', "100%_done", "[1,2]", "{a,b}", "naïve ✓", "a\\b"]


def test_claim_takes_only_the_workflows_named(store: Store) -> None:
    # Instances of other workflows come first in claim order (older): they must not use up
    # the limit, or a worker of one application would starve next to another's backlog.
    for i in range(5):
        insert(store, inst(f"other{i}", workflow="other", created_at=at(i)))
    for k, name in enumerate(["mine", *ODD_NAMES]):
        insert(store, inst(f"i{k}", workflow=name, created_at=at(10)))
    assert store.claim("w", at(20), at(50), 10, workflows=[]) == []
    got = store.claim("w", at(20), at(50), 2, workflows=["mine", "absent"])
    assert [r.id for r in got] == ["i0"]
    odd = store.claim("w", at(20), at(50), 20, workflows=ODD_NAMES)
    assert sorted(r.workflow for r in odd) == sorted(ODD_NAMES)
    assert store.claim("w", at(20), at(50), 20, workflows=["mine", *ODD_NAMES]) == []
    rest = store.claim("w", at(20), at(50), 20, workflows=None)
    assert sorted(r.id for r in rest) == [f"other{i}" for i in range(5)]


def test_claim_timers_takes_only_the_workflows_named(store: Store) -> None:
    for i in range(5):
        insert(
            store, inst(f"o{i}", status="waiting", workflow="other"), timers=[timer(f"o{i}", at(i))]
        )
    for k, name in enumerate(["mine", *ODD_NAMES]):
        insert(
            store, inst(f"i{k}", status="waiting", workflow=name), timers=[timer(f"i{k}", at(10))]
        )
    assert store.claim_timers("w", at(20), at(50), 10, workflows=[]) == []
    got = store.claim_timers("w", at(20), at(50), 2, workflows=("mine",))
    assert [(t.instance_id, r.id) for t, r in got] == [("i0", "i0")]
    odd = store.claim_timers("w", at(20), at(50), 20, workflows=ODD_NAMES)
    assert sorted(r.workflow for _, r in odd) == sorted(ODD_NAMES)
    rest = store.claim_timers("w", at(20), at(50), 20)
    assert sorted(r.id for _, r in rest) == [f"o{i}" for i in range(5)]


# -- counts ------------------------------------------------------------------------------------


def test_counts_by_workflow_and_status_sorted(store: Store) -> None:
    assert store.counts(at(100), at(40)) == []
    for r in [
        inst("a1", workflow="a"), inst("a2", workflow="a"),
        inst("a3", workflow="a", status="waiting"),
        inst("b1", workflow="b", status="finished"), inst("b2", workflow="b", status="failed"),
    ]:  # fmt: skip
        insert(store, r)
    got = store.counts(at(100), at(-1))  # nothing is late before the rows were written
    assert got == [
        StatusCount("a", "running", 2, 0), StatusCount("a", "waiting", 1, 0),
        StatusCount("b", "failed", 1, 0), StatusCount("b", "finished", 1, 0),
    ]  # fmt: skip


def test_counts_late_are_the_free_instances_with_work_due_before_the_time(store: Store) -> None:
    now, before = at(100), at(40)
    late = {"queued", "retry-due", "expired", "timer-due", "timer-due-running"}
    rows = [
        inst("queued", updated_at=at(10)),
        inst("queued-recently", updated_at=at(60)),
        inst("retry-due", updated_at=at(60), attempts=1, next_attempt_at=at(30)),
        inst("retry-not-yet", updated_at=at(10), attempts=1, next_attempt_at=at(50)),
        inst("expired", updated_at=at(10), lease_owner="dead", lease_expires=at(99)),
        inst("leased", updated_at=at(10), lease_owner="w", lease_expires=at(200)),
        inst("lease-ends-now", updated_at=at(10), lease_owner="w", lease_expires=now),
        inst("timer-due", status="waiting", updated_at=at(10)),
        inst("timer-due-running", updated_at=at(60)),
        inst("timer-later", status="waiting", updated_at=at(10)),
        inst("timer-leased", status="waiting", lease_owner="w", lease_expires=at(200)),
        inst("waiting", status="waiting", updated_at=at(10)),
        inst("paused-timer", status="paused", updated_at=at(10)),
        inst("failed", status="failed", updated_at=at(10), next_attempt_at=at(1)),
    ]
    timers = {
        "timer-due": at(40), "timer-due-running": at(20), "timer-later": at(41),
        "timer-leased": at(1), "paused-timer": at(1),
    }  # fmt: skip
    for r in rows:
        insert(store, r, timers=[timer(r.id, timers[r.id])] if r.id in timers else None)
    got = {(c.workflow, c.status): (c.count, c.late) for c in store.counts(now, before)}
    running = sum(r.status == "running" for r in rows)
    late_running = sum(r.id in late for r in rows if r.status == "running")
    assert got == {
        ("wf", "running"): (running, late_running),
        ("wf", "waiting"): (4, 1),
        ("wf", "paused"): (1, 0),
        ("wf", "failed"): (1, 0),
    }
    assert late_running == 4


# -- ping --------------------------------------------------------------------------------------


def test_ping_answers_and_changes_nothing(store: Store) -> None:
    insert(store, inst("a"))
    before = snapshot(store, "a")
    for _ in range(3):
        assert store.ping() is None
    assert snapshot(store, "a") == before


# -- release -----------------------------------------------------------------------------------


def test_release_only_by_the_owner_at_the_current_version(store: Store) -> None:
    insert(store, inst("a"))
    [row] = store.claim("w1", at(0), at(30), 1)
    held = store.get("a")
    assert store.release("a", "w2", row.version) is False
    assert store.release("a", "w1", row.version - 1) is False
    assert store.release("a", "w1", row.version + 1) is False
    assert store.release("nope", "w1", row.version) is False
    assert store.get("a") == held
    assert store.release("a", "w1", row.version) is True
    got = store.get("a")
    assert got is not None
    assert (got.lease_owner, got.lease_expires) == (None, None)
    assert got.version == row.version
    assert attrs.evolve(got, lease_owner="w1", lease_expires=at(30)) == held
    # Released: claimable at once, long before the lease would have expired.
    [again] = store.claim("w2", at(1), at(31), 1)
    assert again.lease_owner == "w2"
    assert store.release("a", "w1", again.version) is False


def test_release_after_a_commit_moved_the_version_on(store: Store) -> None:
    insert(store, inst("a"))
    [row] = store.claim("w1", at(0), at(30), 1)
    update(store, attrs.evolve(row, status="waiting"), row.version)  # keeps the lease
    assert store.release("a", "w1", row.version) is False
    got = store.get("a")
    assert got is not None and got.lease_owner == "w1"
    assert store.release("a", "w1", row.version + 1) is True


def test_release_of_an_unleased_row(store: Store) -> None:
    insert(store, inst("a"))
    assert store.release("a", "w1", 1) is False
    got = store.get("a")
    assert got is not None and got.version == 1


# -- wait_for_work -----------------------------------------------------------------------------


@contextmanager
def _later(delay: float, fn: Callable[[], object]) -> Iterator[list[BaseException]]:
    errors: list[BaseException] = []

    def run() -> None:
        time.sleep(delay)
        try:
            fn()
        except BaseException as exc:
            errors.append(exc)

    th = threading.Thread(target=run, daemon=True)
    th.start()
    try:
        yield errors
    finally:
        th.join(10)
    assert not errors, errors


def _listen(store: Store) -> None:
    """Start listening (PostgreSQL LISTENs on its first wait); nothing is pending yet."""
    assert store.wait_for_work(0.01) is False


def test_wait_for_work_times_out_with_false(store: Store) -> None:
    insert(store, inst("a"))
    start = time.monotonic()
    assert store.wait_for_work(0.2) is False
    assert time.monotonic() - start >= 0.15


def test_wait_for_work_wakes_on_a_notify_commit(store: Store) -> None:
    insert(store, inst("a", status="waiting"))
    _listen(store)
    with _later(0.2, lambda: update(store, inst("a"), 1, notify=True)):
        start = time.monotonic()
        assert store.wait_for_work(5.0) is True
        assert time.monotonic() - start < 3.0


def test_wait_for_work_wakes_on_a_notify_insert(store: Store) -> None:
    _listen(store)
    with _later(0.2, lambda: insert(store, inst("a"), notify=True)):
        start = time.monotonic()
        assert store.wait_for_work(5.0) is True
        assert time.monotonic() - start < 3.0


def test_wait_for_work_ignores_commits_without_notify(store: Store) -> None:
    insert(store, inst("a"))
    _listen(store)
    with _later(0.05, lambda: update(store, inst("a"), 1, notify=False)):
        assert store.wait_for_work(0.4) is False
    got = store.get("a")
    assert got is not None and got.version == 2


def test_wait_for_work_ignores_a_failed_notify_commit(store: Store) -> None:
    insert(store, inst("a"))
    _listen(store)

    def conflict() -> None:
        with pytest.raises(ConflictError):
            update(store, inst("a"), 7, notify=True)

    with _later(0.05, conflict):
        assert store.wait_for_work(0.4) is False


# -- concurrency -------------------------------------------------------------------------------


def _hammer(n_threads: int, work: Callable[[str], list[str]]) -> dict[str, list[str]]:
    barrier = threading.Barrier(n_threads)
    results: dict[str, list[str]] = {}
    errors: list[BaseException] = []

    def run(owner: str) -> None:
        try:
            barrier.wait(10)
            results[owner] = work(owner)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(f"w{i}",)) for i in range(n_threads)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(50)
    assert not any(th.is_alive() for th in threads), "claimers did not finish"
    assert not errors, errors
    return results


def test_concurrent_claims_never_take_a_row_twice(store: Store) -> None:
    n, limit = 200, 5
    for i in range(n):
        insert(store, inst(f"r{i:03}", updated_at=at(i / 1000)))

    def work(owner: str) -> list[str]:
        mine: list[str] = []
        while True:
            got = store.claim(owner, at(100), at(3600), limit)
            assert len(got) <= limit
            for r in got:
                assert r.lease_owner == owner and r.version == 2
            if not got:
                return mine
            mine += [r.id for r in got]

    results = _hammer(8, work)
    claimed = [id for ids in results.values() for id in ids]
    assert len(claimed) == n, "some rows were claimed twice or not at all"
    assert sorted(claimed) == [f"r{i:03}" for i in range(n)]
    owners = {id: owner for owner, ids in results.items() for id in ids}
    for row in store.list_instances(limit=n):
        assert (row.lease_owner, row.version) == (owners[row.id], 2)
    assert store.claim("late", at(100), at(3600), n) == []


def test_concurrent_timer_claims_never_take_an_instance_twice(store: Store) -> None:
    n = 60
    for i in range(n):
        insert(store, inst(f"t{i:02}", status="waiting"), timers=[timer(f"t{i:02}", at(i))])

    def work(owner: str) -> list[str]:
        mine: list[str] = []
        deadline = time.monotonic() + 30
        while store.timers() and time.monotonic() < deadline:
            got = store.claim_timers(owner, at(100), at(3600), 3)
            assert len(got) <= 3
            for t, row in got:
                assert row.lease_owner == owner and row.version == 2
                store.delete_timer(t)  # as a worker does once the timer fired
                mine.append(row.id)
        return mine

    results = _hammer(8, work)
    claimed = [id for ids in results.values() for id in ids]
    assert sorted(claimed) == [f"t{i:02}" for i in range(n)]  # each exactly once


def test_concurrent_commits_with_the_same_version_one_wins(store: Store) -> None:
    insert(store, inst("a"))

    def work(owner: str) -> list[str]:
        try:
            update(store, inst("a", data=f'{{"by": "{owner}"}}'), 1, history=[hist("a", owner)])
        except ConflictError:
            return []
        return [owner]

    results = _hammer(8, work)
    winners = [o for ids in results.values() for o in ids]
    assert len(winners) == 1
    got = store.get("a")
    assert got is not None and got.version == 2 and got.data == f'{{"by": "{winners[0]}"}}'
    assert [h.kind for h in store.history("a")] == winners


# -- SQL stores only ---------------------------------------------------------------------------


def _sql_store(url: str, **kw: Any) -> Any:
    from gorch.store.sql import SQLStore

    return SQLStore(url, **kw)


@contextmanager
def _raw(url: str) -> Iterator[Any]:
    """A plain DB-API connection (sqlite3 or psycopg), committing on exit."""
    if url.startswith("sqlite"):
        with closing(sqlite3.connect(url.removeprefix("sqlite:///"))) as conn:
            yield conn
            conn.commit()
    else:
        import psycopg

        with psycopg.connect(url) as conn:
            yield conn


def _set_schema_version(url: str, value: str) -> None:
    with _raw(url) as conn:
        sql = "UPDATE gorch_meta SET value = ? WHERE key = 'schema_version'"
        conn.execute(sql if url.startswith("sqlite") else sql.replace("?", "%s"), (value,))


@pytest.mark.parametrize("store_kind", SQL_KINDS)
def test_schema_version_and_reopening(sql_url: str) -> None:
    from gorch.store.sql import SCHEMA_VERSION

    s = _sql_store(sql_url)
    try:
        assert s.schema_version() == SCHEMA_VERSION
        insert(s, inst("a"), timers=[timer("a", at(5))], history=[hist("a", "started")])
    finally:
        s.close()
    s = _sql_store(sql_url)
    try:
        assert s.schema_version() == SCHEMA_VERSION
        assert s.get("a") == attrs.evolve(inst("a"), version=1)
        assert s.timers("a") == [timer("a", at(5))]
        assert unseq(s.history("a")) == [hist("a", "started")]
        assert update(s, inst("a"), 1) == 2
    finally:
        s.close()


def _refuse_newer_schema(url: str) -> tuple[str, list[warnings.WarningMessage]]:
    """Open a store on a database of a newer schema; the error's message and the resource
    warnings of whatever the failed open left behind (collected here, not in a later test)."""
    from gorch.store.sql import SCHEMA_VERSION, StoreError

    _sql_store(url).close()
    _set_schema_version(url, str(SCHEMA_VERSION + 1))
    try:
        with warnings.catch_warnings(record=True) as leaks:
            warnings.simplefilter("always")
            with pytest.raises(StoreError) as info:
                _sql_store(url)
            msg = str(info.value)
            del info
            gc.collect()
    finally:  # the PostgreSQL database is shared by the session
        _set_schema_version(url, str(SCHEMA_VERSION))
    return msg, [w for w in leaks if issubclass(w.category, ResourceWarning)]


# -- many processes opening a new database ---------------------------------------------------

# Forks ``n`` children (cheap: the imports are done) that wait for the ``go`` file, then all
# open the store at once; prints one JSON line: how many failed, and their errors.
OPENER = """
import json, os, sys, time
from gorch.store import SQLStore
url, go, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
pids = []
for i in range(n):
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        while not os.path.exists(go):
            time.sleep(0.001)
        try:
            SQLStore(url).close()
            msg = ""
        except BaseException as exc:
            msg = f"{type(exc).__name__}: {exc}"[:300]
        os.write(w, msg.encode())
        os._exit(0)
    os.close(w)
    pids.append((pid, r))
time.sleep(0.3)
open(go, "w").close()
errors = []
for pid, r in pids:
    msg = os.read(r, 1000).decode()
    os.waitpid(pid, 0)
    if msg:
        errors.append(msg)
print(json.dumps(errors))
"""


def _drop_database(url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as c:
        c.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.mark.parametrize("store_kind", SQL_KINDS)
def test_processes_opening_a_new_database_at_once_all_succeed(
    store_kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    from gorch.store.sql import SCHEMA_VERSION

    # (When the tables were checked for, then created, outside one locked transaction, up to
    # 39 of 40 such processes failed with "table ... already exists", on both databases.)
    url = _fresh_url(store_kind, tmp_path, request)
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    out = subprocess.run(
        [sys.executable, "-c", OPENER, url, str(tmp_path / "go"), "30"],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.splitlines()[-1]) == []
    with _raw(url) as conn:
        rows = conn.execute("SELECT key, value FROM gorch_meta").fetchall()
    assert [tuple(r) for r in rows] == [("schema_version", str(SCHEMA_VERSION))]


@pytest.mark.parametrize("store_kind", SQL_KINDS)
def test_a_newer_schema_is_refused(sql_url: str) -> None:
    from gorch.store.sql import SCHEMA_VERSION

    msg, _ = _refuse_newer_schema(sql_url)
    assert f"schema version {SCHEMA_VERSION + 1}" in msg
    assert "newer" in msg and "upgrade gorch" in msg
    assert f"({SCHEMA_VERSION})" in msg
    s = _sql_store(sql_url)  # the database itself is fine
    try:
        assert s.schema_version() == SCHEMA_VERSION
    finally:
        s.close()


@pytest.mark.parametrize(
    "store_kind",
    [
        "sqlite",
        "postgres",
    ],
)
def test_a_refused_open_leaves_no_connection_open(sql_url: str) -> None:
    _, leaks = _refuse_newer_schema(sql_url)
    assert [str(w.message) for w in leaks] == []


# gorch_history as schema version 1 wrote it (the other tables are as they were then): the
# statements SQLAlchemy compiled for it, before actor and reason.
HISTORY_V1 = {
    "sqlite": "CREATE TABLE gorch_history (instance_id VARCHAR NOT NULL, version INTEGER NOT "
    "NULL, idx INTEGER NOT NULL, at DATETIME NOT NULL, kind VARCHAR NOT NULL, name VARCHAR NOT "
    "NULL, thread VARCHAR NOT NULL, input TEXT, output TEXT, error VARCHAR, PRIMARY KEY "
    "(instance_id, version, idx)) WITHOUT ROWID",
    "postgres": "CREATE TABLE gorch_history (instance_id VARCHAR NOT NULL, version INTEGER NOT "
    "NULL, idx INTEGER NOT NULL, at TIMESTAMP WITH TIME ZONE NOT NULL, kind VARCHAR NOT NULL, "
    "name VARCHAR NOT NULL, thread VARCHAR NOT NULL, input JSON, output JSON, error VARCHAR, "
    "PRIMARY KEY (instance_id, version, idx))",
}


def _fresh_url(store_kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """A URL of a database with nothing in it (SQLite: a new file; PostgreSQL: a new database
    on the session's server, dropped after the test)."""
    if store_kind == "sqlite":
        return f"sqlite:///{tmp_path / 'new.db'}"
    import psycopg

    pg_url = str(request.getfixturevalue("pg_url"))
    name = f"fresh_{os.getpid()}"
    with psycopg.connect(pg_url, autocommit=True) as c:
        c.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        c.execute(f"CREATE DATABASE {name}")
    request.addfinalizer(lambda: _drop_database(pg_url, name))
    return pg_url.rsplit("/", 1)[0] + f"/{name}"


@pytest.mark.parametrize("store_kind", SQL_KINDS)
def test_a_version_1_database_is_upgraded_and_keeps_its_rows(
    store_kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    from gorch.store.sql import SCHEMA_VERSION

    url = _fresh_url(store_kind, tmp_path, request)
    s = _sql_store(url)
    insert(s, inst("a"), timers=[timer("a", at(5))], history=[hist("a", "started")])
    s.close()
    p = "?" if store_kind == "sqlite" else "%s"
    # SQLite keeps times as SQLAlchemy writes them: naive UTC text.
    sqlite_time = [t.replace(tzinfo=None).isoformat(" ", "microseconds") for t in (at(0), at(1))]
    when = sqlite_time if p == "?" else [at(0), at(1)]
    with _raw(url) as conn:  # make it the database a gorch of schema 1 left behind
        conn.execute("DROP INDEX ix_gorch_instances_parent")
        conn.execute("ALTER TABLE gorch_instances DROP COLUMN at_statements")
        conn.execute("ALTER TABLE gorch_instances DROP COLUMN parent_id")
        conn.execute("ALTER TABLE gorch_instances DROP COLUMN watched")
        tables = ("gorch_changes", "gorch_feed", "gorch_watches", "gorch_messages")
        for table in (*tables, "gorch_schedules"):
            conn.execute(f"DROP TABLE {table}")
        conn.execute("DROP TABLE gorch_history")
        conn.execute(HISTORY_V1[store_kind])
        conn.execute(
            "INSERT INTO gorch_history (instance_id, version, idx, at, kind, name, thread, "
            f"input, output, error) VALUES ({p}, 1, 1, {p}, 'started', '', '', '{{}}', NULL, "
            "NULL), ('a', 1, 2, " + p + ", 'paused', '', '', NULL, NULL, NULL)",
            ("a", *when),
        )
        conn.execute("UPDATE gorch_meta SET value = '1' WHERE key = 'schema_version'")
    s = _sql_store(url)
    try:
        assert s.schema_version() == SCHEMA_VERSION == 3
        assert s.get("a") == attrs.evolve(inst("a"), version=1)
        assert s.timers("a") == [timer("a", at(5))]
        old = s.history("a")
        assert [(h.kind, h.input, h.actor, h.reason) for h in old] == [
            ("started", "{}", None, None),
            ("paused", None, None, None),
        ]
        update(s, inst("a"), 1, history=[hist("a", "unpaused", actor="ana", reason="why")])
        assert [(h.kind, h.actor, h.reason) for h in s.history("a")][-1] == (
            "unpaused", "ana", "why",
        )  # fmt: skip
    finally:
        s.close()
    s = _sql_store(url)  # opening it again changes nothing
    try:
        assert s.schema_version() == SCHEMA_VERSION
        assert len(s.history("a")) == 3
    finally:
        s.close()


@pytest.mark.parametrize(
    "url", ["mysql://x", "mysql+pymysql://u:p@h/db", "not a url", "", "oracle://scott@h/db"]
)
def test_a_bad_url_is_a_store_error(url: str) -> None:
    from gorch.store.sql import StoreError

    with pytest.raises(StoreError) as info:
        _sql_store(url)
    assert "sqlite:///" in str(info.value) and "postgresql://" in str(info.value)


@pytest.mark.parametrize("store_kind", SQL_KINDS)
def test_a_history_page_is_a_range_of_the_primary_key(sql_url: str, store_kind: str) -> None:
    # A page from a place reads from that place in the key (instance_id, version, idx): no
    # scan of the rows before it, no sort.
    from gorch.store.sql import SQLStore

    s = SQLStore(sql_url)
    try:
        for newest_first in (False, True):
            for after in (None, (40, 17, 2)):
                sql, params = s._history_query("a", 20, after, newest_first)
                with s._conn() as cur:
                    if store_kind == "sqlite":
                        cur.execute("EXPLAIN QUERY PLAN " + sql, params)
                        plan = " / ".join(str(r[-1]) for r in cur.fetchall())
                        assert "USING PRIMARY KEY (instance_id=?" in plan, plan
                        if after is not None:
                            assert "version" in plan.split("gorch_history")[-1], plan
                        assert "TEMP B-TREE" not in plan, plan
                    else:
                        # The test table is nearly empty, where any plan is cheap: rule out
                        # the others to see that the key can serve the page, in its order.
                        off = ("seqscan", "bitmapscan", "sort")
                        for what in off:
                            cur.execute(f"SET enable_{what} = off")
                        cur.execute("EXPLAIN " + sql, params)
                        plan = " / ".join(r[0] for r in cur.fetchall())
                        for what in off:
                            cur.execute(f"RESET enable_{what}")
                        assert "Index Scan" in plan and "gorch_history_pkey" in plan, plan
                        assert "Sort" not in plan, plan
                        if after is not None:
                            assert "version >=" in plan or "version <=" in plan, plan
    finally:
        s.close()


@pytest.mark.parametrize("store_kind", SQL_KINDS)
def test_state_and_data_are_json_queryable_with_sql(sql_url: str, store_kind: str) -> None:
    s = _sql_store(sql_url)
    try:
        insert(s, inst("a", data='{"status": "paid", "n": 1.0}', state='{"pc": 3}'))
        insert(s, inst("b", data='{"status": "open", "n": 2}', state='{"pc": 4}'))
        insert(s, inst("c", data='{"status": "paid", "n": 3}', state='{"pc": 5}'))
    finally:
        s.close()
    with _raw(sql_url) as conn:
        if store_kind == "sqlite":
            sql = (
                "SELECT id, json_extract(state, '$.pc') FROM gorch_instances "
                "WHERE json_extract(data, '$.status') = 'paid' ORDER BY id"
            )
        else:
            sql = (
                "SELECT id, (state->>'pc')::int FROM gorch_instances "
                "WHERE data->>'status' = 'paid' ORDER BY id"
            )
        rows = [tuple(r) for r in conn.execute(sql).fetchall()]
    assert rows == [("a", 3), ("c", 5)]


@pytest.mark.parametrize("store_kind", SQL_KINDS)
def test_history_and_keys_are_json_queryable_with_sql(sql_url: str, store_kind: str) -> None:
    s = _sql_store(sql_url)
    try:
        insert(
            s,
            inst("a"),
            history=[hist("a", "event", "Pay", input='{"amount": 12}'), hist("a", "started")],
            key=key("a", "k", output='{"receipt": "r-1"}'),
        )
    finally:
        s.close()
    with _raw(sql_url) as conn:
        if store_kind == "sqlite":
            q1 = "SELECT json_extract(input, '$.amount') FROM gorch_history WHERE name = 'Pay'"
            q2 = "SELECT json_extract(output, '$.receipt') FROM gorch_keys"
        else:
            q1 = "SELECT (input->>'amount')::int FROM gorch_history WHERE name = 'Pay'"
            q2 = "SELECT output->>'receipt' FROM gorch_keys"
        assert conn.execute(q1).fetchone()[0] == 12
        assert conn.execute(q2).fetchone()[0] == "r-1"


@pytest.mark.parametrize("store_kind", SQL_KINDS)
def test_sqlmodel_reads_parsed_json(sql_url: str) -> None:
    from sqlalchemy.engine import make_url
    from sqlmodel import Session, create_engine, select

    from gorch.store.sql import HistoryRow, InstanceRow, KeyRow, TimerRow

    s = _sql_store(sql_url)
    data = '{"status": "paid", "items": [{"name": "Zoë", "qty": 2}], "price": 1.5, "s": "1.0"}'
    try:
        insert(
            s,
            inst("a", data=data, state='{"pc": 3}', created_at=at(1)),
            timers=[timer("a", at(9))],
            history=[hist("a", "event", "E", input='"1.0"', output="1")],
            key=key("a", "k", output='{"ok": 1}'),
        )
    finally:
        s.close()
    url = make_url(sql_url)
    if url.get_backend_name() == "postgresql":
        url = url.set(drivername="postgresql+psycopg")
    engine = create_engine(url)
    try:
        with Session(engine) as session:
            [row] = session.exec(select(InstanceRow)).all()
            assert row.id == "a" and row.version == 1
            assert row.data == {
                "status": "paid",
                "items": [{"name": "Zoë", "qty": 2}],
                "price": 1.5,
                "s": "1.0",
            }
            assert row.state == {"pc": 3}
            # SQLite keeps no zone: SQLAlchemy reads the stored UTC time back naive.
            assert _utc(row.created_at) == at(1)
            [t] = session.exec(select(TimerRow)).all()
            assert (t.instance_id, t.name, _utc(t.due_at)) == ("a", "Timeout", at(9))
            [h] = session.exec(select(HistoryRow)).all()
            assert (h.input, h.output) == ("1.0", 1)
            [k] = session.exec(select(KeyRow)).all()
            assert k.output == {"ok": 1}
            paid = session.exec(select(InstanceRow.id).where(InstanceRow.workflow == "wf")).all()
            assert list(paid) == ["a"]
    finally:
        engine.dispose()


# -- rows that do not read hurt only themselves ------------------------------------------------

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# A value each database keeps in a timestamp column and Python cannot read as one: any text on
# SQLite; on PostgreSQL, infinity and years past 9999 (psycopg refuses to load them).
BAD_TIME = {"sqlite": ["'garbage'", "'2024-13-45 99:00:00'", "12345"],
            "postgres": ["'infinity'", "'-infinity'", "'10000-01-01 00:00:00+00'"]}  # fmt: skip


def _not_a_time(store_kind: str, sql_value: str) -> str:
    """What a defect says of ``sql_value``."""
    text = sql_value.strip("'")
    shown = repr(int(text)) if text.isdigit() else repr(text)
    if store_kind == "postgres":
        return f"{shown} is not a timestamp Python can hold"
    return f"{shown} is not a timestamp"


def _corrupt(url: str, sql: str) -> None:
    with _raw(url) as conn:
        conn.execute(sql)


@pytest.mark.parametrize("store_kind", SQL_KINDS)
def test_an_unreadable_time_spoils_only_its_own_row(sql_url: str, store_kind: str) -> None:
    s = _sql_store(sql_url)
    try:
        for i in range(6):
            insert(s, inst(f"good{i}", created_at=at(i)))
        bad = BAD_TIME[store_kind]
        for i, value in enumerate(bad):
            insert(s, inst(f"bad{i}", created_at=at(10 + i)), history=[hist(f"bad{i}", "started")])
            _corrupt(
                sql_url, f"UPDATE gorch_instances SET updated_at = {value} WHERE id = 'bad{i}'"
            )
            _corrupt(sql_url, f"UPDATE gorch_history SET at = {value} WHERE instance_id = 'bad{i}'")
        for i, value in enumerate(bad):
            row = s.get(f"bad{i}")
            assert row is not None
            assert row.defects == (f"updated_at: {_not_a_time(store_kind, value)}",)
            assert row.updated_at == EPOCH
            assert attrs.evolve(row, updated_at=at(10 + i), defects=()) == attrs.evolve(
                inst(f"bad{i}", created_at=at(10 + i)), version=1
            )
            # A history row's time is only informative: the epoch, without a note.
            assert [(h.kind, h.at) for h in s.history(f"bad{i}")] == [("started", EPOCH)]
        listed = s.list_instances(limit=100)
        assert sorted(r.id for r in listed) == sorted(
            [f"good{i}" for i in range(6)] + [f"bad{i}" for i in range(len(bad))]
        )
        assert {r.id for r in listed if r.defects} == {f"bad{i}" for i in range(len(bad))}
        good = [s.get(f"good{i}") for i in range(6)]
        assert all(g is not None and g.defects == () for g in good)
        # A worker's claim takes the good rows whatever the bad ones hold.
        claimed = s.claim("w", at(100), at(130), 100)
        assert {f"good{i}" for i in range(6)} <= {r.id for r in claimed}
        for r in claimed:
            assert bool(r.defects) == r.id.startswith("bad")
    finally:
        s.close()


@pytest.mark.parametrize("store_kind", SQL_KINDS)
def test_each_unreadable_value_is_noted_with_its_stand_in(sql_url: str, store_kind: str) -> None:
    s = _sql_store(sql_url)
    try:
        insert(s, inst("x", lease_owner="w", lease_expires=at(5), next_attempt_at=at(6)))
        v = BAD_TIME[store_kind][0]
        cols = ["created_at", "lease_expires", "next_attempt_at"]
        _corrupt(sql_url, "UPDATE gorch_instances SET " + ", ".join(f"{c} = {v}" for c in cols))
        if store_kind == "sqlite":  # an integer column holds text only on SQLite
            _corrupt(sql_url, "UPDATE gorch_instances SET version = 'v1', attempts = 'many'")
        row = s.get("x")
        assert row is not None
        created, lease, due = (f"{c}: {_not_a_time(store_kind, v)}" for c in cols)
        if store_kind == "sqlite":
            v1, many = "version: 'v1' is not an integer", "attempts: 'many' is not an integer"
            expected = [created, v1, lease, many, due]  # in the order of the columns
        else:
            expected = [created, lease, due]
        assert row.defects == tuple(expected)
        assert (row.created_at, row.lease_expires, row.next_attempt_at) == (EPOCH, None, None)
        assert (row.id, row.workflow, row.state, row.data) == (
            "x",
            "wf",
            inst("x").state,
            '{"n": 0}',
        )
        assert row.updated_at == at() and row.lease_owner == "w"
        if store_kind == "sqlite":
            assert (row.version, row.attempts) == (0, 0)
        assert [r.defects for r in s.list_instances()] == [tuple(expected)]
    finally:
        s.close()


@pytest.mark.parametrize("store_kind", SQL_KINDS)
def test_an_unreadable_timer_or_key_time_spoils_nothing(sql_url: str, store_kind: str) -> None:
    s = _sql_store(sql_url)
    try:
        v = BAD_TIME[store_kind][0]
        insert(s, inst("bad", status="waiting"), timers=[timer("bad", at(1))], key=key("bad", "k"))
        insert(s, inst("ok", status="waiting"), timers=[timer("ok", at(2))])
        _corrupt(sql_url, f"UPDATE gorch_timers SET due_at = {v} WHERE instance_id = 'bad'")
        _corrupt(sql_url, f"UPDATE gorch_keys SET at = {v}")
        [t] = s.timers("bad")
        assert t.defects == (f"due_at: {_not_a_time(store_kind, v)}",)
        assert (t.instance_id, t.thread_id, t.name, t.pc, t.due_at) == (
            "bad",
            "main",
            "Timeout",
            1,
            EPOCH,
        )
        assert sorted(x.instance_id for x in s.timers()) == ["bad", "ok"]
        assert s.timers("ok") == [timer("ok", at(2))]
        k = s.get_key("bad", "k")
        assert k is not None and k.at == EPOCH and k.output == key("bad", "k").output
        # The stored value is never due to the claim (which compares what is stored).
        got = s.claim_timers("w", at(100), at(130), 10)
        assert [(tm.instance_id, r.id) for tm, r in got] == [("ok", "ok")]
    finally:
        s.close()


def test_a_sqlite_file_that_cannot_be_opened_or_stays_locked_is_unavailable(
    tmp_path: Path,
) -> None:
    with pytest.raises(StoreUnavailableError, match="unable to open"):
        _sql_store(f"sqlite:///{tmp_path / 'no' / 'such' / 'g.db'}")
    path = tmp_path / "g.db"
    store = _sql_store(f"sqlite:///{path}", busy_timeout=0.2)
    holder = sqlite3.connect(path, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        with pytest.raises(StoreUnavailableError, match="locked") as info:
            store.commit(Write(inst("a"), None))
        assert not info.value.outcome_unknown
        assert store.get("a") is None  # reads go on (WAL); nothing was written
        holder.execute("ROLLBACK")
        assert store.commit(Write(inst("a"), None)) == 1
    finally:
        holder.close()
        store.close()


def _utc(t: datetime) -> datetime:
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t


def _pragma(store: Any, name: str) -> Any:
    with closing(store.sa_engine.raw_connection()) as raw:
        cur = raw.cursor()
        try:
            cur.execute(f"PRAGMA {name}")
            return cur.fetchone()[0]
        finally:
            cur.close()


def test_sqlite_defaults_to_wal_and_synchronous_full(tmp_path: Path) -> None:
    s = _sql_store(f"sqlite:///{tmp_path / 'g.db'}")
    try:
        assert _pragma(s, "journal_mode") == "wal"
        assert _pragma(s, "synchronous") == 2
    finally:
        s.close()


def test_sqlite_synchronous_normal(tmp_path: Path) -> None:
    s = _sql_store(f"sqlite:///{tmp_path / 'g.db'}", synchronous="NORMAL")
    try:
        assert _pragma(s, "journal_mode") == "wal"
        assert _pragma(s, "synchronous") == 1
        insert(s, inst("a"))
        assert s.get("a") is not None
    finally:
        s.close()


@pytest.mark.parametrize("bad", ["OFF", "full", "EXTRA", ""])
def test_sqlite_synchronous_other_values_are_refused(tmp_path: Path, bad: str) -> None:
    with pytest.raises(ValueError, match="synchronous"):
        _sql_store(f"sqlite:///{tmp_path / 'g.db'}", synchronous=bad)
    assert not (tmp_path / "g.db").exists()


def test_sqlite_in_memory_store_works(tmp_path: Path) -> None:
    s = _sql_store("sqlite://")
    try:
        insert(s, inst("a"), timers=[timer("a", at(1))], history=[hist("a", "started")])
        assert s.get("a") == attrs.evolve(inst("a"), version=1)
        [row] = s.claim("w", at(10), at(40), 5)
        assert row.version == 2
        assert s.release("a", "w", 2) is True
        assert s.timers() == [timer("a", at(1))]
    finally:
        s.close()


def test_postgres_notify_reaches_another_store(pg_store_url: str) -> None:
    a, b = _sql_store(pg_store_url), _sql_store(pg_store_url)
    try:
        insert(a, inst("x"))
        _listen(b)
        with _later(0.2, lambda: update(a, inst("x"), 1, notify=True)):
            start = time.monotonic()
            assert b.wait_for_work(5.0) is True
            assert time.monotonic() - start < 3.0
    finally:
        a.close()
        b.close()


def test_memory_store_is_a_store() -> None:
    assert isinstance(MemoryStore(), Store)


# -- erase: a commit that also overwrites stored history rows and keys -----------------------


def _erasable(store: Store) -> int:
    v = store.commit(Write(inst("e", data='{"email": "a@b.c"}'), None,
                           history=[hist("e", "started", input='{"email": "a@b.c"}')],
                           key=key("e", "k1", '"hi a@b.c"')))  # fmt: skip
    v = store.commit(Write(inst("e", data='{"email": "a@b.c"}'), v, key=key("e", "k2", "1"),
                           history=[hist("e", "event", "E", output='"a@b.c"', error="a@b.c",
                                         reason="for a@b.c")]))  # fmt: skip
    return v


def test_erase_commits_the_row_and_overwrites_history_and_keys_in_one_go(store: Store) -> None:
    v = _erasable(store)
    old = store.history("e")
    scrubbed = [
        attrs.evolve(old[0], input='{"email": ""}'),
        attrs.evolve(old[1], output='"<erased>"', error="<erased>", reason="for <erased>"),
    ]
    write = Write(inst("e", data='{"email": ""}'), v, history=[hist("e", "data_deleted")])
    rekeyed = [attrs.evolve(store.keys("e")[0], output='"hi <erased>"')]
    new = store.erase(write, scrubbed, rekeyed)
    assert new == v + 1
    assert store.get("e").data == '{"email": ""}'  # type: ignore[union-attr]
    after = store.history("e")
    assert [(h.kind, h.name, h.at, h.version, h.idx) for h in after[:2]] == [
        (h.kind, h.name, h.at, h.version, h.idx) for h in old
    ]
    assert [json.loads(h.input) if h.input else None for h in after] == [{"email": ""}, None, None]
    assert (after[1].output, after[1].error, after[1].reason) == (
        '"<erased>"', "<erased>", "for <erased>",
    )  # fmt: skip
    assert after[2].kind == "data_deleted"
    assert [(k.key, json.loads(k.output)) for k in store.keys("e")] == [
        ("k1", "hi <erased>"), ("k2", 1),
    ]  # fmt: skip
    assert store.keys("nobody") == []


def test_an_erase_at_a_stale_version_writes_nothing(store: Store) -> None:
    v = _erasable(store)
    history, keys = store.history("e"), store.keys("e")
    scrubbed = [attrs.evolve(h, input=None, output=None, error=None) for h in history]
    with pytest.raises(ConflictError):
        store.erase(Write(inst("e", data="{}"), v - 1, history=[hist("e", "data_deleted")]),
                    scrubbed, [attrs.evolve(k, output="0") for k in keys])  # fmt: skip
    assert store.history("e") == history and store.keys("e") == keys
    assert store.get("e").version == v  # type: ignore[union-attr]


# -- schedules ---------------------------------------------------------------------------------


def sched(name: str, *, next_at: datetime | None = None, **kw: Any) -> ScheduleRecord:
    fields: dict[str, Any] = {
        "workflow": "wf", "cron": "0 2 * * *", "timezone": "UTC", "data": None,
        "catchup": False, "paused": False, "next_at": next_at or at(60), "last_tick": None,
        "created_at": at(), "updated_at": at(),
    }  # fmt: skip
    fields.update(kw)
    return ScheduleRecord(name=name, **fields)


def test_a_schedule_is_written_and_read_back_as_it_was(store: Store) -> None:
    row = sched("nightly", data='{"n": 1, "tags": ["a"]}', catchup=True, timezone="Europe/Berlin",
                last_tick=at(-3600), created_at=at(-7200))  # fmt: skip
    assert store.put_schedule(row, None) == 1
    got = store.get_schedule("nightly")
    assert got is not None and got.version == 1
    assert attrs.evolve(got, data=None) == attrs.evolve(row, data=None, version=1)
    assert json.loads(got.data or "") == {"n": 1, "tags": ["a"]}
    assert all(is_utc(t) for t in (got.next_at, got.last_tick, got.created_at, got.updated_at))
    assert store.put_schedule(sched("plain"), None) == 1
    plain = store.get_schedule("plain")
    assert plain is not None and plain.data is None and plain.last_tick is None
    assert (plain.catchup, plain.paused) == (False, False)
    assert store.get_schedule("nobody") is None


def test_a_schedule_name_is_inserted_once(store: Store) -> None:
    store.put_schedule(sched("s", cron="* * * * *"), None)
    with pytest.raises(AlreadyExistsError, match="'s'"):
        store.put_schedule(sched("s", cron="0 0 * * *"), None)
    assert store.get_schedule("s").cron == "* * * * *"  # type: ignore[union-attr]


def test_a_schedule_is_replaced_only_at_the_version_read(store: Store) -> None:
    store.put_schedule(sched("s"), None)
    assert store.put_schedule(sched("s", paused=True, next_at=at(120)), 1) == 2
    got = store.get_schedule("s")
    assert got is not None and (got.version, got.paused, got.next_at) == (2, True, at(120))
    with pytest.raises(ConflictError, match="expected version 1"):
        store.put_schedule(sched("s", cron="1 1 * * *"), 1)
    assert store.get_schedule("s") == got  # nothing written
    with pytest.raises(ConflictError):
        store.put_schedule(sched("gone"), 1)
    assert store.get_schedule("gone") is None


def test_schedules_are_listed_by_name_and_deleted(store: Store) -> None:
    for name in ["b", "c", "a"]:
        store.put_schedule(sched(name), None)
    assert [s.name for s in store.list_schedules()] == ["a", "b", "c"]
    assert store.delete_schedule("b") is True
    assert store.delete_schedule("b") is False
    assert [s.name for s in store.list_schedules()] == ["a", "c"]
    assert store.get_schedule("b") is None


def test_due_schedules_are_the_unpaused_ones_due_by_now_soonest_first(store: Store) -> None:
    store.put_schedule(sched("later", next_at=at(10)), None)
    store.put_schedule(sched("now", next_at=at(0)), None)
    store.put_schedule(sched("b-early", next_at=at(-5)), None)
    store.put_schedule(sched("a-early", next_at=at(-5), workflow="other"), None)
    store.put_schedule(sched("paused", next_at=at(-100), paused=True), None)
    names = [s.name for s in store.due_schedules(at(), 10)]
    assert names == ["a-early", "b-early", "now"]  # next_at <= now; ties by name
    assert [s.name for s in store.due_schedules(at(), 2)] == ["a-early", "b-early"]
    assert [s.name for s in store.due_schedules(at(), 10, ["wf"])] == ["b-early", "now"]
    assert [s.name for s in store.due_schedules(at(), 10, ["other", "x"])] == ["a-early"]
    assert store.due_schedules(at(), 10, []) == []
    assert store.due_schedules(at(), 0) == []
    assert [s.name for s in store.due_schedules(at(10), 10)][-1] == "later"
    due = store.due_schedules(at(), 10)[0]
    assert due == store.get_schedule("a-early")  # the whole row, with its version


def test_of_two_writers_at_one_schedule_version_only_one_wins(store: Store) -> None:
    store.put_schedule(sched("race"), None)
    won: list[int] = []
    lost: list[Exception] = []
    barrier = threading.Barrier(4)

    def advance(n: int) -> None:
        barrier.wait()
        try:
            won.append(store.put_schedule(sched("race", next_at=at(1000 + n)), 1))
        except ConflictError as exc:
            lost.append(exc)

    threads = [threading.Thread(target=advance, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert won == [2] and len(lost) == 3
    assert store.get_schedule("race").version == 2  # type: ignore[union-attr]
