"""Schedules: ``schedule`` (make or replace one), ``schedules`` (list them),
``schedule-pause``, ``schedule-resume`` and ``unschedule`` (see docs/schedules.md).

Flat commands, as the others are (``pause``, ``delete-data``): each one call of the engine
(:meth:`Engine.schedule <gorch.engine.Engine.schedule>` and the rest), its refusal printed as
the engine words it. A running ``gorch worker`` starts the ticks.
"""

from __future__ import annotations

from typing import Any

import click
from rich.markup import escape
from rich.table import Table

from gorch import serde
from gorch.cli._group import Context, cli, json_option, pass_ctx
from gorch.cli._output import Fail, ago, emit_json, explain, read_json
from gorch.engine import Schedule
from gorch.errors import GorchError

__all__ = ["pause_schedule", "resume_schedule", "schedule", "schedules", "unschedule"]


@cli.command()
@click.argument("name")
@click.argument("workflow")
@click.argument("cron")
@click.option(
    "--timezone", "-z", default="UTC", show_default=True, help="The IANA time zone CRON is in."
)
@click.option("--catchup", is_flag=True, help="After an outage, start every missed tick.")
@click.option("--data", metavar="JSON|@FILE|-", help="The workflow data each tick starts from.")
@json_option
@pass_ctx
def schedule(
    c: Context,
    name: str,
    workflow: str,
    cron: str,
    timezone: str,
    catchup: bool,
    data: str | None,
    as_json: bool,
) -> None:
    """Start an instance of WORKFLOW at every tick of CRON, under the schedule NAME.

    CRON has five fields: minute hour day-of-month month day-of-week ('0 2 * * *' is 02:00
    every day). A schedule NAME that exists is replaced. Without --catchup, an outage starts
    only the latest tick it missed.
    """
    engine = c.engine
    obj = None
    if data is not None:
        try:
            cls = engine.workflow_class(workflow)
        except GorchError as exc:
            explain(exc)
        obj = _structure(read_json(data, "data"), cls)
    try:
        made = engine.schedule(name, workflow, cron, data=obj, timezone=timezone, catchup=catchup)
    except GorchError as exc:
        explain(exc)
    if as_json:
        emit_json(made.to_json())
        return
    c.out.print(
        f"scheduled [bold]{escape(made.name)}[/]: {escape(made.workflow)} at "
        f"{escape(repr(made.cron))} ({escape(made.timezone)}); next {ago(made.next_at)}"
    )


def _structure(value: Any, cls: type) -> Any:
    try:
        return serde.structure_start(value, cls)
    except Exception as exc:
        details = "; ".join(serde.error_details(exc))
        raise Fail(f"the data is not a valid {cls.__name__}: {details}") from None


@cli.command()
@json_option
@pass_ctx
def schedules(c: Context, as_json: bool) -> None:
    """List the schedules, by name."""
    try:
        found = c.engine.schedules()
    except GorchError as exc:
        explain(exc)
    if as_json:
        emit_json([s.to_json() for s in found])
        return
    if not found:
        c.out.print("no schedules (make one with: gorch schedule NAME WORKFLOW CRON)")
        return
    table = Table()
    for col in ("name", "workflow", "cron", "timezone", "next", "last tick", "catchup"):
        table.add_column(col, overflow="fold")
    for s in found:
        table.add_row(
            escape(s.name), escape(s.workflow), escape(s.cron), escape(s.timezone),
            "[yellow]paused[/]" if s.paused else ago(s.next_at), ago(s.last_tick),
            "yes" if s.catchup else "no",
        )  # fmt: skip
    c.out.print(table)


def _show(c: Context, s: Schedule, did: str, as_json: bool) -> None:
    if as_json:
        emit_json(s.to_json())
    else:
        when = "paused" if s.paused else f"next {ago(s.next_at)}"
        c.out.print(f"{did} [bold]{escape(s.name)}[/]: {when}")


@cli.command(name="schedule-pause")
@click.argument("name")
@json_option
@pass_ctx
def pause_schedule(c: Context, name: str, as_json: bool) -> None:
    """Stop schedule NAME starting instances."""
    try:
        s = c.engine.pause_schedule(name)
    except GorchError as exc:
        explain(exc)
    _show(c, s, "paused", as_json)


@cli.command(name="schedule-resume")
@click.argument("name")
@json_option
@pass_ctx
def resume_schedule(c: Context, name: str, as_json: bool) -> None:
    """Let paused schedule NAME start instances again, from its next tick (the ticks it
    missed while paused are skipped)."""
    try:
        s = c.engine.resume_schedule(name)
    except GorchError as exc:
        explain(exc)
    _show(c, s, "resumed", as_json)


@cli.command()
@click.argument("name")
@json_option
@pass_ctx
def unschedule(c: Context, name: str, as_json: bool) -> None:
    """Delete schedule NAME (the instances it started stay)."""
    try:
        c.engine.unschedule(name)
    except GorchError as exc:
        explain(exc)
    if as_json:
        emit_json({"name": name, "deleted": True})
    else:
        c.out.print(f"deleted schedule [bold]{escape(name)}[/]")
