"""Every route the app serves, read from the app itself: each one needs a token but the few
that are public on purpose.

The routes are taken from ``app.routes`` (the typed routes of every registered workflow among
them), not from a list kept by hand, so a route added without the caller dependency fails
here. The public routes are the explicit allow-list ``PUBLIC``; one that disappears (or stops
being public) fails here too, so the list cannot rot. Served by real uvicorn
(``LiveServer``) to a real httpx client, on a real SQLite file.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from _http_workflows import Flaky, Gated
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from examples.pizza.workflow import PizzaOrder
from gorch import Engine
from gorch.http import PROBLEM, Auth, create_app
from gorch.store import SQLStore
from gorch.testing.http import LiveServer

ROOT = Path(__file__).resolve().parent.parent
TOKENS_FILE = ROOT / "examples" / "pizza" / "tokens.toml"

PUBLIC: dict[tuple[str, str], str] = {
    ("GET", "/health"): "/health",
    ("GET", "/info"): "/info",
    ("GET", "/openapi.json"): "/openapi.json",
    ("GET", "/docs"): "/docs",
    ("GET", "/docs/oauth2-redirect"): "/docs/oauth2-redirect",
    ("GET", "/redoc"): "/redoc",
    ("GET", "/ui"): "/ui",
    ("MOUNT", "/ui"): "/ui/",
    ("MOUNT", "/static-offline-docs"): "/static-offline-docs/swagger-ui.css",
}
"""The routes that need no token, on purpose (each with a URL of it to fetch): the service's
health and identity, the API's documents, and the static files of the docs and the console
(they hold no data; every call the console makes sends the token). ``MOUNT`` stands for a
mounted app, which takes every method."""

ID = "parked"
SAMPLES = {"id": ID, "workflow": "pizza", "event": "AddToCart"}
"""A value for each path parameter (any other parameter gets "x": the token is checked
before any parameter is read)."""

BAD_AUTHORIZATION = [None, "Bearer not-a-token"]


def served_routes(app: Any) -> list[tuple[str, str, Any]]:
    """(method, path template, route) of every route ``app.routes`` holds, HEAD aside (it is
    GET's); a mounted app as ``MOUNT``."""
    out = []
    for route in app.routes:
        if isinstance(route, Mount):
            out.append(("MOUNT", route.path, route))
        elif isinstance(route, Route):
            out += [(m, route.path, route) for m in sorted(set(route.methods or ()) - {"HEAD"})]
        else:  # e.g. an included router kept as one node: walk into it before trusting this
            pytest.fail(f"app.routes holds a {type(route).__name__} this test cannot read")
    return out


def url_of(template: str) -> str:
    """``template`` with a value in each ``{parameter}`` (``{name:converter}`` too)."""
    return re.sub(r"\{(\w+)(?::\w+)?\}", lambda m: SAMPLES.get(m[1], "x"), template)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, Engine, httpx.Client]]:
    """The pizza shop's app with the demo tokens, an instance parked in it, and a client."""
    store = SQLStore(f"sqlite:///{tmp_path_factory.mktemp('routes') / 'gorch.db'}")
    try:
        engine = Engine(store, {"pizza": PizzaOrder, "flaky": Flaky, "gated": Gated})
        engine.start("pizza", PizzaOrder(), ID)
        app = create_app(engine, auth=Auth.from_file(TOKENS_FILE))
        with LiveServer(app) as url, httpx.Client(base_url=url, timeout=20) as client:
            yield app, engine, client
    finally:
        store.close()


def snapshot(engine: Engine, id: str) -> tuple[Any, ...]:
    inst = engine.get(id)
    return inst.status, inst.version, inst.data, inst.state, len(engine.history(id))


def test_the_routes_are_read_from_the_app(served: tuple[Any, Engine, httpx.Client]) -> None:
    """The reading below sees every kind of route: the typed ones of each workflow, the
    generic ones, the operators', the public ones."""
    app, _, _ = served
    found = {(method, path) for method, path, _ in served_routes(app)}
    assert {
        ("POST", "/workflows/pizza/instances"),
        ("POST", "/workflows/pizza/instances/{id}/events/AddToCart"),
        ("POST", "/workflows/flaky/instances"),
        ("GET", "/instances/{id}"),
        ("POST", "/instances/{id}/events/{event}"),
        ("POST", "/instances/{id}/pause"),
        ("GET", "/me"),
    } <= found
    assert len(found - set(PUBLIC)) > 20


@pytest.mark.parametrize("authorization", BAD_AUTHORIZATION)
def test_every_route_but_the_public_ones_refuses_a_request_without_a_valid_token(
    served: tuple[Any, Engine, httpx.Client], authorization: str | None
) -> None:
    app, engine, client = served
    headers = {} if authorization is None else {"Authorization": authorization}
    before = snapshot(engine, ID)
    admitted = []
    for method, template, route in served_routes(app):
        if (method, template) in PUBLIC:
            continue
        assert method != "MOUNT", f"{template} is mounted: it takes no token (put it in PUBLIC?)"
        r = client.request(method, url_of(template), headers=headers)
        if r.status_code != 401:
            admitted.append(f"{method} {template} ({route.name}): {r.status_code}")
            continue
        assert r.headers["content-type"] == PROBLEM, (method, template)
        assert r.json()["type"] == "urn:gorch:problem:unauthorized", (method, template, r.text)
        assert r.headers["www-authenticate"] == 'Bearer realm="gorch"', (method, template)
    assert admitted == [], (
        "these routes answer without a valid token: give their router the caller dependency "
        "(dependencies=PROTECTED), or, if public on purpose, add them to PUBLIC"
    )
    assert snapshot(engine, ID) == before


def test_the_public_routes_are_served_and_need_no_token(
    served: tuple[Any, Engine, httpx.Client],
) -> None:
    app, _, client = served
    routes = {(method, path): route for method, path, route in served_routes(app)}
    missing = set(PUBLIC) - set(routes)
    assert missing == set(), f"no longer served: take {sorted(missing)} off PUBLIC"
    for (method, template), url in PUBLIC.items():
        route = routes[method, template]
        if method == "MOUNT":  # static files only: nothing behind them needs a token
            assert isinstance(route.app, StaticFiles), template
        r = client.request("GET" if method == "MOUNT" else method, url, follow_redirects=False)
        assert r.status_code < 400, (method, template, r.status_code, r.text[:200])


def test_the_token_is_checked_before_the_parameters(
    served: tuple[Any, Engine, httpx.Client],
) -> None:
    """Without a valid token, a request with a bad parameter is refused for the token (401),
    not judged on its parameters (400): nothing of a request is answered before its caller is
    known. (The caller is a dependency of the router, solved before the route's parameters.)"""
    _, _, client = served
    for url in ["/instances?limit=0", "/instances?status=nope", "/instances/" + "x" * 300]:
        r = client.get(url)
        assert r.status_code == 401, (url, r.text)
        r = client.get(url, headers={"Authorization": "Bearer admin-demo-token"})
        assert r.status_code == 400, (url, r.text)
