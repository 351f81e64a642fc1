"""``gorch``: the command line for people who run workflows.

Every command works against a store (``--store``, or ``GORCH_STORE``: a SQLite path or URL, or a
PostgreSQL URL) and the registered workflows (``--workflows module:attribute``, or
``GORCH_WORKFLOWS``: a dict of name to workflow class). Tables and colour where a person reads;
``--json`` on every command for scripts. Needs the ``cli`` extra: ``pip install "gorch[cli]"``.

Example::

    export GORCH_STORE=pizza.db GORCH_WORKFLOWS=examples.pizza:WORKFLOWS
    gorch list --status waiting
    gorch show order-1
    gorch send order-1 ConfirmOrder '{"manager": "Giulia", "amount": 31.5}'
    gorch goto order-1 "for a cook"        # shows the dry run, asks before applying
"""

from __future__ import annotations

import importlib
import inspect
import logging.config
import os
import shlex
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import nullcontext
from datetime import datetime
from typing import Any, NoReturn

import click
import orjson
from rich.console import Console
from rich.markup import escape
from rich.progress import Progress
from rich.table import Table
from rich.tree import Tree

from gorch import _views as views
from gorch import clock, serde
from gorch import graph as gorch_graph
from gorch.catalog import NO_PAYLOAD, describe
from gorch.engine import OPERATOR_STATUSES, Engine, HistoryEntry, Instance, RunStatus, Worker
from gorch.errors import GorchError, NotFoundError, did_you_mean, suggest
from gorch.limits import MAX_BODY, MAX_PAGE
from gorch.state import MAIN_THREAD

__all__ = ["cli", "main"]

STATUSES = [s.value for s in RunStatus]
_LIVE = (RunStatus.RUNNING, RunStatus.WAITING, RunStatus.PAUSED)
_STYLE = {
    "running": "cyan",
    "waiting": "yellow",
    "finished": "green",
    "failed": "bold red",
    "paused": "magenta",
    "cancelled": "dim",
}


_err = Console(stderr=True, highlight=False, soft_wrap=True)


class Fail(click.ClickException):
    """A refusal: printed as ``error: ...`` on stderr, exit status 1."""

    def show(self, file: Any = None) -> None:
        _err.print(f"[bold red]error:[/] {escape(self.message)}")


class Usage(click.UsageError):
    """A usage mistake (options that do not go together, a value in the wrong form): printed
    with the usage line, exit status 2."""

    def __init__(self, message: str) -> None:
        super().__init__(message, click.get_current_context(silent=True))


def _confirm(question: str) -> bool:
    """Ask on stderr; no answer (closed stdin) is no."""
    try:
        return click.confirm(question, default=False, err=True)
    except click.Abort:
        return False


class _Group(click.Group):
    """Suggests the closest command for a mistyped one."""

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        name = args[0] if args else ""
        if name and not name.startswith("-") and self.get_command(ctx, name) is None:
            close = suggest(name, self.list_commands(ctx), cutoff=0.5)
            hint = did_you_mean(close, joiner=" or ")
            ctx.fail(f"no command {name!r}.{hint} See 'gorch --help'.")
        return super().resolve_command(ctx, args)


class Context:
    """What the group options set up, built lazily (``--help`` needs no store)."""

    def __init__(self, store: str | None, workflows: str | None, create: bool = False) -> None:
        self.store_url = store
        self.workflows_path = workflows
        self.create = create
        self._engine: Engine | None = None
        self.out = Console(highlight=False, soft_wrap=True)

    @property
    def workflows(self) -> dict[str, type]:
        return load_workflows(self.workflows_path)

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            workflows = self.workflows
            self._engine = Engine(open_store(self.store_url, create=self.create)[0], workflows)
        return self._engine

    def close(self) -> None:
        if self._engine is not None:
            self._engine.store.close()


def store_url(text: str) -> str:
    """A store option as a URL: a bare path is a SQLite file."""
    return text if "://" in text else f"sqlite:///{text}"


