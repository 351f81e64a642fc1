"""gorch.testing: the Harness, the ``gorch`` fixture and the ``gorch_time`` fixture."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
import threading
import time
import tomllib
import zipfile
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from examples.pizza.workflow import PizzaOrder
from gorch import (
    MAIN_THREAD,
    BusyError,
    Engine,
    For,
    On,
    RetryPolicy,
    RunStatus,
    S,
    Step,
    Timeout,
    Wait,
    Worker,
    clock,
)
from gorch.store import MemoryStore, SQLStore
from gorch.testing import START, Harness

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parent.parent

PIZZA = {"pizza": PizzaOrder}
PEPPERONI = {"pizza": {"name": "pepperoni", "qty": 2}}


@dataclass
class Stubborn:
    """A step that always fails, then waits for ``End``."""

    tries: int = 0

    def definition(self) -> Any:
        return S(
            Step(
                "stubborn",
                self.stubborn,
                retry=RetryPolicy(max_attempts=3, initial=timedelta(seconds=10), jitter=0),
            ),
            Wait("for end", On("End"), Timeout("gave up", timedelta(hours=1))),
        )

    def stubborn(self) -> None:
        raise RuntimeError("no luck")


@dataclass
class Bell:
    """Rings once after an hour."""

    rung: bool = False

    def definition(self) -> Any:
        return S(Wait("for the hour", Timeout("hour", timedelta(hours=1), Step("ring", self.ring))))

    def ring(self) -> None:
        self.rung = True


def to_payment_check(h: Harness, id: str, amount: float = 20.0) -> None:
    """Take a pizza order to where the main thread waits for the payment condition."""
    h.start("pizza", PizzaOrder(), id=id)
    h.send(id, "AddToCart", PEPPERONI)
    h.send(id, "SubmitCart")
    h.send(id, "ConfirmOrder", {"manager": "ann", "amount": amount})
    for event in ("StartCooking", "Cooked", "TakeForDelivery", "Delivered"):
        h.send(id, event, {"cook": "bob"} if event == "StartCooking" else None)


# --------------------------------------------------------------------------------------------
# the gorch fixture and time


def test_the_cart_times_out(gorch: Any) -> None:
    h = gorch(PIZZA)
    assert isinstance(h, Harness)
    assert h.now() == START
    assert clock.now() == START
    h.start("pizza", PizzaOrder(), id="o1")

    assert h.advance(hours=23) == 0
    assert h.now() == START + timedelta(hours=23)
    h.assert_waiting("o1", "AddToCart", "cart timed out")
    h.assert_status("o1", RunStatus.WAITING)

    assert h.advance(hours=2) == 1  # the worker fired the timer
    h.assert_status("o1", RunStatus.FINISHED)
    h.assert_status("o1", "finished")
    assert h.kinds("o1")[-3:] == ["timer:cart timed out", "step:expire order", "finished"]
    assert h.data("o1").status == "expired"
    assert h.store.timers() == []
    assert h.advance(hours=48) == 0


def test_advance_returns_how_many_items_the_worker_did(gorch: Any) -> None:
    h = gorch({"bell": Bell, **PIZZA})
    for i in range(3):
        h.start("bell", Bell(), id=f"b{i}")
    h.start("pizza", PizzaOrder(), id="o1")
    assert h.advance(minutes=59) == 0
    assert h.advance(timedelta(minutes=1)) == 3
    assert all(h.data(f"b{i}").rung for i in range(3))
    h.assert_status("b0", RunStatus.FINISHED)
    h.assert_status("o1", RunStatus.WAITING)

    h.engine.start("pizza", PizzaOrder(), id="o2", defer=True)
    assert h.advance() == 1  # no time passes; the deferred start is run
    assert h.now() == START + timedelta(hours=1)
    h.assert_waiting("o2", "AddToCart")
    assert h.run_worker() == 0


def test_advance_drives_retries(gorch: Any) -> None:
    h = gorch({"stubborn": Stubborn})
    h.start("stubborn", Stubborn(), id="s1")
    inst = h.get("s1")
    assert (inst.status, inst.attempts) == (RunStatus.RUNNING, 1)
    assert inst.next_attempt_at == START + timedelta(seconds=10)
    assert h.advance(seconds=9) == 0
    assert h.advance(seconds=1) == 1
    assert h.get("s1").attempts == 2
    assert h.advance(seconds=20) == 1
    h.assert_status("s1", RunStatus.FAILED)
    assert h.kinds("s1") == [
        "started:stubborn",
        "step_failed:stubborn",
        "step_failed:stubborn",
        "step_failed:stubborn",
        "failed:stubborn",
    ]


def test_advance_refuses_to_go_back(gorch: Any) -> None:
    h = gorch(PIZZA)
    h.start("pizza", PizzaOrder(), id="o1")
    with pytest.raises(ValueError, match="forward"):
        h.advance(hours=-1)
    with pytest.raises(ValueError):
        h.advance(timedelta(seconds=-1))
    assert h.now() == START
    assert h.advance(timedelta(0)) == 0


def test_a_harness_that_does_not_control_time(gorch: Any) -> None:
    h = gorch(PIZZA, start=None)
    assert h.clock is None
    real = datetime.now(UTC)
    assert abs(h.now() - real) < timedelta(minutes=1)
    h.start("pizza", PizzaOrder(), id="o1")
    with pytest.raises(RuntimeError, match="start=None"):
        h.advance(hours=1)
    with pytest.raises(RuntimeError):
        h.advance(timedelta(hours=1))
    h.assert_waiting("o1", "AddToCart")
    assert h.run_worker() == 0


def test_gorch_time_freezes_the_clock(gorch_time: Any) -> None:
    assert clock.now() == START
    gorch_time.tick(timedelta(hours=2))
    assert clock.now() == START + timedelta(hours=2)


def test_engine_options_are_passed_on(gorch: Any) -> None:
    once = RetryPolicy(max_attempts=1)
    h = gorch(PIZZA, retry=once, busy_wait=0.5, owner="tester")
    assert isinstance(h.engine, Engine)
    assert isinstance(h.worker, Worker)
    assert h.engine.retry_policy == once
    assert h.engine.busy_wait == 0.5
    assert h.engine.owner == "tester"


# --------------------------------------------------------------------------------------------
# stores


def test_store_sqlite(gorch: Any) -> None:
    h = gorch(PIZZA, store="sqlite")
    assert isinstance(h.store, SQLStore)
    h.start("pizza", PizzaOrder(), id="o1")
    assert h.send("o1", "AddToCart", PEPPERONI) == 1
    h.assert_waiting("o1", "AddToCart", "SubmitCart")
    assert h.advance(hours=25) == 1
    h.assert_status("o1", RunStatus.FINISHED)
    assert h.data("o1").cart[0].name == "pepperoni"
    # a second engine on the same file sees the same instance
    assert Engine(h.store, PIZZA).get("o1").status is RunStatus.FINISHED


def test_store_object_and_bad_store(gorch: Any) -> None:
    store = MemoryStore()
    h = gorch(PIZZA, store=store)
    assert h.store is store
    h.start("pizza", PizzaOrder(), id="o1")
    assert store.get("o1") is not None
    with pytest.raises(ValueError, match="memory"):
        gorch(PIZZA, store="postgres-please", start=None)


def test_a_refused_harness_leaves_time_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    import freezegun
    import freezegun.api

    made: list[Any] = []
    real = freezegun.freeze_time

    def spy(*args: Any, **kw: Any) -> Any:
        made.append(real(*args, **kw))
        return made[-1]

    monkeypatch.setattr(freezegun, "freeze_time", spy)
    active = len(freezegun.api.freeze_factories)
    try:
        with pytest.raises(ValueError):
            Harness(PIZZA, store="postgres-please")
        with pytest.raises(ValueError):
            Harness({"not a workflow": object})
        assert clock.now() != START
    finally:
        # undo what the refused harnesses left behind, so that later tests run in real time
        for freezer in reversed(made):
            if len(freezegun.api.freeze_factories) > active:
                freezer.stop()


def test_harness_as_a_context_manager() -> None:
    with Harness(PIZZA, store="sqlite") as h:
        assert clock.now() == START
        h.start("pizza", PizzaOrder(), id="o1")
        folder = h._tmp.name if h._tmp is not None else ""
        assert os.path.isdir(folder)
    assert clock.now() != START  # time runs again
    assert not os.path.exists(folder)  # the SQLite file's folder is removed
    h.close()  # closing twice is harmless


def test_harness_can_start_elsewhere_in_time() -> None:
    at = datetime(2030, 6, 1, 12, tzinfo=UTC)
    with Harness(PIZZA, start=at) as h:
        h.start("pizza", PizzaOrder(), id="o1")
        assert h.get("o1").created_at == at
        assert h.get("o1").timers[0].due_at == at + timedelta(hours=24)


# --------------------------------------------------------------------------------------------
# asserting


def test_waits(gorch: Any) -> None:
    h = gorch(PIZZA)
    h.start("pizza", PizzaOrder(), id="o1")
    assert h.waits("o1") == {
        MAIN_THREAD: ["AddToCart", "EmptyCart", "SubmitCart", "cart timed out"]
    }
    h.send("o1", "AddToCart", PEPPERONI)
    h.send("o1", "SubmitCart")
    h.send("o1", "ConfirmOrder", {"manager": "ann", "amount": 20.0})
    assert h.waits("o1") == {MAIN_THREAD: ["StartCooking"], "payment": ["ConfirmPayment"]}

    to_payment_check(h, "o2")
    # a thread at a WaitFor shows the condition's name
    assert h.waits("o2") == {MAIN_THREAD: ["payment received"], "payment": ["ConfirmPayment"]}
    h.assert_waiting("o2", "payment received")
    h.send("o2", "ConfirmPayment", {"amount": 20.0, "address": "Main St 1"})
    h.assert_status("o2", RunStatus.FINISHED)
    assert h.waits("o2") == {}


def test_assert_waiting_passes(gorch: Any) -> None:
    h = gorch(PIZZA)
    h.start("pizza", PizzaOrder(), id="o1")
    h.assert_waiting("o1")  # waits for something
    h.assert_waiting("o1", "AddToCart")
    h.assert_waiting("o1", "SubmitCart", "AddToCart", thread=MAIN_THREAD)
    h.send("o1", "AddToCart", PEPPERONI)
    h.send("o1", "SubmitCart")
    h.send("o1", "ConfirmOrder", {"manager": "ann", "amount": 20.0})
    h.assert_waiting("o1", "ConfirmPayment", thread="payment")
    h.assert_waiting("o1", "StartCooking")


def test_assert_waiting_fails_with_what_it_waits_for(gorch: Any) -> None:
    h = gorch(PIZZA)
    h.start("pizza", PizzaOrder(), id="o1")

    with pytest.raises(AssertionError) as info:
        h.assert_waiting("o1", "StartCooking")
    msg = str(info.value)
    assert "StartCooking" in msg
    assert "'o1'" in msg and MAIN_THREAD in msg
    assert "AddToCart" in msg and "cart timed out" in msg  # what it does wait for

    with pytest.raises(AssertionError) as info:
        h.assert_waiting("o1", "AddToCart", "Nope")
    assert "Nope" in str(info.value)
    assert "['Nope']" in str(info.value)  # only what is missing

    with pytest.raises(AssertionError) as info:
        h.assert_waiting("o1", "AddToCart", thread="payment")
    assert "no thread 'payment'" in str(info.value)
    assert "AddToCart" in str(info.value)  # the threads there are, and what they wait for

    h.advance(hours=24)
    with pytest.raises(AssertionError, match="no thread"):
        h.assert_waiting("o1")  # finished: nothing waits


def test_assert_waiting_fails_for_a_thread_that_is_not_blocked(gorch: Any) -> None:
    h = gorch({"stubborn": Stubborn})
    h.start("stubborn", Stubborn(), id="s1")  # its first step failed: it is at the step
    assert h.waits("s1") == {MAIN_THREAD: []}
    with pytest.raises(AssertionError, match=r"it waits for \[\]"):
        h.assert_waiting("s1")


def test_assert_status_fails_with_the_last_error(gorch: Any) -> None:
    h = gorch({"stubborn": Stubborn, **PIZZA})
    h.start("stubborn", Stubborn(), id="s1")
    with pytest.raises(AssertionError) as info:
        h.assert_status("s1", RunStatus.WAITING)
    msg = str(info.value)
    assert "'s1' is running, not waiting" in msg
    assert "RuntimeError: no luck" in msg

    h.start("pizza", PizzaOrder(), id="o1")
    with pytest.raises(AssertionError) as info:
        h.assert_status("o1", "finished")
    assert str(info.value) == "instance 'o1' is waiting, not finished"
    with pytest.raises(ValueError):
        h.assert_status("o1", "bogus")


def test_kinds(gorch: Any) -> None:
    h = gorch(PIZZA)
    h.start("pizza", PizzaOrder(), id="o1")
    assert h.kinds("o1") == ["started:pizza", "step:setup"]
    assert h.send("o1", "AddToCart", PEPPERONI, key="k1") == 1
    assert h.send("o1", "AddToCart", PEPPERONI, key="k1") == 1  # options are passed on
    h.engine.pause("o1")
    h.engine.unpause("o1")
    h.engine.cancel("o1")
    assert h.kinds("o1") == [
        "started:pizza",
        "step:setup",
        "event:AddToCart",
        "paused",
        "unpaused",
        "cancelled",
    ]


# --------------------------------------------------------------------------------------------
# the fixture closes its harnesses


def test_the_gorch_fixture_closes_its_harnesses(pytester: pytest.Pytester) -> None:
    pytester.makeconftest('pytest_plugins = ["gorch.testing"]')
    pytester.makepyfile(
        """
        from datetime import UTC, datetime
        from gorch import clock
        from gorch.testing import START

        made = []

        def test_use(gorch):
            made.append(gorch({}, store="sqlite"))
            made.append(gorch({}))
            assert clock.now() == START

        def test_after():
            assert clock.now() != START
            assert all(h._freezer is None and h._tmp is None for h in made)
        """
    )
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)


# --------------------------------------------------------------------------------------------
# the toolkit as shipped: Harness without pytest, the testing extra, the pytest11 plugin


def run_python(
    *parts: str, args: tuple[str, ...] = (), timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run the code ``parts`` (each dedented) in a fresh interpreter on this checkout, with
    warnings as errors."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    code = "\n".join(textwrap.dedent(part) for part in parts)
    return subprocess.run(
        [sys.executable, "-W", "error", "-c", code, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=ROOT,
    )


def blocking(*names: str) -> str:
    """Code that makes ``names`` unimportable, as if they were not installed."""
    return f"import sys\nfor name in {names!r}:\n    sys.modules[name] = None\n"


BELL_WORKFLOW = """
from dataclasses import dataclass
from datetime import timedelta
from gorch import RunStatus, S, Step, Timeout, Wait

