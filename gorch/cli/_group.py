"""The ``gorch`` group: its options, the :class:`Context` they set up, and what every command
shares of it.

The command modules (``_serving``, ``_instances``, ``_operators``, ``_definitions``,
``_schedules``, ``_together``, ...) each add their commands to :data:`cli`; the package
``__init__`` imports them all, so that a command exists once its concern's module is imported.
The engine is built only when a command first asks for it: ``gorch --help`` and a usage
mistake need no store.
"""

from __future__ import annotations

import getpass
from collections.abc import Callable
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.markup import escape

from gorch.cli._open import load_workflows, open_store
from gorch.cli._output import Fail, explain, status_markup
from gorch.engine import Engine, Instance, RunStatus
from gorch.errors import GorchError, did_you_mean, suggest

__all__ = [
    "STATUSES",
    "Context",
    "audit_options",
    "cli",
    "default_actor",
    "json_option",
    "pass_ctx",
]

STATUSES = [s.value for s in RunStatus]
"""Every instance status, as ``--status`` takes them."""


class SuggestingGroup(click.Group):
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
            store = open_store(self.store_url, create=self.create)[0]
            try:
                self._engine = Engine(store, workflows)
            except GorchError as exc:  # a class that breaks the rules: say which, no traceback
                store.close()
                raise Fail(f"the workflows of --workflows {self.workflows_path!r}: {exc}") from None
        return self._engine

    def close(self) -> None:
        if self._engine is not None:
            self._engine.store.close()

    def instance(self, id: str) -> Instance:
        """Instance ``id``; an unknown one is refused with the closest ids."""
        try:
            return self.engine.get(id)
        except GorchError as exc:
            explain(exc, self.engine, id)

    def print_waits(self, id: str) -> None:
        """Where instance ``id`` stands now, under what a command did to it."""
        inst = self.instance(id)
        if inst.status in (RunStatus.FINISHED, RunStatus.CANCELLED):
            self.out.print(f"  now {status_markup(inst.status)}")
            return
        if inst.status is RunStatus.FAILED:
            self.out.print(f"  now {status_markup(inst.status)}: {escape(inst.last_error or '')}")
        for w in self.engine.waits(inst):
            if w.events:
                doing = f"waits for {', '.join(w.events)}"
            elif w.status == "WaitingCondition":
                doing = "waits for a condition"
            else:
                doing = f"{w.status.lower()} (a worker runs it)"
            self.out.print(f"  {escape(w.thread)} at {escape(repr(w.at))}: {escape(doing)}")


json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
"""``--json``, which every command takes."""

_F = TypeVar("_F", bound=Callable[..., Any])


def default_actor() -> str:
    """Who acts when ``--actor`` is not given: the OS user, or ``"cli"`` if there is none
    (a container without a passwd entry)."""
    try:
        return getpass.getuser() or "cli"
    except Exception:  # OSError (3.13) or KeyError: no user name to be had
        return "cli"


def audit_options(f: _F) -> _F:
    """``--actor`` and ``--reason``, which every operator command takes: who acts and why,
    kept in each history entry the command writes."""
    f = click.option("--reason", help="Why (kept in the history with the actor).")(f)
    return click.option(
        "--actor",
        default=default_actor,
        show_default="your OS user name",
        help="Who acts (kept in the history).",
    )(f)


@click.group(cls=SuggestingGroup, context_settings={"help_option_names": ["-h", "--help"]})
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
"""Passes the group's :class:`Context` to a command as its first argument."""