def open_store(url: str | None, *, create: bool = False) -> tuple[Any, bool]:
    """The store at ``url`` and whether it was created now.

    Only an existing gorch store is opened, unless ``create``: a mistyped SQLite path must not
    become a new empty database, nor a database without gorch's tables one with them.
    """
    if not url:
        raise Usage(
            "no store: pass --store PATH_OR_URL or set GORCH_STORE (a SQLite file such as "
            "gorch.db, or postgresql://user@host/db)"
        )
    try:
        from sqlalchemy import inspect as sa_inspect
        from sqlalchemy.engine import make_url

        from gorch.store.sql import SQLStore, StoreError
    except ImportError as exc:  # pragma: no cover - the cli extra pulls in sql via "all"
        raise Fail(f'the SQL store needs the sql extra: pip install "gorch[sql]" ({exc})') from None
    full = store_url(url)
    make = f"gorch --store {shlex.quote(url)} init"
    try:
        parsed = make_url(full)
        path = parsed.database if parsed.get_backend_name() == "sqlite" else None
        if path and path != ":memory:" and not os.path.exists(path) and not create:
            raise Fail(
                f"no store at {url!r}: the file {path!r} does not exist. Check the path, or "
                f"create a new store with '{make}' (or --create)"
            )
        probe = SQLStore(full, create=False)  # connects only when asked
        try:
            found = sa_inspect(probe.sa_engine).has_table("gorch_meta")
        finally:
            probe.close()
        if not found and not create:
            raise Fail(
                f"not a gorch store: {url!r} has no gorch tables (gorch_meta, "
                f"gorch_instances, ...). Check the store, or add gorch's tables to it with "
                f"'{make}' (or --create)"
            )
        return SQLStore(full), not found  # creates what is missing, migrates an older schema
    except (StoreError, GorchError, ValueError) as exc:
        raise Fail(f"cannot open the store {url!r}: {exc}") from None
    except click.ClickException:
        raise
    except Exception as exc:  # a driver's own error: bad URL, refused connection
        raise Fail(f"cannot open the store {url!r}: {type(exc).__name__}: {exc}") from None


def load_workflows(path: str | None) -> dict[str, type]:
    """The ``module:attribute`` (a dict of name to workflow class, or a function returning
    one) as the registered workflows."""
    if not path:
        raise Usage(
            "no workflows: pass --workflows module:attribute or set GORCH_WORKFLOWS (the dict "
            "of name to workflow class, e.g. examples.pizza:WORKFLOWS)"
        )
    module_name, _, attr = path.partition(":")
    if not module_name or not attr:
        raise Usage(f"--workflows {path!r}: write it as module:attribute, e.g. myapp.flows:FLOWS")
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())  # as `python -m` does: the app's own modules
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise Fail(f"--workflows {path!r}: cannot import {module_name!r}: {exc}") from None
    try:
        value = getattr(module, attr)
    except AttributeError:
        names = [n for n in vars(module) if not n.startswith("_")]
        hint = did_you_mean(suggest(attr, names), joiner=" or ")
        raise Fail(f"--workflows {path!r}: {module_name} has no {attr!r}.{hint}") from None
    if inspect.isfunction(value):
        value = value()
    if not isinstance(value, Mapping) or not value:
        raise Fail(
            f"--workflows {path!r} must be a non-empty dict of name to workflow class, "
            f"not {type(value).__name__}"
        )
    return dict(value)


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
    click.echo(orjson.dumps(value, option=orjson.OPT_INDENT_2, default=str).decode())


def _ago(at: datetime | None) -> str:
    if at is None:
        return "-"
    seconds = (clock.now() - at).total_seconds()
    when = at.strftime("%Y-%m-%d %H:%M:%S")
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if abs(seconds) >= size:
            amount = f"{abs(seconds) / size:.0f}{unit}"
            return f"{when} ({amount} ago)" if seconds > 0 else f"{when} (in {amount})"
    return f"{when} ({abs(seconds):.0f}s {'ago' if seconds >= 0 else 'from now'})"


