"""The web console at /ui in a real headless Chromium, against the app under uvicorn on loopback.

Chromium is Debian's ``chromium`` package (``scripts/ensure-system`` installs it), driven by
Playwright through ``executable_path``: Playwright never downloads a browser here. These tests do
not skip: without Chromium they fail and say how to install it.

Screenshots are kept as artifacts in ``$GORCH_ARTIFACTS`` (default: ``artifacts/`` at the
repository root).
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, Playwright, expect, sync_playwright

from examples.pizza import WORKFLOWS
from examples.pizza.workflow import PizzaOrder
from gorch import Child, Go, On, RetryPolicy, S, Step, Wait, context
from gorch.engine import Engine, RunStatus
from gorch.http import Auth, create_app
from gorch.store.sql import SQLStore
from gorch.testing.http import LiveServer

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = Path(os.environ.get("GORCH_ARTIFACTS", ROOT / "artifacts"))
TOKENS: dict[str, Any] = {
    "customer-t": ["Customer"],
    "manager-t": ["Manager"],
    "cook-t": ["Cook"],
    "courier-t": ["Delivery"],
    "admin-t": ["admin"],
    "ana-t": {"roles": ["admin"], "name": "ana"},
}
# What Chromium needs to start as root in a container with no network (see the env notes).
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

expect.set_options(timeout=10_000)
TITLE = "Pizza shop"


@dataclass
class Broken:
    """Fails at its step for good, while another of its threads still waits for Ping."""

    def definition(self) -> Any:
        return S(
            Go("side", Wait("for ping", On("Ping", None))),
            Wait("for an order", On("Bake", None)),
            Step("bake", self.bake, retry=RetryPolicy(max_attempts=1)),
        )

    def bake(self) -> None:
        raise RuntimeError("the oven is cold")


CRUNCHING = threading.Event()


@dataclass
class Crunch:
    """A long step that reports its progress until the test lets it finish."""

    def definition(self) -> Any:
        return S(Step("crunch", self.crunch))

    def crunch(self) -> None:
        n = 0
        while not CRUNCHING.wait(0.05):
            n += 1
            context().heartbeat({"rows": n})


def _chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    pytest.fail(
        "no chromium on PATH: the browser tests need Debian's chromium package; run "
        "`bash scripts/ensure-system` (apt-get install chromium)"
    )


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    b = playwright.chromium.launch(executable_path=_chromium(), args=ARGS)
    yield b
    b.close()


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    workflows = {**WORKFLOWS, "broken": Broken, "crunch": Crunch}
    eng = Engine(SQLStore(f"sqlite:///{tmp_path / 'ui.db'}"), workflows, lease=3)
    yield eng
    eng.store.close()


@pytest.fixture
def url(engine: Engine) -> Iterator[str]:
    app = create_app(engine, auth=Auth(TOKENS), worker=True, title=TITLE)
    with LiveServer(app) as base:
        yield base


@pytest.fixture
def page(browser: Browser, url: str) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    requests: list[str] = []
    pg.on("request", lambda r: requests.append(r.url))
    yield pg
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"
    outside = [r for r in requests if not r.startswith(url) and not r.startswith("data:")]
    assert not outside, f"the console fetched from elsewhere (it must work offline): {outside}"


def refusal(url: str, path: str, body: Any, token: str = "customer-t") -> dict[str, str]:
    """What the API says of a payload, per path: ``{"payload.pizza.qty": "expected ..."}`` (so
    the tests do not depend on the wording of the messages, only on where they are shown)."""
    r = httpx.post(url + path, json=body, headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 422, r.text
    return dict(reversed(line.rsplit(" @ ", 1)) for line in r.json()["errors"])


def use_token(page: Page, token: str) -> None:
    page.get_by_label("API token").fill(token)
    page.get_by_role("button", name="Use token").click()
    expect(page.locator("#flash")).to_have_text("Token set.")
    settled(page)


def settled(page: Page) -> None:
    """Wait until the page has drawn its view (the console marks main busy while loading)."""
    expect(page.locator("main")).to_have_attribute("aria-busy", "false")


def event_form(page: Page, event: str, thread: str = "_main_") -> Any:
    return page.locator(f"form#send-{event}-{thread}")


def send(page: Page, event: str, fields: dict[str, str] | None = None, thread: str = "_main_"):
    form = event_form(page, event, thread)
    expect(form).to_be_visible()
    for label, value in (fields or {}).items():
        form.get_by_label(label, exact=True).fill(value)
    form.get_by_role("button", name=f"Send {event}").click()
    expect(page.locator("#flash")).to_contain_text(f"Sent {event}")


def test_walk_a_pizza_order_from_start_to_finish(page: Page, url: str, engine: Engine) -> None:
    page.goto(f"{url}/ui/#/start")
    use_token(page, "customer-t")
    expect(page.get_by_role("heading", name="Start an instance")).to_be_visible()
    expect(page.locator("a.brand")).to_have_text(TITLE)  # create_app(title=...)
    expect(page).to_have_title(f"Start an instance · {TITLE}")
    page.get_by_label("Workflow").select_option("pizza")
    # the workflow's own docstring describes it (not a signature made up by dataclasses)
    expect(page.locator("form.start .field p.muted").first).to_contain_text("A pizza order")
    page.get_by_label("Id", exact=True).fill("ui-order-1")
    page.get_by_role("button", name="Start", exact=True).click()
    expect(page).to_have_url(f"{url}/ui/#/i/ui-order-1")
    expect(page.get_by_role("heading", name="ui-order-1")).to_be_visible()
    expect(page).to_have_title(f"ui-order-1 · {TITLE}")

    send(page, "AddToCart", {"Name": "Margherita", "Qty": "2"})
    expect(page.locator("#flash")).to_have_text("Sent AddToCart; answer: 1.")
    send(page, "SubmitCart")
    use_token(page, "manager-t")
    send(page, "ConfirmOrder", {"Manager": "Mia", "Amount": "21.5"})
    use_token(page, "customer-t")
    send(page, "ConfirmPayment", {"Amount": "21.5", "Address": "1 Main St"}, thread="payment")
    use_token(page, "cook-t")
    send(page, "StartCooking", {"Cook": "Carlo"})
    send(page, "Cooked")
    use_token(page, "courier-t")
    send(page, "TakeForDelivery")
    send(page, "Delivered")

    expect(page.locator(".title-row .badge")).to_have_text("finished")
    expect(page.get_by_text("The instance waits for no event now.")).to_be_visible()
    timeline = page.locator("ol.timeline")
    expect(timeline.locator("li.entry").first).to_contain_text("finished")
    expect(timeline).to_contain_text("event AddToCart")
    # the diagram shows the finished order: the end reached, every step along the way run
    expect(page.locator(".diagram svg g.node.end")).to_have_class("node end current")
    expect(page.locator('.diagram svg g[data-name="complete"]')).to_have_class("node step done")
    inst = engine.get("ui-order-1")
    assert inst.status is RunStatus.FINISHED
    assert inst.data.status == "completed" and inst.data.cart[0].qty == 2
    assert inst.data.paid == 21.5 and inst.data.cook == "Carlo"


def test_a_bad_payload_shows_inline_errors_and_changes_nothing(
    page: Page, url: str, engine: Engine
) -> None:
    engine.start("pizza", PizzaOrder(), "ui-bad")
    before = engine.get("ui-bad")
    page.goto(f"{url}/ui/#/i/ui-bad")
    use_token(page, "customer-t")
    form = event_form(page, "AddToCart")
    form.get_by_label("Qty", exact=True).fill("lots")
    form.get_by_role("button", name="Send AddToCart").click()

    name, qty = form.get_by_label("Name", exact=True), form.get_by_label("Qty", exact=True)
    expect(name).to_have_attribute("aria-invalid", "true")
    expect(qty).to_have_attribute("aria-invalid", "true")
    name_error = form.locator(f"#{name.get_attribute('id')}-error")
    qty_error = form.locator(f"#{qty.get_attribute('id')}-error")
    # each of the server's messages, as it wrote it, next to the field it names
    said = refusal(url, "/instances/ui-bad/events/AddToCart", {"pizza": {"qty": "lots"}})
    expect(name_error).to_have_text(said["payload.pizza.name"])
    expect(qty_error).to_have_text(said["payload.pizza.qty"])
    assert "lots" in said["payload.pizza.qty"]
    assert said["payload.pizza.qty"] == "expected a whole number, got the text 'lots'"
    expect(page.locator("#flash")).to_contain_text("Invalid payload")
    # the error is tied to its field for screen readers
    assert f"{qty.get_attribute('id')}-error" in (qty.get_attribute("aria-describedby") or "")
    after = engine.get("ui-bad")
    assert after.version == before.version and after.data.cart == []

    # fixed, it goes through and the errors go away
    name.fill("Diavola")
    qty.fill("1")
    form.get_by_role("button", name="Send AddToCart").click()
    expect(page.locator("#flash")).to_have_text("Sent AddToCart; answer: 1.")
    assert engine.get("ui-bad").data.cart[0].name == "Diavola"

    # a refusal by the workflow itself (empty cart) is shown on the form too
    engine.send("ui-bad", "EmptyCart")
    page.reload()
    submit = event_form(page, "SubmitCart")
    submit.get_by_role("button", name="Send SubmitCart").click()
    expect(submit.locator(".errors")).to_contain_text("the cart is empty")

    # a problem deep inside a field typed as JSON (a list) says where in it, in words
    page.goto(f"{url}/ui/#/start")
    page.get_by_label("Workflow").select_option("pizza")
    start = page.locator("form.start")
    start.locator("details summary").click()
    cart = start.get_by_label("Cart", exact=True)
    cart.fill('[{"name": "Margherita"}, {"size": "large"}]')
    start.get_by_role("button", name="Start", exact=True).click()
    expect(cart).to_have_attribute("aria-invalid", "true")
    body = {"data": {"cart": [{"name": "Margherita"}, {"size": "large"}]}}
    said = refusal(url, "/workflows/pizza/instances", body, "customer-t")
    expect(start.locator(f"#{cart.get_attribute('id')}-error")).to_have_text(
        f"item 2 \u203a name: {said['$.data.cart[1].name']}"
    )
    assert [i.id for i in engine.list()] == ["ui-bad"]

    # and a bad start: an id with "/" is refused, with no instance created
    page.goto(f"{url}/ui/#/start")
    page.get_by_label("Id", exact=True).fill("a/b")
    page.get_by_role("button", name="Start", exact=True).click()
    expect(page.locator("form.start .errors")).to_contain_text('without "/"')
    assert [i.id for i in engine.list().items] == ["ui-bad"]


def test_repair_a_stuck_order_with_goto(page: Page, url: str, engine: Engine) -> None:
    # The customer paid less than the confirmed amount: the order is stuck at the WaitFor.
    engine.start("pizza", PizzaOrder(), "ui-stuck")
    engine.send("ui-stuck", "AddToCart", {"pizza": {"name": "Marinara"}})
    engine.send("ui-stuck", "SubmitCart")
    engine.send("ui-stuck", "ConfirmOrder", {"manager": "Mia", "amount": 20})
    engine.send("ui-stuck", "ConfirmPayment", {"amount": 15, "address": "2 Side St"})
    for event in ("StartCooking", "Cooked", "TakeForDelivery", "Delivered"):
        engine.send("ui-stuck", event, {"cook": "Carlo"} if event == "StartCooking" else None)
    assert engine.waits("ui-stuck")[0].at == "payment received"

    page.goto(f"{url}/ui/#/i/ui-stuck")
    expect(page.locator("main")).to_contain_text("Unauthorized")  # no token yet
    expect(page.locator("main")).to_contain_text("Enter a token at the top of the page.")
    use_token(page, "customer-t")
    expect(page.locator('.diagram svg g[data-name="payment received"]')).to_have_class(
        "node waitfor current"
    )
    goto = page.locator("form.goto")
    expect(goto.get_by_role("button", name="Preview goto")).to_be_disabled()  # not an admin
    expect(page.locator(".ops .why")).to_have_text(
        "Needs the admin role; your token holds Customer."
    )
    expect(page.locator("#who")).to_have_text("roles: Customer")

    use_token(page, "admin-t")
    goto = page.locator("form.goto")
    goto.get_by_label("Statement").select_option("complete")
    goto.get_by_label("Thread").select_option("_main_")
    goto.get_by_role("button", name="Preview goto").click()
    diff = goto.locator("table.diff")
    expect(diff.locator("tr.del")).to_contain_text("payment received")
    expect(diff.locator("tr.add")).to_contain_text("complete")
    assert engine.waits("ui-stuck")[0].at == "payment received"  # a dry run changed nothing

    # Applying asks first; declining changes nothing
    goto.get_by_role("button", name="Apply goto").click()
    dialog = page.locator("dialog#confirm")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("From payment received to complete")
    dialog.get_by_role("button", name="Keep as is").click()
    expect(dialog).to_be_hidden()
    assert engine.get("ui-stuck").status is RunStatus.WAITING

    goto.get_by_role("button", name="Apply goto").click()
    dialog.get_by_role("button", name="Apply goto").click()
    expect(page.locator("#flash")).to_contain_text("goto: thread _main_ now at complete")
    expect(page.locator(".title-row .badge")).to_have_text("finished")
    assert engine.get("ui-stuck").data.status == "completed"
    expect(page.locator("ol.timeline")).to_contain_text("goto complete")


def test_the_goto_thread_follows_the_statement(page: Page, url: str, engine: Engine) -> None:
    engine.start("pizza", PizzaOrder(), "ui-two")
    engine.send("ui-two", "AddToCart", {"pizza": {"name": "Marinara"}})
    engine.send("ui-two", "SubmitCart")
    engine.send("ui-two", "ConfirmOrder", {"manager": "Mia", "amount": 20})
    assert {w.thread for w in engine.waits("ui-two")} == {"_main_", "payment"}
    page.goto(f"{url}/ui/#/i/ui-two")
    use_token(page, "admin-t")
    goto = page.locator("form.goto")
    statement, thread = goto.get_by_label("Statement"), goto.get_by_label("Thread")
    first = statement.input_value()  # as the page opens, the thread is the statement's own
    expect(thread).to_have_value("payment" if first == "for payment" else "_main_")
    statement.select_option("for payment")
    expect(thread).to_have_value("payment")
    statement.select_option("for a cook")
    expect(thread).to_have_value("_main_")


def test_operator_actions_need_confirmation(page: Page, url: str, engine: Engine) -> None:
    engine.start("pizza", PizzaOrder(), "ui-ops")
    page.goto(f"{url}/ui/#/i/ui-ops")
    use_token(page, "admin-t")
    ops = page.locator(".ops")
    expect(ops.get_by_role("button", name="Unpause", exact=True)).to_be_disabled()
    ops.get_by_role("button", name="Pause", exact=True).click()
    dialog = page.locator("dialog#confirm")
    dialog.get_by_role("button", name="Keep as is").click()
    assert engine.get("ui-ops").status is RunStatus.WAITING
    ops.get_by_role("button", name="Pause", exact=True).click()
    dialog.get_by_role("button", name="pause", exact=True).click()
    expect(page.locator(".title-row .badge")).to_have_text("paused")
    ops.get_by_role("button", name="Unpause", exact=True).click()
    dialog.get_by_role("button", name="unpause", exact=True).click()
    expect(page.locator(".title-row .badge")).to_have_text("waiting")
    ops.get_by_role("button", name="Cancel", exact=True).click()
    expect(dialog).to_contain_text("cannot be undone")
    dialog.get_by_role("button", name="cancel", exact=True).click()
    expect(page.locator(".title-row .badge")).to_have_text("cancelled")
    assert engine.get("ui-ops").status is RunStatus.CANCELLED

    # a customer's token cannot: the console says so (and the API would refuse with 403)
    engine.start("pizza", PizzaOrder(), "ui-ops-2")
    page.goto(f"{url}/ui/#/i/ui-ops-2")
    use_token(page, "customer-t")
    expect(page.locator(".ops").get_by_role("button", name="Pause", exact=True)).to_be_disabled()
    # and an admin's token may not send a customer's event
    use_token(page, "admin-t")
    add = event_form(page, "AddToCart")
    expect(add.get_by_role("button", name="Send AddToCart")).to_be_disabled()
    expect(add.locator(".why")).to_have_text("Needs the role Customer; your token holds admin.")
    assert engine.get("ui-ops-2").status is RunStatus.WAITING


def test_operator_actions_ask_for_a_reason_and_the_history_says_who(
    page: Page, url: str, engine: Engine
) -> None:
    engine.start("pizza", PizzaOrder(), "ui-who")
    page.goto(f"{url}/ui/#/i/ui-who")
    use_token(page, "ana-t")
    expect(page.locator("#who")).to_have_text("ana, roles: admin")
    ops = page.locator(".ops")
    ops.get_by_role("button", name="Pause", exact=True).click()
    dialog = page.locator("dialog#confirm")
    dialog.get_by_label("Reason").fill("customer called")
    dialog.get_by_role("button", name="pause", exact=True).click()
    expect(page.locator(".title-row .badge")).to_have_text("paused")
    paused = page.locator("ol.timeline li.paused")
    expect(paused.locator(".by")).to_have_text("by ana: customer called")
    ops.get_by_role("button", name="Unpause", exact=True).click()
    dialog.get_by_role("button", name="unpause", exact=True).click()  # no reason given
    expect(page.locator("ol.timeline li.unpaused .by")).to_have_text("by ana")

    goto = page.locator("form.goto")
    goto.get_by_label("Statement").select_option("for the manager")
    goto.get_by_label("Reason").fill("skip the cart")
    goto.get_by_role("button", name="Preview goto").click()
    goto.get_by_role("button", name="Apply goto").click()
    dialog.get_by_role("button", name="Apply goto").click()
    expect(page.locator("ol.timeline li.goto .by")).to_have_text("by ana: skip the cart")
    by = [(h.kind, h.actor, h.reason) for h in engine.history("ui-who") if h.actor]
    assert by == [
        ("paused", "ana", "customer called"),
        ("unpaused", "ana", None),
        ("goto", "ana", "skip the cart"),
    ]


def test_delete_personal_data_asks_then_erases(page: Page, url: str, engine: Engine) -> None:
    engine.start("pizza", PizzaOrder(address="Via Roma 1"), "ui-erase")
    page.goto(f"{url}/ui/#/i/ui-erase")
    use_token(page, "ana-t")
    page.locator(".ops").get_by_role("button", name="Delete personal data").click()
    dialog = page.locator("dialog#confirm")
    expect(dialog).to_contain_text("This cannot be undone.")
    dialog.get_by_role("button", name="Keep as is").click()  # asked: nothing yet
    assert engine.get("ui-erase").data.address == "Via Roma 1"
    page.locator(".ops").get_by_role("button", name="Delete personal data").click()
    dialog.get_by_label("Reason").fill("GDPR request 7")
    dialog.get_by_role("button", name="erase", exact=True).click()
    expect(page.locator("ol.timeline li.data_deleted .by")).to_have_text("by ana: GDPR request 7")
    assert engine.get("ui-erase").data.address == ""
    assert "Via Roma 1" not in str([(h.input, h.output) for h in engine.history("ui-erase")])


def test_edit_data_shows_the_diff_before_applying(page: Page, url: str, engine: Engine) -> None:
    engine.start("pizza", PizzaOrder(address="Via Roma 1"), "ui-data")
    page.goto(f"{url}/ui/#/i/ui-data")
    use_token(page, "customer-t")
    form = page.locator("form.data-edit")
    expect(form.get_by_role("button", name="Preview change")).to_be_disabled()  # not an admin
    use_token(page, "ana-t")
    form = page.locator("form.data-edit")
    text = form.get_by_label("Data (JSON)")
    data = json.loads(text.input_value())
    assert data["address"] == "Via Roma 1"
    text.fill(json.dumps({**data, "address": 5}))
    form.get_by_role("button", name="Preview change").click()
    expect(form.locator(".plan .error")).to_contain_text("@ data.address")
    text.fill("{not json")
    form.get_by_role("button", name="Preview change").click()
    expect(form.locator(".plan .error")).to_contain_text("Not valid JSON")
    text.fill(json.dumps({**data, "address": "Via Po 2"}))
    form.get_by_label("Reason").fill("customer moved")
    form.get_by_role("button", name="Preview change").click()
    expect(form.locator(".data-diff .del")).to_contain_text('"address": "Via Roma 1"')
    expect(form.locator(".data-diff .add")).to_contain_text('"address": "Via Po 2"')
    assert engine.get("ui-data").data.address == "Via Roma 1"  # the dry run changed nothing
    form.get_by_role("button", name="Apply change").click()
    dialog = page.locator("dialog#confirm")
    dialog.get_by_role("button", name="Keep as is").click()
    assert engine.get("ui-data").data.address == "Via Roma 1"
    form.get_by_role("button", name="Apply change").click()
    dialog.get_by_role("button", name="Apply change").click()
    expect(page.locator("#flash")).to_contain_text("data: changed.")
    expect(page.locator("ol.timeline li.data_set .by")).to_have_text("by ana: customer moved")
    assert engine.get("ui-data").data.address == "Via Po 2"
    engine.cancel("ui-data")
    page.reload()
    settled(page)
    expect(page.locator("form.data-edit button")).to_be_disabled()


def test_instance_list_filters_pages_and_refreshes_live(
    page: Page, url: str, engine: Engine
) -> None:
    for n in range(23):
        engine.start("pizza", PizzaOrder(), f"shop-{n:02d}")
    engine.start("pizza", PizzaOrder(), "other-1")
    engine.cancel("shop-03")
    page.goto(f"{url}/ui/")
    use_token(page, "customer-t")
    rows = page.locator("table.instances tbody tr")
    expect(rows).to_have_count(20)
    expect(rows.first).to_contain_text("other-1")  # newest first
    page.get_by_role("button", name="Next page").click()
    expect(rows).to_have_count(4)
    page.get_by_role("button", name="Previous page").click()
    expect(rows).to_have_count(20)

    page.get_by_label("Id contains").fill("shop-1")
    page.get_by_role("button", name="Filter").click()
    expect(rows).to_have_count(10)
    expect(page).to_have_url(f"{url}/ui/#/?q=shop-1")
    page.get_by_label("Status").select_option("cancelled")
    page.get_by_label("Id contains").fill("")
    page.get_by_role("button", name="Filter").click()
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("shop-03")
    expect(rows.first.locator(".badge")).to_have_text("cancelled")

    # live refresh: a cancellation elsewhere shows up without a reload
    engine.cancel("shop-07")
    expect(rows).to_have_count(2)
    # the keyboard reaches an instance: focus its link, Enter opens it
    rows.first.get_by_role("link").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="shop-07")).to_be_focused()


def test_accessible_offline_and_readable_on_a_phone(browser: Browser, url: str, engine: Engine):
    engine.start("pizza", PizzaOrder(), "ui-phone")
    engine.send("ui-phone", "AddToCart", {"pizza": {"name": "Funghi"}})
    context = browser.new_context(
        viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True
    )
    page = context.new_page()
    try:
        page.goto(f"{url}/ui/#/i/ui-phone")
        page.get_by_label("API token").fill("customer-t")
        page.get_by_label("API token").press("Enter")
        expect(page.locator(".diagram svg")).to_be_visible()
        # on a fresh load (the token is kept for the tab), the first Tab stop is the skip link
        page.reload()
        settled(page)
        page.keyboard.press("Tab")
        expect(page.locator("a.skip")).to_be_focused()
        page.keyboard.press("Enter")
        expect(page.locator("main")).to_be_focused()
        expect(page).to_have_url(f"{url}/ui/#/i/ui-phone")  # the route is kept
        # nothing but the diagram and wide tables scroll sideways: the page itself fits
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"the page is {width}px wide on a 390px phone"
        # the threads are cards too: every cell on the screen
        outside = page.evaluate(
            """() => [...document.querySelectorAll('section[aria-labelledby=s-threads] tbody td')]
                .map(c => c.getBoundingClientRect())
                .filter(r => r.left < 0 || r.right > 390).length"""
        )
        assert outside == 0, f"{outside} cells of the threads are off the screen"
        # the diagram is drawn at a readable size (its 12px text at least 10.8px) and scrolls
        # in its own box, which shows where the order waits
        scale, scrolls, shown = page.evaluate(
            """() => { const box = document.querySelector('.diagram');
                const svg = box.querySelector('svg');
                const cur = box.querySelector('g.node.current').getBoundingClientRect();
                const b = box.getBoundingClientRect();
                return [svg.getBoundingClientRect().width / svg.width.baseVal.value,
                        box.scrollWidth > box.clientWidth,
                        cur.left >= b.left && cur.right <= b.right]; }"""
        )
        assert scale >= 0.9 and scrolls and shown, (scale, scrolls, shown)
        # every form control has a label
        unlabelled = page.evaluate(
            """() => [...document.querySelectorAll('input, select, textarea')]
                .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label'))
                .map(e => e.outerHTML)"""
        )
        assert unlabelled == []
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shot = ARTIFACTS / "ui-instance-phone.png"
        page.screenshot(path=str(shot), full_page=True)
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

        # the instance list: one card per instance, every cell on the screen
        engine.start("pizza", PizzaOrder(), "an-order-with-a-rather-long-id-to-fit-on-a-phone")
        page.goto(f"{url}/ui/#/")
        rows = page.locator("table.instances tbody tr")
        expect(rows).to_have_count(2)
        outside = page.evaluate(
            """() => [...document.querySelectorAll('table.instances tbody th, '
                        + 'table.instances tbody td')]
                .map(c => c.getBoundingClientRect())
                .filter(r => r.left < 0 || r.right > 390).length"""
        )
        assert outside == 0, f"{outside} cells of the list are off the screen"
        expect(rows.first.get_by_role("cell").last).to_contain_text("just now")
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        page.screenshot(path=str(ARTIFACTS / "ui-list-phone.png"), full_page=True)
    finally:
        context.close()


def test_screenshot_of_the_instance_page_is_kept(page: Page, url: str, engine: Engine) -> None:
    engine.start("pizza", PizzaOrder(), "ui-shot")
    engine.send("ui-shot", "AddToCart", {"pizza": {"name": "Quattro", "qty": 2}})
    engine.send("ui-shot", "SubmitCart")
    engine.send("ui-shot", "ConfirmOrder", {"manager": "Mia", "amount": 30})
    page.goto(f"{url}/ui/#/i/ui-shot")
    use_token(page, "cook-t")
    expect(page.locator('.diagram svg g[data-name="for a cook"]')).to_have_class(
        "node wait current"
    )
    expect(page.locator('.diagram svg g[data-name="for payment"]')).to_have_class(
        "node wait current"
    )
    expect(page.locator(".diagram svg g.node.done")).not_to_have_count(0)
    threads = page.locator("section[aria-labelledby=s-threads] tbody tr")
    expect(threads).to_have_count(2)
    expect(page.locator("section[aria-labelledby=s-threads]")).to_contain_text("for payment")
    # the payment thread has done nothing yet: it has waited since its Go ran
    payment = threads.filter(has_text="for payment")
    expect(payment.locator("td").nth(2).locator("time")).to_have_count(1)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "ui-instance.png"
    page.screenshot(path=str(shot), full_page=True)
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000


def test_history_shows_the_latest_entries_and_loads_older_ones(
    page: Page, url: str, engine: Engine, tmp_path: Path
) -> None:
    engine.start("pizza", PizzaOrder(), "ui-long")
    for n in range(30):
        engine.send("ui-long", "AddToCart", {"pizza": {"name": f"Pizza {n}"}})
    page.goto(f"{url}/ui/#/i/ui-long")
    use_token(page, "cook-t")
    history = page.locator("section[aria-labelledby=s-history]")
    entries = history.locator("ol.timeline li.entry")
    expect(entries).to_have_count(20)
    expect(history).to_contain_text("The latest 20 of 32 entries, newest first.")
    expect(entries.first).to_contain_text("#32")
    expect(entries.last).to_contain_text("#13")
    older = history.get_by_role("button", name="Load older entries")
    older.click()
    expect(entries).to_have_count(32)
    expect(history).to_contain_text("All 32 entries, newest first.")
    expect(entries.last).to_contain_text("started")
    expect(older).to_be_hidden()
    expect(entries.nth(20)).to_be_focused()  # the first of the older ones

    # live refresh puts new entries in front, and keeps the older ones loaded
    engine.send("ui-long", "SubmitCart")
    expect(entries.first).to_contain_text("event SubmitCart")
    expect(entries).to_have_count(33)
    expect(history).to_contain_text("All 33 entries")

    # more new entries than a page while the refresh was off: it starts over from the latest
    page.get_by_label("Live refresh").uncheck()
    engine.start("pizza", PizzaOrder(), "ui-longer")
    page.goto(f"{url}/ui/#/i/ui-longer")
    expect(entries).to_have_count(2)
    page.get_by_label("Live refresh").uncheck()
    for n in range(25):
        engine.send("ui-longer", "AddToCart", {"pizza": {"name": f"Pizza {n}"}})
    page.get_by_label("Live refresh").check()
    expect(history).to_contain_text("The latest 20 of 27 entries, newest first.")
    expect(entries).to_have_count(20)
    expect(entries.first).to_contain_text("#27")
    history.get_by_role("button", name="Load older entries").click()
    expect(entries).to_have_count(27)
    seqs = [int(t.split("·")[0].strip("# ")) for t in entries.locator(".when").all_text_contents()]
    assert seqs == list(range(27, 0, -1))


def test_a_stored_entry_that_is_not_json_is_shown_with_a_note(
    page: Page, url: str, engine: Engine, tmp_path: Path
) -> None:
    engine.start("pizza", PizzaOrder(), "ui-edited")
    engine.send("ui-edited", "AddToCart", {"pizza": {"name": "Funghi"}})
    with sqlite3.connect(tmp_path / "ui.db") as db:  # an operator edits the row by hand
        db.execute("UPDATE gorch_history SET input = 'pizza=funghi' WHERE kind = 'event'")
    page.goto(f"{url}/ui/#/i/ui-edited")
    use_token(page, "cook-t")
    entry = page.locator("ol.timeline li.entry").filter(has_text="event AddToCart")
    expect(entry.locator(".why")).to_contain_text("Note: the stored input is not valid JSON")
    entry.locator("summary", has_text="input").click()
    expect(entry.locator("pre").first).to_have_text('"pizza=funghi"')


def test_the_list_says_why_a_failed_instance_failed(page: Page, url: str, engine: Engine) -> None:
    engine.start("broken", Broken(), "ui-broken")
    engine.send("ui-broken", "Bake")
    failed = engine.get("ui-broken")
    assert failed.status is RunStatus.FAILED and failed.waiting_for() == ["Ping"]
    engine.start("pizza", PizzaOrder(), "ui-fine")
    page.goto(f"{url}/ui/")
    use_token(page, "cook-t")
    rows = page.locator("table.instances tbody tr")
    broken = rows.filter(has_text="ui-broken")
    expect(broken.locator(".error")).to_have_text("RuntimeError: the oven is cold")
    expect(broken).not_to_contain_text("Ping")
    expect(rows.filter(has_text="ui-fine")).to_contain_text("AddToCart, EmptyCart")


def test_a_running_step_shows_its_attempt_and_heartbeat(
    page: Page, url: str, engine: Engine
) -> None:
    CRUNCHING.clear()
    engine.start("crunch", Crunch(), "ui-crunch", defer=True)  # the app's worker runs it
    try:
        page.goto(f"{url}/ui/#/i/ui-crunch")
        use_token(page, "admin-t")
        running = page.locator("dd").filter(has_text="attempt 1")
        expect(running).to_contain_text("crunch (thread _main_), attempt 1, since", timeout=15000)
        expect(running).to_contain_text('{"rows":', timeout=15000)
    finally:
        CRUNCHING.set()


@dataclass
class Courier:
    """A child that waits to be released, then drives."""

    driven: bool = False

    def definition(self) -> Any:
        return S(Wait("parked", On("release", None)), Step("drive", self.drive))

    def drive(self) -> None:
        self.driven = True


@dataclass
class Dispatch:
    """A parent: it starts a Courier and finishes once it has ended."""

    def definition(self) -> Any:
        return S(Child("deliver", "courier", Courier))


def test_a_change_shows_within_a_second_without_polling_and_family_links(
    browser: Browser, tmp_path: Path
) -> None:
    """The console follows the change feed: idle, it makes no request at all (no poll); an
    event sent elsewhere shows within a second. A child links to its parent, and back."""
    store = SQLStore(f"sqlite:///{tmp_path / 'live.db'}")
    engine = Engine(store, {"dispatch": Dispatch, "courier": Courier})
    engine.start("dispatch", Dispatch(), "ui-dispatch")
    (child,) = engine.get("ui-dispatch").children
    app = create_app(engine, auth=Auth(TOKENS), worker=True, title=TITLE)
    with LiveServer(app) as url:
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        requests: list[str] = []
        page.on("request", lambda r: requests.append(r.url))
        try:
            page.goto(f"{url}/ui/#/i/{child}")
            use_token(page, "cook-t")
            badge = page.locator(".title-row .badge")
            expect(badge).to_have_text("waiting")
            summary = page.locator("dl.summary")
            expect(summary.get_by_role("link", name="ui-dispatch")).to_be_visible()
            expect(page.locator("html")).to_have_attribute("data-feed", "open")
            assert sum("/changes/stream" in r for r in requests) >= 1
            page.wait_for_timeout(1000)  # the refreshes of the token and the stream settle
            idle_from = len(requests)
            page.wait_for_timeout(3000)
            assert requests[idle_from:] == [], "the console polled while nothing changed"

            page.evaluate(
                """() => { const badge = document.querySelector('.title-row .badge');
                    window.changedAt = new Promise(done => new MutationObserver(() => {
                        if (badge.textContent === 'finished') done(performance.now());
                    }).observe(badge, {childList: true, characterData: true, subtree: true})); }"""
            )
            sent_at = page.evaluate("performance.now()")
            began = time.monotonic()
            engine.send(child, "release")
            expect(badge).to_have_text("finished", timeout=1000)
            assert time.monotonic() - began < 1.0
            took = page.evaluate("window.changedAt") - sent_at
            assert took < 1000, took
            print(f"the console showed the change {took:.0f} ms after the send began")

            summary.get_by_role("link", name="ui-dispatch").click()
            expect(page.get_by_role("heading", name="ui-dispatch")).to_be_visible()
            expect(page.locator("dl.summary").get_by_role("link", name=child)).to_be_visible()
            expect(badge).to_have_text("finished")  # the app's worker gave it the child's end
        finally:
            context.close()
    store.close()
    assert not errors, f"JavaScript errors on the page: {errors}"
    outside = [r for r in requests if not r.startswith(url) and not r.startswith("data:")]
    assert not outside, outside


def test_schedules_are_listed_paused_resumed_and_deleted(
    page: Page, url: str, engine: Engine
) -> None:
    """The Schedules view lists each schedule; an admin pauses, resumes and (after a
    confirmation) deletes one, and the list follows."""
    engine.schedule("nightly", "pizza", "0 2 * * *")
    page.goto(f"{url}/ui/")
    use_token(page, "admin-t")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Schedules").click()
    expect(page.get_by_role("heading", name="Schedules", level=1)).to_be_visible()
    settled(page)
    row = page.get_by_role("row").filter(has=page.get_by_role("rowheader", name="nightly"))
    expect(row).to_contain_text("pizza")
    expect(row).to_contain_text("0 2 * * *")
    expect(row).to_contain_text("UTC")

    row.get_by_role("button", name="Pause nightly").click()
    expect(row.get_by_role("button", name="Resume nightly")).to_be_visible()
    expect(row.locator(".badge.paused")).to_have_text("paused")
    assert engine.schedules()[0].paused is True

    row.get_by_role("button", name="Resume nightly").click()
    expect(row.get_by_role("button", name="Pause nightly")).to_be_visible()
    assert engine.schedules()[0].paused is False

    row.get_by_role("button", name="Delete nightly").click()
    dialog = page.locator("dialog#confirm")
    expect(dialog).to_contain_text("Delete the schedule nightly?")
    dialog.get_by_role("button", name="delete", exact=True).click()
    expect(page.locator("#flash")).to_have_text("nightly: deleted.")
    expect(row).to_have_count(0)
    expect(page.locator("table.schedules")).to_contain_text("No schedules.")
    assert engine.schedules() == []
