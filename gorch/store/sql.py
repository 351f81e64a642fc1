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

Schema versions: the ``gorch_meta`` table records the schema version. Opening a store creates
missing tables, refuses a database written by a newer gorch, and applies the steps of
``MIGRATIONS`` to an older one, each in its own transaction (the documented equivalent of an
Alembic chain; gorch keeps its handful of tables without a migration tool's dependency).
"""

from __future__ import annotations

import contextlib
import queue
import sqlite3
import threading
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
from sqlmodel import Field, SQLModel

from gorch.errors import AlreadyExistsError, ConflictError, GorchError
from gorch.store.base import HistoryRecord, InstanceRecord, KeyRecord, TimerRecord, Write

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


class StoreError(GorchError):
    """The database cannot be used as a gorch store (newer schema, bad URL)."""


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
        self.claim = q(
            "UPDATE gorch_instances SET lease_owner = ?, lease_expires = ?, version = version + 1 "
            "WHERE id IN (SELECT id FROM gorch_instances WHERE status = 'running' "
            f"AND {free} AND (next_attempt_at IS NULL OR next_attempt_at <= ?) "
            f"ORDER BY updated_at LIMIT ?{lock}) RETURNING {cols}"
        )
        # Driven from the due timers, joined to instances that can take them now, so that
        # timers of paused or busy instances never hide claimable ones.
        lock_i = " FOR UPDATE OF i SKIP LOCKED" if pg else ""
        self.claim_timers = q(
            "UPDATE gorch_instances SET lease_owner = ?, lease_expires = ?, version = version + 1 "
            "WHERE id IN (SELECT i.id FROM gorch_timers t JOIN gorch_instances i ON "
            "i.id = t.instance_id WHERE t.due_at <= ? AND i.status IN ('waiting', 'running') "
            "AND (i.lease_expires IS NULL OR i.lease_expires < ?) ORDER BY t.due_at "
            f"LIMIT ?{lock_i}) RETURNING {cols}"
        )
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


def _read_time(v: Any) -> Any:
    if v is None:
        return None
    if isinstance(v, str):
        v = datetime.fromisoformat(v)
    return v.replace(tzinfo=UTC) if v.tzinfo is None else v.astimezone(UTC)


def _row(r: Sequence[Any]) -> InstanceRecord:
    return InstanceRecord(
        id=r[0],
        workflow=r[1],
        status=r[2],
        state=r[3],
        data=r[4],
        created_at=_read_time(r[5]),
        updated_at=_read_time(r[6]),
        version=r[7],
        lease_owner=r[8],
        lease_expires=_read_time(r[9]),
        attempts=r[10],
        next_attempt_at=_read_time(r[11]),
        last_error=r[12],
    )


def _timer(r: Sequence[Any]) -> TimerRecord:
    return TimerRecord(r[0], r[1], r[2], r[3], _read_time(r[4]))


class SQLStore:
    """A store on SQLite or PostgreSQL.

    Args:
        url: a SQLAlchemy URL: ``sqlite:///path/to/gorch.db`` (created if missing) or
            ``postgresql://user:pass@host:port/db`` (psycopg 3 is used either way).
        synchronous: SQLite only: ``"FULL"`` (default; durable against an OS crash) or
            ``"NORMAL"`` (faster; a power loss may lose the last commits).
        busy_timeout: seconds a writer waits for SQLite's write lock (or a PostgreSQL
            connection from the pool) before failing.
        pool_size: connections kept open (PostgreSQL; SQLite files too).
        create: create missing tables and apply migrations (default True).
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
        self._listen_lock = threading.Lock()
        self._local_work = threading.Condition()
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
            ms = int(busy_timeout * 1000)

            @event.listens_for(self.engine, "connect")
            def _sqlite_setup(dbapi_conn: Any, _: Any) -> None:
                dbapi_conn.isolation_level = None  # we issue BEGIN IMMEDIATE / COMMIT ourselves
                cur = dbapi_conn.cursor()
                if not memory:
                    cur.execute("PRAGMA journal_mode=WAL")
                cur.execute(f"PRAGMA synchronous={synchronous}")
                cur.execute(f"PRAGMA busy_timeout={ms}")
                cur.close()

        elif backend == "postgresql":
            self.dialect = _Dialect("postgresql")
            self._t = lambda at: at
            u = u.set(drivername="postgresql+psycopg")
            self.url = u
            self.engine = create_engine(
                u,
                pool_size=pool_size,
                max_overflow=2 * pool_size,
                pool_timeout=busy_timeout,
                pool_pre_ping=False,
            )

            @event.listens_for(self.engine, "connect")
            def _pg_setup(dbapi_conn: Any, _: Any) -> None:
                dbapi_conn.autocommit = True  # we issue BEGIN / COMMIT ourselves

        else:
            raise StoreError(
                f"gorch stores instances in SQLite or PostgreSQL, not {backend!r}; use "
                f"sqlite:///path/to/file.db or postgresql://user:password@host:port/database"
            )
        self._idle: queue.SimpleQueue[tuple[Any, Any]] = queue.SimpleQueue()
        self._made = 0
        self._made_lock = threading.Lock()
        self._max = 1 if self._lock is not None else 3 * pool_size
        self._timeout = busy_timeout
        self._broken: tuple[type[BaseException], ...] = (
            (sqlite3.OperationalError,) if backend == "sqlite" else (_psycopg_operational(),)
        )
        if create:
            try:
                self._create_schema()
            except BaseException:
                self.close()
                raise

    def __repr__(self) -> str:
        return f"SQLStore({self.url.render_as_string(hide_password=True)!r})"

    # -- connections -------------------------------------------------------------------------
    # Connections come from SQLAlchemy's pool once and are then kept, each with its cursor, in
    # a queue of our own: checking one out and in is two C calls, where a pool round trip costs
    # ~15 µs, a tenth of a durable commit.

    def _checkout(self) -> tuple[Any, Any]:
        try:
            return self._idle.get_nowait()
        except queue.Empty:
            pass
        with self._made_lock:
            make = self._made < self._max
            if make:
                self._made += 1
        if make:
            try:
                fairy = self.engine.raw_connection()
                return fairy, fairy.cursor()
            except BaseException:
                with self._made_lock:
                    self._made -= 1
                raise
        try:
            return self._idle.get(timeout=self._timeout)
        except queue.Empty:
            raise StoreError(
                f"{self!r}: all {self._max} connections stayed busy for {self._timeout:g} s; "
                f"raise pool_size or busy_timeout"
            ) from None

    def _discard(self, fairy: Any) -> None:
        with contextlib.suppress(Exception):
            fairy.invalidate()
        with self._made_lock:
            self._made -= 1

    @contextmanager
    def _conn(self) -> Iterator[Any]:
        if self._lock is not None:
            self._lock.acquire()
        try:
            fairy, cur = self._checkout()
            try:
                yield cur
            except self._broken:
                self._discard(fairy)  # the connection itself failed: never reuse it
                raise
            except BaseException:
                self._idle.put((fairy, cur))
                raise
            self._idle.put((fairy, cur))
        finally:
            if self._lock is not None:
                self._lock.release()

    @contextmanager
    def _tx(self) -> Iterator[Any]:
        with self._conn() as cur:
            cur.execute(self.dialect.begin)
            try:
                yield cur
            except BaseException:
                with contextlib.suppress(Exception):  # keep the original error
                    cur.execute("ROLLBACK")
                raise
            cur.execute("COMMIT")

    def _create_schema(self) -> None:
        with self.engine.begin() as conn:
            if self.dialect.name == "postgresql":  # one creator at a time across processes
                conn.exec_driver_sql("SELECT pg_advisory_xact_lock(7262001)")
            SQLModel.metadata.create_all(conn, tables=_TABLES)
            found = conn.exec_driver_sql(
                "SELECT value FROM gorch_meta WHERE key = 'schema_version'"
            ).scalar()
            if found is None:
                conn.exec_driver_sql(
                    "INSERT INTO gorch_meta (key, value) VALUES ('schema_version', "
                    f"'{SCHEMA_VERSION}')"
                )
                return
            version = int(found)
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self!r} holds gorch schema version {version}, newer than this gorch "
                f"understands ({SCHEMA_VERSION}); upgrade gorch"
            )
        for v in range(version + 1, SCHEMA_VERSION + 1):
            with self.engine.begin() as conn:
                for stmt in MIGRATIONS.get(v, []):
                    conn.exec_driver_sql(stmt)
                conn.exec_driver_sql(
                    f"UPDATE gorch_meta SET value = '{v}' WHERE key = 'schema_version'"
                )

    def schema_version(self) -> int:
        """The schema version recorded in the database."""
        with self._conn() as cur:
            cur.execute("SELECT value FROM gorch_meta WHERE key = 'schema_version'")
            return int(cur.fetchone()[0])

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
        try:
            with self._tx() as cur:
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
                            d.add_timer,
                            (tm.instance_id, tm.thread_id, tm.name, tm.pc, t(tm.due_at)),
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
        except GorchError:
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
        """An update with history rows and nothing else, in one statement (PostgreSQL)."""
        row, hs = write.instance, write.history
        params: list[Any] = [
            row.status, row.state, row.data, row.updated_at, version, row.lease_owner,
            row.lease_expires, row.attempts, row.next_attempt_at, row.last_error, row.id,
            write.expected_version,
        ]  # fmt: skip
        with self._conn() as cur:
            if hs:
                params += [
                    version,
                    [h.at for h in hs], [h.kind for h in hs], [h.name for h in hs],
                    [h.thread for h in hs], [h.input for h in hs], [h.output for h in hs],
                    [h.error for h in hs],
                ]  # fmt: skip
                cur.execute(self.dialect.update_with_history, params)
                ok = cur.rowcount == len(hs)
            else:
                cur.execute(self.dialect.update, params)
                ok = cur.rowcount == 1
        if not ok:
            raise ConflictError(
                f"instance {row.id!r} changed since it was read (expected version "
                f"{write.expected_version})",
                workflow_id=row.id,
            )

    def release(self, instance_id: str, owner: str, version: int) -> bool:
        with self._tx() as cur:
            cur.execute(self.dialect.release, (instance_id, owner, version))
            return bool(cur.rowcount == 1)

    def delete_timer(self, timer: TimerRecord) -> None:
        with self._tx() as cur:
            cur.execute(
                self.dialect.delete_timer,
                (timer.instance_id, timer.thread_id, timer.name, timer.pc),
            )

    def claim(self, owner: str, now: datetime, until: datetime, limit: int) -> list[InstanceRecord]:
        t = self._t
        with self._tx() as cur:
            cur.execute(self.dialect.claim, (owner, t(until), t(now), t(now), limit))
            return [_row(r) for r in cur.fetchall()]

    def claim_timers(
        self, owner: str, now: datetime, until: datetime, limit: int
    ) -> list[tuple[TimerRecord, InstanceRecord]]:
        t, d = self._t, self.dialect
        out = []
        with self._tx() as cur:
            cur.execute(d.claim_timers, (owner, t(until), t(now), t(now), limit))
            rows = [_row(r) for r in cur.fetchall()]
            for row in rows:
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

    # -- reads -------------------------------------------------------------------------------

    def get(self, instance_id: str) -> InstanceRecord | None:
        with self._conn() as cur:
            cur.execute(self.dialect.get, (instance_id,))
            r = cur.fetchone()
        return None if r is None else _row(r)

    def get_key(self, instance_id: str, key: str) -> KeyRecord | None:
        with self._conn() as cur:
            cur.execute(self.dialect.get_key, (instance_id, key))
            r = cur.fetchone()
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
        with self._conn() as cur:
            cur.execute(sql, params)
            return [_row(r) for r in cur.fetchall()]

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
        with self._conn() as cur:
            if instance_id is None:
                cur.execute(self.dialect.all_timers)
            else:
                cur.execute(self.dialect.timers_of, (instance_id,))
            return [_timer(r) for r in cur.fetchall()]

    # -- waking workers ----------------------------------------------------------------------

    def wait_for_work(self, timeout: float) -> bool:
        if self.dialect.name != "postgresql":
            with self._local_work:
                return self._local_work.wait(timeout)
        with self._listen_lock:
            if self._listen is None:
                import psycopg

                dsn = self.url.set(drivername="postgresql").render_as_string(hide_password=False)
                self._listen = psycopg.connect(dsn, autocommit=True)
                self._listen.execute(f"LISTEN {NOTIFY_CHANNEL}")
            return any(True for _ in self._listen.notifies(timeout=timeout, stop_after=1))

    def close(self) -> None:
        with self._listen_lock:
            if self._listen is not None:
                self._listen.close()
                self._listen = None
        while True:
            try:
                fairy, _ = self._idle.get_nowait()
            except queue.Empty:
                break
            fairy.close()
        self.engine.dispose()


def _psycopg_operational() -> type[BaseException]:
    import psycopg

    return psycopg.OperationalError


def _is_unique_violation(exc: Exception) -> bool:
    name = type(exc).__name__
    text = str(exc)
    return name in ("UniqueViolation", "IntegrityError") and (
        "UNIQUE" in text or "unique" in text or "duplicate" in text
    )


def _names_key(exc: Exception) -> bool:
    return "gorch_keys" in str(exc)
