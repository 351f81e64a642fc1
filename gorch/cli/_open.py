"""Opening what the group options name: the store (``--store``) and the workflows
(``--workflows``).

Both refuse what a person most likely mistyped, rather than guess: a SQLite path that is not
there is not made into a new empty database, a database without gorch's tables is not given
them (unless ``--create``, or ``gorch init``), and a ``module:attribute`` that does not import
or name a dict of workflows says which part is wrong. SQLAlchemy is imported only here, when a
command opens the store, so that ``gorch --help`` does not pay for it.
"""

from __future__ import annotations

import importlib
import inspect
import os
import shlex
import sys
from collections.abc import Mapping
from typing import Any

import click

from gorch.cli._output import Fail, Usage
from gorch.errors import GorchError, did_you_mean, suggest

__all__ = ["load_workflows", "open_store", "store_url"]


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

        from gorch.store.sql import SQLStore
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
    except (GorchError, ValueError) as exc:  # a StoreError among them
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
