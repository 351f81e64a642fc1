"""gorch.metrics: /metrics scraped over real HTTP during a real workload on SQLite (steps,
events, a step that fails and is retried, one that gives up, a timer, a worker), and a
``gorch worker --metrics-port`` subprocess scraped on its port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette
from starlette.routing import Route

from gorch import (
    CallbackNotFound,
    Engine,
    InputError,
    Listener,
    On,
    RetryPolicy,
    RunStatus,
    S,
    Step,
    Timeout,
    Wait,
    Worker,
)
from gorch.http import Auth, create_app
from gorch.metrics import PrometheusMetrics
from gorch.store import MemoryStore, SQLStore
from gorch.testing.http import LiveServer

ROOT = Path(__file__).resolve().parent.parent
QUICK = RetryPolicy(max_attempts=3, initial=timedelta(milliseconds=10), jitter=0)


@dataclass
class Shop:
    """Prepares, waits for ``Pay`` (or reminds once its timer is due), then charges: the
    charge fails ``FAILS[id]`` times (all its attempts if missing)."""

    FAILS: ClassVar[dict[str, int]] = {}

    id: str = ""
    reminded: bool = False
    charged: bool = False

    def definition(self) -> Any:
        return S(
            Step("prepare", self.prepare),
            Wait(
                "for payment",
                On("Pay", self.pay),
                Timeout("reminder", timedelta(milliseconds=50), Step("remind", self.remind)),
            ),
            Step("charge", self.charge, retry=QUICK),
        )

    def prepare(self) -> None:
        time.sleep(0.002)

    def pay(self) -> str:
        return "paid"

    def remind(self) -> None:
        self.reminded = True

    def charge(self) -> None:
        left = Shop.FAILS.get(self.id, 99)
        if left > 0:
            Shop.FAILS[self.id] = left - 1
            raise RuntimeError("card declined")
        self.charged = True


def scrape(url: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample at ``url``: (name, labels) -> value."""
    text = httpx.get(url, timeout=10).raise_for_status().text
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: dict[Any, float], name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def until(check: Callable[[], bool], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[tuple[Engine, PrometheusMetrics]]:
    store = SQLStore(f"sqlite:///{tmp_path / 'm.db'}", synchronous="NORMAL")
    metrics = PrometheusMetrics(store, registry=CollectorRegistry(), cache=0)
    yield Engine(store, {"shop": Shop}, listeners=[metrics]), metrics
    Shop.FAILS.clear()
    store.close()


@contextmanager
def working(engine: Engine) -> Iterator[Worker]:
    """A worker looping in a thread (polling often) for the block."""
    w = Worker(engine, poll=0.05)
    t = threading.Thread(target=w.run, kwargs={"handle_signals": False}, daemon=True)
    t.start()
    try:
        yield w
    finally:
        w.stop()
        t.join(timeout=20)


def test_metrics_scraped_over_http_during_a_workload(
    engine: tuple[Engine, PrometheusMetrics],
) -> None:
    eng, metrics = engine
    # The HTTP app serves them at /metrics, without a token (a scraper's read), beside its API.
    app = create_app(eng, auth=Auth({"secret": ["admin"]}), metrics=metrics)
    assert eng.listeners.count(metrics) == 1
    Shop.FAILS.update({"a": 1})  # a: fails once, then the worker's retry succeeds; b: gives up
    with LiveServer(app) as url:
        assert httpx.get(url + "/instances").status_code == 401
        before = scrape(url + "/metrics")
        assert value(before, "gorch_store_up") == 1
        assert not [k for k in before if k[0] == "gorch_instances"]  # an empty store
        for id in ("a", "b", "c"):
            eng.start("shop", Shop(id=id), id=id)
        mid = scrape(url + "/metrics")
        assert value(mid, "gorch_instances", workflow="shop", status="waiting") == 3
        assert eng.send("a", "Pay") == "paid"  # its charge fails: a worker retries it
        with pytest.raises(CallbackNotFound):
            eng.send("a", "Pay")  # not waiting for Pay any more: refused
        eng.pause("c")
        with working(eng):  # fires b's timer, retries a's and b's charges
            until(lambda: eng.get("a").status is RunStatus.FINISHED)
            until(lambda: eng.get("b").status is RunStatus.FAILED)
            samples = scrape(url + "/metrics")
    m = lambda name, **labels: value(samples, name, **labels)  # noqa: E731
    assert m("gorch_instances", workflow="shop", status="finished") == 1
    assert m("gorch_instances", workflow="shop", status="failed") == 1
    assert m("gorch_instances", workflow="shop", status="paused") == 1
    assert m("gorch_instances", workflow="shop", status="waiting") is None
    assert m("gorch_instances_late", workflow="shop") == 0
    shop = {"workflow": "shop"}
    # events: one accepted, one refused (by its error's class)
    assert m("gorch_event_seconds_count", **shop, event="Pay", outcome="ok") == 1
    assert m("gorch_event_seconds_count", **shop, event="Pay",
             outcome="CallbackNotFound") == 1  # fmt: skip
    assert m("gorch_event_seconds_sum", **shop, event="Pay", outcome="ok") > 0
    # every engine call and worker item
    assert m("gorch_operation_seconds_count", operation="start", **shop, outcome="ok") == 3
    assert m("gorch_operation_seconds_count", operation="pause", **shop, outcome="ok") == 1
    assert m("gorch_operation_seconds_count", operation="timer", **shop, outcome="ok") == 1
    assert m("gorch_operation_seconds_count", operation="run", **shop, outcome="ok") == 3
    # steps: prepare x3; charge: a fails once then succeeds, b fails its 3 attempts
    assert m("gorch_step_seconds_count", **shop, statement="prepare", outcome="ok") == 3
    assert m("gorch_step_seconds_sum", **shop, statement="prepare", outcome="ok") >= 0.006
    assert m("gorch_step_seconds_count", **shop, statement="remind", outcome="ok") == 1
    assert m("gorch_step_seconds_count", **shop, statement="charge", outcome="ok") == 1
    assert m("gorch_step_seconds_count", **shop, statement="charge", outcome="RuntimeError") == 4
    assert m("gorch_step_retries_total", **shop, statement="charge") == 3
    assert m("gorch_step_failures_total", **shop, statement="charge") == 1
    assert m("gorch_status_changes_total", **shop, status="finished") == 1
    assert m("gorch_status_changes_total", **shop, status="failed") == 1
    # the timer fired after it was due, by less than the test took
    assert m("gorch_timer_lag_seconds_count", **shop, timer="reminder") == 1
    assert 0 <= m("gorch_timer_lag_seconds_sum", **shop, timer="reminder") < 20
    # the worker: what it claimed, how long it idled
    assert m("gorch_worker_claimed_total", kind="timer") == 1
    assert m("gorch_worker_claimed_total", kind="run") == 3
    assert m("gorch_worker_claim_seconds_count", kind="run") >= 3
    assert m("gorch_worker_idle_seconds_total") > 0


def test_late_instances_are_counted_at_scrape_time_from_the_store(tmp_path: Path) -> None:
    """Work that no worker takes up makes its instance late once due longer than the
    threshold: read from the store, so a process that did nothing sees it too."""
    store = SQLStore(f"sqlite:///{tmp_path / 'late.db'}")
    metrics = PrometheusMetrics(store, registry=CollectorRegistry(), late_after=0.2, cache=0)
    other = Engine(store, {"shop": Shop})  # another process's engine, with no listener
    other.start("shop", Shop(id="q"), id="q", defer=True)  # queued for a worker
    app = Starlette(routes=[Route("/metrics", metrics.asgi_app())])
    with LiveServer(app) as url:
        first = scrape(url + "/metrics")
        assert value(first, "gorch_instances", workflow="shop", status="running") == 1
        assert value(first, "gorch_instances_late", workflow="shop") == 0
        assert value(first, "gorch_instances_late_threshold_seconds") == 0.2
        time.sleep(0.3)
        assert value(scrape(url + "/metrics"), "gorch_instances_late", workflow="shop") == 1
        Worker(other).run_once()  # a worker takes it up: it waits for Pay, not late
        assert value(scrape(url + "/metrics"), "gorch_instances_late", workflow="shop") == 0
    store.close()


def test_a_scrape_reuses_the_counts_for_the_cache_time() -> None:
    store = _CountingStore()
    registry = CollectorRegistry()
    PrometheusMetrics(store, registry=registry, cache=60)
    assert store.reads == 0  # registering reads nothing
    registry.get_sample_value("gorch_store_up")
    registry.get_sample_value("gorch_store_up")
    assert store.reads == 1


def test_a_store_that_does_not_answer_is_a_gauge_not_a_failed_scrape() -> None:
    store = _CountingStore()
    store.down = True
    registry = CollectorRegistry()
    PrometheusMetrics(store, registry=registry, cache=60)
    assert registry.get_sample_value("gorch_store_up") == 0
    assert registry.get_sample_value("gorch_instances", {"workflow": "shop"}) is None
    store.down = False  # a failed read is not cached
    assert registry.get_sample_value("gorch_store_up") == 1


def test_bad_settings_and_a_second_metrics_on_one_registry_are_refused() -> None:
    registry = CollectorRegistry()
    with pytest.raises(InputError, match="late_after and cache are seconds"):
        PrometheusMetrics(registry=registry, late_after=-1)
    PrometheusMetrics(MemoryStore(), registry=registry)
    with pytest.raises(InputError, match="one PrometheusMetrics per registry"):
        PrometheusMetrics(MemoryStore(), registry=registry)


def test_a_failing_listener_does_not_change_the_metrics_or_the_outcome(
    engine: tuple[Engine, PrometheusMetrics],
) -> None:
    eng, metrics = engine

    class Broken(Listener):
        def before_operation(self, *args: Any) -> None:
            raise RuntimeError("broken listener")

        def after_step(self, *args: Any) -> None:
            raise RuntimeError("broken listener")

    eng.listeners.insert(0, Broken())
    eng.start("shop", Shop(id="x"), id="x")
    r = metrics.registry
    labels = {"workflow": "shop", "statement": "prepare", "outcome": "ok"}
    assert r.get_sample_value("gorch_step_seconds_count", labels) == 1
    assert eng.get("x").status is RunStatus.WAITING


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_gorch_worker_serves_metrics_on_its_port(tmp_path: Path) -> None:
    db = tmp_path / "w.db"
    store = SQLStore(f"sqlite:///{db}")
    Engine(store, {"shop": Shop}).start("shop", Shop(id="t"), id="t")  # its timer is due soon
    store.close()
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GORCH_")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "tests"), str(ROOT)])
    argv = [sys.executable, "-m", "gorch", "--store", str(db), "--workflows",
            "test_metrics:WORKFLOWS", "worker", "--poll", "0.05", "--metrics-port", str(port),
            "--metrics-host", "127.0.0.1"]  # fmt: skip
    proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}/metrics"

        def fired() -> bool:
            assert proc.poll() is None, proc.communicate()[0]
            try:
                samples = scrape(url)
            except httpx.TransportError:
                return False
            return value(samples, "gorch_worker_claimed_total", kind="timer") == 1

        until(fired)
        samples = scrape(url)
        assert value(samples, "gorch_timer_lag_seconds_count", workflow="shop",
                     timer="reminder") == 1  # fmt: skip
        until(lambda: value(scrape(url), "gorch_instances", workflow="shop",
                            status="failed") == 1)  # fmt: skip
        assert value(scrape(url), "gorch_worker_idle_seconds_total") > 0
    finally:
        proc.terminate()
        out = proc.communicate(timeout=20)[0]
    assert proc.returncode == 0, out
    assert f"metrics on http://127.0.0.1:{port}/metrics" in out


