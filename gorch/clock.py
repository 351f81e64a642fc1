"""The one clock function.

Everything in gorch that needs the current time calls :func:`now`, so that a test can move time
with freezegun (``freeze_time`` patches ``datetime.now``) and the engine can be given a clock.
"""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["format_time", "now", "parse_time"]


def now() -> datetime:
    """Return the current time as an aware UTC ``datetime``."""
    return datetime.now(UTC)


def format_time(at: datetime) -> str:
    """Return ``at`` as ISO-8601 UTC text, e.g. ``2026-11-25T10:00:00+00:00``.

    A naive ``datetime`` is taken to be UTC already.
    """
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return at.astimezone(UTC).isoformat()


def parse_time(text: str) -> datetime:
    """Parse ISO-8601 text (as written by :func:`format_time`) into an aware UTC ``datetime``."""
    at = datetime.fromisoformat(text)
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return at.astimezone(UTC)
