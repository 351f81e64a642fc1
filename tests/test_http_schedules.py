"""The schedule routes: ``GET /schedules`` (any token), ``PUT /schedules/{name}``,
``POST /schedules/{name}/pause`` and ``/resume``, ``DELETE /schedules/{name}`` (the admin
role), served by real uvicorn on a SQLite file; refusals are problems and change nothing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from examples.pizza.workflow import PizzaOrder
from gorch import Engine, clock
from gorch.http import PROBLEM, Auth, create_app
from gorch.store import SQLStore
from gorch.testing.http import LiveServer

TOKENS_FILE = Path(__file__).resolve().parent.parent / "examples" / "pizza" / "tokens.toml"
ADMIN = {"Authorization": "Bearer admin-demo-token"}
COOK = {"Authorization": "Bearer cook-demo-token"}
NIGHTLY = {"workflow": "pizza", "cron": "0 2 * * *"}


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[httpx.Client, Engine]]:
    store = SQLStore(f"sqlite:///{tmp_path / 'gorch.db'}")
    engine = Engine(store, {"pizza": PizzaOrder})
    app = create_app(engine, auth=Auth.from_file(TOKENS_FILE))
    with LiveServer(app) as url, httpx.Client(base_url=url, timeout=20) as client:
        yield client, engine
    store.close()


def problem(r: httpx.Response, status: int, kind: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == PROBLEM
    body: dict[str, Any] = r.json()
    assert body["type"] == f"urn:gorch:problem:{kind}", body
    return body


def test_the_admin_schedules_and_anyone_with_a_token_lists(
    served: tuple[httpx.Client, Engine],
) -> None:
    client, engine = served
    r = client.put("/schedules/nightly", json=NIGHTLY, headers=ADMIN)
    assert r.status_code == 200, r.text
    made = r.json()
    assert (made["name"], made["workflow"], made["cron"], made["timezone"]) == (
        "nightly", "pizza", "0 2 * * *", "UTC",
    )  # fmt: skip
    assert made["catchup"] is False and made["paused"] is False and made["data"] is None
    assert clock.parse_time(made["next_at"]) == engine.schedules()[0].next_at
    body = {"workflow": "pizza", "cron": "30 6 * * MON-FRI", "timezone": "Europe/Berlin",
            "catchup": True, "data": {"status": "planned"}}  # fmt: skip
    berlin = client.put("/schedules/berlin", json=body, headers=ADMIN).json()
    assert berlin["data"]["status"] == "planned" and berlin["catchup"] is True
    listed = client.get("/schedules", headers=COOK)
    assert listed.status_code == 200 and listed.json() == [berlin, made]
    again = client.put("/schedules/nightly", json={**NIGHTLY, "cron": "0 3 * * *"}, headers=ADMIN)
    assert again.json()["cron"] == "0 3 * * *"
    assert [s.name for s in engine.schedules()] == ["berlin", "nightly"]
    tick = clock.parse_time(berlin["next_at"])
    assert f"berlin@{tick:%Y-%m-%dT%H:%M:%SZ}" in engine.fire_schedules(tick)
    assert engine.get(f"berlin@{tick:%Y-%m-%dT%H:%M:%SZ}").data.status == "planned"


def test_pause_resume_and_delete(served: tuple[httpx.Client, Engine]) -> None:
    client, engine = served
    client.put("/schedules/nightly", json=NIGHTLY, headers=ADMIN)
    r = client.post("/schedules/nightly/pause", headers=ADMIN)
    assert r.status_code == 200 and r.json()["paused"] is True
    assert engine.schedules()[0].paused
    r = client.post("/schedules/nightly/resume", headers=ADMIN)
    assert r.status_code == 200 and r.json()["paused"] is False
    r = client.delete("/schedules/nightly", headers=ADMIN)
    assert r.status_code == 204 and r.content == b""
    assert engine.schedules() == []
    problem(client.delete("/schedules/nightly", headers=ADMIN), 404, "not-found")


def test_refusals_are_problems_and_change_nothing(served: tuple[httpx.Client, Engine]) -> None:
    client, engine = served
    client.put("/schedules/nightly", json=NIGHTLY, headers=ADMIN)
    before = engine.schedules()
    assert problem(client.get("/schedules"), 401, "unauthorized")
    writes = [("PUT", "/schedules/x"), ("POST", "/schedules/nightly/pause"),
              ("POST", "/schedules/nightly/resume"), ("DELETE", "/schedules/nightly")]  # fmt: skip
    for method, path in writes:
        problem(client.request(method, path, json=NIGHTLY), 401, "unauthorized")
        body = problem(client.request(method, path, json=NIGHTLY, headers=COOK), 403, "forbidden")
        assert "admin" in body["detail"]
    bad = [
        ({"workflow": "piza", "cron": "0 2 * * *"}, 404, "not-found", "Did you mean 'pizza'"),
        ({"workflow": "pizza", "cron": "0 2 * *"}, 422, "invalid-payload", "five fields"),
        ({**NIGHTLY, "timezone": "Mars/Olympus"}, 422, "invalid-payload", "IANA time zone"),
        ({**NIGHTLY, "data": {"amount": "lots"}}, 422, "invalid-payload", "PizzaOrder"),
        ({**NIGHTLY, "every": "day"}, 422, "invalid-payload", "every"),
        ({"cron": "0 2 * * *"}, 422, "invalid-payload", "workflow"),
    ]
    for body, status, kind, says in bad:
        r = client.put("/schedules/nightly", json=body, headers=ADMIN)
        assert says in problem(r, status, kind)["detail"], r.text
    r = client.put("/schedules/a", content=b"{", headers=ADMIN)
    problem(r, 400, "malformed")
    for action in ("pause", "resume"):
        body = problem(client.post(f"/schedules/nigthly/{action}", headers=ADMIN), 404, "not-found")
        assert "Did you mean 'nightly'" in body["detail"]
    assert engine.schedules() == before


def test_the_routes_are_in_the_openapi_document(served: tuple[httpx.Client, Engine]) -> None:
    client, _ = served
    doc = client.get("/openapi.json").json()
    ops = {(m, p): op for p, item in doc["paths"].items() for m, op in item.items()}
    assert {op["operationId"] for (m, p), op in ops.items() if p.startswith("/schedules")} == {
        "schedules", "schedule", "pause_schedule", "resume_schedule", "unschedule",
    }  # fmt: skip
    assert "ScheduleRequest" in doc["components"]["schemas"]
    assert ops[("put", "/schedules/{name}")]["security"] == [{"bearer": []}]
