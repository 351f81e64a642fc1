"""The operators' repairs: ``gorch goto`` (dry run, asking, applying) and ``pause``,
``unpause``, ``cancel``, ``retry`` on ids or on a selection, all or nothing.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from _cli_workflows import Flaky
from _gorch import (
    CART_EVENTS,
    CONFIRMED,
    MARGHERITA,
    PIZZA,
    Gorch,
    flat,
    order,
)

from gorch import clock
from gorch.cli import cli
from gorch.engine import RunStatus
from gorch.store import Write

# -- goto -----------------------------------------------------------------------------------

PLAN = [
    "thread '_main_' of workflow 'order-1' would move:",
    "  from WaitingEvent at 'for the cart'",
    "  to   WaitingEvent at 'for a cook'",
    "  set up: StartCooking",
]


def test_goto_dry_run_shows_the_plan_and_changes_nothing(g: Gorch) -> None:
    order(g)
    before = g.snapshot("order-1")
    result = g("goto", "order-1", "for a cook", "--dry-run")
    assert result.stdout.splitlines() == PLAN
    assert "apply?" not in result.stderr
    assert g.snapshot("order-1") == before

    plan = g.json("goto", "order-1", "for a cook", "--dry-run")
    assert plan["applied"] is False
    assert (plan["from_step"], plan["to_step"]) == ("for the cart", "for a cook")
    assert plan["setup"] == ["StartCooking"] and plan["description"] == PLAN
    # --dry-run wins over --yes.
    g("goto", "order-1", "for a cook", "--dry-run", "--yes")
    assert g.snapshot("order-1") == before


def test_goto_asks_and_no_changes_nothing(g: Gorch) -> None:
    order(g)
    before = g.snapshot("order-1")
    for answer in ("n\n", "\n", "no\n"):
        result = g("goto", "order-1", "for a cook", input=answer, code=1)
        assert result.stdout.splitlines() == PLAN
        assert "apply? [y/N]" in result.stderr
        assert "not applied: nothing changed" in flat(result.stderr)
        assert g.snapshot("order-1") == before
    # No answer at all (stdin closed) is no too, exit status 1.
    argv = ["--store", str(g.db), "--workflows", PIZZA, "goto", "order-1", "for a cook"]
    result = g.runner.invoke(cli, argv, input="")
    assert result.exit_code == 1 and "not applied: nothing changed" in result.stderr
    assert g.snapshot("order-1") == before


def test_goto_asks_and_yes_applies(g: Gorch) -> None:
    order(g)
    result = g("goto", "order-1", "for a cook", input="y\n")
    assert "apply? [y/N]" in result.stderr
    assert result.stdout.splitlines()[: len(PLAN)] == PLAN
    assert result.stdout.splitlines()[len(PLAN) :] == [
        "moved _main_ of order-1 to 'for a cook'",
        "  _main_ at 'for a cook': waits for StartCooking",
    ]
    inst = g.get("order-1")
    assert inst.waiting_for() == ["StartCooking"]
    assert inst.timers == []  # the cart's timeout went with the cart
    assert g.kinds("order-1")[-1] == "goto"


def test_goto_yes_applies_without_asking(g: Gorch) -> None:
    order(g)
    result = g("goto", "order-1", "for a cook", "--yes")
    assert "apply?" not in result.stderr and result.stderr == ""
    assert result.stdout.splitlines()[0] == "moved _main_ of order-1 to 'for a cook'"
    assert g.get("order-1").waiting_for() == ["StartCooking"]

    plan = g.json("goto", "order-1", "for the oven", "-y")
    assert plan["applied"] is True and plan["to_step"] == "for the oven"
    assert g.get("order-1").waiting_for() == ["Cooked"]
    assert g.kinds("order-1").count("goto") == 2


def test_goto_json_without_yes_asks_then_prints_the_applied_plan(g: Gorch) -> None:
    order(g)
    before = g.snapshot("order-1")
    result = g("goto", "order-1", "for a cook", "--json", input="n\n", code=1)
    assert result.stdout == ""
    assert g.snapshot("order-1") == before
    plan = json.loads(g("goto", "order-1", "for a cook", "--json", input="y\n").stdout)
    assert plan["applied"] is True and plan["instance"] == "order-1"


def test_goto_on_a_paused_instance_keeps_it_paused(g: Gorch) -> None:
    order(g)
    g("pause", "order-1")
    g("goto", "order-1", "for a cook", "--yes")
    inst = g.get("order-1")
    assert inst.status is RunStatus.PAUSED
    assert inst.waiting_for() == ["StartCooking"]


def test_goto_refusals_change_nothing(g: Gorch) -> None:
    order(g, "order-1", *CONFIRMED)
    before = g.snapshot("order-1")
    message = g.fail("goto", "order-1", "for a cok", "--yes")
    assert "no statement named 'for a cok'" in message
    assert "Did you mean 'for a cook'" in message
    assert "no statement named 'for a cok'" in g.fail("goto", "order-1", "for a cok", "--dry-run")
    message = g.fail("goto", "order-1", "for payment", "--yes")
    assert "'for payment' belongs to Go 'payment', not to thread '_main_'" in message
    assert "has no thread 'kitchen'" in g.fail(
        "goto", "order-1", "for a cook", "--thread", "kitchen", "--yes"
    )
    assert "Did you mean 'order-1'?" in g.fail("goto", "order-2", "for a cook", "--yes")
    assert g.snapshot("order-1") == before
    # The right thread makes the same move legal.
    g("goto", "order-1", "for payment", "--thread", "payment", "--yes")
    assert g.snapshot("order-1") != before


# -- pause, unpause, cancel, retry -------------------------------------------------------------


def test_pause_and_unpause_one_instance(g: Gorch) -> None:
    order(g)
    out = g("pause", "order-1").stdout
    assert out == "paused order-1: paused\n"
    assert g.get("order-1").status is RunStatus.PAUSED
    paused = g.snapshot("order-1")
    assert g("pause", "order-1").stdout == "paused order-1: paused\n"  # already: a no-op
    assert g.snapshot("order-1") == paused

    unpaused = g.json("unpause", "order-1")
    assert unpaused["id"] == "order-1" and unpaused["status"] == "waiting"
    assert unpaused["waiting_for"] == CART_EVENTS
    assert g.kinds("order-1")[-2:] == ["paused", "unpaused"]


def test_operators_on_several_ids(g: Gorch) -> None:
    for id in ("a", "b", "c"):
        order(g, id)
    result = g("pause", "a", "b")
    assert result.stdout.splitlines() == ["paused a: paused", "paused b: paused"]
    assert [g.get(i).status.value for i in "abc"] == ["paused", "paused", "waiting"]

    out = g.json("cancel", "a", "c")
    assert [r["id"] for r in out["done"]] == ["a", "c"] and out["errors"] == []
    assert [g.get(i).status.value for i in "abc"] == ["cancelled", "paused", "cancelled"]

    # Refused ids among several: every id is checked first, and one refusal changes nothing;
    # each refused id is named, with why, exit status 1.
    before = {i: g.snapshot(i) for i in "abc"}
    result = g("unpause", "b", "a", "zz", code=1)
    assert result.stdout == ""
    err = result.stderr.splitlines()
    assert err[0] == "error: cannot unpause 2 of the 3 instances, so none was changed:"
    assert "  a: cannot unpause instance 'a': it is cancelled, not paused" in err
    assert "  zz: no instance has id 'zz'" in err
    assert {i: g.snapshot(i) for i in "abc"} == before
    assert g.get("b").status is RunStatus.PAUSED

    out = json.loads(g("pause", "b", "zz", "--json", code=1).stdout)
    assert out == {"done": [], "errors": ["zz: no instance has id 'zz'"]}
    assert {i: g.snapshot(i) for i in "abc"} == before
    # an unknown id among several gets the closest one
    message = g.fail("pause", "b", "ab")
    assert "ab: no instance has id 'ab'. Did you mean" in message
    assert "'a'" in message and "'b'" in message
    # ids given twice are acted on once
    assert g("unpause", "b", "b").stdout.splitlines() == ["unpaused b: waiting"]


def test_operators_on_a_selection_ask_first(g: Gorch) -> None:
    for id in ("a", "b", "c"):
        order(g, id)
    order(g, "done", *CONFIRMED)
    g("cancel", "done")
    before = {i: g.snapshot(i) for i in ("a", "b", "c", "done")}

    result = g("pause", "--status", "waiting", input="n\n", code=1)
    assert "pause 3 instances? [y/N]" in result.stderr
    assert "nothing changed" in flat(result.stderr)
    assert {i: g.snapshot(i) for i in before} == before

    result = g("pause", "-w", "pizza", "-s", "waiting", input="y\n")
    assert result.stdout.startswith("paused 3 of 3 instance(s) (bulk run ")
    assert [g.get(i).status.value for i in "abc"] == ["paused"] * 3
    assert g.snapshot("done") == before["done"]

    result = g("unpause", "-s", "paused", "--yes")
    assert "instances?" not in result.stderr
    assert [g.get(i).status.value for i in "abc"] == ["waiting"] * 3

    result = g("cancel", "-w", "pizza", "-s", "waiting", "-y")
    assert result.stdout.startswith("cancelled 3 of 3 instance(s)")
    assert [g.get(i).status.value for i in "abc"] == ["cancelled"] * 3

    assert g("pause", "-s", "waiting", "-y").stdout == "no instance matches\n"


def test_a_selection_matches_only_what_the_action_is_allowed_for(g: Gorch) -> None:
    for id in ("a", "b"):
        order(g, id)
    g("cancel", "b")
    result = g("pause", "-w", "pizza", "--yes")  # the cancelled one is not selected
    assert result.stdout.startswith("paused 1 of 1 instance(s)")
    assert [g.get(i).status.value for i in "ab"] == ["paused", "cancelled"]
    before = {i: g.snapshot(i) for i in "ab"}
    message = g.fail("retry", "-s", "waiting", "--yes")
    assert message == ("error: retry is allowed for failed instances, not waiting; nothing changed")
    assert {i: g.snapshot(i) for i in "ab"} == before


def test_a_selection_dry_run_counts_and_filters_by_statement_and_age(g: Gorch) -> None:
    for id in ("a", "b", "c"):
        order(g, id)
    order(g, "d", ("AddToCart", MARGHERITA), ("SubmitCart", None))
    before = {i: g.snapshot(i) for i in "abcd"}
    out = g("cancel", "-w", "pizza", "--dry-run").stdout
    assert out.startswith("would cancel 4 instance(s): ")
    assert g.json("cancel", "--at", "for the cart", "--dry-run")["matched"] == 3
    assert g.json("cancel", "--at", "for the manager", "--dry-run")["sample"] == ["d"]
    assert g("cancel", "--older-than", "3d", "--dry-run").stdout == "no instance matches\n"
    assert {i: g.snapshot(i) for i in "abcd"} == before
    assert "'3 days' is not a duration" in g.usage("cancel", "--older-than", "3 days")
    assert "--dry-run counts a selection" in g.usage("cancel", "a", "--dry-run")
    assert "not both" in g.usage("cancel", "a", "--at", "for the cart")
    report = g.json("cancel", "--at", "for the cart", "--yes", "--reason", "cleanup")
    assert (report["matched"], report["changed"], report["failed"]) == (3, 3, 0)
    with g.engine() as e:
        entry = e.history("a", newest_first=True, limit=1)[0]
    assert entry.reason == f"[bulk cancel {report['run']}] cleanup"
    assert g.get("d").status is RunStatus.WAITING


def test_a_selection_reports_an_instance_that_fails_and_goes_on(g: Gorch) -> None:
    for id in ("a", "b", "c"):
        order(g, id)
    with g.engine() as e:  # another process holds b for a while
        row = e.store.get("b")
        assert row is not None
        row.lease_owner, row.lease_expires = "other", clock.now() + timedelta(minutes=5)
        e.store.commit(Write(row, row.version))
    result = g("pause", "-w", "pizza", "--yes", "--json", code=1)
    report = json.loads(result.stdout)
    assert (report["matched"], report["changed"], report["failed"]) == (3, 2, 1)
    assert report["failures"][0]["id"] == "b" and "busy" in report["failures"][0]["error"]
    assert [g.get(i).status.value for i in "abc"] == ["paused", "waiting", "paused"]


def test_operator_refusals_change_nothing(g: Gorch) -> None:
    order(g, "order-1")
    before = g.snapshot("order-1")
    message = g.fail("unpause", "order-1")
    assert message == "error: cannot unpause instance 'order-1': it is waiting, not paused"
    assert "it is waiting, not failed" in g.fail("retry", "order-1")
    assert "Did you mean 'order-1'?" in g.fail("pause", "order-2")
    assert "which instances?" in g.usage("cancel")
    assert "not both" in g.usage("cancel", "order-1", "--status", "waiting", "--yes")
    g("pause", "--status", "bogus", code=2)
    assert g.snapshot("order-1") == before

    g("cancel", "order-1")
    cancelled = g.snapshot("order-1")
    assert cancelled[0] == "cancelled"
    assert "it is cancelled" in g.fail("pause", "order-1")
    assert "it is cancelled" in g.fail("cancel", "order-1")
    assert "it is cancelled, not paused" in g.fail("unpause", "order-1")
    assert g.snapshot("order-1") == cancelled


def test_retry_a_failed_instance(flaky: Gorch) -> None:
    g = flaky
    out = g("start", "flaky", "--id", "f1").stdout
    assert out.splitlines()[0] == "started flaky f1: failed"
    inst = g.get("f1")
    assert inst.status is RunStatus.FAILED
    assert inst.last_error == "RuntimeError: card declined"
    shown = g("show", "f1").stdout
    assert "last error (attempt 1): RuntimeError: card declined" in shown
    assert "charge card" in shown

    # Still broken: the retry runs the step again and it fails again.
    assert g("retry", "f1").stdout == "retried f1: failed\n"
    assert g.get("f1").status is RunStatus.FAILED

    Flaky.broken = False
    out = g.json("retry", "f1")
    assert out["status"] == "waiting" and out["last_error"] is None
    assert out["waiting_for"] == ["Ship"]
    assert g.get("f1").data.charged is True
    assert g.kinds("f1") == [
        "started",
        "step_failed",
        "failed",
        "retry",
        "step_failed",
        "failed",
        "retry",
        "step",
    ]
    before = g.snapshot("f1")
    assert "it is waiting, not failed" in g.fail("retry", "f1")
    assert g.snapshot("f1") == before
    assert "now finished" in g("send", "f1", "Ship").stdout


def test_retry_a_selection_of_failed_instances(flaky: Gorch) -> None:
    g = flaky
    for id in ("f1", "f2"):
        g("start", "flaky", "--id", id)
    order(g, "pizza-1")
    Flaky.broken = False
    result = g("retry", "--status", "failed", input="y\n")
    assert "retry 2 instances? [y/N]" in result.stderr
    assert result.stdout.startswith("retried 2 of 2 instance(s)")
    assert {g.get(i).status for i in ("f1", "f2")} == {RunStatus.WAITING}
    assert g.get("pizza-1").status is RunStatus.WAITING


def test_start_of_a_failing_instance_does_not_say_it_waits_for_a_condition(flaky: Gorch) -> None:
    out = flaky("start", "flaky", "--id", "f1").stdout
    assert "waits for a condition" not in out


# -- who acts, and why ----------------------------------------------------------------------


def _by(g: Gorch, id: str) -> list[tuple[str, str | None, str | None]]:
    with g.engine() as e:
        return [(h.kind, h.actor, h.reason) for h in e.history(id) if h.kind != "step"]


def test_every_operator_command_records_its_actor_and_reason(g: Gorch) -> None:
    import getpass

    order(g, "a")
    g("pause", "a", "--actor", "ana", "--reason", "customer called")
    g("unpause", "a")  # the OS user by default
    g("goto", "a", "for a cook", "--yes", "--actor", "bob", "--reason", "skip")
    g("cancel", "a", "--reason", "duplicate order")
    assert _by(g, "a") == [
        ("started", None, None),
        ("paused", "ana", "customer called"),
        ("unpaused", getpass.getuser(), None),
        ("goto", "bob", "skip"),
        ("cancelled", getpass.getuser(), "duplicate order"),
    ]
    table = flat(g("history", "a").stdout)
    assert "by ana: customer called" in table and "by bob: skip" in table
    shown = flat(g("show", "a").stdout)
    assert "by bob: skip" in shown and f"by {getpass.getuser()}: duplicate order" in shown
    assert "customer called" not in shown  # only the latest three
    items = g.json("history", "a")["items"]
    assert [(h["actor"], h["reason"]) for h in items if h["kind"] == "paused"] == [
        ("ana", "customer called")
    ]


def test_the_actor_falls_back_to_cli_without_an_os_user(
    g: Gorch, monkeypatch: pytest.MonkeyPatch
) -> None:
    import getpass

    def no_user() -> str:
        raise OSError("No username set in the environment")

    monkeypatch.setattr(getpass, "getuser", no_user)
    order(g, "a")
    g("pause", "a")
    assert _by(g, "a")[-1] == ("paused", "cli", None)


def test_a_bad_actor_or_reason_changes_nothing(g: Gorch) -> None:
    for id in ("a", "b"):
        order(g, id)
    before = [g.snapshot(id) for id in ("a", "b")]
    assert "actor must be" in g.fail("pause", "a", "b", "--actor", "")
    assert "reason must be" in g.fail("cancel", "-w", "pizza", "--yes", "--reason", "r" * 2001)
    assert "actor must be" in g.fail("goto", "a", "for a cook", "--yes", "--actor", "x" * 201)
    assert [g.snapshot(id) for id in ("a", "b")] == before
