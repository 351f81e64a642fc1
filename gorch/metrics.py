"""Prometheus metrics for an engine and its workers (the ``metrics`` extra: ``prometheus-client``).

:class:`PrometheusMetrics` is two things at once:

- a :class:`~gorch.engine.Listener`: pass it as ``Engine(listeners=[metrics])`` and it counts
  and times what this process does (engine calls, steps, failed attempts, timers, a worker's
  claims and idle time) in counters and histograms. Those add up across processes, as
  Prometheus sums them over every scraped target;
- a collector that reads the instance gauges from the store at scrape time
  (:meth:`Store.counts <gorch.store.Store.counts>`, cached for ``cache`` seconds): how many
  instances there are by workflow and status, and how many are late. A gauge kept by status
  changes in one process would be wrong as soon as a second process (a worker, another API
  replica) changes an instance; the store is the one place that knows.

Expose it at ``/metrics`` with :meth:`PrometheusMetrics.asgi_app` (mount it on any ASGI app) or
on a port of its own with :meth:`PrometheusMetrics.serve` (what ``gorch worker --metrics-port``
does). Every metric is listed in docs/operations.md.

Example::

    from gorch.metrics import PrometheusMetrics

    metrics = PrometheusMetrics(store)
    engine = Engine(store, workflows, listeners=[metrics])
    metrics.serve(9100)             # or: app.mount("/metrics", metrics.asgi_app())
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram
from prometheus_client import make_asgi_app as _make_asgi_app
from prometheus_client import make_wsgi_app as _make_wsgi_app
from prometheus_client import start_http_server as _start_http_server
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from gorch import clock
from gorch.engine import Listener, RunStatus
from gorch.errors import InputError
from gorch.store.base import StatusCount, Store

__all__ = ["DURATION_BUCKETS", "LAG_BUCKETS", "MetricsApp", "PrometheusMetrics", "StoreCollector"]

DURATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
"""Buckets (seconds) of the step, call and claim histograms: from a millisecond (a commit on
SQLite) to half a minute (a slow step)."""

LAG_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 900)
"""Buckets (seconds) of the timer lag: a worker polls every second by default."""


def _outcome(error: BaseException | None) -> str:
    """A call's or step's outcome label: ``ok``, or the error's class name."""
    return "ok" if error is None else type(error).__name__


class PrometheusMetrics(Listener):
    """Prometheus metrics of an engine (a listener) and of its store (a collector).

    Args:
        store: the store whose instances the gauges count (the engine's ``store``); None for
            only the counters and histograms of this process.
        registry: where the metrics are registered (default: ``prometheus_client``'s global
            registry, beside the process metrics and your own).
        late_after: seconds after which work that is due and that no worker has taken up makes
            an instance late (``gorch_instances_late``): the lag alert's threshold.
        cache: seconds a scrape reuses the store's counts (many scrapers, one query).

    Raises:
        InputError: ``late_after`` or ``cache`` is negative, or the registry has gorch's
            metrics already (one ``PrometheusMetrics`` per registry).
    """

    def __init__(
        self,
        store: Store | None = None,
        *,
        registry: CollectorRegistry | None = None,
        late_after: float = 60.0,
        cache: float = 5.0,
    ) -> None:
        if late_after < 0 or cache < 0:
            raise InputError(
                f"late_after and cache are seconds, 0 or more, not {late_after!r} and {cache!r}"
            )
        self.registry = REGISTRY if registry is None else registry
        self.store = store
        self.late_after = float(late_after)
        self.collector = StoreCollector(store, late_after, cache) if store is not None else None
        self._local = threading.local()
        try:
            self._make(self.registry)
        except ValueError as exc:  # prometheus_client: "Duplicated timeseries ..."
            raise InputError(
                f"this registry has gorch's metrics already ({exc}): make one PrometheusMetrics "
                "per registry and pass it to every engine of the process"
            ) from None

    def _make(self, r: CollectorRegistry) -> None:
        wf = ("workflow",)
        self.calls = Histogram(
            "gorch_operation_seconds", "Engine calls (and a worker's items) by how they ended.",
            ("operation", "workflow", "outcome"), buckets=DURATION_BUCKETS, registry=r,
        )  # fmt: skip
        self.events = Histogram(
            "gorch_event_seconds", "Engine.send: from the call to the run's end, by event.",
            (*wf, "event", "outcome"), buckets=DURATION_BUCKETS, registry=r,
        )  # fmt: skip
        self.steps = Histogram(
            "gorch_step_seconds", "Steps and WaitFor handlers, as they ran.",
            (*wf, "statement", "outcome"), buckets=DURATION_BUCKETS, registry=r,
        )  # fmt: skip
        self.retries = Counter(
            "gorch_step_retries", "Failed attempts that are retried later.",
            (*wf, "statement"), registry=r,
        )  # fmt: skip
        self.failures = Counter(
            "gorch_step_failures", "Failed attempts past the retry policy: the instance failed.",
            (*wf, "statement"), registry=r,
        )  # fmt: skip
        self.changes = Counter(
            "gorch_status_changes", "Instances that entered a status.", (*wf, "status"),
            registry=r,
        )  # fmt: skip
        self.timer_lag = Histogram(
            "gorch_timer_lag_seconds", "How late a worker fired a Timeout (fired minus due).",
            (*wf, "timer"), buckets=LAG_BUCKETS, registry=r,
        )  # fmt: skip
        self.claims = Histogram(
            "gorch_worker_claim_seconds", "A worker's claims (one query each), by kind.",
            ("kind",), buckets=DURATION_BUCKETS, registry=r,
        )  # fmt: skip
        self.claimed = Counter(
            "gorch_worker_claimed", "Items a worker claimed, by kind.", ("kind",), registry=r
        )
        self.idle = Counter(
            "gorch_worker_idle_seconds", "Time workers waited with nothing to do.", registry=r
        )
        if self.collector is not None:
            r.register(self.collector)

    # -- exposing ----------------------------------------------------------------------------

    def asgi_app(self) -> MetricsApp:
        """An ASGI app that answers a GET with the registry in Prometheus' text format (or
        OpenMetrics, as the scraper asks), whatever its path: route ``/metrics`` to it
        (``app.add_route("/metrics", metrics.asgi_app())`` on Starlette or FastAPI)."""
        return MetricsApp(_make_asgi_app(self.registry))

    def wsgi_app(self) -> Callable[..., Any]:
        """:meth:`asgi_app` for WSGI servers."""
        return _make_wsgi_app(self.registry)

    def serve(self, port: int, addr: str = "0.0.0.0") -> Any:
        """Serve the registry on ``http://addr:port/`` from a daemon thread (a worker's
        metrics port); returns the server (``shutdown()`` stops it)."""
        server, _thread = _start_http_server(port, addr, registry=self.registry)
        return server

    # -- the listener ------------------------------------------------------------------------

    def after_operation(
        self,
        operation: str,
        instance: str,
        workflow: str,
        detail: str,
        error: BaseException | None,
        seconds: float,
    ) -> None:
        outcome = _outcome(error)
        self.calls.labels(operation, workflow, outcome).observe(seconds)
        if operation == "send":
            self.events.labels(workflow, detail, outcome).observe(seconds)

    def before_step(self, instance: str, workflow: str, thread: str, step: str) -> None:
        # One step runs at a time in a thread; a setup or teardown (no after_step) is replaced.
        self._local.step = (instance, thread, step, time.perf_counter())

    def after_step(
        self, instance: str, workflow: str, thread: str, step: str, error: BaseException | None
    ) -> None:
        began = getattr(self._local, "step", None)
        self._local.step = None
        if began is not None and began[:3] == (instance, thread, step):
            seconds = time.perf_counter() - began[3]
            self.steps.labels(workflow, step, _outcome(error)).observe(seconds)

    def on_status(
        self, instance: str, workflow: str, old: RunStatus | None, new: RunStatus
    ) -> None:
        self.changes.labels(workflow, new.value).inc()

    def on_step_failed(
        self,
        instance: str,
        workflow: str,
        thread: str,
        step: str,
        attempt: int,
        retry_at: datetime | None,
    ) -> None:
        (self.failures if retry_at is None else self.retries).labels(workflow, step).inc()

    def on_timer(self, instance: str, workflow: str, timer: str, lag: float) -> None:
        self.timer_lag.labels(workflow, timer).observe(max(lag, 0.0))

    def on_claim(self, kind: str, claimed: int, seconds: float) -> None:
        self.claims.labels(kind).observe(seconds)
        if claimed:
            self.claimed.labels(kind).inc(claimed)

    def on_idle(self, seconds: float) -> None:
        self.idle.inc(seconds)


