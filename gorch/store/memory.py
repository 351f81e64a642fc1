"""An in-memory store for tests: the same behaviour as the SQL stores, in one process."""

from __future__ import annotations

import bisect
import threading
from collections.abc import Sequence
from datetime import datetime

import attrs

from gorch.errors import AlreadyExistsError, ConflictError
from gorch.store.base import (
    END,
    ChangeRecord,
    HistoryRecord,
    InstanceRecord,
    KeyRecord,
    MessageRecord,
    ScheduleRecord,
    StatusCount,
    TimerRecord,
    WatchRecord,
    Write,
    watch_matches,
)
from gorch.store.signal import ChangeSignal

__all__ = ["MemoryStore"]


def _place(h: HistoryRecord) -> tuple[int, int]:
    return h.version, h.idx


def _spot(m: MessageRecord | WatchRecord) -> tuple[str, str, str, int]:
    return m.instance_id, m.thread_id, m.name, m.pc


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
        self._watches: dict[str, list[WatchRecord]] = {}
        self._messages: dict[tuple[str, str, str, int], MessageRecord] = {}
        self._changes: list[ChangeRecord] = []
        self._schedules: dict[str, ScheduleRecord] = {}
        self.signal = ChangeSignal()

    def __repr__(self) -> str:
        return f"MemoryStore({len(self._rows)} instances)"

    def commit(self, write: Write) -> int:
        with self._lock:
            version = self._check(write)
            for start in write.starts:
                self._check(start)
            woke = self._apply(write, version)
            for start in write.starts:
                woke = self._apply(start, 1) or woke
            if woke:
                self._work.notify_all()
        if write.change:
            self.signal.fire(write.instance.id)
        for start in write.starts:
            self.signal.fire(start.instance.id)
        return version

    def _check(self, write: Write) -> int:
        """The version ``write`` commits; raises as :meth:`Store.commit` if it cannot."""
        row = write.instance
        old = self._rows.get(row.id)
        if write.expected_version is None:
            if old is not None:
                raise AlreadyExistsError(f"instance {row.id!r} exists already", workflow_id=row.id)
            return 1
        if old is None or old.version != write.expected_version:
            raise ConflictError(
                f"instance {row.id!r} changed since it was read (expected version "
                f"{write.expected_version}, found {'none' if old is None else old.version})",
                workflow_id=row.id,
            )
        if write.key is not None and (write.key.instance_id, write.key.key) in self._keys:
            raise ConflictError(
                f"idempotency key {write.key.key!r} of instance {row.id!r} was recorded meanwhile",
                workflow_id=row.id,
            )
        return old.version + 1

    def _apply(self, write: Write, version: int) -> bool:
        """Apply a checked ``write``; whether workers should wake."""
        row = write.instance
        if write.key is not None:
            self._keys[(write.key.instance_id, write.key.key)] = attrs.evolve(write.key)
        new = _copy(row)
        new.version = version
        old = self._rows.get(row.id)
        if old is not None:  # as the SQL update: who started it stays; where it waits, unless told
            new.parent_id = old.parent_id
            if not write.change:
                new.at_statements = old.at_statements
        self._rows[row.id] = new
        if write.timers is not None:
            self._timers[row.id] = sorted(write.timers, key=lambda t: t.due_at)
        if write.history:
            log = self._history.setdefault(row.id, [])
            for i, h in enumerate(write.history, 1):
                log.append(attrs.evolve(h, seq=len(log) + 1, version=version, idx=i))
        return self._link(write, new) or write.notify

    def _link(self, write: Write, new: InstanceRecord) -> bool:
        """The feed, watches and messages of an applied ``write``; whether it left a message."""
        row, woke = write.instance, False
        if write.consume is not None:
            self._messages.pop(_spot(write.consume), None)
        if write.watches is not None:
            self._watches[row.id] = list(write.watches)
            for w in write.watches:
                target = self._rows.get(w.target_id)
                if target is not None:
                    woke = self._satisfy(w, target) or woke
        if write.change and watch_matches(END, row.status, ()):
            self._forget_messages(row.id)  # an ended instance takes no events
        if write.change:
            seq = len(self._changes) + 1
            self._changes.append(ChangeRecord(seq, new.updated_at, row.id, row.workflow,
                                              row.status, new.at_statements))  # fmt: skip
            for ws in self._watches.values():
                for w in ws:
                    if w.target_id == row.id:
                        woke = self._satisfy(w, new) or woke
        return woke

    def _forget_messages(self, instance_id: str) -> None:
        for spot in [spot for spot in self._messages if spot[0] == instance_id]:
            del self._messages[spot]

    def _satisfy(self, w: WatchRecord, target: InstanceRecord) -> bool:
        """Leave ``w``'s message if ``target`` meets it (once); whether one was left."""
        spot = (w.instance_id, w.thread_id, w.name, w.pc)
        if spot in self._messages or not watch_matches(
            w.until, target.status, target.at_statements
        ):
            return False
        self._messages[spot] = MessageRecord(*spot, target.id, target.status,
                                             target.at_statements, target.updated_at)  # fmt: skip
        return True

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
        parent: str | None = None,
    ) -> list[InstanceRecord]:
        with self._lock:
            rows = [
                r
                for r in self._rows.values()
                if (workflow is None or r.workflow == workflow)
                and (parent is None or r.parent_id == parent)
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

    def claim_messages(
        self,
        owner: str,
        now: datetime,
        until: datetime,
        limit: int,
        workflows: Sequence[str] | None = None,
    ) -> list[tuple[MessageRecord, InstanceRecord]]:
        with self._lock:
            out: list[tuple[MessageRecord, InstanceRecord]] = []
            taken: set[str] = set()
            for m in sorted(self._messages.values(), key=lambda m: (m.at, _spot(m))):
                row = self._rows.get(m.instance_id)
                if (
                    len(out) >= limit
                    or row is None
                    or row.id in taken
                    or row.status not in ("waiting", "running")
                    or (workflows is not None and row.workflow not in workflows)
                    or not self._free(row, now)
                    or (row.next_attempt_at is not None and row.next_attempt_at > now)
                ):
                    continue
                taken.add(row.id)
                out.append((m, self._lease(row, owner, until)))
            return out

    def messages(self, instance_id: str | None = None) -> list[MessageRecord]:
        with self._lock:
            found = [m for m in self._messages.values()
                     if instance_id is None or m.instance_id == instance_id]  # fmt: skip
        return sorted(found, key=lambda m: (m.at, _spot(m)))

    def delete_message(self, message: MessageRecord) -> None:
        with self._lock:
            self._messages.pop(_spot(message), None)

    def watches(self, instance_id: str | None = None) -> list[WatchRecord]:
        with self._lock:
            found = [w for i, ws in self._watches.items() for w in ws
                     if instance_id is None or i == instance_id]  # fmt: skip
        return sorted(found, key=_spot)

    def changes(self, after: int = 0, limit: int = 100) -> list[ChangeRecord]:
        with self._lock:
            return self._changes[max(after, 0) : max(after, 0) + limit]

    def last_change(self) -> int:
        with self._lock:
            return len(self._changes)

    def change_mark(self) -> int:
        return self.signal.mark()

    def wait_change(self, instance_id: str | None, mark: int, timeout: float) -> bool:
        return self.signal.wait(instance_id, mark, timeout)

    def wait_for_work(self, timeout: float) -> bool:
        with self._work:
            return self._work.wait(timeout)

    def ping(self) -> None:
        pass  # always there

    def close(self) -> None:
        pass

    # -- schedules ---------------------------------------------------------------------------

    def put_schedule(self, record: ScheduleRecord, expected_version: int | None) -> int:
        with self._lock:
            old = self._schedules.get(record.name)
            if expected_version is None:
                if old is not None:
                    raise AlreadyExistsError(f"schedule {record.name!r} exists already")
                version = 1
            elif old is None or old.version != expected_version:
                found = "none" if old is None else old.version
                raise ConflictError(
                    f"schedule {record.name!r} changed since it was read (expected version "
                    f"{expected_version}, found {found})"
                )
            else:
                version = old.version + 1
            self._schedules[record.name] = attrs.evolve(record, version=version)
            return version

    def get_schedule(self, name: str) -> ScheduleRecord | None:
        with self._lock:
            return self._schedules.get(name)

    def list_schedules(self) -> list[ScheduleRecord]:
        with self._lock:
            return sorted(self._schedules.values(), key=lambda s: s.name)

    def due_schedules(
        self, now: datetime, limit: int, workflows: Sequence[str] | None = None
    ) -> list[ScheduleRecord]:
        with self._lock:
            due = [s for s in self._schedules.values()
                   if not s.paused and s.next_at <= now
                   and (workflows is None or s.workflow in workflows)]  # fmt: skip
        return sorted(due, key=lambda s: (s.next_at, s.name))[: max(limit, 0)]

    def delete_schedule(self, name: str) -> bool:
        with self._lock:
            return self._schedules.pop(name, None) is not None
