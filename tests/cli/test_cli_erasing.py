"""``gorch delete-data ID``: asks before erasing (unless --yes), erases the declared fields
everywhere, records who and why; refusals change nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from _erase_workflows import NAME, SECRETS, WORKFLOWS, Anonymous, fill
from _gorch import Gorch

from gorch import Engine
from gorch.store import SQLStore


@contextmanager
def engine_of(g: Gorch) -> Iterator[Engine]:
    store = SQLStore(f"sqlite:///{g.db}")
    try:
        yield Engine(store, WORKFLOWS)
    finally:
        store.close()


@pytest.fixture
def t(tmp_path: Path) -> Gorch:
    g = Gorch(tmp_path / "gorch.db", "_erase_workflows:WORKFLOWS").init()
    with engine_of(g) as engine:
        fill(engine)
    return g


def texts(engine: Engine) -> str:
    return json.dumps([repr(engine.get("t-1").data), [repr(h) for h in engine.history("t-1")]])


def test_delete_data_asks_and_a_no_changes_nothing(t: Gorch) -> None:
    with engine_of(t) as engine:
        before = texts(engine)
    result = t("delete-data", "t-1", input="n\n", code=1)
    assert "erase the personal data of t-1 (name, contact.email, contact.phone)" in result.stderr
    assert "not erased: nothing changed" in result.stderr
    with engine_of(t) as engine:
        assert texts(engine) == before


def test_delete_data_erases_and_records_who_and_why(t: Gorch) -> None:
    out = t("delete-data", "t-1", "--actor", "dpo", "--reason", "GDPR request", input="y\n")
    assert "erased name, contact.email, contact.phone of t-1" in out.stdout
    with engine_of(t) as engine:
        assert not [s for s in SECRETS if s in texts(engine)]
        last = engine.history("t-1")[-1]
        assert (last.kind, last.actor, last.reason) == ("data_deleted", "dpo", "GDPR request")
    history = t("history", "t-1").stdout
    assert "data_deleted" in history and NAME not in history
    items = t.json("history", "t-1")["items"]
    assert items[-1]["kind"] == "data_deleted"
    assert items[-1]["input"] == {"fields": ["name", "contact.email", "contact.phone"]}


def test_delete_data_yes_json_and_the_os_user(t: Gorch, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("getpass.getuser", lambda: "ops-ana")
    data = t.json("delete-data", "t-1", "--yes")
    assert data["fields"] == ["name", "contact.email", "contact.phone"]
    assert data["instance"]["data"]["name"] == ""
    with engine_of(t) as engine:
        assert engine.history("t-1")[-1].actor == "ops-ana"


def test_delete_data_refusals(t: Gorch) -> None:
    assert "no instance has id 't-2'" in t.fail("delete-data", "t-2", "--yes")
    with engine_of(t) as engine:
        engine.start("anonymous", Anonymous(), id="a-1")
    msg = t.fail("delete-data", "a-1")
    assert "Anonymous names no personal data fields; declare them" in msg
    assert "an actor must be" in t.fail("delete-data", "t-1", "--yes", "--actor", " ")
