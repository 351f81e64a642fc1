"""Workflows of the child-workflow and wait-on-instance tests, and the child process of their
SIGKILL test.

The process (``python tests/_child_workflows.py URL``) runs worker rounds on the database at
``URL`` until nothing is left, and SIGKILLs itself where ``GORCH_TEST_KILL`` says:

- ``setup``: in the ``Child``'s data callable, before the parent's commit that starts the child;
- ``start-before`` / ``start-after``: around the commit that inserts the child;
- ``end-before`` / ``end-after``: around the child's last commit (it finished);
- ``deliver-before`` / ``deliver-after``: around the parent's commit that takes the child's end.
"""

from __future__ import annotations

import os
import signal
import sys
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from gorch import (
    Child,
    ChildResult,
    Engine,
    Go,
    If,
    On,
    OnInstance,
    S,
    Step,
    Timeout,
    Wait,
    WaitFor,
    Worker,
)
from gorch.store.base import Write

KILL_ENV = "GORCH_TEST_KILL"


def kill_here(point: str) -> None:
    if os.environ.get(KILL_ENV) == point:
        os.kill(os.getpid(), signal.SIGKILL)


@dataclass
class Delivery:
    """The child: one step, or a wait for an event (``hold``) that an operator may cancel."""

    address: str = ""
    hold: bool = False
    driven: int = 0

    def definition(self) -> Any:
        return S(
            If(self.hold, "held", Wait("parked", On("release"))),
            Step("drive", self.drive),
            Step("arrive", self.arrive),
        )

    def drive(self) -> None:
        self.driven += 1

    def arrive(self) -> None:
        pass


@dataclass
class Shop:
    """A parent with one child."""

    hold: str = ""  # the address of the child that waits (for an operator to cancel)
    ends: list[list[str]] = field(default_factory=list)
    made: int = 0
    after: int = 0

    def definition(self) -> Any:
        return S(Child("deliver", "delivery", self.make, self.done), Step("after", self.later))

    def make(self) -> Delivery:
        self.made += 1
        kill_here("setup")
        return Delivery("home")

    def done(self, r: ChildResult) -> None:
        self.ends.append([r.id, r.status.value, r.data.address if r.data else ""])

    def later(self) -> None:
        self.after += 1


@dataclass
class Shop3(Shop):
    """A parent with three children in parallel threads."""

    def definition(self) -> Any:
        return S(
            *[
                Go(f"go {a}", Child(f"deliver {a}", "delivery", self.maker(a), self.done))
                for a in ("a", "b", "c")
            ],
            WaitFor("all ended", len(self.ends) == 3),
            Step("after", self.later),
        )

    def maker(self, address: str) -> Any:
        return lambda: Delivery(address, hold=address == self.hold)


@dataclass
class Watcher:
    """Waits for another instance to finish (or to reach ``at``), or gives up after 60 s."""

    other: str = ""
    at: str = ""
    seen: list[str] = field(default_factory=list)
    gave_up: bool = False

    def definition(self) -> Any:
        return S(
            Wait(
                "for the other",
                OnInstance("other moved", lambda: self.other, self.moved, until=self.at or None),
                Timeout("too slow", timedelta(seconds=60), Step("give up", self.give_up)),
            )
        )

    def moved(self, r: ChildResult) -> None:
        self.seen.append(f"{r.id}:{r.status.value}:{','.join(r.at_statements)}")

    def give_up(self) -> None:
        self.gave_up = True


WORKFLOWS: dict[str, type] = {
    "shop": Shop, "shop3": Shop3, "delivery": Delivery, "watcher": Watcher,
}  # fmt: skip


def _kill_around_commits() -> None:
    from gorch.store.sql import SQLStore

    commit = SQLStore.commit

    def point(write: Write) -> str:
        if write.starts:
            return "start"
        if write.consume is not None:
            return "deliver"
        if write.instance.workflow == "delivery" and write.instance.status == "finished":
            return "end"
        return ""

    def commit_and_maybe_die(self: SQLStore, write: Write) -> int:
        where = point(write)
        if where:
            kill_here(f"{where}-before")
        version = commit(self, write)
        if where:
            kill_here(f"{where}-after")
        return version

    SQLStore.commit = commit_and_maybe_die  # type: ignore[method-assign]


def child_main(url: str) -> int:
    from gorch.store import SQLStore

    _kill_around_commits()
    store = SQLStore(url)
    worker = Worker(Engine(store, WORKFLOWS, lease=1.0))
    while worker.run_once():
        pass
    store.close()
    return 0


if __name__ == "__main__":
    sys.exit(child_main(sys.argv[1]))