@dataclass
class Bell:
    rung: bool = False

    def definition(self):
        return S(Wait("for the hour", Timeout("hour", timedelta(hours=1), Step("ring", self.ring))))

    def ring(self):
        self.rung = True
"""


def test_harness_works_without_pytest() -> None:
    """docs/testing.md: ``with Harness({...}) as h:`` in a program that has no pytest."""
    out = run_python(
        blocking("pytest", "_pytest"),
        BELL_WORKFLOW,
        """
        from gorch.testing import START, Harness

        with Harness({"bell": Bell}) as h:
            h.start("bell", Bell(), id="b")
            assert h.now() == START
            assert h.advance(hours=1) == 1
            h.assert_status("b", RunStatus.FINISHED)
            assert h.data("b").rung
        try:
            import gorch.testing.plugin
        except ImportError:
            pass
        else:
            raise AssertionError("the plugin imported without pytest")
        print("ok")
        """,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["ok"]


def test_harness_with_start_none_needs_no_freezegun() -> None:
    out = run_python(
        blocking("pytest", "_pytest", "freezegun"),
        BELL_WORKFLOW,
        """
        from gorch.testing import Harness

        with Harness({"bell": Bell}, start=None) as h:
            h.start("bell", Bell(), id="b")
            h.assert_waiting("b", "hour")
        try:
            Harness({"bell": Bell})
        except ImportError as exc:
            print(exc)
        """,
    )
    assert out.returncode == 0, out.stderr
    assert 'frozen time needs freezegun: pip install "gorch[testing]"' in out.stdout
    assert "start=None" in out.stdout


def test_the_fixtures_are_importable_from_gorch_testing() -> None:
    import gorch.testing
    from gorch.testing import plugin

    assert gorch.testing.gorch is plugin.gorch
    assert gorch.testing.gorch_time is plugin.gorch_time
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        gorch.testing.nope  # noqa: B018
    assert "gorch" not in dir(gorch.testing)  # module walkers (freezegun) do not load pytest


PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_pyproject_has_the_testing_extra_and_the_plugin_entry_point() -> None:
    project = PYPROJECT["project"]
    extras = project["optional-dependencies"]
    assert sorted(r.split(">")[0] for r in extras["testing"]) == ["freezegun", "pytest"]
    assert "gorch[all,testing]" in extras["dev"]
    assert project["entry-points"]["pytest11"] == {"gorch.testing.plugin": "gorch.testing.plugin"}


USER_TESTS = BELL_WORKFLOW + textwrap.dedent(
    """

    def test_bell(gorch, request):
        h = gorch({"bell": Bell})
        h.start("bell", Bell(), id="b")
        assert h.advance(hours=1) == 1 and h.data("b").rung
        pm = request.config.pluginmanager
        mine = [p for p in pm.get_plugins() if getattr(p, "__name__", "") == "gorch.testing.plugin"]
        assert [pm.get_name(p) for p in mine] == ["gorch.testing.plugin"]  # registered once


    def test_time(gorch_time):
        from gorch import clock
        from gorch.testing import START

        assert clock.now() == START
    """
)


def user_project(root: Path, conftest: str | None) -> Path:
    """A user's project: a test module using the fixtures, and maybe a conftest."""
    root.mkdir()
    (root / "test_bell.py").write_text(USER_TESTS)
    if conftest is not None:
        (root / "conftest.py").write_text(conftest)
    return root


