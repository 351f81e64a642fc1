"""Small workflows for the HTTP tests (``tests/test_http.py`` and ``tests/test_http_fuzz.py``).

:class:`Flaky` has a step that raises until its ``name`` is put in :data:`FIXED` (so that an
instance fails, and an operator's retry then succeeds), and events with no role: one with a
typed payload, one whose handler takes any JSON, one with no payload at all. :class:`Gated` has a
first step that blocks until the test opens its gate, so that the instance is busy meanwhile.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from gorch import For, On, S, Step, Wait

FIXED: set[str] = set()
"""Names of :class:`Flaky` instances whose step succeeds (every other name's step raises)."""


@dataclass
class Note:
    text: str


@dataclass
class Flaky:
    """A step that fails until fixed, then takes notes until closed."""

    name: str = ""
    notes: list[str] = field(default_factory=list)
    extra: list[Any] = field(default_factory=list)
    ran: int = 0
    closed: bool = False

    def definition(self) -> Any:
        return S(
            Step("flaky step", self.attempt),
            For("open", not self.closed,
                Wait("for notes",
                    On("Note", self.note),
                    On("Anything", self.anything),
                    On("Close", self.close),
                ),
            ),
        )  # fmt: skip

    def attempt(self) -> None:
        if self.name not in FIXED:
            raise RuntimeError(f"{self.name!r} is not fixed yet")
        self.ran += 1

    def note(self, event: Note) -> list[str]:
        """Add a note; the answer is every note so far."""
        self.notes.append(event.text)
        return self.notes

    def anything(self, value):  # type: ignore[no-untyped-def]  # any JSON in, any JSON out
        self.extra.append(value)
        return value

    def close(self) -> None:
        """Stop taking notes (the instance finishes)."""
        self.closed = True


GATES: dict[str, tuple[threading.Event, threading.Event]] = {}
"""(entered, release) events of a :class:`Gated` instance's step, by its name."""


@dataclass
class Gated:
    """A first step that blocks until the test opens its gate (to make an instance busy)."""

    name: str = ""
    poked: bool = False

    def definition(self) -> Any:
        return S(
            Step("at the gate", self.wait_at_gate),
            Wait("for a poke", On("Poke", self.poke)),
        )

    def wait_at_gate(self) -> None:
        entered, release = GATES[self.name]
        entered.set()
        if not release.wait(20):
            raise RuntimeError("the gate was never opened")

    def poke(self) -> str:
        self.poked = True
        return "poked"
