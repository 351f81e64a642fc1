"""Data migrations (every store, SQLite and PostgreSQL included): data written by an older
``data_version`` is migrated step by step when it is loaded and written back with a
``migrated`` history entry by the next commit, or in bulk by ``Engine.migrate`` (with a dry
run that counts); a migration that fails changes nothing, and says which class, version and
exception.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import orjson
import pytest
from _deploy_workflows import Shop, seed

from gorch import (
    DefinitionError,
    Engine,
    HistoryKind,
    InputError,
    NotFoundError,
    RunStatus,
    UnreadableInstanceError,
    validate,
)
from gorch.store import MemoryStore, Store


@dataclass
class ShopV2(Shop):
    """Version 2: ``qty`` moves to ``quantity`` (``qty`` stays, at its default)."""

    data_version: ClassVar[int] = 2
    quantity: int = 1
    calls: ClassVar[list[int]] = []

    @classmethod
    def migrate(cls, data: dict[str, Any], version: int) -> dict[str, Any]:
        cls.calls.append(version)
        data["quantity"] = data.pop("qty")
        return data


@dataclass
class ShopV3(ShopV2):
    """Version 3: and ``items`` are upper case."""

    data_version: ClassVar[int] = 3

    @classmethod
    def migrate(cls, data: dict[str, Any], version: int) -> dict[str, Any]:
        if version == 1:
            return ShopV2.migrate(data, 1)
        data["items"] = [i.upper() for i in data["items"]]
        return data


@dataclass
class Picky(ShopV2):
    """A migration that fails on a shop of 5 or more."""

    @classmethod
    def migrate(cls, data: dict[str, Any], version: int) -> dict[str, Any]:
        if data["qty"] >= 5:
            raise ValueError(f"cannot migrate a qty of {data['qty']}")
        return ShopV2.migrate(data, version)


@pytest.fixture
def ids(store: Store) -> dict[str, list[str]]:
    ShopV2.calls.clear()
    return seed(Engine(store, {"shop": Shop}))


def stored(store: Store, id: str) -> tuple[Any, Any, int, Any]:
    row = store.get(id)
    assert row is not None
    return orjson.loads(row.state), orjson.loads(row.data), row.version, row.updated_at


def test_loading_migrates_and_the_next_commit_writes_it(
    store: Store, ids: dict[str, list[str]]
) -> None:
    engine = Engine(store, {"shop": ShopV2})
    before = stored(store, "w-0")
    assert before[0].get("data_version", 1) == 1 and "quantity" not in before[1]
    assert engine.get("w-0").data.quantity == 1  # migrated in memory: reading writes nothing
    assert stored(store, "w-0") == before
    engine.send("w-0", "Ack")
    state, data, _, _ = stored(store, "w-0")
    assert state["data_version"] == 2 and data["quantity"] == 1
    kinds = [(h.kind, h.input) for h in engine.history("w-0")]
    assert kinds.count((HistoryKind.MIGRATED, {"from": 1, "to": 2})) == 1
    assert kinds[-2:] == [(HistoryKind.MIGRATED, {"from": 1, "to": 2}), ("event", None)]
    engine.send("w-0", "Pay")  # current now: not migrated again
    assert [h.kind for h in engine.history("w-0")].count(HistoryKind.MIGRATED) == 1


def test_a_new_instance_is_written_at_the_class_version(store: Store) -> None:
    engine = Engine(store, {"shop": ShopV2})
    engine.start("shop", ShopV2(), id="new")
    assert stored(store, "new")[0]["data_version"] == 2
    assert engine.migrate().current == 1


def test_migrate_in_bulk_with_a_dry_run_first(store: Store, ids: dict[str, list[str]]) -> None:
    engine = Engine(store, {"shop": ShopV2})
    every = sorted(i for group in ids.values() for i in group)
    before = {id: stored(store, id) for id in every}
    dry = engine.migrate(dry_run=True)
    assert (dry.checked, dry.migrated, dry.current, dry.failed) == (6, 6, 0, 0)
    assert dry.ok and dry.dry_run and str(dry).startswith("would migrate 6 of 6")
    assert {id: stored(store, id) for id in every} == before  # nothing written
    done = engine.migrate()
    assert (done.migrated, done.failed, done.dry_run) == (6, 0, False)
    for id in every:
        state, data, version, _ = stored(store, id)
        assert state["data_version"] == 2 and data["quantity"] == 1, id
        assert version == before[id][2] + 1
    assert engine.get("f-0").status is RunStatus.FAILED  # statuses kept
    assert engine.get("d-0").status is RunStatus.FINISHED
    again = engine.migrate()
    assert (again.migrated, again.current) == (0, 6)
    assert engine.check().ok


def test_migrations_run_one_version_at_a_time(store: Store, ids: dict[str, list[str]]) -> None:
    engine = Engine(store, {"shop": ShopV2})
    engine.migrate(workflow="shop")  # everything at version 2 now
    v3 = Engine(store, {"shop": ShopV3})
    engine.start("shop", ShopV2(items=["x"]), id="v2")
    Engine(store, {"shop": Shop}).start("shop", Shop(items=["y"]), id="v1")
    assert v3.get("v1").data.items == ["Y"] and v3.get("v1").data.quantity == 1
    assert v3.get("v2").data.items == ["X"]
    assert v3.migrate().migrated == 8
    entries = [h.input for h in v3.history("v1") if h.kind == HistoryKind.MIGRATED]
    assert entries == [{"from": 1, "to": 3}]
    with pytest.raises(NotFoundError, match="'shops'"):
        v3.migrate("shops")


def test_a_failed_migration_changes_nothing(store: Store, ids: dict[str, list[str]]) -> None:
    Engine(store, {"shop": Shop}).start("shop", Shop(qty=7), id="big")
    before = store.get("big")
    engine = Engine(store, {"shop": Picky})
    report = engine.migrate()
    assert (report.migrated, report.failed, report.ok) == (6, 1, False)
    (p,) = report.problems
    assert (p.kind, p.ids, p.count) == ("failed_migration", ("big",), 1)
    assert "Picky.migrate(data, 1) failed: it raised ValueError: cannot migrate a qty of 7" in (
        p.message
    )
    assert store.get("big") == before  # the row, every column, as it was
    with pytest.raises(UnreadableInstanceError, match=r"Picky\.migrate") as e:
        engine.get("big")
    assert e.value.field == "data"
    checked = engine.check()
    (c,) = checked.problems
    assert (c.kind, c.ids) == ("failed_migration", ("big",))
    assert "Picky.migrate(data, 1) fails: it raised ValueError" in c.message
    assert store.get("big") == before


def test_a_migration_that_returns_no_dict_is_refused(store: Store) -> None:
    @dataclass
    class Lost(ShopV2):
        @classmethod
        def migrate(cls, data: dict[str, Any], version: int) -> Any:
            return None

    Engine(store, {"shop": Shop}).start("shop", Shop(), id="x")
    before = store.get("x")
    with pytest.raises(UnreadableInstanceError, match="it returned NoneType, not a dict"):
        Engine(store, {"shop": Lost}).send("x", "Ack")
    assert store.get("x") == before


def test_data_newer_than_the_code_is_a_problem(store: Store, ids: dict[str, list[str]]) -> None:
    """A roll-back: the data was written by a later version; nothing downgrades it."""
    Engine(store, {"shop": ShopV2}).migrate()
    report = Engine(store, {"shop": Shop}).check()
    (p,) = report.problems
    assert p.kind == "failed_migration" and p.count == 5
    assert "written by data version 2, and this code has data version 1" in p.message


def test_versions_are_validated_at_registration() -> None:
    @dataclass
    class NoMigrate(Shop):
        data_version: ClassVar[int] = 2

    with pytest.raises(DefinitionError, match="data_version is 2, but the class has no migrate"):
        Engine(MemoryStore(), {"shop": NoMigrate})
    for bad in (0, "2", True, 1.5):

        @dataclass
        class Odd(Shop):
            data_version: ClassVar[Any] = bad
            log: list[str] = field(default_factory=list)

        with pytest.raises(DefinitionError, match="data_version must be a whole number from 1"):
            validate(Odd)


def test_a_state_remembers_its_data_version() -> None:
    """Stored before data versions, a state reads as version 1; a later one keeps its own."""
    from gorch import State, dumps, loads, new_state

    old = orjson.loads(dumps(new_state("x", "shop")))
    del old["data_version"]
    assert loads(orjson.dumps(old), State).data_version == 1
    later = new_state("x", "shop")
    later.data_version = 3
    assert loads(dumps(later), State).data_version == 3


def test_migrate_records_who_migrated_and_why(store: Store, ids: dict[str, list[str]]) -> None:
    engine = Engine(store, {"shop": ShopV2})
    with pytest.raises(InputError, match="actor"):
        engine.migrate(actor="")
    assert engine.migrate(dry_run=True).migrated == 6  # the refused call changed nothing
    engine.migrate(actor="ana", reason="deploy 2.0")
    [entry] = [h for h in engine.history("w-0") if h.kind == HistoryKind.MIGRATED]
    assert (entry.actor, entry.reason, entry.input) == ("ana", "deploy 2.0", {"from": 1, "to": 2})
