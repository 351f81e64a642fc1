"""The README's examples and its first quick-start command run as written."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from gorch import CallbackRequest, State, WorkflowStatus, dumps, loads, new_state, resume

ROOT = Path(__file__).resolve().parent.parent


def readme_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)


class FakeDb:
    def __init__(self) -> None:
        self.rows: dict[str, tuple[str, str]] = {}

    def get_state(self, key: str) -> str:
        return self.rows[key][0]

    def get_data(self, key: str) -> str:
        return self.rows[key][1]

    def save(self, key: str, state: str, data: str) -> None:
        self.rows[key] = (state, data)


def test_readme_workflow_and_load_resume_save_run() -> None:
    workflow_code, handler_code, _ = readme_blocks()
    ns: dict[str, Any] = {}
    # dont_inherit: run as a user's file would, without this module's __future__ imports.
    exec(compile(workflow_code, "README.md", "exec", dont_inherit=True), ns)
    db = FakeDb()
    ns["db"] = db
    exec(compile(handler_code, "README.md", "exec", dont_inherit=True), ns)
    order, state = ns["PizzaOrder"](), new_state("order-1", "pizza")
    resume(order, state)
    db.save("order-1", dumps(state), dumps(order))

    on_event = ns["on_event"]
    on_event("order-1", "AddToCart", {"name": "margherita", "qty": 2})
    on_event("order-1", "SubmitCart", None)
    on_event("order-1", "StartCooking", None)
    on_event("order-1", "ConfirmPayment", 20.0)

    final = loads(db.get_state("order-1"), State)
    data = loads(db.get_data("order-1"), ns["PizzaOrder"])
    assert final.status is WorkflowStatus.FINISHED
    assert data.cart == [ns["Pizza"]("margherita", 2)] and data.paid == 20.0
    assert CallbackRequest  # the README's imports are gorch's


def test_readme_first_command_completes_an_order(tmp_path: Path) -> None:
    """`python -m examples.pizza`, as the README's first command runs it, in a fresh folder."""
    out = subprocess.run(
        [sys.executable, "-m", "examples.pizza", "--dir", str(tmp_path / "orders")],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "status: completed; paid 31.50 of 31.50" in out.stdout
    assert "AddToCart        refused:" in out.stdout  # the deliberately bad payload
    assert (tmp_path / "orders" / "order-1.state.json").exists()


def test_readme_engine_example_runs(tmp_path: Path, monkeypatch: Any, capsys: Any) -> None:
    workflow_code, _, engine_code = readme_blocks()
    monkeypatch.chdir(tmp_path)  # the example makes shop.db in the working directory
    ns: dict[str, Any] = {}
    exec(compile(workflow_code, "README.md", "exec", dont_inherit=True), ns)
    exec(compile(engine_code, "README.md", "exec", dont_inherit=True), ns)
    assert "['ConfirmPayment', 'StartCooking']" in capsys.readouterr().out
    assert (tmp_path / "shop.db").exists()
    ns["engine"].store.close()


def test_docs_testing_example_runs(gorch: Any) -> None:
    text = (ROOT / "docs" / "testing.md").read_text()
    code = re.findall(r"```python\n(.*?)```", text, re.S)[1]
    ns: dict[str, Any] = {}
    exec(compile(code, "docs/testing.md", "exec", dont_inherit=True), ns)
    ns["test_the_cart_times_out_after_a_day"](gorch)
