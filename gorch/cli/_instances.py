"""The instances: make the store (``init``), start one (``start``), send it events
(``send``), and read them (``show``, ``list``, ``history``).

Each command prints a table or a line for a person, or the same shapes as the HTTP API for a
script (``--json``, from :mod:`gorch._views`); a refusal says what was wrong, with the closest
instance ids for an unknown one.
"""

from __future__ import annotations

import shlex
from typing import Any

import click
import orjson
from rich.markup import escape
from rich.table import Table

from gorch import _views as views
from gorch import serde
from gorch.cli._group import STATUSES, Context, audit_options, cli, json_option, pass_ctx
from gorch.cli._open import open_store
from gorch.cli._output import (
    Fail,
    ago,
    cut,
    emit_json,
    explain,
    read_json,
    short,
    status_markup,
)
from gorch.engine import HistoryEntry, Instance, Page, RunningStep, RunStatus, ThreadWait
from gorch.errors import GorchError, suggest
from gorch.limits import MAX_PAGE
from gorch.store.base import TimerRecord

__all__ = ["history", "init", "list_", "print_instance", "send", "show", "start"]

LIVE = (RunStatus.RUNNING, RunStatus.WAITING, RunStatus.PAUSED)
"""The statuses in which an instance waits for something."""


@cli.command()
@json_option
@pass_ctx
def init(c: Context, as_json: bool) -> None:
    """Create the store: a new SQLite file, or gorch's tables in a PostgreSQL database.

    An existing gorch store is left as it is (an older schema is upgraded).
    """
    store, created = open_store(c.store_url, create=True)
    try:
        version = store.schema_version()
    finally:
        store.close()
    if as_json:
        emit_json({"store": c.store_url, "created": created, "schema_version": version})
    elif created:
        c.out.print(f"created a gorch store at {escape(repr(c.store_url))}")
    else:
        c.out.print(
            f"{escape(repr(c.store_url))} is a gorch store already (schema version {version}); "
            f"nothing changed"
        )


@cli.command()
@click.argument("workflow")
@click.option("--id", "id_", metavar="ID", help="The instance id (default: a random one).")
@click.option("--data", metavar="JSON|@FILE|-", help="The workflow data to start from.")
@json_option
@pass_ctx
def start(c: Context, workflow: str, id_: str | None, data: str | None, as_json: bool) -> None:
    """Start an instance of WORKFLOW and run it until it blocks."""
    engine = c.engine
    try:
        cls = engine.workflow_class(workflow)  # refuses an unknown name with "did you mean"
    except GorchError as exc:
        raise Fail(str(exc)) from None
    payload = read_json(data, "data")
    try:
        wf: Any = serde.structure_start(payload, cls)
    except Exception as exc:
        details = "; ".join(serde.error_details(exc))
        raise Fail(f"the data is not a valid {cls.__name__}: {details}") from None
    try:
        inst = engine.start(workflow, wf, id_)
    except GorchError as exc:
        explain(exc)
    if as_json:
        emit_json(views.instance(inst))
    else:
        c.out.print(f"started {workflow} [bold]{escape(inst.id)}[/]: {status_markup(inst.status)}")
        c.print_waits(inst.id)


@cli.command()
@click.argument("id")
@click.argument("event")
@click.argument("payload", required=False, metavar="[PAYLOAD]")
@click.option("--key", help="Idempotency key: a repeat with the same key applies nothing.")
@click.option("--thread", default="", help="The thread to deliver to (default: the one waiting).")
@audit_options
@json_option
@pass_ctx
def send(
    c: Context,
    id: str,
    event: str,
    payload: str | None,
    key: str | None,
    thread: str,
    actor: str | None,
    reason: str | None,
    as_json: bool,
) -> None:
    """Send EVENT with PAYLOAD (JSON, @file or - for stdin) to instance ID."""
    body = read_json(payload, "payload")
    engine = c.engine
    try:
        out = engine.send(id, event, body, key=key, thread=thread, actor=actor, reason=reason)
    except GorchError as exc:
        explain(exc, engine, id)
    if as_json:
        emit_json({"instance": id, "event": event, "output": out})
        return
    shown = f" -> {escape(orjson.dumps(out).decode())}" if out is not None else ""
    c.out.print(f"sent {escape(event)} to [bold]{escape(id)}[/]{shown}")
    c.print_waits(id)


@cli.command()
@click.argument("id")
@click.option("--data/--no-data", default=True, show_default=True, help="Show the data.")
@json_option
@pass_ctx
def show(c: Context, id: str, data: bool, as_json: bool) -> None:
    """Show instance ID: status, where every thread waits and since when, its parent and
    children, timers, data."""
    print_instance(c, c.instance(id), data, as_json)