def run_pytest(project: Path, *args: str, pythonpath: str, python: str = sys.executable) -> Any:
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_DISABLE_PLUGIN_AUTOLOAD"}
    env["PYTHONPATH"] = pythonpath
    return subprocess.run(
        # Warnings are errors, as in many projects' settings: an old conftest line must not
        # make pytest warn that it cannot rewrite the already imported gorch.testing.
        [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-W", "error", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=project,
    )


@pytest.mark.parametrize(
    "conftest",
    [None, 'pytest_plugins = ["gorch.testing"]\n', 'pytest_plugins = ["gorch.testing.plugin"]\n'],
    ids=["no conftest", "gorch.testing", "gorch.testing.plugin"],
)
def test_the_entry_point_brings_the_fixtures(tmp_path: Path, conftest: str | None) -> None:
    """pyproject's pytest11 entry point, in a dist-info as an installed wheel has it (the
    slow test below builds the real wheel): the fixtures need no conftest line, and the old
    conftest lines neither fail nor register the plugin twice."""
    site = tmp_path / "site" / "gorch_plugin_probe-0.dist-info"
    site.mkdir(parents=True)
    (site / "METADATA").write_text("Metadata-Version: 2.1\nName: gorch-plugin-probe\nVersion: 0\n")
    points = PYPROJECT["project"]["entry-points"]["pytest11"]
    (site / "entry_points.txt").write_text(
        "[pytest11]\n" + "".join(f"{k} = {v}\n" for k, v in points.items())
    )
    project = user_project(tmp_path / "project", conftest)
    path = f"{ROOT}{os.pathsep}{site.parent}"
    out = run_pytest(project, pythonpath=path)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "2 passed" in out.stdout

    if conftest is None:  # the entry point is what brought them: turned off, they are gone
        off = run_pytest(project, "-p", "no:gorch.testing.plugin", pythonpath=path)
        assert off.returncode == 1
        assert "fixture 'gorch' not found" in off.stdout


@pytest.mark.slow
def test_the_built_wheel_brings_the_plugin(tmp_path: Path) -> None:
    """Build the wheel (hatchling, through pip), install it into a fresh virtual environment
    without this checkout on the path, and run a user's tests there with no conftest."""
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(dist), str(ROOT)],
        check=True,
        timeout=300,
    )
    (wheel,) = dist.glob("gorch-*.whl")
    with zipfile.ZipFile(wheel) as z:
        info = next(n for n in z.namelist() if n.endswith(".dist-info/entry_points.txt"))
        points = z.read(info).decode()
        meta = z.read(info.replace("entry_points.txt", "METADATA")).decode()
    assert "[pytest11]\ngorch.testing.plugin = gorch.testing.plugin\n" in points
    assert "Provides-Extra: testing" in meta
    assert "Requires-Dist: freezegun>=1.5; extra == 'testing'" in meta
    assert "Requires-Dist: pytest>=8; extra == 'testing'" in meta

    # --system-site-packages brings gorch's dependencies (and pytest) without the network
    venv = tmp_path / "venv"
    subprocess.run(
        [sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)],
        check=True,
        timeout=120,
    )
    python = str(venv / "bin" / "python")
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", python, "install", "-q", "--no-deps",
         "--no-index", str(wheel)],
        check=True,
        timeout=300,
    )  # fmt: skip
    project = user_project(tmp_path / "project", None)
    (project / "test_where.py").write_text(
        "import gorch\n\n"
        "def test_gorch_is_the_installed_wheel():\n"
        f"    assert gorch.__file__.startswith({str(venv)!r}), gorch.__file__\n"
    )
    out = run_pytest(project, pythonpath="", python=python)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "3 passed" in out.stdout


