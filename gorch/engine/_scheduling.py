"""The engine's schedules: start an instance of a workflow at every tick of a cron expression.

:meth:`Scheduling.schedule` keeps a schedule in the store (upserted by name);
:meth:`Scheduling.fire_schedules`, which every :class:`~gorch.engine.Worker` calls in each turn,
starts one instance per due tick.

A tick is started exactly once, however many workers fire at once and whatever crashes in
between, by two rules:

- **The instance's id is the tick**: ``f"{name}@{tick:%Y-%m-%dT%H:%M:%SZ}"`` (the tick in UTC),
  started with :meth:`~gorch.engine.Engine.start` (``defer=True``, so a worker runs it). Of two
  starts of one tick, the second fails with ``AlreadyExistsError``: it was started already.
- **Start, then move on**: the schedule's ``next_at`` is advanced only after the tick's start
  committed, with a compare-and-set on the schedule's version (``Store.put_schedule``), so only
  one of the workers that found the tick due advances it. A crash between the two leaves the
  schedule due: the next fire starts the same id again (``AlreadyExistsError``, nothing new)
  and advances it.

Times: a cron expression is read in the schedule's IANA time zone (``croniter``, which handles
the summer-time changes: a wall-clock time that does not exist that day fires at the first
minute after the gap, one that happens twice fires twice); the store keeps aware UTC times; the
clock is :func:`gorch.clock.now`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, available_timezones

import attrs
import orjson
from attrs import define

from gorch import clock, serde
from gorch.engine._delivering import Delivering
from gorch.errors import (
    AlreadyExistsError,
    ConflictError,
    InputError,
    NotFoundError,
    SerializationError,
    StoreUnavailableError,
    did_you_mean,
    suggest,
)
from gorch.limits import MAX_TEXT, is_text
from gorch.store.base import ScheduleRecord

__all__ = ["FIRE_BATCH", "TICK_FORMAT", "Cron", "Schedule", "Scheduling", "tick_id"]

log = logging.getLogger("gorch.engine")

TICK_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
"""How a tick (in UTC) is written in the id of the instance it starts."""

FIRE_BATCH = 100
"""At most this many due schedules per :meth:`Scheduling.fire_schedules` call, and at most
this many missed ticks of one ``catchup=True`` schedule (the worker's next turn goes on)."""

_MAX_NAME = MAX_TEXT - len("@2026-01-01T02:00:00Z")
_PROBES = 180  # minutes Cron.after looks on for a tick after a wrong answer
_TRIES = 5  # reads again after a concurrent write, before giving up with ConflictError
_CRON_FORM = (
    "five fields, minute hour day-of-month month day-of-week, e.g. '0 2 * * *' (02:00 every "
    "day) or '*/15 9-17 * * MON-FRI'"
)


def tick_id(name: str, tick: datetime) -> str:
    """The id of the instance that schedule ``name`` starts for ``tick``.

    Example:
        >>> tick_id("nightly-report", datetime(2026, 1, 5, 2, tzinfo=UTC))
        'nightly-report@2026-01-05T02:00:00Z'
    """
    return f"{name}@{tick.astimezone(UTC).strftime(TICK_FORMAT)}"


@define(frozen=True, slots=True)
class Schedule:
    """A schedule, as :meth:`Scheduling.schedules` and the other schedule calls return it.

    Attributes:
        name: its name, unique in the store.
        workflow: the registered workflow each tick starts.
        cron: the five-field cron expression, read in ``timezone``.
        timezone: the IANA time zone name the expression is read in.
        catchup: after an outage, start every missed tick (True) or only the latest (False).
        paused: a paused schedule starts nothing; resuming it skips the ticks it missed.
        next_at: the next tick (aware UTC).
        last_tick: the last tick started (aware UTC), or None.
        created_at, updated_at: when it was made and last written.
        data: the data each tick starts from, as JSON (None: the workflow class made with no
            arguments).
    """

    name: str
    workflow: str
    cron: str
    timezone: str
    catchup: bool
    paused: bool
    next_at: datetime
    last_tick: datetime | None
    created_at: datetime
    updated_at: datetime
    data: Any = None

    @classmethod
    def of(cls, row: ScheduleRecord) -> Schedule:
        """The schedule of a stored row."""
        return cls(
            name=row.name, workflow=row.workflow, cron=row.cron, timezone=row.timezone,
            catchup=row.catchup, paused=row.paused, next_at=row.next_at,
            last_tick=row.last_tick, created_at=row.created_at, updated_at=row.updated_at,
            data=None if row.data is None else orjson.loads(row.data),
        )  # fmt: skip

    def to_json(self) -> dict[str, Any]:
        """The schedule as a JSON object (the HTTP API's and ``gorch schedules --json``'s);
        times as ISO-8601 UTC text."""
        times = {
            key: None if at is None else clock.format_time(at)
            for key, at in (("next_at", self.next_at), ("last_tick", self.last_tick),
                            ("created_at", self.created_at), ("updated_at", self.updated_at))
        }  # fmt: skip
        return {
            "name": self.name, "workflow": self.workflow, "cron": self.cron,
            "timezone": self.timezone, "catchup": self.catchup, "paused": self.paused,
            **times, "data": self.data,
        }  # fmt: skip


class Cron:
    """A cron expression read in a time zone: its ticks, in UTC.

    Raises:
        InputError: ``expression`` is not five valid cron fields, it never fires, or ``zone``
            is not an IANA time zone name.
    """

    def __init__(self, expression: str, zone: str) -> None:
        from croniter import croniter  # type: ignore[import-untyped]  # (on first use: 40 ms)

        if not isinstance(expression, str) or len(expression.split()) != 5:
            raise InputError(f"cron {expression!r} is not a cron expression of {_CRON_FORM}")
        if not croniter.is_valid(expression):
            raise InputError(f"cron {expression!r} is not valid; write {_CRON_FORM}")
        self.expression = " ".join(expression.split())
        self.zone = _zone(zone)
        self._croniter = croniter
        self.after(datetime(2000, 1, 1, tzinfo=UTC))  # one that never fires is refused now

    def after(self, at: datetime) -> datetime:
        """The first tick strictly after ``at``.

        Always later than ``at``, so that a schedule always moves on: should the wall-clock
        arithmetic answer a time that is not (freezegun's datetimes drop the ``fold`` that
        tells the second 02:30 of an autumn night from the first), it looks again from a
        minute on.
        """
        probe = at
        for _ in range(_PROBES):
            found = self._next(probe)
            if found > at:
                return found
            probe += timedelta(minutes=1)
        raise RuntimeError(f"cron {self.expression!r}: no tick found after {at}")  # never

    def _next(self, at: datetime) -> datetime:
        from croniter import CroniterBadDateError

        try:
            found: datetime = self._croniter(self.expression, self._local(at)).get_next(datetime)
        except CroniterBadDateError:
            raise InputError(
                f"cron {self.expression!r} never fires (no such date); write {_CRON_FORM}"
            ) from None
        return found.astimezone(UTC)

    def _local(self, at: datetime) -> datetime:
        """``at`` in the schedule's zone. (``zone.fromutc`` rather than ``astimezone``: it
        sets ``fold`` on a wall-clock time that happens twice, which freezegun's datetimes
        lose in ``astimezone``.)"""
        return self.zone.fromutc(at.astimezone(UTC).replace(tzinfo=self.zone))

    def latest(self, now: datetime) -> datetime:
        """The last tick at or before ``now``."""
        start = self._local(now)
        before: datetime = self._croniter(self.expression, start).get_prev(datetime)
        following = self.after(before)
        return following if following <= now else before.astimezone(UTC)


def _zone(name: str) -> ZoneInfo:
    """The IANA time zone ``name``; InputError saying what to pass."""
    try:
        if isinstance(name, str) and name and "\x00" not in name:
            return ZoneInfo(name)
    except (ValueError, KeyError, OSError):  # ZoneInfoNotFoundError is a KeyError
        pass
    close = suggest(name, available_timezones()) if isinstance(name, str) else []
    raise InputError(
        f"timezone {name!r} is not an IANA time zone name; pass one such as 'UTC', "
        f"'Europe/Berlin' or 'America/New_York'.{did_you_mean(close)}"
    )


class Scheduling(Delivering):
    """:class:`~gorch.engine.Engine`'s schedule calls."""

    def schedule(
        self,
        name: str,
        workflow: str,
        cron: str,
        *,
        data: Any = None,
        timezone: str = "UTC",
        catchup: bool = False,
    ) -> Schedule:
        """Start an instance of ``workflow`` at every tick of ``cron``, from now on.

        An upsert, as Temporal's and DBOS's schedules are: calling it again with the same
        ``name`` replaces the definition (so an application may declare its schedules each
        time it starts). The same definition again changes nothing; a new ``cron`` or
        ``timezone`` counts the next tick from now, anything else keeps it (a schedule behind
        after an outage stays behind, for its ``catchup`` policy); a paused schedule stays
        paused.

        Args:
            name: the schedule's name: 1 to 179 characters, without "/" or NUL; each tick's
                instance id is ``f"{name}@{tick in UTC as %Y-%m-%dT%H:%M:%SZ}"``.
            workflow: a registered workflow's name.
            cron: five fields, minute hour day-of-month month day-of-week (``"0 2 * * *"``:
                02:00 every day).
            data: an instance of the workflow's class that every tick starts from (stored once
                as JSON; each tick gets a fresh copy), or None: the class made with no
                arguments at each tick.
            timezone: the IANA time zone ``cron`` is read in (``"Europe/Berlin"``).
            catchup: when ticks were missed (nothing ran), start each of them, oldest first
                (True), or only the latest, skipping the others (False).

        Raises:
            NotFoundError: ``workflow`` is not registered (the registered ones listed).
            InputError: a bad name, cron expression, time zone or data; nothing was stored.
        """
        record = self._definition(name, workflow, cron, data, timezone, catchup)
        return Schedule.of(self._retrying(lambda: self._upsert(record), name))

    def schedules(self) -> list[Schedule]:
        """Every schedule, by name."""
        return [Schedule.of(row) for row in self.store.list_schedules()]

    def pause_schedule(self, name: str) -> Schedule:
        """Stop schedule ``name`` starting instances (already paused: nothing changes).

        Raises:
            NotFoundError: there is no schedule ``name`` (the closest names suggested).
        """
        return Schedule.of(self._retrying(lambda: self._set_paused(name, True), name))

    def resume_schedule(self, name: str) -> Schedule:
        """Let paused schedule ``name`` start instances again, from its next tick after now:
        the ticks it missed while paused are skipped, whatever its ``catchup`` (that policy is
        for ticks missed while nothing ran). Not paused: nothing changes.

        Raises:
            NotFoundError: there is no schedule ``name`` (the closest names suggested).
        """
        return Schedule.of(self._retrying(lambda: self._set_paused(name, False), name))

    def unschedule(self, name: str) -> None:
        """Delete schedule ``name``; the instances it started are left as they are.

        Raises:
            NotFoundError: there is no schedule ``name`` (the closest names suggested).
        """
        if not isinstance(name, str) or not self.store.delete_schedule(name):
            raise self._no_schedule(name)

    def fire_schedules(self, now: datetime | None = None) -> list[str]:
        """Start an instance for every due tick of the schedules of this engine's workflows;
        the ids of the instances this call started. Each :class:`~gorch.engine.Worker` calls
        it in every turn; cheap when nothing is due (one indexed query).

        A tick that another worker started already is not started again (its id exists), and
        each schedule moves on only once (see the module's docs). Missed ticks: with
        ``catchup=False`` only the latest due tick is started and the others are skipped;
        with ``catchup=True`` each is started, oldest first (at most :data:`FIRE_BATCH` per
        call). A tick whose instance cannot be made (its data no longer loads into the class,
        the class raises) is logged and skipped.

        Args:
            now: the time to fire for (default: :func:`gorch.clock.now`); a naive one is UTC.

        Raises:
            StoreUnavailableError: the store cannot be used now; what was started stays
                started, and the rest is done by a later call.
        """
        at = clock.now() if now is None else now
        at = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
        started: list[str] = []
        for row in self.store.due_schedules(at, FIRE_BATCH, sorted(self.workflows)):
            started += self._fire(row, at)
        return started

    # -- defining ----------------------------------------------------------------------------

    def _definition(
        self, name: str, workflow: str, cron: str, data: Any, timezone: str, catchup: bool
    ) -> ScheduleRecord:
        """A schedule's row from the arguments (times still to set); raises for bad ones."""
        if not is_text(name) or "/" in name or len(name) > _MAX_NAME:
            raise InputError(
                f"a schedule name must be text of 1 to {_MAX_NAME} characters, without NUL or "
                f'"/" (it is part of each tick\'s instance id and of the URL): {name!r}'
            )
        if not isinstance(workflow, str):
            raise InputError(f"schedule {name!r}: workflow must be a registered workflow's name")
        cls = self._class(workflow)
        parsed = Cron(cron, timezone)
        if not isinstance(catchup, bool):
            raise InputError(f"schedule {name!r}: catchup must be True or False, not {catchup!r}")
        text = _data_text(name, workflow, cls, data)
        epoch = datetime(1970, 1, 1, tzinfo=UTC)
        return ScheduleRecord(
            name=name, workflow=workflow, cron=parsed.expression, timezone=timezone, data=text,
            catchup=catchup, paused=False, next_at=epoch, last_tick=None, created_at=epoch,
            updated_at=epoch,
        )  # fmt: skip

    def _upsert(self, record: ScheduleRecord) -> ScheduleRecord:
        """Insert or replace the definition ``record``; ConflictError if someone wrote the
        row in between (read again)."""
        now = clock.now()
        old = self.store.get_schedule(record.name)
        if old is None:
            new = attrs.evolve(record, next_at=Cron(record.cron, record.timezone).after(now),
                               created_at=now, updated_at=now)  # fmt: skip
            return attrs.evolve(new, version=self.store.put_schedule(new, None))
        same_time = (old.cron, old.timezone) == (record.cron, record.timezone)
        if same_time and (old.workflow, old.data, old.catchup) == (
            record.workflow, record.data, record.catchup,
        ):  # fmt: skip
            return old
        next_at = old.next_at if same_time else Cron(record.cron, record.timezone).after(now)
        new = attrs.evolve(record, paused=old.paused, next_at=next_at, last_tick=old.last_tick,
                           created_at=old.created_at, updated_at=now)  # fmt: skip
        return attrs.evolve(new, version=self.store.put_schedule(new, old.version))

    def _set_paused(self, name: str, paused: bool) -> ScheduleRecord:
        row = self._schedule_row(name)
        if row.paused == paused:
            return row
        now = clock.now()
        next_at = row.next_at if paused else Cron(row.cron, row.timezone).after(now)
        new = attrs.evolve(row, paused=paused, next_at=next_at, updated_at=now)
        return attrs.evolve(new, version=self.store.put_schedule(new, row.version))

    def _retrying(self, write: Callable[[], ScheduleRecord], name: str) -> ScheduleRecord:
        """``write()``, read and done again while another writer got in between (an
        ``AlreadyExistsError`` of an insert too)."""
        for _ in range(_TRIES - 1):
            try:
                return write()
            except (ConflictError, AlreadyExistsError):
                continue
        try:
            return write()
        except AlreadyExistsError:
            raise ConflictError(
                f"schedule {name!r} kept changing while it was written; try again"
            ) from None

    def _schedule_row(self, name: str) -> ScheduleRecord:
        row = self.store.get_schedule(name) if isinstance(name, str) else None
        if row is None:
            raise self._no_schedule(name)
        return row

    def _no_schedule(self, name: object) -> NotFoundError:
        names = [s.name for s in self.store.list_schedules()]
        known = ", ".join(map(repr, names)) or "none"
        hint = did_you_mean(suggest(name, names)) if isinstance(name, str) else ""
        return NotFoundError(f"no schedule is named {name!r} (schedules: {known}).{hint}")

    # -- firing ------------------------------------------------------------------------------

    def _fire(self, row: ScheduleRecord, now: datetime) -> list[str]:
        """Start the due ticks of ``row``, moving it on after each; the ids started."""
        try:
            cron = Cron(row.cron, row.timezone)
        except InputError as exc:  # a row written by hand: it stays due, and says why
            log.error("schedule %r cannot fire: %s", row.name, exc)
            return []
        started: list[str] = []
        current: ScheduleRecord | None = row
        for _ in range(FIRE_BATCH if row.catchup else 1):
            if current is None or current.next_at > now:
                break
            tick = current.next_at if current.catchup else max(cron.latest(now), current.next_at)
            id = self._start_tick(current, tick)
            if id is not None:
                started.append(id)
            current = self._advance(current, tick, cron.after(tick))
        return started

    def _start_tick(self, row: ScheduleRecord, tick: datetime) -> str | None:
        """Start ``row``'s instance for ``tick``; its id, or None if it was started already
        (or cannot be made: logged, and skipped)."""
        id = tick_id(row.name, tick)
        try:
            cls = self._class(row.workflow)
            obj = cls() if row.data is None else serde.loads(row.data, cls)
            self.start(row.workflow, obj, id=id, defer=True)
        except AlreadyExistsError:
            return None  # another worker (or this one, before a crash) started it
        except StoreUnavailableError:
            raise
        except Exception:
            log.exception("schedule %r: the instance of tick %s could not be started; the tick "
                          "is skipped", row.name, clock.format_time(tick))  # fmt: skip
            return None
        log.info("schedule %r started %s", row.name, id)
        return id

    def _advance(
        self, row: ScheduleRecord, tick: datetime, next_at: datetime
    ) -> ScheduleRecord | None:
        """Move ``row`` on past ``tick`` (a compare-and-set on its version); the row after,
        or None if another worker moved it first."""
        if row.next_at < tick:
            log.info("schedule %r skipped the ticks from %s to before %s (catchup=False)",
                     row.name, clock.format_time(row.next_at), clock.format_time(tick))  # fmt: skip
        new = attrs.evolve(row, next_at=next_at, last_tick=tick, updated_at=clock.now())
        try:
            return attrs.evolve(new, version=self.store.put_schedule(new, row.version))
        except ConflictError:
            return None  # moved on (or changed, or deleted) by someone else: theirs stands


def _data_text(name: str, workflow: str, cls: type, data: Any) -> str | None:
    """The stored JSON of a schedule's ``data`` (None: the class made with no arguments,
    which is tried now); InputError if it cannot be."""
    what = f"schedule {name!r} of workflow {workflow!r}"
    if data is None:
        try:
            serde.dumps(cls())
        except Exception as exc:
            raise InputError(
                f"{what}: {cls.__name__}() cannot be made with no arguments and stored "
                f"({type(exc).__name__}: {exc}); pass data={cls.__name__}(...)"
            ) from None
        return None
    if not isinstance(data, cls):
        raise InputError(f"{what}: data must be a {cls.__name__}, not {type(data).__name__}")
    try:
        return serde.dumps(data)
    except SerializationError as exc:
        raise InputError(f"{what}: the data cannot be stored: {exc}", details=exc.details) from None
