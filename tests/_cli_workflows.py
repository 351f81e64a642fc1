"""Workflows for the CLI tests (``tests/cli/``): a step that fails until a class-level flag is set.

The command line builds ``Engine(store, workflows)`` with the default retry policy, so the
failing step carries its own ``RetryPolicy(max_attempts=1)``: its first failure makes the
instance ``FAILED`` at once (no backoff to wait out).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from examples.pizza import PizzaOrder
from gorch import On, RetryPolicy, S, Step, Wait


@dataclass
class Flaky:
    """Charges a card (failing while ``Flaky.broken``), then waits for ``Ship``."""

    broken: ClassVar[bool] = True

    charged: bool = False
    shipped: bool = False

    def definition(self) -> Any:
        return S(
            Step("charge card", self.charge, retry=RetryPolicy(max_attempts=1)),
            Wait("for shipping", On("Ship", self.ship)),
        )

    def charge(self) -> None:
        if Flaky.broken:
            raise RuntimeError("card declined")
        self.charged = True

    def ship(self) -> None:
        self.shipped = True


WORKFLOWS: dict[str, type] = {"flaky": Flaky}
"""Only the failing workflow (``--workflows _cli_workflows:WORKFLOWS``)."""

ALL: dict[str, type] = {"pizza": PizzaOrder, "flaky": Flaky}
"""The pizza shop and the failing workflow together (for ``--workflow`` filters)."""


class Unstorable:
    """Breaks two rules at once: definition() returns a list, and a plain class is no data."""

    def definition(self) -> Any:
        return [Step("open", self.open)]

    def open(self) -> None:
        pass


BROKEN = {"broken": Unstorable}
