"""The operators' repairs: move a thread (``goto``), and pause, unpause, cancel or retry
instances, by id or by a selection (``--workflow``, ``--status``, ``--at``, ``--older-than``).

``goto`` shows its dry-run plan and asks before applying. The four actions on named ids are
all or nothing: every instance is checked first (:meth:`Engine.refusal
<gorch.engine.Engine.refusal>`), and if any is refused none is changed, each refused id named
with why. A selection is one :meth:`Engine.bulk <gorch.engine.Engine.bulk>` call
(``_bulk.py``): it counts, asks (unless ``--yes``), and changes each match in its own commit
with a progress bar, reporting the ones that failed.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext
from datetime import timedelta
from typing import Any, NoReturn

import click
from rich.markup import escape
from rich.progress import Progress

from gorch import _views as views
from gorch.cli._bulk import Duration, Selection, run_bulk
from gorch.cli._group import STATUSES, Context, audit_options, cli, json_option, pass_ctx
from gorch.cli._output import (
    Fail,
    Usage,
    confirm,
    emit_json,
    explain,
    status_markup,
    stderr,
    why,
)
from gorch.engine import Engine, Instance
from gorch.errors import GorchError, InputError
from gorch.state import MAIN_THREAD

__all__ = ["OPERATORS", "cancel", "goto", "pause", "retry", "unpause"]


@cli.command()
@click.argument("id")
@click.argument("name")
@click.option("--thread", default=MAIN_THREAD, show_default=True)
@click.option("--dry-run", is_flag=True, help="Only show what would change.")
@click.option("--yes", "-y", is_flag=True, help="Apply without asking.")
@audit_options
@json_option
@pass_ctx
def goto(
    c: Context,
    id: str,
    name: str,
    thread: str,
    dry_run: bool,
    yes: bool,
    actor: str,
    reason: str | None,
    as_json: bool,
) -> None:
    """Move a thread of instance ID to the statement NAME (repair a stuck instance).

    Shows the dry run first and asks before applying, unless --yes.
    """
    engine = c.engine
    try:
        plan = engine.goto(id, name, thread, dry_run=True, actor=actor, reason=reason)
    except GorchError as exc:
        explain(exc, engine, id)
    if dry_run and as_json:
        emit_json(views.goto_plan(id, plan))
        return
    if dry_run or not yes:
        show = stderr if as_json else c.out  # with --json, stdout is for the result only
        for line in plan.describe():
            show.print(escape(line))
        if dry_run:
            return
        if not confirm("apply?"):
            raise Fail("not applied: nothing changed")
    try:
        plan = engine.goto(id, name, thread, actor=actor, reason=reason)
    except GorchError as exc:
        explain(exc, engine, id)
    if as_json:
        emit_json(views.goto_plan(id, plan))
    else:
        c.out.print(f"[green]moved[/] {escape(thread)} of {escape(id)} to {escape(repr(name))}")
        c.print_waits(id)


OPERATORS = {
    "pause": ("paused", "Pause instances: no event is accepted, no timer fires."),
    "unpause": ("unpaused", "Let paused instances go on."),
    "cancel": ("cancelled", "Cancel instances for good (their state is kept)."),
    "retry": ("retried", "Run failed instances' steps again now."),
}
"""Each action on many instances: the word for what it did, and its help."""


def _operator(action: str) -> click.Command:
    """The command for ``action`` (one of :data:`OPERATORS`), added to the group."""
    _, doc = OPERATORS[action]

    @cli.command(name=action, help=doc)
    @click.argument("ids", nargs=-1, metavar="[ID]...")
    @click.option("--workflow", "-w", help="With no ID: every instance of this workflow ...")
    @click.option(
        "--status", "-s", multiple=True, type=click.Choice(STATUSES), help="... in these statuses."
    )
    @click.option("--at", metavar="STATEMENT", help="... with a thread at this statement ...")
    @click.option(
        "--older-than", type=Duration(), metavar="DURATION",
        help="... not changed for this long (3d, 12h, 90m).",
    )  # fmt: skip
    @click.option("--dry-run", is_flag=True, help="With a selection: only count the matches.")
    @click.option("--yes", "-y", is_flag=True, help="Do not ask before acting on many.")
    @audit_options
    @json_option
    @pass_ctx
    def command(
        c: Context,
        ids: tuple[str, ...],
        workflow: str | None,
        status: tuple[str, ...],
        at: str | None,
        older_than: timedelta | None,
        dry_run: bool,
        yes: bool,
        actor: str,
        reason: str | None,
        as_json: bool,
    ) -> None:
        selection = Selection(workflow, status, at, older_than)
        by = {"actor": actor, "reason": reason}
        if _selected(action, ids, selection, dry_run):
            verb = OPERATORS[action][0]
            run_bulk(c, action, selection, by, dry_run=dry_run, yes=yes, as_json=as_json,
                     verb=verb)  # fmt: skip
            return
        _operate(c, action, tuple(dict.fromkeys(ids)), by, as_json=as_json)

    return command


def _selected(action: str, ids: tuple[str, ...], selection: Selection, dry_run: bool) -> bool:
    """Whether the command acts on a selection (else on the ``ids`` named)."""
    where = "--workflow, --status, --at or --older-than"
    if ids and selection:
        raise Usage(f"give instance ids, or {where} to select them, not both")
    if not ids and not selection:
        raise Usage(f"which instances? give ids, or {where} (gorch {action} -h)")
    if ids and dry_run:
        raise Usage("--dry-run counts a selection; with ids, use gorch show")
    return not ids


def _operate(
    c: Context, action: str, ids: tuple[str, ...], by: dict[str, str | None], *, as_json: bool
) -> None:
    """Do ``action`` to every instance of ``ids``, or to none if any would be refused."""
    engine = c.engine
    single = len(ids) == 1
    # Every instance is checked before any is changed: one refusal changes nothing.
    refused = _refusals(engine, action, ids)
    if refused:
        if single:
            raise Fail(refused[0][1])
        _refuse_all(action, ids, refused, as_json)
    progress = len(ids) > 1 and not as_json
    results, errors = _apply(engine, action, ids, by, single=single, progress=progress)
    _report(c, action, results, errors, single=single, as_json=as_json)


def _apply(
    engine: Engine,
    action: str,
    ids: tuple[str, ...],
    by: dict[str, str | None],
    *,
    single: bool,
    progress: bool,
) -> tuple[list[dict[str, Any]], list[str]]:
    """Do ``action`` to each instance: the summaries of those done, and why each other one was
    refused (it changed since it was checked); a lone instance's refusal is raised, as is a
    bad ``--actor``/``--reason`` (refused before the first instance is read)."""
    method: Callable[..., Instance] = getattr(engine, action)
    results: list[dict[str, Any]] = []
    errors: list[str] = []
    with Progress(console=stderr, transient=True) if progress else nullcontext() as bar:
        task = bar.add_task(f"{action}…", total=len(ids)) if bar else None
        for id in ids:
            try:
                results.append(views.summary(method(id, **by)))
            except InputError as exc:
                raise Fail(str(exc)) from None
            except GorchError as exc:
                if single:
                    explain(exc, engine, id)
                errors.append(f"{id}: {why(exc, engine, id)}")
            if bar and task is not None:
                bar.advance(task)
    return results, errors


def _report(
    c: Context,
    action: str,
    results: list[dict[str, Any]],
    errors: list[str],
    *,
    single: bool,
    as_json: bool,
) -> None:
    """Print what ``action`` did to each instance and what it could not do; exit status 1 if
    anything could not be done."""
    if as_json:
        emit_json(results[0] if single else {"done": results, "errors": errors})
    else:
        verb = OPERATORS[action][0]
        for r in results:
            c.out.print(f"{verb} [bold]{escape(r['id'])}[/]: {status_markup(r['status'])}")
        for e in errors:
            stderr.print(f"[red]error:[/] {escape(e)}")
    if errors:
        raise SystemExit(1)


def _refusals(engine: Engine, action: str, ids: tuple[str, ...]) -> list[tuple[str, str]]:
    """(id, why) of each instance that ``action`` would be refused for now."""
    out = []
    for id in ids:
        exc = engine.refusal(action, id)
        if exc is not None:
            out.append((id, why(exc, engine, id)))
    return out


def _refuse_all(
    action: str, ids: tuple[str, ...], refused: list[tuple[str, str]], as_json: bool
) -> NoReturn:
    """Say which instances ``action`` is refused for and why; nothing was changed."""
    n = len(refused)
    head = f"cannot {action} {n} of the {len(ids)} instances, so none was changed"
    if as_json:
        emit_json({"done": [], "errors": [f"{id}: {reason}" for id, reason in refused]})
        stderr.print(f"[red]error:[/] {escape(head)}")
    else:
        lines = [f"  {id}: {reason}" for id, reason in refused[:20]]
        if n > 20:
            lines.append(f"  ... and {n - 20} more")
        stderr.print(f"[red]error:[/] {escape(head)}:\n" + escape("\n".join(lines)))
    raise SystemExit(1)


pause = _operator("pause")
unpause = _operator("unpause")
cancel = _operator("cancel")
retry = _operator("retry")
