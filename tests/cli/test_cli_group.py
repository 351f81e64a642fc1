"""The group and what every command shares: usage mistakes exit 2 and refusals exit 1 (both
change nothing), a mistyped command gets a "did you mean", and ``--store``, ``--workflows`` and
``--create`` (or their environment variables) open only what is there.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from _gorch import (
    MARGHERITA,
    PIZZA,
    Gorch,
    flat,
    order,
)
from click.testing import CliRunner

from gorch.cli import cli
from gorch.engine import RunStatus
from gorch.store.sql import SCHEMA_VERSION

# -- usage ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["list", "--limit", "0"],
        ["list", "--bogus"],
        ["history", "order-1", "--limit", "0"],
        ["history"],
        ["show"],
        ["start"],
        ["send", "order-1"],
        ["goto", "order-1"],
        ["pause"],
        ["retry", "order-1", "-s", "failed"],
        ["graph"],
        ["graph", "pizza", "--instance", "order-1"],
        ["graph", "pizza", "--format", "svg", "--json"],
        ["serve", "myshop"],
        ["worker", "--batch", "0"],
        ["lst"],
    ],
    ids=lambda a: " ".join(a),
)
def test_every_usage_mistake_exits_2(g: Gorch, args: list[str]) -> None:
    order(g, "order-1")
    before = g.snapshot("order-1")
    assert g.usage(*args).startswith("Error: ")
    assert g.snapshot("order-1") == before


@pytest.mark.parametrize(
    "args",
    [
        ["show", "order-2"],
        ["history", "order-2"],
        ["history", "order-1", "--cursor", "x"],
        ["send", "order-2", "AddToCart"],
        ["send", "order-1", "Nope"],
        ["send", "order-1", "AddToCart", "{"],
        ["start", "piza"],
        ["start", "pizza", "--id", "order-1"],
        ["list", "--cursor", "garbage"],
        ["goto", "order-1", "nowhere", "--yes"],
        ["goto", "order-2", "for the cart", "--yes"],
        ["pause", "order-2"],
        ["unpause", "order-1"],
        ["retry", "order-1", "order-2"],
        ["graph", "piza"],
        ["graph", "pizza", "--instance", "order-2", "--format", "svg"],
    ],
    ids=lambda a: " ".join(a),
)
def test_every_refusal_exits_1_and_changes_nothing(g: Gorch, args: list[str]) -> None:
    order(g, "order-1")
    before = g.snapshot("order-1")
    assert g.fail(*args).startswith("error: ")
    assert g.snapshot("order-1") == before and g.ids() == ["order-1"]


def test_mistyped_command_suggests_the_close_one(g: Gorch) -> None:
    result = g("lst", code=2)
    assert "no command 'lst'. Did you mean 'list'" in flat(result.stderr)
    result = g("retyr", code=2)
    assert "Did you mean 'retry'" in flat(result.stderr)
    assert "Did you mean" not in flat(g("xyzzy", code=2).stderr)


def test_missing_store_and_workflows_name_the_option_and_the_env_var(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["--workflows", PIZZA, "list"])
    assert result.exit_code == 2  # a usage mistake
    message = flat(result.stderr)
    assert "Error: no store:" in message and message.startswith("Usage: ")
    assert "--store" in message and "GORCH_STORE" in message

    result = runner.invoke(cli, ["--store", str(tmp_path / "x.db"), "list"])
    assert result.exit_code == 2
    message = flat(result.stderr)
    assert "Error: no workflows:" in message
    assert "--workflows" in message and "GORCH_WORKFLOWS" in message

    # --help needs neither.
    result = runner.invoke(cli, ["--help"])
    assert result.exit_code == 0
    for command in ("serve", "worker", "start", "send", "show", "list", "goto", "retry", "graph"):
        assert command in result.stdout
    assert "GORCH_STORE" in result.stdout
    assert runner.invoke(cli, ["send", "--help"]).exit_code == 0


@pytest.mark.parametrize(
    ("workflows", "says"),
    [
        ("examples.pizza", "write it as module:attribute"),
        (":WORKFLOWS", "write it as module:attribute"),
        ("examples.pizza:", "write it as module:attribute"),
        ("examples.nosuch:WORKFLOWS", "cannot import 'examples.nosuch'"),
        ("examples.pizza:WORKFLOW", "examples.pizza has no 'WORKFLOW'. Did you mean 'WORKFLOWS'?"),
        ("examples.pizza:__doc__", "must be a non-empty dict of name to workflow class, not str"),
    ],
)
def test_bad_workflows_option(tmp_path: Path, workflows: str, says: str) -> None:
    g = Gorch(tmp_path / "gorch.db", workflows)
    # the text of the option in the wrong form is a usage mistake; a module that is not there
    # (or holds no such dict) a refusal
    message = g.usage("list") if "module:attribute" in says else g.fail("list")
    assert f"--workflows {workflows!r}" in message
    assert says in message


def test_workflows_that_break_the_rules_are_refused_with_every_problem(tmp_path: Path) -> None:
    g = Gorch(tmp_path / "gorch.db", "_cli_workflows:BROKEN")
    g.init()
    for command in (["start", "broken"], ["list"], ["why", "x"]):
        message = g.fail(*command)  # a refusal, not a traceback
        assert message.startswith("error: the workflows of --workflows '_cli_workflows:BROKEN':")
        assert "definition() must return a statement tree built with S(...)" in message
        assert "Unstorable — cannot be stored as JSON" in message
    assert g.ids() == []


def test_bad_store(tmp_path: Path) -> None:
    message = Gorch("nosuch://host/db").fail("list")
    assert "cannot open the store 'nosuch://host/db'" in message
    missing = tmp_path / "no" / "such" / "dir" / "x.db"
    message = Gorch(missing).fail("list")
    assert f"no store at {str(missing)!r}: the file {str(missing)!r} does not exist" in message
    message = Gorch(missing).fail("--create", "list")
    assert "cannot open the store" in message and "unable to open" in message


def test_a_mistyped_store_path_is_not_created(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.chdir(tmp_path)
    real = Gorch("pizza.db").init()
    order(real, "order-1")
    for command in (["list"], ["show", "order-1"], ["worker", "--once"], ["init", "--json"]):
        if command[0] == "init":
            break
        message = Gorch("piza.db").fail(*command)
        assert message == (
            "error: no store at 'piza.db': the file 'piza.db' does not exist. Check the path, "
            "or create a new store with 'gorch --store piza.db init' (or --create)"
        )
    assert not (tmp_path / "piza.db").exists()
    # told to, it creates one: --create on any command, or gorch init (which says so)
    typo = Gorch("piza.db")
    assert typo.json("--create", "list") == {"items": [], "next": None}
    assert (tmp_path / "piza.db").exists()
    v = SCHEMA_VERSION
    assert typo.json("init") == {"store": "piza.db", "created": False, "schema_version": v}
    assert f"is a gorch store already (schema version {v}); nothing changed" in flat(
        real("init").stdout
    )
    assert Gorch("new.db").json("init") == {"store": "new.db", "created": True, "schema_version": v}
    assert [i["id"] for i in real.json("list")["items"]] == ["order-1"]  # init left it alone


def test_a_database_without_gorch_tables_is_not_a_store(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "other.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE customers (id TEXT)")
    other = Gorch(path)
    message = other.fail("list")
    assert message.startswith(f"error: not a gorch store: {str(path)!r} has no gorch tables")
    assert f"'gorch --store {path} init' (or --create)" in message
    with sqlite3.connect(path) as db:
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert tables == {"customers"}  # nothing was added
    assert other.json("init")["created"] is True
    assert other.json("list") == {"items": [], "next": None}


def test_bad_status_choice(g: Gorch) -> None:
    result = g("list", "--status", "done", code=2)
    err = flat(result.stderr)
    assert "Invalid value for '--status'" in err
    assert "'done' is not one of" in err and "'finished'" in err


def test_store_and_workflows_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "env.db"
    monkeypatch.setenv("GORCH_STORE", str(db))
    monkeypatch.setenv("GORCH_WORKFLOWS", PIZZA)
    runner = CliRunner()
    assert runner.invoke(cli, ["init"]).exit_code == 0
    result = runner.invoke(cli, ["start", "pizza", "--id", "from-env"])
    assert result.exit_code == 0, result.stderr
    result = runner.invoke(cli, ["list", "--json"])
    assert [i["id"] for i in json.loads(result.stdout)["items"]] == ["from-env"]
    assert Gorch(db).get("from-env").status is RunStatus.WAITING
    # The options win over the environment.
    other = Gorch(tmp_path / "other.db").init()
    assert other.json("list") == {"items": [], "next": None}


def test_postgres_store_url(pg_store_url: str) -> None:
    import psycopg

    runner = CliRunner()
    base = ["--store", pg_store_url, "--workflows", PIZZA]
    with psycopg.connect(pg_store_url, autocommit=True) as conn:  # an empty database
        conn.execute("DROP TABLE IF EXISTS gorch_instances, gorch_timers, gorch_history, "
                     "gorch_keys, gorch_meta")  # fmt: skip
    result = runner.invoke(cli, [*base, "list"])
    assert result.exit_code == 1
    assert flat(result.stderr).startswith("error: not a gorch store:")
    with psycopg.connect(pg_store_url, autocommit=True) as conn:
        assert conn.execute("SELECT to_regclass('gorch_meta')").fetchone() == (None,)
    result = runner.invoke(cli, [*base, "init"])
    assert result.exit_code == 0 and "created a gorch store" in result.stdout, result.stderr
    result = runner.invoke(cli, [*base, "start", "pizza", "--id", "pg-1"])
    assert result.exit_code == 0, result.stderr
    result = runner.invoke(cli, [*base, "send", "pg-1", "AddToCart", MARGHERITA, "--json"])
    assert json.loads(result.stdout)["output"] == 1
    result = runner.invoke(cli, [*base, "show", "pg-1", "--json"])
    assert json.loads(result.stdout)["data"]["cart"][0]["name"] == "margherita"


@pytest.mark.parametrize("missing", ["click", "rich"])
def test_without_the_cli_extra_the_command_says_how_to_install_it(missing: str) -> None:
    import subprocess
    import sys

    from _subprocess import child_env

    code = (
        f"import sys; sys.modules[{missing!r}] = None\n"  # import then fails, as uninstalled
        "from gorch.__main__ import main; main(['list'])"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], env=child_env(), capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1
    assert done.stderr.strip() == (
        f"gorch: the command line needs the cli extra ({missing} is not installed): "
        "pip install 'gorch[cli]'"
    )
