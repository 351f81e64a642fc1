"""Deploying new code under running instances: ``gorch check`` (would the code about to run
still run every unfinished instance?) and ``gorch migrate`` (upgrade stored data to the
classes' ``data_version`` now).

Both exit with status 1 when they find a problem, so that a CI job can hold a deploy back::

    GORCH_WORKFLOWS=myapp.workflows:WORKFLOWS gorch check || exit 1

The recipe for deleting a statement safely is in docs/deploying.md.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import click
from rich.markup import escape

from gorch.cli._group import Context, audit_options, cli, json_option, pass_ctx
from gorch.cli._output import Fail, emit_json, explain
from gorch.engine import CheckProblem, CheckReport, MigrationReport
from gorch.errors import GorchError

__all__ = ["check", "migrate"]

R = TypeVar("R", CheckReport, MigrationReport)


@cli.command()
@click.option("--workflow", help="Only the instances of this workflow.")
@click.option("--sample", default=10, show_default=True, type=click.IntRange(min=1),
              help="How many ids each problem lists.")  # fmt: skip
@json_option
@pass_ctx
def check(c: Context, workflow: str | None, sample: int, as_json: bool) -> None:
    """Check every unfinished instance against the registered code.

    Each statement a thread stands at, each event it waits for and each Go body it runs must
    still exist as the same kind of statement (after the classes' renames), and the stored
    data must migrate and load into the class. Each problem is listed once with the number
    of instances and their first ids. Exit status 1 when there is a problem.

    \b
    gorch check                   # before a deploy, with the new code's --workflows
    gorch check --json | jq '.problems[].ids'
    """
    _report(c, lambda: c.engine.check(workflow=workflow, sample=sample), as_json, _print_check,
            lambda r: f"{len(r.problems)} problem(s): this code cannot run every unfinished "
            f"instance; do not deploy it yet (see docs/deploying.md)")  # fmt: skip


def _report(
    c: Context,
    make: Callable[[], R],
    as_json: bool,
    show: Callable[[Context, R], None],
    failure: Callable[[R], str],
) -> None:
    """Make the report, print it as JSON (``--json``) or for a person; then, if it is not ok,
    exit with status 1 saying ``failure(report)``."""
    try:
        report = make()
    except GorchError as exc:
        explain(exc)
    if as_json:
        emit_json(report.to_json())
    else:
        show(c, report)
    if not report.ok:
        raise Fail(failure(report))


def _print_check(c: Context, report: CheckReport) -> None:
    if report.ok:
        c.out.print(f"[green]ok[/]: the code runs all {report.checked} unfinished instance(s)")
        return
    c.out.print(
        f"[bold red]{len(report.problems)} problem(s)[/] in {report.checked} unfinished "
        f"instance(s):"
    )
    for p in report.problems:
        _print_problem(c, p)


def _print_problem(c: Context, p: CheckProblem) -> None:
    c.out.print(f"\n[bold]{escape(p.kind)}[/] {escape(repr(p.name))} in {escape(p.workflow)}")
    c.out.print(f"  {escape(p.message)}")
    if p.suggestions:
        c.out.print(f"  closest now: {escape(', '.join(map(repr, p.suggestions)))}")
    more = f" (+{p.count - len(p.ids)} more)" if p.count > len(p.ids) else ""
    c.out.print(f"  {p.count} instance(s): {escape(', '.join(p.ids))}{more}")


@cli.command()
@click.option("--workflow", help="Only the instances of this workflow.")
@click.option("--dry-run", is_flag=True, help="Run the migrations in memory and count.")
@audit_options
@json_option
@pass_ctx
def migrate(
    c: Context,
    workflow: str | None,
    dry_run: bool,
    actor: str,
    reason: str | None,
    as_json: bool,
) -> None:
    """Migrate stored data written by an older data_version of its class.

    Each instance is upgraded by its class's migrate() and written in a commit of its own,
    with a "migrated" history entry; one whose migration fails is left as it was and listed.
    Exit status 1 when a migration failed.
    """
    _report(c, lambda: c.engine.migrate(workflow, dry_run=dry_run, actor=actor, reason=reason),
            as_json, _print_migration,
            lambda r: f"{r.failed} instance(s) could not be migrated and were left as they "
            f"were; fix migrate() and run gorch migrate again")  # fmt: skip


def _print_migration(c: Context, report: MigrationReport) -> None:
    verb = "would migrate" if report.dry_run else "migrated"
    c.out.print(
        f"[green]{verb}[/] {report.migrated} of {report.checked} instance(s); "
        f"{report.current} current, {report.failed} failed"
    )
    for p in report.problems:
        _print_problem(c, p)
