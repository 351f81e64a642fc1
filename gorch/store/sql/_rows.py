"""Rows into records, so that a value that cannot be read fails only its own row.

A row can hold what gorch never writes there. SQLite keeps any value in any column: a
timestamp column may hold ``'garbage'`` (``UPDATE gorch_instances SET updated_at =
'garbage'``), an integer column text. PostgreSQL's ``timestamptz`` holds ``infinity`` and
years past 9999, which Python's ``datetime`` cannot (psycopg refuses to load them). Raising
for such a value would fail every read that meets the row: a listing for everyone, and a
worker's claim of a batch that includes it.

So a reader never raises for one value: it puts a stand-in in the field and notes the defect
in the record's ``defects`` (``"updated_at: 'garbage' is not a timestamp"``), for the engine
to act on. Stand-ins: the Unix epoch (1970-01-01T00:00:00Z) for a timestamp that must be
there, None for an optional one, 0 for an integer. History rows and idempotency keys, whose
time is only informative, read an unreadable time as the epoch without a note.

Values that read fine cost nothing extra: a record is built directly, and only a row that
fails to is read again value by value.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import orjson

from gorch.store.base import InstanceRecord, TimerRecord

__all__ = ["EPOCH", "at_text", "at_tuple", "instance", "read_time", "safe_timestamptz", "timer"]

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
"""The stand-in for a timestamp that cannot be read."""

_BAD = (ValueError, TypeError, AttributeError, OverflowError)


class _Unloadable(str):
    """The text of a PostgreSQL value psycopg could not load, and why."""

    reason: str


def _time(v: Any) -> Any:
    if v is None:
        return None
    if isinstance(v, str):
        v = datetime.fromisoformat(v)
    return v.replace(tzinfo=UTC) if v.tzinfo is None else v.astimezone(UTC)


def read_time(v: Any) -> Any:
    """A stored time as an aware UTC datetime (None stays None); the epoch if unreadable."""
    try:
        return _time(v)
    except _BAD:
        return EPOCH


def at_text(at: Sequence[str]) -> str:
    """``at_statements`` as stored: a JSON list."""
    return orjson.dumps(list(at)).decode()


def at_tuple(text: Any) -> tuple[str, ...]:
    """``at_statements`` as read: a JSON list of names (anything unreadable reads as none)."""
    if not text or text == "[]":
        return ()
    try:
        found = orjson.loads(text)
    except orjson.JSONDecodeError:
        return ()
    return tuple(str(x) for x in found) if isinstance(found, list) else ()


def _show(v: Any) -> str:
    text = repr(str(v) if isinstance(v, _Unloadable) else v)
    return text if len(text) <= 60 else text[:59] + "…"


def _time_or_defect(name: str, v: Any, stand_in: datetime | None, defects: list[str]) -> Any:
    try:
        return _time(v)
    except _BAD:
        if isinstance(v, _Unloadable):
            defects.append(f"{name}: {_show(v)} {v.reason}")
        else:
            defects.append(f"{name}: {_show(v)} is not a timestamp")
        return stand_in


def _int_or_defect(name: str, v: Any, defects: list[str]) -> int:
    if v.__class__ is int:
        return int(v)
    defects.append(f"{name}: {_show(v)} is not an integer")
    return 0


def instance(r: Sequence[Any]) -> InstanceRecord:
    """An instance row (the columns of ``_dialect.INSTANCE_COLUMNS``) as a record."""
    try:
        rec = InstanceRecord(
            r[0], r[1], r[2], r[3], r[4], _time(r[5]), _time(r[6]), r[7], r[8], _time(r[9]),
            r[10], _time(r[11]), r[12], (), at_tuple(r[13]), r[14],
        )  # fmt: skip
    except _BAD:
        return _defective(r)
    if r[7].__class__ is not int or r[10].__class__ is not int:
        return _defective(r)
    return rec


def _defective(r: Sequence[Any]) -> InstanceRecord:
    d: list[str] = []
    return InstanceRecord(
        id=r[0],
        workflow=r[1],
        status=r[2],
        state=r[3],
        data=r[4],
        created_at=_time_or_defect("created_at", r[5], EPOCH, d),
        updated_at=_time_or_defect("updated_at", r[6], EPOCH, d),
        version=_int_or_defect("version", r[7], d),
        lease_owner=r[8],
        lease_expires=_time_or_defect("lease_expires", r[9], None, d),
        attempts=_int_or_defect("attempts", r[10], d),
        next_attempt_at=_time_or_defect("next_attempt_at", r[11], None, d),
        last_error=r[12],
        defects=tuple(d),
        at_statements=at_tuple(r[13]),
        parent_id=r[14],
    )


def timer(r: Sequence[Any]) -> TimerRecord:
    """A timer row (``instance_id, thread_id, name, pc, due_at``) as a record."""
    try:
        return TimerRecord(r[0], r[1], r[2], r[3], _time(r[4]))
    except _BAD:
        d: list[str] = []
        due = _time_or_defect("due_at", r[4], EPOCH, d)
        return TimerRecord(r[0], r[1], r[2], r[3], due, defects=tuple(d))


def safe_timestamptz(cursor: Any) -> None:
    """Make ``cursor`` (psycopg) load a ``timestamptz`` that Python cannot hold (``infinity``,
    a year past 9999) as its text, for the readers above to note, instead of raising."""
    import psycopg
    from psycopg.adapt import Loader
    from psycopg.pq import Format

    oid = psycopg.adapters.types["timestamptz"].oid
    base = cursor.adapters.get_loader(oid, Format.TEXT)

    class SafeTimestamptz(Loader):
        def __init__(self, oid: int, context: Any = None) -> None:
            super().__init__(oid, context)
            self._load = base(oid, context).load

        def load(self, data: Any) -> Any:
            try:
                return self._load(data)
            except psycopg.DataError:
                text = _Unloadable(bytes(data).decode())
                text.reason = "is not a timestamp Python can hold"
                return text

    cursor.adapters.register_loader(oid, SafeTimestamptz)
