"""``gorch data``: show an instance's data, and repair it with ``--set`` or ``--patch`` (the
diff first, then a confirmation, as ``gorch goto`` asks), on a SQLite file."""

from __future__ import annotations

import json
from pathlib import Path

from _gorch import MARGHERITA, Gorch, flat, order

PATCH = '{"address": "Via Po 2"}'


def address(g: Gorch, id: str = "order-1") -> str:
    return str(g.get(id).data.address)


def test_data_shows_the_data_as_json(g: Gorch) -> None:
    order(g, "order-1", ("AddToCart", MARGHERITA))
    shown = json.loads(g("data", "order-1").stdout)
    assert shown["cart"] == [{"name": "margherita", "size": "medium", "qty": 1}]
    assert g.json("data", "order-1") == shown
    assert "no instance has id 'order-2'" in g.fail("data", "order-2")


def test_a_patch_shows_the_diff_and_asks(g: Gorch) -> None:
    order(g)
    before = g.snapshot("order-1")
    result = g("data", "order-1", "--patch", PATCH, input="n\n", code=1)
    lines = result.stdout.splitlines()
    assert lines[0] == "the data of 'order-1' (pizza) would change:"
    assert '-  "address": "",' in lines and '+  "address": "Via Po 2",' in lines
    assert "apply? [y/N]" in result.stderr and "not applied: nothing changed" in result.stderr
    assert g.snapshot("order-1") == before
    dry = g("data", "order-1", "--patch", PATCH, "--dry-run")
    assert dry.stdout.splitlines() == lines and "apply?" not in dry.stderr
    assert g.json("data", "order-1", "--patch", PATCH, "--dry-run")["applied"] is False
    assert g.snapshot("order-1") == before

    result = g("data", "order-1", "--patch", PATCH, "--reason", "moved", input="y\n")
    assert result.stdout.splitlines()[-1] == "changed the data of order-1"
    assert address(g) == "Via Po 2"
    with g.engine() as e:
        entry = e.history("order-1", newest_first=True, limit=1)[0]
    assert (entry.kind, entry.reason) == ("data_set", "moved")
    assert entry.input["address"] == "" and entry.output["address"] == "Via Po 2"


def test_set_replaces_the_data_from_a_file(g: Gorch, tmp_path: Path) -> None:
    order(g)
    path = tmp_path / "fixed.json"
    path.write_text(json.dumps({"cart": [{"name": "funghi"}], "status": "cart", "log": ["x"]}))
    plan = g.json("data", "order-1", "--set", str(path), "--yes", "--actor", "ana")
    assert plan["applied"] is True and plan["after"]["cart"][0]["name"] == "funghi"
    assert g.get("order-1").data.log == ["x"]
    assert g("data", "order-1", "--set", f"@{path}", "--yes").stdout == (
        "the data of 'order-1' would not change\n"
    )


def test_bad_data_is_refused_and_changes_nothing(g: Gorch) -> None:
    order(g)
    before = g.snapshot("order-1")
    assert "@ data.address" in g.fail("data", "order-1", "--patch", '{"address": 5}', "--yes")
    assert "did you mean 'address'?" in g.fail("data", "order-1", "--patch", '{"adress": "x"}')
    assert "@ data.cart" in g.fail("data", "order-1", "--set", '{"cart": 3}', "--yes")
    assert "not valid JSON" in g.fail("data", "order-1", "--patch", "{nope")
    assert "a patch is a JSON object" in g.fail("data", "order-1", "--patch", "[1]")
    assert "give --set or --patch, not both" in g.usage(
        "data", "order-1", "--set", "{}", "--patch", "{}"
    )
    assert "--dry-run and --yes go with" in g.usage("data", "order-1", "--dry-run")
    g("cancel", "order-1")
    after_cancel = g.snapshot("order-1")
    message = g.fail("data", "order-1", "--patch", PATCH, "--yes")
    assert message == "error: cannot set the data of instance 'order-1': it is cancelled"
    assert g.snapshot("order-1") == after_cancel != before
    assert flat(g("data", "order-1").stdout).startswith("{")  # showing still works
