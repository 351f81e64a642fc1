"""The schedules of :class:`~gorch.store.sql.SQLStore`: table ``gorch_schedules``
(``ScheduleRow`` of ``_tables.py``), one row per schedule, written with optimistic concurrency.

An insert is ``INSERT ... ON CONFLICT DO NOTHING`` (no row inserted: the name exists); a
replace is an ``UPDATE ... WHERE name = ? AND version = ?`` (no row updated: someone wrote in
between). Each runs in its own short transaction. The same SQL runs on SQLite and PostgreSQL:
the placeholders, the JSON cast of ``data`` and the bound times are the dialect's.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any

from gorch.errors import AlreadyExistsError, ConflictError
from gorch.store.schedules import ScheduleRecord
from gorch.store.sql._rows import read_time

if TYPE_CHECKING:
    from gorch.store.sql._dialect import Dialect
    from gorch.store.sql._pool import Pool

__all__ = ["ScheduleStatements", "Scheduled"]

_COLUMNS = (
    "name, workflow, cron, timezone, data{text}, catchup, paused, next_at, last_tick, "
    "created_at, updated_at, version"
)


class ScheduleStatements:
    """The statements of the schedules, in one dialect's SQL."""

    def __init__(self, dialect: Dialect) -> None:
        spell, j = dialect.spell, dialect.json_param
        columns = _COLUMNS.format(text=dialect.json_as_text)
        self.insert = spell(
            "INSERT INTO gorch_schedules (name, workflow, cron, timezone, data, catchup, paused, "
            "next_at, last_tick, created_at, updated_at, version) "
            f"VALUES (?, ?, ?, ?, ?{j}, ?, ?, ?, ?, ?, ?, 1) ON CONFLICT DO NOTHING"
        )
        self.update = spell(
            f"UPDATE gorch_schedules SET workflow = ?, cron = ?, timezone = ?, data = ?{j}, "
            "catchup = ?, paused = ?, next_at = ?, last_tick = ?, created_at = ?, "
            "updated_at = ?, version = version + 1 WHERE name = ? AND version = ?"
        )
        self.get = spell(f"SELECT {columns} FROM gorch_schedules WHERE name = ?")
        self.all = f"SELECT {columns} FROM gorch_schedules ORDER BY name"
        due = f"SELECT {columns} FROM gorch_schedules WHERE paused = ? AND next_at <= ?"
        self.due = spell(f"{due} ORDER BY next_at, name LIMIT ?")
        self.due_among = spell(f"{due} AND workflow {dialect.among} ORDER BY next_at, name LIMIT ?")
        self.delete = spell("DELETE FROM gorch_schedules WHERE name = ?")


def schedule(r: Sequence[Any]) -> ScheduleRecord:
    """A row (``_COLUMNS``) as a record."""
    return ScheduleRecord(
        name=r[0], workflow=r[1], cron=r[2], timezone=r[3], data=r[4], catchup=bool(r[5]),
        paused=bool(r[6]), next_at=read_time(r[7]), last_tick=read_time(r[8]),
        created_at=read_time(r[9]), updated_at=read_time(r[10]), version=int(r[11]),
    )  # fmt: skip


class Scheduled:
    """The schedule methods of :class:`~gorch.store.base.Store` (see
    :class:`~gorch.store.schedules.ScheduleStore`), for
    :class:`~gorch.store.sql.SQLStore`, which provides the attributes below."""

    dialect: Dialect
    _pool: Pool

    @cached_property
    def _schedule_sql(self) -> ScheduleStatements:
        return ScheduleStatements(self.dialect)

    def put_schedule(self, record: ScheduleRecord, expected_version: int | None) -> int:
        sql, bind, r = self._schedule_sql, self.dialect.bind_time, record
        values = (r.workflow, r.cron, r.timezone, r.data, r.catchup, r.paused, bind(r.next_at),
                  bind(r.last_tick), bind(r.created_at), bind(r.updated_at))  # fmt: skip
        if expected_version is None:
            params: tuple[Any, ...] = (r.name, *values)
            statement = sql.insert
        else:
            params, statement = (*values, r.name, expected_version), sql.update

        def write(cur: Any) -> bool:
            cur.execute(statement, params)
            return bool(cur.rowcount == 1)

        if self._pool.run(write, tx=True):
            return 1 if expected_version is None else expected_version + 1
        if expected_version is None:
            raise AlreadyExistsError(f"schedule {r.name!r} exists already")
        raise ConflictError(
            f"schedule {r.name!r} changed since it was read (expected version {expected_version})"
        )

    def get_schedule(self, name: str) -> ScheduleRecord | None:
        found = self._pool.fetch(self._schedule_sql.get, (name,), one=True)
        return None if found is None else schedule(found)

    def list_schedules(self) -> list[ScheduleRecord]:
        return [schedule(r) for r in self._pool.fetch(self._schedule_sql.all)]

    def due_schedules(
        self, now: datetime, limit: int, workflows: Sequence[str] | None = None
    ) -> list[ScheduleRecord]:
        sql, dialect = self._schedule_sql, self.dialect
        if limit <= 0 or (workflows is not None and not workflows):
            return []
        if workflows is None:
            rows = self._pool.fetch(sql.due, (False, dialect.bind_time(now), limit))
        else:
            names = dialect.among_param(workflows)
            rows = self._pool.fetch(sql.due_among, (False, dialect.bind_time(now), names, limit))
        return [schedule(r) for r in rows]

    def delete_schedule(self, name: str) -> bool:
        def delete(cur: Any) -> bool:
            cur.execute(self._schedule_sql.delete, (name,))
            return bool(cur.rowcount == 1)

        return self._pool.run(delete, tx=True)
