"""Sample workflows for the serde, golden-file and request-pattern tests.

Only ``tests/test_serde.py`` and ``tests/test_request_pattern.py`` use this module. Every
workflow is a plain dataclass, so that ``gorch.dumps``/``gorch.loads`` store and restore it, and
every side effect of a step or handler lands in the workflow's own data (``log``), so that two
runs can be compared by their JSON alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from gorch import (
    CallbackRequest,
    For,
    Go,
    If,
    On,
    Return,
    S,
    Section,
    Step,
    Timeout,
    Wait,
    WaitFor,
)

# --------------------------------------------------------------------------------------------
# The README's pizza order, made richer: a cart loop with a timeout, handlers
# with typed payloads that validate their input, an If after the loop, a parallel payment
# thread, a step that fails on its first attempt, and a WaitFor.

PAYMENT_THREAD = "customer pays while order is cooking"
"""Name (and id) of the payment thread of :class:`PizzaOrder`."""


@dataclass
class Pizza:
    """Payload of ``AddToCart``."""

    name: str
    qty: int


@dataclass
class Payment:
    """Payload of ``ConfirmPayment``."""

    amount: float


@dataclass
class PizzaOrder:
    cart: list[Pizza] = field(default_factory=list)
    status: str = ""
    paid: float = 0.0
    oven_attempts: int = 0
    log: list[str] = field(default_factory=list)

    def definition(self) -> Section:
        return S(
            Step("setup", self.setup),
            For(
                "order not yet submitted",
                self.status != "submitted",
                Wait(
                    "for user input",
                    Timeout(
                        "cart timed out",
                        timedelta(hours=24),
                        Step("cancel abandoned cart", self.cancel),
                        Return(),
                    ),
                    On("AddToCart", self.add_to_cart),
                    On("EmptyCart", self.empty_cart),
                    On("SubmitCart", self.submit, Step("confirm order", self.confirm)),
                ),
            ),
            If(
                len(self.cart) > 2,
                "big order",
                Step("notify the manager", self.notify_manager),
            ).else_("small order", Step("log small order", self.log_small_order)),
            Go(
                PAYMENT_THREAD,
                Wait("customer pays", On("ConfirmPayment", self.confirm_payment)),
                Step("send receipt", self.send_receipt),
            ),
            Wait(
                "for kitchen",
                On("StartCooking", self.start_cooking, Step("fire up the oven", self.fire_oven)),
            ),
            WaitFor("payment", self.paid > 0, self.complete),
            Step("deliver", self.deliver),
        )

    # -- steps ---------------------------------------------------------------------------------

    def setup(self) -> None:
        self.status = "open"
        self.log.append("setup")

    def cancel(self) -> None:
        self.status = "cancelled"
        self.log.append("cancelled: cart timed out")

    def confirm(self) -> None:
        self.log.append(f"confirmed {sum(p.qty for p in self.cart)} pizzas")

    def notify_manager(self) -> None:
        self.log.append("manager notified of a big order")

    def log_small_order(self) -> None:
        self.log.append("small order")

    def send_receipt(self) -> None:
        self.log.append(f"receipt for {self.paid}")

    def fire_oven(self) -> None:
        self.oven_attempts += 1
        if self.oven_attempts == 1:
            raise RuntimeError("the oven is cold; try again")
        self.log.append(f"oven fired (attempt {self.oven_attempts})")

    def complete(self) -> None:
        self.status = "paid"
        self.log.append("payment complete")

    def deliver(self) -> None:
        self.status = "delivered"
        self.log.append("delivered")

    # -- event handlers --------------------------------------------------------------------------

    def add_to_cart(self, pizza: Pizza) -> int:
        if pizza.qty < 1:
            raise ValueError(f"qty must be at least 1, got {pizza.qty}")
        self.cart.append(pizza)
        self.log.append(f"added {pizza.qty} x {pizza.name}")
        return len(self.cart)

    def empty_cart(self) -> int:
        dropped = len(self.cart)
        self.cart.clear()
        self.log.append("cart emptied")
        return dropped

    def submit(self) -> str:
        if not self.cart:
            raise ValueError("cannot submit an empty cart")
        self.status = "submitted"
        self.log.append("submitted")
        return "submitted"

    def confirm_payment(self, payment: Payment) -> float:
        if not payment.amount > 0:  # also refuses NaN
            raise ValueError(f"amount must be positive, got {payment.amount}")
        self.paid += payment.amount
        self.log.append(f"paid {payment.amount}")
        return self.paid

    def start_cooking(self, note) -> str:  # unannotated: gets the payload as given
        self.log.append(f"cooking: {note!r}")
        return "cooking"


# --------------------------------------------------------------------------------------------
# A wait with a lifecycle handler and a timeout (golden file b).


class MailboxHandler:
    """A lifecycle handler whose setup output is deterministic (kept as ``setup_data``)."""

    type = "mailbox"

    def __init__(self, owner: str) -> None:
        self.owner = owner

    def setup(self, req: CallbackRequest) -> str:
        return f"mailbox:{self.owner}:{req.thread_id}:{req.pc}"

    def handle(self, req: CallbackRequest, input: Any) -> object:
        return {"approved_by": self.owner, "input": input}

    def teardown(self, req: CallbackRequest, handled: bool) -> None:
        pass


@dataclass
class Approval:
    approver: str = "ann@example.com"
    asked: bool = False
    escalated: bool = False

    def definition(self) -> Section:
        return S(
            Step("ask for approval", self.ask),
            Wait(
                "for approval",
                On("approved by mail", MailboxHandler(self.approver)),
                Timeout("approval timed out", timedelta(days=2), Step("escalate", self.escalate)),
            ),
        )

    def ask(self) -> None:
        self.asked = True

    def escalate(self) -> None:
        self.escalated = True


# --------------------------------------------------------------------------------------------
# Two parallel threads with explicit ids and a main thread at a WaitFor (golden file c).


@dataclass
class Fanout:
    fail_fetch: bool = True
    fetched: bool = False
    acked: bool = False
    finished: bool = False

    def definition(self) -> Section:
        return S(
            Go("notify", Wait("for ack", On("Ack", self.ack)), id="notify-1"),
            Go("fetch", Step("fetch data", self.fetch), id="fetch-1"),
            WaitFor("all done", self.fetched and self.acked, self.finish),
        )

    def fetch(self) -> None:
        if self.fail_fetch:
            raise ConnectionError("upstream unavailable")
        self.fetched = True

    def ack(self) -> str:
        self.acked = True
        return "acked"

    def finish(self) -> None:
        self.finished = True
