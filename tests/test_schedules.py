"""Schedules (docs/schedules.md): ``Engine.schedule`` and friends, ticks fired by the worker
under frozen time, both policies for ticks missed in an outage, time zones and summer time,
pause/resume/unschedule, and exactly once: two engines on one PostgreSQL database firing the
same ticks from many threads, and a crash between a tick's start and the schedule's advance.

Time: gorch reads it only through ``gorch.clock.now()``. The ``frozen`` fixture freezes it like
``gorch_time`` but without ``_pytest`` on freezegun's ignore list: freezegun looks at the five
frames above a clock call and answers real time if one of them is an ignored module's, so
``engine.fire_schedules()`` called right from a test (clock.now, fire_schedules, the test,
pytest) would see real time under ``gorch_time``.
"""

from __future__ import annotations

import inspect
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from freezegun import freeze_time

from gorch import (
    AsyncEngine,
    Engine,
    InputError,
    NotFoundError,
    Return,
    RunStatus,
    S,
    Schedule,
    Step,
    StoreUnavailableError,
    Worker,
    clock,
)
from gorch.engine._async import METHODS
from gorch.store import MemoryStore, Store
from gorch.testing import REAL_TIME_MODULES, START

# --------------------------------------------------------------------------------------------
# Workflows and fixtures


@dataclass
class Report:
    """Writes one report and finishes."""

    title: str = "daily"
    tags: list[str] = field(default_factory=list)
    written: bool = False

    def definition(self) -> Any:
        return S(Step("write", self.write), Return())

    def write(self) -> None:
        self.tags.append("written")
        self.written = True


@dataclass
class Needy:
    """Cannot be made with no arguments."""

    title: str

    def definition(self) -> Any:
        return S(Return())


WORKFLOWS: dict[str, type] = {"report": Report, "needy": Needy}


@pytest.fixture
def frozen() -> Iterator[Any]:
    """Time frozen at START for every frame (see the module's docs)."""
    ignore = [m for m in REAL_TIME_MODULES if m != "_pytest"]
    with freeze_time(START, ignore=ignore) as f:
        yield f


@pytest.fixture
def engine(store: Store, frozen: Any) -> Engine:
    """An engine on each store kind (made before time is frozen), time frozen at START."""
    return Engine(store, WORKFLOWS)


@pytest.fixture
def mem(frozen: Any) -> Engine:
    return Engine(MemoryStore(), WORKFLOWS)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def ids(engine: Engine) -> list[str]:
    """Every instance's id, oldest first."""
    return sorted((i.id for i in engine.list(limit=1000)), key=lambda i: i)


# --------------------------------------------------------------------------------------------
# Defining schedules


def test_a_schedule_is_kept_in_the_store_and_listed(engine: Engine) -> None:
    s = engine.schedule("nightly-report", "report", "0 2 * * *")
    assert isinstance(s, Schedule)
    assert (s.name, s.workflow, s.cron, s.timezone, s.catchup, s.paused, s.data) == (
        "nightly-report", "report", "0 2 * * *", "UTC", False, False, None,
    )  # fmt: skip
    assert s.next_at == utc(2026, 1, 1, 2) and s.next_at.tzinfo is not None
    assert s.last_tick is None and s.created_at == s.updated_at == START
    engine.schedule("a-hourly", "report", "0 * * * *", data=Report(title="hourly"), catchup=True)
    listed = engine.schedules()
    assert [x.name for x in listed] == ["a-hourly", "nightly-report"]
    assert listed[1] == s
    assert listed[0].data == {"title": "hourly", "tags": [], "written": False}
    assert listed[0].catchup is True
    row = engine.store.get_schedule("nightly-report")
    assert row is not None and row.version == 1


def test_scheduling_again_by_name_replaces_the_definition(engine: Engine, frozen: Any) -> None:
    first = engine.schedule("s", "report", "0 2 * * *")
    frozen.tick(timedelta(minutes=5))
    assert engine.schedule("s", "report", "0 2 * * *") == first  # the same: nothing written
    assert engine.store.get_schedule("s").version == 1  # type: ignore[union-attr]
    again = engine.schedule("s", "report", "0 2 * * *", catchup=True, data=Report(title="x"))
    assert (again.catchup, again.data["title"], again.next_at) == (True, "x", first.next_at)
    assert again.created_at == first.created_at and again.updated_at == START + timedelta(minutes=5)
    engine.pause_schedule("s")
    moved = engine.schedule("s", "report", "30 * * * *")  # a new cron: the next tick from now
    assert moved.next_at == utc(2026, 1, 1, 0, 30) and moved.paused  # still paused
    assert (moved.catchup, moved.data) == (False, None)
    assert [x.name for x in engine.schedules()] == ["s"]


