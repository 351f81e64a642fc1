"""Deleting personal data (``Engine.delete_data``): the declared fields are reset in the data,
every history payload and idempotency answer is scrubbed, the history keeps its shape, the
deletion is recorded, and no trace of an erased value is left in the database (the raw bytes
of a SQLite file and its WAL; a real ``pg_dump``); a SIGKILL leaves all or nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, ClassVar

import orjson
import pytest
from _engine_workflows import lease, unchanged
from _erase_workflows import (
    NAME,
    OLD_EMAIL,
    PHONE,
    SECRETS,
    WORKFLOWS,
    Anonymous,
    Contact,
    Ticket,
    fill,
)

from gorch import (
    BusyError,
    DefinitionError,
    Engine,
    ErasureError,
    HistoryKind,
    InputError,
    NotFoundError,
    On,
    RunStatus,
    S,
    Wait,
)
from gorch.engine._scrub import ERASED, Scrubber
from gorch.store import MemoryStore, SQLStore, Store
from gorch.testing.postgres import find_bin

TESTS = Path(__file__).parent


@pytest.fixture
def engine(store: Store) -> Engine:
    return Engine(store, WORKFLOWS, busy_wait=0.2)


def stored_texts(engine: Engine, id: str) -> str:
    """Everything the store gives back about the instance, as one text."""
    store = engine.store
    parts = [repr(store.get(id)), repr(store.history(id)), repr(store.keys(id))]
    return "\n".join(parts)


def test_the_declared_fields_are_reset_and_every_payload_is_scrubbed(engine: Engine) -> None:
    fill(engine)
    assert all(s in stored_texts(engine, "t-1") for s in SECRETS)  # what there is to erase

    inst = engine.delete_data("t-1", actor="dpo", reason="GDPR request")

    assert inst.data == Ticket(name="", contact=Contact("", ""), topic="billing", replies=1)
    assert not [s for s in SECRETS if s in stored_texts(engine, "t-1")]
    details = engine.history("t-1")[1]
    assert details.input == {"name": "", "email": "", "phone": ""}
    assert details.output == f"Thank you, {ERASED}; we write to {ERASED}"
    assert engine.history("t-1")[3].output == {"email": "", "was": ERASED}
    # what is not personal stays as it was
    assert engine.history("t-1")[0].input["topic"] == "billing"


def test_the_history_keeps_its_shape_and_records_the_deletion(engine: Engine) -> None:
    fill(engine)
    before = [(h.seq, h.at, h.kind, h.name, h.thread) for h in engine.history("t-1")]

    engine.delete_data("t-1", actor="dpo", reason=f"request of {NAME} by letter")

    history = engine.history("t-1")
    assert [(h.seq, h.at, h.kind, h.name, h.thread) for h in history[:-1]] == before
    last = history[-1]
    assert last.kind == HistoryKind.DATA_DELETED
    assert HistoryKind.DATA_DELETED.value == "data_deleted"
    assert (last.name, last.actor) == ("ticket", "dpo")
    assert last.input == {"fields": ["name", "contact.email", "contact.phone"]}
    assert last.reason == f"request of {ERASED} by letter"  # the reason is scrubbed too


def test_the_instance_goes_on_and_a_repeated_request_gets_the_scrubbed_answer(
    engine: Engine,
) -> None:
    fill(engine)
    engine.delete_data("t-1")

    again = engine.send("t-1", "Details", {"name": NAME, "email": OLD_EMAIL, "phone": PHONE},
                        key="k1")  # fmt: skip
    assert again == f"Thank you, {ERASED}; we write to {ERASED}"
    engine.send("t-1", "NewEmail", {"email": "new@example.com"})
    engine.send("t-1", "Close")
    inst = engine.get("t-1")
    assert inst.status is RunStatus.FINISHED
    assert inst.data.contact == Contact("new@example.com", "") and inst.data.replies == 2


def test_a_second_deletion_erases_what_came_since(engine: Engine) -> None:
    fill(engine)
    engine.delete_data("t-1")
    engine.send("t-1", "NewEmail", {"email": "later@example.com"})
    engine.delete_data("t-1")
    assert "later@example.com" not in stored_texts(engine, "t-1")
    assert [h.kind for h in engine.history("t-1")].count("data_deleted") == 2


@pytest.mark.parametrize("end", ["finished", "cancelled"])
def test_an_ended_instance_can_be_erased(engine: Engine, end: str) -> None:
    fill(engine)
    if end == "finished":
        engine.send("t-1", "Close")
    else:
        engine.cancel("t-1")
    engine.delete_data("t-1", actor="dpo")
    inst = engine.get("t-1")
    assert inst.status == end and inst.data.name == ""
    assert not [s for s in SECRETS if s in stored_texts(engine, "t-1")]


def test_refusals_change_nothing(engine: Engine) -> None:
    fill(engine)
    engine.start("anonymous", Anonymous(note="x"), id="a-1")
    with pytest.raises(NotFoundError):
        engine.delete_data("nope")
    with unchanged(engine, "a-1"), pytest.raises(ErasureError) as info:
        engine.delete_data("a-1")
    assert "Anonymous names no personal data fields; declare them" in str(info.value)
    with unchanged(engine, "t-1"), pytest.raises(InputError, match="an actor must be"):
        engine.delete_data("t-1", actor="")
    with unchanged(engine, "t-1"), pytest.raises(InputError, match="a reason must be"):
        engine.delete_data("t-1", reason="x" * 100_000)
    lease(engine.store, "t-1", "other", timedelta(seconds=60))
    with unchanged(engine, "t-1"), pytest.raises(BusyError):
        engine.delete_data("t-1")


# --------------------------------------------------------------------------------------------
# the declaration, checked at registration


@dataclass
class Opaque:
    """A type with no empty value: serde cannot make one from nothing."""

    def __init__(self, code: str) -> None:
        if not code:
            raise ValueError("empty")
        self.code = code


def _class(personal: Any, **fields: Any) -> type:
    def definition(self: Any) -> Any:
        return S(Wait("w", On("E", lambda: None)))

    ns: dict[str, Any] = {"__annotations__": {"personal_data": ClassVar[Any]}}
    ns.update({"personal_data": personal, "definition": definition})
    ns["__annotations__"].update(fields)
    return dataclass(type("Form", (), ns))


@pytest.mark.parametrize(
    ("personal", "expected"),
    [
        (("emial",), "Form has no field 'emial'. Did you mean 'email'?"),
        (("email.domain",), "'email' is not a record"),
        (("contact.mail",), "Contact has no field 'mail'. Did you mean 'email'?"),
        ("email", "personal_data must be a tuple of field names"),
        (("email", "email"), "names 'email' more than once"),
    ],
)
def test_a_bad_declaration_is_refused_at_registration(personal: Any, expected: str) -> None:
    cls = _class(personal, email=str, contact=Contact | None)
    with pytest.raises(DefinitionError) as info:
        Engine(MemoryStore(), {"form": cls})
    assert expected in str(info.value)


def test_a_field_without_a_neutral_value_must_be_given_a_default() -> None:
    cls = _class(("badge",), badge=Opaque)
    with pytest.raises(DefinitionError, match="give the field a default"):
        Engine(MemoryStore(), {"form": cls})


# --------------------------------------------------------------------------------------------
# no trace left in the database


def test_no_trace_in_the_sqlite_file_or_its_wal(tmp_path: Path) -> None:
    db = tmp_path / "gorch.db"
    store = SQLStore(f"sqlite:///{db}")
    engine = Engine(store, WORKFLOWS)
    for n in range(20):  # more commits: old copies of the data in pages and in the WAL
        fill(engine, f"t-{n}")

    def found() -> list[str]:
        raw = db.read_bytes() + (Path(f"{db}-wal").read_bytes() if Path(f"{db}-wal").exists()
                                 else b"")  # fmt: skip
        return [s for s in SECRETS if s.encode() in raw]

    assert found() == list(SECRETS)  # the test can see them
    for n in range(20):
        engine.delete_data(f"t-{n}", actor="dpo")
    assert found() == []
    engine.send("t-3", "Close")
    store.close()
    assert found() == []


def test_no_trace_in_a_pg_dump(pg_store_url: str) -> None:
    store = SQLStore(pg_store_url)
    engine = Engine(store, WORKFLOWS)
    fill(engine)
    fill(engine, "t-2")

    def dump() -> str:
        out = subprocess.run([str(find_bin() / "pg_dump"), "--data-only", "-d", pg_store_url],
                             capture_output=True, text=True, check=True)  # fmt: skip
        return out.stdout

    assert all(s in dump() for s in SECRETS)
    engine.delete_data("t-1")
    engine.delete_data("t-2")
    text = dump()
    store.close()
    assert [s for s in SECRETS if s in text] == []
    assert "data_deleted" in text


@pytest.mark.timeout(120)
@pytest.mark.parametrize("when", ["mid", "after"])
def test_a_sigkill_during_the_erasure_leaves_all_or_nothing(sql_url: str, when: str) -> None:
    store = SQLStore(sql_url)
    engine = Engine(store, WORKFLOWS)
    fill(engine)
    before = stored_texts(engine, "t-1")
    paths = [str(TESTS), *filter(None, [os.environ.get("PYTHONPATH")])]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}
    child = subprocess.run([sys.executable, str(TESTS / "_erase_workflows.py"), sql_url, when],
                           env=env, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert child.returncode == -signal.SIGKILL, child.stderr
    after = stored_texts(engine, "t-1")
    if when == "mid":
        assert after == before
        assert engine.history("t-1")[-1].kind == "event"
    else:
        assert [s for s in SECRETS if s in after] == []
        assert engine.history("t-1")[-1].kind == "data_deleted"
    engine.send("t-1", "Close")  # either way the instance goes on
    assert engine.get("t-1").status is RunStatus.FINISHED
    store.close()


# --------------------------------------------------------------------------------------------
# the scrubber


def test_the_scrubber_resets_keys_and_replaces_erased_texts() -> None:
    s = Scrubber({"email": ""}, ["Ana Wojcik", "Al"])
    s.learn({"items": [{"email": "x@y.z"}]})
    doc = {"email": "q@r.s", "to": ["x@y.z"], "note": "Dear Ana Wojcik", "Al": 1, "Also": "Al"}
    assert s.doc(doc) == {
        "email": "", "to": [ERASED], "note": f"Dear {ERASED}", ERASED: 1, "Also": ERASED,
    }  # fmt: skip
    assert s.text("Alright") == "Alright"  # a short value only where a whole text equals it
    assert s.json_text('{"a": 1}') == '{"a": 1}'  # unchanged text is kept as it is
    assert s.json_text("not json x@y.z") == f"not json {ERASED}"
    assert orjson.loads(s.json_text('{"email": "a"}')) == {"email": ""}
