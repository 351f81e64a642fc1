"""The HTTP API (``gorch.http``) served by real uvicorn (``LiveServer``) to a real httpx client.

The pizza shop end to end with a token per role, payment at three points of the order, the
cart timeout fired by the app's own worker under frozen time, every role boundary tried from
every wrong role, problem details for every refusal, idempotency keys, listing and paging,
operator actions, and the OpenAPI document and offline docs.

Every refused request is checked to change nothing: the instance's status, version, data,
state, timers and the length of its history are compared before and after (read from the
engine itself, not through the API under test). No response may be a 500: the client's response
hook fails the test on one.
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from _http_workflows import FIXED, GATES, Flaky, Gated
from freezegun import freeze_time

from examples.pizza.workflow import CART_TIMEOUT, PizzaOrder
from gorch import AsyncEngine, Engine, Worker, clock, graph, serde
from gorch.catalog import describe
from gorch.http import PROBLEM, Auth, create_app
from gorch.retry import RetryPolicy
from gorch.store import SQLStore, Store
from gorch.testing import START
from gorch.testing.http import LiveServer

ROOT = Path(__file__).resolve().parent.parent
TOKENS_FILE = ROOT / "examples" / "pizza" / "tokens.toml"

TOKENS = {
    "Customer": "customer-demo-token",
    "Manager": "manager-demo-token",
    "Cook": "cook-demo-token",
    "Delivery": "courier-demo-token",
    "admin": "admin-demo-token",
}
"""The demo token of each role (examples/pizza/tokens.toml)."""
ROLES = list(TOKENS)

PIZZA = describe("pizza", PizzaOrder)
EVENTS = [ev.name for ev in PIZZA.events.values() if not ev.timeout]
TIMEOUT = "cart timed out"

ROLE_OF = {
    "AddToCart": "Customer",
    "EmptyCart": "Customer",
    "SubmitCart": "Customer",
    "ConfirmPayment": "Customer",
    "ConfirmOrder": "Manager",
    "StartCooking": "Cook",
    "Cooked": "Cook",
    "TakeForDelivery": "Delivery",
    "Delivered": "Delivery",
}
"""Who may send each pizza event (the brief's table; checked against the catalog below)."""

MARGHERITA = {"pizza": {"name": "margherita", "size": "large", "qty": 2}}
DIAVOLA = {"pizza": {"name": "diavola"}}
PAYLOAD: dict[str, Any] = {
    "AddToCart": MARGHERITA,
    "ConfirmOrder": {"manager": "Giulia", "amount": 24.5},
    "ConfirmPayment": {"amount": 24.5, "address": "Via Roma 1"},
    "StartCooking": {"cook": "Mario"},
}
"""A valid payload of each pizza event that takes one."""

HAPPY_PATH = [
    "AddToCart",
    "SubmitCart",
    "ConfirmOrder",
    "StartCooking",
    "Cooked",
    "TakeForDelivery",
    "Delivered",
]
OPERATOR_ACTIONS = ["goto", "pause", "unpause", "cancel", "retry"]
GOTO_BODY = {"to": "for the manager"}


def bearer(role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[role]}"}


def _no_server_error(response: httpx.Response) -> None:
    if response.status_code >= 500 and response.status_code != 503:
        response.read()
        raise AssertionError(
            f"{response.request.method} {response.request.url} answered "
            f"{response.status_code}: {response.text}"
        )


def assert_problem(r: httpx.Response, status: int, kind: str | None = None) -> dict[str, Any]:
    """``r`` is an RFC 9457 problem with ``status`` (and type ``urn:gorch:problem:<kind>``)."""
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == PROBLEM
    body: dict[str, Any] = r.json()
    assert {"type", "title", "status", "detail"} <= body.keys(), body
    assert body["status"] == status
    assert body["type"].startswith("urn:gorch:problem:")
    if kind is not None:
        assert body["type"] == f"urn:gorch:problem:{kind}", body
    assert isinstance(body["title"], str) and body["title"]
    assert isinstance(body["detail"], str) and body["detail"]
    assert body["instance"] == r.request.url.path
    return body


def snapshot(engine: Engine, id: str) -> tuple[Any, ...]:
    """Everything a refused request must leave as it was (read from the engine directly)."""
    inst = engine.get(id)
    return (
        inst.status,
        inst.version,
        serde.dumps(inst.data),
        serde.dumps(inst.state),
        [(t.thread_id, t.name, t.due_at) for t in inst.timers],
        inst.attempts,
        inst.last_error,
        len(engine.history(id)),
    )


def count(engine: Engine) -> int:
    return len(engine.list(limit=1000).items)


class Shop:
    """A real uvicorn server around ``engine`` and an httpx client to it, with helpers."""

    def __init__(self, engine: Engine, client: httpx.Client) -> None:
        self.engine = engine
        self.client = client

    def start(
        self,
        id: str | None = None,
        *,
        role: str = "Customer",
        workflow: str = "pizza",
        data: Any = None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {}
        if id is not None:
            body["id"] = id
        if data is not None:
            body["data"] = data
        r = self.client.post(f"/workflows/{workflow}/instances", json=body, headers=bearer(role))
        assert r.status_code == 201, r.text
        out: dict[str, Any] = r.json()
        assert r.headers["location"] == "/instances/" + quote(out["id"], safe="")
        return out

    def send(
        self,
        id: str,
        event: str,
        payload: Any = None,
        *,
        role: str | None = None,
        workflow: str = "pizza",
        generic: bool = False,
        key: str | None = None,
        thread: str | None = None,
    ) -> httpx.Response:
        headers = bearer(role or ROLE_OF[event])
        if key is not None:
            headers["Idempotency-Key"] = key
        if generic:
            url = f"/instances/{id}/events/{event}"
        else:
            url = f"/workflows/{workflow}/instances/{id}/events/{event}"
        params = {"thread": thread} if thread is not None else {}
        return self.client.post(url, json=payload, headers=headers, params=params)

    def ok(self, id: str, event: str, payload: Any = None, **options: Any) -> Any:
        """Send an event that must be accepted; its output."""
        r = self.send(id, event, payload, **options)
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == "application/json"
        body = r.json()
        assert body["instance"] == id and body["event"] == event
        return body["output"]

    def operate(self, id: str, action: str, role: str = "admin", **body: Any) -> httpx.Response:
        path = f"/instances/{id}/{action}"
        return self.client.post(path, json=body or None, headers=bearer(role))

    def read(self, path: str, role: str = "admin", **params: Any) -> Any:
        r = self.client.get(path, headers=bearer(role), params=params)
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == "application/json"
        return r.json()

    def get(self, id: str) -> dict[str, Any]:
        out: dict[str, Any] = self.read(f"/instances/{id}")
        return out

    def kinds(self, id: str) -> list[str]:
        return [f"{h['kind']}:{h['name']}" if h["name"] else h["kind"] for h in self.history(id)]

    def history(self, id: str, **params: Any) -> list[dict[str, Any]]:
        """The instance's whole history (one page without ``limit``)."""
        page = self.read(f"/instances/{id}/history", **params)
        assert set(page) == {"items", "next"} and page["next"] is None
        items: list[dict[str, Any]] = page["items"]
        return items

    def snapshot(self, id: str) -> tuple[Any, ...]:
        return snapshot(self.engine, id)

    def position(self, id: str, event: str) -> None:
        """Start ``id`` (via the engine) and move it along the happy path until it waits for
        ``event``; the cart always holds a pizza."""
        self.engine.start("pizza", PizzaOrder(), id)
        self.engine.send(id, "AddToCart", DIAVOLA)
        for ev in HAPPY_PATH[1:]:
            if event in self.engine.get(id).waiting_for():
                return
            self.engine.send(id, ev, PAYLOAD.get(ev))
        assert event in self.engine.get(id).waiting_for(), event


def app_for(engine: Engine, *, auth: Auth | str | None = "file", **options: Any) -> Any:
    """``create_app`` for ``engine`` (auth: the demo tokens' file by default)."""
    the_auth = Auth.from_file(TOKENS_FILE) if auth == "file" else auth
    assert not isinstance(the_auth, str)
    return create_app(engine, auth=the_auth, **options)


def serve(stack: ExitStack, engine: Engine | AsyncEngine, app: Any = None, **options: Any) -> Shop:
    """Serve ``app`` (default: ``app_for(engine, **options)``) under uvicorn until ``stack``
    closes."""
    url = stack.enter_context(LiveServer(app or app_for(engine, **options)))  # type: ignore[arg-type]
    client = stack.enter_context(
        # verify=False: plain HTTP, and no certificate bundle to load (55 ms a client)
        httpx.Client(
            base_url=url, timeout=20, verify=False, event_hooks={"response": [_no_server_error]}
        )
    )
    if isinstance(engine, AsyncEngine):
        stack.callback(engine.close)
        return Shop(engine.engine, client)
    return Shop(engine, client)


def shop_engine(store: Store) -> Engine:
    return Engine(
        store,
        {"pizza": PizzaOrder, "flaky": Flaky, "gated": Gated},
        retry=RetryPolicy(max_attempts=1),
        busy_wait=0.3,
    )


@pytest.fixture
def make_shop(tmp_path: Path) -> Iterator[Callable[..., Shop]]:
    """``make_shop(**create_app options)``: a shop on a fresh SQLite file, served for the test."""
    with ExitStack() as stack:
        n = iter(range(100))

        def make(face: str = "Engine", **options: Any) -> Shop:
            store = SQLStore(f"sqlite:///{tmp_path / f'shop{next(n)}.db'}")
            stack.callback(store.close)
            engine = shop_engine(store)
            if face == "AsyncEngine":
                return serve(stack, AsyncEngine(store, engine.workflows, retry=engine.retry_policy,
                                                busy_wait=engine.busy_wait), **options)  # fmt: skip
            return serve(stack, engine, **options)

        yield make


@pytest.fixture(params=["Engine", "AsyncEngine"])
def shop(make_shop: Callable[..., Shop], request: pytest.FixtureRequest) -> Shop:
    """The pizza shop, served over an ``Engine`` and over an ``AsyncEngine``."""
    return make_shop(face=request.param)


@pytest.fixture(scope="module")
def positioned(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Shop, dict[str, str]]]:
    """One server for the auth matrix, with an instance waiting for each pizza event, and one
    for the operator actions (by event name, and "operators")."""
    with ExitStack() as stack:
        store = SQLStore(f"sqlite:///{tmp_path_factory.mktemp('matrix') / 'gorch.db'}")
        stack.callback(store.close)
        shop = serve(stack, shop_engine(store))
        at = {}
        for event in EVENTS:
            at[event] = f"at-{event}"
            shop.position(at[event], event)
        at["operators"] = "operators"
        shop.position("operators", "SubmitCart")
        at[TIMEOUT] = "timeout"
        shop.position("timeout", TIMEOUT)
        yield shop, at


def new_id(prefix: str = "order") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


# --------------------------------------------------------------------------------------------
# The catalog the API is built from matches the brief


def test_pizza_roles_are_as_documented() -> None:
    assert {ev: PIZZA.events[ev].roles for ev in EVENTS} == {
        ev: (role,) for ev, role in ROLE_OF.items()
    }
    assert PIZZA.events[TIMEOUT].timeout and PIZZA.events[TIMEOUT].roles == ()
    assert PIZZA.start_roles == ("Customer",)
    assert Auth.from_file(TOKENS_FILE).roles == frozenset(ROLES)


# --------------------------------------------------------------------------------------------
# The pizza journey


def test_health_needs_no_token(shop: Shop) -> None:
    r = shop.client.get("/health")
    assert r.status_code == 200 and r.json() == {"status": "ok"}


def test_info_says_the_title_without_a_token(make_shop: Callable[..., Shop]) -> None:
    shop = make_shop(title="Pizza shop")
    r = shop.client.get("/info")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["title"] == "Pizza shop" and body["version"]
    assert body["version"] == shop.client.get("/openapi.json").json()["info"]["version"]
    assert make_shop().client.get("/info").json()["title"] == "gorch"  # the default


def test_me_says_the_tokens_roles(make_shop: Callable[..., Shop]) -> None:
    shop = make_shop()
    customer = hashlib.sha256(TOKENS["Customer"].encode()).hexdigest()[:8]
    assert shop.read("/me", "Customer") == {
        "roles": ["Customer"], "name": f"token:{customer}", "admin": False, "auth": True,
    }  # fmt: skip
    assert shop.read("/me", "admin") == {
        "roles": ["admin"], "name": "ops-demo", "admin": True, "auth": True,
    }  # fmt: skip
    r = shop.client.get("/me")
    assert r.status_code == 401 and r.headers["content-type"] == "application/problem+json"
    r = shop.client.get("/me", headers={"Authorization": "Bearer not-a-token"})
    assert r.status_code == 401
    open_ = make_shop(auth=None)
    assert open_.client.get("/me").json() == {
        "roles": [], "name": None, "admin": True, "auth": False,
    }  # fmt: skip


def test_why_says_over_http_what_the_engine_says(shop: Shop) -> None:
    shop.start("order-1")
    why = shop.read("/instances/order-1/why", role="Cook")
    assert why["text"] == str(shop.engine.why("order-1"))
    assert why["id"] == "order-1" and why["status"] == "waiting"
    (main,) = why["threads"]
    assert main["at"] == "for the cart"
    assert [e["name"] for e in main["events"]] == ["AddToCart", "EmptyCart", "SubmitCart"]
    assert "gorch send order-1 AddToCart" in why["text"]


@pytest.mark.parametrize("route", ["typed", "generic"])
def test_the_pizza_journey_end_to_end(shop: Shop, route: str) -> None:
    generic = route == "generic"
    started = shop.start("order-1")
    assert started["id"] == "order-1" and started["workflow"] == "pizza"
    assert started["status"] == "waiting"
    assert started["waiting_for"] == ["AddToCart", "EmptyCart", "SubmitCart", TIMEOUT]
    assert started["data"]["status"] == "cart" and started["data"]["log"] == ["order opened"]
    assert [t["at"] for t in started["threads"]] == ["for the cart"]

    assert shop.ok("order-1", "AddToCart", MARGHERITA, generic=generic) == 1
    assert shop.ok("order-1", "AddToCart", DIAVOLA, generic=generic) == 2
    assert shop.ok("order-1", "SubmitCart", generic=generic) == "submitted"
    assert shop.ok("order-1", "ConfirmOrder", PAYLOAD["ConfirmOrder"], generic=generic) is None

    waits = shop.read("/instances/order-1/waits", role="Cook")
    assert [(w["thread"], w["status"], w["at"], w["events"]) for w in waits] == [
        ("_main_", "WaitingEvent", "for a cook", ["StartCooking"]),
        ("payment", "WaitingEvent", "for payment", ["ConfirmPayment"]),
    ]
    assert waits[0]["since"] is not None and waits[0]["timers"] == []

    for event in ["StartCooking", "Cooked", "TakeForDelivery", "Delivered"]:
        assert shop.ok("order-1", event, PAYLOAD.get(event), generic=generic) is None
    assert shop.get("order-1")["waiting_for"] == ["ConfirmPayment"]
    assert shop.ok("order-1", "ConfirmPayment", PAYLOAD["ConfirmPayment"], generic=generic) is None

    inst = shop.get("order-1")
    assert inst["status"] == "finished" and inst["waiting_for"] == []
    assert inst["threads"] == [] and inst["timers"] == [] and inst["last_error"] is None
    data = inst["data"]
    assert data["status"] == "completed"
    assert data["cart"] == [
        {"name": "margherita", "size": "large", "qty": 2},
        {"name": "diavola", "size": "medium", "qty": 1},
    ]
    assert (data["manager"], data["amount"], data["paid"]) == ("Giulia", 24.5, 24.5)
    assert (data["cook"], data["address"]) == ("Mario", "Via Roma 1")
    assert data["log"] == ["order opened", "order completed"]  # paid exactly: no refund

    history = shop.history("order-1", role="Delivery")
    assert [f"{h['kind']}:{h['name']}" for h in history] == [
        "started:pizza",
        "step:setup",
        "event:AddToCart",
        "event:AddToCart",
        "event:SubmitCart",
        "event:ConfirmOrder",
        "event:StartCooking",
        "event:Cooked",
        "event:TakeForDelivery",
        "event:Delivered",
        "event:ConfirmPayment",
        "step:complete",
        "finished:",
    ]
    assert [h["seq"] for h in history] == sorted(h["seq"] for h in history)
    assert history[2]["input"] == MARGHERITA and history[2]["output"] == 1
    assert history[10]["thread"] == "payment" and history[10]["input"] == PAYLOAD["ConfirmPayment"]
    assert shop.read("/instances/order-1/waits") == []


@pytest.mark.parametrize(
    ("pay_at", "paid"),
    [("before cooking", 24.5), ("during cooking", 30.0), ("after delivery", 24.5)],
)
def test_payment_may_arrive_at_any_time(shop: Shop, pay_at: str, paid: float) -> None:
    id = new_id()
    shop.start(id)
    shop.ok(id, "AddToCart", MARGHERITA)
    shop.ok(id, "SubmitCart")
    shop.ok(id, "ConfirmOrder", PAYLOAD["ConfirmOrder"])
    payment = {"amount": paid, "address": "Via Roma 1"}

    def pay() -> None:
        # during cooking the payment thread is named (?thread=); otherwise the one waiting
        thread = "payment" if pay_at == "during cooking" else None
        assert shop.ok(id, "ConfirmPayment", payment, thread=thread) is None
        assert "ConfirmPayment" not in shop.get(id)["waiting_for"]

    if pay_at == "before cooking":
        pay()
    shop.ok(id, "StartCooking", PAYLOAD["StartCooking"])
    if pay_at == "during cooking":
        pay()
    for event in ["Cooked", "TakeForDelivery", "Delivered"]:
        shop.ok(id, event)
    if pay_at == "after delivery":
        inst = shop.get(id)
        assert inst["status"] == "waiting" and inst["data"]["status"] == "delivered"
        assert inst["waiting_for"] == ["ConfirmPayment"]
        main = shop.read(f"/instances/{id}/waits")[0]
        assert (main["status"], main["at"], main["events"]) == (
            "WaitingCondition",
            "payment received",
            [],
        )
        pay()

    inst = shop.get(id)
    assert inst["status"] == "finished"
    assert inst["data"]["status"] == "completed" and inst["data"]["paid"] == paid
    refunds = [line for line in inst["data"]["log"] if line.startswith("refund")]
    assert refunds == (["refund 5.50"] if paid > 24.5 else [])
    kinds = shop.kinds(id)
    assert kinds[-2:] == ["step:complete", "finished"]
    assert ("step:refund the difference" in kinds) == (paid > 24.5)
    paid_after = {
        "before cooking": "event:ConfirmOrder",
        "during cooking": "event:StartCooking",
        "after delivery": "event:Delivered",
    }[pay_at]
    assert kinds.index("event:ConfirmPayment") == kinds.index(paid_after) + 1


def test_the_cart_times_out_after_24_hours_on_the_app_worker(tmp_path: Path) -> None:
    """Time moves with freezegun; uvicorn runs on uvloop, whose own clock freezegun does not
    touch, so the server keeps serving while the app's in-process worker sees frozen time.

    The app is made before time is frozen: FastAPI imports pydantic.v1 lazily while it builds
    the routes, and pydantic.v1 cannot subclass freezegun's fake ``date``."""
    store = SQLStore(f"sqlite:///{tmp_path / 'gorch.db'}")
    engine = Engine(store, {"pizza": PizzaOrder})
    app = app_for(engine, worker=Worker(engine, poll=0.05))
    with freeze_time(START) as frozen, ExitStack() as stack:
        stack.callback(store.close)
        shop = serve(stack, engine, app)
        shop.start("late")
        shop.ok("late", "AddToCart", MARGHERITA)
        shop.start("in-time")
        shop.ok("in-time", "AddToCart", MARGHERITA)
        shop.ok("in-time", "SubmitCart")  # left the cart: its timer is gone
        due = clock.format_time(START + CART_TIMEOUT)
        assert shop.get("late")["timers"] == [{"thread": "_main_", "name": TIMEOUT, "due_at": due}]
        assert shop.get("in-time")["timers"] == []

        frozen.tick(timedelta(hours=23))
        time.sleep(0.4)  # eight polls of the app's worker: nothing is due
        assert Worker(engine).run_once() == 0
        late = shop.get("late")
        assert late["status"] == "waiting" and late["data"]["status"] == "cart"
        assert TIMEOUT in late["waiting_for"]

        frozen.tick(timedelta(hours=2))
        for _ in range(200):  # time.monotonic is frozen too: count the polls
            late = shop.get("late")
            if late["status"] == "finished":
                break
            time.sleep(0.05)
        assert late["status"] == "finished", late
        assert late["data"]["status"] == "expired"
        assert late["data"]["log"] == ["order opened", "cart timed out"]
        assert late["timers"] == [] and late["waiting_for"] == []
        history = shop.history("late")
        assert [f"{h['kind']}:{h['name']}" for h in history][-4:] == [
            "event:AddToCart",
            f"timer:{TIMEOUT}",
            "step:expire order",
            "finished:",
        ]
        assert history[-3]["input"] == due
        assert clock.parse_time(history[-3]["at"]) == START + timedelta(hours=25)

        in_time = shop.get("in-time")
        assert in_time["status"] == "waiting" and in_time["waiting_for"] == ["ConfirmOrder"]
        r = shop.send("late", "AddToCart", MARGHERITA)
        assert_problem(r, 409, "finished")


# --------------------------------------------------------------------------------------------
# Auth: every role boundary, from every wrong role


EVENT_MATRIX = [(ev, role) for ev in ROLE_OF for role in ROLES if role != ROLE_OF[ev]]


@pytest.mark.parametrize("route", ["typed", "generic"])
@pytest.mark.parametrize(("event", "role"), EVENT_MATRIX)
def test_an_event_from_a_role_without_it_is_forbidden(
    positioned: tuple[Shop, dict[str, str]], event: str, role: str, route: str
) -> None:
    shop, at = positioned
    id = at[event]
    assert event in shop.engine.get(id).waiting_for()  # accepting it would change the instance
    before = shop.snapshot(id)
    r = shop.send(id, event, PAYLOAD.get(event), role=role, generic=route == "generic")
    body = assert_problem(r, 403, "forbidden")
    assert body["roles"] == [ROLE_OF[event]]
    assert ROLE_OF[event] in body["detail"] and repr(event) in body["detail"]
    assert shop.snapshot(id) == before


@pytest.mark.parametrize("role", [r for r in ROLES if r != "admin"])
def test_firing_the_timeout_by_hand_needs_admin(
    positioned: tuple[Shop, dict[str, str]], role: str
) -> None:
    shop, at = positioned
    before = shop.snapshot(at[TIMEOUT])
    r = shop.send(at[TIMEOUT], TIMEOUT, role=role, generic=True)
    body = assert_problem(r, 403, "forbidden")
    assert body["roles"] == ["admin"]
    assert shop.snapshot(at[TIMEOUT]) == before


def test_the_admin_fires_the_timeout_by_hand(shop: Shop) -> None:
    shop.start("o")
    r = shop.send("o", TIMEOUT, role="admin", generic=True)
    assert r.status_code == 200, r.text
    assert r.json()["event"] == TIMEOUT
    inst = shop.get("o")
    assert inst["status"] == "finished" and inst["data"]["status"] == "expired"
    fired = next(h for h in shop.engine.history("o") if h.name == TIMEOUT)
    assert fired.actor == "ops-demo"  # who fired it: the admin token's name
    # a timeout has no typed operation: only the generic route reaches it
    r = shop.client.post(f"/workflows/pizza/instances/o/events/{TIMEOUT}", headers=bearer("admin"))
    assert_problem(r, 404)


@pytest.mark.parametrize("role", [r for r in ROLES if r != "admin"])
@pytest.mark.parametrize("action", OPERATOR_ACTIONS)
def test_operator_actions_need_admin(
    positioned: tuple[Shop, dict[str, str]], action: str, role: str
) -> None:
    shop, at = positioned
    id = at["operators"]
    before = shop.snapshot(id)
    body = GOTO_BODY if action == "goto" else {}
    problem = assert_problem(shop.operate(id, action, role, **body), 403, "forbidden")
    assert problem["roles"] == ["admin"]
    assert action in problem["detail"]
    assert shop.snapshot(id) == before


@pytest.mark.parametrize("role", [r for r in ROLES if r != "Customer"])
def test_starting_a_pizza_order_needs_the_customer_role(shop: Shop, role: str) -> None:
    r = shop.client.post("/workflows/pizza/instances", json={"id": "x"}, headers=bearer(role))
    assert assert_problem(r, 403, "forbidden")["roles"] == ["Customer"]
    assert count(shop.engine) == 0
    assert_problem(shop.client.get("/instances/x", headers=bearer("admin")), 404, "not-found")


@pytest.mark.parametrize("role", ROLES)
def test_untagged_events_and_workflows_are_open_to_every_valid_token(shop: Shop, role: str) -> None:
    FIXED.add("open")
    try:
        id = shop.start(role=role, workflow="flaky", data={"name": "open"})["id"]
        note = {"text": role}
        assert shop.ok(id, "Note", note, role=role, workflow="flaky") == [role]
        anything = [1, {"a": None}]
        assert shop.ok(id, "Anything", anything, role=role, generic=True) == anything
        # an event the workflow does not know needs no role either: it is simply not awaited
        assert_problem(shop.send(id, "Nope", role=role, generic=True), 409, "not-waiting")
        assert shop.ok(id, "Close", role=role, generic=True) is None
        assert shop.get(id)["status"] == "finished"
    finally:
        FIXED.discard("open")


READS = [
    "/workflows",
    "/workflows/pizza",
    "/instances",
    "/instances/{id}",
    "/instances/{id}/history",
    "/instances/{id}/waits",
    "/instances/{id}/why",
]


@pytest.mark.parametrize("role", ROLES)
def test_reads_are_open_to_every_valid_token(
    positioned: tuple[Shop, dict[str, str]], role: str
) -> None:
    shop, at = positioned
    for path in READS:
        out = shop.read(path.format(id=at["Cooked"]), role=role)
        assert out or out == [], path
    inst = shop.read(f"/instances/{at['Cooked']}", role=role)
    assert inst["waiting_for"] == ["ConfirmPayment", "Cooked"]


BAD_AUTHORIZATION: list[str | None] = [
    None,
    "",
    "Bearer",
    "Bearer not-a-token",
    "Bearer customer-demo-token-",
    "customer-demo-token",
    "Basic Y3VzdG9tZXItZGVtby10b2tlbjo=",
    "Token customer-demo-token",
    # the file may hold a digest instead of a token; the digest itself is no token
    "Bearer sha256:" + hashlib.sha256(b"customer-demo-token").hexdigest(),
]

GUARDED: list[tuple[str, str, Any]] = [
    ("GET", "/workflows", None),
    ("GET", "/workflows/pizza", None),
    ("GET", "/instances", None),
    ("GET", "/instances/{id}", None),
    ("GET", "/instances/{id}/history", None),
    ("GET", "/instances/{id}/waits", None),
    ("GET", "/instances/{id}/why", None),
    ("GET", "/workflows/pizza/diagram", None),
    ("GET", "/instances/{id}/diagram", None),
    ("POST", "/workflows/pizza/instances", {"id": "intruder"}),
    ("POST", "/workflows/pizza/instances/{id}/events/AddToCart", MARGHERITA),
    ("POST", "/instances/{id}/events/AddToCart", MARGHERITA),
    ("POST", "/instances/{id}/events/" + TIMEOUT, None),
    ("POST", "/instances/{id}/goto", GOTO_BODY),
    ("POST", "/instances/{id}/pause", None),
    ("POST", "/instances/{id}/unpause", None),
    ("POST", "/instances/{id}/cancel", None),
    ("POST", "/instances/{id}/retry", None),
]


@pytest.mark.parametrize("authorization", BAD_AUTHORIZATION)
def test_a_missing_or_unknown_token_is_unauthorized(
    positioned: tuple[Shop, dict[str, str]], authorization: str | None
) -> None:
    shop, at = positioned
    id = at["AddToCart"]
    before = shop.snapshot(id)
    headers = {} if authorization is None else {"Authorization": authorization}
    for method, path, body in GUARDED:
        r = shop.client.request(method, path.format(id=id), json=body, headers=headers)
        problem = assert_problem(r, 401, "unauthorized")
        assert r.headers["www-authenticate"] == 'Bearer realm="gorch"'
        assert "Bearer" in problem["detail"]
    assert shop.snapshot(id) == before
    assert_problem(shop.client.get("/instances/intruder", headers=bearer("admin")), 404)


def test_the_bearer_scheme_is_case_insensitive(positioned: tuple[Shop, dict[str, str]]) -> None:
    shop, _ = positioned
    r = shop.client.get("/instances", headers={"Authorization": "bearer cook-demo-token"})
    assert r.status_code == 200, r.text


def test_the_generic_event_route_authenticates_before_looking_the_instance_up(
    shop: Shop,
) -> None:
    """Without a token, a known and an unknown id answer alike: nobody can probe for ids."""
    shop.start("known")
    for id in ["known", "unknown"]:
        r = shop.client.post(f"/instances/{id}/events/AddToCart", json=MARGHERITA)
        problem = assert_problem(r, 401, "unauthorized")
        assert "instance_id" not in problem


def test_with_auth_off_everything_is_open(make_shop: Callable[..., Shop]) -> None:
    shop = make_shop(auth=None)
    client = shop.client
    r = client.post("/workflows/pizza/instances", json={"id": "anon"})
    assert r.status_code == 201, r.text
    r = client.post("/workflows/pizza/instances/anon/events/AddToCart", json=MARGHERITA)
    assert r.status_code == 200 and r.json()["output"] == 1
    # any Authorization header at all is ignored, even a bogus one
    r = client.post("/instances/anon/pause", headers={"Authorization": "Bearer bogus"})
    assert r.status_code == 200 and r.json()["status"] == "paused"
    assert client.get("/instances/anon").json()["status"] == "paused"


# --------------------------------------------------------------------------------------------
# Problem details: every refusal is an RFC 9457 problem, and changes nothing


@pytest.mark.parametrize("route", ["typed", "generic"])
def test_malformed_json_in_an_event(shop: Shop, route: str) -> None:
    shop.start("o")
    before = shop.snapshot("o")
    path = (
        "/instances/o/events/AddToCart"
        if route == "generic"
        else "/workflows/pizza/instances/o/events/AddToCart"
    )
    for bad in [b"{not json", b'{"pizza": ', b"\xff\xfe", b"[1, 2,]", b"NaN"]:
        r = shop.client.post(
            path,
            content=bad,
            headers={**bearer("Customer"), "Content-Type": "application/json"},
        )
        body = assert_problem(r, 400, "malformed")
        assert "not JSON" in body["detail"]
    assert shop.snapshot("o") == before


def test_malformed_json_when_starting(shop: Shop) -> None:
    for bad in [b"{", b'{"id": "x"', b"\x00"]:
        r = shop.client.post(
            "/workflows/pizza/instances",
            content=bad,
            headers={**bearer("Customer"), "Content-Type": "application/json"},
        )
        assert_problem(r, 400, "malformed")
    assert count(shop.engine) == 0


def test_malformed_json_in_goto(shop: Shop) -> None:
    shop.start("o")
    before = shop.snapshot("o")
    r = shop.client.post(
        "/instances/o/goto",
        content=b'{"to": ',
        headers={**bearer("admin"), "Content-Type": "application/json"},
    )
    assert_problem(r, 400, "malformed")
    assert shop.snapshot("o") == before


@pytest.mark.parametrize(
    "body",
    [
        [],
        "o",
        {"id": ""},
        {"id": 5},
        {"id": "x" * 201},
        {"id": "o", "colour": "red"},
        {"data": {"cart": "margherita"}},
        {"data": {"amount": "lots"}},
        {"data": {"cart": [{"size": "large"}]}},
        {"data": 5},
    ],
)
def test_a_start_body_of_the_wrong_shape(shop: Shop, body: Any) -> None:
    r = shop.client.post("/workflows/pizza/instances", json=body, headers=bearer("Customer"))
    assert_problem(r, 422, "invalid-payload")
    assert count(shop.engine) == 0


@pytest.mark.parametrize("data", [[], [1, 2], "x", 5, True])
def test_start_data_that_is_not_an_object_is_unprocessable(shop: Shop, data: Any) -> None:
    r = shop.client.post(
        "/workflows/pizza/instances", json={"id": "o", "data": data}, headers=bearer("Customer")
    )
    problem = assert_problem(r, 422, "invalid-payload")
    assert "expected an object (PizzaOrder)" in problem["detail"], problem
    assert count(shop.engine) == 0


def test_start_data_with_an_unknown_field_is_unprocessable(shop: Shop) -> None:
    body = {"id": "o", "data": {"cart": [{"name": "marinara", "qtty": 2}], "adress": "Via 1"}}
    r = shop.client.post("/workflows/pizza/instances", json=body, headers=bearer("Customer"))
    problem = assert_problem(r, 422, "invalid-payload")
    assert "unknown field; did you mean 'address'? @ $.data.adress" in problem["errors"], problem
    assert "unknown field; did you mean 'qty'? @ $.data.cart[0].qtty" in problem["errors"]
    assert count(shop.engine) == 0


def test_a_start_with_data_starts_from_it(shop: Shop) -> None:
    out = shop.start("o", data={"cart": [{"name": "marinara"}], "address": "Piazza 2"})
    assert out["data"]["cart"] == [{"name": "marinara", "size": "medium", "qty": 1}]
    assert out["data"]["address"] == "Piazza 2" and out["data"]["status"] == "cart"
    assert shop.ok("o", "AddToCart", DIAVOLA) == 2
    generated = shop.start()
    assert re.fullmatch(r"[0-9a-f]{32}", generated["id"])


@pytest.mark.parametrize(
    "query",
    [
        {"limit": "0"},
        {"limit": "1001"},
        {"limit": "-1"},
        {"limit": "ten"},
        {"status": "bogus"},
        {"status": ["waiting", "bogus"]},
        {"cursor": "bogus"},
        {"cursor": "yesterday|order-1"},
        {"workflow": "w" * 201},
    ],
)
def test_a_bad_query_is_malformed(shop: Shop, query: dict[str, Any]) -> None:
    shop.start("o")
    r = shop.client.get("/instances", params=query, headers=bearer("admin"))
    body = assert_problem(r, 400, "malformed")
    assert body["detail"]


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/instances/ghost", None),
        ("GET", "/instances/ghost/history", None),
        ("GET", "/instances/ghost/waits", None),
        ("GET", "/instances/ghost/why", None),
        ("GET", "/instances/ghost/diagram", None),
        ("POST", "/instances/ghost/events/AddToCart", MARGHERITA),
        ("POST", "/instances/ghost/goto", GOTO_BODY),
        ("POST", "/instances/ghost/pause", None),
        ("POST", "/instances/ghost/unpause", None),
        ("POST", "/instances/ghost/cancel", None),
        ("POST", "/instances/ghost/retry", None),
    ],
)
def test_an_unknown_instance_is_not_found(
    positioned: tuple[Shop, dict[str, str]], method: str, path: str, body: Any
) -> None:
    shop, _ = positioned
    r = shop.client.request(method, path, json=body, headers=bearer("admin"))
    problem = assert_problem(r, 404, "not-found")
    assert problem["instance_id"] == "ghost" and "ghost" in problem["detail"]


