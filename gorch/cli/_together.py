"""Instances together: wait until one gets somewhere (``wait``), and read the change feed
(``changes``, or follow it with ``--follow``).

Both block on the engine's own awaiting calls (:meth:`Engine.wait <gorch.Engine.wait>`,
:meth:`Engine.changes <gorch.Engine.changes>` with ``wait``), which a commit wakes: no tight
poll. ``wait`` says where the instance stands when it gives up (exit status 3, apart from a
refusal's 1), so that a script can tell "not yet" from "no such instance".
"""

from __future__ import annotations

import shlex
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

import click
import orjson
from rich.markup import escape

from gorch import _views as views
from gorch import graph
from gorch.cli._group import STATUSES, Context, cli, json_option, pass_ctx
from gorch.cli._instances import print_instance
from gorch.cli._output import Fail, Usage, explain, status_markup, stderr
from gorch.engine import Change, ChangePage, Instance, RunStatus
from gorch.errors import GorchError, WaitTimeout, did_you_mean, suggest
from gorch.limits import MAX_PAGE

__all__ = ["TIMED_OUT", "TimedOut", "change_json", "changes", "wait"]

TIMED_OUT = 3
"""The exit status of a ``gorch wait`` that gave up: the instance did not get there in time."""

FOLLOW_WAIT = 10.0
"""Seconds each long poll of ``changes --follow`` waits for a change before asking again."""

WAITABLE = (graph.NodeKind.WAIT, graph.NodeKind.WAITFOR, graph.NodeKind.CHILD)
"""The statements a thread waits at (what ``wait --at`` takes)."""


class TimedOut(Fail):
    """``gorch wait`` gave up: printed as ``error: ...`` on stderr, exit status 3."""

    exit_code = TIMED_OUT


@cli.command()
@click.argument("id")
@click.option(
    "--until",
    "-u",
    multiple=True,
    type=click.Choice(STATUSES),
    help="Until it has this status (repeatable: any of them). Default: it ended (finished or "
    "cancelled).",
)
@click.option(
    "--at",
    metavar="STATEMENT",
    help="Until one of its threads waits at STATEMENT (a Wait, a WaitFor or a Child).",
)
@click.option(
    "--timeout",
    default=30.0,
    show_default=True,
    type=click.FloatRange(min=0),
    help="Seconds to wait at most (0: only look).",
)
@click.option("--data/--no-data", default=True, show_default=True, help="Show the data.")
@json_option
@pass_ctx
def wait(
    c: Context,
    id: str,
    until: tuple[str, ...],
    at: str | None,
    timeout: float,
    data: bool,
    as_json: bool,
) -> None:
    """Wait until instance ID ends (or has a --until status, or waits --at a statement), then
    show it as `gorch show` does.

    Exit status 3 if it did not get there within --timeout (the message says where it is).
    """
    if until and at is not None:
        raise Usage("--until and --at do not go together: wait for a status or for a statement")
    engine = c.engine
    inst = c.instance(id)  # an unknown id is refused with the closest ids
    if at is not None:
        _check_statement(c, inst, at)
    target: Any = at if at is not None else ({RunStatus(u) for u in until} or None)
    try:
        got = engine.wait(id, until=target, timeout=timeout)
    except WaitTimeout as exc:
        raise TimedOut(str(exc)) from None
    except GorchError as exc:
        explain(exc, engine, id)
    except KeyboardInterrupt:
        raise SystemExit(130) from None  # Ctrl-C: nothing to say, nothing changed
    if not got.children:  # the engine's wait reads the row; its children are a listing
        kids = engine.list(parent=id, limit=MAX_PAGE).items
        got.children = [k.id for k in sorted(kids, key=lambda k: (k.created_at, k.id))]
    print_instance(c, got, data, as_json)


