"""``Engine.why``: why an instance is where it is, for each kind of wait and each status.

The texts are pinned by golden files in ``tests/golden/why/`` (one per situation), made with
time frozen at ``gorch.testing.START`` so that every time and "ago" in them is stable, and the
same on the memory store and on SQLite. After an intended change to the text, rewrite them with

    GORCH_UPDATE_GOLDEN=1 python -m pytest tests/test_why.py

and read the diff before committing it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, ClassVar

import pytest

from examples.pizza.workflow import PizzaOrder
from gorch import (
    Engine,
    Explanation,
    Go,
    InputError,
    NotFoundError,
    On,
    RetryPolicy,
    RunStatus,
    S,
    Step,
    Timeout,
    Wait,
    WaitFor,
    Worker,
)
from gorch import _views as views
from gorch.engine import AcceptedEvent, DueTimer, WaitCondition
from gorch.engine._conditions import condition
from gorch.store import MemoryStore, SQLStore, Store
from gorch.testing import START

GOLDEN = Path(__file__).resolve().parent / "golden" / "why"
UPDATE = os.environ.get("GORCH_UPDATE_GOLDEN") == "1"

MARGHERITA = {"pizza": {"name": "margherita"}}
CONFIRM = {"manager": "Giulia", "amount": 31.5}


def check_golden(name: str, text: str) -> None:
    """``text`` is exactly ``tests/golden/why/{name}.txt`` (GORCH_UPDATE_GOLDEN=1 rewrites it)."""
    path = GOLDEN / f"{name}.txt"
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return
    assert path.exists(), f"{path} is missing: run with GORCH_UPDATE_GOLDEN=1 to write it"
    assert text == path.read_text(encoding="utf-8"), (
        f"why/{name}.txt differs from the golden file; if the change is intended, rerun with "
        "GORCH_UPDATE_GOLDEN=1 and review the diff"
    )


# --------------------------------------------------------------------------------------------
# Workflows


@dataclass
class Packing:
    """Waits until the order is paid and packed (two events, in any order)."""

    paid: bool = False
    packed: bool = False
    note: str = "fragile"

    def definition(self) -> Any:
        return S(
            Go("packer", Wait("for packing", On("Packed", self.pack))),
            Wait("for payment", On("Paid", self.pay, roles=("Customer", "Bank"))),
            WaitFor("paid and packed", self.paid and (self.packed or self.ready()),
                    description="the order is paid for and packed"),
            Step("ship", self.ship),
        )  # fmt: skip

    def ready(self) -> bool:
        return False

    def pay(self) -> None:
        self.paid = True

    def pack(self, crates: int) -> int:
        self.packed = True
        return crates

    def ship(self) -> None:
        self.note = "shipped"


@dataclass
class Charge:
    """A step that fails while ``Charge.broken``; ``seen`` keeps what ``why`` said inside it."""

    broken: ClassVar[bool] = True
    policy: ClassVar = RetryPolicy(max_attempts=3, initial=timedelta(seconds=30), jitter=0)
    engine: ClassVar[Engine | None] = None
    seen: ClassVar[list[str]] = []

    charged: bool = False

    def definition(self) -> Any:
        return S(
            Step("charge card", self.charge, retry=Charge.policy),
            Wait("for shipping", On("Ship"), Timeout("give up", timedelta(days=2))),
        )

    def charge(self) -> None:
        if Charge.engine is not None:  # a look from outside while the step runs
            Charge.seen.append(str(Charge.engine.why("c1")))
        if Charge.broken:
            raise RuntimeError("card declined")
        self.charged = True


@dataclass
class Fragile(Charge):
    """The same step, with no retries: its first failure makes the instance FAILED."""

    def definition(self) -> Any:
        return S(Step("charge card", self.charge, retry=RetryPolicy(max_attempts=1)))


WORKFLOWS: dict[str, type] = {
    "pizza": PizzaOrder,
    "packing": Packing,
    "charge": Charge,
    "fragile": Fragile,
}


@pytest.fixture(params=["memory", "sqlite"])
def engine(request: pytest.FixtureRequest, tmp_path: Path, gorch_time: Any) -> Iterator[Engine]:
    """An engine on memory and on SQLite, time frozen at START (the goldens hold on both)."""
    store: Store = (
        MemoryStore() if request.param == "memory" else SQLStore(f"sqlite:///{tmp_path}/g.db")
    )
    Charge.broken, Charge.engine, Charge.seen = True, None, []
    yield Engine(store, WORKFLOWS, owner="engine-1")
    store.close()


def confirmed(engine: Engine, id: str = "o1") -> None:
    engine.start("pizza", PizzaOrder(), id=id)
    engine.send(id, "AddToCart", MARGHERITA)
    engine.send(id, "SubmitCart")
    engine.send(id, "ConfirmOrder", CONFIRM)


# --------------------------------------------------------------------------------------------
# Each kind of wait


def test_a_wait_with_events_and_a_timeout(engine: Engine, gorch_time: Any) -> None:
    engine.start("pizza", PizzaOrder(), id="o1")
    gorch_time.tick(timedelta(hours=2, minutes=5))
    e = engine.why("o1")
    check_golden("wait_events_and_timeout", str(e))
    assert e.status is RunStatus.WAITING and e.now == START + timedelta(hours=2, minutes=5)
    (t,) = e.threads
    assert (t.thread, t.kind, t.at, t.since) == ("_main_", "Wait", "for the cart", START)
    assert t.events[0] == AcceptedEvent(
        "AddToCart", "for the cart", "AddToCart", ("Customer",),
        "POST /instances/o1/events/AddToCart", "gorch send o1 AddToCart PAYLOAD",
    )  # fmt: skip
    assert [ev.name for ev in t.events] == ["AddToCart", "EmptyCart", "SubmitCart"]
    assert t.timers == (DueTimer("cart timed out", START + timedelta(hours=24), False),)
    assert "gorch worker" not in [c.command for c in e.commands]


def test_an_overdue_timer_asks_whether_a_worker_runs(engine: Engine, gorch_time: Any) -> None:
    engine.start("pizza", PizzaOrder(), id="o1")
    gorch_time.tick(timedelta(hours=24, minutes=3))
    e = engine.why("o1")
    check_golden("overdue_timer", str(e))
    assert e.threads[0].timers[0].overdue
    assert e.commands[0].command == "gorch worker"
    Worker(engine).run_once()
    assert engine.why("o1").status is RunStatus.FINISHED  # the worker fired it: expired


def test_several_go_threads(engine: Engine, gorch_time: Any) -> None:
    confirmed(engine)
    gorch_time.tick(timedelta(minutes=10))
    e = engine.why("o1")
    check_golden("go_threads", str(e))
    assert [(t.thread, t.at, [ev.name for ev in t.events]) for t in e.threads] == [
        ("_main_", "for a cook", ["StartCooking"]),
        ("payment", "for payment", ["ConfirmPayment"]),
    ]
    assert e.threads[1].goto_targets == ("for payment",)
    assert "gorch goto o1 NAME --thread payment" in [c.command for c in e.commands]


def test_a_wait_for_shows_its_condition_and_the_values_it_reads(
    engine: Engine, gorch_time: Any
) -> None:
    engine.start("packing", Packing(), id="p1")
    engine.send("p1", "Paid")
    gorch_time.tick(timedelta(seconds=42))
    e = engine.why("p1")
    check_golden("wait_for", str(e))
    main = e.threads[0]
    assert (main.kind, main.at) == ("WaitFor", "paid and packed")
    assert main.condition == WaitCondition(
        source="self.paid and (self.packed or self.ready())",
        description="the order is paid for and packed",
        holds=False,
        values=(("paid", True), ("packed", False)),  # not ready(): a method is not data
    )
    assert e.threads[1].events[0].payload == "int"
    engine.send("p1", "Packed", 3)
    assert engine.why("p1").status is RunStatus.FINISHED


def test_the_pizza_wait_for(engine: Engine) -> None:
    confirmed(engine)
    engine.send("o1", "StartCooking", {"cook": "Mario"})
    for event in ("Cooked", "TakeForDelivery", "Delivered"):
        engine.send("o1", event)
    cond = engine.why("o1").threads[0].condition
    assert cond is not None and cond.source == "self.paid >= self.amount > 0"
    assert cond.values == (("paid", 0.0), ("amount", 31.5)) and cond.holds is False
    assert cond.description == ""


def test_a_condition_without_source_says_so() -> None:
    namespace: dict[str, Any] = {"S": S, "WaitFor": WaitFor}
    exec(  # a class whose source inspect cannot find
        "class Typed:\n"
        "    ok = False\n"
        "    def definition(self):\n"
        "        return S(WaitFor('until ok', self.ok, description='ok is set'))\n",
        namespace,
    )
    cond = condition(namespace["Typed"](), "until ok")
    assert (cond.source, cond.description, cond.holds, cond.values) == (
        None, "ok is set", False, (),
    )  # fmt: skip
    assert "source of Typed.definition() is not available" in cond.note


def test_a_condition_whose_name_is_computed_is_found_by_value_only() -> None:
    @dataclass
    class Computed:
        n: int = 0
        NAME: ClassVar[str] = "until n"

        def definition(self) -> Any:
            return S(WaitFor(self.NAME, self.n > 1))

    cond = condition(Computed(), "until n")
    assert cond.source is None and cond.holds is False
    assert cond.note == "no WaitFor('until n', ...) call was found in Computed.definition()"


def test_a_condition_that_raises_is_explained_not_raised() -> None:
    @dataclass
    class Broken:
        n: int = 0

        def definition(self) -> Any:
            return S(WaitFor("until n", 1 / self.n > 0))

    cond = condition(Broken(), "until n")
    assert (cond.holds, cond.source, cond.values) == (None, "1 / self.n > 0", (("n", 0),))
    assert cond.note == "its value could not be computed: ZeroDivisionError: division by zero"


# --------------------------------------------------------------------------------------------
# Steps, retries, the lease


def test_a_step_about_to_run_waits_for_a_worker(engine: Engine) -> None:
    engine.start("charge", Charge(), id="c1", defer=True)
    e = engine.why("c1")
    check_golden("step_deferred", str(e))
    assert e.status is RunStatus.RUNNING and e.commands[0].command == "gorch worker"


def test_a_step_running_holds_the_lease(engine: Engine) -> None:
    Charge.broken, Charge.engine = False, engine
    engine.start("charge", Charge(), id="c1")
    (inside,) = Charge.seen
    check_golden("step_running", inside)
    assert "lease: held by engine-1#" in inside
    assert engine.why("c1").lease_owner is None  # released with the run


def test_a_failed_step_awaiting_retry(engine: Engine, gorch_time: Any) -> None:
    engine.start("charge", Charge(), id="c1")
    gorch_time.tick(timedelta(seconds=10))
    e = engine.why("c1")
    check_golden("step_retry", str(e))
    assert e.next_attempt_at == START + timedelta(seconds=30)
    assert (e.status, e.attempts, e.max_attempts) == (RunStatus.RUNNING, 1, 3)
    assert e.next_attempt_at is not None and e.next_attempt_at > e.now
    assert e.last_error is not None and "card declined" in e.last_error
    assert "gorch worker" not in [c.command for c in e.commands]  # not due yet
    gorch_time.tick(timedelta(minutes=3))
    late = engine.why("c1")
    assert late.commands[0].command == "gorch worker"
    assert "next attempt was due" in str(late) and "is `gorch worker` running?" in str(late)


def test_a_failed_instance_past_its_policy(engine: Engine, gorch_time: Any) -> None:
    engine.start("fragile", Fragile(), id="c1")
    gorch_time.tick(timedelta(hours=3))
    e = engine.why("c1")
    check_golden("failed", str(e))
    assert e.status is RunStatus.FAILED and e.status_since == START
    assert [c.command for c in e.commands][:2] == ["gorch retry c1", "gorch goto c1 NAME"]


# --------------------------------------------------------------------------------------------
# Operator statuses


def test_paused(engine: Engine, gorch_time: Any) -> None:
    engine.start("pizza", PizzaOrder(), id="o1")
    gorch_time.tick(timedelta(minutes=30))
    engine.pause("o1")
    gorch_time.tick(timedelta(days=2))
    e = engine.why("o1")
    check_golden("paused", str(e))
    assert e.status_since == START + timedelta(minutes=30)
    assert e.commands[0].command == "gorch unpause o1"
    assert "gorch pause o1" not in [c.command for c in e.commands]


def test_cancelled(engine: Engine, gorch_time: Any) -> None:
    confirmed(engine)
    gorch_time.tick(timedelta(minutes=1))
    engine.cancel("o1")
    e = engine.why("o1")
    check_golden("cancelled", str(e))
    assert [c.command for c in e.commands] == ["gorch history o1"]


def test_finished(engine: Engine, gorch_time: Any) -> None:
    Charge.broken = False
    engine.start("charge", Charge(), id="c1")
    gorch_time.tick(timedelta(seconds=5))
    engine.send("c1", "Ship")
    e = engine.why("c1")
    check_golden("finished", str(e))
    assert e.status_since == START + timedelta(seconds=5)


# --------------------------------------------------------------------------------------------
# The record, its JSON, refusals


def test_ids_with_spaces_are_quoted_for_the_shell_and_the_url(engine: Engine) -> None:
    engine.start("pizza", PizzaOrder(), id="order 7")
    e = engine.why("order 7")
    add = e.threads[0].events[0]
    assert add.command == "gorch send 'order 7' AddToCart PAYLOAD"
    assert add.http == "POST /instances/order%207/events/AddToCart"
    assert e.commands[-2].command == "gorch cancel 'order 7'"


def test_the_json_view_has_the_facts_and_the_text(engine: Engine) -> None:
    engine.start("packing", Packing(), id="p1")
    engine.send("p1", "Paid")
    data = views.why(engine.why("p1"))
    assert data["status"] == "waiting" and data["now"] == "2026-01-01T00:00:00+00:00"
    assert data["threads"][0]["condition"]["values"] == {"paid": True, "packed": False}
    assert data["threads"][1]["events"][0]["roles"] == []
    assert data["text"] == str(engine.why("p1"))


def test_an_explanation_is_a_frozen_record(engine: Engine) -> None:
    engine.start("pizza", PizzaOrder(), id="o1")
    e = engine.why("o1")
    assert isinstance(e, Explanation) and e == engine.why("o1")
    with pytest.raises(AttributeError):
        e.status = RunStatus.FAILED  # type: ignore[misc]


def test_an_unknown_instance_is_refused(engine: Engine) -> None:
    with pytest.raises(NotFoundError, match="no instance has id 'nope'"):
        engine.why("nope")
    with pytest.raises(InputError):
        engine.why("")


def test_the_example_in_docs_engine_md_shows_the_real_output() -> None:
    """docs/engine.md's "Why is it waiting?" prints what test_several_go_threads pins."""
    doc = (Path(__file__).resolve().parent.parent / "docs" / "engine.md").read_text()
    section = doc[doc.index("## Why is it waiting?") :]
    shown = section[section.index("```text\n") + 8 : section.index("```\n\nWhat it says")]
    assert shown == (GOLDEN / "go_threads.txt").read_text(encoding="utf-8")
    code = section[section.index("```python\n") : section.index("```text")]
    assert code.count("engine.send(") == 3  # the sends of confirmed(), as written there
    assert '"AddToCart", {"pizza": {"name": "margherita"}}' in code
    assert '"ConfirmOrder", {"manager": "Giulia", "amount": 31.5}' in code