def _status(status: str) -> str:
    return f"[{_STYLE.get(status, 'white')}]{status}[/]"


def _explain(exc: GorchError, engine: Engine | None = None, instance: str = "") -> NoReturn:
    """Raise the refusal with a "did you mean" where one helps."""
    raise Fail(_why(exc, engine, instance))


def _why(exc: GorchError, engine: Engine | None = None, instance: str = "") -> str:
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


json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--store",
    envvar="GORCH_STORE",
    metavar="PATH_OR_URL",
    help="SQLite file or URL, or postgresql:// URL [env GORCH_STORE].",
)
@click.option(
    "--workflows",
    envvar="GORCH_WORKFLOWS",
    metavar="MODULE:ATTR",
    help="The registered workflows: a dict of name to class [env GORCH_WORKFLOWS].",
)
@click.option(
    "--create",
    is_flag=True,
    help="Create the store if it has no gorch tables yet (a new SQLite file, or an empty "
    "PostgreSQL database); without it, only an existing store is opened.",
)
@click.version_option(package_name="gorch", prog_name="gorch")
@click.pass_context
def cli(ctx: click.Context, store: str | None, workflows: str | None, create: bool) -> None:
    """Run and repair durable gorch workflows."""
    ctx.obj = Context(store, workflows, create)
    ctx.call_on_close(ctx.obj.close)


pass_ctx = click.make_pass_decorator(Context)


# -- the store ------------------------------------------------------------------------------


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


# -- serving --------------------------------------------------------------------------------


@cli.command()
@click.argument("app", required=False, metavar="[MODULE:APP]")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--tokens",
    envvar="GORCH_TOKENS",
    type=click.Path(dir_okay=False),
    help="TOML file of bearer tokens and their roles [env GORCH_TOKENS]; without it, auth is off.",
)
@click.option(
    "--worker/--no-worker",
    default=True,
    show_default=True,
    help="Run a worker in the server process (timers, retries).",
)
@click.option("--max-body", default=MAX_BODY, show_default=True, help="Largest request body.")
@pass_ctx
def serve(
    c: Context,
    app: str | None,
    host: str,
    port: int,
    tokens: str | None,
    worker: bool,
    max_body: int,
) -> None:
    """Serve the HTTP API with uvicorn.

    Without MODULE:APP, the API of --store and --workflows (docs at /docs). With it, that ASGI
    app (e.g. one made with gorch.http.create_app).
    """
    try:
        import uvicorn

        from gorch.http import Auth, AuthError, create_app
    except ImportError as exc:
        raise Fail(f'serving needs the http extra: pip install "gorch[http]" ({exc})') from None
    if app is not None:
        if ":" not in app:
            raise Usage(f"{app!r}: write the app as module:attribute, e.g. myshop.api:app")
        if os.getcwd() not in sys.path:
            sys.path.insert(0, os.getcwd())
        uvicorn.run(app, host=host, port=port, log_config=log_config())
        return
    try:
        auth = Auth.from_file(tokens) if tokens else None
    except AuthError as exc:
        raise Fail(str(exc)) from None
    # Before create_app, whose warnings (auth off) must carry the time and level as well.
    logging.config.dictConfig(log_config())
    asgi = create_app(c.engine, auth=auth, worker=worker, max_body=max_body)
    uvicorn.run(asgi, host=host, port=port, log_config=log_config())


LOG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