# --------------------------------------------------------------------------------------------
# frozen time and what it touches


@dataclass
class Stamp:
    """Stores the time its step ran (a datetime, in the workflow's data)."""

    at: datetime | None = None

    def definition(self) -> Any:
        return S(Step("stamp", self.stamp), Wait("for end", On("End")))

    def stamp(self) -> None:
        self.at = clock.now()


@pytest.mark.parametrize("store", ["memory", "sqlite"])
def test_a_step_may_store_clock_now_under_the_harness(gorch: Any, store: str) -> None:
    h = gorch({"stamp": Stamp}, store=store)
    h.start("stamp", Stamp(), id="s")
    assert h.data("s").at == START
    h.advance(hours=1)
    h.send("s", "End")
    h.assert_status("s", RunStatus.FINISHED)
    assert h.data("s").at == START


SQL_UNDER_FROZEN_TIME = """
import sys
if sys.argv[1] == "sqlmodel first":
    import sqlmodel
import pathlib, tempfile, time
from datetime import timedelta
from examples.pizza.workflow import PizzaOrder
from gorch import Engine
from gorch.testing import START, Harness

with Harness({"pizza": PizzaOrder}, store="sqlite") as h:
    h.start("pizza", PizzaOrder(), id="o1")
    assert h.advance(hours=25) == 1
    h.assert_status("o1", "finished")
    assert h.now() == START + timedelta(hours=25)
    # SQLAlchemy's own pool keeps real time: a checkout it cannot serve times out
    import sqlalchemy
    sa = sqlalchemy.create_engine(h.store.url, pool_size=1, max_overflow=0, pool_timeout=0.2)
    held = sa.connect()
    began = time.clock_gettime(time.CLOCK_MONOTONIC)
    try:
        sa.connect()
    except sqlalchemy.exc.TimeoutError:
        waited = time.clock_gettime(time.CLOCK_MONOTONIC) - began
        assert 0.15 < waited < 5, waited
    else:
        raise AssertionError("a second connection from a pool of one")
    held.close()
    sa.dispose()
# and after it, in real time, a new store builds its tables and works
from gorch.store.sql import SQLStore
with tempfile.TemporaryDirectory() as d:
    store = SQLStore(f"sqlite:///{pathlib.Path(d) / 'after.db'}")
    Engine(store, {"pizza": PizzaOrder}).start("pizza", PizzaOrder(), id="o2")
    assert store.get("o2").created_at != START
    store.close()
print("ok")
"""