def _check_statement(c: Context, inst: Instance, name: str) -> None:
    """Refuse a statement no thread of the instance's workflow can wait at (mistyped, or a
    step), with the closest names: waiting for it would only time out."""
    try:
        drawn = graph.build(inst.workflow, c.engine.workflow_class(inst.workflow), inst.data)
    except Exception:  # an unregistered workflow, data the definition cannot read: the engine says
        return
    names = [n.name for n in drawn.nodes.values() if n.kind in WAITABLE]
    if name in names:
        return
    node = drawn.nodes.get(drawn.by_name.get(name, ""))
    what = f"{name!r} is a {node.kind} of" if node is not None else f"no statement {name!r} in"
    hint = did_you_mean(suggest(name, names), joiner=" or ")
    raise Fail(
        f"{what} workflow {inst.workflow!r} that a thread waits at (a Wait, a WaitFor or a "
        f"Child).{hint} Its statements to wait at: {', '.join(map(repr, names)) or 'none'}"
    )


@cli.command()
@click.option(
    "--after",
    type=click.IntRange(min=0),
    metavar="SEQ",
    help="Only the changes after this one (the seq of the last change read; default: from the "
    "first).",
)
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, MAX_PAGE))
@click.option(
    "--follow", "-f", is_flag=True, help="Keep printing changes as they come, until Ctrl-C."
)
@json_option
@pass_ctx
def changes(c: Context, after: int | None, limit: int, follow: bool, as_json: bool) -> None:
    """The change feed: one line per commit that changed an instance's status or the
    statements it waits at, oldest first (seq, time, instance, workflow, status, where it
    waits). --json: one JSON object a line."""
    cursor = after or 0
    if not follow:
        page = _page(c, cursor, limit, 0.0)
        _print_changes(c, page.items, as_json)
        if len(page) == limit and not as_json:
            again = ["--after", str(page.next), "--limit", str(limit)]
            c.out.print(f"more: gorch changes {shlex.join(again)}", markup=False)
        elif not page.items and not as_json:
            stderr.print(f"no changes after {cursor}")
        return
    with _stopped_by_sigterm():
        try:
            while True:
                page = _page(c, cursor, limit, FOLLOW_WAIT)
                _print_changes(c, page.items, as_json)
                cursor = page.next
        except KeyboardInterrupt:  # Ctrl-C (or SIGTERM): the end of following, not an error
            if not as_json:
                stderr.print(f"stopped after change {cursor}: gorch changes --after {cursor}")


def _page(c: Context, after: int, limit: int, wait: float) -> ChangePage:
    """A page of the feed after ``after``, waiting up to ``wait`` seconds for its first."""
    try:
        return c.engine.changes(after=after, limit=limit, wait=wait)
    except GorchError as exc:
        explain(exc)


def _print_changes(c: Context, items: list[Change], as_json: bool) -> None:
    """Each change on a line of its own: JSON, or columns for a person."""
    for ch in items:
        if as_json:
            click.echo(orjson.dumps(change_json(ch)).decode())
            continue
        at = f"  at {escape(', '.join(map(repr, ch.at_statements)))}" if ch.at_statements else ""
        c.out.print(
            f"{ch.seq:>6}  {ch.at.strftime('%Y-%m-%d %H:%M:%S')}  [bold]{escape(ch.instance)}[/]"
            f"  {escape(ch.workflow)}  {status_markup(ch.status)}{at}"
        )


def change_json(ch: Change) -> dict[str, Any]:
    """A change as ``changes --json`` prints it."""
    return {
        "seq": ch.seq,
        "at": views.time(ch.at),
        "instance": ch.instance,
        "workflow": ch.workflow,
        "status": ch.status.value,
        "at_statements": list(ch.at_statements),
    }


@contextmanager
def _stopped_by_sigterm() -> Iterator[None]:
    """SIGTERM stops like Ctrl-C while inside (in the main thread; elsewhere, as it was)."""

    def stop(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    try:
        before = signal.signal(signal.SIGTERM, stop)
    except ValueError:  # not the main thread (a test's runner): leave SIGTERM alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, before)