def test_a_typed_event_to_an_unknown_instance_is_not_found(shop: Shop) -> None:
    r = shop.send("ghost", "AddToCart", MARGHERITA)
    problem = assert_problem(r, 404, "not-found")
    assert problem["instance_id"] == "ghost"


def test_an_unknown_workflow_is_not_found(shop: Shop) -> None:
    r = shop.client.get("/workflows/pizzza", headers=bearer("Cook"))
    problem = assert_problem(r, 404, "not-found")
    assert "'pizza'" in problem["detail"]  # did you mean
    r = shop.client.post("/workflows/sushi/instances", json={}, headers=bearer("Customer"))
    assert_problem(r, 404)
    r = shop.client.post(
        "/workflows/sushi/instances/x/events/AddToCart", json={}, headers=bearer("Customer")
    )
    assert_problem(r, 404)
    assert count(shop.engine) == 0


def test_a_typed_event_to_an_instance_of_another_workflow_is_not_found(shop: Shop) -> None:
    id = shop.start(workflow="flaky", data={"name": "never fixed"})["id"]
    before = shop.snapshot(id)
    r = shop.send(id, "AddToCart", MARGHERITA)
    problem = assert_problem(r, 404, "not-found")
    assert "'flaky'" in problem["detail"]
    r = shop.send(id, "Note", {"text": "x"}, role="Customer", workflow="pizza")
    assert_problem(r, 404)  # no such typed operation under pizza
    assert shop.snapshot(id) == before