BAD: list[tuple[dict[str, Any], type[Exception], list[str]]] = [
    ({"name": ""}, InputError, ["schedule name", "1 to 179 characters"]),
    ({"name": "a/b"}, InputError, ['"/"']),
    ({"name": "x" * 180}, InputError, ["179"]),
    ({"name": 7}, InputError, ["schedule name"]),
    (
        {"workflow": "reprot"},
        NotFoundError,
        ["'reprot'", "registered: 'needy', 'report'", "Did you mean 'report'"],
    ),
    ({"workflow": None}, InputError, ["workflow must be a registered workflow's name"]),
    ({"cron": "0 2 * *"}, InputError, ["five fields", "'0 2 * * *'"]),
    ({"cron": "0 0 2 * * *"}, InputError, ["five fields"]),
    ({"cron": "61 * * * *"}, InputError, ["is not valid", "five fields"]),
    ({"cron": "@daily"}, InputError, ["five fields"]),
    ({"cron": "0 0 30 2 *"}, InputError, ["never fires"]),
    ({"cron": None}, InputError, ["five fields"]),
    (
        {"timezone": "Europe/Berln"},
        InputError,
        ["IANA time zone", "'Europe/Berlin'", "Did you mean"],
    ),
    ({"timezone": ""}, InputError, ["IANA time zone"]),
    ({"timezone": "../etc/passwd"}, InputError, ["IANA time zone"]),
    ({"timezone": 1}, InputError, ["IANA time zone"]),
    ({"data": {"title": "x"}}, InputError, ["data must be a Report, not dict"]),
    ({"data": Needy("x")}, InputError, ["data must be a Report, not Needy"]),
    ({"data": Report(title=object())}, InputError, ["cannot be stored"]),  # type: ignore[arg-type]
    (
        {"workflow": "needy"},
        InputError,
        ["Needy() cannot be made with no arguments", "pass data=Needy(...)"],
    ),
    ({"catchup": "yes"}, InputError, ["catchup must be True or False"]),
]


@pytest.mark.parametrize(("bad", "error", "says"), BAD)
def test_each_bad_argument_is_refused_clearly_and_nothing_is_stored(
    mem: Engine, bad: dict[str, Any], error: type[Exception], says: list[str]
) -> None:
    args: dict[str, Any] = {"name": "s", "workflow": "report", "cron": "0 2 * * *", **bad}
    with pytest.raises(error) as caught:
        mem.schedule(args.pop("name"), args.pop("workflow"), args.pop("cron"), **args)
    for text in says:
        assert text in str(caught.value)
    assert mem.schedules() == []


def test_a_bad_replacement_leaves_the_schedule_as_it_was(mem: Engine) -> None:
    s = mem.schedule("s", "report", "0 2 * * *")
    with pytest.raises(InputError):
        mem.schedule("s", "report", "0 2 * * *", timezone="Mars/Olympus")
    assert mem.schedules() == [s]


@pytest.mark.parametrize("call", ["pause_schedule", "resume_schedule", "unschedule"])
def test_an_unknown_schedule_is_not_found_with_the_closest_names(mem: Engine, call: str) -> None:
    mem.schedule("nightly-report", "report", "0 2 * * *")
    with pytest.raises(NotFoundError, match="no schedule is named 'nightly-reprot'") as caught:
        getattr(mem, call)("nightly-reprot")
    assert "Did you mean 'nightly-report'?" in str(caught.value)
    with pytest.raises(NotFoundError):
        getattr(mem, call)(None)


# --------------------------------------------------------------------------------------------
# Firing


