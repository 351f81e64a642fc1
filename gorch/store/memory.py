"""An in-memory store for tests: the same behaviour as the SQL stores, in one process."""

from __future__ import annotations

import bisect
import threading
from collections.abc import Sequence
from datetime import datetime

import attrs

from gorch.errors import AlreadyExistsError, ConflictError
from gorch.store.base import (
    HistoryRecord,
    InstanceRecord,
    KeyRecord,
    StatusCount,
    TimerRecord,
    Write,
)

__all__ = ["MemoryStore"]


def _place(h: HistoryRecord) -> tuple[int, int]:
    return h.version, h.idx


def _copy(row: InstanceRecord) -> InstanceRecord:
    return attrs.evolve(row)


class MemoryStore:
    """Keeps everything in dictionaries behind one lock. Nothing survives the process."""

    def __init__(self) -> None:
        self._lock = threading.RLock()  # reentrant: erase commits under it
        self._work = threading.Condition(self._lock)
        self._rows: dict[str, InstanceRecord] = {}
        self._timers: dict[str, list[TimerRecord]] = {}
        self._history: dict[str, list[HistoryRecord]] = {}
        self._keys: dict[tuple[str, str], KeyRecord] = {}

    def __repr__(self) -> str:
        return f"MemoryStore({len(self._rows)} instances)"

    def commit(self, write: Write) -> int:
        row = write.instance
        with self._lock:
            old = self._rows.get(row.id)
            if write.expected_version is None:
                if old is not None:
                    raise AlreadyExistsError(
                        f"instance {row.id!r} exists already", workflow_id=row.id
                    )
                version = 1
            else:
                if old is None or old.version != write.expected_version:
                    raise ConflictError(
                        f"instance {row.id!r} changed since it was read (expected version "
                        f"{write.expected_version}, found "
                        f"{'none' if old is None else old.version})",
                        workflow_id=row.id,
                    )
                version = old.version + 1
            if write.key is not None:
                k = (write.key.instance_id, write.key.key)
                if k in self._keys:
                    raise ConflictError(
                        f"idempotency key {write.key.key!r} of instance {row.id!r} was recorded "
                        f"meanwhile",
                        workflow_id=row.id,
                    )
                self._keys[k] = attrs.evolve(write.key)
            new = _copy(row)
            new.version = version
            self._rows[row.id] = new
            if write.timers is not None:
                self._timers[row.id] = sorted(write.timers, key=lambda t: t.due_at)
            if write.history:
                log = self._history.setdefault(row.id, [])
                for i, h in enumerate(write.history, 1):
                    log.append(attrs.evolve(h, seq=len(log) + 1, version=version, idx=i))
            if write.notify:
                self._work.notify_all()
            return version

    def erase(
        self, write: Write, history: Sequence[HistoryRecord], keys: Sequence[KeyRecord]
    ) -> int:
        with self._lock:
            version = self.commit(write)  # first: a conflict changes nothing
            log = {_place(h): h for h in self._history.get(write.instance.id, [])}
            for new in history:
                old = log.get(_place(new))
                if old is not None:
                    old.input, old.output = new.input, new.output
                    old.error, old.reason = new.error, new.reason
            for key in keys:
                found = self._keys.get((write.instance.id, key.key))
                if found is not None:
                    found.output = key.output
            return version

    def get(self, instance_id: str) -> InstanceRecord | None:
        with self._lock:
            row = self._rows.get(instance_id)
            return None if row is None else _copy(row)

    def list_instances(
        self,
        *,
        workflow: str | None = None,
        status: Sequence[str] | None = None,
        limit: int = 50,
        after: tuple[datetime, str] | None = None,
        id_contains: str | None = None,
    ) -> list[InstanceRecord]:
        with self._lock:
            rows = [
                r
                for r in self._rows.values()
                if (workflow is None or r.workflow == workflow)
                and (not id_contains or id_contains in r.id)
                and (status is None or r.status in status)
                and (after is None or (r.created_at, r.id) < after)
            ]
        rows.sort(key=lambda r: (r.created_at, r.id), reverse=True)
        return [_copy(r) for r in rows[:limit]]

    def counts(self, now: datetime, late_before: datetime) -> list[StatusCount]:
        with self._lock:
            found: dict[tuple[str, str], list[int]] = {}
            for r in self._rows.values():
                n = found.setdefault((r.workflow, r.status), [0, 0])
                n[0] += 1
                n[1] += self._late(r, now, late_before)
        return [StatusCount(w, s, n, late) for (w, s), (n, late) in sorted(found.items())]

    def _late(self, row: InstanceRecord, now: datetime, before: datetime) -> bool:
        if row.status not in ("running", "waiting") or not self._free(row, now):
            return False
        if row.status == "running" and (row.next_attempt_at or row.updated_at) <= before:
            return True
        return any(t.due_at <= before for t in self._timers.get(row.id, ()))

    def history(
        self,
        instance_id: str,
        *,
        limit: int | None = None,
        after: tuple[int, int, int] | None = None,
        newest_first: bool = False,
    ) -> list[HistoryRecord]:
        with self._lock:
            log = self._history.get(instance_id, [])
            # The log is in (version, idx) order: find the place after `after` by its key.
            here = None if after is None else (after[1], after[2])
            if newest_first:
                end = len(log) if here is None else bisect.bisect_left(log, here, key=_place)
                start = 0 if limit is None else max(0, end - limit)
                rows = log[start:end][::-1]
            else:
                start = 0 if here is None else bisect.bisect_right(log, here, key=_place)
                rows = log[start:] if limit is None else log[start : start + limit]
            return [attrs.evolve(h) for h in rows]

    def timers(self, instance_id: str | None = None) -> list[TimerRecord]:
        with self._lock:
            if instance_id is not None:
                return list(self._timers.get(instance_id, []))
            found = [t for ts in self._timers.values() for t in ts]
        return sorted(found, key=lambda t: (t.due_at, t.instance_id))

    def get_key(self, instance_id: str, key: str) -> KeyRecord | None:
        with self._lock:
            k = self._keys.get((instance_id, key))
            return None if k is None else attrs.evolve(k)

    def keys(self, instance_id: str) -> list[KeyRecord]:
        with self._lock:
            found = [attrs.evolve(k) for (i, _), k in self._keys.items() if i == instance_id]
        return sorted(found, key=lambda k: k.key)

    def _free(self, row: InstanceRecord, now: datetime) -> bool:
        return row.lease_owner is None or (
            row.lease_expires is not None and row.lease_expires < now
        )

    def _lease(self, row: InstanceRecord, owner: str, until: datetime) -> InstanceRecord:
        row.lease_owner = owner
        row.lease_expires = until
        row.version += 1
        return _copy(row)

    def claim(
        self,
        owner: str,
        now: datetime,
        until: datetime,
        limit: int,
        workflows: Sequence[str] | None = None,
    ) -> list[InstanceRecord]:
        with self._lock:
            rows = [
                r
                for r in self._rows.values()
                if r.status == "running"
                and (workflows is None or r.workflow in workflows)
                and self._free(r, now)
                and (r.next_attempt_at is None or r.next_attempt_at <= now)
            ]
            rows.sort(key=lambda r: (r.next_attempt_at or r.updated_at, r.id))
            return [self._lease(r, owner, until) for r in rows[:limit]]

    def claim_timers(
        self,
        owner: str,
        now: datetime,
        until: datetime,
        limit: int,
        workflows: Sequence[str] | None = None,
    ) -> list[tuple[TimerRecord, InstanceRecord]]:
        with self._lock:
            due = sorted(
                (t for ts in self._timers.values() for t in ts if t.due_at <= now),
                key=lambda t: (t.due_at, t.instance_id),
            )
            out: list[tuple[TimerRecord, InstanceRecord]] = []
            for t in due:
                if len(out) >= limit:
                    break
                row = self._rows.get(t.instance_id)
                if (
                    row is None
                    or row.status not in ("waiting", "running")
                    or (workflows is not None and row.workflow not in workflows)
                    or not self._free(row, now)
                ):
                    continue
                out.append((t, self._lease(row, owner, until)))
            return out

    def release(self, instance_id: str, owner: str, version: int) -> bool:
        with self._lock:
            row = self._rows.get(instance_id)
            if row is None or row.lease_owner != owner or row.version != version:
                return False
            row.lease_owner = None
            row.lease_expires = None
            return True

    def delete_timer(self, timer: TimerRecord) -> None:
        with self._lock:
            ts = self._timers.get(timer.instance_id)
            if ts and timer in ts:
                ts.remove(timer)

    def wait_for_work(self, timeout: float) -> bool:
        with self._work:
            return self._work.wait(timeout)

    def ping(self) -> None:
        pass  # always there

    def close(self) -> None:
        pass