def test_an_event_not_awaited_says_what_is(shop: Shop) -> None:
    shop.start("o")
    before = shop.snapshot("o")
    for generic in (False, True):
        r = shop.send("o", "Cooked", generic=generic)
        problem = assert_problem(r, 409, "not-waiting")
        assert problem["waiting_for"] == ["AddToCart", "EmptyCart", "SubmitCart", TIMEOUT]
        assert problem["instance_id"] == "o" and problem["error"] == "CallbackNotFound"
    r = shop.send("o", "AddToCart", MARGHERITA, thread="no-such-thread")
    assert_problem(r, 409, "not-waiting")
    assert shop.snapshot("o") == before


def test_starting_with_an_existing_id_conflicts(shop: Shop) -> None:
    shop.start("o")
    shop.ok("o", "AddToCart", MARGHERITA)
    before = shop.snapshot("o")
    r = shop.client.post(
        "/workflows/pizza/instances",
        json={"id": "o", "data": {"status": "hijacked"}},
        headers=bearer("Customer"),
    )
    problem = assert_problem(r, 409, "already-exists")
    assert "'o'" in problem["detail"]
    assert shop.snapshot("o") == before


def test_events_to_a_paused_instance_conflict(shop: Shop) -> None:
    shop.start("o")
    assert shop.operate("o", "pause").json()["status"] == "paused"
    before = shop.snapshot("o")
    for generic in (False, True):
        r = shop.send("o", "AddToCart", MARGHERITA, generic=generic)
        problem = assert_problem(r, 409, "wrong-status")
        assert problem["instance_status"] == "paused" and "unpause" in problem["detail"]
    assert shop.snapshot("o") == before