def test_a_due_tick_starts_one_instance_that_the_worker_runs(engine: Engine, frozen: Any) -> None:
    engine.schedule("nightly-report", "report", "0 2 * * *", data=Report(title="nightly"))
    worker = Worker(engine)
    assert worker.run_once() == 0 and ids(engine) == []  # not due yet
    frozen.move_to(utc(2026, 1, 1, 2))
    assert worker.run_once() == 2  # the tick's start, and its run
    assert ids(engine) == ["nightly-report@2026-01-01T02:00:00Z"]
    inst = engine.get("nightly-report@2026-01-01T02:00:00Z")
    assert inst.status is RunStatus.FINISHED and inst.workflow == "report"
    assert (inst.data.title, inst.data.tags) == ("nightly", ["written"])
    assert next(h.kind for h in engine.history(inst.id)) == "started"
    s = engine.schedules()[0]
    assert (s.last_tick, s.next_at) == (utc(2026, 1, 1, 2), utc(2026, 1, 2, 2))
    assert worker.run_once() == 0  # the same tick never again
    assert engine.fire_schedules(utc(2026, 1, 1, 3)) == []


def test_each_tick_starts_from_a_fresh_copy_of_the_data(mem: Engine) -> None:
    data = Report(title="x", tags=["a"])
    mem.schedule("s", "report", "0 * * * *", data=data)
    data.tags.append("changed later")  # stored once, as it was
    assert mem.fire_schedules(utc(2026, 1, 1, 1)) == ["s@2026-01-01T01:00:00Z"]
    assert mem.fire_schedules(utc(2026, 1, 1, 2)) == ["s@2026-01-01T02:00:00Z"]
    Worker(mem).run_once()
    for id in ids(mem):
        assert mem.get(id).data.tags == ["a", "written"]


def test_without_catchup_an_outage_starts_only_the_latest_missed_tick(
    engine: Engine, frozen: Any, caplog: pytest.LogCaptureFixture
) -> None:
    engine.schedule("hourly", "report", "0 * * * *")
    frozen.move_to(utc(2026, 1, 1, 5, 30))  # everything was down from 00:00 to 05:30
    with caplog.at_level(logging.INFO, logger="gorch.engine"):
        assert engine.fire_schedules() == ["hourly@2026-01-01T05:00:00Z"]
    assert "skipped the ticks from 2026-01-01T01:00:00+00:00" in caplog.text
    assert ids(engine) == ["hourly@2026-01-01T05:00:00Z"]
    s = engine.schedules()[0]
    assert (s.last_tick, s.next_at) == (utc(2026, 1, 1, 5), utc(2026, 1, 1, 6))
    frozen.move_to(utc(2026, 1, 1, 6))
    assert engine.fire_schedules() == ["hourly@2026-01-01T06:00:00Z"]


def test_with_catchup_an_outage_starts_each_missed_tick_oldest_first(
    engine: Engine, frozen: Any
) -> None:
    engine.schedule("hourly", "report", "0 * * * *", catchup=True)
    frozen.move_to(utc(2026, 1, 1, 5, 30))
    started = engine.fire_schedules()
    assert started == [f"hourly@2026-01-01T0{h}:00:00Z" for h in range(1, 6)]
    assert ids(engine) == started
    s = engine.schedules()[0]
    assert (s.last_tick, s.next_at) == (utc(2026, 1, 1, 5), utc(2026, 1, 1, 6))
    Worker(engine).run_once()
    assert {engine.get(id).status for id in started} == {RunStatus.FINISHED}


def test_a_long_catchup_goes_on_over_the_workers_turns(mem: Engine, frozen: Any) -> None:
    mem.schedule("minutely", "report", "* * * * *", catchup=True)
    frozen.move_to(START + timedelta(minutes=150, seconds=30))
    assert len(mem.fire_schedules()) == 100  # FIRE_BATCH per call
    assert len(mem.fire_schedules()) == 50
    assert len(ids(mem)) == 150 and mem.fire_schedules() == []


def test_the_worker_starts_every_missed_tick_in_one_run(mem: Engine, frozen: Any) -> None:
    mem.schedule("minutely", "report", "* * * * *", catchup=True)
    frozen.move_to(START + timedelta(minutes=120))
    Worker(mem).run_once()
    assert len(ids(mem)) == 120
    assert mem.schedules()[0].next_at == START + timedelta(minutes=121)


