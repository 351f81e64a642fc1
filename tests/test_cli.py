"""The ``gorch`` command line, driven through click's ``CliRunner`` on a SQLite file.

Every command runs for real: the CLI opens the store named by ``--store`` and the workflows named
by ``--workflows``, as a person's shell would. What a command changed (or, for a refusal, did
not change) is checked by reading the store directly with an :class:`Engine` of its own.

``gorch serve`` and ``python -m gorch --help`` also run once each in a real subprocess.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import _cli_workflows
import httpx
import pytest
from _cli_workflows import Flaky
from _pizza_names import PIZZA_NAMES
from click.testing import CliRunner, Result
from freezegun import freeze_time

from examples.pizza import PizzaOrder
from gorch import graph as gorch_graph
from gorch.cli import cli
from gorch.engine import Engine, RunStatus
from gorch.store.sql import SQLStore

ROOT = Path(__file__).resolve().parent.parent
PIZZA = "examples.pizza:WORKFLOWS"
FLAKY = "_cli_workflows:WORKFLOWS"
BOTH = "_cli_workflows:ALL"

MARGHERITA = '{"pizza": {"name": "margherita"}}'
CART_EVENTS = ["AddToCart", "EmptyCart", "SubmitCart", "cart timed out"]


def flat(text: str) -> str:
    """Text with every run of whitespace made one space (rich wraps messages at 80 columns)."""
    return " ".join(text.split())


class Gorch:
    """``gorch --store DB --workflows WORKFLOWS ...`` in this process, and the store read back."""

    def __init__(self, db: Path | str, workflows: str = PIZZA) -> None:
        self.db = db
        self.workflows = workflows
        self.runner = CliRunner()

    def __call__(self, *args: str, input: str | None = None, code: int = 0) -> Result:
        argv = ["--store", str(self.db), "--workflows", self.workflows, *args]
        result = self.runner.invoke(cli, argv, input=input)
        # A crash is not a refusal: CliRunner turns any exception into exit status 1.
        assert result.exception is None or isinstance(result.exception, SystemExit), (
            result.exception,
            result.stderr,
        )
        assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
        if code == 1 and not ("--json" in args and result.stdout):  # --json: errors in the JSON
            assert result.stderr.startswith("error:") or "\nerror:" in result.stderr, result.stderr
        return result

    def json(self, *args: str, input: str | None = None) -> Any:
        return json.loads(self(*args, "--json", input=input).stdout)

    def fail(self, *args: str, input: str | None = None) -> str:
        """Run a command that must be refused (exit 1); its message, whitespace flattened."""
        result = self(*args, input=input, code=1)
        assert result.stdout == "" or "--json" not in args
        return flat(result.stderr)

    def usage(self, *args: str) -> str:
        """Run a command that is a usage mistake (exit 2, with the usage line); its message."""
        result = self(*args, code=2)
        assert result.stdout == "" and result.stderr.startswith("Usage: "), result.stderr
        text = flat(result.stderr)
        return text[text.index("Error: ") :]

    def init(self) -> Gorch:
        """Create the store (``gorch init``)."""
        assert self("init").stdout.startswith("created a gorch store at")
        return self

    # -- the store, read without the CLI ---------------------------------------------------

    @contextmanager
    def engine(self) -> Iterator[Engine]:
        store = SQLStore(f"sqlite:///{self.db}")
        try:
            yield Engine(store, _cli_workflows.ALL)
        finally:
            store.close()

    def get(self, id: str) -> Any:
        with self.engine() as e:
            return e.get(id)

    def snapshot(self, id: str) -> tuple[str, int, int]:
        """(status, version, history length): what a refusal must leave alone."""
        with self.engine() as e:
            inst = e.get(id)
            return inst.status.value, inst.version, len(e.history(id))

    def kinds(self, id: str) -> list[str]:
        with self.engine() as e:
            return [h.kind for h in e.history(id)]

    def ids(self) -> list[str]:
        with self.engine() as e:
            return [i.id for i in e.list(limit=1000).items]


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("GORCH_STORE", "GORCH_WORKFLOWS", "GORCH_TOKENS"):
        monkeypatch.delenv(var, raising=False)
    for var in ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("COLUMNS", "200")  # tables on one line each, for the assertions
    monkeypatch.setattr(sys, "path", list(sys.path))  # --workflows may add the cwd to it


@pytest.fixture
def g(tmp_path: Path) -> Gorch:
    return Gorch(tmp_path / "gorch.db").init()


@pytest.fixture
def flaky(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Gorch:
    monkeypatch.setattr(Flaky, "broken", True)
    return Gorch(tmp_path / "gorch.db", BOTH).init()


def order(g: Gorch, id: str = "order-1", *events: tuple[str, str | None]) -> None:
    g("start", "pizza", "--id", id)
    for event, payload in events:
        g("send", id, event, *([payload] if payload is not None else []))


SUBMITTED = (("AddToCart", MARGHERITA), ("SubmitCart", None))
CONFIRMED = (*SUBMITTED, ("ConfirmOrder", '{"manager": "Giulia", "amount": 31.5}'))


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


# -- goto -----------------------------------------------------------------------------------

PLAN = [
    "thread '_main_' of workflow 'order-1' would move:",
    "  from WaitingEvent at 'for the cart'",
    "  to   WaitingEvent at 'for a cook'",
    "  set up: StartCooking",
]


def test_goto_dry_run_shows_the_plan_and_changes_nothing(g: Gorch) -> None:
    order(g)
    before = g.snapshot("order-1")
    result = g("goto", "order-1", "for a cook", "--dry-run")
    assert result.stdout.splitlines() == PLAN
    assert "apply?" not in result.stderr
    assert g.snapshot("order-1") == before

    plan = g.json("goto", "order-1", "for a cook", "--dry-run")
    assert plan["applied"] is False
    assert (plan["from_step"], plan["to_step"]) == ("for the cart", "for a cook")
    assert plan["setup"] == ["StartCooking"] and plan["description"] == PLAN
    # --dry-run wins over --yes.
    g("goto", "order-1", "for a cook", "--dry-run", "--yes")
    assert g.snapshot("order-1") == before


def test_goto_asks_and_no_changes_nothing(g: Gorch) -> None:
    order(g)
    before = g.snapshot("order-1")
    for answer in ("n\n", "\n", "no\n"):
        result = g("goto", "order-1", "for a cook", input=answer, code=1)
        assert result.stdout.splitlines() == PLAN
        assert "apply? [y/N]" in result.stderr
        assert "not applied: nothing changed" in flat(result.stderr)
        assert g.snapshot("order-1") == before
    # No answer at all (stdin closed) is no too, exit status 1.
    argv = ["--store", str(g.db), "--workflows", PIZZA, "goto", "order-1", "for a cook"]
    result = g.runner.invoke(cli, argv, input="")
    assert result.exit_code == 1 and "not applied: nothing changed" in result.stderr
    assert g.snapshot("order-1") == before


def test_goto_asks_and_yes_applies(g: Gorch) -> None:
    order(g)
    result = g("goto", "order-1", "for a cook", input="y\n")
    assert "apply? [y/N]" in result.stderr
    assert result.stdout.splitlines()[: len(PLAN)] == PLAN
    assert result.stdout.splitlines()[len(PLAN) :] == [
        "moved _main_ of order-1 to 'for a cook'",
        "  _main_ at 'for a cook': waits for StartCooking",
    ]
    inst = g.get("order-1")
    assert inst.waiting_for() == ["StartCooking"]
    assert inst.timers == []  # the cart's timeout went with the cart
    assert g.kinds("order-1")[-1] == "goto"


def test_goto_yes_applies_without_asking(g: Gorch) -> None:
    order(g)
    result = g("goto", "order-1", "for a cook", "--yes")
    assert "apply?" not in result.stderr and result.stderr == ""
    assert result.stdout.splitlines()[0] == "moved _main_ of order-1 to 'for a cook'"
    assert g.get("order-1").waiting_for() == ["StartCooking"]

    plan = g.json("goto", "order-1", "for the oven", "-y")
    assert plan["applied"] is True and plan["to_step"] == "for the oven"
    assert g.get("order-1").waiting_for() == ["Cooked"]
    assert g.kinds("order-1").count("goto") == 2


def test_goto_json_without_yes_asks_then_prints_the_applied_plan(g: Gorch) -> None:
    order(g)
    before = g.snapshot("order-1")
    result = g("goto", "order-1", "for a cook", "--json", input="n\n", code=1)
    assert result.stdout == ""
    assert g.snapshot("order-1") == before
    plan = json.loads(g("goto", "order-1", "for a cook", "--json", input="y\n").stdout)
    assert plan["applied"] is True and plan["instance"] == "order-1"


def test_goto_on_a_paused_instance_keeps_it_paused(g: Gorch) -> None:
    order(g)
    g("pause", "order-1")
    g("goto", "order-1", "for a cook", "--yes")
    inst = g.get("order-1")
    assert inst.status is RunStatus.PAUSED
    assert inst.waiting_for() == ["StartCooking"]


def test_goto_refusals_change_nothing(g: Gorch) -> None:
    order(g, "order-1", *CONFIRMED)
    before = g.snapshot("order-1")
    message = g.fail("goto", "order-1", "for a cok", "--yes")
    assert "no statement named 'for a cok'" in message
    assert "Did you mean 'for a cook'" in message
    assert "no statement named 'for a cok'" in g.fail("goto", "order-1", "for a cok", "--dry-run")
    message = g.fail("goto", "order-1", "for payment", "--yes")
    assert "'for payment' belongs to Go 'payment', not to thread '_main_'" in message
    assert "has no thread 'kitchen'" in g.fail(
        "goto", "order-1", "for a cook", "--thread", "kitchen", "--yes"
    )
    assert "Did you mean 'order-1'?" in g.fail("goto", "order-2", "for a cook", "--yes")
    assert g.snapshot("order-1") == before
    # The right thread makes the same move legal.
    g("goto", "order-1", "for payment", "--thread", "payment", "--yes")
    assert g.snapshot("order-1") != before


# -- pause, unpause, cancel, retry -------------------------------------------------------------


def test_pause_and_unpause_one_instance(g: Gorch) -> None:
    order(g)
    out = g("pause", "order-1").stdout
    assert out == "paused order-1: paused\n"
    assert g.get("order-1").status is RunStatus.PAUSED
    paused = g.snapshot("order-1")
    assert g("pause", "order-1").stdout == "paused order-1: paused\n"  # already: a no-op
    assert g.snapshot("order-1") == paused

    unpaused = g.json("unpause", "order-1")
    assert unpaused["id"] == "order-1" and unpaused["status"] == "waiting"
    assert unpaused["waiting_for"] == CART_EVENTS
    assert g.kinds("order-1")[-2:] == ["paused", "unpaused"]


def test_operators_on_several_ids(g: Gorch) -> None:
    for id in ("a", "b", "c"):
        order(g, id)
    result = g("pause", "a", "b")
    assert result.stdout.splitlines() == ["paused a: paused", "paused b: paused"]
    assert [g.get(i).status.value for i in "abc"] == ["paused", "paused", "waiting"]

    out = g.json("cancel", "a", "c")
    assert [r["id"] for r in out["done"]] == ["a", "c"] and out["errors"] == []
    assert [g.get(i).status.value for i in "abc"] == ["cancelled", "paused", "cancelled"]

    # Refused ids among several: every id is checked first, and one refusal changes nothing;
    # each refused id is named, with why, exit status 1.
    before = {i: g.snapshot(i) for i in "abc"}
    result = g("unpause", "b", "a", "zz", code=1)
    assert result.stdout == ""
    err = result.stderr.splitlines()
    assert err[0] == "error: cannot unpause 2 of the 3 instances, so none was changed:"
    assert "  a: cannot unpause instance 'a': it is cancelled, not paused" in err
    assert "  zz: no instance has id 'zz'" in err
    assert {i: g.snapshot(i) for i in "abc"} == before
    assert g.get("b").status is RunStatus.PAUSED

    out = json.loads(g("pause", "b", "zz", "--json", code=1).stdout)
    assert out == {"done": [], "errors": ["zz: no instance has id 'zz'"]}
    assert {i: g.snapshot(i) for i in "abc"} == before
    # an unknown id among several gets the closest one
    message = g.fail("pause", "b", "ab")
    assert "ab: no instance has id 'ab'. Did you mean" in message
    assert "'a'" in message and "'b'" in message
    # ids given twice are acted on once
    assert g("unpause", "b", "b").stdout.splitlines() == ["unpaused b: waiting"]


def test_operators_on_a_selection_ask_first(g: Gorch) -> None:
    for id in ("a", "b", "c"):
        order(g, id)
    order(g, "done", *CONFIRMED)
    g("cancel", "done")
    before = {i: g.snapshot(i) for i in ("a", "b", "c", "done")}

    result = g("pause", "--status", "waiting", input="n\n", code=1)
    assert "pause 3 instances? [y/N]" in result.stderr
    assert "nothing changed" in flat(result.stderr)
    assert {i: g.snapshot(i) for i in before} == before

    result = g("pause", "-w", "pizza", "-s", "waiting", input="y\n")
    assert sorted(result.stdout.splitlines()) == [f"paused {i}: paused" for i in "abc"]
    assert [g.get(i).status.value for i in "abc"] == ["paused"] * 3
    assert g.snapshot("done") == before["done"]

    result = g("unpause", "-s", "paused", "--yes")
    assert "instances?" not in result.stderr
    assert [g.get(i).status.value for i in "abc"] == ["waiting"] * 3

    result = g("cancel", "-w", "pizza", "-s", "waiting", "-y")
    assert len(result.stdout.splitlines()) == 3
    assert [g.get(i).status.value for i in "abc"] == ["cancelled"] * 3

    assert g("pause", "-s", "waiting", "-y").stdout == "no instance matches\n"


def test_a_selection_with_an_instance_the_action_refuses_changes_nothing(g: Gorch) -> None:
    for id in ("a", "b"):
        order(g, id)
    g("cancel", "b")
    before = {i: g.snapshot(i) for i in "ab"}
    result = g("pause", "-w", "pizza", "--yes", code=1)
    err = flat(result.stderr)
    assert err.startswith("error: cannot pause 1 of the 2 instances, so none was changed:")
    assert "b: cannot pause instance 'b': it is cancelled" in err
    assert "select only running, waiting, paused or failed ones (--status)" in err
    assert {i: g.snapshot(i) for i in "ab"} == before
    assert "retried" not in g("retry", "-s", "waiting", "--yes", code=1).stdout
    assert "select only failed ones (--status)" in flat(
        g("retry", "-s", "waiting", "--yes", code=1).stderr
    )


def test_selection_json_has_one_shape(g: Gorch) -> None:
    order(g, "a")
    out = g.json("pause", "--status", "waiting", "--yes")
    assert [r["id"] for r in out["done"]] == ["a"]


def test_operator_refusals_change_nothing(g: Gorch) -> None:
    order(g, "order-1")
    before = g.snapshot("order-1")
    message = g.fail("unpause", "order-1")
    assert message == "error: cannot unpause instance 'order-1': it is waiting, not paused"
    assert "it is waiting, not failed" in g.fail("retry", "order-1")
    assert "Did you mean 'order-1'?" in g.fail("pause", "order-2")
    assert "which instances?" in g.usage("cancel")
    assert "not both" in g.usage("cancel", "order-1", "--status", "waiting", "--yes")
    g("pause", "--status", "bogus", code=2)
    assert g.snapshot("order-1") == before

    g("cancel", "order-1")
    cancelled = g.snapshot("order-1")
    assert cancelled[0] == "cancelled"
    assert "it is cancelled" in g.fail("pause", "order-1")
    assert "it is cancelled" in g.fail("cancel", "order-1")
    assert "it is cancelled, not paused" in g.fail("unpause", "order-1")
    assert g.snapshot("order-1") == cancelled


def test_retry_a_failed_instance(flaky: Gorch) -> None:
    g = flaky
    out = g("start", "flaky", "--id", "f1").stdout
    assert out.splitlines()[0] == "started flaky f1: failed"
    inst = g.get("f1")
    assert inst.status is RunStatus.FAILED
    assert inst.last_error == "RuntimeError: card declined"
    shown = g("show", "f1").stdout
    assert "last error (attempt 1): RuntimeError: card declined" in shown
    assert "charge card" in shown

    # Still broken: the retry runs the step again and it fails again.
    assert g("retry", "f1").stdout == "retried f1: failed\n"
    assert g.get("f1").status is RunStatus.FAILED

    Flaky.broken = False
    out = g.json("retry", "f1")
    assert out["status"] == "waiting" and out["last_error"] is None
    assert out["waiting_for"] == ["Ship"]
    assert g.get("f1").data.charged is True
    assert g.kinds("f1") == [
        "started",
        "step_failed",
        "failed",
        "retry",
        "step_failed",
        "failed",
        "retry",
        "step",
    ]
    before = g.snapshot("f1")
    assert "it is waiting, not failed" in g.fail("retry", "f1")
    assert g.snapshot("f1") == before
    assert "now finished" in g("send", "f1", "Ship").stdout


def test_retry_a_selection_of_failed_instances(flaky: Gorch) -> None:
    g = flaky
    for id in ("f1", "f2"):
        g("start", "flaky", "--id", id)
    order(g, "pizza-1")
    Flaky.broken = False
    result = g("retry", "--status", "failed", input="y\n")
    assert "retry 2 instances? [y/N]" in result.stderr
    assert sorted(result.stdout.splitlines()) == ["retried f1: waiting", "retried f2: waiting"]
    assert g.get("pizza-1").status is RunStatus.WAITING


def test_start_of_a_failing_instance_does_not_say_it_waits_for_a_condition(flaky: Gorch) -> None:
    out = flaky("start", "flaky", "--id", "f1").stdout
    assert "waits for a condition" not in out


# -- worker ---------------------------------------------------------------------------------


def test_worker_once_fires_due_timers(g: Gorch) -> None:
    start = datetime(2026, 1, 1, 10, 0, 0)
    with freeze_time(start):
        order(g, "order-1")
        order(g, "order-2", ("AddToCart", MARGHERITA))
    with freeze_time(start + timedelta(hours=23)):
        assert g("worker", "--once").stdout == "did 0 items of work\n"
    assert g.get("order-1").status is RunStatus.WAITING
    assert g.get("order-1").data.status == "cart"
    with freeze_time(start + timedelta(hours=25)):
        assert g.json("worker", "--once") == {"done": 2}
    for id in ("order-1", "order-2"):
        inst = g.get(id)
        assert inst.status is RunStatus.FINISHED
        assert inst.data.status == "expired"
        assert inst.data.log == ["order opened", "cart timed out"]
        assert "timer" in g.kinds(id)
    with freeze_time(start + timedelta(hours=26)):
        assert g("worker", "--once").stdout == "did 0 items of work\n"


def test_worker_once_leaves_a_paused_instance_alone(g: Gorch) -> None:
    start = datetime(2026, 1, 1, 10, 0, 0)
    with freeze_time(start):
        order(g, "order-1")
        g("pause", "order-1")
    with freeze_time(start + timedelta(hours=25)):
        g("worker", "--once")
        assert g.get("order-1").status is RunStatus.PAUSED
        g("unpause", "order-1")  # the due timer fires when it goes on
        g("worker", "--once")
    assert g.get("order-1").data.status == "expired"


# -- graph ----------------------------------------------------------------------------------


def test_graph_tree(g: Gorch) -> None:
    out = g("graph", "pizza").stdout
    assert out.splitlines()[0] == "pizza (PizzaOrder)"
    for name in PIZZA_NAMES:
        assert f"'{name}'" in out, name
    lines = out.splitlines()

    def line(name: str) -> str:
        return next(x for x in lines if f"'{name}'" in x)

    assert "On 'AddToCart' payload AddToCart roles Customer" in line("AddToCart")
    assert "roles Manager" in line("ConfirmOrder")
    assert "roles Cook" in line("StartCooking") and "roles Cook" in line("Cooked")
    assert "roles Delivery" in line("Delivered")
    assert "Timeout 'cart timed out' after 1d" in line("cart timed out")
    # Nesting: the timeout's body sits deeper than the timeout.
    assert line("expire order").index("Step") > line("cart timed out").index("Timeout")


def test_graph_json(g: Gorch) -> None:
    tree = g.json("graph", "pizza")
    assert tree["kind"] == "Section"

    names: set[str] = set()
    roles: dict[str, list[str]] = {}

    def walk(node: dict[str, Any]) -> None:
        if "name" in node:
            names.add(node["name"])
        if "roles" in node:
            roles[node["name"]] = node["roles"]
        for kid in node.get("body", []):
            walk(kid)

    walk(tree)
    assert names == PIZZA_NAMES
    assert roles["AddToCart"] == ["Customer"] and roles["ConfirmOrder"] == ["Manager"]
    assert roles["TakeForDelivery"] == ["Delivery"]
    kinds = [n["kind"] for n in tree["body"]]
    assert kinds[:4] == ["Step", "For", "Wait", "Go"] and kinds[-1] == "Step"
    timeout = tree["body"][1]["body"][0]["body"][3]
    assert timeout["kind"] == "Timeout" and timeout["name"] == "cart timed out"
    assert [k["kind"] for k in timeout["body"]] == ["Step", "Return"]


def test_graph_of_an_unknown_workflow(g: Gorch) -> None:
    message = g.fail("graph", "piza")
    assert message == "error: no workflow 'piza' (registered: pizza). Did you mean 'pizza'?"
    message = g.fail("graph", "piza", "--format", "svg")
    assert message == "error: no workflow 'piza' (registered: pizza). Did you mean 'pizza'?"


@pytest.mark.parametrize("fmt", gorch_graph.FORMATS)
def test_graph_diagram_formats(g: Gorch, fmt: str) -> None:
    out = g("graph", "pizza", "--format", fmt).stdout
    assert out == gorch_graph.render(gorch_graph.build("pizza", PizzaOrder), fmt)
    assert "for the cart" in out and "complete" in out


def test_graph_default_format_is_the_tree(g: Gorch) -> None:
    tree = g("graph", "pizza").stdout
    assert tree.splitlines()[0] == "pizza (PizzaOrder)"
    assert g("graph", "pizza", "--format", "tree").stdout == tree
    assert "[default: tree]" in flat(g("graph", "--help").stdout)
    message = g("graph", "pizza", "--format", "png", code=2).stderr
    assert "'png' is not one of 'tree', 'mermaid', 'dot', 'svg'" in flat(message)


@pytest.mark.parametrize("fmt", gorch_graph.FORMATS)
def test_graph_of_an_instance_marks_where_it_stands(g: Gorch, fmt: str) -> None:
    order(g, "order-1", *CONFIRMED)
    out = g("graph", "pizza", "--instance", "order-1", "--format", fmt).stdout
    diagram = gorch_graph.build("pizza", PizzaOrder)
    with g.engine() as e:
        marks = gorch_graph.position(diagram, e.get("order-1"), e.history("order-1"))
    assert dict(marks.current) == {
        diagram.by_name["for a cook"]: ("_main_",),
        diagram.by_name["for payment"]: ("payment",),
    }
    assert out == gorch_graph.render(diagram, fmt, marks)
    assert out != gorch_graph.render(diagram, fmt)
    assert "▶ _main_" in out and "▶ payment" in out
    if fmt == "mermaid":
        assert "classDef current" in out and "classDef done" in out
    if fmt == "svg":
        cook = diagram.by_name["for a cook"]
        assert f'<g class="node wait current" id="gorch-{cook}"' in out


def test_graph_of_an_instance_of_another_workflow(flaky: Gorch) -> None:
    g = flaky
    g("start", "flaky", "--id", "f1")
    message = g.fail("graph", "pizza", "--instance", "f1", "--format", "mermaid")
    assert message == (
        "error: instance 'f1' is a 'flaky', not a 'pizza': run gorch graph flaky --instance f1"
    )
    out = g("graph", "flaky", "--instance", "f1", "--format", "mermaid").stdout
    assert "class n2 failed" in out  # the step that failed: 'charge card'


def test_graph_of_an_unknown_instance(g: Gorch) -> None:
    order(g, "order-1")
    message = g.fail("graph", "pizza", "--instance", "order-l", "--format", "dot")
    assert "no instance has id 'order-l'. Did you mean 'order-1'?" in message
    assert "Did you mean" not in g.fail("graph", "pizza", "--instance", "zzz", "--format", "svg")


def test_graph_refuses_instance_without_a_diagram_format_and_json_with_one(g: Gorch) -> None:
    order(g, "order-1")
    message = g.usage("graph", "pizza", "--instance", "order-1")
    assert message == "Error: --instance draws a diagram: add --format mermaid, dot or svg"
    message = g.usage("graph", "pizza", "--instance", "order-1", "--format", "tree")
    assert "--instance draws a diagram" in message
    for fmt in gorch_graph.FORMATS:
        message = g.usage("graph", "pizza", "--format", fmt, "--json")
        assert message == (
            "Error: --json gives the statement tree; leave out --format, or leave out --json"
        )


# -- usage ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["list", "--limit", "0"],
        ["list", "--bogus"],
        ["history", "order-1", "--limit", "0"],
        ["history"],
        ["show"],
        ["start"],
        ["send", "order-1"],
        ["goto", "order-1"],
        ["pause"],
        ["retry", "order-1", "-s", "failed"],
        ["graph"],
        ["graph", "pizza", "--instance", "order-1"],
        ["graph", "pizza", "--format", "svg", "--json"],
        ["serve", "myshop"],
        ["worker", "--batch", "0"],
        ["lst"],
    ],
    ids=lambda a: " ".join(a),
)
def test_every_usage_mistake_exits_2(g: Gorch, args: list[str]) -> None:
    order(g, "order-1")
    before = g.snapshot("order-1")
    assert g.usage(*args).startswith("Error: ")
    assert g.snapshot("order-1") == before


@pytest.mark.parametrize(
    "args",
    [
        ["show", "order-2"],
        ["history", "order-2"],
        ["history", "order-1", "--cursor", "x"],
        ["send", "order-2", "AddToCart"],
        ["send", "order-1", "Nope"],
        ["send", "order-1", "AddToCart", "{"],
        ["start", "piza"],
        ["start", "pizza", "--id", "order-1"],
        ["list", "--cursor", "garbage"],
        ["goto", "order-1", "nowhere", "--yes"],
        ["goto", "order-2", "for the cart", "--yes"],
        ["pause", "order-2"],
        ["unpause", "order-1"],
        ["retry", "order-1", "order-2"],
        ["graph", "piza"],
        ["graph", "pizza", "--instance", "order-2", "--format", "svg"],
    ],
    ids=lambda a: " ".join(a),
)
def test_every_refusal_exits_1_and_changes_nothing(g: Gorch, args: list[str]) -> None:
    order(g, "order-1")
    before = g.snapshot("order-1")
    assert g.fail(*args).startswith("error: ")
    assert g.snapshot("order-1") == before and g.ids() == ["order-1"]


def test_mistyped_command_suggests_the_close_one(g: Gorch) -> None:
    result = g("lst", code=2)
    assert "no command 'lst'. Did you mean 'list'" in flat(result.stderr)
    result = g("retyr", code=2)
    assert "Did you mean 'retry'" in flat(result.stderr)
    assert "Did you mean" not in flat(g("xyzzy", code=2).stderr)


def test_missing_store_and_workflows_name_the_option_and_the_env_var(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["--workflows", PIZZA, "list"])
    assert result.exit_code == 2  # a usage mistake
    message = flat(result.stderr)
    assert "Error: no store:" in message and message.startswith("Usage: ")
    assert "--store" in message and "GORCH_STORE" in message

    result = runner.invoke(cli, ["--store", str(tmp_path / "x.db"), "list"])
    assert result.exit_code == 2
    message = flat(result.stderr)
    assert "Error: no workflows:" in message
    assert "--workflows" in message and "GORCH_WORKFLOWS" in message

    # --help needs neither.
    result = runner.invoke(cli, ["--help"])
    assert result.exit_code == 0
    for command in ("serve", "worker", "start", "send", "show", "list", "goto", "retry", "graph"):
        assert command in result.stdout
    assert "GORCH_STORE" in result.stdout
    assert runner.invoke(cli, ["send", "--help"]).exit_code == 0


@pytest.mark.parametrize(
    ("workflows", "says"),
    [
        ("examples.pizza", "write it as module:attribute"),
        (":WORKFLOWS", "write it as module:attribute"),
        ("examples.pizza:", "write it as module:attribute"),
        ("examples.nosuch:WORKFLOWS", "cannot import 'examples.nosuch'"),
        ("examples.pizza:WORKFLOW", "examples.pizza has no 'WORKFLOW'. Did you mean 'WORKFLOWS'?"),
        ("examples.pizza:__doc__", "must be a non-empty dict of name to workflow class, not str"),
    ],
)
def test_bad_workflows_option(tmp_path: Path, workflows: str, says: str) -> None:
    g = Gorch(tmp_path / "gorch.db", workflows)
    # the text of the option in the wrong form is a usage mistake; a module that is not there
    # (or holds no such dict) a refusal
    message = g.usage("list") if "module:attribute" in says else g.fail("list")
    assert f"--workflows {workflows!r}" in message
    assert says in message


def test_bad_store(tmp_path: Path) -> None:
    message = Gorch("nosuch://host/db").fail("list")
    assert "cannot open the store 'nosuch://host/db'" in message
    missing = tmp_path / "no" / "such" / "dir" / "x.db"
    message = Gorch(missing).fail("list")
    assert f"no store at {str(missing)!r}: the file {str(missing)!r} does not exist" in message
    message = Gorch(missing).fail("--create", "list")
    assert "cannot open the store" in message and "unable to open" in message


def test_a_mistyped_store_path_is_not_created(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.chdir(tmp_path)
    real = Gorch("pizza.db").init()
    order(real, "order-1")
    for command in (["list"], ["show", "order-1"], ["worker", "--once"], ["init", "--json"]):
        if command[0] == "init":
            break
        message = Gorch("piza.db").fail(*command)
        assert message == (
            "error: no store at 'piza.db': the file 'piza.db' does not exist. Check the path, "
            "or create a new store with 'gorch --store piza.db init' (or --create)"
        )
    assert not (tmp_path / "piza.db").exists()
    # told to, it creates one: --create on any command, or gorch init (which says so)
    typo = Gorch("piza.db")
    assert typo.json("--create", "list") == {"items": [], "next": None}
    assert (tmp_path / "piza.db").exists()
    assert typo.json("init") == {"store": "piza.db", "created": False, "schema_version": 1}
    assert "is a gorch store already (schema version 1); nothing changed" in flat(
        real("init").stdout
    )
    assert Gorch("new.db").json("init") == {"store": "new.db", "created": True, "schema_version": 1}
    assert [i["id"] for i in real.json("list")["items"]] == ["order-1"]  # init left it alone


def test_a_database_without_gorch_tables_is_not_a_store(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "other.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE customers (id TEXT)")
    other = Gorch(path)
    message = other.fail("list")
    assert message.startswith(f"error: not a gorch store: {str(path)!r} has no gorch tables")
    assert f"'gorch --store {path} init' (or --create)" in message
    with sqlite3.connect(path) as db:
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert tables == {"customers"}  # nothing was added
    assert other.json("init")["created"] is True
    assert other.json("list") == {"items": [], "next": None}


def test_bad_status_choice(g: Gorch) -> None:
    result = g("list", "--status", "done", code=2)
    err = flat(result.stderr)
    assert "Invalid value for '--status'" in err
    assert "'done' is not one of" in err and "'finished'" in err


def test_store_and_workflows_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "env.db"
    monkeypatch.setenv("GORCH_STORE", str(db))
    monkeypatch.setenv("GORCH_WORKFLOWS", PIZZA)
    runner = CliRunner()
    assert runner.invoke(cli, ["init"]).exit_code == 0
    result = runner.invoke(cli, ["start", "pizza", "--id", "from-env"])
    assert result.exit_code == 0, result.stderr
    result = runner.invoke(cli, ["list", "--json"])
    assert [i["id"] for i in json.loads(result.stdout)["items"]] == ["from-env"]
    assert Gorch(db).get("from-env").status is RunStatus.WAITING
    # The options win over the environment.
    other = Gorch(tmp_path / "other.db").init()
    assert other.json("list") == {"items": [], "next": None}


def test_postgres_store_url(pg_store_url: str) -> None:
    import psycopg

    runner = CliRunner()
    base = ["--store", pg_store_url, "--workflows", PIZZA]
    with psycopg.connect(pg_store_url, autocommit=True) as conn:  # an empty database
        conn.execute("DROP TABLE IF EXISTS gorch_instances, gorch_timers, gorch_history, "
                     "gorch_keys, gorch_meta")  # fmt: skip
    result = runner.invoke(cli, [*base, "list"])
    assert result.exit_code == 1
    assert flat(result.stderr).startswith("error: not a gorch store:")
    with psycopg.connect(pg_store_url, autocommit=True) as conn:
        assert conn.execute("SELECT to_regclass('gorch_meta')").fetchone() == (None,)
    result = runner.invoke(cli, [*base, "init"])
    assert result.exit_code == 0 and "created a gorch store" in result.stdout, result.stderr
    result = runner.invoke(cli, [*base, "start", "pizza", "--id", "pg-1"])
    assert result.exit_code == 0, result.stderr
    result = runner.invoke(cli, [*base, "send", "pg-1", "AddToCart", MARGHERITA, "--json"])
    assert json.loads(result.stdout)["output"] == 1
    result = runner.invoke(cli, [*base, "show", "pg-1", "--json"])
    assert json.loads(result.stdout)["data"]["cart"][0]["name"] == "margherita"


# -- serve, in a real process -----------------------------------------------------------------


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GORCH_")}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_python_m_gorch_help() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "gorch", "--help"],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Run and repair durable gorch workflows." in proc.stdout
    assert "Usage: gorch" in proc.stdout


def test_serve_an_app_needs_module_colon_attribute(g: Gorch) -> None:
    message = g.usage("serve", "myshop.api")
    assert message == "Error: 'myshop.api': write the app as module:attribute, e.g. myshop.api:app"


def test_serve_with_a_missing_tokens_file(g: Gorch, tmp_path: Path) -> None:
    missing = tmp_path / "tokens.toml"
    message = g.fail("serve", "--tokens", str(missing), "--port", "0")
    assert message == f"error: token file {str(missing)!r} does not exist"
    assert g.ids() == []


@pytest.mark.parametrize(
    ("sig", "codes"),
    [
        (signal.SIGINT, {0}),
        # uvicorn (>= 0.29) shuts down gracefully, then re-raises SIGTERM on itself, so the
        # process ends "killed by SIGTERM" rather than with status 0.
        (signal.SIGTERM, {0, -signal.SIGTERM}),
    ],
    ids=["SIGINT", "SIGTERM"],
)
def test_serve(tmp_path: Path, sig: signal.Signals, codes: set[int]) -> None:
    db = tmp_path / "served.db"
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "serve.log"
    argv = [sys.executable, "-m", "gorch", "--store", str(db), "--workflows", PIZZA, "--create"]
    argv += ["serve", "--port", str(port), "--tokens", "examples/pizza/tokens.toml"]
    with log.open("w") as out:
        proc = subprocess.Popen(argv, cwd=ROOT, env=_env(), stdout=out, stderr=subprocess.STDOUT)
    try:
        with httpx.Client(base_url=base, timeout=5) as client:
            deadline = time.monotonic() + 20
            while True:
                assert proc.poll() is None, log.read_text()
                try:
                    if client.get("/health").json() == {"status": "ok"}:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, "gorch serve did not come up in 20 s"
                time.sleep(0.1)

            path = "/workflows/pizza/instances"
            assert client.post(path, json={"id": "web-1"}).status_code == 401
            customer = {"Authorization": "Bearer customer-demo-token"}
            response = client.post(path, json={"id": "web-1"}, headers=customer)
            assert response.status_code == 201, response.text
            assert response.json()["status"] == "waiting"
            assert response.json()["waiting_for"] == CART_EVENTS
        # The instance is in the store the CLI reads.
        assert Gorch(db).json("show", "web-1")["data"]["status"] == "cart"

        proc.send_signal(sig)
        assert proc.wait(timeout=20) in codes, log.read_text()
        text = log.read_text()
        assert "Application shutdown complete" in text and "Finished server process" in text
        assert "Traceback" not in text
        # every log line says when and how bad: uvicorn's, the requests', gorch's own
        stamp = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (INFO|WARNING|ERROR) +"
        lines = [x for x in text.splitlines() if x]
        assert lines and all(re.match(stamp, x) for x in lines), text
        assert re.search(stamp + r'uvicorn\.access: 127\.0\.0\.1:\d+ - "POST /workflows', text)
        assert re.search(stamp + r"gorch\.engine: web-1: running -> waiting", text), text
        assert re.search(stamp + r"uvicorn\.error: Application startup complete", text)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_serve_without_tokens_warns_with_time_and_level(tmp_path: Path) -> None:
    port = _free_port()
    log = tmp_path / "serve.log"
    argv = [sys.executable, "-m", "gorch", "--store", str(tmp_path / "open.db"), "--workflows",
            PIZZA, "--create", "serve", "--port", str(port), "--no-worker"]  # fmt: skip
    with log.open("w") as out:
        proc = subprocess.Popen(argv, cwd=ROOT, env=_env(), stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        while "Application startup complete" not in log.read_text():
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=20)
        text = log.read_text()
        stamp = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (INFO|WARNING|ERROR) +"
        lines = [x for x in text.splitlines() if x]
        assert lines and all(re.match(stamp, x) for x in lines), text
        assert re.search(stamp + r"gorch\.http: no auth configured", text), text
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
