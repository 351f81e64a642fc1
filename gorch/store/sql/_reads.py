"""The listing reads of :class:`~gorch.store.sql.SQLStore`: instances by filter, the counts
behind the metrics, and an instance's history by page."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from gorch.store.base import HistoryRecord, InstanceRecord, StatusCount
from gorch.store.sql._rows import instance as read_instance
from gorch.store.sql._rows import read_time

if TYPE_CHECKING:
    from gorch.store.sql._dialect import Dialect
    from gorch.store.sql._pool import Pool

__all__ = ["Reads"]


class Reads:
    """``list_instances``, ``counts`` and ``history`` (see :class:`~gorch.store.base.Store`)."""

    dialect: Dialect
    _pool: Pool

    def list_instances(
        self,
        *,
        workflow: str | None = None,
        status: Sequence[str] | None = None,
        limit: int = 50,
        after: tuple[datetime, str] | None = None,
        id_contains: str | None = None,
        parent: str | None = None,
    ) -> list[InstanceRecord]:
        dialect = self.dialect
        mark = dialect.placeholder
        where: list[str] = []
        params: list[Any] = []
        if workflow is not None:
            where.append(f"workflow = {mark}")
            params.append(workflow)
        if parent is not None:
            where.append(f"parent_id = {mark}")
            params.append(parent)
        if id_contains:
            where.append(dialect.spell(dialect.id_contains))
            params.append(id_contains)
        if status is not None:
            if not status:
                return []
            where.append(f"status IN ({', '.join([mark] * len(status))})")
            params.extend(status)
        if after is not None:
            where.append(f"(created_at < {mark} OR (created_at = {mark} AND id < {mark}))")
            at = dialect.bind_time(after[0])
            params.extend([at, at, after[1]])
        sql = dialect.list_base
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += f" ORDER BY created_at DESC, id DESC LIMIT {mark}"
        params.append(limit)
        return [read_instance(r) for r in self._pool.fetch(sql, params)]

    def counts(self, now: datetime, late_before: datetime) -> list[StatusCount]:
        bind = self.dialect.bind_time
        rows = self._pool.fetch(
            self.dialect.counts, (bind(now), bind(late_before), bind(late_before))
        )
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
        with self._pool.conn() as cur:
            cur.execute(sql, params)
            rows = cur.fetchall()
        if not rows:
            return []
        # seq is the row's position: counted on from the place paged from (its seq), or down
        # from the number of rows for the first newest-first page.
        step = -1 if newest_first else 1
        if counted:
            first = int(rows[0][12])
        else:
            first = 1 if after is None else after[0] + step
        out = []
        for n, r in enumerate(rows):
            h = HistoryRecord(r[0], read_time(r[1]), r[2], r[3], r[4], r[5], r[6], r[7],
                              first + step * n, r[8], r[9], r[10], r[11])  # fmt: skip
            out.append(h)
        return out

    def _history_query(
        self,
        instance_id: str,
        limit: int | None,
        after: tuple[int, int, int] | None,
        newest_first: bool,
    ) -> tuple[str, list[Any]]:
        dialect = self.dialect
        counted = newest_first and after is None
        params: list[Any] = [instance_id, instance_id] if counted else [instance_id]
        sql = dialect.history_of.format(count=dialect.history_count if counted else "")
        if after is not None:
            sql += dialect.history_before if newest_first else dialect.history_after
            params += [after[1], after[1], after[2]]
        sql += " ORDER BY version DESC, idx DESC" if newest_first else " ORDER BY version, idx"
        if limit is not None:
            sql += f" LIMIT {dialect.placeholder}"
            params.append(limit)
        return sql, params
