"""The SQL store's tables, declared with SQLModel, and how a database gets them.

Applications may query the tables with SQLModel or SQLAlchemy (``from gorch.store.sql import
InstanceRow``) or with plain SQL: ``state`` and ``data`` are JSON columns
(``json_extract(data, '$.status')`` on SQLite, ``data->>'status'`` on PostgreSQL).

Schema versions: the ``gorch_meta`` table records the schema version. :func:`create_schema`
creates missing tables, refuses a database written by a newer gorch, and applies the steps of
:data:`MIGRATIONS` to an older one, each in its own transaction (the documented equivalent of
an Alembic chain; gorch keeps its handful of tables without a migration tool's dependency).
Each step first takes a lock (SQLite's write lock, a PostgreSQL advisory lock), so that
processes opening a new database at once wait for each other rather than race to create it.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import JSON, Column, DateTime, Index, Text, TypeDecorator
from sqlalchemy.schema import CreateIndex, CreateTable
from sqlmodel import Field, SQLModel

from gorch.errors import StoreError

if TYPE_CHECKING:
    from gorch.store.sql._dialect import Dialect
    from gorch.store.sql._pool import Pool

__all__ = [
    "MIGRATIONS",
    "READ_VERSION",
    "SCHEMA_VERSION",
    "TABLES",
    "ChangeRow",
    "FeedRow",
    "HistoryRow",
    "InstanceRow",
    "JSONText",
    "KeyRow",
    "MessageRow",
    "MetaRow",
    "ScheduleRow",
    "TimerRow",
    "WatchRow",
    "create_schema",
    "emptying_postgresql",
]

SCHEMA_VERSION = 3
# version -> statements that bring a database from version-1 to it. Each step runs in one
# transaction and records its version; the statements are plain SQL both dialects run as they
# are (their types are the ones SQLModel gives the same columns in a new database).
MIGRATIONS: dict[int, list[str]] = {
    # 2: who did an operator's change, and why (HistoryRecord.actor, .reason); old rows: NULL.
    2: [
        "ALTER TABLE gorch_history ADD COLUMN actor VARCHAR",
        "ALTER TABLE gorch_history ADD COLUMN reason VARCHAR",
    ],
    # 3: workflows that work together: where an instance waits and who started it
    # (InstanceRecord.at_statements, .parent_id); the new tables (changes, watches, messages,
    # schedules) are created as for a new database.
    3: [
        "ALTER TABLE gorch_instances ADD COLUMN at_statements VARCHAR NOT NULL DEFAULT '[]'",
        "ALTER TABLE gorch_instances ADD COLUMN parent_id VARCHAR",
        "ALTER TABLE gorch_instances ADD COLUMN watched BOOLEAN NOT NULL DEFAULT false",
    ],
}
LATE = [
    "CREATE INDEX IF NOT EXISTS ix_gorch_instances_parent ON gorch_instances (parent_id)",
    # The feed's one row, starting after what the feed holds (WHERE true: SQLite's parser
    # needs it before ON CONFLICT in an INSERT ... SELECT).
    "INSERT INTO gorch_feed (id, seq) SELECT 1, coalesce(max(seq), 0) FROM gorch_changes "
    "WHERE true ON CONFLICT DO NOTHING",
]
"""What needs the migrations' columns and tables: made once they ran (new or old database),
each time a store opens it (every statement does nothing the second time)."""

READ_VERSION = "SELECT value FROM gorch_meta WHERE key = 'schema_version'"
"""The statement that reads the schema version a database records."""


class JSONText(TypeDecorator[Any]):
    """A JSON column: ``json`` on PostgreSQL (kept as written: ``jsonb`` would reorder the keys
    of user dicts), ``TEXT`` on SQLite (a column declared ``JSON`` there has numeric affinity
    and would turn the text ``1.0`` into a number). SQLModel/SQLAlchemy reads give parsed JSON
    on both; ``json_extract`` and ``->>`` work on both."""

    impl = JSON
    cache_ok = True

    def load_dialect_impl(self, dialect: Any) -> Any:
        return dialect.type_descriptor(Text() if dialect.name == "sqlite" else JSON())

    def process_bind_param(self, value: Any, dialect: Any) -> Any:
        if dialect.name == "sqlite" and value is not None:
            return orjson.dumps(value).decode()
        return value

    def process_result_value(self, value: Any, dialect: Any) -> Any:
        if dialect.name == "sqlite" and value is not None:
            return orjson.loads(value)
        return value


def _json() -> Any:
    return JSONText()


def _time() -> Any:
    return DateTime(timezone=True)


class InstanceRow(SQLModel, table=True):
    """Table ``gorch_instances``: one row per workflow instance."""

    __tablename__ = "gorch_instances"
    __table_args__ = (
        Index("ix_gorch_instances_runnable", "status", "next_attempt_at"),
        Index("ix_gorch_instances_created", "created_at", "id"),
        Index("ix_gorch_instances_workflow", "workflow", "created_at"),
    )

    id: str = Field(primary_key=True)
    workflow: str
    status: str
    state: Any = Field(sa_column=Column(_json(), nullable=False))
    data: Any = Field(sa_column=Column(_json(), nullable=False))
    version: int
    created_at: datetime = Field(sa_column=Column(_time(), nullable=False))
    updated_at: datetime = Field(sa_column=Column(_time(), nullable=False))
    lease_owner: str | None = None
    lease_expires: datetime | None = Field(default=None, sa_column=Column(_time()))
    attempts: int = 0
    next_attempt_at: datetime | None = Field(default=None, sa_column=Column(_time()))
    last_error: str | None = None
    # schema 3: the statements it waits at (a JSON list of names), and who started it
    at_statements: str = Field(default="[]", sa_column_kwargs={"server_default": "[]"})
    parent_id: str | None = None
    # schema 3: whether a watch (a Child's, an OnInstance case's) ever named it: its changes
    # then commit in a transaction that meets the watches (see _links.py)
    watched: bool = Field(default=False, sa_column_kwargs={"server_default": "false"})


class TimerRow(SQLModel, table=True):
    """Table ``gorch_timers``: one row per ``Timeout`` a thread waits on."""

    __tablename__ = "gorch_timers"
    __table_args__ = (Index("ix_gorch_timers_due", "due_at"),)

    instance_id: str = Field(primary_key=True)
    thread_id: str = Field(primary_key=True)
    name: str = Field(primary_key=True)
    pc: int = Field(primary_key=True)
    due_at: datetime = Field(sa_column=Column(_time(), nullable=False))


class HistoryRow(SQLModel, table=True):
    """Table ``gorch_history``: what happened to each instance, in order of
    ``(version, idx)``: the instance's version written by the commit that added the row, and
    the row's place within that commit.

    The key is the order, so an instance's history is one range of the primary key; on SQLite
    the table is clustered on it (``WITHOUT ROWID``), so a checkpoint writes one history page.
    """

    __tablename__ = "gorch_history"
    __table_args__ = {"sqlite_with_rowid": False}

    instance_id: str = Field(primary_key=True)
    version: int = Field(primary_key=True)
    idx: int = Field(primary_key=True)
    at: datetime = Field(sa_column=Column(_time(), nullable=False))
    kind: str
    name: str
    thread: str
    input: Any = Field(default=None, sa_column=Column(_json()))
    output: Any = Field(default=None, sa_column=Column(_json()))
    error: str | None = None
    actor: str | None = None  # schema 2: who made an operator's change
    reason: str | None = None  # schema 2: why


class KeyRow(SQLModel, table=True):
    """Table ``gorch_keys``: idempotency keys and the first answer given under each."""

    __tablename__ = "gorch_keys"

    instance_id: str = Field(primary_key=True)
    key: str = Field(primary_key=True)
    fingerprint: str
    output: Any = Field(sa_column=Column(_json(), nullable=False))
    at: datetime = Field(sa_column=Column(_time(), nullable=False))


class ChangeRow(SQLModel, table=True):
    """Table ``gorch_changes`` (schema 3): the change feed, one row per commit that changed
    an instance's status or the statements it waits at, numbered without gaps in the order
    of the commits."""

    __tablename__ = "gorch_changes"

    seq: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    at: datetime = Field(sa_column=Column(_time(), nullable=False))
    instance_id: str
    workflow: str
    status: str
    at_statements: str = "[]"


class FeedRow(SQLModel, table=True):
    """Table ``gorch_feed`` (schema 3): one row, the last number the change feed gave. A
    commit that appends to the feed adds one to it, so that it holds the row's lock to its
    end: numbers follow the order of the commits, without gaps, and are never given twice."""

    __tablename__ = "gorch_feed"

    id: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    seq: int = 0


class WatchRow(SQLModel, table=True):
    """Table ``gorch_watches`` (schema 3): a thread of ``instance_id`` waits for
    ``target_id`` to get somewhere (a ``Child``'s end, an ``OnInstance`` case)."""

    __tablename__ = "gorch_watches"
    __table_args__ = (Index("ix_gorch_watches_target", "target_id"),)

    instance_id: str = Field(primary_key=True)
    thread_id: str = Field(primary_key=True)
    name: str = Field(primary_key=True)
    pc: int = Field(primary_key=True)
    target_id: str
    until: str


class MessageRow(SQLModel, table=True):
    """Table ``gorch_messages`` (schema 3): a watch that was met, until the commit that
    delivers its event to ``instance_id`` deletes it."""

    __tablename__ = "gorch_messages"
    __table_args__ = (Index("ix_gorch_messages_at", "at"),)

    instance_id: str = Field(primary_key=True)
    thread_id: str = Field(primary_key=True)
    name: str = Field(primary_key=True)
    pc: int = Field(primary_key=True)
    target_id: str
    status: str
    at_statements: str = "[]"
    at: datetime = Field(sa_column=Column(_time(), nullable=False))


class ScheduleRow(SQLModel, table=True):
    """Table ``gorch_schedules`` (schema 3): one row per schedule (``Engine.schedule``)."""

    __tablename__ = "gorch_schedules"
    __table_args__ = (Index("ix_gorch_schedules_due", "paused", "next_at"),)

    name: str = Field(primary_key=True)
    workflow: str
    cron: str
    timezone: str
    data: Any = Field(default=None, sa_column=Column(_json()))
    catchup: bool = False
    paused: bool = False
    next_at: datetime = Field(sa_column=Column(_time(), nullable=False))
    last_tick: datetime | None = Field(default=None, sa_column=Column(_time()))
    created_at: datetime = Field(sa_column=Column(_time(), nullable=False))
    updated_at: datetime = Field(sa_column=Column(_time(), nullable=False))
    version: int = 1


class MetaRow(SQLModel, table=True):
    """Table ``gorch_meta``: the schema version."""

    __tablename__ = "gorch_meta"

    key: str = Field(primary_key=True)
    value: str


TABLES = [
    SQLModel.metadata.tables[name]
    for name in (
        "gorch_instances", "gorch_timers", "gorch_history", "gorch_keys", "gorch_changes",
        "gorch_feed", "gorch_watches", "gorch_messages", "gorch_schedules", "gorch_meta",
    )
]  # fmt: skip
"""gorch's tables, in the order they are created."""


def emptying_postgresql(truncate: bool = False) -> str:
    """The statement that empties gorch's tables of a PostgreSQL database, schema kept, for
    the tests and benchmarks that use one database again and again: ``DELETE`` (faster on
    small tables) or ``TRUNCATE`` (leaves no dead rows behind)."""
    names = [t.name for t in TABLES if t.name not in ("gorch_feed", "gorch_meta")]
    empty = (
        f"TRUNCATE {', '.join(names)}" if truncate else "; ".join(f"DELETE FROM {n}" for n in names)
    )
    return (
        f"DO $$ BEGIN IF to_regclass('gorch_feed') IS NOT NULL THEN {empty}; "
        "UPDATE gorch_feed SET seq = 0; END IF; END $$"
    )


def schema_statements(sa_dialect: Any) -> list[str]:
    """``CREATE TABLE`` and ``CREATE INDEX`` (``IF NOT EXISTS``) for every table, in the SQL of
    SQLAlchemy's ``sa_dialect``."""
    ddl = [str(CreateTable(t, if_not_exists=True).compile(dialect=sa_dialect)) for t in TABLES]
    ddl += [
        str(CreateIndex(ix, if_not_exists=True).compile(dialect=sa_dialect))
        for t in TABLES
        for ix in sorted(t.indexes, key=lambda ix: str(ix.name))
    ]
    return ddl


def create_schema(pool: Pool, dialect: Dialect, sa_dialect: Any, store: str) -> None:
    """Create what is missing and apply migrations: each step one transaction that first takes
    the dialect's schema lock, so that processes opening a new database at once wait for each
    other instead of racing to create it.

    Args:
        pool: the store's connections.
        dialect: the database (its schema lock).
        sa_dialect: SQLAlchemy's dialect, which writes the ``CREATE`` statements.
        store: how errors name the store.

    Raises:
        StoreError: the database holds a schema version newer than this gorch's.
    """
    ddl = schema_statements(sa_dialect)

    def create(cur: Any) -> int:
        dialect.lock_schema(cur)
        for stmt in ddl:
            cur.execute(stmt)
        found = cur.execute(READ_VERSION).fetchone()
        if found is not None:
            return int(found[0])
        cur.execute(
            f"INSERT INTO gorch_meta (key, value) VALUES ('schema_version', '{SCHEMA_VERSION}')"
        )
        return SCHEMA_VERSION

    version = pool.run(create, tx=True)
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"{store} holds gorch schema version {version}, newer than this gorch "
            f"understands ({SCHEMA_VERSION}); upgrade gorch"
        )
    for step in range(version + 1, SCHEMA_VERSION + 1):

        def migrate(cur: Any, step: int = step) -> None:
            dialect.lock_schema(cur)
            if int(cur.execute(READ_VERSION).fetchone()[0]) >= step:
                return  # another process got there first
            for stmt in MIGRATIONS.get(step, []):
                cur.execute(stmt)
            cur.execute(f"UPDATE gorch_meta SET value = '{step}' WHERE key = 'schema_version'")

        pool.run(migrate, tx=True)

    def late(cur: Any) -> None:
        dialect.lock_schema(cur)  # CREATE INDEX IF NOT EXISTS races itself on PostgreSQL
        for stmt in LATE:
            cur.execute(stmt)

    pool.run(late, tx=True)
