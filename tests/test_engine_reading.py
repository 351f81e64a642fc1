"""The engine's reading calls on every store: waits (and since when a thread waits), list and
its pages, history and its pages.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from _engine_workflows import (
    PEPPERONI,
    WORKFLOWS,
    Counter,
    Done,
)

from examples.pizza.workflow import PizzaOrder
from gorch import (
    MAIN_THREAD,
    Engine,
    Go,
    InputError,
    NotFoundError,
    On,
    RunStatus,
    S,
    Wait,
    Worker,
    clock,
    dumps,
)
from gorch.engine import Page
from gorch.store import Store
from gorch.testing import START

# --------------------------------------------------------------------------------------------
# waits and since


def test_waits_says_where_each_thread_is_from_an_id_or_an_instance(engine: Engine) -> None:
    engine.start("pizza", PizzaOrder(), id="o1")
    engine.send("o1", "AddToCart", {"pizza": {"name": "margherita"}})
    engine.send("o1", "SubmitCart")
    engine.send("o1", "ConfirmOrder", {"manager": "Giulia", "amount": 10})
    waits = engine.waits("o1")
    assert [(w.thread, w.at, w.events) for w in waits] == [
        ("_main_", "for a cook", ["StartCooking"]),
        ("payment", "for payment", ["ConfirmPayment"]),
    ]
    assert waits[0].since == START and waits[1].since == START
    assert engine.waits(engine.get("o1")) == waits
    with pytest.raises(NotFoundError):
        engine.waits("nope")


def test_since_of_a_thread_a_go_started_is_when_the_go_ran(engine: Engine, gorch_time) -> None:
    # The Go "payment" runs right after ConfirmOrder; its thread then waits, doing nothing of
    # its own, while the main thread moves on: its since stays at ConfirmOrder.
    engine.start("pizza", PizzaOrder(), id="o1")
    for hours, (event, payload) in enumerate(
        [("AddToCart", PEPPERONI), ("SubmitCart", None),
         ("ConfirmOrder", {"manager": "Giulia", "amount": 10}),
         ("StartCooking", {"cook": "Marco"}), ("Cooked", None)], 1,
    ):  # fmt: skip
        gorch_time.tick(timedelta(hours=1))
        engine.send("o1", event, payload)
        assert engine.get("o1").updated_at == START + timedelta(hours=hours)
    since = {w.thread: w.since for w in engine.waits("o1")}
    assert since == {"_main_": START + timedelta(hours=5), "payment": START + timedelta(hours=3)}
    gorch_time.tick(timedelta(hours=1))
    engine.send("o1", "ConfirmPayment", {"amount": 10, "address": "Via Roma 1"})
    assert [w.thread for w in engine.waits("o1")] == ["_main_"]  # payment has ended


@dataclass
class Nest:
    """A Go whose thread starts a Go of its own before it waits."""

    def definition(self) -> Any:
        return S(
            Wait("for go", On("Go", None)),
            Go("outer",
                Go("inner", Wait("for x", On("X", None))),
                Wait("for y", On("Y", None)),
                Wait("for z", On("Z", None)),
            ),
            Wait("for b", On("B", None)),
            Wait("for end", On("End", None)),
        )  # fmt: skip


def test_since_of_nested_go_threads(store: Store, gorch_time) -> None:
    engine = Engine(store, {"nest": Nest})
    engine.start("nest", Nest(), id="n1")
    assert [w.since for w in engine.waits("n1")] == [START]
    for event in ("Go", "B", "Y"):
        gorch_time.tick(timedelta(hours=1))
        engine.send("n1", event)
    since = {w.thread: w.since for w in engine.waits("n1")}
    hour = timedelta(hours=1)
    # main: B (2 h); outer: Y (3 h); inner, which did nothing: the Go of outer ran at 1 h
    assert since == {"_main_": START + 2 * hour, "outer": START + 3 * hour, "inner": START + hour}


# --------------------------------------------------------------------------------------------
# list


def test_list_filters_by_workflow_and_status(engine: Engine) -> None:
    for i in range(4):
        engine.start("counter", Counter(), id=f"c{i}")
    engine.send("c1", "Stop")
    engine.send("c2", "Stop")
    engine.start("pizza", PizzaOrder(), id="o1")
    engine.pause("o1")

    def ids(**kw: Any) -> set[str]:
        return {i.id for i in engine.list(**kw).items}

    assert ids() == {"c0", "c1", "c2", "c3", "o1"}
    assert ids(workflow="counter") == {"c0", "c1", "c2", "c3"}
    assert ids(workflow="pizza") == {"o1"}
    assert ids(workflow="nope") == set()
    assert ids(status=RunStatus.FINISHED) == {"c1", "c2"}
    assert ids(status="waiting") == {"c0", "c3"}
    assert ids(status=[RunStatus.WAITING, "paused"]) == {"c0", "c3", "o1"}
    assert ids(status=[]) == set()
    assert ids(workflow="pizza", status="waiting") == set()
    assert ids(workflow="counter", status=("finished",)) == {"c1", "c2"}
    page = engine.list(workflow="pizza")
    assert isinstance(page, Page) and page.next is None
    assert page.items[0].data == engine.get("o1").data
    assert page.items[0].status is RunStatus.PAUSED


def test_list_pages_cover_every_instance_once(engine: Engine, gorch_time) -> None:
    expected = set()
    for i in range(11):
        # several instances share a created_at: the cursor must tell them apart by id
        if i % 4 == 0:
            gorch_time.tick(timedelta(seconds=1))
        expected.add(engine.start("counter", Counter(), id=f"c{i:02}").id)

    for limit in (1, 2, 3, 5, 11, 50):
        seen: list[str] = []
        cursor = None
        pages = 0
        while True:
            page = engine.list(limit=limit, cursor=cursor)
            pages += 1
            assert len(page.items) <= limit
            seen += [i.id for i in page.items]
            if page.next is None:
                break
            cursor = page.next
        assert sorted(seen) == sorted(expected), limit
        assert len(seen) == len(set(seen))
        assert pages == -(-11 // limit)
    # newest first
    order = [i.id for i in engine.list(limit=50).items]
    created = [engine.get(i).created_at for i in order]
    assert created == sorted(created, reverse=True)


def test_list_pages_in_real_time(store: Store) -> None:
    engine = Engine(store, WORKFLOWS)
    ids = {engine.start("done", Done()).id for _ in range(7)}
    seen: list[str] = []
    cursor = None
    while True:
        page = engine.list(workflow="done", status=RunStatus.FINISHED, limit=2, cursor=cursor)
        seen += [i.id for i in page.items]
        if page.next is None:
            break
        cursor = page.next
    assert sorted(seen) == sorted(ids)


def test_a_page_is_a_sequence_of_its_items(engine: Engine) -> None:
    for i in range(3):
        engine.start("counter", Counter(), id=f"c{i}")
    page = engine.list(limit=2)
    assert [i.id for i in page] == [i.id for i in page.items] and len(page) == 2
    assert page[0] is page.items[0] and page[-1] is page.items[1]
    assert page[:1] == page.items[:1]
    assert page.next is not None
    rest = engine.list(limit=2, cursor=page.next)
    assert len(rest) == 1 and rest.next is None and bool(engine.list(workflow="nope")) is False
    assert [i.id for i in [*page, *rest]] == ["c2", "c1", "c0"]


def test_list_bad_arguments(engine: Engine) -> None:
    engine.start("counter", Counter(), id="c1")
    for kw in (
        {"limit": 0},
        {"limit": 1001},
        {"limit": -1},
        {"limit": "5"},
        {"status": "nope"},
        {"status": ["waiting", "nope"]},
        {"cursor": "garbage"},
        {"cursor": "not a time|c1"},
    ):
        with pytest.raises(InputError):
            engine.list(**kw)


# --------------------------------------------------------------------------------------------
# history


def test_history_oldest_first(engine: Engine, worker: Worker, gorch_time) -> None:
    engine.start("pizza", PizzaOrder(), id="o1")
    gorch_time.tick(timedelta(hours=1))
    engine.send("o1", "AddToCart", PEPPERONI)
    gorch_time.tick(timedelta(hours=24))
    worker.run_once()

    history = engine.history("o1")
    assert [(h.kind, h.name) for h in history] == [
        ("started", "pizza"),
        ("step", "setup"),
        ("event", "AddToCart"),
        ("timer", "cart timed out"),
        ("step", "expire order"),
        ("finished", ""),
    ]
    assert [h.at for h in history] == [START, START] + [START + timedelta(hours=1)] + [
        START + timedelta(hours=25)
    ] * 3
    seqs = [h.seq for h in history]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert history[0].input == dumps_obj(PizzaOrder())
    assert history[1].thread == MAIN_THREAD
    assert history[2].input == PEPPERONI and history[2].output == 1
    # the event began a new loop turn, and with it a new 24-hour wait
    assert history[3].input == clock.format_time(START + timedelta(hours=25))

    with pytest.raises(NotFoundError):
        engine.history("nope")
    with pytest.raises(NotFoundError):
        engine.history("nope", limit=5, newest_first=True)


def _busy_counter(engine: Engine, adds: int) -> list[tuple[int, str]]:
    engine.start("counter", Counter(), id="c1")
    for _ in range(adds):
        engine.send("c1", "Add", {"by": 1})
    engine.send("c1", "Stop")
    return [(h.seq, f"{h.kind}:{h.name}") for h in engine.history("c1")]


@pytest.mark.parametrize("newest_first", [False, True], ids=["oldest-first", "newest-first"])
def test_history_pages_with_cursors(engine: Engine, newest_first: bool) -> None:
    full = _busy_counter(engine, 6)
    assert [seq for seq, _ in full] == list(range(1, len(full) + 1)) and len(full) == 10
    assert isinstance(engine.history("c1"), Page) and engine.history("c1").next is None
    want = full[::-1] if newest_first else full
    for limit in (1, 3, 9, 10, 11, 1000):
        seen: list[tuple[int, str]] = []
        cursor = None
        pages = 0
        while True:
            page = engine.history("c1", limit=limit, cursor=cursor, newest_first=newest_first)
            pages += 1
            assert len(page) <= limit and isinstance(page.next, str | None)
            seen += [(h.seq, f"{h.kind}:{h.name}") for h in page]
            if page.next is None:
                break
            cursor = page.next
        assert seen == want, limit
        assert pages == -(-10 // limit), limit  # no empty page at the end
    assert engine.history("c1", newest_first=True).items == engine.history("c1").items[::-1]


def test_history_bad_limit_or_cursor_is_refused(engine: Engine) -> None:
    _busy_counter(engine, 3)
    oldest = engine.history("c1", limit=2).next
    newest = engine.history("c1", limit=2, newest_first=True).next
    assert oldest and newest
    for kw in (
        {"limit": 0},
        {"limit": 1001},
        {"limit": -3},
        {"limit": "5"},
        {"limit": True},
        {"limit": 2.0},
        {"cursor": "garbage"},
        {"cursor": "o0.1.1"},
        {"cursor": "o3.1"},
        {"cursor": f"{oldest} "},
        {"cursor": "o99999999999.1.1"},
        {"cursor": "o1.2147483648.1"},
        {"cursor": "x1.1.1"},
        {"cursor": "o1.1.1\x00"},
        {"cursor": newest},  # a newest-first cursor, read oldest first
        {"cursor": oldest, "newest_first": True},
    ):
        with pytest.raises(InputError) as info:
            engine.history("c1", **kw)
        assert "limit" in str(info.value) or "cursor" in str(info.value)
    with pytest.raises(InputError, match="newest_first=True to go on"):
        engine.history("c1", cursor=newest)


def test_a_history_row_that_is_not_json_is_shown_as_text(tmp_path: Any) -> None:
    import sqlite3

    from gorch.store.sql import SQLStore

    path = tmp_path / "edited.db"
    engine = Engine(SQLStore(f"sqlite:///{path}"), WORKFLOWS)
    try:
        engine.start("counter", Counter(), id="c1")
        engine.send("c1", "Add", {"by": 2})
        with sqlite3.connect(path) as db:  # an operator edits a row by hand
            db.execute("UPDATE gorch_history SET input = '{by: 2' WHERE kind = 'event'")
            db.execute("UPDATE gorch_history SET output = 'oops' WHERE kind = 'event'")
        [started, event] = engine.history("c1")
        assert started.note is None and started.input == {"n": 0, "stopped": False,
                                                           "wrapped": False}  # fmt: skip
        assert (event.kind, event.name, event.input, event.output) == (
            "event",
            "Add",
            "{by: 2",
            "oops",
        )
        assert event.note is not None
        assert "the stored input is not valid JSON" in event.note
        assert "the stored output is not valid JSON" in event.note
        # the rest of the engine reads past it
        assert [w.since for w in engine.waits("c1")] == [event.at]
        assert engine.send("c1", "Add", {"by": 1}) == {"n": 3, "by": 1}
        assert len(engine.history("c1", limit=1, newest_first=True)) == 1
    finally:
        engine.store.close()


def dumps_obj(obj: Any) -> Any:
    import orjson

    return orjson.loads(dumps(obj))