class MetricsApp:
    """:meth:`PrometheusMetrics.asgi_app`: ``prometheus_client``'s ASGI app as an object, so
    that Starlette routes a path to it as an ASGI app (a plain function would be taken for a
    request handler)."""

    def __init__(self, app: Callable[..., Any]) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)


class StoreCollector(Collector):
    """The gauges read from the store at scrape time (see :class:`PrometheusMetrics`):
    ``gorch_instances``, ``gorch_instances_late``, ``gorch_store_up``."""

    def __init__(self, store: Store, late_after: float, cache: float) -> None:
        self.store = store
        self.late_after = timedelta(seconds=late_after)
        self.cache = cache
        self._lock = threading.Lock()
        self._read: tuple[float, Sequence[StatusCount]] | None = None

    def describe(self) -> Iterable[Metric]:
        # Registering asks for the names only: no store query then.
        return list(self._families([], up=True))

    def collect(self) -> Iterable[Metric]:
        counts, up = self._counts()
        return list(self._families(counts, up))

    def _counts(self) -> tuple[Sequence[StatusCount], bool]:
        """The store's counts, at most ``cache`` seconds old; nothing (and down) if the store
        cannot answer: a scrape never fails for it."""
        with self._lock:
            now = time.monotonic()
            if self._read is not None and now - self._read[0] < self.cache:
                return self._read[1], True
            try:
                at = clock.now()
                counts = self.store.counts(at, at - self.late_after)
            except Exception:
                self._read = None
                return [], False
            self._read = (now, counts)
            return counts, True

    def _families(self, counts: Sequence[StatusCount], up: bool) -> Iterator[Metric]:
        instances = GaugeMetricFamily(
            "gorch_instances", "Instances in the store, by workflow and status.",
            labels=("workflow", "status"),
        )  # fmt: skip
        late = GaugeMetricFamily(
            "gorch_instances_late",
            "Instances with work due for longer than the threshold that no worker has taken "
            "up (a step to run or retry, a timer to fire): alert when above 0.",
            labels=("workflow",),
        )
        by_workflow: dict[str, int] = {}
        for c in counts:
            instances.add_metric((c.workflow, c.status), c.count)
            by_workflow[c.workflow] = by_workflow.get(c.workflow, 0) + c.late
        for workflow, n in sorted(by_workflow.items()):
            late.add_metric((workflow,), n)
        yield instances
        yield late
        yield GaugeMetricFamily(
            "gorch_instances_late_threshold_seconds",
            "How long work may be due before its instance counts as late.",
            value=self.late_after.total_seconds(),
        )
        yield GaugeMetricFamily(
            "gorch_store_up", "Whether the last read of the store's counts succeeded.",
            value=1.0 if up else 0.0,
        )  # fmt: skip
