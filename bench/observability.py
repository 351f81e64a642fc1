"""What metrics and traces add to ``Engine.send``: ``python -m bench.observability [--quick]``.

One SQLite file (WAL, ``synchronous=NORMAL``, so that the commit's fsync does not hide the
listeners' cost), one instance per configuration, each send an event and one step (two
commits). Configurations, run in turns so that the machine's drift hits all alike:

- ``none``: no listener (the engine's observation hooks are one shared no-op ``with``);
- ``metrics``: :class:`gorch.metrics.PrometheusMetrics` (its own registry);
- ``tracing, no-op``: :class:`gorch.tracing.Tracing` on OpenTelemetry's no-op provider;
- ``tracing, SDK``: on the SDK's provider, spans to an in-memory exporter;
- ``both``: metrics and the SDK's tracing.

Prints the median microseconds per send of each configuration, its ratio to ``none``, and what
one no-op observation costs an engine with no listener.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import NoOpTracerProvider
from prometheus_client import CollectorRegistry

from gorch import Engine, For, Listener, On, S, Step, Wait
from gorch.metrics import PrometheusMetrics
from gorch.store import SQLStore
from gorch.tracing import Tracing


@dataclass
class Tally:
    """Counts ``Add`` events forever, with a step after each."""

    n: int = 0
    steps: int = 0

    def definition(self) -> Any:
        return S(
            For("adding", True, Wait("for add", On("Add", self.add)), Step("count", self.count))
        )

    def add(self) -> int:
        self.n += 1
        return self.n

    def count(self) -> None:
        self.steps += 1


def configurations() -> dict[str, tuple[list[Listener], Callable[[], None]]]:
    """name -> (the listeners, what to do between rounds)."""
    exporter = InMemorySpanExporter()
    sdk = TracerProvider()
    sdk.add_span_processor(SimpleSpanProcessor(exporter))
    metrics = PrometheusMetrics(registry=CollectorRegistry())
    both = PrometheusMetrics(registry=CollectorRegistry())
    return {
        "none": ([], lambda: None),
        "metrics": ([metrics], lambda: None),
        "tracing, no-op": ([Tracing(NoOpTracerProvider())], lambda: None),
        "tracing, SDK": ([Tracing(sdk)], exporter.clear),
        "both": ([both, Tracing(sdk)], exporter.clear),
    }


def per_send(engine: Engine, id: str, n: int) -> float:
    """Microseconds per send, over ``n`` sends."""
    started = time.perf_counter()
    for _ in range(n):
        engine.send(id, "Add")
    return (time.perf_counter() - started) / n * 1e6


def unobserved_cost(engine: Engine, n: int = 200_000) -> float:
    """Nanoseconds one ``with engine._observe(...)`` costs with no listener."""
    observe = engine._observe
    started = time.perf_counter()
    for _ in range(n):
        with observe("send", "id", "", "Add"):
            pass
    return (time.perf_counter() - started) / n * 1e9


def sdk_span_cost(n: int = 5_000) -> float:
    """Microseconds the SDK takes to start and end one span (exported to memory): the floor of
    what ``tracing, SDK`` adds per span, whoever makes the span."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("bench")
    started = time.perf_counter()
    for _ in range(n):
        tracer.start_span("x", attributes={"gorch.instance_id": "id"}).end()
    return (time.perf_counter() - started) / n * 1e6


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="a few sends (a smoke test)")
    p.add_argument("--sends", type=int, default=300, help="sends per configuration and round")
    p.add_argument("--rounds", type=int, default=7)
    args = p.parse_args(argv)
    sends, rounds = (30, 3) if args.quick else (args.sends, args.rounds)
    with tempfile.TemporaryDirectory() as tmp:
        store = SQLStore(f"sqlite:///{Path(tmp) / 'obs.db'}", synchronous="NORMAL")
        engines = {}
        for name, (listeners, between) in configurations().items():
            eng = Engine(store, {"tally": Tally}, listeners=listeners)
            eng.start("tally", Tally(), id=name)
            per_send(eng, name, 5)  # warm up
            engines[name] = (eng, between)
        times: dict[str, list[float]] = {name: [] for name in engines}
        for _ in range(rounds):
            for name, (eng, between) in engines.items():
                times[name].append(per_send(eng, name, sends))
                between()
        quiet = unobserved_cost(engines["none"][0], 20_000 if args.quick else 200_000)
        store.close()
    span = sdk_span_cost(500 if args.quick else 5_000)
    base = statistics.median(times["none"])
    print(f"Engine.send (an event and a step) on SQLite, synchronous=NORMAL: {sends} sends x "
          f"{rounds} rounds, medians")  # fmt: skip
    print(f"  {'configuration':<16} {'us/send':>9} {'x none':>7} {'+us':>7}")
    for name, ts in times.items():
        m = statistics.median(ts)
        print(f"  {name:<16} {m:9.1f} {m / base:7.2f} {m - base:+7.1f}")
    print(f"an engine with no listener: one observation costs {quiet:.0f} ns "
          f"(each send makes one)")  # fmt: skip
    print(f"the SDK alone: {span:.1f} us to start and end one span (a send with a step makes 2)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