def test_the_metrics_port_in_use_is_a_clear_failure(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        argv = [sys.executable, "-m", "gorch", "--store", str(tmp_path / "x.db"), "--create",
                "--workflows", "test_metrics:WORKFLOWS", "worker", "--metrics-port", str(port),
                "--metrics-host", "127.0.0.1"]  # fmt: skip
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / "tests"), str(ROOT)]))
        proc = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=60)  # fmt: skip
    assert proc.returncode != 0
    assert f"cannot serve metrics on 127.0.0.1:{port}" in proc.stderr + proc.stdout
    assert "Traceback" not in proc.stderr


def test_docs_operations_example_runs() -> None:
    import re

    text = (ROOT / "docs" / "operations.md").read_text()
    code = re.findall(r"```python\n(.*?)```", text, re.S)[0]
    exec(compile(code, "docs/operations.md", "exec", dont_inherit=True), {})


WORKFLOWS = {"shop": Shop}
"""For ``gorch --workflows test_metrics:WORKFLOWS``."""


class _CountingStore(MemoryStore):
    """A memory store that counts reads of its counts, and can be down."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0
        self.down = False

    def counts(self, now: Any, late_before: Any) -> Any:
        if self.down:
            raise OSError("the database is down")
        self.reads += 1
        return super().counts(now, late_before)
