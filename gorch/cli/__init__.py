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

The package, by concern (a new command goes in the module of its concern, added to
:data:`cli` with ``@cli.command()``):

- ``_group``: the group, its options, the :class:`Context` every command is passed.
- ``_open``: opening the store and the workflows the options name.
- ``_output``: how the command talks (refusals, questions, JSON, times, statuses).
- ``_serving``: ``serve``, ``worker``.
- ``_instances``: ``init``, ``start``, ``send``, ``show``, ``list``, ``history``.
- ``_operators``: ``goto``, ``pause``, ``unpause``, ``cancel``, ``retry``.
- ``_definitions``: ``graph``.
- ``_why``: ``why``.
- ``_deploying``: ``check``, ``migrate``.
- ``_data``: ``data`` (show, ``--set``, ``--patch``).
- ``_erasing``: ``delete-data``.
- ``_schedules``: ``schedule``, ``schedules``, ``schedule-pause``, ``schedule-resume``,
  ``unschedule``.
- ``_together``: ``wait``, ``changes``.
"""

from __future__ import annotations

# Importing a concern's module adds its commands to the group. The names this module had before
# it became a package stay importable from it (``as``: an explicit re-export); its surface for
# ``import *`` stays ``cli`` and ``main``.
from gorch.cli._data import data as data
from gorch.cli._definitions import graph as graph
from gorch.cli._deploying import check as check
from gorch.cli._deploying import migrate as migrate
from gorch.cli._erasing import delete_data as delete_data
from gorch.cli._group import STATUSES as STATUSES
from gorch.cli._group import Context as Context
from gorch.cli._group import cli
from gorch.cli._group import json_option as json_option
from gorch.cli._group import pass_ctx as pass_ctx
from gorch.cli._instances import history as history
from gorch.cli._instances import init as init
from gorch.cli._instances import list_ as list_
from gorch.cli._instances import send as send
from gorch.cli._instances import show as show
from gorch.cli._instances import start as start
from gorch.cli._open import load_workflows as load_workflows
from gorch.cli._open import open_store as open_store
from gorch.cli._open import store_url as store_url
from gorch.cli._operators import cancel as cancel
from gorch.cli._operators import goto as goto
from gorch.cli._operators import pause as pause
from gorch.cli._operators import retry as retry
from gorch.cli._operators import unpause as unpause
from gorch.cli._output import Fail as Fail
from gorch.cli._output import Usage as Usage
from gorch.cli._output import emit_json as emit_json
from gorch.cli._output import read_json as read_json
from gorch.cli._schedules import schedule as schedule
from gorch.cli._schedules import schedules as schedules
from gorch.cli._schedules import unschedule as unschedule
from gorch.cli._serving import LOG_FORMAT as LOG_FORMAT
from gorch.cli._serving import log_config as log_config
from gorch.cli._serving import serve as serve
from gorch.cli._serving import worker as worker
from gorch.cli._together import changes as changes
from gorch.cli._together import wait as wait
from gorch.cli._why import why as why

__all__ = ["cli", "main"]


def main(argv: list[str] | None = None) -> None:
    """The ``gorch`` console script."""
    cli.main(args=argv, prog_name="gorch")