def test_a_naive_now_is_utc(mem: Engine) -> None:
    mem.schedule("s", "report", "0 1 * * *")
    assert mem.fire_schedules(datetime(2026, 1, 1, 1)) == ["s@2026-01-01T01:00:00Z"]


# --------------------------------------------------------------------------------------------
# Time zones


@pytest.mark.parametrize(
    ("today", "fires_at"),
    [(utc(2025, 12, 31, 12), utc(2026, 1, 1, 1)),  # winter: CET, UTC+1
     (utc(2026, 6, 30, 12), utc(2026, 7, 1, 0))],  # summer: CEST, UTC+2
)  # fmt: skip
def test_a_berlin_schedule_fires_at_its_wall_clock_time(
    mem: Engine, frozen: Any, today: datetime, fires_at: datetime
) -> None:
    frozen.move_to(today)
    s = mem.schedule("berlin", "report", "0 2 * * *", timezone="Europe/Berlin")
    assert s.next_at == fires_at
    assert mem.fire_schedules(fires_at - timedelta(seconds=1)) == []
    assert mem.fire_schedules(fires_at) == [f"berlin@{fires_at:%Y-%m-%dT%H:%M:%SZ}"]


def scheduled_at(engine: Engine, when: datetime, *args: Any, **kw: Any) -> Schedule:
    """``engine.schedule(*args, **kw)`` as if made at ``when`` (time frozen for that call only)."""
    with freeze_time(when, ignore=[m for m in REAL_TIME_MODULES if m != "_pytest"]):
        return engine.schedule(*args, **kw)


def test_summer_time_changes() -> None:
    """02:30 does not exist on the spring night (it fires at 03:00 CEST, 01:00Z) and happens
    twice on the autumn night (it fires at both). Fired in real time: under freezegun, its
    datetimes lose the ``fold`` that tells the two 02:30s apart (see the next test)."""
    engine = Engine(MemoryStore(), WORKFLOWS)
    spring = scheduled_at(engine, utc(2026, 3, 28, 12), "spring", "report", "30 2 * * *",
                          timezone="Europe/Berlin", catchup=True)  # fmt: skip
    assert spring.next_at == utc(2026, 3, 29, 1)
    assert engine.fire_schedules(utc(2026, 3, 30, 12)) == [
        "spring@2026-03-29T01:00:00Z", "spring@2026-03-30T00:30:00Z",
    ]  # fmt: skip
    scheduled_at(engine, utc(2026, 10, 24, 12), "autumn", "report", "30 2 * * *",
                 timezone="Europe/Berlin", catchup=True)  # fmt: skip
    engine.unschedule("spring")
    assert engine.fire_schedules(utc(2026, 10, 26, 12)) == [
        "autumn@2026-10-25T00:30:00Z", "autumn@2026-10-25T01:30:00Z",
        "autumn@2026-10-26T01:30:00Z",
    ]  # fmt: skip
    hourly = scheduled_at(engine, utc(2026, 10, 24, 23, 30), "hourly", "report", "0 * * * *",
                          timezone="Europe/Berlin", catchup=True)  # fmt: skip
    engine.unschedule("autumn")
    assert hourly.next_at == utc(2026, 10, 25, 0)
    assert engine.fire_schedules(utc(2026, 10, 25, 3)) == [  # every hour, 02:00 twice
        f"hourly@2026-10-25T0{h}:00:00Z" for h in range(4)
    ]


def test_under_frozen_time_a_schedule_still_moves_on_over_an_autumn_night(
    mem: Engine, frozen: Any
) -> None:
    """freezegun's datetimes lose the fold of the second 02:30; the schedule moves on all the
    same, never stuck at one tick."""
    frozen.move_to(utc(2026, 10, 24, 12))
    mem.schedule("autumn", "report", "30 2 * * *", timezone="Europe/Berlin", catchup=True)
    started = mem.fire_schedules(utc(2026, 10, 27, 12))
    assert started[0] == "autumn@2026-10-25T00:30:00Z"
    assert started[-2:] == ["autumn@2026-10-26T01:30:00Z", "autumn@2026-10-27T01:30:00Z"]
    assert mem.schedules()[0].next_at == utc(2026, 10, 28, 1, 30)


# --------------------------------------------------------------------------------------------
# Pause, resume, unschedule


