"""How the ``gorch`` command talks: what it prints, how it says no, how it asks.

Every command module shares these, so that a refusal reads the same everywhere (``error: ...``
on stderr, exit status 1, a "did you mean" where one helps), a usage mistake the same (the
usage line and ``Error: ...``, exit status 2), and a time, a status or a JSON document look the
same in every table and on every script's stdin. The two error classes are click exceptions
(click turns them into the exit status and the message), not :class:`~gorch.errors.GorchError`
subclasses: they are how this face presents a refusal, not a refusal of the library's own.
"""

from __future__ import annotations

import sys
from datetime import datetime
from typing import TYPE_CHECKING, Any, NoReturn

import click
import orjson
from rich.console import Console
from rich.markup import escape

from gorch import clock
from gorch.errors import GorchError, NotFoundError, did_you_mean, suggest
from gorch.limits import MAX_PAGE

if TYPE_CHECKING:
    from gorch.engine import Engine

__all__ = [
    "Fail",
    "Usage",
    "ago",
    "confirm",
    "cut",
    "emit_json",
    "explain",
    "read_json",
    "short",
    "status_markup",
    "stderr",
    "why",
]

STYLES = {
    "running": "cyan",
    "waiting": "yellow",
    "finished": "green",
    "failed": "bold red",
    "paused": "magenta",
    "cancelled": "dim",
}
"""The colour of each instance status, wherever one is printed."""

stderr = Console(stderr=True, highlight=False, soft_wrap=True)
"""Refusals, questions, progress bars: what is not the command's result."""


class Fail(click.ClickException):
    """A refusal: printed as ``error: ...`` on stderr, exit status 1."""

    def show(self, file: Any = None) -> None:
        stderr.print(f"[bold red]error:[/] {escape(self.message)}")


class Usage(click.UsageError):
    """A usage mistake (options that do not go together, a value in the wrong form): printed
    with the usage line, exit status 2."""

    def __init__(self, message: str) -> None:
        super().__init__(message, click.get_current_context(silent=True))


def confirm(question: str) -> bool:
    """Ask on stderr; no answer (closed stdin) is no."""
    try:
        return click.confirm(question, default=False, err=True)
    except click.Abort:
        return False


def explain(exc: GorchError, engine: Engine | None = None, instance: str = "") -> NoReturn:
    """Raise the refusal with a "did you mean" where one helps."""
    raise Fail(why(exc, engine, instance))


def why(exc: GorchError, engine: Engine | None = None, instance: str = "") -> str:
    """The refusal's message, with the closest instance ids for an unknown one."""
    message = str(exc)  # CallbackNotFound and goto already suggest the closest names
    if isinstance(exc, NotFoundError) and engine is not None and instance:
        try:
            ids = [i.id for i in engine.list(limit=MAX_PAGE)]
        except GorchError:
            ids = []
        close = suggest(instance, ids)
        if close:
            message += "." + did_you_mean(close, joiner=" or ")
    return message


def read_json(text: str | None, what: str) -> Any:
    """JSON from the argument: inline text, ``@file``, or ``-`` for standard input."""
    if text is None:
        return None
    if text == "-":
        text = sys.stdin.read()
    elif text.startswith("@"):
        try:
            with open(text[1:], encoding="utf-8") as f:
                text = f.read()
        except OSError as exc:
            raise Fail(f"cannot read the {what} from {text[1:]!r}: {exc.strerror}") from None
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise Fail(
            f"the {what} is not valid JSON ({exc}); quote it for the shell, e.g. "
            f"'{{\"amount\": 31.5}}', or pass @file.json"
        ) from None


def emit_json(value: Any) -> None:
    """Print ``value`` as indented JSON on stdout (``--json``)."""
    click.echo(orjson.dumps(value, option=orjson.OPT_INDENT_2, default=str).decode())


def ago(at: datetime | None) -> str:
    """A time and how long ago (or how soon) it is: ``2025-01-31 12:00:00 (5m ago)``."""
    if at is None:
        return "-"
    seconds = (clock.now() - at).total_seconds()
    when = at.strftime("%Y-%m-%d %H:%M:%S")
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if abs(seconds) >= size:
            amount = f"{abs(seconds) / size:.0f}{unit}"
            return f"{when} ({amount} ago)" if seconds > 0 else f"{when} (in {amount})"
    return f"{when} ({abs(seconds):.0f}s {'ago' if seconds >= 0 else 'from now'})"


def status_markup(status: str) -> str:
    """An instance status in its colour (rich markup)."""
    return f"[{STYLES.get(status, 'white')}]{status}[/]"


def short(value: Any, width: int = 60) -> str:
    """A JSON value on one line, cut to ``width`` characters."""
    if value is None:
        return ""
    return cut(orjson.dumps(value).decode(), width)


def cut(text: str, width: int) -> str:
    """``text`` cut to ``width`` characters, with an ellipsis where it was cut."""
    return text if len(text) <= width else text[: width - 1] + "…"