def log_config() -> dict[str, Any]:
    """uvicorn's logging, and gorch's own loggers, with the time and level on every line:
    ``2025-01-31 12:00:00,123 INFO    uvicorn.access: 127.0.0.1:5000 - "GET /health HTTP/1.1"
    200``."""
    access = '%(client_addr)s - "%(request_line)s" %(status_code)s'
    handler = {"class": "logging.StreamHandler", "stream": "ext://sys.stderr"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "default": {"()": "logging.Formatter", "fmt": LOG_FORMAT},
            "access": {
                "()": "uvicorn.logging.AccessFormatter",
                "fmt": LOG_FORMAT.replace("%(message)s", access),
                "use_colors": False,
            },
        },
        "handlers": {
            "default": {**handler, "formatter": "default"},
            "access": {**handler, "formatter": "access"},
        },
        "loggers": {
            "uvicorn": {"handlers": ["default"], "level": "INFO", "propagate": False},
            "uvicorn.error": {"level": "INFO"},
            "uvicorn.access": {"handlers": ["access"], "level": "INFO", "propagate": False},
            "gorch": {"handlers": ["default"], "level": "INFO", "propagate": False},
        },
    }


@cli.command()
@click.option("--batch", default=16, show_default=True, type=click.IntRange(1, MAX_PAGE))
@click.option("--poll", default=1.0, show_default=True, type=click.FloatRange(0.01, 3600))
@click.option("--once", is_flag=True, help="Do what is due now, then exit.")
@json_option
@pass_ctx
def worker(c: Context, batch: int, poll: float, once: bool, as_json: bool) -> None:
    """Fire due timers, resume runnable instances and retry failed steps (until Ctrl-C).

    The worker survives database outages: it logs the fault, backs off and goes on."""
    w = Worker(c.engine, batch=batch, poll=poll)
    if once:
        total = 0
        try:
            while done := w.run_once():
                total += done
        except GorchError as exc:  # the store cannot be reached: say so (without --once, the
            _explain(exc)  # worker logs it, backs off and goes on)
        if as_json:
            emit_json({"done": total})
        else:
            c.out.print(f"did {total} item{'s' if total != 1 else ''} of work")
        return
    c.out.print(f"worker on {c.store_url}: Ctrl-C to stop (the item in hand is finished)")
    w.run()


# -- instances ------------------------------------------------------------------------------


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
        _explain(exc)
    if as_json:
        emit_json(views.instance(inst))
    else:
        c.out.print(f"started {workflow} [bold]{escape(inst.id)}[/]: {_status(inst.status)}")
        _print_waits(c, inst.id)


@cli.command()
@click.argument("id")
@click.argument("event")
@click.argument("payload", required=False, metavar="[PAYLOAD]")
@click.option("--key", help="Idempotency key: a repeat with the same key applies nothing.")
@click.option("--thread", default="", help="The thread to deliver to (default: the one waiting).")
@json_option
@pass_ctx
def send(
    c: Context,
    id: str,
    event: str,
    payload: str | None,
    key: str | None,
    thread: str,
    as_json: bool,
) -> None:
    """Send EVENT with PAYLOAD (JSON, @file or - for stdin) to instance ID."""
    body = read_json(payload, "payload")
    engine = c.engine
    try:
        out = engine.send(id, event, body, key=key, thread=thread)
    except GorchError as exc:
        _explain(exc, engine, id)
    if as_json:
        emit_json({"instance": id, "event": event, "output": out})
        return
    shown = f" -> {escape(orjson.dumps(out).decode())}" if out is not None else ""
    c.out.print(f"sent {escape(event)} to [bold]{escape(id)}[/]{shown}")
    _print_waits(c, id)


def _get(c: Context, id: str) -> Instance:
    try:
        return c.engine.get(id)
    except GorchError as exc:
        _explain(exc, c.engine, id)


def _print_waits(c: Context, id: str) -> None:
    inst = _get(c, id)
    if inst.status in (RunStatus.FINISHED, RunStatus.CANCELLED):
        c.out.print(f"  now {_status(inst.status)}")
        return
    if inst.status is RunStatus.FAILED:
        c.out.print(f"  now {_status(inst.status)}: {escape(inst.last_error or '')}")
    for w in c.engine.waits(inst):
        if w.events:
            doing = f"waits for {', '.join(w.events)}"
        elif w.status == "WaitingCondition":
            doing = "waits for a condition"
        else:
            doing = f"{w.status.lower()} (a worker runs it)"
        c.out.print(f"  {escape(w.thread)} at {escape(repr(w.at))}: {escape(doing)}")


