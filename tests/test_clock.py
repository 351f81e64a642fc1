"""The one clock function: UTC, and moved by freezegun."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from freezegun import freeze_time

from gorch import clock


def test_now_is_aware_utc_and_follows_freezegun() -> None:
    with freeze_time("2026-11-25 10:00:00"):
        assert clock.now() == datetime(2026, 11, 25, 10, tzinfo=UTC)
    assert clock.now().tzinfo is UTC


def test_format_and_parse_round_trip_in_utc() -> None:
    at = datetime(2026, 1, 1, 12, 30, tzinfo=timezone(timedelta(hours=2)))
    text = clock.format_time(at)
    assert text == "2026-01-01T10:30:00+00:00"
    assert clock.parse_time(text) == at
    assert clock.format_time(datetime(2026, 1, 1)) == "2026-01-01T00:00:00+00:00"
    assert clock.parse_time("2026-01-01T00:00:00").tzinfo is UTC
