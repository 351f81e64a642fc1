"""Workflows for the tests of ``gorch wait``, ``gorch changes`` and a parent's and child's
``gorch show`` (``tests/cli/test_cli_together.py``): a shop that starts a delivery as its child
and then waits for a signature, and parents of many children at once."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from gorch import Child, ChildResult, Go, On, S, Step, Wait


@dataclass
class Delivery:
    """The child: one step."""

    address: str = ""
    driven: bool = False

    def definition(self) -> Any:
        return S(Step("drive", self.drive))

    def drive(self) -> None:
        self.driven = True


@dataclass
class Shop:
    """The parent: a delivery as its child, then a wait for ``Sign``."""

    ended: str = ""

    def definition(self) -> Any:
        return S(
            Child("deliver", "delivery", self.make, self.done),
            Wait("for a signature", On("Sign")),
        )

    def make(self) -> Delivery:
        return Delivery("Via Po 2")

    def done(self, r: ChildResult) -> None:
        self.ended = r.status.value


@dataclass
class Crowd:
    """A parent with ``COUNT`` children at once, one a ``Go`` thread; it waits for ``Close``."""

    COUNT: ClassVar[int] = 12

    def definition(self) -> Any:
        return S(*[Go(f"go {i:02}", Child(f"deliver {i:02}", "delivery", self.make))
                   for i in range(self.COUNT)],
                 Wait("for the close", On("Close")))  # fmt: skip

    def make(self) -> Delivery:
        return Delivery("Via Roma 1")


@dataclass
class Pair(Crowd):
    """Two children at once."""

    COUNT: ClassVar[int] = 2


WORKFLOWS: dict[str, type] = {"shop": Shop, "delivery": Delivery, "crowd": Crowd, "pair": Pair}
"""``--workflows _cli_together_workflows:WORKFLOWS``."""