@pytest.mark.parametrize("order", ["sqlmodel first", "harness first"])
def test_the_sql_store_under_frozen_time_in_either_import_order(order: str) -> None:
    """A fresh process either imports sqlmodel (so SQLAlchemy and pydantic) before the
    Harness freezes time, or lets the Harness import them. Either way the store works under
    frozen time and its libraries' own clocks run (freezegun would otherwise patch, or have
    them import, its frozen ``time``: the pool's wait above never ended)."""
    out = run_python(SQL_UNDER_FROZEN_TIME, args=(order,))
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["ok"]


PG_WORKER_UNDER_FROZEN_TIME = """
import sys, threading, time
from datetime import timedelta
from gorch import Worker
from gorch.store.sql import SQLStore
from gorch.testing import Harness
from examples.pizza.workflow import PizzaOrder

with Harness({"pizza": PizzaOrder}, store=SQLStore(sys.argv[1])) as h:
    h.start("pizza", PizzaOrder(), id="pg1")
    began = time.clock_gettime(time.CLOCK_MONOTONIC)
    assert h.store.wait_for_work(0.2) is False  # LISTEN with a timeout: real seconds
    assert time.clock_gettime(time.CLOCK_MONOTONIC) - began < 5
    worker = Worker(h.engine, poll=0.2)
    t = threading.Thread(target=worker.run, kwargs={"handle_signals": False}, daemon=True)
    t.start()
    time.sleep(0.3)
    h.clock.tick(timedelta(hours=25))  # the worker thread fires the cart's timeout
    for _ in range(100):
        if h.get("pg1").status == "finished":
            break
        time.sleep(0.05)
    worker.stop()
    t.join(10)
    assert not t.is_alive(), "the worker did not stop"
    h.assert_status("pg1", "finished")
print("ok")
"""