@cli.command()
@click.argument("id")
@click.option("--data/--no-data", default=True, show_default=True, help="Show the data.")
@json_option
@pass_ctx
def show(c: Context, id: str, data: bool, as_json: bool) -> None:
    """Show instance ID: status, where every thread waits and since when, timers, data."""
    inst = _get(c, id)
    waits = c.engine.waits(inst)
    if as_json:
        out = views.instance(inst)
        out["waits"] = [views.wait(w) for w in waits]
        emit_json(out)
        return
    c.out.print(
        f"[bold]{escape(inst.id)}[/] ({escape(inst.workflow)}) {_status(inst.status)}  "
        f"version {inst.version}, created {_ago(inst.created_at)}, "
        f"updated {_ago(inst.updated_at)}"
    )
    if inst.last_error:
        c.out.print(f"[red]last error[/] (attempt {inst.attempts}): {escape(inst.last_error)}")
    if inst.next_attempt_at:
        c.out.print(f"next attempt {_ago(inst.next_attempt_at)}")
    if waits:
        table = Table(title="threads", title_justify="left")
        for col in ("thread", "status", "at", "waits for", "since"):
            table.add_column(col)
        for w in waits:
            table.add_row(
                escape(w.thread),
                w.status,
                escape(w.at),
                escape(", ".join(w.events)) or ("a condition" if "Condition" in w.status else ""),
                _ago(w.since),
            )
        c.out.print(table)
    if inst.timers:
        table = Table(title="timers", title_justify="left")
        for col in ("thread", "timer", "due"):
            table.add_column(col)
        for t in inst.timers:
            table.add_row(escape(t.thread_id), escape(t.name), _ago(t.due_at))
        c.out.print(table)
    if data:
        c.out.print_json(orjson.dumps(serde.unstructure(inst.data)).decode())


@cli.command(name="list")
@click.option("--workflow", "-w", help="Only instances of this workflow.")
@click.option(
    "--status", "-s", multiple=True, type=click.Choice(STATUSES), help="Only these statuses."
)
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, MAX_PAGE))
@click.option("--cursor", help="Continue after this cursor (printed below a full page).")
@click.option("--search", "-q", help="Only instances whose id contains this text.")
@json_option
@pass_ctx
def list_(
    c: Context,
    workflow: str | None,
    status: tuple[str, ...],
    limit: int,
    cursor: str | None,
    search: str | None,
    as_json: bool,
) -> None:
    """List instances, newest first."""
    try:
        page = c.engine.list(
            workflow=workflow, status=status or None, limit=limit, cursor=cursor, search=search
        )
    except GorchError as exc:
        _explain(exc)
    if as_json:
        emit_json({"items": [views.summary(i) for i in page.items], "next": page.next})
        return
    if workflow and workflow not in c.engine.workflows and not page.items:
        close = suggest(workflow, c.engine.workflows, n=1)
        if close:
            c.out.print(f"no instances of {workflow!r}. Did you mean {close[0]!r}?")
            return
    table = Table()
    for col in ("id", "workflow", "status", "waits for / last error", "updated"):
        table.add_column(col, overflow="fold")
    for i in page:
        table.add_row(
            escape(i.id), escape(i.workflow), _status(i.status), _doing(i), _ago(i.updated_at)
        )
    c.out.print(table)
    if page.next:
        again = [*(["--workflow", workflow] if workflow else []),
                 *(a for st in status for a in ("--status", st)),
                 *(["--search", search] if search else []),
                 "--limit", str(limit), "--cursor", page.next]  # fmt: skip
        c.out.print(f"more: gorch list {shlex.join(again)}", markup=False)


