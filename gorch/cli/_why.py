"""``gorch why ID``: why an instance is where it is, in plain words (``--json``: the facts).

The text is :meth:`Engine.why <gorch.engine.Engine.why>`'s explanation as it is (``str()`` of
it), printed without markup, so that a statement or an error with brackets in it reads as
written; ``--json`` prints the same facts as :func:`gorch._views.why` makes them for every face.
"""

from __future__ import annotations

import click

from gorch import _views as views
from gorch.cli._group import Context, cli, json_option, pass_ctx
from gorch.cli._output import emit_json, explain
from gorch.errors import GorchError

__all__ = ["why"]


@cli.command()
@click.argument("id")
@json_option
@pass_ctx
def why(c: Context, id: str, as_json: bool) -> None:
    """Say why instance ID is where it is: its status and why, where each thread waits and
    since when, the events it would accept and how to send them, its timers, a WaitFor's
    condition, the last error, the next retry, the lease, and the commands to type next."""
    engine = c.engine
    try:
        explanation = engine.why(id)
    except GorchError as exc:
        explain(exc, engine, id)
    if as_json:
        emit_json(views.why(explanation))
    else:
        click.echo(str(explanation), nl=False)