def print_instance(c: Context, inst: Instance, data: bool = True, as_json: bool = False) -> None:
    """An instance as ``gorch show`` prints it (``gorch wait`` too, once it got there)."""
    waits = c.engine.waits(inst)
    if as_json:
        out = views.instance(inst)
        out["waits"] = [views.wait(w) for w in waits]
        out.setdefault("at_statements", list(inst.at_statements))
        out.setdefault("parent", inst.parent)
        out.setdefault("children", list(inst.children))
        emit_json(out)
        return
    c.out.print(
        f"[bold]{escape(inst.id)}[/] ({escape(inst.workflow)}) {status_markup(inst.status)}  "
        f"version {inst.version}, created {ago(inst.created_at)}, "
        f"updated {ago(inst.updated_at)}"
    )
    _print_family(c, inst)
    if inst.running:
        c.out.print(_running(inst.running))
    if inst.last_error:
        c.out.print(f"[red]last error[/] (attempt {inst.attempts}): {escape(inst.last_error)}")
    if inst.next_attempt_at:
        c.out.print(f"next attempt {ago(inst.next_attempt_at)}")
    if waits:
        c.out.print(_threads_table(waits))
    if inst.timers:
        c.out.print(_timers_table(inst.timers))
    if inst.at_statements:  # what `gorch wait --at` and the change feed go by
        c.out.print(f"waits at {escape(', '.join(map(repr, inst.at_statements)))}")
    _print_operators(c, inst.id)
    if data:
        c.out.print_json(orjson.dumps(serde.unstructure(inst.data)).decode())


def _print_family(c: Context, inst: Instance, most: int = 10) -> None:
    """The instance whose ``Child`` started it, and the ones its ``Child`` statements started
    (each with its workflow and status; past ``most``, how to list them all)."""
    if inst.parent:
        c.out.print(f"parent [bold]{escape(inst.parent)}[/]")
    if not inst.children:
        return
    kids = {k.id: k for k in c.engine.list(parent=inst.id, limit=MAX_PAGE)}
    shown = []
    for kid in inst.children[:most]:
        k = kids.get(kid)
        what = f" ({escape(k.workflow)}, {status_markup(k.status)})" if k else ""
        shown.append(f"[bold]{escape(kid)}[/]{what}")
    c.out.print(f"children {', '.join(shown)}")
    if len(inst.children) > most:
        more = ["list", "--parent", inst.id]
        c.out.print(
            f"  and {len(inst.children) - most} more: gorch {shlex.join(more)}", markup=False
        )


def _print_operators(c: Context, id: str, most: int = 3) -> None:
    """The latest operator actions of the last 100 history entries, newest first, with who
    made them and why (``gorch history`` lists them all)."""
    recent = c.engine.history(id, newest_first=True, limit=100)
    done = [h for h in recent if h.actor is not None or h.reason][:most]
    for h in done:
        what = f"{h.kind} {h.name!r}" if h.name else h.kind
        c.out.print(f"[bold]{escape(what)}[/] {ago(h.at)} {escape(_by(h))}")


def _threads_table(waits: list[ThreadWait]) -> Table:
    """Each thread of an instance: where it is, what it waits for, since when."""
    table = Table(title="threads", title_justify="left")
    for col in ("thread", "status", "at", "waits for", "since"):
        table.add_column(col)
    for w in waits:
        table.add_row(
            escape(w.thread),
            w.status,
            escape(w.at),
            escape(", ".join(w.events)) or ("a condition" if "Condition" in w.status else ""),
            ago(w.since),
        )
    return table


def _timers_table(timers: list[TimerRecord]) -> Table:
    """An instance's timers: whose, which, when due."""
    table = Table(title="timers", title_justify="left")
    for col in ("thread", "timer", "due"):
        table.add_column(col)
    for t in timers:
        table.add_row(escape(t.thread_id), escape(t.name), ago(t.due_at))
    return table


@cli.command(name="list")
@click.option("--workflow", "-w", help="Only instances of this workflow.")
@click.option(
    "--status", "-s", multiple=True, type=click.Choice(STATUSES), help="Only these statuses."
)
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, MAX_PAGE))
@click.option("--cursor", help="Continue after this cursor (printed below a full page).")
@click.option("--search", "-q", help="Only instances whose id contains this text.")
@click.option("--parent", metavar="ID", help="Only the children a Child of instance ID started.")
@json_option
@pass_ctx
def list_(
    c: Context,
    workflow: str | None,
    status: tuple[str, ...],
    limit: int,
    cursor: str | None,
    search: str | None,
    parent: str | None,
    as_json: bool,
) -> None:
    """List instances, newest first."""
    try:
        page = c.engine.list(
            workflow=workflow, status=status or None, limit=limit, cursor=cursor, search=search,
            parent=parent,
        )  # fmt: skip
    except GorchError as exc:
        explain(exc)
    if as_json:
        emit_json({"items": [views.summary(i) for i in page.items], "next": page.next})
        return
    if parent and not page.items:
        c.instance(parent)  # an unknown parent is refused, with the closest ids
    if workflow and workflow not in c.engine.workflows and not page.items:
        close = suggest(workflow, c.engine.workflows, n=1)
        if close:
            c.out.print(f"no instances of {workflow!r}. Did you mean {close[0]!r}?")
            return
    c.out.print(_instance_table(page))
    if page.next:
        again = [*_list_options(workflow, status, search, parent), "--limit", str(limit)]
        again += ["--cursor", page.next]
        c.out.print(f"more: gorch list {shlex.join(again)}", markup=False)