@pytest.mark.parametrize("catchup", [False, True])
def test_a_paused_schedule_starts_nothing_and_resumes_from_now(
    engine: Engine, frozen: Any, catchup: bool
) -> None:
    engine.schedule("hourly", "report", "0 * * * *", catchup=catchup)
    paused = engine.pause_schedule("hourly")
    assert paused.paused and engine.pause_schedule("hourly") == paused  # again: no change
    frozen.move_to(utc(2026, 1, 1, 3, 10))
    assert engine.fire_schedules() == [] and ids(engine) == []
    resumed = engine.resume_schedule("hourly")
    assert not resumed.paused and resumed.next_at == utc(2026, 1, 1, 4)  # 01:00-03:00 skipped
    assert engine.resume_schedule("hourly") == resumed  # not paused: no change
    assert engine.fire_schedules() == []
    frozen.move_to(utc(2026, 1, 1, 4))
    assert engine.fire_schedules() == ["hourly@2026-01-01T04:00:00Z"]


def test_unschedule_deletes_the_schedule_and_leaves_its_instances(
    engine: Engine, frozen: Any
) -> None:
    engine.schedule("hourly", "report", "0 * * * *")
    engine.schedule("other", "report", "0 * * * *")
    frozen.move_to(utc(2026, 1, 1, 1))
    engine.fire_schedules()
    assert engine.unschedule("hourly") is None
    assert [s.name for s in engine.schedules()] == ["other"]
    frozen.move_to(utc(2026, 1, 1, 2))
    assert engine.fire_schedules() == ["other@2026-01-01T02:00:00Z"]
    assert "hourly@2026-01-01T01:00:00Z" in ids(engine)
    with pytest.raises(NotFoundError, match="schedules: 'other'"):
        engine.unschedule("hourly")


# --------------------------------------------------------------------------------------------
# Exactly once


