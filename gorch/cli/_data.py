"""Repairing an instance's data: ``gorch data ID`` shows it as JSON; ``--set`` replaces it,
``--patch`` changes part of it (a JSON merge patch, RFC 7396).

A change shows its diff first and asks before applying, as ``gorch goto`` does (unless
``--yes``); ``--dry-run`` only shows it. What is written is checked against the workflow's
class by the engine (:meth:`Engine.set_data <gorch.engine.Engine.set_data>`).
"""

from __future__ import annotations

import os
from typing import Any

import click
import orjson
from rich.markup import escape

from gorch import serde
from gorch.cli._group import Context, audit_options, cli, json_option, pass_ctx
from gorch.cli._output import Fail, Usage, confirm, emit_json, explain, read_json, stderr
from gorch.engine import DataPlan
from gorch.errors import GorchError

__all__ = ["data"]


@cli.command()
@click.argument("id")
@click.option(
    "--set", "replace", metavar="JSON|FILE", help="Replace the data (JSON, @file, a file or -)."
)
@click.option(
    "--patch", metavar="JSON", help="Change part of it: a JSON merge patch (or @file, -)."
)
@click.option("--dry-run", is_flag=True, help="Only show what would change.")
@click.option("--yes", "-y", is_flag=True, help="Apply without asking.")
@audit_options
@json_option
@pass_ctx
def data(
    c: Context,
    id: str,
    replace: str | None,
    patch: str | None,
    dry_run: bool,
    yes: bool,
    actor: str,
    reason: str | None,
    as_json: bool,
) -> None:
    """Show the data of instance ID as JSON, or repair it.

    \b
    gorch data order-1                                  # show it
    gorch data order-1 --patch '{"address": "Via Po 2"}' --reason "customer called"
    gorch data order-1 --set fixed.json --yes
    """
    engine = c.engine
    if _usage(replace, patch, dry_run, yes) == "show":
        _show(c, id, as_json)
        return
    new = _new_data(replace, patch)
    whole = replace is not None
    try:
        plan = engine.set_data(id, new, replace=whole, dry_run=True, actor=actor, reason=reason)
    except GorchError as exc:
        explain(exc, engine, id)
    if dry_run or not yes or not plan.changed:
        _print_plan(c, plan, as_json=as_json, dry_run=dry_run)
        if dry_run or not plan.changed:
            return
        if not confirm("apply?"):
            raise Fail("not applied: nothing changed")
    try:
        plan = engine.set_data(id, new, replace=whole, actor=actor, reason=reason)
    except GorchError as exc:
        explain(exc, engine, id)
    if as_json:
        emit_json(plan.to_json())
    else:
        c.out.print(f"[green]changed[/] the data of {escape(id)}")


def _usage(replace: str | None, patch: str | None, dry_run: bool, yes: bool) -> str:
    """``"show"`` or ``"change"``, as the options say; Usage for options that do not go."""
    if replace is not None and patch is not None:
        raise Usage("give --set or --patch, not both")
    if replace is None and patch is None:
        if dry_run or yes:
            raise Usage("--dry-run and --yes go with --set or --patch")
        return "show"
    return "change"


def _show(c: Context, id: str, as_json: bool) -> None:
    """Print the instance's data as JSON."""
    text = orjson.dumps(serde.unstructure(c.instance(id).data), option=orjson.OPT_INDENT_2)
    if as_json:
        click.echo(text.decode())
    else:
        c.out.print_json(text.decode())


def _new_data(replace: str | None, patch: str | None) -> Any:
    """The ``data`` argument of ``set_data``: the patch, or the whole replacement, as JSON."""
    if patch is not None:
        value = read_json(patch, "patch")
        if not isinstance(value, dict):
            shown = orjson.dumps(value).decode()
            raise Fail(
                f"a patch is a JSON object of the fields to change, not {shown}; to replace "
                "the whole data, use --set"
            )
        return value
    assert replace is not None
    return read_json(f"@{replace}" if os.path.isfile(replace) else replace, "data")


def _print_plan(c: Context, plan: DataPlan, *, as_json: bool, dry_run: bool) -> None:
    """The plan: its diff (coloured on a terminal), or with ``--json`` its JSON (a dry run's
    on stdout; before asking, on stderr, keeping stdout for the result)."""
    if as_json and (dry_run or not plan.changed):
        emit_json(plan.to_json())
        return
    show = stderr if as_json else c.out
    for line in plan.describe():
        style = "red" if line.startswith("-") else "green" if line.startswith("+") else ""
        if line.startswith(("---", "+++")):
            style = "bold"
        show.print(f"[{style}]{escape(line)}[/]" if style else escape(line))
