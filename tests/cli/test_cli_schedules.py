"""The schedule commands: ``gorch schedule``, ``schedules``, ``schedule-pause``,
``schedule-resume`` and ``unschedule``, each refusal clear and changing nothing."""

from __future__ import annotations

from datetime import timedelta

from _gorch import Gorch, flat

from gorch import clock


def schedules(g: Gorch) -> list[tuple[str, str, str, bool]]:
    """(name, cron, timezone, paused) of each schedule, read back without the CLI."""
    with g.engine() as e:
        return [(s.name, s.cron, s.timezone, s.paused) for s in e.schedules()]


def test_schedule_makes_a_schedule_and_schedules_lists_it(g: Gorch) -> None:
    out = flat(g("schedule", "nightly", "pizza", "0 2 * * *").stdout)
    assert out.startswith("scheduled nightly: pizza at '0 2 * * *' (UTC); next ")
    made = g.json("schedule", "berlin", "pizza", "30 6 * * MON-FRI", "--timezone",
                  "Europe/Berlin", "--catchup", "--data", '{"status": "planned"}')  # fmt: skip
    assert made["name"] == "berlin" and made["catchup"] is True and made["paused"] is False
    assert made["timezone"] == "Europe/Berlin" and made["data"]["status"] == "planned"
    assert made["next_at"].endswith("+00:00") and made["last_tick"] is None
    assert schedules(g) == [
        ("berlin", "30 6 * * MON-FRI", "Europe/Berlin", False),
        ("nightly", "0 2 * * *", "UTC", False),
    ]
    table = g("schedules").stdout
    assert "berlin" in table and "nightly" in table and "Europe/Berlin" in table
    listed = g.json("schedules")
    assert [s["name"] for s in listed] == ["berlin", "nightly"]
    assert listed[0] == made


def test_scheduling_a_name_again_replaces_it(g: Gorch) -> None:
    g("schedule", "s", "pizza", "0 2 * * *")
    g("schedule", "s", "pizza", "0 3 * * *", "--timezone", "Asia/Tokyo")
    assert schedules(g) == [("s", "0 3 * * *", "Asia/Tokyo", False)]


def test_no_schedules_says_how_to_make_one(g: Gorch) -> None:
    assert "gorch schedule NAME WORKFLOW CRON" in g("schedules").stdout
    assert g.json("schedules") == []


def test_bad_input_is_refused_and_nothing_is_stored(g: Gorch) -> None:
    assert "five fields" in g.fail("schedule", "s", "pizza", "0 2 * *")
    assert "is not valid" in g.fail("schedule", "s", "pizza", "99 * * * *")
    says = g.fail("schedule", "s", "pizza", "0 2 * * *", "--timezone", "Europe/Berln")
    assert "IANA time zone" in says and "Did you mean 'Europe/Berlin'" in says
    says = g.fail("schedule", "s", "piza", "0 2 * * *")
    assert "not registered" in says and "Did you mean 'pizza'" in says
    assert "not valid JSON" in g.fail("schedule", "s", "pizza", "0 2 * * *", "--data", "{")
    says = g.fail("schedule", "s", "pizza", "0 2 * * *", "--data", '{"amount": "lots"}')
    assert "the data is not a valid PizzaOrder" in says and "amount" in says
    assert "schedule name" in g.fail("schedule", "a/b", "pizza", "0 2 * * *")
    assert schedules(g) == []


def test_pause_resume_and_unschedule(g: Gorch) -> None:
    g("schedule", "nightly", "pizza", "0 2 * * *")
    assert flat(g("schedule-pause", "nightly").stdout) == "paused nightly: paused"
    assert schedules(g) == [("nightly", "0 2 * * *", "UTC", True)]
    assert "paused" in g("schedules").stdout
    resumed = g.json("schedule-resume", "nightly")
    assert resumed["paused"] is False
    assert clock.parse_time(resumed["next_at"]) - clock.now() <= timedelta(days=1)
    assert g.json("schedule-pause", "nightly")["paused"] is True
    assert flat(g("unschedule", "nightly").stdout) == "deleted schedule nightly"
    assert schedules(g) == []
    g("schedule", "again", "pizza", "0 2 * * *")
    assert g.json("unschedule", "again") == {"name": "again", "deleted": True}


def test_an_unknown_schedule_is_refused_with_the_closest_name(g: Gorch) -> None:
    g("schedule", "nightly", "pizza", "0 2 * * *")
    for command in ("schedule-pause", "schedule-resume", "unschedule"):
        says = g.fail(command, "nigthly")
        assert "no schedule is named 'nigthly'" in says and "Did you mean 'nightly'" in says
    assert schedules(g) == [("nightly", "0 2 * * *", "UTC", False)]


def test_a_scheduled_tick_is_started_for_the_worker(g: Gorch) -> None:
    made = g.json("schedule", "nightly", "pizza", "0 2 * * *")
    with g.engine() as e:
        started = e.fire_schedules(clock.parse_time(made["next_at"]))
    assert started == g.ids() and started[0].startswith("nightly@") and started[0].endswith("Z")
