"""``DELETE /instances/{id}/data``: the admin erases an instance's personal data over HTTP;
the history over HTTP shows the deletion and none of the values; refusals are problems."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from _erase_workflows import NAME, SECRETS, WORKFLOWS, Anonymous, fill

from gorch import Engine
from gorch.http import Auth, create_app
from gorch.store import SQLStore
from gorch.testing.http import LiveServer

TOKENS_FILE = Path(__file__).resolve().parent.parent / "examples" / "pizza" / "tokens.toml"
ADMIN = {"Authorization": "Bearer admin-demo-token"}
COOK = {"Authorization": "Bearer cook-demo-token"}


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[httpx.Client, Engine]]:
    store = SQLStore(f"sqlite:///{tmp_path / 'gorch.db'}")
    engine = Engine(store, WORKFLOWS)
    fill(engine)
    engine.start("anonymous", Anonymous(), id="a-1")
    app = create_app(engine, auth=Auth.from_file(TOKENS_FILE))
    with LiveServer(app) as url, httpx.Client(base_url=url, timeout=20) as client:
        yield client, engine
    store.close()


def test_the_admin_erases_and_the_history_shows_the_deletion(
    served: tuple[httpx.Client, Engine],
) -> None:
    client, engine = served
    r = client.delete("/instances/t-1/data", params={"reason": "GDPR request"}, headers=ADMIN)
    assert r.status_code == 200, r.text
    assert r.json()["data"]["name"] == "" and r.json()["data"]["contact"]["email"] == ""
    history = client.get("/instances/t-1/history", headers=ADMIN)
    assert not [s for s in SECRETS if s in history.text]
    last = history.json()["items"][-1]
    assert last["kind"] == "data_deleted"
    assert last["input"] == {"fields": ["name", "contact.email", "contact.phone"]}
    assert (last["actor"], last["reason"]) == ("ops-demo", "GDPR request")  # the token's name
    entry = engine.history("t-1")[-1]
    assert (entry.actor, entry.reason) == ("ops-demo", "GDPR request")
    assert NAME not in client.get("/instances/t-1", headers=ADMIN).text


def test_refusals_are_problems_and_change_nothing(served: tuple[httpx.Client, Engine]) -> None:
    client, engine = served
    before = engine.store.get("t-1")
    assert client.delete("/instances/t-1/data").status_code == 401
    assert client.delete("/instances/t-1/data", headers=COOK).status_code == 403
    assert client.delete("/instances/nope/data", headers=ADMIN).status_code == 404
    r = client.delete("/instances/a-1/data", headers=ADMIN)
    assert r.status_code == 409 and r.json()["type"].endswith("not-erasable")
    assert "declare them" in r.json()["detail"]
    r = client.delete("/instances/t-1/data", params={"reason": "x" * 3000}, headers=ADMIN)
    assert r.status_code == 400  # a bad parameter, as on every route
    assert engine.store.get("t-1") == before
