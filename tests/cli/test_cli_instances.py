"""``gorch init``, ``start``, ``send``, ``show``, ``list`` and ``history``, and a pizza order from
start to finish, through click's ``CliRunner`` on a SQLite file.

Every command runs for real: the CLI opens the store named by ``--store`` and the workflows named
by ``--workflows``, as a person's shell would. What a command changed (or, for a refusal, did
not change) is checked by reading the store directly with an :class:`Engine` of its own.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest
from _gorch import (
    CART_EVENTS,
    CONFIRMED,
    MARGHERITA,
    SUBMITTED,
    Gorch,
    flat,
    order,
)
from freezegun import freeze_time

from gorch.engine import RunStatus

# -- start ----------------------------------------------------------------------------------


def test_start_with_id_runs_until_it_blocks(g: Gorch) -> None:
    out = g("start", "pizza", "--id", "order-1").stdout
    assert out.splitlines()[0] == "started pizza order-1: waiting"
    assert "_main_ at 'for the cart': waits for AddToCart, EmptyCart, SubmitCart" in out
    inst = g.get("order-1")
    assert inst.status is RunStatus.WAITING
    assert inst.data.status == "cart"
    assert inst.data.log == ["order opened"]


def test_start_with_data_json_and_a_random_id(g: Gorch, tmp_path: Path) -> None:
    data = '{"cart": [{"name": "diavola", "qty": 2}], "log": ["phoned in"]}'
    out = g.json("start", "pizza", "--data", data)
    assert len(out["id"]) == 32 and int(out["id"], 16) >= 0  # a random hex id
    assert out["status"] == "waiting" and out["workflow"] == "pizza"
    assert out["data"]["cart"] == [{"name": "diavola", "size": "medium", "qty": 2}]
    assert out["data"]["log"] == ["phoned in", "order opened"]
    assert g.get(out["id"]).data.cart[0].qty == 2

    path = tmp_path / "data.json"
    path.write_text('{"address": "Via Roma 1"}')
    from_file = g.json("start", "pizza", "--id", "from-file", "--data", f"@{path}")
    assert from_file["data"]["address"] == "Via Roma 1"
    piped = g.json("start", "pizza", "--id", "piped", "--data", "-", input='{"cook": "Mario"}')
    assert piped["data"]["cook"] == "Mario"
    assert sorted(g.ids()) == sorted([out["id"], "from-file", "piped"])


@pytest.mark.parametrize(
    ("data", "says"),
    [
        ('{"cart": [{"size": "large"}]}', "required field missing @ $.cart[0].name"),
        ('{"amount": "lots"}', "expected a number, got the text 'lots' @ $.amount"),
        ('{"cok": "Mario"}', "unknown field; did you mean 'cook'? @ $.cok"),
        ('{"cart": [', "the data is not valid JSON"),
        ("@/no/such/file.json", "cannot read the data from '/no/such/file.json'"),
    ],
)
def test_start_with_bad_data_creates_nothing(g: Gorch, data: str, says: str) -> None:
    message = g.fail("start", "pizza", "--id", "order-1", "--data", data)
    assert says in message
    assert data.startswith("@") or "JSON" in says or "not a valid PizzaOrder" in message
    assert g.ids() == []


@pytest.mark.parametrize("data", ["[1]", '"abc"'])
def test_start_with_data_that_is_not_an_object_creates_nothing(g: Gorch, data: str) -> None:
    g("start", "pizza", "--id", "order-1", "--data", data, code=1)
    assert g.ids() == []


def test_start_refuses_an_id_with_a_slash(g: Gorch) -> None:
    message = g.fail("start", "pizza", "--id", "order/7")
    assert 'an instance id must be text of 1 to 200 characters, without NUL or "/"' in message
    assert g.ids() == []


def test_start_refusals_create_nothing(g: Gorch) -> None:
    message = g.fail("start", "piza", "--id", "order-1")
    assert "workflow 'piza', which is not registered" in message
    assert "Did you mean 'pizza'?" in message
    assert g.ids() == []

    g("start", "pizza", "--id", "order-1")
    before = g.snapshot("order-1")
    assert "instance 'order-1' exists already" in g.fail("start", "pizza", "--id", "order-1")
    assert "1 to 200 characters" in g.fail("start", "pizza", "--id", "")
    assert g.snapshot("order-1") == before
    assert g.ids() == ["order-1"]


# -- send -----------------------------------------------------------------------------------


def test_send_inline_json(g: Gorch) -> None:
    order(g)
    out = g("send", "order-1", "AddToCart", MARGHERITA).stdout
    assert out.splitlines()[0] == "sent AddToCart to order-1 -> 1"
    assert "waits for AddToCart" in out
    out = g("send", "order-1", "SubmitCart").stdout
    assert out.splitlines() == [
        'sent SubmitCart to order-1 -> "submitted"',
        "  _main_ at 'for the manager': waits for ConfirmOrder",
    ]
    inst = g.get("order-1")
    assert [p.name for p in inst.data.cart] == ["margherita"]
    assert inst.data.status == "submitted"
    assert g.kinds("order-1") == ["started", "step", "event", "event"]


def test_send_records_who_sent_it(g: Gorch) -> None:
    order(g)
    g("send", "order-1", "cart timed out", "--actor", "ana", "--reason", "the customer left")
    with g.engine() as engine:
        fired = next(h for h in engine.history("order-1") if h.kind == "event")
    assert (fired.name, fired.actor, fired.reason) == ("cart timed out", "ana", "the customer left")
    assert "an actor must be" in g.fail("send", "order-1", "AddToCart", "--actor", " ")


def test_send_payload_from_a_file_and_from_stdin(g: Gorch, tmp_path: Path) -> None:
    order(g)
    path = tmp_path / "pizza.json"
    path.write_text('{"pizza": {"name": "quattro stagioni", "size": "large"}}')
    assert g.json("send", "order-1", "AddToCart", f"@{path}")["output"] == 1
    stdin = '{"pizza": {"name": "marinara", "qty": 3}}'
    out = g.json("send", "order-1", "AddToCart", "-", input=stdin)
    assert out == {"instance": "order-1", "event": "AddToCart", "output": 2}
    cart = g.get("order-1").data.cart
    assert [(p.name, p.size, p.qty) for p in cart] == [
        ("quattro stagioni", "large", 1),
        ("marinara", "medium", 3),
    ]
    assert "cannot read the payload from" in g.fail(
        "send", "order-1", "AddToCart", f"@{tmp_path / 'missing.json'}"
    )
    assert len(g.get("order-1").data.cart) == 2


def test_send_with_a_key_applies_once(g: Gorch) -> None:
    order(g)
    first = g.json("send", "order-1", "AddToCart", MARGHERITA, "--key", "req-1")
    after_first = g.snapshot("order-1")
    again = g.json("send", "order-1", "AddToCart", MARGHERITA, "--key", "req-1")
    assert first == again == {"instance": "order-1", "event": "AddToCart", "output": 1}
    assert g.snapshot("order-1") == after_first
    assert len(g.get("order-1").data.cart) == 1
    assert g.kinds("order-1").count("event") == 1

    other = '{"pizza": {"name": "diavola"}}'
    message = g.fail("send", "order-1", "AddToCart", other, "--key", "req-1")
    assert "idempotency key 'req-1' of instance 'order-1' was used for another request" in message
    assert g.snapshot("order-1") == after_first
    # A new key is a new request.
    assert g.json("send", "order-1", "AddToCart", other, "--key", "req-2")["output"] == 2


@pytest.mark.parametrize(
    ("payload", "says"),
    [
        ('{"pizza": {"name": ', "the payload is not valid JSON"),
        ("{pizza: 1}", "the payload is not valid JSON"),
        ("", "the payload is not valid JSON"),
    ],
)
def test_send_malformed_json_is_refused(g: Gorch, payload: str, says: str) -> None:
    order(g)
    before = g.snapshot("order-1")
    message = g.fail("send", "order-1", "AddToCart", payload)
    assert says in message
    assert "quote it for the shell" in message and "@file.json" in message
    assert g.snapshot("order-1") == before


def test_send_malformed_json_from_stdin_is_refused(g: Gorch) -> None:
    order(g)
    before = g.snapshot("order-1")
    assert "the payload is not valid JSON" in g.fail("send", "order-1", "AddToCart", "-", input="{")
    assert g.snapshot("order-1") == before


@pytest.mark.parametrize(
    ("payload", "says"),
    [
        ('{"pizza": {"nam": "margherita"}}', "required field missing @ payload.pizza.name"),
        (
            '{"pizza": {"name": "m", "qty": "two"}}',
            "expected a whole number, got the text 'two' @ payload.pizza.qty",
        ),
        ("[]", "expected an object (AddToCart), got an array @ payload"),
        (
            '{"pizza": {"name": "m", "qtty": 2}}',
            "unknown field; did you mean 'qty'? @ payload.pizza.qtty",
        ),
        (None, "it needs a payload, but none was sent"),
    ],
)
def test_send_payload_of_the_wrong_shape_is_refused(
    g: Gorch, payload: str | None, says: str
) -> None:
    order(g)
    before = g.snapshot("order-1")
    message = g.fail("send", "order-1", "AddToCart", *([payload] if payload is not None else []))
    assert "the payload of event 'AddToCart' was refused" in message
    assert says in message
    assert g.snapshot("order-1") == before


def test_send_that_the_handler_refuses_changes_nothing(g: Gorch) -> None:
    order(g)
    before = g.snapshot("order-1")
    message = g.fail("send", "order-1", "SubmitCart")
    assert "the handler of event 'SubmitCart' in thread '_main_' failed" in message
    assert "ValueError: the cart is empty" in message
    assert "The event was not applied" in message
    assert g.snapshot("order-1") == before


def test_send_an_event_that_is_not_awaited_is_refused(g: Gorch) -> None:
    order(g)
    before = g.snapshot("order-1")
    message = g.fail("send", "order-1", "ConfirmOrder", '{"manager": "G", "amount": 1}')
    assert "no thread waiting for event 'ConfirmOrder'" in message
    assert "waits for 'AddToCart', 'EmptyCart', 'SubmitCart'" in message
    message = g.fail("send", "order-1", "AddToCrt", MARGHERITA)
    assert "no thread waiting for event 'AddToCrt'" in message
    assert "Did you mean 'AddToCart'?" in message
    message = g.fail("send", "order-1", "AddToCart", MARGHERITA, "--thread", "kitchen")
    assert "has no thread 'kitchen'" in message
    assert g.snapshot("order-1") == before


def test_send_to_an_unknown_id_suggests_the_close_one(g: Gorch) -> None:
    order(g, "order-1")
    order(g, "shop-7")
    message = g.fail("send", "order-2", "AddToCart", MARGHERITA)
    assert "no instance has id 'order-2'. Did you mean 'order-1'?" in message
    assert "shop-7" not in message
    assert "Did you mean" not in g.fail("send", "zzz", "AddToCart", MARGHERITA)
    assert sorted(g.ids()) == ["order-1", "shop-7"]
    assert len(g.get("order-1").data.cart) == 0


def test_send_to_a_paused_or_finished_instance_is_refused(g: Gorch) -> None:
    order(g)
    g("pause", "order-1")
    before = g.snapshot("order-1")
    assert "it is paused; unpause it first" in g.fail("send", "order-1", "AddToCart", MARGHERITA)
    assert g.snapshot("order-1") == before

    g("cancel", "order-1")
    before = g.snapshot("order-1")
    assert "it was cancelled" in g.fail("send", "order-1", "AddToCart", MARGHERITA)
    assert g.snapshot("order-1") == before


# -- show -----------------------------------------------------------------------------------


def test_show_human(g: Gorch) -> None:
    with freeze_time("2026-01-01 10:00:00"):
        order(g, "order-1", *SUBMITTED)
    with freeze_time("2026-01-01 12:00:00"):
        out = g("show", "order-1").stdout
    lines = out.splitlines()
    assert lines[0].startswith("order-1 (pizza) waiting  version ")
    assert "created 2026-01-01 10:00:00 (2h ago)" in lines[0]
    assert lines[1] == "threads"
    row = next(line for line in lines if "_main_" in line and "WaitingEvent" in line)
    assert "for the manager" in row and "ConfirmOrder" in row
    assert "2026-01-01 10:00:00 (2h ago)" in row  # since: the SubmitCart event
    for header in ("thread", "status", "at", "waits for", "since"):
        assert header in out
    assert "timers" not in out  # the cart's timer went with the cart
    data = json.loads(out[out.index("{") :])
    assert data["status"] == "submitted" and data["cart"][0]["name"] == "margherita"
    assert "{" not in g("show", "order-1", "--no-data").stdout


def test_show_human_lists_every_thread_and_the_timers(g: Gorch) -> None:
    with freeze_time("2026-01-01 10:00:00"):
        order(g, "cart")
        order(g, "order-1", *CONFIRMED)
    with freeze_time("2026-01-01 12:00:00"):
        out = g("show", "cart", "--no-data").stdout
        two = g("show", "order-1", "--no-data").stdout
    lines = out.splitlines()
    timers = lines.index("timers")
    assert any(
        "_main_" in x and "cart timed out" in x and "2026-01-02 10:00:00 (in 22h)" in x
        for x in lines[timers:]
    )
    assert "payment" in two and "for payment" in two and "ConfirmPayment" in two
    assert "for a cook" in two and "StartCooking" in two


def test_show_json(g: Gorch) -> None:
    with freeze_time("2026-01-01 10:00:00"):
        order(g, "cart")
        order(g, "order-1", *CONFIRMED)
    cart = g.json("show", "cart")
    assert cart["status"] == "waiting" and cart["version"] >= 1
    assert cart["timers"] == [
        {"thread": "_main_", "name": "cart timed out", "due_at": "2026-01-02T10:00:00+00:00"}
    ]
    assert cart["waits"][0]["since"] == "2026-01-01T10:00:00+00:00"
    assert cart["waits"][0]["events"] == CART_EVENTS
    assert cart["data"]["log"] == ["order opened"]

    out = g.json("show", "order-1")
    threads = {t["name"]: t for t in out["threads"]}
    assert threads["_main_"]["at"] == "for a cook"
    assert threads["_main_"]["events"] == ["StartCooking"]
    assert threads["payment"]["at"] == "for payment"
    assert threads["payment"]["events"] == ["ConfirmPayment"]
    waits = {w["name"]: w for w in out["waits"]}
    assert waits["_main_"]["since"] == "2026-01-01T10:00:00+00:00"
    assert out["timers"] == []
    assert out["waiting_for"] == ["ConfirmPayment", "StartCooking"]
    assert out["data"]["manager"] == "Giulia" and out["data"]["amount"] == 31.5
    assert out["last_error"] is None and out["attempts"] == 0


def test_show_and_history_of_an_unknown_id_suggest_the_close_one(g: Gorch) -> None:
    order(g, "order-1")
    for command in ("show", "history"):
        assert "no instance has id 'order-l'. Did you mean 'order-1'?" in g.fail(command, "order-l")
        assert "no instance has id 'order-l'" in g.fail(command, "order-l", "--json")


# -- list -----------------------------------------------------------------------------------


def test_list_filters(flaky: Gorch) -> None:
    g = flaky
    order(g, "waiting-1")
    order(g, "paused-1")
    g("pause", "paused-1")
    order(g, "cancelled-1")
    g("cancel", "cancelled-1")
    g("start", "flaky", "--id", "failed-1")

    out = g("list").stdout
    for id, status in [
        ("waiting-1", "waiting"),
        ("paused-1", "paused"),
        ("cancelled-1", "cancelled"),
        ("failed-1", "failed"),
    ]:
        row = next(line for line in out.splitlines() if id in line)
        assert status in row
    assert "AddToCart, EmptyCart, SubmitCart, cart timed out" in out

    def listed(*args: str) -> list[str]:
        return [i["id"] for i in g.json("list", *args)["items"]]

    assert listed() == ["failed-1", "cancelled-1", "paused-1", "waiting-1"]  # newest first
    assert listed("--workflow", "flaky") == ["failed-1"]
    assert listed("-w", "pizza") == ["cancelled-1", "paused-1", "waiting-1"]
    assert listed("--status", "waiting") == ["waiting-1"]
    assert listed("-s", "paused", "-s", "failed") == ["failed-1", "paused-1"]
    assert listed("-w", "flaky", "-s", "waiting") == []
    assert listed("-s", "finished") == []

    item = g.json("list", "-s", "failed")["items"][0]
    assert item["status"] == "failed" and "card declined" in item["last_error"]
    assert set(item) >= {"id", "workflow", "status", "version", "waiting_for", "updated_at"}

    assert flat(g("list", "-w", "piza").stdout) == "no instances of 'piza'. Did you mean 'pizza'?"
    assert g.json("list", "-w", "piza") == {"items": [], "next": None}


def test_list_says_why_a_failed_instance_failed(flaky: Gorch) -> None:
    g = flaky
    order(g, "waiting-1")
    g("start", "flaky", "--id", "failed-1")
    rows = {line.split("│")[1].strip(): line for line in g("list").stdout.splitlines()
            if "│" in line}  # fmt: skip
    assert "RuntimeError: card declined" in rows["failed-1"]
    assert "AddToCart, EmptyCart" in rows["waiting-1"]
    assert "waits for / last error" in g("list").stdout


def test_list_pages_with_the_printed_cursor(g: Gorch) -> None:
    ids = [f"order-{n}" for n in range(5)]
    for id in ids:
        order(g, id)
    newest_first = ids[::-1]

    seen: list[str] = []
    args: list[str] = ["list", "--limit", "2"]
    pages = 0
    while True:
        out = g(*args).stdout
        pages += 1
        seen += [id for id in newest_first if f" {id} " in out]
        more = [line for line in out.splitlines() if line.startswith("more: ")]
        if not more:
            break
        assert more[0].startswith("more: gorch list ")
        args = shlex.split(more[0].removeprefix("more: gorch "))  # what a person pastes
    assert pages == 3
    assert seen == newest_first

    page = g.json("list", "--limit", "3")
    assert [i["id"] for i in page["items"]] == newest_first[:3]
    rest = g.json("list", "--limit", "3", "--cursor", page["next"])
    assert [i["id"] for i in rest["items"]] == newest_first[3:]
    assert rest["next"] is None

    assert "is not a page cursor" in g.fail("list", "--cursor", "garbage")
    g("list", "--limit", "0", code=2)


def test_list_more_hint_is_safe_to_paste_into_a_shell(g: Gorch) -> None:
    order(g, "order-1")
    order(g, "order-2")
    cursor = g.json("list", "--limit", "1")["next"]
    hint = next(x for x in g("list", "--limit", "1").stdout.splitlines() if x.startswith("more:"))
    assert shlex.quote(cursor) in hint


def test_list_more_hint_keeps_the_filters(g: Gorch) -> None:
    order(g, "waiting-1")
    order(g, "cancelled-1")
    g("cancel", "cancelled-1")
    order(g, "waiting-2")
    out = g("list", "--status", "waiting", "--limit", "1").stdout
    hint = next(x for x in out.splitlines() if x.startswith("more: gorch "))
    args = shlex.split(hint.removeprefix("more: gorch "))
    follow = g(*args).stdout
    assert "waiting-1" in follow
    assert "cancelled-1" not in follow


def test_list_search_finds_ids_containing_a_text_and_keeps_it_in_the_hint(g: Gorch) -> None:
    for id in ("shop-a1", "shop-a2", "shop-b1", "SHOP-a3"):
        order(g, id)
    ids = [i["id"] for i in g.json("list", "--search", "shop-a")["items"]]
    assert ids == ["shop-a2", "shop-a1"]  # newest first; case-sensitive
    out = g("list", "-q", "shop-a", "--limit", "1").stdout
    hint = next(x for x in out.splitlines() if x.startswith("more: gorch "))
    follow = g(*shlex.split(hint.removeprefix("more: gorch "))).stdout
    assert "shop-a1" in follow and "shop-b1" not in follow and "SHOP" not in follow
    assert "at most 200 characters" in g.fail("list", "--search", "x" * 201)


# -- history --------------------------------------------------------------------------------


def test_history_json_kinds(g: Gorch) -> None:
    order(g, "order-1", ("AddToCart", MARGHERITA))
    g("pause", "order-1")
    g("unpause", "order-1")
    g("goto", "order-1", "for the manager", "--yes")
    page = g.json("history", "order-1")
    assert page["next"] is None
    rows = page["items"]
    assert [r["kind"] for r in rows] == [
        "started",
        "step",
        "event",
        "paused",
        "unpaused",
        "goto",
    ]
    assert [r["seq"] for r in rows] == sorted(r["seq"] for r in rows)
    started, step, event = rows[:3]
    assert started["name"] == "pizza" and started["input"]["status"] == ""
    assert step["name"] == "setup" and step["thread"] == "_main_"
    assert event["name"] == "AddToCart"
    assert event["input"] == {"pizza": {"name": "margherita"}}
    assert event["output"] == 1
    assert "for the manager" in " ".join(rows[-1]["input"]["plan"])
    assert all(r["at"].endswith("+00:00") for r in rows)
    assert all(r["note"] is None for r in rows)

    out = g("history", "order-1").stdout
    for kind in ("started", "step", "event", "paused", "unpaused", "goto"):
        assert f" {kind} " in out
    assert "AddToCart" in out and "setup" in out


@pytest.mark.parametrize("newest_first", [False, True], ids=["oldest-first", "newest-first"])
def test_history_pages_with_the_printed_command(g: Gorch, newest_first: bool) -> None:
    order(g, "order-1", *SUBMITTED, ("ConfirmOrder", '{"manager": "Giulia", "amount": 31.5}'))
    full = [(h["seq"], h["kind"], h["name"]) for h in g.json("history", "order-1")["items"]]
    assert [seq for seq, _, _ in full] == [1, 2, 3, 4, 5]
    want = full[::-1] if newest_first else full
    flag = ["--newest-first"] if newest_first else []

    seen: list[int] = []
    args = ["history", "order-1", "--limit", "2", *flag]
    pages = 0
    while True:
        out = g(*args).stdout
        pages += 1
        rows = [line.split("│") for line in out.splitlines() if "│" in line]
        seen += [int(r[1]) for r in rows]
        more = [line for line in out.splitlines() if line.startswith("more: ")]
        if not more:
            break
        args = shlex.split(more[0].removeprefix("more: gorch "))  # what a person pastes
        assert args[:2] == ["history", "order-1"] and ("--newest-first" in args) == newest_first
    assert pages == 3 and seen == [seq for seq, _, _ in want]

    page = g.json("history", "order-1", "--limit", "3", *flag)
    assert [(h["seq"], h["kind"], h["name"]) for h in page["items"]] == want[:3]
    rest = g.json("history", "order-1", "--limit", "3", "--cursor", page["next"], *flag)
    assert [(h["seq"], h["kind"], h["name"]) for h in rest["items"]] == want[3:]
    assert rest["next"] is None


def test_history_bad_options(g: Gorch) -> None:
    order(g, "order-1")
    cursor = g.json("history", "order-1", "--limit", "1")["next"]
    assert "is not a history page cursor" in g.fail("history", "order-1", "--cursor", "garbage")
    message = g.fail("history", "order-1", "--cursor", cursor, "--newest-first")
    assert "continues a history read oldest first" in message
    g("history", "order-1", "--limit", "0", code=2)
    g("history", "order-1", "--limit", "1001", code=2)


def test_history_shows_a_row_that_is_not_json_with_a_note(g: Gorch) -> None:
    import sqlite3

    order(g, "order-1", ("AddToCart", MARGHERITA))
    with sqlite3.connect(g.db) as db:  # an operator edits the row by hand
        db.execute("UPDATE gorch_history SET input = '{pizza: margherita' WHERE kind = 'event'")
    out = g("history", "order-1").stdout
    assert '"{pizza: margherita"' in out
    assert "note: the stored input is not valid JSON" in flat(out)
    event = g.json("history", "order-1")["items"][-1]
    assert event["input"] == "{pizza: margherita" and "not valid JSON" in event["note"]
    assert "waits for" in g("show", "order-1").stdout  # since is read past it too


# -- a whole order ----------------------------------------------------------------------------


def test_a_pizza_order_from_start_to_finish(g: Gorch) -> None:
    def send(event: str, payload: str | None = None) -> str:
        return g("send", "order-1", event, *([payload] if payload else [])).stdout

    assert "waiting" in g("start", "pizza", "--id", "order-1").stdout
    assert "-> 1" in send("AddToCart", '{"pizza": {"name": "margherita", "qty": 2}}')
    assert "-> 2" in send("AddToCart", '{"pizza": {"name": "diavola", "size": "large"}}')
    assert "waits for ConfirmOrder" in send("SubmitCart")
    out = send("ConfirmOrder", '{"manager": "Giulia", "amount": 31.5}')
    assert "_main_ at 'for a cook': waits for StartCooking" in out
    assert "payment at 'for payment': waits for ConfirmPayment" in out
    assert "waits for StartCooking" in send(
        "ConfirmPayment", '{"amount": 31.5, "address": "Via Roma 1"}'
    )
    assert "waits for Cooked" in send("StartCooking", '{"cook": "Mario"}')
    assert "waits for TakeForDelivery" in send("Cooked")
    assert "waits for Delivered" in send("TakeForDelivery")
    out = send("Delivered")
    assert out.splitlines() == ["sent Delivered to order-1", "  now finished"]

    shown = g.json("show", "order-1")
    assert shown["status"] == "finished"
    assert shown["threads"] == [] and shown["waits"] == [] and shown["timers"] == []
    data = shown["data"]
    assert data["status"] == "completed"
    assert (data["manager"], data["cook"], data["address"]) == ("Giulia", "Mario", "Via Roma 1")
    assert data["paid"] == data["amount"] == 31.5
    assert data["log"] == ["order opened", "order completed"]
    assert [i["id"] for i in g.json("list", "-s", "finished")["items"]] == ["order-1"]
    kinds = g.kinds("order-1")
    assert kinds[0] == "started" and kinds[-1] == "finished" and kinds.count("event") == 9

    before = g.snapshot("order-1")
    assert "it has finished" in g.fail("send", "order-1", "Delivered")
    assert "it is finished" in g.fail("goto", "order-1", "for a cook", "--yes")
    assert g.snapshot("order-1") == before