def test_a_crash_between_start_and_advance_starts_nothing_twice(
    engine: Engine, frozen: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine.schedule("hourly", "report", "0 * * * *", catchup=True)
    frozen.move_to(utc(2026, 1, 1, 2))
    store = engine.store
    real = store.put_schedule
    calls: list[int] = []

    def fails_once(record: Any, expected: int | None) -> int:
        calls.append(1)
        if len(calls) == 1:  # the first advance: the process "dies" after the start committed
            raise StoreUnavailableError("the database went away", outcome_unknown=False)
        return real(record, expected)

    monkeypatch.setattr(store, "put_schedule", fails_once)
    with pytest.raises(StoreUnavailableError):
        engine.fire_schedules()
    assert ids(engine) == ["hourly@2026-01-01T01:00:00Z"]
    assert engine.schedules()[0].next_at == utc(2026, 1, 1, 1)  # not moved on
    assert engine.fire_schedules() == ["hourly@2026-01-01T02:00:00Z"]  # 01:00 exists already
    assert ids(engine) == ["hourly@2026-01-01T01:00:00Z", "hourly@2026-01-01T02:00:00Z"]
    assert [h.kind for h in engine.history("hourly@2026-01-01T01:00:00Z")] == ["started"]
    s = engine.schedules()[0]
    assert (s.last_tick, s.next_at) == (utc(2026, 1, 1, 2), utc(2026, 1, 1, 3))


def test_two_engines_on_one_postgres_database_never_start_a_tick_twice(
    pg_store_url: str,
) -> None:
    from gorch.store import SQLStore

    stores = [SQLStore(pg_store_url), SQLStore(pg_store_url)]
    try:
        engines = [Engine(s, WORKFLOWS) for s in stores]
        now = clock.now()
        first = engines[0].schedule("minutely", "report", "* * * * *", catchup=True)
        engines[1].schedule("latest-only", "report", "* * * * *")
        due = first.next_at + timedelta(minutes=29, seconds=30)  # 30 ticks missed
        started: list[str] = []
        barrier = threading.Barrier(8)

        def fire(engine: Engine) -> None:
            barrier.wait()
            while True:
                got = engine.fire_schedules(due)
                started.extend(got)  # list.extend is atomic under the GIL
                if not got and not engine.store.due_schedules(due, 10):
                    return

        threads = [threading.Thread(target=fire, args=(engines[n % 2],)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        ticks = [first.next_at + timedelta(minutes=m) for m in range(30)]
        expected = {f"minutely@{t:%Y-%m-%dT%H:%M:%SZ}" for t in ticks}
        expected.add(f"latest-only@{ticks[-1]:%Y-%m-%dT%H:%M:%SZ}")
        assert sorted(started) == sorted(expected)  # each started once, by one thread
        instances = engines[1].list(limit=1000).items
        assert sorted(i.id for i in instances) == sorted(expected)
        for id in expected:
            assert [h.kind for h in engines[0].history(id)] == ["started"]
        for s in engines[0].schedules():
            assert s.last_tick == ticks[-1] and s.next_at == ticks[-1] + timedelta(minutes=1)
            assert engines[0].store.get_schedule(s.name).version > 1  # type: ignore[union-attr]
        assert now < ticks[0]
    finally:
        for s in stores:
            s.close()


# --------------------------------------------------------------------------------------------
# The worker


def test_a_failing_schedule_store_call_does_not_end_the_worker(
    mem: Engine, frozen: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    mem.schedule("hourly", "report", "0 * * * *")
    frozen.move_to(utc(2026, 1, 1, 1))
    real = mem.store.due_schedules
    down = threading.Event()
    down.set()

    def due(*args: Any, **kw: Any) -> Any:
        if down.is_set():
            raise StoreUnavailableError("the database went away")
        return real(*args, **kw)

    monkeypatch.setattr(mem.store, "due_schedules", due)
    worker = Worker(mem, poll=0.05, min_backoff=0.01, max_backoff=0.05)
    with pytest.raises(StoreUnavailableError):  # a turn fails as it does for every claim
        worker.run_once()
    thread = threading.Thread(target=worker.run, kwargs={"handle_signals": False})
    thread.start()
    try:
        for _ in range(200):
            if worker.health().failures >= 2:
                break
            threading.Event().wait(0.01)
        assert worker.health().running and worker.health().failures >= 2
        down.clear()  # back: the worker goes on and starts the tick
        for _ in range(500):
            if ids(mem):
                break
            threading.Event().wait(0.01)
        assert ids(mem) == ["hourly@2026-01-01T01:00:00Z"]
    finally:
        worker.stop()
        thread.join(10)


def test_a_bug_in_firing_is_logged_and_the_turn_goes_on(
    mem: Engine, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    mem.start("report", Report(), id="plain", defer=True)

    def broken(now: Any = None) -> list[str]:
        raise RuntimeError("a bug")

    monkeypatch.setattr(mem, "fire_schedules", broken)
    assert Worker(mem).run_once() == 1  # the deferred instance still ran
    assert mem.get("plain").status is RunStatus.FINISHED
    assert "firing the schedules failed" in caplog.text


def test_a_tick_whose_instance_cannot_be_made_is_logged_and_skipped(
    mem: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    mem.schedule("s", "report", "0 * * * *", data=Report(title="x"))
    row = mem.store.get_schedule("s")
    assert row is not None
    import attrs

    mem.store.put_schedule(attrs.evolve(row, data='{"title": 1, "bogus": true}'), row.version)
    assert mem.fire_schedules(utc(2026, 1, 1, 1)) == []
    assert "tick 2026-01-01T01:00:00+00:00 could not be started" in caplog.text
    assert mem.schedules()[0].next_at == utc(2026, 1, 1, 2)  # skipped, not stuck


def test_the_worker_looks_for_due_ticks_at_least_every_second(mem: Engine) -> None:
    assert Worker(mem).poll <= 1.0  # its idle wait: a tick starts within poll of its time


def test_the_async_engine_has_the_schedule_calls(frozen: Any) -> None:
    calls = {"schedule", "schedules", "pause_schedule", "resume_schedule", "unschedule",
             "fire_schedules"}  # fmt: skip
    assert calls <= set(METHODS)
    import asyncio

    aengine = AsyncEngine(MemoryStore(), WORKFLOWS)
    try:
        s = asyncio.run(aengine.schedule("s", "report", "0 2 * * *"))
        assert asyncio.run(aengine.schedules()) == [s]
        assert inspect.iscoroutinefunction(aengine.fire_schedules)
    finally:
        aengine.close()
