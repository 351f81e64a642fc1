"""``gorch delete-data ID``: erase an instance's personal data on request
(:meth:`Engine.delete_data <gorch.engine.Engine.delete_data>`).

It names the fields the workflow declares and asks before erasing (unless ``--yes``): an
erasure cannot be undone. ``--actor`` (default: the OS user) and ``--reason`` are kept in the
``data_deleted`` history entry.
"""

from __future__ import annotations

import click
from rich.markup import escape

from gorch import _views as views
from gorch.cli._group import Context, audit_options, cli, json_option, pass_ctx
from gorch.cli._output import Fail, confirm, emit_json, explain
from gorch.errors import GorchError
from gorch.interpreter import personal_data_of

__all__ = ["delete_data"]


@cli.command(name="delete-data")
@click.argument("id")
@audit_options
@click.option("--yes", "-y", is_flag=True, help="Erase without asking.")
@json_option
@pass_ctx
def delete_data(
    c: Context, id: str, actor: str | None, reason: str | None, yes: bool, as_json: bool
) -> None:
    """Erase the personal data of instance ID: the fields its workflow declares
    (personal_data), in its data, its history and its idempotency answers. The history keeps
    its entries, with the values replaced, and records the deletion. Cannot be undone: asks
    first, unless --yes."""
    engine = c.engine
    try:
        workflow = engine.workflow_of(id)
        fields = personal_data_of(engine.workflow_class(workflow))
    except GorchError as exc:
        explain(exc, engine, id)
    # (a class that declares none is refused by the engine, without a question)
    if fields and not yes:
        question = f"erase the personal data of {id} ({', '.join(fields)}) for good?"
        if not confirm(question):
            raise Fail("not erased: nothing changed")
    try:
        inst = engine.delete_data(id, actor=actor, reason=reason)
    except GorchError as exc:
        explain(exc, engine, id)
    if as_json:
        emit_json({"instance": views.instance(inst), "fields": list(fields)})
        return
    c.out.print(f"[green]erased[/] {escape(', '.join(fields))} of {escape(id)}")
