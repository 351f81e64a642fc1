"""Workflows and the child process of ``tests/test_transactions.py``.

The child (``python tests/_transaction_workflows.py URL``) runs one worker round on the
database at ``URL`` and SIGKILLs itself where ``GORCH_TEST_KILL`` says:

- ``flushed``: inside the transactional step, after its row was flushed to the database;
- ``commit``: after the step's checkpoint was written in its transaction, before ``COMMIT``;
- ``committed``: right after that ``COMMIT``;
- ``next``: in the step after the transactional one.
"""

from __future__ import annotations

import os
import signal
import sys
from dataclasses import dataclass
from typing import Any

from sqlmodel import Field, SQLModel

from gorch import Engine, S, Step, Worker, context

KILL_ENV = "GORCH_TEST_KILL"


class Reservation(SQLModel, table=True):
    """The row a transactional step writes: exactly one per instance, whatever happens."""

    __tablename__ = "test_reservations"
    id: int | None = Field(default=None, primary_key=True)
    instance: str = Field(index=True)
    seats: int = 0


def kill_here(point: str) -> None:
    if os.environ.get(KILL_ENV) == point:
        os.kill(os.getpid(), signal.SIGKILL)


@dataclass
class Booking:
    seats: int = 2
    confirmed: bool = False

    def definition(self) -> Any:
        return S(
            Step("reserve", self.reserve, transaction=True),
            Step("confirm", self.confirm),
        )

    def reserve(self) -> None:
        session = context().session
        session.add(Reservation(instance=context().instance_id, seats=self.seats))
        session.flush()
        kill_here("flushed")

    def confirm(self) -> None:
        kill_here("next")
        self.confirmed = True


WORKFLOWS: dict[str, type] = {"booking": Booking}


def child_main(url: str) -> int:
    from gorch.store import SQLStore
    from gorch.store.sql._transaction import StepTransaction

    finish = StepTransaction.finish

    def finish_and_maybe_die(self: StepTransaction) -> None:
        kill_here("commit")
        finish(self)
        kill_here("committed")

    StepTransaction.finish = finish_and_maybe_die  # type: ignore[method-assign]
    store = SQLStore(url)
    Worker(Engine(store, WORKFLOWS, lease=1.0)).run_once()
    store.close()
    return 0


if __name__ == "__main__":
    sys.exit(child_main(sys.argv[1]))