def _list_options(
    workflow: str | None, status: tuple[str, ...], search: str | None, parent: str | None
) -> list[str]:
    """The filters of a ``gorch list``, as its options: the next page keeps them."""
    return [*(["--workflow", workflow] if workflow else []),
            *(a for st in status for a in ("--status", st)),
            *(["--search", search] if search else []),
            *(["--parent", parent] if parent else [])]  # fmt: skip


def _instance_table(page: Page[Instance]) -> Table:
    """A page of instances as a table: one row each, with what it waits for or why it failed."""
    table = Table()
    for col in ("id", "workflow", "status", "waits for / last error", "updated"):
        table.add_column(col, overflow="fold")
    for i in page:
        table.add_row(
            escape(i.id), escape(i.workflow), status_markup(i.status), _doing(i), ago(i.updated_at)
        )
    return table


def _doing(i: Instance) -> str:
    """What a listed instance waits for, or why it failed (the last error of a failed one, or
    of one whose step is being retried)."""
    if i.load_error:
        return f"[red]{escape(cut(i.load_error, 120))}[/]"
    waits = ", ".join(i.waiting_for()) if i.status in LIVE else ""
    if i.last_error and (i.status is RunStatus.FAILED or not waits):
        return f"[red]{escape(cut(i.last_error, 120))}[/]"
    return escape(waits)


@cli.command()
@click.argument("id")
@click.option("--limit", type=click.IntRange(1, MAX_PAGE), help="At most this many (default: all).")
@click.option("--cursor", help="Continue after this cursor (printed below a page).")
@click.option("--newest-first", is_flag=True, help="The newest entry first.")
@json_option
@pass_ctx
def history(
    c: Context, id: str, limit: int | None, cursor: str | None, newest_first: bool, as_json: bool
) -> None:
    """Show the history of instance ID, oldest first (or --newest-first)."""
    try:
        page = c.engine.history(id, limit=limit, cursor=cursor, newest_first=newest_first)
    except GorchError as exc:
        explain(exc, c.engine, id)
    if as_json:
        emit_json({"items": [views.history(h) for h in page], "next": page.next})
        return
    table = Table()
    for col in ("#", "at", "kind", "name", "thread", "input", "output", "error", "operator"):
        table.add_column(col, overflow="fold")
    for h in page:
        table.add_row(
            str(h.seq),
            h.at.strftime("%Y-%m-%d %H:%M:%S"),
            h.kind,
            escape(h.name),
            escape(h.thread),
            escape(short(h.input)),
            escape(short(h.output)),
            _troubles(h),
            escape(_by(h)),
        )
    c.out.print(table)
    if page.next:
        again = [id, "--limit", str(limit), "--cursor", page.next]
        again += ["--newest-first"] * newest_first
        c.out.print(f"more: gorch history {shlex.join(again)}", markup=False)


def _by(h: HistoryEntry) -> str:
    """Who made an operator's change, and why: ``"by ana: customer called"`` (or ``""``)."""
    if h.actor is None:
        return f"why: {h.reason}" if h.reason else ""
    return f"by {h.actor}: {h.reason}" if h.reason else f"by {h.actor}"


def _troubles(h: HistoryEntry) -> str:
    """The entry's error, and a note on a stored entry that is odd (text that is not JSON)."""
    lines = [f"[red]{escape(h.error)}[/]"] if h.error else []
    if h.note:
        lines.append(f"[yellow]note: {escape(h.note)}[/]")
    return "\n".join(lines)


def _running(r: RunningStep) -> str:
    """One line: the step running now, its attempt, since when, its last heartbeat."""
    said = "" if r.details is None else f": {escape(cut(serde.dumps(r.details), 120))}"
    return (
        f"[cyan]running[/] {escape(r.statement)} (thread {escape(r.thread)}), attempt "
        f"{r.attempt}, since {ago(r.started_at)}; last heartbeat {ago(r.heartbeat_at)}{said}"
    )
