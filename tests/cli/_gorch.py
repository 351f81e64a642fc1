"""What every test of the ``gorch`` command shares: :class:`Gorch`, which runs the command in
this process (click's ``CliRunner``) on a SQLite file and reads the store back without the CLI,
and the workflows, payloads and orders the tests start from.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import _cli_workflows
from click.testing import CliRunner, Result

from gorch.cli import cli
from gorch.engine import Engine
from gorch.store.sql import SQLStore

ROOT = Path(__file__).resolve().parent.parent.parent
PIZZA = "examples.pizza:WORKFLOWS"
FLAKY = "_cli_workflows:WORKFLOWS"
BOTH = "_cli_workflows:ALL"

MARGHERITA = '{"pizza": {"name": "margherita"}}'
CART_EVENTS = ["AddToCart", "EmptyCart", "SubmitCart", "cart timed out"]


def flat(text: str) -> str:
    """Text with every run of whitespace made one space (rich wraps messages at 80 columns)."""
    return " ".join(text.split())


class Gorch:
    """``gorch --store DB --workflows WORKFLOWS ...`` in this process, and the store read back."""

    def __init__(self, db: Path | str, workflows: str = PIZZA) -> None:
        self.db = db
        self.workflows = workflows
        self.runner = CliRunner()

    def __call__(self, *args: str, input: str | None = None, code: int = 0) -> Result:
        argv = ["--store", str(self.db), "--workflows", self.workflows, *args]
        result = self.runner.invoke(cli, argv, input=input)
        # A crash is not a refusal: CliRunner turns any exception into exit status 1.
        assert result.exception is None or isinstance(result.exception, SystemExit), (
            result.exception,
            result.stderr,
        )
        assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
        if code == 1 and not ("--json" in args and result.stdout):  # --json: errors in the JSON
            assert result.stderr.startswith("error:") or "\nerror:" in result.stderr, result.stderr
        return result

    def json(self, *args: str, input: str | None = None) -> Any:
        return json.loads(self(*args, "--json", input=input).stdout)

    def fail(self, *args: str, input: str | None = None) -> str:
        """Run a command that must be refused (exit 1); its message, whitespace flattened."""
        result = self(*args, input=input, code=1)
        assert result.stdout == "" or "--json" not in args
        return flat(result.stderr)

    def usage(self, *args: str) -> str:
        """Run a command that is a usage mistake (exit 2, with the usage line); its message."""
        result = self(*args, code=2)
        assert result.stdout == "" and result.stderr.startswith("Usage: "), result.stderr
        text = flat(result.stderr)
        return text[text.index("Error: ") :]

    def init(self) -> Gorch:
        """Create the store (``gorch init``)."""
        assert self("init").stdout.startswith("created a gorch store at")
        return self

    # -- the store, read without the CLI ---------------------------------------------------

    @contextmanager
    def engine(self) -> Iterator[Engine]:
        store = SQLStore(f"sqlite:///{self.db}")
        try:
            yield Engine(store, _cli_workflows.ALL)
        finally:
            store.close()

    def get(self, id: str) -> Any:
        with self.engine() as e:
            return e.get(id)

    def snapshot(self, id: str) -> tuple[str, int, int]:
        """(status, version, history length): what a refusal must leave alone."""
        with self.engine() as e:
            inst = e.get(id)
            return inst.status.value, inst.version, len(e.history(id))

    def kinds(self, id: str) -> list[str]:
        with self.engine() as e:
            return [h.kind for h in e.history(id)]

    def ids(self) -> list[str]:
        with self.engine() as e:
            return [i.id for i in e.list(limit=1000).items]


def order(g: Gorch, id: str = "order-1", *events: tuple[str, str | None]) -> None:
    g("start", "pizza", "--id", id)
    for event, payload in events:
        g("send", id, event, *([payload] if payload is not None else []))


SUBMITTED = (("AddToCart", MARGHERITA), ("SubmitCart", None))
CONFIRMED = (*SUBMITTED, ("ConfirmOrder", '{"manager": "Giulia", "amount": 31.5}'))
