"""SQL stores: SQLite (the embedded default) and PostgreSQL (many processes and machines).

The tables are declared with SQLModel, so applications can query them with SQLModel or
SQLAlchemy (``from gorch.store.sql import InstanceRow``) or with plain SQL: ``state`` and
``data`` are JSON columns (``json_extract(data, '$.status')`` on SQLite, ``data->>'status'`` on
PostgreSQL). The engine's own statements are few, fixed and on every step's path, so they are
written once per dialect and run on the pooled DB-API connection: SQLAlchemy's expression
layer would add tens of microseconds to a checkpoint whose floor is one fsync.

SQLite runs in WAL mode with ``synchronous=FULL`` by default, so a committed step survives an
operating-system crash; pass ``synchronous="NORMAL"`` to trade that for ~10x faster commits
(a power loss may then lose the last commits, never corrupt the file). Writers take SQLite's
write lock with ``BEGIN IMMEDIATE`` and wait for it up to ``busy_timeout``.

PostgreSQL (psycopg 3) claims work with ``FOR UPDATE SKIP LOCKED``, so any number of workers
share it without double-processing, and wakes idle workers with LISTEN/NOTIFY.

Outages: connections live in :mod:`gorch.store._pool`, which finds dead ones before use, drops
every connection older than one found dead, runs a call once more where nothing of it can have
been committed, and raises :class:`~gorch.errors.StoreUnavailableError` when the database
cannot be used (``outcome_unknown`` when a COMMIT was cut). The LISTEN connection is made
again after any error. Rows are read by :mod:`gorch.store._rows`, which never raises for one
value that cannot be read (``InstanceRecord.defects``).

Schema versions: the ``gorch_meta`` table records the schema version. Opening a store creates
missing tables, refuses a database written by a newer gorch, and applies the steps of
``MIGRATIONS`` to an older one, each in its own transaction (the documented equivalent of an
Alembic chain; gorch keeps its handful of tables without a migration tool's dependency). Each
step first takes a lock (SQLite's write lock, a PostgreSQL advisory lock), so that processes
opening a new database at once wait for each other rather than race to create it.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, Literal

import orjson
from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    Index,
    Text,
    TypeDecorator,
    create_engine,
    event,
)
from sqlalchemy.engine import Engine as SAEngine
from sqlalchemy.engine import make_url
from sqlalchemy.pool import StaticPool
from sqlalchemy.schema import CreateIndex, CreateTable
from sqlmodel import Field, SQLModel

from gorch.errors import (
    AlreadyExistsError,
    ConflictError,
    GorchError,
    StoreError,
    StoreUnavailableError,
)
from gorch.store._pool import UNREACHABLE, Pool
from gorch.store._rows import instance as _row
from gorch.store._rows import read_time as _read_time
from gorch.store._rows import safe_timestamptz
from gorch.store._rows import timer as _timer
from gorch.store.base import (
    HistoryRecord,
    InstanceRecord,
    KeyRecord,
    StatusCount,
    TimerRecord,
    Write,
)

__all__ = [
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "HistoryRow",
    "InstanceRow",
    "KeyRow",
    "MetaRow",
    "SQLStore",
    "StoreError",
    "TimerRow",
]

SCHEMA_VERSION = 1
# version -> statements that bring a database from version-1 to it (none yet: version 1 is the
# first). Each step runs in one transaction and records its version.
MIGRATIONS: dict[int, list[str]] = {}

NOTIFY_CHANNEL = "gorch_work"


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


class KeyRow(SQLModel, table=True):
    """Table ``gorch_keys``: idempotency keys and the first answer given under each."""

    __tablename__ = "gorch_keys"

    instance_id: str = Field(primary_key=True)
    key: str = Field(primary_key=True)
    fingerprint: str
    output: Any = Field(sa_column=Column(_json(), nullable=False))
    at: datetime = Field(sa_column=Column(_time(), nullable=False))


class MetaRow(SQLModel, table=True):
    """Table ``gorch_meta``: the schema version."""

    __tablename__ = "gorch_meta"

    key: str = Field(primary_key=True)
    value: str


_TABLES = [
    SQLModel.metadata.tables[name]
    for name in ("gorch_instances", "gorch_timers", "gorch_history", "gorch_keys", "gorch_meta")
]

_COLS = (
    "id, workflow, status, {state}, {data}, created_at, updated_at, version, lease_owner, "
    "lease_expires, attempts, next_attempt_at, last_error"
)


class _Dialect:
    """The engine's statements for one database."""

    def __init__(self, name: Literal["sqlite", "postgresql"]) -> None:
        self.name = name
        pg = name == "postgresql"
        j = "::json" if pg else ""
        txt = "::text" if pg else ""
        cols = _COLS.format(state=f"state{txt}", data=f"data{txt}")
        lock = " FOR UPDATE SKIP LOCKED" if pg else ""
        ph = "%s" if pg else "?"

        def q(sql: str) -> str:
            return sql.replace("?", ph)

        self.begin = "BEGIN" if pg else "BEGIN IMMEDIATE"
        self.insert = q(
            "INSERT INTO gorch_instances (id, workflow, status, state, data, created_at, "
            "updated_at, version, lease_owner, lease_expires, attempts, next_attempt_at, "
            f"last_error) VALUES (?, ?, ?, ?{j}, ?{j}, ?, ?, ?, ?, ?, ?, ?, ?)"
        )
        self.update = q(
            f"UPDATE gorch_instances SET status = ?, state = ?{j}, data = ?{j}, updated_at = ?, "
            "version = ?, lease_owner = ?, lease_expires = ?, attempts = ?, "
            "next_attempt_at = ?, last_error = ? WHERE id = ? AND version = ?"
        )
        self.history = q(
            "INSERT INTO gorch_history (instance_id, version, idx, at, kind, name, thread, "
            f"input, output, error) VALUES (?, ?, ?, ?, ?, ?, ?, ?{j}, ?{j}, ?)"
        )
        self.key = q(
            "INSERT INTO gorch_keys (instance_id, key, fingerprint, output, at) "
            f"VALUES (?, ?, ?, ?{j}, ?)"
        )
        # PostgreSQL: the common checkpoint (update + history rows) as one statement, so one
        # round trip and one implicit transaction; the history rows depend on the update, so a
        # failed version check writes nothing.
        self.update_with_history = (
            "WITH u AS (" + self.update.replace(" WHERE id", " WHERE id", 1) + " RETURNING id) "
            "INSERT INTO gorch_history (instance_id, version, idx, at, kind, name, thread, "
            "input, output, error) SELECT u.id, %s, h.idx, h.at, h.kind, h.name, h.thread, "
            "h.input::json, h.output::json, h.error FROM u, unnest(%s::timestamptz[], "
            "%s::text[], %s::text[], %s::text[], %s::text[], %s::text[], %s::text[]) "
            "WITH ORDINALITY AS h(at, kind, name, thread, input, output, error, idx)"
        )
        self.del_timers = q("DELETE FROM gorch_timers WHERE instance_id = ?")
        self.add_timer = q(
            "INSERT INTO gorch_timers (instance_id, thread_id, name, pc, due_at) "
            "VALUES (?, ?, ?, ?, ?)"
        )
        self.get = q(f"SELECT {cols} FROM gorch_instances WHERE id = ?")
        self.get_key = q(
            f"SELECT instance_id, key, fingerprint, output{txt}, at FROM gorch_keys "
            "WHERE instance_id = ? AND key = ?"
        )
        # An instance's history is one range of the primary key (instance_id, version, idx):
        # a page starts at a place in it (``version >= ?`` bounds the range) rather than
        # counting rows; the count is read only for the first newest-first page, in the same
        # statement (one snapshot), to number its rows.
        self.history_of = q(
            f"SELECT instance_id, at, kind, name, thread, input{txt}, output{txt}, error, "
            "version, idx{count} FROM gorch_history WHERE instance_id = ?"
        )
        self.history_count = q(", (SELECT count(*) FROM gorch_history WHERE instance_id = ?)")
        self.history_after = q(" AND version >= ? AND (version > ? OR idx > ?)")
        self.history_before = q(" AND version <= ? AND (version < ? OR idx < ?)")
        tcols = "instance_id, thread_id, name, pc, due_at"
        self.timers_of = q(
            f"SELECT {tcols} FROM gorch_timers WHERE instance_id = ? ORDER BY due_at"
        )
        self.all_timers = f"SELECT {tcols} FROM gorch_timers ORDER BY due_at, instance_id"
        free = "(lease_expires IS NULL OR lease_expires < ?)"
        # claim(..., workflows=[...]): one parameter holds the names, so one statement text
        # serves any number of them (an array on PostgreSQL, a JSON array on SQLite).
        among = "= ANY(%s)" if pg else "IN (SELECT value FROM json_each(?))"

        def claim(only: str) -> str:
            return q(
                "UPDATE gorch_instances SET lease_owner = ?, lease_expires = ?, "
                "version = version + 1 WHERE id IN (SELECT id FROM gorch_instances WHERE "
                f"status = 'running' AND {free} AND (next_attempt_at IS NULL OR "
                f"next_attempt_at <= ?){only} ORDER BY updated_at LIMIT ?{lock}) "
                f"RETURNING {cols}"
            )

        self.claim = claim("")
        self.claim_among = claim(f" AND workflow {among}")
        # Driven from the due timers, joined to instances that can take them now, so that
        # timers of paused or busy instances never hide claimable ones.
        lock_i = " FOR UPDATE OF i SKIP LOCKED" if pg else ""

        def claim_timers(only: str) -> str:
            return q(
                "UPDATE gorch_instances SET lease_owner = ?, lease_expires = ?, "
                "version = version + 1 WHERE id IN (SELECT i.id FROM gorch_timers t JOIN "
                "gorch_instances i ON i.id = t.instance_id WHERE t.due_at <= ? AND "
                "i.status IN ('waiting', 'running') AND (i.lease_expires IS NULL OR "
                f"i.lease_expires < ?){only} ORDER BY t.due_at LIMIT ?{lock_i}) "
                f"RETURNING {cols}"
            )

        self.claim_timers = claim_timers("")
        self.claim_timers_among = claim_timers(f" AND i.workflow {among}")
        self.ping = "SELECT 1" if pg else "SELECT 1 FROM sqlite_master LIMIT 1"
        self.due_timers = q(
            f"SELECT {tcols} FROM gorch_timers WHERE instance_id = ? AND due_at <= ? "
            "ORDER BY due_at LIMIT 1"
        )
        self.unlease = q(
            "UPDATE gorch_instances SET lease_owner = NULL, lease_expires = NULL "
            "WHERE id = ? AND lease_owner = ?"
        )
        self.release = q(
            "UPDATE gorch_instances SET lease_owner = NULL, lease_expires = NULL "
            "WHERE id = ? AND lease_owner = ? AND version = ?"
        )
        self.delete_timer = q(
            "DELETE FROM gorch_timers WHERE instance_id = ? AND thread_id = ? AND name = ? "
            "AND pc = ?"
        )
        self.counts = q(
            "SELECT workflow, status, count(*), sum(CASE WHEN (lease_expires IS NULL OR "
            "lease_expires < ?) AND ((status = 'running' AND coalesce(next_attempt_at, "
            "updated_at) <= ?) OR (status IN ('waiting', 'running') AND EXISTS (SELECT 1 FROM "
            "gorch_timers t WHERE t.instance_id = i.id AND t.due_at <= ?))) THEN 1 ELSE 0 END) "
            "FROM gorch_instances i GROUP BY workflow, status ORDER BY workflow, status"
        )
        self.list_base = f"SELECT {cols} FROM gorch_instances"
        self.id_contains = f"strpos(id, {ph}) > 0" if pg else f"instr(id, {ph}) > 0"
        self.ph = ph