def test_events_to_a_finished_instance_conflict(shop: Shop) -> None:
    shop.start("o")
    shop.send("o", TIMEOUT, role="admin", generic=True)
    assert shop.get("o")["status"] == "finished"
    before = shop.snapshot("o")
    for generic in (False, True):
        r = shop.send("o", "AddToCart", MARGHERITA, generic=generic)
        problem = assert_problem(r, 409, "finished")
        assert problem["error"] == "WorkflowFinishedError"
    for action in ["pause", "cancel", "goto"]:
        body = GOTO_BODY if action == "goto" else {}
        problem = assert_problem(shop.operate("o", action, **body), 409, "wrong-status")
        assert problem["instance_status"] == "finished"
    assert shop.snapshot("o") == before


def test_a_handler_that_refuses_the_event_conflicts(shop: Shop) -> None:
    shop.start("o")
    before = shop.snapshot("o")
    r = shop.send("o", "SubmitCart")
    problem = assert_problem(r, 409, "refused")
    assert "the cart is empty" in problem["detail"]
    assert shop.snapshot("o") == before
    # a refused request does not use up its idempotency key
    shop.ok("o", "AddToCart", MARGHERITA)
    assert shop.ok("o", "SubmitCart", key="submit-1") == "submitted"


@pytest.mark.parametrize(
    ("event", "payload", "where"),
    [
        ("AddToCart", None, "nothing was sent"),
        ("AddToCart", {}, "payload.pizza"),
        ("AddToCart", {"pizza": {"size": "large"}}, "payload.pizza.name"),
        ("AddToCart", {"pizza": {"name": "margherita", "qty": "two"}}, "payload.pizza.qty"),
        ("AddToCart", {"pizza": "margherita"}, "payload.pizza"),
        ("AddToCart", {"pizza": ["name", "margherita"]}, "expected an object (Pizza)"),
        ("AddToCart", {"pizza": {"name": "margherita", "qtty": 2}}, "payload.pizza.qtty"),
        ("AddToCart", [MARGHERITA], "AddToCart"),
        ("AddToCart", "margherita", "AddToCart"),
        ("ConfirmOrder", {"manager": "Giulia"}, "payload.amount"),
        ("ConfirmOrder", {"manager": 7, "amount": 10}, "payload.manager"),
        ("ConfirmOrder", {"manager": "Giulia", "amount": "a lot"}, "payload.amount"),
    ],
)
def test_a_payload_of_the_wrong_shape_is_unprocessable(
    positioned: tuple[Shop, dict[str, str]], event: str, payload: Any, where: str
) -> None:
    shop, at = positioned
    id = at[event]
    before = shop.snapshot(id)
    for generic in (False, True):
        r = shop.send(id, event, payload, generic=generic)
        problem = assert_problem(r, 422, "invalid-payload")
        assert isinstance(problem["errors"], list) and problem["errors"]
        assert where in problem["detail"] or where in " ".join(problem["errors"]), problem
    assert shop.snapshot(id) == before


def test_the_goto_body_is_validated(shop: Shop) -> None:
    shop.start("o")
    before = shop.snapshot("o")
    for body in [{}, {"to": ""}, {"to": 5}, {"to": "for the manager", "colour": "red"}, []]:
        r = shop.client.post("/instances/o/goto", json=body, headers=bearer("admin"))
        problem = assert_problem(r, 422, "invalid-payload")
        assert problem["errors"]
    assert shop.snapshot("o") == before


# --------------------------------------------------------------------------------------------
# Idempotency-Key


def test_a_repeated_key_and_payload_answers_the_same_and_applies_once(shop: Shop) -> None:
    shop.start("o")
    first = shop.send("o", "AddToCart", MARGHERITA, key="add-1")
    assert first.status_code == 200 and first.json()["output"] == 1
    after_first = shop.snapshot("o")
    again = shop.send("o", "AddToCart", MARGHERITA, key="add-1")
    assert again.status_code == 200 and again.json() == first.json()
    # the generic route shares the key space with the typed one
    generic = shop.send("o", "AddToCart", MARGHERITA, key="add-1", generic=True)
    assert generic.status_code == 200 and generic.json() == first.json()
    assert shop.snapshot("o") == after_first
    assert shop.kinds("o").count("event:AddToCart") == 1
    assert len(shop.get("o")["data"]["cart"]) == 1
    # a new key is a new request
    assert shop.ok("o", "AddToCart", MARGHERITA, key="add-2") == 2
    # a repeat after the instance moved on still answers as the first time
    assert shop.ok("o", "SubmitCart", key="submit") == "submitted"
    assert shop.ok("o", "SubmitCart", key="submit") == "submitted"
    assert shop.ok("o", "AddToCart", MARGHERITA, key="add-1") == 1
    assert shop.kinds("o").count("event:SubmitCart") == 1


def test_a_key_reused_with_another_payload_is_unprocessable(shop: Shop) -> None:
    shop.start("o")
    shop.ok("o", "AddToCart", MARGHERITA, key="add-1")
    before = shop.snapshot("o")
    for generic in (False, True):
        r = shop.send("o", "AddToCart", DIAVOLA, key="add-1", generic=generic)
        problem = assert_problem(r, 422, "idempotency-key-reused")
        assert problem["idempotency_key"] == "add-1"
    r = shop.send("o", "EmptyCart", key="add-1")  # another event under the same key
    assert_problem(r, 422, "idempotency-key-reused")
    assert shop.snapshot("o") == before
    assert shop.kinds("o").count("event:AddToCart") == 1


def test_a_bad_idempotency_key_header_is_malformed(shop: Shop) -> None:
    shop.start("o")
    before = shop.snapshot("o")
    for key in ["", "k" * 201]:
        r = shop.send("o", "AddToCart", MARGHERITA, key=key)
        assert_problem(r, 400, "malformed")
    assert shop.snapshot("o") == before


# --------------------------------------------------------------------------------------------
# Body limits and busy instances


def _chunks(total: int) -> Iterator[bytes]:
    body = b'{"pizza": {"name": "' + b"m" * total + b'"}}'
    for i in range(0, len(body), 1000):
        yield body[i : i + 1000]


@pytest.mark.parametrize("streamed", [False, True], ids=["content-length", "chunked"])
def test_a_body_over_max_body_is_too_large(make_shop: Callable[..., Shop], streamed: bool) -> None:
    shop = make_shop(max_body=4096)
    shop.start("o")
    before = shop.snapshot("o")
    targets = [
        "/workflows/pizza/instances/o/events/AddToCart",
        "/instances/o/events/AddToCart",
        "/workflows/pizza/instances",
        "/instances/o/goto",
    ]
    for path in targets:
        role = "admin" if path.endswith("goto") else "Customer"
        content: Any = _chunks(5000) if streamed else b"".join(_chunks(5000))
        r = shop.client.post(
            path, content=content, headers={**bearer(role), "Content-Type": "application/json"}
        )
        assert ("transfer-encoding" in r.request.headers) == streamed
        problem = assert_problem(r, 413, "too-large")
        assert "4096" in problem["detail"]
    assert shop.snapshot("o") == before
    assert count(shop.engine) == 1
    # just under the limit is fine, streamed or not
    name = "m" * 3000
    r = shop.client.post(
        "/workflows/pizza/instances/o/events/AddToCart",
        content=b"".join(_chunks(3000)) if not streamed else _chunks(3000),
        headers={**bearer("Customer"), "Content-Type": "application/json"},
    )
    assert r.status_code == 200, r.text
    assert shop.get("o")["data"]["cart"][0]["name"] == name