def test_a_worker_on_postgresql_idles_and_stops_under_frozen_time(pg_store_url: str) -> None:
    """psycopg's LISTEN timeout reads ``time.monotonic``: frozen, an idle worker's wait for
    work never returned, so the worker never stopped."""
    out = run_python(PG_WORKER_UNDER_FROZEN_TIME, args=(pg_store_url,))
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["ok"]


# --------------------------------------------------------------------------------------------
# advance steps through due timers and retries


@dataclass
class Daily:
    """A loop that waits a day (or for ``Stop``) and records when each day's step ran."""

    rang: list[str] = field(default_factory=list)
    stopped: bool = False

    def definition(self) -> Any:
        return S(
            For("until stopped", not self.stopped,
                Wait("for the day",
                    Timeout("day", timedelta(days=1), Step("ring", self.ring)),
                    On("Stop", self.stop),
                ),
            ),
        )  # fmt: skip

    def ring(self) -> None:
        self.rang.append(clock.format_time(clock.now()))

    def stop(self) -> None:
        self.stopped = True


def day(n: float) -> str:
    return clock.format_time(START + timedelta(days=n))


@pytest.mark.parametrize("store", ["memory", "sqlite"])
def test_advance_fires_a_daily_timer_at_each_due_moment(gorch: Any, store: str) -> None:
    h = gorch({"daily": Daily}, store=store)
    h.start("daily", Daily(), id="d")
    assert h.advance(days=2, hours=23) == 2
    assert h.data("d").rang == [day(1), day(2)]
    assert h.now() == START + timedelta(days=2, hours=23)
    assert [t.due_at for t in h.store.timers()] == [START + timedelta(days=3)]
    assert h.advance(hours=1) == 1  # the third day comes due exactly at the end
    assert h.data("d").rang == [day(1), day(2), day(3)]
    history = h.engine.history("d")
    assert [e.at for e in history if e.kind == "timer"] == [
        START + timedelta(days=n) for n in (1, 2, 3)
    ]


