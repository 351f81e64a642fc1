"""One bad row hurts only itself (every store).

A row whose state or data no longer loads (hand-edited, or written by code whose types have
changed), whose status text is unknown, or whose workflow is not registered: lists and
histories show it with what is known and why it does not load; ``get`` and ``send`` raise one
precise ``UnreadableInstanceError`` naming the instance and the field; pause and cancel still
work; a worker marks it failed with that reason and goes on with the others.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import attrs
import orjson
import pytest

from gorch import Engine, On, RunStatus, S, Step, UnreadableInstanceError, Wait, Worker
from gorch.store import Store, Write


@dataclass
class Ticket:
    title: str = "t"
    log: list[str] = field(default_factory=list)

    def definition(self) -> Any:
        return S(
            Wait("for triage", On("Triage", self.triage)),
            Step("file", lambda: self.log.append("filed")),
            Wait("for close", On("Close")),
        )

    def triage(self, who: str) -> None:
        self.log.append(f"triaged by {who}")


def corrupt(store: Store, id: str, **columns: str) -> None:
    """Replace some columns of the row, as a hand edit would (the SQL stores' own UPDATE
    never writes ``workflow``, so they are edited with SQL)."""
    row = store.get(id)
    assert row is not None
    dialect = getattr(store, "dialect", None)
    if dialect is None:
        store.commit(Write(attrs.evolve(row, **columns), row.version))
        return
    with store._conn() as cur:  # type: ignore[attr-defined]
        for column, value in columns.items():
            cast = "::json" if dialect.name == "postgresql" and column in ("state", "data") else ""
            cur.execute(
                f"UPDATE gorch_instances SET {column} = {dialect.placeholder}{cast} "
                f"WHERE id = {dialect.placeholder}",
                (value, id),
            )


BAD = {
    "data": {"data": '{"title": 5, "log": "not a list"}'},
    "state": {"state": '{"id": "b", "threads": "nope"}'},
    "status": {"status": "snoozing"},
    "workflow": {"workflow": "retired"},
}


@pytest.fixture
def engine(store: Store) -> Engine:
    engine = Engine(store, {"ticket": Ticket})
    for id in ("g1", "b", "g2"):
        engine.start("ticket", Ticket(), id)
    return engine


@pytest.mark.parametrize("what", list(BAD))
def test_a_row_that_does_not_load_is_listed_with_the_reason(engine: Engine, what: str) -> None:
    corrupt(engine.store, "b", **BAD[what])
    page = engine.list()
    by_id = {i.id: i for i in page.items}
    assert set(by_id) == {"g1", "b", "g2"}
    assert by_id["g1"].load_error is None and by_id["g1"].waiting_for() == ["Triage"]
    bad = by_id["b"]
    assert bad.load_error is not None
    assert f"its {what} is unreadable" in bad.load_error
    assert bad.data is None and bad.state.threads == []
    assert [h.kind for h in engine.history("b")] == ["started"]


@pytest.mark.parametrize("what", list(BAD))
def test_get_and_send_name_the_instance_and_the_field(engine: Engine, what: str) -> None:
    corrupt(engine.store, "b", **BAD[what])
    before = engine.store.get("b")
    with pytest.raises(UnreadableInstanceError) as info:
        engine.get("b")
    assert info.value.field == what and info.value.workflow_id == "b"
    assert "instance 'b' cannot be read" in str(info.value)
    with pytest.raises(UnreadableInstanceError) as info:
        engine.send("b", "Triage", "ana")
    assert info.value.field == what
    assert engine.store.get("b") == before  # nothing changed
    engine.send("g1", "Triage", "ana")  # the others are fine
    assert engine.get("g1").data.log == ["triaged by ana", "filed"]


@pytest.mark.parametrize("what", list(BAD))
def test_pause_and_cancel_still_work(engine: Engine, what: str) -> None:
    corrupt(engine.store, "b", **BAD[what])
    engine.pause("b")
    assert engine.store.get("b").status == "paused"  # type: ignore[union-attr]
    inst = engine.cancel("b")
    assert inst.status is RunStatus.CANCELLED
    [last] = engine.history("b")[-1:]
    assert last.kind == "cancelled"
    if what == "status":  # pausing wrote a status this gorch knows: the row reads again
        assert last.error is None
    else:
        assert f"no teardowns ran: instance 'b' cannot be read: its {what}" in (last.error or "")


@pytest.mark.parametrize("what", ["data", "state"])
def test_a_worker_marks_a_row_that_does_not_load_failed_and_goes_on(
    engine: Engine, what: str
) -> None:
    for id in ("g1", "b", "g2"):
        engine.start("ticket", Ticket(), f"run-{id}", defer=True)
    corrupt(engine.store, "run-b", **BAD[what])
    Worker(engine).run_once()
    for id in ("run-g1", "run-g2"):
        assert engine.get(id).waiting_for() == ["Triage"]
    bad = engine.store.get("run-b")
    assert bad is not None and bad.status == "failed"
    assert bad.last_error is not None and f"its {what} is unreadable" in bad.last_error
    assert bad.lease_owner is None
    assert engine.history("run-b")[-1].kind == "failed"
    assert Worker(engine).run_once() == 0  # not claimed again


def test_an_unknown_status_is_never_claimed(engine: Engine) -> None:
    corrupt(engine.store, "b", status="snoozing")
    assert Worker(engine).run_once() == 0
    assert engine.store.get("b").status == "snoozing"  # type: ignore[union-attr]


def test_a_stored_answer_that_is_not_json_refuses_only_that_key(engine: Engine) -> None:
    engine.send("g1", "Triage", "ana", key="k1")
    if not hasattr(engine.store, "dialect"):  # the memory store: edit its record directly
        engine.store._keys[("g1", "k1")].output = "{oops"  # type: ignore[attr-defined]
    elif engine.store.dialect.name == "sqlite":  # type: ignore[attr-defined]
        with engine.store._conn() as cur:  # type: ignore[attr-defined]
            cur.execute("UPDATE gorch_keys SET output = '{oops' WHERE key = 'k1'")
    else:
        pytest.skip("PostgreSQL's json column cannot hold text that is not JSON")
    with pytest.raises(UnreadableInstanceError) as info:
        engine.send("g1", "Triage", "ana", key="k1")
    assert info.value.field == "idempotency key"
    assert engine.get("g1").data.log == ["triaged by ana", "filed"]  # nothing applied again
    engine.send("g1", "Close", key="k2")
    assert engine.get("g1").status is RunStatus.FINISHED


# -- every face: a listing, a 409 problem, a message (never a 500 or a traceback) -------------

TICKETS = {"ticket": Ticket}


@pytest.fixture
def sqlite_engine(tmp_path: Any) -> Any:
    from gorch.store.sql import SQLStore

    store = SQLStore(f"sqlite:///{tmp_path / 'gorch.db'}")
    engine = Engine(store, TICKETS)
    for id in ("g1", "b", "g2"):
        engine.start("ticket", Ticket(), id)
    corrupt(store, "b", data='{"title": 5}')
    yield engine
    store.close()


def test_http_lists_the_row_and_answers_409_for_it(sqlite_engine: Engine) -> None:
    import httpx

    from gorch.http import create_app
    from gorch.testing.http import LiveServer

    with LiveServer(create_app(sqlite_engine)) as url, httpx.Client(base_url=url) as client:
        listing = client.get("/instances")
        assert listing.status_code == 200
        rows = {r["id"]: r for r in listing.json()["items"]}
        assert rows["g1"]["load_error"] is None
        assert "its data is unreadable" in rows["b"]["load_error"]
        one = client.get("/instances/b")
        assert one.status_code == 409
        problem = one.json()
        assert problem["type"] == "urn:gorch:problem:unreadable"
        assert problem["field"] == "data" and "instance 'b' cannot be read" in problem["detail"]
        sent = client.post("/instances/b/events/Triage", json="ana")
        assert sent.status_code == 409
        assert client.post("/instances/b/cancel").status_code == 200


def test_cli_lists_the_row_and_explains_it(sqlite_engine: Engine, tmp_path: Any) -> None:
    from click.testing import CliRunner

    from gorch.cli import cli

    runner = CliRunner()
    base = ["--store", str(tmp_path / "gorch.db"), "--workflows", "test_unreadable:TICKETS"]
    listed = runner.invoke(cli, [*base, "list"])
    assert listed.exit_code == 0, listed.output
    assert "g1" in listed.output and "instance 'b'" in listed.output  # the reason, in a cell
    as_json = runner.invoke(cli, [*base, "list", "--json"])
    rows = {r["id"]: r for r in orjson.loads(as_json.output)["items"]}
    assert "its data is unreadable" in rows["b"]["load_error"] and rows["g1"]["load_error"] is None
    shown = runner.invoke(cli, [*base, "show", "b"])
    assert shown.exit_code == 1
    assert "instance 'b' cannot be read: its data is unreadable" in " ".join(shown.output.split())
    assert shown.exception is None or isinstance(shown.exception, SystemExit)  # no traceback


def test_a_worker_never_claims_another_apps_instances(store: Store) -> None:
    ours = Engine(store, {"ticket": Ticket})
    theirs = Engine(store, {"other": Ticket})
    theirs.start("other", Ticket(), "t-1", defer=True)
    ours.start("ticket", Ticket(), "o-1", defer=True)
    assert Worker(ours).run_once() == 1  # only its own
    row = store.get("t-1")
    assert row is not None and row.status == "running" and row.lease_owner is None
    assert Worker(theirs).run_once() == 1
    assert theirs.get("t-1").waiting_for() == ["Triage"]
    listed = {i.id: i for i in ours.list()}  # shown, with why this engine cannot read it
    assert "workflow 'other' is not registered here" in (listed["t-1"].load_error or "")
