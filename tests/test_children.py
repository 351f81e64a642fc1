"""Child workflows and waiting on another instance (docs/together.md): a ``Child`` starts its
child in the commit that stores the wait and takes its end through a message kept in the
store; an ``OnInstance`` case fires when the instance it names gets somewhere. On every store;
SIGKILLs around each commit on SQLite and PostgreSQL.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from _child_workflows import KILL_ENV, WORKFLOWS, Delivery, Shop, Shop3, Watcher
from _subprocess import child_env

from gorch import Child, Engine, InputError, RunStatus, S, Worker
from gorch.errors import DefinitionError
from gorch.store import Store

TESTS = Path(__file__).resolve().parent


@pytest.fixture
def eng(store: Store) -> Iterator[Engine]:
    yield Engine(store, WORKFLOWS, lease=1.0)


def drain(engine: Engine) -> int:
    done, worker = 0, Worker(engine)
    while n := worker.run_once():
        done += n
    return done


def kinds(engine: Engine, id: str) -> list[str]:
    return [f"{h.kind}:{h.name}" for h in engine.history(id)]


def test_a_child_starts_with_the_parents_commit_and_its_end_reaches_the_parent(
    eng: Engine,
) -> None:
    eng.start("shop", Shop(), id="s1")
    parent = eng.get("s1")
    assert parent.status is RunStatus.WAITING and parent.at_statements == ("deliver",)
    kid = "s1.deliver.1"
    assert parent.children == [kid]
    child = eng.get(kid)
    assert child.parent == "s1" and child.status is RunStatus.RUNNING
    assert "child:deliver ended" in kinds(eng, "s1")
    drain(eng)
    parent = eng.get("s1")
    assert parent.status is RunStatus.FINISHED
    assert parent.data.ends == [[kid, "finished", "home"]] and parent.data.after == 1
    assert kinds(eng, "s1").count("event:deliver ended") == 1
    assert eng.store.messages() == [] and eng.store.watches() == []
    assert [i.id for i in eng.list(parent="s1")] == [kid]


def test_three_children_in_parallel_one_cancelled_each_end_seen_once(eng: Engine) -> None:
    eng.start("shop3", Shop3(hold="b"), id="p")
    kids = eng.get("p").children
    assert sorted(kids) == ["p.deliver-a.go-a:1", "p.deliver-b.go-b:1", "p.deliver-c.go-c:1"]
    drain(eng)  # a and c finish; b waits to be released
    held = "p.deliver-b.go-b:1"
    assert eng.get(held).status is RunStatus.WAITING
    eng.cancel(held, actor="ana", reason="no driver")
    drain(eng)
    inst = eng.get("p")
    assert inst.status is RunStatus.FINISHED
    assert sorted(inst.data.ends) == [
        ["p.deliver-a.go-a:1", "finished", "a"],
        ["p.deliver-b.go-b:1", "cancelled", "b"],
        ["p.deliver-c.go-c:1", "finished", "c"],
    ]
    got = kinds(eng, "p")
    for a in "abc":
        assert got.count(f"event:deliver {a} ended") == 1
        assert got.count(f"child:deliver {a} ended") == 1


def test_cancelling_the_parent_cancels_the_children_that_have_not_ended(eng: Engine) -> None:
    eng.start("shop3", Shop3(hold="a"), id="q")
    drain(eng)
    eng.cancel("q", actor="ana", reason="order withdrawn")
    assert eng.get("q").status is RunStatus.CANCELLED
    held = eng.get("q.deliver-a.go-a:1")
    assert held.status is RunStatus.CANCELLED
    assert [h.reason for h in eng.history(held.id) if h.kind == "cancelled"] == [
        "its parent 'q' was cancelled"
    ]
    assert eng.get("q.deliver-b.go-b:1").status is RunStatus.FINISHED  # ended before: left


def test_the_engine_delivered_event_cannot_be_sent(eng: Engine) -> None:
    eng.start("shop", Shop(), id="s")
    before = eng.get("s").version
    with pytest.raises(InputError, match="from the engine"):
        eng.send("s", "deliver ended", {"id": "x", "status": "finished"})
    assert eng.get("s").version == before


def test_a_child_of_an_unregistered_workflow_is_refused_at_registration(store: Store) -> None:
    class Lonely:
        def definition(self) -> object:
            return S(Child("c", "delivry", Delivery))

    with pytest.raises(DefinitionError, match=r"'delivry', which is not registered.*'delivery'"):
        Engine(store, {"lonely": Lonely, "delivery": Delivery})


def test_a_child_id_that_exists_fails_the_parent_visibly(eng: Engine) -> None:
    eng.start("delivery", Delivery(), id="taken")

    class Fixed(Shop):
        def definition(self) -> object:
            return S(Child("deliver", "delivery", Delivery, id="taken"))

    e2 = Engine(eng.store, {**WORKFLOWS, "fixed": Fixed}, lease=1.0)
    e2.start("fixed", Fixed(), id="f")
    inst = e2.get("f")
    assert inst.status is RunStatus.RUNNING and inst.last_error is not None
    assert "'taken' exists already" in inst.last_error
    assert inst.children == []


def test_on_instance_fires_when_the_other_finishes(eng: Engine) -> None:
    eng.start("watcher", Watcher(other="later"), id="w")  # the other does not exist yet
    assert eng.get("w").status is RunStatus.WAITING
    eng.start("delivery", Delivery(), id="later")
    drain(eng)
    inst = eng.get("w")
    assert inst.status is RunStatus.FINISHED and inst.data.seen == ["later:finished:"]
    assert not inst.data.gave_up


def test_on_instance_fires_when_the_other_reaches_a_statement(eng: Engine) -> None:
    eng.start("delivery", Delivery(hold=True), id="parked")
    eng.start("watcher", Watcher(other="parked", at="parked"), id="w")  # met at once
    drain(eng)
    assert eng.get("w").data.seen == ["parked:waiting:parked"]


def test_on_instance_races_a_timeout(eng: Engine, gorch_time: object) -> None:
    from datetime import timedelta

    eng.start("delivery", Delivery(hold=True), id="slow")
    eng.start("watcher", Watcher(other="slow"), id="w")
    gorch_time.tick(timedelta(seconds=61))  # type: ignore[attr-defined]
    drain(eng)
    inst = eng.get("w")
    assert inst.status is RunStatus.FINISHED and inst.data.gave_up and inst.data.seen == []
    assert eng.store.watches("w") == []
    eng.cancel("slow", actor="ana", reason="done")
    drain(eng)  # its end meets no watch any more
    assert eng.get("w").data.seen == [] and eng.store.messages() == []


KILL_POINTS = [
    "setup", "start-before", "start-after", "end-before", "end-after", "deliver-before",
    "deliver-after",
]  # fmt: skip


@pytest.mark.parametrize("point", KILL_POINTS)
@pytest.mark.parametrize("store_kind", ["sqlite", "postgres"])
def test_a_sigkill_around_the_childs_start_and_end_never_makes_two_or_loses_one(
    store: Store, sql_url: str, point: str, tmp_path: Path
) -> None:
    engine = Engine(store, WORKFLOWS, lease=1.0)
    engine.start("shop", Shop(), id="k", defer=True)
    env = child_env(**{KILL_ENV: point})
    log = tmp_path / "child.log"
    with log.open("wb") as out:
        child = subprocess.run(
            [sys.executable, str(TESTS / "_child_workflows.py"), sql_url],
            env=env, stdout=out, stderr=subprocess.STDOUT, timeout=120,
        )  # fmt: skip
    assert child.returncode == -signal.SIGKILL, log.read_text()
    time.sleep(1.1)  # the dead process's lease expires
    drain(engine)
    inst = engine.get("k")
    assert inst.status is RunStatus.FINISHED, inst
    assert inst.children == ["k.deliver.1"]
    assert inst.data.ends == [["k.deliver.1", "finished", "home"]]
    assert inst.data.after == 1
    got = kinds(engine, "k")
    assert got.count("child:deliver ended") == 1 and got.count("event:deliver ended") == 1
    assert engine.get("k.deliver.1").data.driven == 1
    assert store.messages() == [] and store.watches() == []