def test_advance_fires_timers_of_many_instances_in_due_order(gorch: Any) -> None:
    h = gorch({"daily": Daily, "bell": Bell})
    h.start("daily", Daily(), id="d")
    h.advance(hours=12)
    h.start("daily", Daily(), id="e")  # its days fall half a day after d's
    h.start("bell", Bell(), id="b")  # rings at 13:00 on the first day
    assert h.advance(days=2) == 5  # b; d: days 1 and 2; e: days 1.5 and 2.5 (the end)
    assert h.data("d").rang == [day(1), day(2)]
    assert h.data("e").rang == [day(1.5), day(2.5)]
    fired = sorted(
        (e.at, id) for id in ("d", "e", "b") for e in h.engine.history(id) if e.kind == "timer"
    )
    assert fired == [
        (START + timedelta(hours=13), "b"),
        (START + timedelta(days=1), "d"),
        (START + timedelta(days=1.5), "e"),
        (START + timedelta(days=2), "d"),
        (START + timedelta(days=2.5), "e"),
    ]


@dataclass
class Flaky:
    """A step that fails while its service is down (until ``down_until``), retried after 1,
    2, 4 ... minutes; it records when it succeeded."""

    down_until: str = ""
    done_at: str = ""

    def definition(self) -> Any:
        return S(
            Step(
                "call the service",
                self.call,
                retry=RetryPolicy(max_attempts=5, initial=timedelta(minutes=1), jitter=0),
            ),
            Wait("for end", On("End")),
        )

    def call(self) -> None:
        if clock.now() < clock.parse_time(self.down_until):
            raise RuntimeError("the service is down")
        self.done_at = clock.format_time(clock.now())


def flaky(down_for: timedelta) -> Flaky:
    return Flaky(down_until=clock.format_time(clock.now() + down_for))


def test_advance_runs_every_retry_that_falls_due(gorch: Any) -> None:
    h = gorch({"stubborn": Stubborn, "flaky": Flaky})
    h.start("stubborn", Stubborn(), id="s1")  # retries after 10 s and 20 s more, then fails
    assert h.advance(minutes=5) == 2
    h.assert_status("s1", RunStatus.FAILED)
    failed = [e.at for e in h.engine.history("s1") if e.kind == "step_failed"]
    assert failed == [START, START + timedelta(seconds=10), START + timedelta(seconds=30)]

    at = h.now()
    h.start("flaky", flaky(timedelta(minutes=2)), id="f")  # fails now and at +1 min
    assert h.advance(hours=1) == 2
    h.assert_waiting("f", "End")
    tries = [e.at for e in h.engine.history("f") if e.kind in ("step", "step_failed")]
    assert tries == [at, at + timedelta(minutes=1), at + timedelta(minutes=3)]
    assert h.data("f").done_at == clock.format_time(at + timedelta(minutes=3))


def test_advance_interleaves_timers_and_retries(gorch: Any) -> None:
    h = gorch({"daily": Daily, "flaky": Flaky})
    h.start("daily", Daily(), id="d")
    h.advance(hours=23, minutes=59)
    h.start("flaky", flaky(timedelta(minutes=5)), id="f")  # retried at +1, +3 and +7 minutes
    assert h.advance(minutes=10) == 4
    events = sorted(
        (e.at, e.kind)
        for id in ("d", "f")
        for e in h.engine.history(id)
        if e.kind in ("timer", "step", "step_failed")
    )
    t0 = START + timedelta(hours=23, minutes=59)
    assert events == [
        (t0, "step_failed"),
        (t0 + timedelta(minutes=1), "step"),  # the day's ring at 24:00 ...
        (t0 + timedelta(minutes=1), "step_failed"),  # ... and f's first retry, same moment
        (t0 + timedelta(minutes=1), "timer"),
        (t0 + timedelta(minutes=3), "step_failed"),
        (t0 + timedelta(minutes=7), "step"),
    ]


