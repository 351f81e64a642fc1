"""A workflow and the ways its next deploy can change it, for the deploy check and the
migrations (tests/test_check.py, tests/test_migrate.py, tests/cli/test_cli_deploying.py).

``Shop`` is the code that wrote the instances: its main thread waits for a payment (or a
timeout) while a ``Go`` thread waits for an acknowledgement; a shop whose card is declined
stops FAILED at the step ``charge``. Each other class is ``Shop`` changed in one way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from gorch import Engine, Go, If, On, RetryPolicy, S, Step, Timeout, Wait

ONCE = RetryPolicy(max_attempts=1)


@dataclass
class Shop:
    qty: int = 1
    items: list[str] = field(default_factory=list)
    declined: bool = False
    log: list[str] = field(default_factory=list)

    def body(self, pay: str = "for pay", late: str = "late", ack: str = "for ack") -> Any:
        return S(
            Go("notify", S(Wait(ack, On("Ack", self.ack)))),
            Wait(pay, On("Pay", self.pay), Timeout(late, 3600)),
            Step("charge", self.charge, retry=ONCE),
            Step("ship", lambda: self.log.append("shipped")),
        )

    def definition(self) -> Any:
        return self.body()

    def ack(self) -> None:
        self.log.append("acked")

    def pay(self) -> None:
        self.log.append("paid")

    def charge(self) -> None:
        if self.declined:
            raise RuntimeError("card declined")
        self.log.append("charged")


@dataclass
class RenamedWait(Shop):
    """'for pay' is now 'for payment' (no rename declared)."""

    def definition(self) -> Any:
        return self.body(pay="for payment")


@dataclass
class DeclaredRename(Shop):
    """'for pay' is now 'for payment' and 'late' is now 'too late', both declared."""

    renames: ClassVar[dict[str, str]] = {"for pay": "for payment", "late": "too late"}

    def definition(self) -> Any:
        return self.body(pay="for payment", late="too late")


@dataclass
class NoTimeout(Shop):
    """The Timeout 'late' is deleted."""

    def definition(self) -> Any:
        return S(
            Go("notify", S(Wait("for ack", On("Ack", self.ack)))),
            Wait("for pay", On("Pay", self.pay)),
            Step("charge", self.charge, retry=ONCE),
            Step("ship", lambda: self.log.append("shipped")),
        )


@dataclass
class ChargeIsAWait(Shop):
    """The step 'charge' is now a Wait (another kind of statement)."""

    def definition(self) -> Any:
        return S(
            Go("notify", S(Wait("for ack", On("Ack", self.ack)))),
            Wait("for pay", On("Pay", self.pay), Timeout("late", 3600)),
            Wait("charge", On("Charged")),
            Step("ship", lambda: self.log.append("shipped")),
        )


@dataclass
class NoNotify(Shop):
    """The Go 'notify' is now 'notifier' (its Wait kept)."""

    def definition(self) -> Any:
        return S(
            Go("notifier", S(Wait("for ack", On("Ack", self.ack)))),
            Wait("for pay", On("Pay", self.pay), Timeout("late", 3600)),
            Step("charge", self.charge, retry=ONCE),
            Step("ship", lambda: self.log.append("shipped")),
        )


@dataclass
class TextQty(Shop):
    """The field qty is now text."""

    qty: str = "1"  # type: ignore[assignment]


def seed(
    engine: Engine, waiting: int = 3, failed: int = 2, finished: int = 1
) -> dict[str, list[str]]:
    """Shops in each position: waiting for pay (``w-``), failed at charge (``f-``), finished
    (``d-``); their ids by prefix."""
    ids: dict[str, list[str]] = {"w": [], "f": [], "d": []}
    for i in range(waiting):
        engine.start("shop", Shop(), id=f"w-{i}")
        ids["w"].append(f"w-{i}")
    for i in range(failed):
        engine.start("shop", Shop(declined=True), id=f"f-{i}")
        engine.send(f"f-{i}", "Pay")
        ids["f"].append(f"f-{i}")
    for i in range(finished):
        engine.start("shop", Shop(), id=f"d-{i}")
        engine.send(f"d-{i}", "Ack")
        engine.send(f"d-{i}", "Pay")
        ids["d"].append(f"d-{i}")
    return ids


# -- the deploy recipe: deleting the Wait "for review" safely (docs/deploying.md) ------------


@dataclass
class Review:
    """Version 1: every order is reviewed before it is paid for."""

    log: list[str] = field(default_factory=list)

    def review(self) -> Any:
        return Wait("for review", On("Approve", lambda: self.log.append("approved")))

    def around(self, review: Any) -> Any:
        return S(
            Step("take", lambda: self.log.append("taken")),
            review,
            Wait("for pay", On("Pay", lambda: self.log.append("paid"))),
            Step("ship", lambda: self.log.append("shipped")),
        )

    def definition(self) -> Any:
        return self.around(self.review())


@dataclass
class ReviewSkipped(Review):
    """Version 2: new orders skip the review; orders waiting there can still be approved."""

    def definition(self) -> Any:
        return self.around(If(False, "review retired", self.review()))


@dataclass
class ReviewDeleted(Review):
    """Version 3: the review is gone."""

    def definition(self) -> Any:
        return S(
            Step("take", lambda: self.log.append("taken")),
            Wait("for pay", On("Pay", lambda: self.log.append("paid"))),
            Step("ship", lambda: self.log.append("shipped")),
        )


RECIPE_V1 = {"order": Review}
RECIPE_V2 = {"order": ReviewSkipped}
RECIPE_V3 = {"order": ReviewDeleted}


@dataclass
class ShopV2(Shop):
    """Data version 2: ``qty`` moves to ``quantity``."""

    data_version: ClassVar[int] = 2
    quantity: int = 1

    @classmethod
    def migrate(cls, data: dict[str, Any], version: int) -> dict[str, Any]:
        data["quantity"] = data.pop("qty")
        return data


@dataclass
class BrokenV2(ShopV2):
    """A migration with a bug."""

    @classmethod
    def migrate(cls, data: dict[str, Any], version: int) -> dict[str, Any]:
        return {"quantity": data["quantity"]}  # KeyError: version 1 has qty


SHOPS = {"shop": Shop}
SHOPS_BROKEN = {"shop": BrokenV2}
SHOPS_V2 = {"shop": ShopV2}
SHOPS_RENAMED = {"shop": RenamedWait}
