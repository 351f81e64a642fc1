"""SQL stores: SQLite (the embedded default) and PostgreSQL (many processes and machines).

The tables are declared with SQLModel, so applications can query them with SQLModel or
SQLAlchemy (``from gorch.store.sql import InstanceRow``) or with plain SQL: ``state`` and
``data`` are JSON columns (``json_extract(data, '$.status')`` on SQLite, ``data->>'status'`` on
PostgreSQL). The engine's own statements are few, fixed and on every step's path, so they are
written once, spelt for each database, and run on the pooled DB-API connection: SQLAlchemy's
expression layer would add tens of microseconds to a checkpoint whose floor is one fsync.

SQLite runs in WAL mode with ``synchronous=FULL`` by default, so a committed step survives an
operating-system crash; pass ``synchronous="NORMAL"`` to trade that for ~10x faster commits
(a power loss may then lose the last commits, never corrupt the file). Writers take SQLite's
write lock with ``BEGIN IMMEDIATE`` and wait for it up to ``busy_timeout``.

PostgreSQL (psycopg 3) claims work with ``FOR UPDATE SKIP LOCKED``, so any number of workers
share it without double-processing, and wakes idle workers with LISTEN/NOTIFY.

Outages: connections live in a pool of gorch's own, which finds dead ones before use, drops
every connection older than one found dead, runs a call once more where nothing of it can have
been committed, and raises :class:`~gorch.errors.StoreUnavailableError` when the database
cannot be used (``outcome_unknown`` when a COMMIT was cut). The LISTEN connection is made
again after any error. Rows are read by a reader that never raises for one value that cannot be
read (``InstanceRecord.defects``).

The rooms of this package, one job each:

- ``_store.py``: :class:`SQLStore`, the store protocol on any of the databases below: one
  transaction per commit, the database's answers as gorch's errors.
- ``_dialect.py``: :class:`~gorch.store.sql._dialect.Dialect`, what differs between the
  databases, and the engine's statements, written once and spelt for each.
- ``_sqlite.py``, ``_postgres.py``: one dialect each: connection setup, time binding, errors,
  and their own ways (``BEGIN IMMEDIATE``; the one-statement checkpoint, LISTEN/NOTIFY).
- ``_pool.py``: the connections, and what a dead or unreachable database does to a call.
- ``_rows.py``: rows into records, a value that cannot be read failing only its own row.
- ``_tables.py``: the SQLModel tables, :data:`SCHEMA_VERSION`, :data:`MIGRATIONS` and the
  creation of the schema.

Where to touch: a new statement is written once in ``_dialect.py`` and run from ``_store.py``;
a schema change bumps ``SCHEMA_VERSION`` and adds its statements to ``MIGRATIONS``; another
database is a subclass of ``Dialect`` in a module of its own, named in
:func:`~gorch.store.sql._store.open_dialect`; another kind of store (not SQL) implements
:class:`gorch.store.base.Store` beside ``gorch/store/memory.py`` and runs the conformance
suite (``tests/test_store.py``) once named in ``STORE_KINDS`` and ``make_store`` of
``tests/conftest.py``.
"""

from __future__ import annotations

from gorch.errors import StoreError
from gorch.store.sql._dialect import NOTIFY_CHANNEL
from gorch.store.sql._postgres import PG_CONNECT_ARGS
from gorch.store.sql._store import PING_TIMEOUT, SQLStore
from gorch.store.sql._tables import (
    MIGRATIONS,
    SCHEMA_VERSION,
    HistoryRow,
    InstanceRow,
    JSONText,
    KeyRow,
    MetaRow,
    TimerRow,
)

__all__ = [
    "MIGRATIONS",
    "NOTIFY_CHANNEL",
    "PG_CONNECT_ARGS",
    "PING_TIMEOUT",
    "SCHEMA_VERSION",
    "HistoryRow",
    "InstanceRow",
    "JSONText",
    "KeyRow",
    "MetaRow",
    "SQLStore",
    "StoreError",
    "TimerRow",
]