def test_advance_passes_paused_work_by(gorch: Any) -> None:
    h = gorch({"daily": Daily, "stubborn": Stubborn})
    h.start("daily", Daily(), id="d")
    h.engine.pause("d")
    h.start("stubborn", Stubborn(), id="s")
    h.engine.pause("s")
    assert h.advance(days=3) == 0  # nothing fires, and advance does not spin on it
    assert h.now() == START + timedelta(days=3)
    h.engine.unpause("d")
    assert h.advance() == 1  # the overdue day fires once, now
    assert h.data("d").rang == [day(3)]


# --------------------------------------------------------------------------------------------
# a busy instance under frozen time


def real_seconds() -> float:
    """A clock freezegun does not touch (it freezes time.monotonic and time.perf_counter)."""
    return time.clock_gettime(time.CLOCK_MONOTONIC)


GATE = threading.Event()
ENTERED = threading.Event()


@dataclass
class Slow:
    """A step that runs until the test opens ``GATE`` (at most 10 s)."""

    more: int = 0

    def definition(self) -> Any:
        return S(
            Wait("for go", On("Go")),
            Step("slow", self.slow),
            Wait("for more", On("More", self.add)),
        )

    def slow(self) -> None:
        ENTERED.set()
        GATE.wait(10)

    def add(self) -> None:
        self.more += 1


@pytest.fixture
def slow_step(gorch: Any, request: pytest.FixtureRequest) -> Any:
    """A harness (``busy_wait=1``) whose instance ``s`` is in its slow step, in a thread."""
    GATE.clear()
    ENTERED.clear()
    h = gorch({"slow": Slow}, store=request.param, busy_wait=1.0)
    h.start("slow", Slow(), id="s")
    runner = threading.Thread(target=h.send, args=("s", "Go"))
    runner.start()
    assert ENTERED.wait(10)
    yield h
    GATE.set()
    runner.join(10)


@pytest.mark.parametrize("slow_step", ["memory", "sqlite"], indirect=True)
def test_a_send_waits_for_a_busy_instance_under_frozen_time(slow_step: Any) -> None:
    h = slow_step
    threading.Timer(0.3, GATE.set).start()
    began = real_seconds()
    h.send("s", "More")
    assert 0.25 < real_seconds() - began < 5  # it waited for the step, in real seconds
    assert h.data("s").more == 1
    assert h.kinds("s")[-3:] == ["step:slow", "event:More", "finished"]


@pytest.mark.parametrize("slow_step", ["memory", "sqlite"], indirect=True)
def test_a_busy_instance_is_refused_after_busy_wait_real_seconds(slow_step: Any) -> None:
    h = slow_step
    began = real_seconds()
    with pytest.raises(BusyError, match="did not finish within 1 s"):
        h.send("s", "More")
    assert 0.9 < real_seconds() - began < 5
    assert h.now() == START  # frozen all along
    GATE.set()


def test_the_docs_harness_examples_run_without_pytest() -> None:
    """docs/testing.md's Harness examples (every python block but the conftest line, the
    pytest test and the pytest fixture), run in a program that has no pytest."""
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "docs" / "testing.md").read_text(), re.S)
    plain = [b for b in blocks if "pytest" not in b and "def test_" not in b]
    assert len(plain) == 2
    for code in plain:
        out = run_python(blocking("pytest", "_pytest"), code, "print('ok')")
        assert out.returncode == 0, out.stderr
        assert out.stdout.split() == ["ok"]


def test_a_sqlite_harness_without_the_sql_extra_says_what_to_install() -> None:
    out = run_python(
        blocking("sqlmodel", "sqlalchemy"),
        """
        from datetime import UTC, datetime
        from gorch.testing import START, Harness
        try:
            Harness({}, store="sqlite")
        except ImportError as exc:
            print(exc)
        assert datetime.now(UTC) != START  # refused before it froze time
        """,
    )
    assert out.returncode == 0, out.stderr
    assert 'Harness(store="sqlite") needs the SQL store: pip install "gorch[sql]"' in out.stdout