def _sqlite_time(at: datetime | None) -> str | None:
    # SQLAlchemy's own SQLite storage format (naive UTC), fixed width so text compares as time.
    if at is None:
        return None
    if at.tzinfo is not UTC:
        at = at.astimezone(UTC)
    return at.replace(tzinfo=None).isoformat(" ", "microseconds")


class SQLStore:
    """A store on SQLite or PostgreSQL.

    Args:
        url: a SQLAlchemy URL: ``sqlite:///path/to/gorch.db`` (created if missing) or
            ``postgresql://user:pass@host:port/db`` (psycopg 3 is used either way).
        synchronous: SQLite only: ``"FULL"`` (default; durable against an OS crash) or
            ``"NORMAL"`` (faster; a power loss may lose the last commits).
        busy_timeout: seconds a writer waits for SQLite's write lock (or any call for a
            connection from the pool) before failing with ``StoreUnavailableError``.
        pool_size: connections kept open (PostgreSQL; SQLite files too).
        create: create missing tables and apply migrations (default True).

    Raises:
        StoreError: the URL is not one of a database gorch can use, or the database was
            written by a newer gorch.
        StoreUnavailableError: the database cannot be reached (here and from every method).

    A PostgreSQL URL may set libpq's ``connect_timeout`` and ``keepalives*`` parameters
    (``?connect_timeout=10``); unless it does, :data:`PG_CONNECT_ARGS` apply.
    """

    def __init__(
        self,
        url: str,
        *,
        synchronous: Literal["FULL", "NORMAL"] = "FULL",
        busy_timeout: float = 30.0,
        pool_size: int = 10,
        create: bool = True,
    ) -> None:
        if synchronous not in ("FULL", "NORMAL"):
            raise ValueError(f"synchronous must be 'FULL' or 'NORMAL', not {synchronous!r}")
        try:
            u = make_url(url)
        except Exception as exc:
            raise StoreError(
                f"{url!r} is not a database URL; use sqlite:///path/to/file.db or "
                f"postgresql://user:password@host:port/database"
            ) from exc
        backend = u.get_backend_name()
        self.url = u
        self._lock: threading.RLock | None = None
        self._listen: Any = None
        self._listen_lost = False
        self._listen_lock = threading.Lock()
        self._local_work = threading.Condition()
        self._listen_args: dict[str, Any] = {}
        if backend == "sqlite":
            self.dialect = _Dialect("sqlite")
            self._t: Callable[[datetime | None], Any] = _sqlite_time
            memory = u.database in (None, "", ":memory:")
            kw: dict[str, Any] = {"connect_args": {"check_same_thread": False}}
            if memory:  # one shared connection; serialize its use
                kw["poolclass"] = StaticPool
                self._lock = threading.RLock()
            else:
                kw["pool_size"] = pool_size
                kw["max_overflow"] = 2 * pool_size
                kw["pool_timeout"] = busy_timeout
            self.engine: SAEngine = create_engine(u, **kw)

            @event.listens_for(self.engine, "connect")
            def _sqlite_setup(dbapi_conn: Any, _: Any) -> None:
                dbapi_conn.isolation_level = None  # we issue BEGIN IMMEDIATE / COMMIT ourselves
                cur = dbapi_conn.cursor()
                # First, so that the PRAGMAs below wait for locks as every statement does.
                cur.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
                if not memory:
                    _wal(cur, busy_timeout)
                cur.execute(f"PRAGMA synchronous={synchronous}")
                cur.close()

        elif backend == "postgresql":
            self.dialect = _Dialect("postgresql")
            self._t = lambda at: at
            u = u.set(drivername="postgresql+psycopg")
            self.url = u
            # Without a connect timeout, connecting to a host that drops packets hangs for
            # minutes; keepalives find a dead peer of an idle connection (the LISTEN one).
            args = {k: v for k, v in PG_CONNECT_ARGS.items() if k not in u.query}
            self.engine = create_engine(
                u,
                pool_size=pool_size,
                max_overflow=2 * pool_size,
                pool_timeout=busy_timeout,
                pool_pre_ping=False,
                connect_args=args,
            )
            self._listen_args = args

            @event.listens_for(self.engine, "connect")
            def _pg_setup(dbapi_conn: Any, _: Any) -> None:
                dbapi_conn.autocommit = True  # we issue BEGIN / COMMIT ourselves

        else:
            raise StoreError(
                f"gorch stores instances in SQLite or PostgreSQL, not {backend!r}; use "
                f"sqlite:///path/to/file.db or postgresql://user:password@host:port/database"
            )
        pg = backend == "postgresql"
        self._pool = Pool(
            self.engine,
            name=repr(self),
            pg=pg,
            size=1 if self._lock is not None else 3 * pool_size,
            timeout=busy_timeout,
            lock=self._lock,
            on_cursor=safe_timestamptz if pg else None,
        )
        if create:
            try:
                self._create_schema()
            except BaseException:
                self.close()
                raise

    def __repr__(self) -> str:
        return f"SQLStore({self.url.render_as_string(hide_password=True)!r})"

    # -- connections: see gorch.store._pool ---------------------------------------------------

    @contextmanager
    def _conn(self) -> Iterator[Any]:
        """A pooled cursor for reads (autocommit)."""
        with self._pool.conn() as cur:
            yield cur

    def _create_schema(self) -> None:
        """Create what is missing and apply migrations: each step one transaction that first
        takes a lock (SQLite's write lock, a PostgreSQL advisory lock), so that processes
        opening a new database at once wait for each other instead of racing to create."""
        d, dialect = self.dialect, self.engine.dialect
        ddl = [str(CreateTable(t, if_not_exists=True).compile(dialect=dialect)) for t in _TABLES]
        ddl += [
            str(CreateIndex(ix, if_not_exists=True).compile(dialect=dialect))
            for t in _TABLES
            for ix in sorted(t.indexes, key=lambda ix: str(ix.name))
        ]
        read = "SELECT value FROM gorch_meta WHERE key = 'schema_version'"
        v0 = SCHEMA_VERSION

        def lock(cur: Any) -> None:
            if d.name == "postgresql":
                cur.execute("SELECT pg_advisory_xact_lock(7262001)")

        def create(cur: Any) -> int:
            lock(cur)
            for stmt in ddl:
                cur.execute(stmt)
            found = cur.execute(read).fetchone()
            if found is not None:
                return int(found[0])
            cur.execute(f"INSERT INTO gorch_meta (key, value) VALUES ('schema_version', '{v0}')")
            return SCHEMA_VERSION

        version = self._pool.run(create, tx=True)
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self!r} holds gorch schema version {version}, newer than this gorch "
                f"understands ({SCHEMA_VERSION}); upgrade gorch"
            )
        for v in range(version + 1, SCHEMA_VERSION + 1):

            def migrate(cur: Any, v: int = v) -> None:
                lock(cur)
                if int(cur.execute(read).fetchone()[0]) >= v:
                    return  # another process got there first
                for stmt in MIGRATIONS.get(v, []):
                    cur.execute(stmt)
                cur.execute(f"UPDATE gorch_meta SET value = '{v}' WHERE key = 'schema_version'")

            self._pool.run(migrate, tx=True)

    def schema_version(self) -> int:
        """The schema version recorded in the database."""
        r = self._pool.fetch("SELECT value FROM gorch_meta WHERE key = 'schema_version'", one=True)
        return int(r[0])

    # -- writes ------------------------------------------------------------------------------

    def commit(self, write: Write) -> int:
        d, t, row = self.dialect, self._t, write.instance
        version = 1 if write.expected_version is None else write.expected_version + 1
        if (
            d.name == "postgresql"
            and write.expected_version is not None
            and write.timers is None
            and write.key is None
            and not write.notify
        ):
            self._pg_checkpoint(write, version)
            return version

        def apply(cur: Any) -> None:
            if write.expected_version is None:
                cur.execute(
                    d.insert,
                    (
                        row.id, row.workflow, row.status, row.state, row.data,
                        t(row.created_at), t(row.updated_at), version, row.lease_owner,
                        t(row.lease_expires), row.attempts, t(row.next_attempt_at),
                        row.last_error,
                    ),
                )  # fmt: skip
            else:
                cur.execute(
                    d.update,
                    (
                        row.status, row.state, row.data, t(row.updated_at), version,
                        row.lease_owner, t(row.lease_expires), row.attempts,
                        t(row.next_attempt_at), row.last_error, row.id,
                        write.expected_version,
                    ),
                )  # fmt: skip
                if cur.rowcount != 1:
                    raise ConflictError(
                        f"instance {row.id!r} changed since it was read (expected version "
                        f"{write.expected_version})",
                        workflow_id=row.id,
                    )
            if write.timers is not None:
                if write.expected_version is not None:
                    cur.execute(d.del_timers, (row.id,))
                for tm in write.timers:
                    cur.execute(
                        d.add_timer, (tm.instance_id, tm.thread_id, tm.name, tm.pc, t(tm.due_at))
                    )
            for i, h in enumerate(write.history, 1):
                cur.execute(
                    d.history,
                    (h.instance_id, version, i, t(h.at), h.kind, h.name, h.thread, h.input,
                     h.output, h.error),
                )  # fmt: skip
            if write.key is not None:
                k = write.key
                cur.execute(d.key, (k.instance_id, k.key, k.fingerprint, k.output, t(k.at)))
            if write.notify and d.name == "postgresql":
                cur.execute(f"NOTIFY {NOTIFY_CHANNEL}")

        try:
            self._pool.run(apply, tx=True)
        except GorchError as exc:
            if isinstance(exc, StoreUnavailableError):
                exc.workflow_id = row.id
            raise
        except Exception as exc:
            if _is_unique_violation(exc):
                if write.expected_version is None and not _names_key(exc):
                    raise AlreadyExistsError(
                        f"instance {row.id!r} exists already", workflow_id=row.id
                    ) from None
                raise ConflictError(
                    f"idempotency key of instance {row.id!r} was recorded meanwhile",
                    workflow_id=row.id,
                ) from None
            raise
        if write.notify:
            with self._local_work:
                self._local_work.notify_all()
        return version

    def _pg_checkpoint(self, write: Write, version: int) -> None:
        """An update with history rows and nothing else, in one statement (PostgreSQL). It
        commits by itself (autocommit): a connection that breaks while it runs leaves its
        outcome unknown, so it is never repeated."""
        row, hs = write.instance, write.history
        params: list[Any] = [
            row.status, row.state, row.data, row.updated_at, version, row.lease_owner,
            row.lease_expires, row.attempts, row.next_attempt_at, row.last_error, row.id,
            write.expected_version,
        ]  # fmt: skip
        if hs:
            params += [
                version,
                [h.at for h in hs], [h.kind for h in hs], [h.name for h in hs],
                [h.thread for h in hs], [h.input for h in hs], [h.output for h in hs],
                [h.error for h in hs],
            ]  # fmt: skip
            sql, expect = self.dialect.update_with_history, len(hs)
        else:
            sql, expect = self.dialect.update, 1

        def apply(cur: Any) -> bool:
            cur.execute(sql, params)
            return bool(cur.rowcount == expect)

        try:
            ok = self._pool.run(apply, write=True)
        except StoreUnavailableError as exc:
            exc.workflow_id = row.id
            raise
        if not ok:
            raise ConflictError(
                f"instance {row.id!r} changed since it was read (expected version "
                f"{write.expected_version})",
                workflow_id=row.id,
            )

    def release(self, instance_id: str, owner: str, version: int) -> bool:
        def apply(cur: Any) -> bool:
            cur.execute(self.dialect.release, (instance_id, owner, version))
            return bool(cur.rowcount == 1)

        return self._pool.run(apply, tx=True)

    def delete_timer(self, timer: TimerRecord) -> None:
        def apply(cur: Any) -> None:
            cur.execute(
                self.dialect.delete_timer,
                (timer.instance_id, timer.thread_id, timer.name, timer.pc),
            )

        self._pool.run(apply, tx=True)

    def _among(self, workflows: Sequence[str]) -> Any:
        """The parameter of ``claim_among``: the names as an array (PostgreSQL) or JSON."""
        names = [str(w) for w in workflows]
        return names if self.dialect.name == "postgresql" else orjson.dumps(names).decode()

    def claim(
        self,
        owner: str,
        now: datetime,
        until: datetime,
        limit: int,
        workflows: Sequence[str] | None = None,
    ) -> list[InstanceRecord]:
        t, d = self._t, self.dialect
        params: tuple[Any, ...]
        if workflows is None:
            sql, params = d.claim, (owner, t(until), t(now), t(now), limit)
        elif not workflows:
            return []
        else:
            sql = d.claim_among
            params = (owner, t(until), t(now), t(now), self._among(workflows), limit)

        def apply(cur: Any) -> list[Any]:
            cur.execute(sql, params)
            return list(cur.fetchall())

        return [_row(r) for r in self._pool.run(apply, tx=True)]

    def claim_timers(
        self,
        owner: str,
        now: datetime,
        until: datetime,
        limit: int,
        workflows: Sequence[str] | None = None,
    ) -> list[tuple[TimerRecord, InstanceRecord]]:
        t, d = self._t, self.dialect
        params: tuple[Any, ...]
        if workflows is None:
            sql, params = d.claim_timers, (owner, t(until), t(now), t(now), limit)
        elif not workflows:
            return []
        else:
            sql = d.claim_timers_among
            params = (owner, t(until), t(now), t(now), self._among(workflows), limit)

        def apply(cur: Any) -> list[tuple[TimerRecord, InstanceRecord]]:
            out = []
            cur.execute(sql, params)
            for row in [_row(r) for r in cur.fetchall()]:
                cur.execute(d.due_timers, (row.id, t(now)))
                found = cur.fetchone()
                if found is None:
                    # PostgreSQL re-checks a row that changed meanwhile against the timer row
                    # it read first: a commit that just ended the wait can get the instance
                    # leased here without a due timer. Give it back at once.
                    cur.execute(d.unlease, (row.id, owner))
                    continue
                out.append((_timer(found), row))
            return out

        return self._pool.run(apply, tx=True)

    # -- reads -------------------------------------------------------------------------------

    def get(self, instance_id: str) -> InstanceRecord | None:
        r = self._pool.fetch(self.dialect.get, (instance_id,), one=True)
        return None if r is None else _row(r)

    def get_key(self, instance_id: str, key: str) -> KeyRecord | None:
        r = self._pool.fetch(self.dialect.get_key, (instance_id, key), one=True)
        return None if r is None else KeyRecord(r[0], r[1], r[2], r[3], _read_time(r[4]))

    def list_instances(
        self,
        *,
        workflow: str | None = None,
        status: Sequence[str] | None = None,
        limit: int = 50,
        after: tuple[datetime, str] | None = None,
        id_contains: str | None = None,
    ) -> list[InstanceRecord]:
        d, ph = self.dialect, self.dialect.ph
        where: list[str] = []
        params: list[Any] = []
        if workflow is not None:
            where.append(f"workflow = {ph}")
            params.append(workflow)
        if id_contains:
            where.append(d.id_contains)
            params.append(id_contains)
        if status is not None:
            if not status:
                return []
            where.append(f"status IN ({', '.join([ph] * len(status))})")
            params.extend(status)
        if after is not None:
            where.append(f"(created_at < {ph} OR (created_at = {ph} AND id < {ph}))")
            at = self._t(after[0])
            params.extend([at, at, after[1]])
        sql = d.list_base
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += f" ORDER BY created_at DESC, id DESC LIMIT {ph}"
        params.append(limit)
        return [_row(r) for r in self._pool.fetch(sql, params)]

    def counts(self, now: datetime, late_before: datetime) -> list[StatusCount]:
        t = self._t
        rows = self._pool.fetch(self.dialect.counts, (t(now), t(late_before), t(late_before)))
        return [StatusCount(r[0], r[1], int(r[2]), int(r[3])) for r in rows]

    def history(
        self,
        instance_id: str,
        *,
        limit: int | None = None,
        after: tuple[int, int, int] | None = None,
        newest_first: bool = False,
    ) -> list[HistoryRecord]:
        counted = newest_first and after is None
        sql, params = self._history_query(instance_id, limit, after, newest_first)
        with self._conn() as cur:
            cur.execute(sql, params)
            rows = cur.fetchall()
        if not rows:
            return []
        # seq is the row's position: counted on from the place paged from (its seq), or down
        # from the number of rows for the first newest-first page.
        step = -1 if newest_first else 1
        if counted:
            first = int(rows[0][10])
        else:
            first = 1 if after is None else after[0] + step
        out = []
        for n, r in enumerate(rows):
            h = HistoryRecord(r[0], _read_time(r[1]), r[2], r[3], r[4], r[5], r[6], r[7])
            h.seq, h.version, h.idx = first + step * n, r[8], r[9]
            out.append(h)
        return out

    def _history_query(
        self,
        instance_id: str,
        limit: int | None,
        after: tuple[int, int, int] | None,
        newest_first: bool,
    ) -> tuple[str, list[Any]]:
        d = self.dialect
        counted = newest_first and after is None
        params: list[Any] = [instance_id, instance_id] if counted else [instance_id]
        sql = d.history_of.format(count=d.history_count if counted else "")
        if after is not None:
            sql += d.history_before if newest_first else d.history_after
            params += [after[1], after[1], after[2]]
        sql += " ORDER BY version DESC, idx DESC" if newest_first else " ORDER BY version, idx"
        if limit is not None:
            sql += f" LIMIT {d.ph}"
            params.append(limit)
        return sql, params

    def timers(self, instance_id: str | None = None) -> list[TimerRecord]:
        if instance_id is None:
            rows = self._pool.fetch(self.dialect.all_timers)
        else:
            rows = self._pool.fetch(self.dialect.timers_of, (instance_id,))
        return [_timer(r) for r in rows]

    def ping(self) -> None:
        self._pool.ping(self.dialect.ping, PING_TIMEOUT)

    # -- waking workers ----------------------------------------------------------------------

    def wait_for_work(self, timeout: float) -> bool:
        if self.dialect.name != "postgresql":
            with self._local_work:
                return self._local_work.wait(timeout)
        import psycopg

        with self._listen_lock:
            try:
                if self._listen is None:
                    dsn = self.url.set(drivername="postgresql").render_as_string(
                        hide_password=False
                    )
                    self._listen = psycopg.connect(dsn, autocommit=True, **self._listen_args)
                    self._listen.execute(f"LISTEN {NOTIFY_CHANNEL}")
                    if self._listen_lost:
                        # Notifications sent while it was gone are lost: look for work now.
                        self._listen_lost = False
                        return True
                return any(True for _ in self._listen.notifies(timeout=timeout, stop_after=1))
            except BaseException as exc:
                # Whatever went wrong, this connection is done for: make a new one next time.
                self._drop_listen()
                if isinstance(exc, psycopg.Error):
                    raise self._pool.unavailable(exc, UNREACHABLE, connecting=True) from exc
                raise

    def _drop_listen(self) -> None:
        listen, self._listen, self._listen_lost = self._listen, None, True
        if listen is not None:
            with contextlib.suppress(Exception):
                listen.close()

    def close(self) -> None:
        with self._listen_lock:
            self._drop_listen()
        self._pool.close()
        self.engine.dispose()


PING_TIMEOUT = 2.0
"""Seconds :meth:`SQLStore.ping` waits for a connection (or for an earlier ping to return)."""

PG_CONNECT_ARGS: dict[str, Any] = {
    "connect_timeout": 5,
    "keepalives": 1,
    "keepalives_idle": 30,
    "keepalives_interval": 10,
    "keepalives_count": 3,
}
"""libpq connection parameters a PostgreSQL store sets unless its URL does."""


def _wal(cur: Any, timeout: float) -> None:
    """Put a SQLite file in WAL mode. Connections opening a new file at once contend for the
    lock this takes; wait for it up to ``timeout`` as every statement does."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            cur.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if getattr(exc, "sqlite_errorcode", 0) & 0xFF not in (5, 6) or (
                time.monotonic() > deadline
            ):
                raise
            time.sleep(0.01)


def _is_unique_violation(exc: Exception) -> bool:
    name = type(exc).__name__
    text = str(exc)
    return name in ("UniqueViolation", "IntegrityError") and (
        "UNIQUE" in text or "unique" in text or "duplicate" in text
    )


def _names_key(exc: Exception) -> bool:
    return "gorch_keys" in str(exc)
