"""Property-based fuzzing of the HTTP API from its own OpenAPI document (schemathesis).

Every operation of the document is fuzzed against a real uvicorn server (``LiveServer``), once
with auth on and once with auth off. Each generated request must get an answer that is not a
server error and that the document describes: a documented status code, content type, headers
and body schema. Part of the examples use the id of a real instance (made fresh for the example,
in one of several states), so that reads, events and operator actions reach the engine and not
only its 404.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from _http_workflows import FIXED, Flaky
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from examples.pizza.workflow import PizzaOrder
from gorch import Engine
from gorch.http import Auth, create_app
from gorch.retry import RetryPolicy
from gorch.store import MemoryStore, SQLStore, Store
from gorch.testing.http import LiveServer

WORKFLOWS = {"pizza": PizzaOrder, "flaky": Flaky}
ROLES = ["Customer", "Manager", "Cook", "Delivery"]
EVERYTHING = "fuzz-every-role"
TOKENS = {
    EVERYTHING: ["admin", *ROLES],  # an admin token that also holds every workflow role
    "fuzz-customer": ["Customer"],
    "fuzz-admin": ["admin"],
}
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
FUZZ = settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
    database=None,
)


def make_engine(store: Store) -> Engine:
    return Engine(store, WORKFLOWS, retry=RetryPolicy(max_attempts=1), busy_wait=1.0)


def make_app(engine: Engine, auth: bool) -> Any:
    return create_app(engine, auth=Auth(TOKENS) if auth else None)


# The documents fuzzed: the same create_app on a throwaway engine (the document does not
# depend on the store); test_the_served_document_is_the_fuzzed_one checks they are the same.
# The change stream never ends by itself: it is left out of the fuzzing (tests/
# test_http_together.py reads it).
DOC_AUTH = schemathesis.openapi.from_dict(make_app(make_engine(MemoryStore()), True).openapi())
DOC_OPEN = schemathesis.openapi.from_dict(make_app(make_engine(MemoryStore()), False).openapi())
SCHEMA_AUTH = DOC_AUTH.exclude(path="/changes/stream")
SCHEMA_OPEN = DOC_OPEN.exclude(path="/changes/stream")
LONG_POLL = {"timeout": 0.3, "wait": 0.3}
"""Seconds the long polls (a wait, the feed) are held to at most, so an example answers soon."""

HAPPY_PATH: list[tuple[str, Any]] = [
    ("AddToCart", {"pizza": {"name": "margherita"}}),
    ("SubmitCart", None),
    ("ConfirmOrder", {"manager": "Giulia", "amount": 10}),
    ("StartCooking", {"cook": "Mario"}),
    ("Cooked", None),
    ("TakeForDelivery", None),
    ("Delivered", None),
]
FIXED_NAME = "fuzz: fixed"
FIXED.add(FIXED_NAME)  # the step of a Flaky instance of this name succeeds (for every test)

# Kinds of real instance an example may aim at, made fresh for it. None: the generated id;
# "waiting": one that waits for the operation's event (or a pizza in its cart).
SEEDS = [
    None,
    "waiting",
    "waiting",
    "cart",
    "delivered",
    "paused",
    "finished",
    "cancelled",
    "flaky-failed",
    "flaky-open",
]

AUTHORIZATION = [
    f"Bearer {EVERYTHING}",
    f"Bearer {EVERYTHING}",
    f"Bearer {EVERYTHING}",
    f"Bearer {EVERYTHING}",
    "Bearer fuzz-customer",
    "Bearer fuzz-admin",
    "Bearer not-a-token",
    None,
]
"""Authorization headers an example is sent with (mostly one that passes every role check)."""


def seed(engine: Engine, kind: str) -> str:
    """A new instance of ``kind`` (see :data:`SEEDS`, or ``"at:<event>"``); its id."""
    id = f"{kind}-{uuid.uuid4().hex[:8]}"
    if kind.startswith("flaky"):
        engine.start("flaky", Flaky(name=FIXED_NAME if kind == "flaky-open" else id), id)
        return id
    engine.start("pizza", PizzaOrder(), id)
    if kind.startswith("at:"):
        stop: str | None = kind.removeprefix("at:")
    else:  # a pizza in the cart, or (delivered) all the way to the payment
        stop = None if kind == "delivered" else "SubmitCart"
    for event, payload in HAPPY_PATH:
        if stop in engine.get(id).waiting_for() and event != "AddToCart":
            break
        engine.send(id, event, payload)
    if kind == "paused":
        engine.pause(id)
    elif kind == "finished":
        engine.send(id, "cart timed out")
    elif kind == "cancelled":
        engine.cancel(id)
    return id


def aim(case: Any, engine: Engine, kind: str | None) -> None:
    """Point the example at a fresh instance of ``kind`` (if the operation takes an id), or at a
    registered workflow (if it takes a workflow name: its description and diagram)."""
    params = case.path_parameters
    if case.operation.path.endswith("/wait"):  # its default timeout is 30 s
        if not isinstance(case.query, dict):
            case.query = {}
        case.query.setdefault("timeout", LONG_POLL["timeout"])
    query = case.query if isinstance(case.query, dict) else {}
    for name, most in LONG_POLL.items():
        try:
            too_long = float(query[name]) > most
        except (KeyError, TypeError, ValueError):
            continue
        if too_long:
            query[name] = most
    if kind is not None and params and "workflow" in params:
        params["workflow"] = "flaky" if kind.startswith("flaky") else "pizza"
    if kind is None or not params or "id" not in params:
        return
    path = case.operation.path
    if kind == "waiting":
        if path.startswith("/workflows/flaky/"):
            kind = "flaky-open"
        elif path.startswith("/workflows/pizza/") and "/events/" in path:
            kind = "at:" + path.rsplit("/", 1)[1]
        else:
            kind = "at:SubmitCart"
            if "event" in params:
                params["event"] = "EmptyCart"  # awaited, and takes any body (it reads none)
    params["id"] = seed(engine, kind)


def served(engine: Engine, auth: bool) -> Iterator[tuple[str, Engine]]:
    try:
        with LiveServer(make_app(engine, auth)) as url:
            yield url, engine
    finally:
        engine.store.close()


@pytest.fixture(scope="module")
def server_auth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Engine]]:
    """Auth on, on SQLite."""
    path = tmp_path_factory.mktemp("fuzz") / "gorch.db"
    yield from served(make_engine(SQLStore(f"sqlite:///{path}")), auth=True)


@pytest.fixture(scope="module")
def server_open() -> Iterator[tuple[str, Engine]]:
    """Auth off, in memory."""
    yield from served(make_engine(MemoryStore()), auth=False)


@pytest.mark.slow
@SCHEMA_AUTH.parametrize()
@SCHEMA_AUTH.given(kind=st.sampled_from(SEEDS), authorization=st.sampled_from(AUTHORIZATION))
@FUZZ
def test_the_api_with_auth_matches_its_document(
    case: Any, kind: str | None, authorization: str | None, server_auth: tuple[str, Engine]
) -> None:
    url, engine = server_auth
    aim(case, engine, kind)
    headers = {"Authorization": authorization} if authorization else {}
    case.call_and_validate(base_url=url, headers=headers, checks=CHECKS)


@pytest.mark.slow
@SCHEMA_OPEN.parametrize()
@SCHEMA_OPEN.given(kind=st.sampled_from(SEEDS))
@FUZZ
def test_the_api_without_auth_matches_its_document(
    case: Any, kind: str | None, server_open: tuple[str, Engine]
) -> None:
    url, engine = server_open
    aim(case, engine, kind)
    case.call_and_validate(base_url=url, checks=CHECKS)


def test_the_served_document_is_the_fuzzed_one(
    server_auth: tuple[str, Engine], server_open: tuple[str, Engine]
) -> None:
    for (url, _), schema in [(server_auth, DOC_AUTH), (server_open, DOC_OPEN)]:
        assert httpx.get(f"{url}/openapi.json").json() == schema.raw_schema
    operations = [
        (method, path) for path, item in DOC_AUTH.raw_schema["paths"].items() for method in item
    ]
    # 2 starts, 9 pizza events, 3 flaky ones, 5 of schedules, 3 of waiting and the feed, and
    # 22 others
    assert len(operations) == 44


@pytest.mark.parametrize(
    "kind", [k for k in SEEDS if k and k != "waiting"] + [f"at:{e}" for e, _ in HAPPY_PATH]
)
def test_the_seeds_are_what_they_say(kind: str) -> None:
    engine = make_engine(MemoryStore())
    inst = engine.get(seed(engine, kind))
    expected = {
        "cart": "waiting",
        "delivered": "waiting",
        "paused": "paused",
        "finished": "finished",
        "cancelled": "cancelled",
        "flaky-failed": "failed",
        "flaky-open": "waiting",
    }
    assert inst.status.value == expected.get(kind, "waiting")
    if kind.startswith("at:"):
        assert kind.removeprefix("at:") in inst.waiting_for()
    if kind == "cart":
        assert "SubmitCart" in inst.waiting_for() and len(inst.data.cart) == 1
    if kind == "delivered":
        assert inst.waiting_for() == ["ConfirmPayment"]
