"""A workflow with personal data, for the tests of ``Engine.delete_data`` (tests/test_erase.py,
tests/cli/test_cli_erasing.py, the HTTP and console tests), and the child process the SIGKILL
test runs (``python _erase_workflows.py URL WHEN``)."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from gorch import For, On, S, Step, Wait
from gorch.store.base import HistoryRecord, KeyRecord, Write

NAME = "Ana Wojcik-Ferreira"
EMAIL = "ana.wojcik@example.org"
PHONE = "+48 601 234 567"
OLD_EMAIL = "ana.old@example.net"
SECRETS = (NAME, EMAIL, PHONE, OLD_EMAIL)
"""Every personal value the tests put in, none of which may be found after an erasure."""


@dataclass
class Contact:
    email: str
    phone: str = ""


@dataclass
class Details:
    name: str
    email: str
    phone: str = ""


@dataclass
class NewEmail:
    email: str


@dataclass
class Ticket:
    """A support ticket: the customer's details arrive by event, the answer echoes the name."""

    personal_data: ClassVar[tuple[str, ...]] = ("name", "contact.email", "contact.phone")

    name: str = ""
    contact: Contact | None = None
    topic: str = "billing"
    replies: int = 0
    closed: bool = False

    def definition(self) -> Any:
        return S(
            Wait("for details", On("Details", self.details)),
            Step("acknowledge", self.acknowledge),
            For(
                "until closed",
                not self.closed,
                Wait("for close", On("NewEmail", self.new_email), On("Close", self.close)),
            ),
            Step("wrap up", self.acknowledge),
        )

    def details(self, d: Details) -> str:
        self.name = d.name
        self.contact = Contact(d.email, d.phone)
        return f"Thank you, {d.name}; we write to {d.email}"

    def new_email(self, e: NewEmail) -> dict[str, str]:
        assert self.contact is not None
        old, self.contact.email = self.contact.email, e.email
        return {"email": e.email, "was": old}

    def close(self) -> str:
        self.closed = True
        return f"closed for {self.name}"

    def acknowledge(self) -> None:
        self.replies += 1


@dataclass
class Anonymous:
    """Declares no personal data."""

    note: str = ""
    seen: list[str] = field(default_factory=list)

    def definition(self) -> Any:
        return S(Wait("for close", On("Close", self.close)))

    def close(self) -> None:
        self.seen.append("closed")


WORKFLOWS = {"ticket": Ticket, "anonymous": Anonymous}


def fill(engine: Any, id: str = "t-1") -> None:
    """Start a ticket and send it every personal value: details (with an idempotency key), a
    new email (so the old one is only in history), as the tests expect."""
    engine.start("ticket", Ticket(), id=id)
    engine.send(id, "Details", {"name": NAME, "email": OLD_EMAIL, "phone": PHONE}, key="k1")
    engine.send(id, "NewEmail", {"email": EMAIL}, key="k2")


class _Killing(Sequence[HistoryRecord]):
    """History rows that SIGKILL the process when the second one is written."""

    def __init__(self, rows: Sequence[HistoryRecord]) -> None:
        self.rows = list(rows)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: Any) -> Any:
        return self.rows[i]

    def __iter__(self) -> Iterator[HistoryRecord]:
        for n, row in enumerate(self.rows):
            if n == 1:
                os.kill(os.getpid(), signal.SIGKILL)
            yield row


def child(url: str, when: str) -> None:
    """Erase ``t-1``'s personal data in a store that SIGKILLs this process ``mid`` the
    erasure's transaction or just ``after`` it committed."""
    from gorch import Engine
    from gorch.store.sql import SQLStore

    class KillingStore(SQLStore):
        def erase(
            self, write: Write, history: Sequence[HistoryRecord], keys: Sequence[KeyRecord]
        ) -> int:
            if when == "mid":
                return super().erase(write, _Killing(history), keys)
            version = super().erase(write, history, keys)
            os.kill(os.getpid(), signal.SIGKILL)
            return version  # pragma: no cover - the signal arrives first

    Engine(KillingStore(url), WORKFLOWS).delete_data("t-1", actor="dpo")


if __name__ == "__main__":
    child(sys.argv[1], sys.argv[2])