def _doing(i: Instance) -> str:
    """What a listed instance waits for, or why it failed (the last error of a failed one, or
    of one whose step is being retried)."""
    if i.load_error:
        return f"[red]{escape(_cut(i.load_error, 120))}[/]"
    waits = ", ".join(i.waiting_for()) if i.status in _LIVE else ""
    if i.last_error and (i.status is RunStatus.FAILED or not waits):
        return f"[red]{escape(_cut(i.last_error, 120))}[/]"
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
        _explain(exc, c.engine, id)
    if as_json:
        emit_json({"items": [views.history(h) for h in page], "next": page.next})
        return
    table = Table()
    for col in ("#", "at", "kind", "name", "thread", "input", "output", "error"):
        table.add_column(col, overflow="fold")
    for h in page:
        table.add_row(
            str(h.seq),
            h.at.strftime("%Y-%m-%d %H:%M:%S"),
            h.kind,
            escape(h.name),
            escape(h.thread),
            escape(_short(h.input)),
            escape(_short(h.output)),
            _troubles(h),
        )
    c.out.print(table)
    if page.next:
        again = [id, "--limit", str(limit), "--cursor", page.next]
        again += ["--newest-first"] * newest_first
        c.out.print(f"more: gorch history {shlex.join(again)}", markup=False)


def _troubles(h: HistoryEntry) -> str:
    """The entry's error, and a note on a stored entry that is odd (text that is not JSON)."""
    lines = [f"[red]{escape(h.error)}[/]"] if h.error else []
    if h.note:
        lines.append(f"[yellow]note: {escape(h.note)}[/]")
    return "\n".join(lines)


def _short(value: Any, width: int = 60) -> str:
    if value is None:
        return ""
    return _cut(orjson.dumps(value).decode(), width)


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


@cli.command()
@click.argument("id")
@click.argument("name")
@click.option("--thread", default=MAIN_THREAD, show_default=True)
@click.option("--dry-run", is_flag=True, help="Only show what would change.")
@click.option("--yes", "-y", is_flag=True, help="Apply without asking.")
@json_option
@pass_ctx
def goto(
    c: Context, id: str, name: str, thread: str, dry_run: bool, yes: bool, as_json: bool
) -> None:
    """Move a thread of instance ID to the statement NAME (repair a stuck instance).

    Shows the dry run first and asks before applying, unless --yes.
    """
    engine = c.engine
    try:
        plan = engine.goto(id, name, thread, dry_run=True)
    except GorchError as exc:
        _explain(exc, engine, id)
    if dry_run and as_json:
        emit_json(views.goto_plan(id, plan))
        return
    if dry_run or not yes:
        show = _err if as_json else c.out  # with --json, stdout is for the result only
        for line in plan.describe():
            show.print(escape(line))
        if dry_run:
            return
        if not _confirm("apply?"):
            raise Fail("not applied: nothing changed")
    try:
        plan = engine.goto(id, name, thread)
    except GorchError as exc:
        _explain(exc, engine, id)
    if as_json:
        emit_json(views.goto_plan(id, plan))
    else:
        c.out.print(f"[green]moved[/] {escape(thread)} of {escape(id)} to {escape(repr(name))}")
        _print_waits(c, id)


