"""What a store keeps of schedules: :class:`ScheduleRecord` and the methods of the
:class:`~gorch.store.base.Store` protocol that read and write them (:class:`ScheduleStore`).

A schedule is one row, named, written with optimistic concurrency like an instance: every
write names the version it read, so that of two workers that both found a tick due only one
moves the schedule on (the engine's ``fire_schedules``). The rows are the store's to keep; what
a cron expression means is the engine's (``gorch.engine._scheduling``).

(Kept beside ``base.py`` rather than in it so that each module stays a room of its own size;
``gorch.store.base`` re-exports :class:`ScheduleRecord`, and its ``Store`` protocol includes
:class:`ScheduleStore`.)
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from attrs import define

__all__ = ["ScheduleRecord", "ScheduleStore"]


@define(slots=True, frozen=True)
class ScheduleRecord:
    """One schedule's row (table ``gorch_schedules``).

    Attributes:
        name: the schedule's name (its key).
        workflow: the registered workflow each tick starts.
        cron: a five-field cron expression, read in ``timezone``.
        timezone: an IANA time zone name (``"UTC"``, ``"Europe/Berlin"``).
        data: the workflow object each tick starts from, as JSON text (``gorch.dumps``), or
            None: the class made with no arguments.
        catchup: whether ticks missed while nothing ran are each started (True) or only the
            latest of them (False).
        paused: a paused schedule is never due.
        next_at: the next tick (aware UTC).
        last_tick: the last tick started, or None.
        created_at, updated_at: when the row was made and last written.
        version: bumped by every write (given by the store on reading; ignored on writing).
    """

    name: str
    workflow: str
    cron: str
    timezone: str
    data: str | None
    catchup: bool
    paused: bool
    next_at: datetime
    last_tick: datetime | None
    created_at: datetime
    updated_at: datetime
    version: int = 0


class ScheduleStore(Protocol):
    """The schedule methods every store has (part of :class:`~gorch.store.base.Store`)."""

    def put_schedule(self, record: ScheduleRecord, expected_version: int | None) -> int:
        """Write ``record`` and return its new version: insert it (``expected_version``
        None; version 1) or replace the stored row if it is still at ``expected_version``.

        Raises:
            AlreadyExistsError: ``expected_version`` is None and a schedule of that name
                exists.
            ConflictError: the stored row is not at ``expected_version`` (or is gone).
                Nothing was written.
        """
        ...

    def get_schedule(self, name: str) -> ScheduleRecord | None:
        """The schedule's row, or None."""
        ...

    def list_schedules(self) -> list[ScheduleRecord]:
        """Every schedule, by name."""
        ...

    def due_schedules(
        self, now: datetime, limit: int, workflows: Sequence[str] | None = None
    ) -> list[ScheduleRecord]:
        """Up to ``limit`` schedules that are not paused and whose ``next_at`` is at or
        before ``now``, soonest first (then by name); ``workflows``: only schedules of these
        workflows (None: of any; empty: none). One indexed query."""
        ...

    def delete_schedule(self, name: str) -> bool:
        """Delete the schedule; whether there was one."""
        ...
