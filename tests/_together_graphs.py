"""The workflows the diagram tests draw for the statements that work with other instances
(``Child``, ``OnInstance``): a kitchen that starts deliveries as its children, in its main
thread and in a ``Go`` thread, then waits on other instances three ways.

``tests/golden/graph/kitchen.*`` pin what each format draws of it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gorch import Child, ChildResult, Go, OnInstance, RunStatus, S, Step, Timeout, Wait
from gorch.engine import Engine, Worker
from gorch.graph import Graph, Node, build


@dataclass
class Delivery:
    """The child: one step."""

    address: str = ""

    def definition(self) -> Any:
        return S(Step("drive", self.drive))

    def drive(self) -> None:
        pass


@dataclass
class Kitchen:
    """Every kind that works with other instances, and a child in a Go thread."""

    other: str = "o-2"
    seen: list[str] = field(default_factory=list)

    def definition(self) -> Any:
        return S(
            Go("courier", Child("return trip", "delivery", self.make)),
            Child("deliver", "delivery", self.make, self.done),
            Wait(
                "for the others",
                OnInstance("other ended", lambda: self.other, self.moved),
                OnInstance("other cooks", "o-7", self.moved, until="for a cook"),
                OnInstance("other stuck", lambda: self.other,
                           until={RunStatus.FAILED, RunStatus.PAUSED}),
                Timeout("too slow", 60),
            ),
            Step("finish", self.finish),
        )  # fmt: skip

    def make(self) -> Delivery:
        return Delivery("Via Po 2")

    def done(self, r: ChildResult) -> None:
        self.seen.append(r.status.value)

    def moved(self, r: ChildResult) -> None:
        self.seen.append(r.id)

    def finish(self) -> None:
        pass


WORKFLOWS: dict[str, type] = {"kitchen": Kitchen, "delivery": Delivery}

KITCHEN_NAMES = {
    "courier", "return trip", "return trip ended", "deliver", "deliver ended",
    "for the others", "other ended", "other cooks", "other stuck", "too slow", "finish",
}  # fmt: skip
"""Every name ``by_name`` has for the kitchen: a Child's end event leads to its node."""


def kitchen() -> Graph:
    return build("kitchen", Kitchen)


def named(g: Graph, name: str) -> Node:
    return g.nodes[g.by_name[name]]


def drain(engine: Engine) -> None:
    """Run the worker until nothing is left to do."""
    worker = Worker(engine)
    while worker.run_once():
        pass