def _operator(action: str, verb: str, doc: str) -> None:
    @cli.command(name=action, help=doc)
    @click.argument("ids", nargs=-1, metavar="[ID]...")
    @click.option("--workflow", "-w", help="With no ID: every instance of this workflow ...")
    @click.option(
        "--status", "-s", multiple=True, type=click.Choice(STATUSES), help="... in these statuses."
    )
    @click.option("--yes", "-y", is_flag=True, help="Do not ask before acting on many.")
    @json_option
    @pass_ctx
    def command(
        c: Context,
        ids: tuple[str, ...],
        workflow: str | None,
        status: tuple[str, ...],
        yes: bool,
        as_json: bool,
    ) -> None:
        if ids and (workflow or status):
            raise Usage("give instance ids, or --workflow/--status to select them, not both")
        if not ids and not (workflow or status):
            raise Usage(f"which instances? give ids, or --workflow/--status (gorch {action} -h)")
        engine = c.engine
        method: Callable[[str], Instance] = getattr(engine, action)
        selected = not ids
        if selected:
            ids = tuple(_select(engine, workflow, status))
            if not ids:
                c.out.print("no instance matches")
                return
        ids = tuple(dict.fromkeys(ids))  # each once, in the order given
        single = len(ids) == 1 and not selected
        # Every instance is checked before any is changed: one refusal changes nothing.
        refused = _refusals(engine, action, ids)
        if refused:
            if single:
                raise Fail(refused[0][1])
            _refuse_all(action, ids, refused, selected, as_json)
        if selected:
            many_word = "instance" if len(ids) == 1 else "instances"
            if not yes and not _confirm(f"{action} {len(ids)} {many_word}?"):
                raise Fail("nothing changed")
        results: list[dict[str, Any]] = []
        errors: list[str] = []
        show = len(ids) > 1 and not as_json
        with Progress(console=_err, transient=True) if show else nullcontext() as bar:
            task = bar.add_task(f"{action}…", total=len(ids)) if bar else None
            for id in ids:
                try:
                    results.append(views.summary(method(id)))
                except GorchError as exc:  # it changed since it was checked
                    if single:
                        _explain(exc, engine, id)
                    errors.append(f"{id}: {_why(exc, engine, id)}")
                if bar and task is not None:
                    bar.advance(task)
        if as_json:
            emit_json(results[0] if single else {"done": results, "errors": errors})
        else:
            for r in results:
                c.out.print(f"{verb} [bold]{escape(r['id'])}[/]: {_status(r['status'])}")
            for e in errors:
                _err.print(f"[red]error:[/] {escape(e)}")
        if errors:
            raise SystemExit(1)

    del command


def _refusals(engine: Engine, action: str, ids: tuple[str, ...]) -> list[tuple[str, str]]:
    """(id, why) of each instance that ``action`` would be refused for now."""
    out = []
    for id in ids:
        exc = engine.refusal(action, id)
        if exc is not None:
            out.append((id, _why(exc, engine, id)))
    return out


def _refuse_all(
    action: str,
    ids: tuple[str, ...],
    refused: list[tuple[str, str]],
    selected: bool,
    as_json: bool,
) -> NoReturn:
    """Say which instances ``action`` is refused for and why; nothing was changed."""
    n = len(refused)
    head = f"cannot {action} {n} of the {len(ids)} instances, so none was changed"
    *most, last = [s.value for s in OPERATOR_STATUSES[action]]
    fits = f"{', '.join(most)} or {last}" if most else last
    hint = f"; select only {fits} ones (--status)" if selected else ""
    if as_json:
        emit_json({"done": [], "errors": [f"{id}: {why}" for id, why in refused]})
        _err.print(f"[red]error:[/] {escape(head + hint)}")
    else:
        lines = [f"  {id}: {why}" for id, why in refused[:20]]
        if n > 20:
            lines.append(f"  ... and {n - 20} more")
        _err.print(f"[red]error:[/] {escape(head)}:\n" + escape("\n".join(lines)) + escape(hint))
    raise SystemExit(1)


def _select(engine: Engine, workflow: str | None, status: tuple[str, ...]) -> Iterator[str]:
    cursor = None
    while True:
        try:
            page = engine.list(workflow=workflow, status=status or None, limit=500, cursor=cursor)
        except GorchError as exc:
            _explain(exc)
        yield from (i.id for i in page.items)
        if not page.next:
            return
        cursor = page.next


_operator("pause", "paused", "Pause instances: no event is accepted, no timer fires.")
_operator("unpause", "unpaused", "Let paused instances go on.")
_operator("cancel", "cancelled", "Cancel instances for good (their state is kept).")
_operator("retry", "retried", "Run failed instances' steps again now.")


# -- definitions ----------------------------------------------------------------------------


@cli.command()
@click.argument("workflow")
@click.option(
    "--format", "fmt", type=click.Choice(["tree", *gorch_graph.FORMATS]), default="tree",
    show_default=True, help="tree: the statements in the terminal; mermaid, dot, svg: a diagram.",
)  # fmt: skip
@click.option("--instance", "instance_id", metavar="ID",
              help="Mark where instance ID stands now and what it already ran.")  # fmt: skip