def test_a_busy_instance_answers_503_with_retry_after(shop: Shop) -> None:
    entered, release = GATES["busy"] = (threading.Event(), threading.Event())
    answers: list[httpx.Response] = []
    starter = threading.Thread(
        target=lambda: answers.append(
            shop.client.post(
                "/workflows/gated/instances",
                json={"id": "g", "data": {"name": "busy"}},
                headers=bearer("Customer"),
            )
        )
    )
    starter.start()
    try:
        assert entered.wait(10), "the step never started"
        before = shop.snapshot("g")
        r = shop.send("g", "Poke", role="Cook", generic=True)
        problem = assert_problem(r, 503, "busy")
        assert r.headers["retry-after"] == "1"
        assert problem["instance_id"] == "g"
        assert shop.snapshot("g") == before
    finally:
        release.set()
        starter.join(20)
        GATES.pop("busy")
    assert answers[0].status_code == 201, answers[0].text
    assert answers[0].json()["waiting_for"] == ["Poke"]
    assert shop.ok("g", "Poke", role="Cook", generic=True) == "poked"


# --------------------------------------------------------------------------------------------
# Listing and paging


def test_list_filter_and_page(shop: Shop) -> None:
    pizzas = [shop.start(f"order-{i}")["id"] for i in range(7)]
    flakies = [
        shop.start(f"flaky-{i}", workflow="flaky", data={"name": f"f{i}"})["id"] for i in range(3)
    ]
    shop.send(pizzas[0], TIMEOUT, role="admin", generic=True)  # finished
    shop.operate(pizzas[1], "pause")
    everything = set(pizzas + flakies)

    def ids(**query: Any) -> list[str]:
        page = shop.read("/instances", role="Cook", **query)
        return [i["id"] for i in page["items"]]

    assert set(ids()) == everything
    assert set(ids(status="failed")) == set(flakies)
    assert ids(status="finished") == [pizzas[0]]
    assert ids(status="paused") == [pizzas[1]]
    assert set(ids(status=["finished", "paused"])) == {pizzas[0], pizzas[1]}
    assert set(ids(workflow="flaky")) == set(flakies)
    assert set(ids(workflow="pizza", status="waiting")) == set(pizzas[2:])
    assert ids(workflow="flaky", status="waiting") == []
    assert ids(workflow="sushi") == []

    summary = shop.read("/instances", workflow="flaky", limit=1)["items"][0]
    assert summary.keys() == {
        "id", "workflow", "status", "created_at", "updated_at", "version", "waiting_for",
        "last_error", "load_error",
    }  # fmt: skip
    assert summary["status"] == "failed" and "not fixed yet" in summary["last_error"]

    queries: list[dict[str, Any]] = [{}, {"workflow": "pizza"}, {"status": ["waiting", "failed"]}]
    for query in queries:
        seen: list[str] = []
        created: list[str] = []
        cursor = None
        pages = 0
        while True:
            params: dict[str, Any] = {**query, "limit": 3}
            if cursor is not None:
                params["cursor"] = cursor
            page = shop.read("/instances", **params)
            assert len(page["items"]) <= 3
            seen += [i["id"] for i in page["items"]]
            created += [i["created_at"] for i in page["items"]]
            pages += 1
            cursor = page["next"]
            if cursor is None:
                break
            assert len(page["items"]) == 3
        expected = set(ids(**query, limit=1000))
        assert len(seen) == len(set(seen)), seen  # no duplicates
        assert set(seen) == expected
        assert pages == -(-len(expected) // 3)  # the last full page already says next: null
        assert created == sorted(created, reverse=True)  # newest first


def test_list_searches_ids(shop: Shop) -> None:
    pizzas = ["order-1", "order-10", "Order-2", "shop-order-3", "a%b", "a_b", "axb"]
    for id in pizzas:
        shop.start(id)
    flaky = shop.start("flaky-order", workflow="flaky", data={"name": "f"})["id"]
    shop.operate("order-10", "pause")

    def ids(**query: Any) -> list[str]:
        page = shop.read("/instances", role="Delivery", **query)
        return [i["id"] for i in page["items"]]

    assert ids(q="order") == [flaky, "shop-order-3", "order-10", "order-1"]  # newest first
    assert ids(q="Order") == ["Order-2"]  # case-sensitive
    assert ids(q="ORDER") == []
    assert ids(q="order-1") == ["order-10", "order-1"]
    assert ids(q="%") == ["a%b"] and ids(q="_") == ["a_b"]  # no wildcards
    assert ids(q="a_b") == ["a_b"]
    assert set(ids(q="")) == set(ids()) == {*pizzas, flaky}  # empty: no filter
    assert ids(q="order", workflow="pizza") == ["shop-order-3", "order-10", "order-1"]
    assert ids(q="order", workflow="flaky") == [flaky]
    assert ids(q="order", status="paused") == ["order-10"]
    assert ids(q="order", status=["waiting", "failed"]) == [flaky, "shop-order-3", "order-1"]
    assert ids(q="nothing like it") == []

    # the search holds across pages: the cursor goes on with the same query
    seen: list[str] = []
    params: dict[str, Any] = {"q": "order", "limit": 1}
    while True:
        page = shop.read("/instances", **params)
        seen += [i["id"] for i in page["items"]]
        if page["next"] is None:
            break
        params["cursor"] = page["next"]
    assert seen == [flaky, "shop-order-3", "order-10", "order-1"]


@pytest.mark.parametrize("q", ["x" * 201, "a\x00b"])
def test_a_bad_search_is_malformed(shop: Shop, q: str) -> None:
    shop.start("o")
    r = shop.client.get("/instances", params={"q": q}, headers=bearer("admin"))
    body = assert_problem(r, 400, "malformed")
    assert "query.q" in body["detail"] or "a search must be" in body["detail"]
    r = shop.client.get("/instances", params={"q": "x" * 200}, headers=bearer("admin"))
    assert r.status_code == 200 and r.json()["items"] == []


# --------------------------------------------------------------------------------------------
# Diagrams

DIAGRAM_TYPES = {
    "svg": "image/svg+xml",
    "mermaid": "text/vnd.mermaid",
    "dot": "text/vnd.graphviz",
}
SVG_NS = "http://www.w3.org/2000/svg"


def _media_type(r: httpx.Response) -> str:
    return r.headers["content-type"].split(";")[0].strip()


def _svg_groups(text: str) -> dict[str, Any]:
    """The SVG's node groups by their data-name (the statement or event name)."""
    root = ET.fromstring(text)
    assert root.tag == f"{{{SVG_NS}}}svg"
    return {g.get("data-name"): g for g in root.iter(f"{{{SVG_NS}}}g") if g.get("data-name")}


def test_the_workflow_diagram(shop: Shop) -> None:
    pizza = graph.build("pizza", PizzaOrder)
    r = shop.client.get("/workflows/pizza/diagram", headers=bearer("Cook"))
    assert r.status_code == 200, r.text
    assert _media_type(r) == "image/svg+xml"  # SVG by default
    assert r.text == graph.svg(pizza)
    groups = _svg_groups(r.text)
    assert {"setup", "for the cart", "for payment", "complete"} <= set(groups)
    assert not any("current" in (g.get("class") or "") for g in groups.values())
    for fmt, media_type in DIAGRAM_TYPES.items():
        r = shop.client.get(
            "/workflows/pizza/diagram", params={"format": fmt}, headers=bearer("Delivery")
        )
        assert r.status_code == 200, r.text
        assert _media_type(r) == media_type
        assert r.text == graph.render(pizza, fmt)
    flaky = shop.client.get("/workflows/flaky/diagram", params={"format": "mermaid"},
                            headers=bearer("Customer"))  # fmt: skip
    assert flaky.text == graph.mermaid(graph.build("flaky", Flaky))


@pytest.mark.parametrize("fmt", ["png", "SVG", "", "mermaid,dot"])
def test_a_diagram_in_an_unknown_format_is_malformed(shop: Shop, fmt: str) -> None:
    id = shop.start("o")["id"]
    for path in ("/workflows/pizza/diagram", f"/instances/{id}/diagram"):
        r = shop.client.get(path, params={"format": fmt}, headers=bearer("admin"))
        body = assert_problem(r, 400, "malformed")
        assert "format" in body["detail"]


def test_the_diagram_of_an_unknown_workflow_is_not_found(shop: Shop) -> None:
    r = shop.client.get("/workflows/pizzza/diagram", headers=bearer("Cook"))
    problem = assert_problem(r, 404, "not-found")
    assert "'pizza'" in problem["detail"]  # did you mean


def test_the_instance_diagram_marks_where_it_stands(shop: Shop) -> None:
    shop.position("order-1", "StartCooking")  # main at 'for a cook', payment at 'for payment'
    before = shop.snapshot("order-1")
    r = shop.client.get("/instances/order-1/diagram", headers=bearer("Customer"))
    assert r.status_code == 200, r.text
    assert _media_type(r) == "image/svg+xml"
    groups = _svg_groups(r.text)
    classes = {name: set((g.get("class") or "").split()) for name, g in groups.items()}
    assert classes["for a cook"] == {"node", "wait", "current"}
    assert classes["for payment"] == {"node", "wait", "current"}
    assert "done" in classes["setup"] and "done" in classes["ConfirmOrder"]
    assert classes["StartCooking"] == {"node", "on"} and classes["complete"] == {"node", "step"}

    pizza = graph.build("pizza", PizzaOrder)
    marks = graph.position(pizza, shop.engine.get("order-1"), shop.engine.history("order-1"))
    assert r.text == graph.svg(pizza, marks)
    for fmt, media_type in DIAGRAM_TYPES.items():
        r = shop.client.get(
            "/instances/order-1/diagram", params={"format": fmt}, headers=bearer("Cook")
        )
        assert r.status_code == 200, r.text
        assert _media_type(r) == media_type
        assert r.text == graph.render(pizza, fmt, marks)
    assert shop.snapshot("order-1") == before  # a read


def test_the_instance_diagram_of_another_workflow_and_of_a_finished_one(shop: Shop) -> None:
    id = shop.start(workflow="flaky", data={"name": "never fixed"})["id"]
    r = shop.client.get(f"/instances/{id}/diagram", headers=bearer("admin"))
    assert r.status_code == 200, r.text
    classes = set((_svg_groups(r.text)["flaky step"].get("class") or "").split())
    assert classes == {"node", "step", "failed"}

    shop.start("done")
    shop.send("done", TIMEOUT, role="admin", generic=True)
    r = shop.client.get("/instances/done/diagram", params={"format": "mermaid"},
                        headers=bearer("admin"))  # fmt: skip
    assert r.status_code == 200, r.text
    assert "    class n1 current" in r.text  # the end


def test_the_diagrams_are_open_to_every_valid_token(
    positioned: tuple[Shop, dict[str, str]],
) -> None:
    shop, at = positioned
    for role in ROLES:
        for path in ("/workflows/pizza/diagram", f"/instances/{at['Cooked']}/diagram"):
            r = shop.client.get(path, headers=bearer(role))
            assert r.status_code == 200, (role, path, r.text)


def test_the_diagrams_without_auth(make_shop: Callable[..., Shop]) -> None:
    shop = make_shop(auth=None)
    shop.client.post("/workflows/pizza/instances", json={"id": "anon"})
    for path in ("/workflows/pizza/diagram", "/instances/anon/diagram"):
        r = shop.client.get(path)
        assert r.status_code == 200, r.text
        ET.fromstring(r.text)


# --------------------------------------------------------------------------------------------
# Operator actions


def test_goto_dry_run_changes_nothing_and_goto_moves_the_thread(shop: Shop) -> None:
    shop.start("o")
    shop.ok("o", "AddToCart", MARGHERITA)
    before = shop.snapshot("o")
    r = shop.operate("o", "goto", to="for the manager", dry_run=True)
    assert r.status_code == 200, r.text
    plan = r.json()
    assert plan["applied"] is False
    assert (plan["instance"], plan["thread"]) == ("o", "_main_")
    assert (plan["from_status"], plan["from_step"]) == ("WaitingEvent", "for the cart")
    assert (plan["to_status"], plan["to_step"]) == ("WaitingEvent", "for the manager")
    assert plan["setup"] == ["ConfirmOrder"]
    assert any("would move" in line for line in plan["description"])
    assert shop.snapshot("o") == before

    r = shop.operate("o", "goto", to="for the manager", thread="_main_")
    assert r.status_code == 200, r.text
    applied = r.json()
    assert applied["applied"] is True
    assert {k: v for k, v in applied.items() if k not in ("applied", "description")} == {
        k: v for k, v in plan.items() if k not in ("applied", "description")
    }
    inst = shop.get("o")
    assert inst["status"] == "waiting" and inst["waiting_for"] == ["ConfirmOrder"]
    assert inst["timers"] == []  # the cart's timeout went with the cart's wait
    history = shop.history("o")
    assert (history[-1]["kind"], history[-1]["name"]) == ("goto", "for the manager")
    assert shop.ok("o", "ConfirmOrder", PAYLOAD["ConfirmOrder"]) is None


@pytest.mark.parametrize(
    ("body", "what"),
    [
        ({"to": "nowhere"}, "'nowhere'"),
        ({"to": "for the cart", "thread": "nobody"}, "'nobody'"),
        ({"to": "nowhere", "dry_run": True}, "'nowhere'"),
    ],
)
def test_goto_to_an_unknown_statement_or_thread_is_unprocessable(
    shop: Shop, body: dict[str, Any], what: str
) -> None:
    shop.start("o")
    before = shop.snapshot("o")
    problem = assert_problem(shop.operate("o", "goto", **body), 422, "invalid-goto")
    assert what in problem["detail"] and problem["error"] == "GotoError"
    assert shop.snapshot("o") == before


def test_pause_and_unpause(shop: Shop) -> None:
    shop.start("o")
    r = shop.operate("o", "pause")
    assert r.status_code == 200 and r.json()["status"] == "paused"
    assert r.json()["waiting_for"] == ["AddToCart", "EmptyCart", "SubmitCart", TIMEOUT]
    again = shop.operate("o", "pause")
    assert again.status_code == 200 and again.json()["version"] == r.json()["version"]
    assert_problem(shop.send("o", "AddToCart", MARGHERITA), 409, "wrong-status")
    assert shop.get("o")["status"] == "paused"

    r = shop.operate("o", "unpause")
    assert r.status_code == 200 and r.json()["status"] == "waiting"
    problem = assert_problem(shop.operate("o", "unpause"), 409, "wrong-status")
    assert problem["instance_status"] == "waiting"
    assert shop.ok("o", "AddToCart", MARGHERITA) == 1
    kinds = shop.kinds("o")
    assert kinds[-3:] == ["paused", "unpaused", "event:AddToCart"]


def test_operator_actions_record_the_tokens_name_and_the_reason(shop: Shop) -> None:
    shop.start("o")
    r = shop.operate("o", "pause", reason="customer called")
    assert r.status_code == 200, r.text
    assert shop.operate("o", "unpause").status_code == 200  # no body: no reason
    r = shop.operate("o", "goto", to="for the manager", reason="skip the cart")
    assert r.status_code == 200, r.text
    r = shop.operate("o", "cancel", reason="")
    assert r.status_code == 200, r.text
    got = [(h["kind"], h["actor"], h["reason"]) for h in shop.history("o")]
    assert all(g[1:] == (None, None) for g in got if g[0] in ("started", "step"))
    assert [g for g in got if g[0] not in ("started", "step")] == [
        ("paused", "ops-demo", "customer called"),
        ("unpaused", "ops-demo", None),
        ("goto", "ops-demo", "skip the cart"),
        ("cancelled", "ops-demo", None),
    ]
    entry = shop.engine.history("o", newest_first=True, limit=1)[0]
    assert (entry.actor, entry.reason) == ("ops-demo", None)


def test_a_token_without_a_name_is_named_by_its_digest_never_its_secret(
    make_shop: Callable[..., Shop],
) -> None:
    secret = "a-long-secret-token-of-the-night-shift"
    digest = hashlib.sha256(secret.encode()).hexdigest()
    shop = make_shop(auth=Auth({secret: ["admin"], f"sha256:{digest[::-1]}": ["admin"]}))
    shop.engine.start("pizza", PizzaOrder(), "o")
    r = shop.client.post("/instances/o/pause", headers={"Authorization": f"Bearer {secret}"})
    assert r.status_code == 200, r.text
    r = shop.client.get("/instances/o/history", headers={"Authorization": f"Bearer {secret}"})
    [entry] = [h for h in r.json()["items"] if h["kind"] == "paused"]
    assert entry["actor"] == f"token:{digest[:8]}"
    assert secret not in r.text
    open_ = make_shop(auth=None)  # auth off: nobody is known
    open_.engine.start("pizza", PizzaOrder(), "o")
    assert open_.client.post("/instances/o/pause").status_code == 200
    assert open_.engine.history("o", newest_first=True, limit=1)[0].actor is None


@pytest.mark.parametrize("action", OPERATOR_ACTIONS)
def test_a_bad_reason_is_refused_and_changes_nothing(shop: Shop, action: str) -> None:
    shop.start("o")
    before = shop.snapshot("o")
    goto = GOTO_BODY if action == "goto" else {}
    for reason in ["r" * 2001, 5, ["why"]]:
        r = shop.operate("o", action, **goto, reason=reason)
        problem = assert_problem(r, 422, "invalid-payload")
        assert "reason" in problem["detail"], problem
    r = shop.operate("o", action, **goto, reason="ok", colour="red")
    assert "colour" in assert_problem(r, 422, "invalid-payload")["detail"]
    assert shop.snapshot("o") == before


def test_cancel(shop: Shop) -> None:
    shop.start("o")
    shop.ok("o", "AddToCart", MARGHERITA)
    assert len(shop.get("o")["timers"]) == 1
    r = shop.operate("o", "cancel")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "cancelled" and r.json()["timers"] == []
    inst = shop.get("o")
    assert inst["status"] == "cancelled" and inst["timers"] == []
    assert inst["data"]["cart"][0]["name"] == "margherita"  # kept for inspection
    before = shop.snapshot("o")
    problem = assert_problem(shop.send("o", "EmptyCart"), 409, "wrong-status")
    assert problem["instance_status"] == "cancelled"
    for action in ["cancel", "pause", "unpause", "retry", "goto"]:
        body = GOTO_BODY if action == "goto" else {}
        assert_problem(shop.operate("o", action, **body), 409, "wrong-status")
    assert shop.snapshot("o") == before
    assert shop.kinds("o")[-1] == "cancelled"


def test_retry_a_failed_instance(shop: Shop) -> None:
    name = new_id("flaky")
    started = shop.start(name, workflow="flaky", data={"name": name})
    assert started["status"] == "failed" and started["attempts"] == 1
    assert "not fixed yet" in started["last_error"]
    assert_problem(shop.send(name, "Note", {"text": "x"}, role="Cook", workflow="flaky"), 409)

    r = shop.operate(name, "retry")  # still broken: fails again, for good
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "failed" and r.json()["attempts"] == 1
    FIXED.add(name)
    try:
        r = shop.operate(name, "retry")
    finally:
        FIXED.discard(name)
    assert r.status_code == 200, r.text
    inst = r.json()
    assert inst["status"] == "waiting" and inst["last_error"] is None and inst["attempts"] == 0
    assert inst["waiting_for"] == ["Anything", "Close", "Note"]
    assert inst["data"]["ran"] == 1
    kinds = shop.kinds(name)
    assert kinds == [
        "started:flaky",
        "step_failed:flaky step",
        "failed:flaky step",
        "retry",
        "step_failed:flaky step",
        "failed:flaky step",
        "retry",
        "step:flaky step",
    ]
    problem = assert_problem(shop.operate(name, "retry"), 409, "wrong-status")
    assert problem["instance_status"] == "waiting"


@pytest.mark.parametrize("answer", ["start", "pause"])
def test_the_answer_lists_the_instances_timers(shop: Shop, answer: str) -> None:
    started = shop.start("o")
    if answer == "pause":
        started = shop.operate("o", "pause").json()
    assert shop.get("o")["timers"] != []
    assert started["timers"] == shop.get("o")["timers"]


def _journey(shop: Shop, id: str) -> list[dict[str, Any]]:
    shop.engine.start("pizza", PizzaOrder(), id)
    for _ in range(4):
        shop.engine.send(id, "AddToCart", DIAVOLA)
    shop.engine.send(id, "SubmitCart")
    return shop.history(id)


@pytest.mark.parametrize("newest_first", [False, True], ids=["oldest-first", "newest-first"])
def test_the_history_pages(shop: Shop, newest_first: bool) -> None:
    full = _journey(shop, "o")
    assert [h["seq"] for h in full] == list(range(1, 8))  # started, setup, 4 adds, submit
    want = full[::-1] if newest_first else full
    flag = {"newest_first": "true"} if newest_first else {}
    for limit in (1, 3, 8, 1000):
        seen: list[dict[str, Any]] = []
        params: dict[str, Any] = {"limit": limit, **flag}
        while True:
            page = shop.read("/instances/o/history", role="Cook", **params)
            assert len(page["items"]) <= limit
            seen += page["items"]
            if page["next"] is None:
                break
            params["cursor"] = page["next"]
        assert seen == want, limit
    assert shop.history("o", **flag) == want  # no limit: all of it


@pytest.mark.parametrize(
    "params",
    [
        {"limit": 0},
        {"limit": 1001},
        {"limit": "many"},
        {"cursor": "garbage"},
        {"cursor": "o1.1"},
        {"cursor": "o1.99999999999.1"},
        {"newest_first": "perhaps"},
        "mismatch",
    ],
)
def test_a_bad_history_query_is_malformed(shop: Shop, params: Any) -> None:
    _journey(shop, "o")
    if params == "mismatch":  # a cursor of a newest-first page, read oldest first
        page = shop.read("/instances/o/history", limit=2, newest_first="true")
        params = {"cursor": page["next"], "limit": 2}
    r = shop.client.get("/instances/o/history", params=params, headers=bearer("admin"))
    problem = assert_problem(r, 400, "malformed")
    assert problem["detail"]


def test_a_history_row_that_is_not_json_is_shown_with_a_note(
    make_shop: Callable[..., Shop], tmp_path: Path
) -> None:
    import sqlite3

    shop = make_shop()
    shop.start("o")
    shop.ok("o", "AddToCart", DIAVOLA)
    with sqlite3.connect(tmp_path / "shop0.db") as db:  # an operator edits the row by hand
        db.execute("UPDATE gorch_history SET input = 'pizza: diavola' WHERE kind = 'event'")
    event = shop.history("o")[-1]
    assert (event["kind"], event["input"], event["output"]) == ("event", "pizza: diavola", 1)
    assert "the stored input is not valid JSON" in event["note"]
    assert shop.history("o")[0]["note"] is None
    assert shop.client.get("/instances/o/diagram", headers=bearer("Cook")).status_code == 200


@pytest.mark.parametrize(
    ("method", "path", "says", "did_you_mean"),
    [
        ("POST", "/workflows/piza/instances", "no workflow is registered as 'piza'", ["pizza"]),
        (
            "POST",
            "/workflows/piza/instances/o/events/AddToCart",
            "no workflow is registered as 'piza'",
            ["pizza"],
        ),
        (
            "POST",
            "/workflows/pizza/instances/o/events/AddToCrt",
            "workflow 'pizza' has no event 'AddToCrt'",
            ["AddToCart"],
        ),
        (
            "POST",
            "/workflows/pizza/instances/o/events/cart%20timed%20out",
            "'cart timed out' is a timeout of 'pizza': it fires by itself",
            None,
        ),
        ("GET", "/instanses", "no route has the path '/instanses'", ["GET /instances"]),
        (
            "GET",
            "/instances/o/histroy",
            "no route has the path",
            ["GET /instances/{id}/history"],
        ),
        ("POST", "/instance/o/pause", "no route", ["POST /instances/{id}/pause"]),
        ("GET", "/ui/nope.js", "the web console has no file 'nope.js'", ["GET /ui/"]),
        ("GET", "/zzzzzzzzzzzzzzzz", "no route has the path", None),
    ],
)
def test_an_unknown_path_is_a_problem_with_the_closest_names(
    shop: Shop, method: str, path: str, says: str, did_you_mean: list[str] | None
) -> None:
    shop.start("o")
    before = shop.snapshot("o")
    r = shop.client.request(method, path, json={}, headers=bearer("Customer"))
    problem = assert_problem(r, 404, "not-found")
    assert shop.snapshot("o") == before and count(shop.engine) == 1
    assert says in problem["detail"]
    if did_you_mean is None:
        assert "did_you_mean" not in problem
    else:
        assert problem["did_you_mean"][: len(did_you_mean)] == did_you_mean
        assert f"Did you mean {did_you_mean[0]!r}" in problem["detail"]


def test_a_method_a_route_does_not_take_is_a_problem(shop: Shop) -> None:
    r = shop.client.get("/workflows/pizza/instances", headers=bearer("Customer"))
    problem = assert_problem(r, 405, "method-not-allowed")
    assert "takes POST" in problem["detail"]


def test_an_id_with_a_slash_is_refused_at_start(shop: Shop) -> None:
    """An instance's id is part of its URL: one with '/' could never be read back."""
    r = shop.client.post(
        "/workflows/pizza/instances", json={"id": "a/b"}, headers=bearer("Customer")
    )
    problem = assert_problem(r, 422, "invalid-payload")
    assert 'without "/"' in problem["detail"]
    assert shop.engine.list().items == []


@pytest.mark.parametrize(
    ("method", "path", "body", "params"),
    [
        ("POST", "/workflows/pizza/instances", {"id": "a\u0000b"}, {}),
        ("GET", "/instances/a%00b", None, {}),
        ("GET", "/instances", None, {"workflow": "\u0000"}),
    ],
    ids=["start", "get", "list"],
)
def test_a_nul_character_on_postgresql_is_a_client_error(
    pg_store_url: str, method: str, path: str, body: Any, params: dict[str, str]
) -> None:
    with ExitStack() as stack:
        store = SQLStore(pg_store_url)
        stack.callback(store.close)
        shop = serve(stack, shop_engine(store))
        r = shop.client.request(  # the response hook fails on the 500
            method, path, json=body, params=params, headers=bearer("Customer")
        )
        assert 400 <= r.status_code < 500
        assert r.headers["content-type"] == PROBLEM


# --------------------------------------------------------------------------------------------
# The OpenAPI document and the offline docs


def _resolve(doc: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].removeprefix("#/components/schemas/")
        schema = doc["components"]["schemas"][name]
    return schema


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "$ref" and isinstance(v, str):
                yield v
            else:
                yield from _refs(v)
    elif isinstance(node, list):
        for v in node:
            yield from _refs(v)


def test_the_openapi_document(shop: Shop) -> None:
    r = shop.client.get("/openapi.json")  # no token needed
    assert r.status_code == 200
    doc = r.json()
    assert doc["openapi"].startswith("3.")
    ops = {(method, path): op for path, item in doc["paths"].items() for method, op in item.items()}
    prefix = "/workflows/pizza/instances/{id}/events/"
    typed = {path.removeprefix(prefix) for _, path in ops if path.startswith(prefix)}
    assert typed == set(EVENTS)  # one operation per event; none for the timeout
    for event in EVENTS:
        op = ops[("post", prefix + event)]
        assert op["operationId"] == f"send_pizza_{event}"
        assert op["tags"] == ["pizza"]
        assert f"Role: {ROLE_OF[event]}" in op["description"]
        names = {p["name"] for p in op["parameters"]}
        assert names == {"id", "thread", "Idempotency-Key"}
        if event in PAYLOAD:
            body = op["requestBody"]
            assert body["required"] is True
            assert set(body["content"]) == {"application/json"}
        else:
            assert "requestBody" not in op, event
        ok = op["responses"]["200"]["content"]["application/json"]["schema"]
        assert ok["properties"]["event"] == {"type": "string", "const": event}

    add = _resolve(
        doc,
        ops[("post", prefix + "AddToCart")]["requestBody"]["content"]["application/json"]["schema"],
    )
    assert add["required"] == ["pizza"]
    pizza = _resolve(doc, add["properties"]["pizza"])
    assert set(pizza["properties"]) == {"name", "size", "qty"} and pizza["required"] == ["name"]
    assert pizza["properties"]["qty"]["type"] == "integer"
    confirm = _resolve(
        doc,
        ops[("post", prefix + "ConfirmOrder")]["requestBody"]["content"]["application/json"][
            "schema"
        ],
    )
    assert confirm["properties"]["amount"]["type"] == "number"
    assert confirm["properties"]["manager"]["type"] == "string"

    def output(event: str) -> Any:
        schema = ops[("post", prefix + event)]["responses"]["200"]["content"]
        return schema["application/json"]["schema"]["properties"]["output"]

    assert output("AddToCart") == {"type": "integer"}
    assert output("SubmitCart") == {"type": "string"}
    assert output("Cooked") == {"type": "null"}

    start = ops[("post", "/workflows/pizza/instances")]
    assert "201" in start["responses"]
    assert set(start["requestBody"]["content"]["application/json"]["schema"]["properties"]) == {
        "id",
        "data",
    }
    flaky_ops = [op for (m, p), op in ops.items() if p.startswith("/workflows/flaky/")]
    assert {op["operationId"] for op in flaky_ops} == {
        "start_flaky", "send_flaky_Note", "send_flaky_Anything", "send_flaky_Close",
    }  # fmt: skip

    assert doc["components"]["securitySchemes"] == {"bearer": {"type": "http", "scheme": "bearer"}}
    problem_ref = {"$ref": "#/components/schemas/Problem"}
    for (method, path), op in ops.items():
        errors = {"400", "404", "409", "413", "422", "503"}
        if path not in ("/health", "/info"):
            errors |= {"401", "403"}
            assert op["security"] == [{"bearer": []}], path
        else:
            assert "security" not in op
        assert errors <= set(op["responses"]), (method, path)
        for status in errors:
            content = op["responses"][status]["content"]
            assert content == {PROBLEM: {"schema": problem_ref}}, (method, path, status)
    problem = doc["components"]["schemas"]["Problem"]
    assert set(problem["required"]) == {"type", "title", "status", "detail"}

    for ref in set(_refs(doc)):  # every reference resolves
        assert ref.startswith("#/components/schemas/")
        assert ref.removeprefix("#/components/schemas/") in doc["components"]["schemas"], ref


def test_the_openapi_document_without_auth(make_shop: Callable[..., Shop]) -> None:
    shop = make_shop(auth=None)
    doc = shop.client.get("/openapi.json").json()
    assert "securitySchemes" not in doc.get("components", {})
    for item in doc["paths"].values():
        for op in item.values():
            assert "security" not in op
            assert not {"401", "403"} & set(op["responses"])
            assert "409" in op["responses"]


def test_the_workflow_description(shop: Shop) -> None:
    workflows = shop.read("/workflows", role="Delivery")
    assert [w["name"] for w in workflows] == ["pizza", "flaky", "gated"]
    pizza = shop.read("/workflows/pizza", role="Delivery")
    assert pizza == workflows[0]
    assert pizza["start_roles"] == ["Customer"]
    assert pizza["doc"].startswith("A pizza order")
    events = {e["name"]: e for e in pizza["events"]}
    assert set(events) == {*EVENTS, TIMEOUT}
    for event in EVENTS:
        assert events[event]["roles"] == [ROLE_OF[event]]
        assert events[event]["timeout"] is False and events[event]["after_seconds"] is None
        assert events[event]["path"] == f"/workflows/pizza/instances/{{id}}/events/{event}"
        assert (events[event]["payload"] is None) == (event not in PAYLOAD)
    timeout = events[TIMEOUT]
    assert timeout["timeout"] is True and timeout["path"] is None
    assert timeout["after_seconds"] == CART_TIMEOUT.total_seconds()
    assert timeout["waits"] == ["for the cart"] and timeout["roles"] == []
    assert events["AddToCart"]["output"] == {"type": "integer"}
    assert "pizza" in events["AddToCart"]["payload"]["properties"]
    flaky = {e["name"]: e for e in shop.read("/workflows/flaky")["events"]}
    assert flaky["Anything"]["payload"] == {} and flaky["Anything"]["output"] == {}
    assert flaky["Close"]["payload"] is None and flaky["Note"]["roles"] == []


PIZZA_GOTO_TARGETS = [
    {"name": "setup", "kind": "step", "thread": "_main_"},
    {"name": "for the cart", "kind": "wait", "thread": "_main_"},
    {"name": "expire order", "kind": "step", "thread": "_main_"},
    {"name": "for the manager", "kind": "wait", "thread": "_main_"},
    {"name": "for payment", "kind": "wait", "thread": "payment"},
    {"name": "for a cook", "kind": "wait", "thread": "_main_"},
    {"name": "for the oven", "kind": "wait", "thread": "_main_"},
    {"name": "for a courier", "kind": "wait", "thread": "_main_"},
    {"name": "for delivery", "kind": "wait", "thread": "_main_"},
    {"name": "payment received", "kind": "waitfor", "thread": "_main_"},
    {"name": "refund the difference", "kind": "step", "thread": "_main_"},
    {"name": "complete", "kind": "step", "thread": "_main_"},
]
"""The pizza's Steps, Waits and WaitFors in definition order, with their threads."""


def test_the_workflow_description_lists_the_goto_targets(shop: Shop) -> None:
    pizza = shop.read("/workflows/pizza", role="Cook")
    assert pizza["goto_targets"] == PIZZA_GOTO_TARGETS
    flaky = shop.read("/workflows/flaky")
    assert flaky["goto_targets"] == [
        {"name": "flaky step", "kind": "step", "thread": "_main_"},
        {"name": "for notes", "kind": "wait", "thread": "_main_"},
    ]
    # every target is one goto accepts, on an instance with both threads alive
    shop.position("order-1", "StartCooking")
    before = shop.snapshot("order-1")
    for target in PIZZA_GOTO_TARGETS:
        body = {"to": target["name"], "thread": target["thread"], "dry_run": True}
        r = shop.operate("order-1", "goto", **body)
        assert r.status_code == 200, (target, r.text)
        assert r.json()["to_step"] == target["name"]
    assert shop.snapshot("order-1") == before
    doc = shop.client.get("/openapi.json").json()
    workflow = doc["components"]["schemas"]["Workflow"]
    assert {"goto_targets", "data"} <= set(workflow["required"])


def test_the_workflow_description_has_the_schema_of_the_data(shop: Shop) -> None:
    pizza = shop.read("/workflows/pizza", role="Cook")
    assert "data" in pizza, (
        "GET /workflows/pizza has no 'data' (the JSON Schema of the workflow's data) yet"
    )
    schema = pizza["data"]
    assert schema["type"] == "object"
    assert set(schema["properties"]) == {
        "cart", "status", "amount", "paid", "address", "manager", "cook", "log",
    }  # fmt: skip
    assert schema["properties"]["amount"]["type"] == "number"
    assert schema["properties"]["log"] == {"type": "array", "items": {"type": "string"}} or (
        schema["properties"]["log"]["items"] == {"type": "string"}
    )
    cart_items = schema["properties"]["cart"]["items"]
    pizza_item = schema["$defs"][cart_items["$ref"].removeprefix("#/$defs/")]
    assert set(pizza_item["properties"]) == {"name", "size", "qty"}
    assert pizza_item["required"] == ["name"]
    assert schema.get("required", []) == []  # every field has a default
    refs = set(_refs(schema))
    assert refs and all(r.startswith("#/$defs/") for r in refs)  # standalone
    assert {r.removeprefix("#/$defs/") for r in refs} <= set(schema["$defs"])
    flaky = shop.read("/workflows/flaky")["data"]
    assert set(flaky["properties"]) == {"name", "notes", "extra", "ran", "closed"}


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_docs_are_served_without_a_cdn(shop: Shop, page: str) -> None:
    r = shop.client.get(page)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    html = r.text
    assert "/openapi.json" in html
    assert not re.search(r"https?://", html), html
    assert not re.search(r"""(src|href)\s*=\s*["']//""", html), html
    assets = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", html)
    assert any(a.endswith(".js") for a in assets), assets
    if page == "/docs":
        assert any(a.endswith(".css") for a in assets), assets
    for asset in assets:
        assert asset.startswith("/"), asset
        got = shop.client.get(asset)
        assert got.status_code == 200, asset
        assert len(got.content) > 100, asset
        if asset.endswith(".js"):
            assert "javascript" in got.headers["content-type"], asset
        elif asset.endswith(".css"):
            assert got.headers["content-type"].startswith("text/css"), asset


def test_a_token_may_be_named_in_the_tokens_file(tmp_path: Path) -> None:
    path = tmp_path / "tokens.toml"
    path.write_text(
        '[tokens]\n"old-form" = ["Customer"]\n"one-role" = "Cook"\n'
        '"named" = { roles = ["admin", "Manager"], name = "ana" }\n'
        '"unnamed-table" = { roles = ["admin"] }\n'
    )
    auth = Auth.from_file(path)
    for token, roles, name in [
        ("old-form", {"Customer"}, "token:" + hashlib.sha256(b"old-form").hexdigest()[:8]),
        ("one-role", {"Cook"}, "token:" + hashlib.sha256(b"one-role").hexdigest()[:8]),
        ("named", {"admin", "Manager"}, "ana"),
        ("unnamed-table", {"admin"}, "token:" + hashlib.sha256(b"unnamed-table").hexdigest()[:8]),
    ]:
        caller = auth.caller(f"Bearer {token}")
        assert caller is not None and (caller.roles, caller.name) == (roles, name), token


@pytest.mark.parametrize(
    ("held", "says"),
    [
        ({"roles": ["admin"], "name": ""}, "its name must be a text of 1 to 200"),
        ({"roles": ["admin"], "name": 7}, "its name must be"),
        ({"name": "ana"}, "a table of roles (a list) and an optional name"),
        ({"roles": ["admin"], "nmae": "ana"}, "a table of roles"),
        ({"roles": []}, "one or more role names"),
        ({"roles": {"admin": 1}}, "one or more role names"),
        ([["admin"]], "one or more role names"),
    ],
)
def test_a_bad_token_entry_says_what_to_fix(held: Any, says: str) -> None:
    from gorch.http import AuthError

    with pytest.raises(AuthError) as info:
        Auth({"some-token-value": held})
    assert says in str(info.value)
    assert "some-token-value" not in str(info.value)  # the secret is never shown whole


# --------------------------------------------------------------------------------------------
# Data repairs: PUT and PATCH /instances/{id}/data


def test_patch_data_dry_run_then_apply_with_the_tokens_name(shop: Shop) -> None:
    shop.start("o")
    before = shop.snapshot("o")
    headers = {**bearer("admin"), "Content-Type": "application/merge-patch+json"}
    r = shop.client.patch(
        "/instances/o/data", params={"dry_run": "true"}, headers=headers,
        content=b'{"address": "Via Po 2"}',
    )  # fmt: skip
    assert r.status_code == 200, r.text
    plan = r.json()
    assert (plan["applied"], plan["changed"]) == (False, True)
    assert plan["before"]["address"] == "" and plan["after"]["address"] == "Via Po 2"
    assert '+  "address": "Via Po 2",' in plan["diff"]
    assert shop.snapshot("o") == before
    r = shop.client.patch("/instances/o/data", params={"reason": "moved"}, headers=headers,
                          content=b'{"address": "Via Po 2"}')  # fmt: skip
    assert r.status_code == 200 and r.json()["applied"] is True
    assert shop.get("o")["data"]["address"] == "Via Po 2"
    last = shop.history("o")[-1]
    assert (last["kind"], last["actor"], last["reason"]) == ("data_set", "ops-demo", "moved")
    assert last["output"]["address"] == "Via Po 2"


def test_put_data_replaces_it(shop: Shop) -> None:
    shop.start("o")
    data = shop.get("o")["data"]
    data["cart"] = [{"name": "funghi", "size": "large", "qty": 2}]
    r = shop.client.put("/instances/o/data", json=data, headers=bearer("admin"))
    assert r.status_code == 200 and r.json()["applied"] is True, r.text
    assert shop.get("o")["data"] == data


@pytest.mark.parametrize(
    ("method", "body", "says"),
    [
        ("PATCH", {"address": 5}, "@ data.address"),
        ("PATCH", {"adress": "x"}, "did you mean 'address'?"),
        ("PATCH", [1], "a merge patch is a JSON object"),
        ("PUT", {"cart": 3}, "@ data.cart"),
        ("PUT", [], "data"),
    ],
)
def test_bad_data_is_unprocessable_and_changes_nothing(
    shop: Shop, method: str, body: Any, says: str
) -> None:
    shop.start("o")
    before = shop.snapshot("o")
    r = shop.client.request(method, "/instances/o/data", json=body, headers=bearer("admin"))
    problem = assert_problem(r, 422, "invalid-payload")
    assert says in problem["detail"], problem
    assert shop.snapshot("o") == before


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
def test_data_repairs_need_admin_and_a_live_instance(shop: Shop, method: str) -> None:
    shop.start("o")
    before = shop.snapshot("o")
    for role in ("Customer", "Manager"):
        r = shop.client.request(method, "/instances/o/data", json={}, headers=bearer(role))
        assert assert_problem(r, 403, "forbidden")["roles"] == ["admin"]
    shop.operate("o", "cancel")
    cancelled = shop.snapshot("o")
    assert cancelled != before
    data = shop.get("o")["data"]
    r = shop.client.request(method, "/instances/o/data", json=data, headers=bearer("admin"))
    assert_problem(r, 409, "wrong-status")
    assert_problem(
        shop.client.request(method, "/instances/nope/data", json={}, headers=bearer("admin")), 404
    )
    assert shop.snapshot("o") == cancelled


# --------------------------------------------------------------------------------------------
# Bulk: POST /instances/bulk/{action}


def test_bulk_dry_run_then_apply_names_the_token_and_the_run(shop: Shop) -> None:
    for i in range(3):
        shop.start(f"o{i}")
    shop.engine.pause("o2")
    before = {f"o{i}": shop.snapshot(f"o{i}") for i in range(3)}
    r = shop.client.post("/instances/bulk/pause", json={"workflow": "pizza", "dry_run": True},
                         headers=bearer("admin"))  # fmt: skip
    assert r.status_code == 200, r.text
    dry = r.json()
    assert (dry["matched"], dry["changed"], dry["dry_run"]) == (2, 0, True)
    assert sorted(dry["sample"]) == ["o0", "o1"]
    assert {i: shop.snapshot(i) for i in before} == before
    r = shop.client.post("/instances/bulk/pause", json={"workflow": "pizza", "reason": "oven"},
                         headers=bearer("admin"))  # fmt: skip
    report = r.json()
    assert (report["matched"], report["changed"], report["failed"], report["ok"]) == (2, 2, 0, True)
    last = shop.history("o0")[-1]
    assert (last["kind"], last["actor"]) == ("paused", "ops-demo")
    assert last["reason"] == f"[bulk pause {report['run']}] oven"
    body = {"status": ["paused"], "to": "for the manager"}
    r = shop.client.post("/instances/bulk/goto", json=body, headers=bearer("admin"))
    assert r.json()["changed"] == 3
    assert shop.get("o1")["status"] == "paused" and shop.get("o1")["waiting_for"] == [
        "ConfirmOrder"
    ]


def test_bulk_is_bounded_per_request(shop: Shop) -> None:
    for i in range(3):
        shop.start(f"o{i}")
    body = {"status": ["waiting"], "limit": 2}
    first = shop.client.post("/instances/bulk/cancel", json=body, headers=bearer("admin")).json()
    assert (first["matched"], first["changed"], first["more"]) == (2, 2, True)
    again = shop.client.post("/instances/bulk/cancel", json=body, headers=bearer("admin")).json()
    assert (again["matched"], again["changed"], again["more"]) == (1, 1, False)
    r = shop.client.post("/instances/bulk/cancel", json={"limit": 1001}, headers=bearer("admin"))
    assert "limit" in assert_problem(r, 422, "invalid-payload")["detail"]


@pytest.mark.parametrize(
    ("action", "body", "status", "says"),
    [
        ("retry", {"status": ["waiting"]}, 422, "retry is allowed for failed instances"),
        ("goto", {}, 422, "a bulk goto needs to="),
        ("pause", {"colour": "red"}, 422, "colour"),
        ("pause", {"workflow": "piza"}, 404, "Did you mean 'pizza'?"),
        ("delete", {}, 400, "Input should be 'retry'"),
    ],
)
def test_bad_bulk_requests_change_nothing(
    shop: Shop, action: str, body: dict[str, Any], status: int, says: str | None
) -> None:
    shop.start("o")
    before = shop.snapshot("o")
    r = shop.client.post(f"/instances/bulk/{action}", json=body, headers=bearer("admin"))
    problem = assert_problem(r, status)
    assert says is None or says in problem["detail"], problem
    for role in ("Customer", "Manager"):
        r = shop.client.post("/instances/bulk/pause", json={}, headers=bearer(role))
        assert_problem(r, 403, "forbidden")
    assert shop.snapshot("o") == before
