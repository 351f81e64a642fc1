"""``gorch why ID``: the explanation in plain words, or its facts as JSON (``--json``).

The text is pinned by golden files in ``tests/golden/why/`` (``cli_*.txt``), made with time
frozen at ``gorch.testing.START``; rewrite them after an intended change with
``GORCH_UPDATE_GOLDEN=1 python -m pytest tests/cli/test_cli_why.py`` (see tests/test_why.py).
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import Any

from _gorch import SUBMITTED, Gorch, order

GOLDEN = Path(__file__).resolve().parent.parent / "golden" / "why"
UPDATE = os.environ.get("GORCH_UPDATE_GOLDEN") == "1"


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / f"{name}.txt"
    if UPDATE:
        path.write_text(text, encoding="utf-8")
        return
    assert path.exists(), f"{path} is missing: run with GORCH_UPDATE_GOLDEN=1 to write it"
    assert text == path.read_text(encoding="utf-8"), f"why/{name}.txt differs; see the docstring"


def test_why_prints_the_engines_explanation(g: Gorch, gorch_time: Any) -> None:
    order(g, "order-1", *SUBMITTED)
    gorch_time.tick(timedelta(minutes=7))
    out = g("why", "order-1").stdout
    check_golden("cli_waiting", out)
    with g.engine() as engine:
        assert out == str(engine.why("order-1"))  # the same facts, the same words
    assert "gorch send order-1 ConfirmOrder PAYLOAD" in out


def test_why_of_a_failed_instance_says_what_to_type(flaky: Gorch, gorch_time: Any) -> None:
    flaky("start", "flaky", "--id", "f1")
    gorch_time.tick(timedelta(hours=1))
    out = flaky("why", "f1").stdout
    check_golden("cli_failed", out)
    assert "gorch retry f1" in out and "RuntimeError: card declined" in out


def test_why_json_has_the_facts(g: Gorch, gorch_time: Any) -> None:
    order(g, "order-1")
    data = g.json("why", "order-1")
    assert data["status"] == "waiting" and data["now"] == "2026-01-01T00:00:00+00:00"
    (thread,) = data["threads"]
    assert [e["name"] for e in thread["events"]] == ["AddToCart", "EmptyCart", "SubmitCart"]
    assert thread["timers"] == [
        {"name": "cart timed out", "due_at": "2026-01-02T00:00:00+00:00", "overdue": False}
    ]
    assert [c["command"] for c in data["commands"]][-1] == "gorch history order-1"
    assert data["text"] == g("why", "order-1").stdout


def test_why_prints_brackets_as_written(g: Gorch) -> None:
    """The text is not rich markup: an id like ``[red]x`` is printed as it is."""
    g("start", "pizza", "--id", "[red]x")
    out = g("why", "[red]x").stdout
    assert out.startswith("[red]x (pizza) is waiting: ")


def test_why_of_an_unknown_id_suggests_the_closest(g: Gorch) -> None:
    order(g, "order-1")
    refusal = g.fail("why", "order-2")
    assert refusal == "error: no instance has id 'order-2'. Did you mean 'order-1'?"
    assert g.usage("why") == "Error: Missing argument 'ID'."
