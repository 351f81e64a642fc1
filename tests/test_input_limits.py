"""Bad input at the boundary never gets a 500 (every store, every face).

- A payload nested deeper than ``serde.MAX_DEPTH`` is an ``InputError`` (HTTP 422), even when
  its handler takes anything: it used to pass parsing and fail while history was written.
- Starting a workflow class without defaults without data names each missing field (HTTP 422,
  CLI exit 1) instead of failing in ``cls()``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest

from gorch import Engine, InputError, On, S, Wait
from gorch.store import Store

# -- bad input never gets a 500: a payload nested too deep ----------------------------------


@dataclass
class Inbox:
    got: list[Any] = field(default_factory=list)

    def definition(self) -> Any:
        return S(Wait("for mail", On("Mail", self.mail)), Wait("end", On("End")))

    def mail(self, anything):  # type: ignore[no-untyped-def] - takes the payload as it comes
        self.got.append(type(anything).__name__)


@pytest.mark.parametrize("depth", [65, 300, 1000])
def test_a_payload_nested_too_deep_is_refused_everywhere(store: Store, depth: int) -> None:
    import httpx

    from gorch.http import create_app
    from gorch.serde import MAX_DEPTH
    from gorch.testing.http import LiveServer

    engine = Engine(store, {"inbox": Inbox})
    engine.start("inbox", Inbox(), "i-1")
    deep = orjson.loads("[" * depth + "]" * depth)
    before = engine.store.get("i-1")
    with pytest.raises(InputError) as info:
        engine.send("i-1", "Mail", {"note": deep})
    assert f"at most {MAX_DEPTH} levels are accepted" in str(info.value)
    assert "the payload of 'Mail' for instance 'i-1' was refused" in str(info.value)
    with LiveServer(create_app(engine)) as url, httpx.Client(base_url=url) as client:
        body = '{"note": ' + "[" * depth + "]" * depth + "}"
        answer = client.post("/instances/i-1/events/Mail", content=body)
        assert answer.status_code == 422, answer.text
        assert "levels are accepted" in answer.json()["detail"]
        too_deep = "[" * 2000 + "]" * 2000  # past what JSON parsing takes: malformed
        assert client.post("/instances/i-1/events/Mail", content=too_deep).status_code == 400
    assert engine.store.get("i-1") == before
    engine.send("i-1", "Mail", {"note": [[1]]})
    assert engine.get("i-1").data.got == ["dict"]


# -- starting a class without defaults without data: each missing field named, not a 500 ----


@dataclass
class Claim:
    customer: str
    amount: float

    def definition(self) -> Any:
        return S(Wait("for review", On("Approve")))


CLAIMS = {"claim": Claim}


def test_start_without_data_names_the_missing_fields_on_every_face(tmp_path: Any) -> None:
    import httpx
    from click.testing import CliRunner

    from gorch.cli import cli
    from gorch.http import create_app
    from gorch.store.sql import SQLStore
    from gorch.testing.http import LiveServer

    store = SQLStore(f"sqlite:///{tmp_path / 'c.db'}")
    engine = Engine(store, CLAIMS)
    try:
        with LiveServer(create_app(engine)) as url, httpx.Client(base_url=url) as client:
            answer = client.post("/workflows/claim/instances", json={"id": "c-1"})
            assert answer.status_code == 422, answer.text
            assert answer.json()["errors"] == [
                "required field missing @ $.data.customer",
                "required field missing @ $.data.amount",
            ]
            schema = client.get("/openapi.json").json()["components"]["schemas"]["Claim"]
            assert schema["additionalProperties"] is False  # input refuses unknown fields
            ok = client.post(
                "/workflows/claim/instances",
                json={"id": "c-2", "data": {"customer": "ana", "amount": 9.5}},
            )
            assert ok.status_code == 201
        base = ["--store", str(tmp_path / "c.db"), "--workflows", "test_input_limits:CLAIMS"]
        out = CliRunner().invoke(cli, [*base, "start", "claim"])
        assert out.exit_code == 1
        assert "required field missing @ $.customer" in out.output
        assert engine.store.get("c-1") is None
    finally:
        store.close()