@json_option
@pass_ctx
def graph(c: Context, workflow: str, fmt: str, instance_id: str | None, as_json: bool) -> None:
    """Draw WORKFLOW: a statement tree, or a Mermaid, Graphviz DOT or SVG diagram.

    \b
    gorch graph pizza --format mermaid > pizza.mmd
    gorch graph pizza --format svg --instance order-1 > order-1.svg
    """
    workflows = c.workflows
    if workflow not in workflows:
        hint = did_you_mean(suggest(workflow, workflows), joiner=" or ")
        raise Fail(f"no workflow {workflow!r} (registered: {', '.join(workflows)}).{hint}")
    try:
        info = describe(workflow, workflows[workflow])
    except GorchError as exc:
        raise Fail(str(exc)) from None
    if fmt == "tree":
        if instance_id is not None:
            raise Usage("--instance draws a diagram: add --format mermaid, dot or svg")
        tree = info.definition()
        if as_json:
            emit_json(_node_json(tree, info.events))
            return
        root = Tree(f"[bold]{escape(workflow)}[/] ({info.cls.__name__})")
        for kid in getattr(tree, "kids", ()):
            _add(root, kid, info.events)
        c.out.print(root)
        return
    if as_json:
        raise Usage("--json gives the statement tree; leave out --format, or leave out --json")
    marks = None
    if instance_id is None:
        diagram = gorch_graph.build(workflow, info.cls)
    else:
        inst = _get(c, instance_id)
        if inst.workflow != workflow:
            raise Fail(
                f"instance {instance_id!r} is a {inst.workflow!r}, not a {workflow!r}: "
                f"run gorch graph {shlex.quote(inst.workflow)} --instance "
                f"{shlex.quote(instance_id)}"
            )
        diagram = gorch_graph.build(workflow, info.cls, inst.data)  # its own timeouts
        marks = gorch_graph.position(diagram, inst, c.engine.history(instance_id))
    click.echo(gorch_graph.render(diagram, fmt, marks), nl=False)


def _label(node: Any, events: Mapping[str, Any]) -> str:
    kind = type(node).__name__
    name = getattr(node, "name", "")
    label = f"[cyan]{kind}[/] {escape(repr(name))}" if name else f"[cyan]{kind}[/]"
    ev = events.get(name) if kind in ("On", "Timeout") else None
    if ev is not None:
        if ev.timeout and ev.after is not None:
            label += f" after {gorch_graph.duration(ev.after)}"
        if ev.payload is not NO_PAYLOAD:
            label += f" payload {escape(getattr(ev.payload, '__name__', repr(ev.payload)))}"
        if ev.roles:
            label += f" [magenta]roles {escape(', '.join(ev.roles))}[/]"
    return label


def _add(parent: Tree, node: Any, events: Mapping[str, Any]) -> None:
    branch = parent.add(_label(node, events))
    for kid in getattr(node, "kids", ()):
        _add(branch, kid, events)


def _node_json(node: Any, events: Mapping[str, Any]) -> dict[str, Any]:
    kind = type(node).__name__
    out: dict[str, Any] = {"kind": kind}
    if getattr(node, "name", ""):
        out["name"] = node.name
    ev = events.get(node.name) if kind in ("On", "Timeout") else None
    if ev is not None:
        if ev.roles:
            out["roles"] = list(ev.roles)
        if ev.payload is not NO_PAYLOAD:
            out["payload"] = getattr(ev.payload, "__name__", repr(ev.payload))
        if ev.after is not None:
            out["after_seconds"] = ev.after.total_seconds()
    kids = getattr(node, "kids", ())
    if kids:
        out["body"] = [_node_json(k, events) for k in kids]
    return out


def main(argv: list[str] | None = None) -> None:
    """The ``gorch`` console script."""
    cli.main(args=argv, prog_name="gorch")


if __name__ == "__main__":  # pragma: no cover
    main()
