"""``gorch check`` and ``gorch migrate`` on a SQLite file, and the recipe of docs/deploying.md
for deleting a statement safely, run end to end with the real classes of each deploy and the
real ``gorch`` command (in this process, and once as a subprocess, as CI runs it).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from _gorch import ROOT, Gorch, flat

from gorch import Engine, RunStatus
from gorch.store.sql import SQLStore

TESTS = str(ROOT / "tests")


def shops(tmp_path: Path) -> Gorch:
    g = Gorch(tmp_path / "gorch.db", "_deploy_workflows:SHOPS").init()
    g("start", "shop", "--id", "w-0")
    g("start", "shop", "--id", "w-1")
    return g


def test_check_passes_the_code_that_wrote_them(tmp_path: Path) -> None:
    g = shops(tmp_path)
    assert g("check").stdout == "ok: the code runs all 2 unfinished instance(s)\n"
    assert g.json("check") == {"ok": True, "checked": 2, "problems": []}


def test_check_lists_each_problem_once_and_exits_1(tmp_path: Path) -> None:
    g = shops(tmp_path)
    g.workflows = "_deploy_workflows:SHOPS_RENAMED"
    out = flat(g("check", code=1).stdout)
    assert out.startswith("1 problem(s) in 2 unfinished instance(s):")
    assert "missing_statement 'for pay' in shop" in out
    assert "closest now: 'for payment'" in out
    assert "2 instance(s): w-1, w-0" in out
    assert "+1 more" in flat(g("check", "--sample", "1", code=1).stdout)
    doc = json.loads(g("check", "--json", code=1).stdout)
    (p,) = doc["problems"]
    assert (doc["ok"], p["kind"], p["name"], p["count"]) == (
        False,
        "missing_statement",
        "for pay",
        2,
    )
    assert sorted(p["ids"]) == ["w-0", "w-1"] and p["suggestions"] == ["for payment"]
    assert g("check", "--workflow", "other").stdout.startswith("ok: the code runs all 0")
    assert "Error: Invalid value for '--sample'" in g.usage("check", "--sample", "0")


def test_migrate_dry_run_then_for_real(tmp_path: Path) -> None:
    g = shops(tmp_path)
    g.workflows = "_deploy_workflows:SHOPS_V2"
    assert g("migrate", "--dry-run").stdout == (
        "would migrate 2 of 2 instance(s); 0 current, 0 failed\n"
    )
    assert g.json("migrate", "--dry-run")["migrated"] == 2
    assert g("migrate").stdout == "migrated 2 of 2 instance(s); 0 current, 0 failed\n"
    doc = g.json("migrate")
    assert (doc["ok"], doc["migrated"], doc["current"]) == (True, 0, 2)
    assert "workflow 'shops', which is not registered" in g.fail("migrate", "--workflow", "shops")


def test_migrate_records_who_migrated_and_why(tmp_path: Path) -> None:
    g = shops(tmp_path)
    g.workflows = "_deploy_workflows:SHOPS_V2"
    g("migrate", "--actor", "ana", "--reason", "deploy 2.0")
    store = SQLStore(f"sqlite:///{g.db}")
    try:
        [entry] = [h for h in store.history("w-0") if h.kind == "migrated"]
    finally:
        store.close()
    assert (entry.actor, entry.reason) == ("ana", "deploy 2.0")


def test_a_failed_migration_exits_1_and_changes_nothing(tmp_path: Path) -> None:
    g = shops(tmp_path)
    with g.engine() as e:
        before = e.store.get("w-0")
    g.workflows = "_deploy_workflows:SHOPS_BROKEN"
    result = g("migrate", code=1)
    out = flat(result.stdout)
    assert out.startswith("migrated 0 of 2 instance(s); 0 current, 2 failed")
    assert "BrokenV2.migrate(data, 1) failed: it raised KeyError: 'quantity'" in out
    assert "could not be migrated and were left as they were" in flat(result.stderr)
    with g.engine() as e:
        assert e.store.get("w-0") == before
    assert "failed_migration" in flat(g("check", code=1).stdout)


def run_check(db: Path, workflows: str) -> subprocess.CompletedProcess[str]:
    """``gorch check`` in a process of its own, as a CI job runs it."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), TESTS])}
    return subprocess.run(
        [sys.executable, "-m", "gorch", "--store", str(db), "--workflows", workflows, "check"],
        capture_output=True, text=True, env=env, timeout=120, cwd=TESTS,
    )  # fmt: skip


def test_the_recipe_for_deleting_a_statement(tmp_path: Path) -> None:
    """docs/deploying.md: skip the statement with If(False, ...), deploy, check the deletion
    until nothing waits there, delete it, deploy."""
    db = tmp_path / "gorch.db"
    g = Gorch(db, "_deploy_workflows:RECIPE_V1").init()
    for id in ("r-0", "r-1"):  # waiting at "for review"
        g("start", "order", "--id", id)
    g("start", "order", "--id", "p-0")
    g("send", "p-0", "Approve")  # past it, waiting for pay

    # 1. Deploy the code that skips the statement. It still runs every instance.
    g.workflows = "_deploy_workflows:RECIPE_V2"
    assert g("check").stdout.startswith("ok: the code runs all 3")
    g("start", "order", "--id", "n-0")  # a new order skips the review
    # 2. Check the deletion against the store: it strands the orders waiting for review.
    g.workflows = "_deploy_workflows:RECIPE_V3"
    out = flat(g("check", code=1).stdout)
    assert "missing_statement 'for review' in order" in out and "2 instance(s): r-1, r-0" in out
    stranded = run_check(db, "_deploy_workflows:RECIPE_V3")
    assert stranded.returncode == 1, stranded.stderr
    assert "for review" in stranded.stdout
    # 3. Until nothing waits there (the waiting orders are approved under the skipping code).
    g.workflows = "_deploy_workflows:RECIPE_V2"
    g("send", "r-0", "Approve")
    g.workflows = "_deploy_workflows:RECIPE_V3"
    assert "1 instance(s): r-1" in flat(g("check", code=1).stdout)
    g.workflows = "_deploy_workflows:RECIPE_V2"
    g("send", "r-1", "Approve")
    # 4. Nothing waits there: delete it, check passes, deploy.
    passed = run_check(db, "_deploy_workflows:RECIPE_V3")
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert passed.stdout == "ok: the code runs all 4 unfinished instance(s)\n"
    g.workflows = "_deploy_workflows:RECIPE_V3"
    for id in ("r-0", "r-1", "p-0", "n-0"):
        g("send", id, "Pay")
    store = SQLStore(f"sqlite:///{db}")
    try:
        from _deploy_workflows import RECIPE_V3

        engine = Engine(store, RECIPE_V3)
        for id in ("r-0", "r-1", "p-0"):
            inst = engine.get(id)
            assert inst.status is RunStatus.FINISHED
            assert inst.data.log == ["taken", "approved", "paid", "shipped"], id
        assert engine.get("n-0").data.log == ["taken", "paid", "shipped"]
    finally:
        store.close()
