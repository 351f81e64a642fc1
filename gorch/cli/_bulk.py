"""The operator commands on a selection (``gorch pause --workflow pizza --older-than 3d``):
one :meth:`Engine.bulk <gorch.engine.Engine.bulk>` call.

A dry run counts what matches first; the command then asks (unless ``--yes``) and applies,
with a progress bar. Each instance changes in its own commit, so an instance refused or
failing midway is reported and the others go on (exit status 1 if any failed); ``--dry-run``
only prints the count and a sample of the ids.
"""

from __future__ import annotations

import re
from contextlib import nullcontext
from datetime import timedelta
from typing import Any

import click
from rich.markup import escape
from rich.progress import Progress

from gorch.cli._group import Context
from gorch.cli._output import Fail, confirm, emit_json, stderr
from gorch.engine import BulkReport
from gorch.errors import GorchError

__all__ = ["Duration", "Selection", "run_bulk"]

_UNITS = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}
_PART = re.compile(r"(\d+(?:\.\d+)?)([wdhms])")


class Duration(click.ParamType):  # type: ignore[type-arg]
    """A duration such as ``3d``, ``12h``, ``1d12h``, ``90m`` or ``30s`` (``w``: weeks)."""

    name = "duration"

    def convert(self, value: Any, param: Any, ctx: Any) -> timedelta:
        if isinstance(value, timedelta):
            return value
        text = str(value).strip().lower()
        parts = _PART.findall(text)
        if not parts or "".join(n + u for n, u in parts) != text:
            self.fail(f"{value!r} is not a duration: write e.g. 3d, 12h, 1d12h, 90m or 30s")
        return timedelta(seconds=sum(float(n) * _UNITS[u] for n, u in parts))


class Selection:
    """The filter of a bulk command: ``--workflow``, ``--status``, ``--at``, ``--older-than``."""

    def __init__(
        self,
        workflow: str | None,
        status: tuple[str, ...],
        at: str | None,
        older_than: timedelta | None,
    ) -> None:
        self.workflow, self.status, self.at, self.older_than = workflow, status, at, older_than

    def __bool__(self) -> bool:
        return bool(self.workflow or self.status or self.at or self.older_than is not None)

    def args(self) -> dict[str, Any]:
        """The keywords of ``Engine.bulk`` for this filter."""
        return {
            "workflow": self.workflow,
            "status": list(self.status) or None,
            "at": self.at,
            "older_than": self.older_than,
        }


def run_bulk(
    c: Context,
    action: str,
    selection: Selection,
    by: dict[str, str | None],
    *,
    dry_run: bool,
    yes: bool,
    as_json: bool,
    verb: str,
) -> None:
    """Count what ``selection`` matches, ask, then apply ``action`` to each (see the module)."""
    engine = c.engine
    args = {**selection.args(), "actor": by["actor"], "reason": by["reason"]}
    try:
        dry = engine.bulk(action, dry_run=True, **args)
    except GorchError as exc:
        raise Fail(str(exc)) from None
    if dry_run or not dry.matched:
        _print_dry(c, dry, as_json)
        return
    many = "instance" if dry.matched == 1 else "instances"
    if not yes and not confirm(f"{action} {dry.matched} {many}?"):
        raise Fail("nothing changed")
    show = not as_json
    with Progress(console=stderr, transient=True) if show else nullcontext() as bar:
        task = bar.add_task(f"{action}…", total=dry.matched) if bar else None

        def progress(done: int) -> None:
            if bar and task is not None:
                bar.update(task, completed=done)

        try:
            report = engine.bulk(action, progress=progress, **args)
        except GorchError as exc:
            raise Fail(str(exc)) from None
    _print_report(c, report, as_json, verb)


def _print_dry(c: Context, dry: BulkReport, as_json: bool) -> None:
    if as_json:
        emit_json(dry.to_json())
    elif not dry.matched:
        c.out.print("no instance matches")
    else:
        shown = ", ".join(dry.sample) + (", ..." if dry.matched > len(dry.sample) else "")
        c.out.print(f"would {dry.action} {dry.matched} instance(s): {escape(shown)}")


def _print_report(c: Context, report: BulkReport, as_json: bool, verb: str) -> None:
    """What the run did; exit status 1 if an instance failed."""
    if as_json:
        emit_json(report.to_json())
    else:
        c.out.print(
            f"{verb} {report.changed} of {report.matched} instance(s)"
            + (f"; {report.failed} failed" if report.failed else "")
            + f" (bulk run {report.run})"
        )
        for f in report.failures:
            stderr.print(f"[red]error:[/] {escape(f.id)}: {escape(f.error)}")
        if report.failed > len(report.failures):
            stderr.print(f"... and {report.failed - len(report.failures)} more")
    if report.failed:
        raise SystemExit(1)
