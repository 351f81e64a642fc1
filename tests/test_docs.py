"""The README's examples and its first quick-start command run as written."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

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


def readme_handler() -> tuple[dict[str, Any], FakeDb]:
    """The README's workflow and request handler, run as a user's file would be, with a db."""
    workflow_code, handler_code, _ = readme_blocks()
    ns: dict[str, Any] = {"db": FakeDb()}
    # dont_inherit: run as a user's file would, without this module's __future__ imports.
    exec(compile(workflow_code, "README.md", "exec", dont_inherit=True), ns)
    exec(compile(handler_code, "README.md", "exec", dont_inherit=True), ns)
    return ns, ns["db"]


def test_readme_workflow_and_load_resume_save_run() -> None:
    ns, db = readme_handler()
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


def test_readme_run_saves_as_of_the_last_checkpoint_when_a_step_fails() -> None:
    ns, db = readme_handler()
    PizzaOrder = ns["PizzaOrder"]
    calls = []

    def start_cooking(self: Any) -> None:  # the step after SubmitCart's loop: fails once
        calls.append(1)
        self.status = "half done"
        if len(calls) == 1:
            raise RuntimeError("oven offline")
        self.status = "cooking"

    PizzaOrder.setup = start_cooking
    order, state = PizzaOrder(), new_state("order-2", "pizza")
    out = ns["run"](order, state)
    assert out.error is not None and "oven offline" in str(out.error)
    db.save("order-2", out.state, out.data)
    assert loads(db.get_data("order-2"), PizzaOrder).status == ""  # not the half-done change
    # a later run (what on_event does, with no event) retries the failed step
    stored = loads(db.get_data("order-2"), PizzaOrder), loads(db.get_state("order-2"), State)
    again = ns["run"](*stored)
    assert again.error is None and loads(again.data, PizzaOrder).status == "cooking"


def quick_start_commands() -> list[str]:
    section = (ROOT / "README.md").read_text().split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return [c.strip() for c in re.findall(r"```sh\n(.*?)```", section, re.S)]


def copy_of_repo(dest: Path) -> Path:
    """The repository's files (tracked, and new ones not ignored) as a fresh clone has them."""
    names = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT, capture_output=True, check=True,
    ).stdout.decode().split("\0")  # fmt: skip
    for name in filter(None, names):
        src = ROOT / name
        if src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    return dest


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_readme_first_command_completes_an_order(tmp_path: Path) -> None:
    """The README's first command, verbatim, in a fresh virtualenv on a fresh copy of the
    repository: it installs gorch and runs the pizza order to completion on SQLite."""
    first = quick_start_commands()[0]
    assert first.startswith("pip install") and "examples.pizza" in first
    repo = copy_of_repo(tmp_path / "repo")
    venv = tmp_path / "venv"
    # --system-site-packages: the dependencies are found installed (no download), while gorch
    # itself is installed into the venv, not over the developer's own editable install.
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "GORCH_STORE")}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env['PATH']}"
    env["VIRTUAL_ENV"] = str(venv)
    out = subprocess.run(
        ["bash", "-c", first], cwd=repo, env=env, capture_output=True, text=True, timeout=540
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "status: completed; paid 31.50 of 31.50" in out.stdout
    assert "AddToCart        refused:" in out.stdout  # the deliberately bad payload
    assert re.search(r"history of order-\w+:\n(.*\n)*.*event 'Delivered'", out.stdout)
    assert (repo / "pizza.db").exists()


def test_pizza_example_runs_again_on_the_same_file(tmp_path: Path) -> None:
    """A second run adds a second order to the same SQLite file."""
    for _ in range(2):
        out = subprocess.run(
            [sys.executable, "-m", "examples.pizza", "--db", str(tmp_path / "shop.db")],
            cwd=ROOT, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert out.returncode == 0, out.stderr
        assert "status: completed" in out.stdout
    from gorch.store import SQLStore

    store = SQLStore(f"sqlite:///{tmp_path / 'shop.db'}")
    try:
        assert len(store.list_instances(limit=10)) == 2
    finally:
        store.close()


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


def test_docs_http_example_runs(tmp_path: Path, monkeypatch: Any, capsys: Any) -> None:
    code = re.findall(r"```python\n(.*?)```", (ROOT / "docs" / "http.md").read_text(), re.S)[0]
    monkeypatch.chdir(tmp_path)  # the example makes shop.db in the working directory
    exec(compile(code, "docs/http.md", "exec", dont_inherit=True), {})
    assert "needs the role Manager; your token holds Customer" in capsys.readouterr().out


# docs/diagrams.md: its example runs, and its pictures are what gorch.graph draws today.

PIZZA_SVG_COMMAND = (
    'python -c "from examples.pizza.workflow import PizzaOrder; '
    "from gorch.graph import build, svg; open('docs/pizza.svg', 'w', encoding='utf-8')"
    ".write(svg(build('pizza', PizzaOrder)))\""
)


def doc_blocks(name: str, lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", (ROOT / "docs" / name).read_text(), re.S)


def test_docs_diagrams_example_runs(tmp_path: Path, monkeypatch: Any, capsys: Any) -> None:
    monkeypatch.chdir(tmp_path)  # the example writes pizza.svg and order-7.svg here
    for code in doc_blocks("diagrams.md", "python"):
        exec(compile(code, "docs/diagrams.md", "exec", dont_inherit=True), {})
    out = capsys.readouterr().out
    assert out.startswith('    n0(("start"))\n')
    assert "for a cook ('_main_',)\nfor payment ('payment',)\n" in out
    assert out.endswith("    class n0,n2,n3,n4,n5,n7,n11,n12,n13 done\n")
    assert 'class="node wait current"' in (tmp_path / "order-7.svg").read_text(encoding="utf-8")
    assert (tmp_path / "pizza.svg").read_text(encoding="utf-8").startswith("<svg ")


def test_docs_diagrams_mermaid_block_is_the_pizza_diagram() -> None:
    from examples.pizza.workflow import PizzaOrder
    from gorch.graph import build, mermaid

    blocks = doc_blocks("diagrams.md", "mermaid")
    assert len(blocks) == 1
    same = blocks[0] == mermaid(build("pizza", PizzaOrder))
    assert same, "paste the output of `gorch graph pizza --format mermaid` into docs/diagrams.md"


def test_docs_pizza_svg_is_the_current_drawing() -> None:
    from examples.pizza.workflow import PizzaOrder
    from gorch.graph import build, svg

    committed = (ROOT / "docs" / "pizza.svg").read_text(encoding="utf-8")
    same = committed == svg(build("pizza", PizzaOrder))
    assert same, f"docs/pizza.svg is out of date; from the repository root run\n{PIZZA_SVG_COMMAND}"
    assert "](pizza.svg)" in (ROOT / "docs" / "diagrams.md").read_text()  # shown there


def test_docs_deploying_example_runs(capsys: Any) -> None:
    """docs/deploying.md: its example runs, printing what its comments say."""
    code = doc_blocks("deploying.md", "python")[-1]
    exec(compile(code, "docs/deploying.md", "exec", dont_inherit=True), {})
    out = capsys.readouterr().out.splitlines()
    assert out == [
        "would migrate 1 of 1 instance(s); 0 current, 0 failed",
        "['approved', 'paid 1250 cents']",
        "['started', 'migrated', 'event', 'step', 'finished']",
    ]


@pytest.mark.parametrize("page", ["steps.md", "together.md", "schedules.md"])
def test_docs_examples_run_and_print_what_they_say(page: str, capsys: Any) -> None:
    """Each example of the page runs (in order, sharing names) and prints what its comments
    say: the "# " lines right after a line that prints."""
    text = (ROOT / "docs" / page).read_text()
    ns: dict[str, Any] = {}
    for code in re.findall(r"```python\n(.*?)```", text, re.S):
        exec(compile(code, f"docs/{page}", "exec", dont_inherit=True), ns)
    printed = capsys.readouterr().out.splitlines()
    said = re.findall(r"^ *(?:print|asyncio\.run)\(.*\n((?:# .*\n)+)", text, re.M)
    assert said and printed == [line[2:] for block in said for line in block.splitlines()]
