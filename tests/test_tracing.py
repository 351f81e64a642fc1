"""gorch.tracing: the spans of engine calls, worker items and steps, exported with the SDK's
in-memory exporter: names, attributes, parents, errors; and an HTTP request's span as the
parent of the engine call its route makes."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import attrs
import httpx
import pytest
from fastapi import FastAPI
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode
from test_metrics import Shop

from gorch import BusyError, CallbackNotFound, Engine, NotFoundError, RunStatus, Worker, clock
from gorch.store import SQLStore, Write
from gorch.testing.http import LiveServer
from gorch.tracing import Tracing


@pytest.fixture
def traced(tmp_path: Path) -> Iterator[tuple[Engine, InMemorySpanExporter, TracerProvider]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    store = SQLStore(f"sqlite:///{tmp_path / 't.db'}", synchronous="NORMAL")
    yield Engine(store, {"shop": Shop}, listeners=[Tracing(provider)]), exporter, provider
    Shop.FAILS.clear()
    store.close()


def named(spans: tuple[ReadableSpan, ...], name: str) -> list[ReadableSpan]:
    return [s for s in spans if s.name == name]


def test_a_start_and_a_send_with_their_steps_as_children(traced) -> None:
    eng, exporter, _ = traced
    Shop.FAILS["a"] = 0
    eng.start("shop", Shop(id="a"), id="a")
    eng.send("a", "Pay", key="k1")
    spans = exporter.get_finished_spans()
    [start] = named(spans, "gorch.start")
    [send] = named(spans, "gorch.send")
    steps = named(spans, "gorch.step")
    assert start.attributes == {
        "gorch.operation": "start", "gorch.instance_id": "a", "gorch.workflow": "shop",
    }  # fmt: skip
    assert send.attributes == {
        "gorch.operation": "send", "gorch.instance_id": "a", "gorch.workflow": "shop",
        "gorch.event": "Pay",
    }  # fmt: skip
    by_name = {s.attributes["gorch.statement"]: s for s in steps}
    assert sorted(by_name) == ["charge", "prepare"]
    assert by_name["prepare"].parent.span_id == start.context.span_id
    assert by_name["charge"].parent.span_id == send.context.span_id
    assert by_name["charge"].attributes == {
        "gorch.instance_id": "a", "gorch.workflow": "shop", "gorch.thread": "_main_",
        "gorch.statement": "charge",
    }  # fmt: skip
    assert start.parent is None and send.parent is None
    assert all(s.status.status_code is StatusCode.UNSET for s in spans)
    assert by_name["prepare"].end_time - by_name["prepare"].start_time >= 2_000_000  # 2 ms


def test_a_failing_step_and_a_refused_call_are_error_spans(traced) -> None:
    eng, exporter, _ = traced
    eng.start("shop", Shop(id="b"), id="b")
    eng.send("b", "Pay")  # charge fails: attempt 1, retried later
    with pytest.raises(CallbackNotFound):
        eng.send("b", "Pay")
    with pytest.raises(NotFoundError):
        eng.pause("nobody")
    spans = exporter.get_finished_spans()
    [charge] = [
        s for s in named(spans, "gorch.step") if s.attributes["gorch.statement"] == "charge"
    ]
    assert charge.status.status_code is StatusCode.ERROR
    assert charge.status.description == "RuntimeError: card declined"
    [raised] = [e for e in charge.events if e.name == "exception"]
    assert raised.attributes["exception.type"] == "RuntimeError"
    ok, refused = named(spans, "gorch.send")
    assert ok.status.status_code is StatusCode.UNSET
    [failed] = [e for e in ok.events if e.name == "gorch.attempt_failed"]
    assert failed.attributes["gorch.statement"] == "charge"
    assert failed.attributes["gorch.attempt"] == 1
    assert refused.status.status_code is StatusCode.ERROR
    assert refused.events[0].attributes["exception.type"] == "gorch.errors.CallbackNotFound"
    [pause] = named(spans, "gorch.pause")
    assert pause.status.status_code is StatusCode.ERROR
    assert pause.attributes == {"gorch.operation": "pause", "gorch.instance_id": "nobody"}


def test_operator_calls_and_a_workers_items_have_spans(traced) -> None:
    eng, exporter, _ = traced
    eng.start("shop", Shop(id="c"), id="c")
    eng.pause("c")
    eng.unpause("c")
    eng.goto("c", "remind")  # runs remind, then charge fails for good after 3 attempts
    w = Worker(eng)
    while eng.get("c").status is RunStatus.RUNNING:
        w.run_once()
    eng.retry("c")
    eng.cancel("c")
    spans = exporter.get_finished_spans()
    names = [s.name for s in spans if s.parent is None]
    for name in ("gorch.pause", "gorch.unpause", "gorch.goto", "gorch.run", "gorch.claim",
                 "gorch.retry", "gorch.cancel"):  # fmt: skip
        assert name in names, names
    [goto] = named(spans, "gorch.goto")
    assert goto.attributes["gorch.statement"] == "remind"
    runs = named(spans, "gorch.run")
    assert {s.attributes["gorch.instance_id"] for s in runs} == {"c"}
    claims = named(spans, "gorch.claim")
    assert {s.attributes["gorch.kind"] for s in claims} == {"run"}  # empty claims: no span
    assert all(s.attributes["gorch.claimed"] == 1 for s in claims)
    [gave_up] = [e for s in runs for e in s.events if e.name == "gorch.gave_up"]
    assert gave_up.attributes["gorch.attempt"] == 3
    for run in runs:
        [step] = [s for s in spans if s.parent and s.parent.span_id == run.context.span_id]
        assert step.attributes["gorch.statement"] == "charge"


def test_a_timer_span(traced) -> None:
    eng, exporter, _ = traced
    eng.start("shop", Shop(id="t"), id="t")
    time.sleep(0.06)  # the reminder is due
    Worker(eng).run_once()
    [timer] = named(exporter.get_finished_spans(), "gorch.timer")
    assert timer.attributes["gorch.timer"] == "reminder"
    assert timer.attributes["gorch.instance_id"] == "t"
    assert timer.attributes["gorch.timer_lag_seconds"] >= 0


def test_an_engine_call_is_a_child_of_the_span_current_when_it_is_made(traced) -> None:
    eng, exporter, provider = traced
    eng.start("shop", Shop(id="p"), id="p")
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("checkout") as parent:
        eng.send("p", "Pay")
    [send] = named(exporter.get_finished_spans(), "gorch.send")
    assert send.parent.span_id == parent.get_span_context().span_id
    assert send.context.trace_id == parent.get_span_context().trace_id


def test_an_http_requests_span_is_the_parent_of_the_engine_call(traced) -> None:
    """A sync route runs in a thread pool with the request's context copied: the span of
    the request (here made by a middleware, as an OpenTelemetry ASGI instrumentation does)
    is current in the route, so the engine's span is its child."""
    eng, exporter, provider = traced
    eng.start("shop", Shop(id="h"), id="h")
    tracer = provider.get_tracer("http")
    app = FastAPI()

    @app.middleware("http")
    async def trace_requests(request, call_next):  # type: ignore[no-untyped-def]
        with tracer.start_as_current_span(f"{request.method} {request.url.path}"):
            return await call_next(request)

    @app.post("/pay/{id}")
    def pay(id: str) -> object:
        return eng.send(id, "Pay")

    with LiveServer(app) as url:
        assert httpx.post(f"{url}/pay/h", timeout=10).json() == "paid"
    spans = exporter.get_finished_spans()
    [request] = named(spans, "POST /pay/h")
    [send] = named(spans, "gorch.send")
    assert send.parent.span_id == request.context.span_id


def test_a_busy_instance_is_an_error_span(traced) -> None:
    eng, exporter, _ = traced
    eng.start("shop", Shop(id="z"), id="z")
    other = Engine(eng.store, {"shop": Shop}, listeners=eng.listeners, busy_wait=0.01)
    row = eng.store.get("z")
    leased = attrs.evolve(row, lease_owner="someone", lease_expires=clock.now() + timedelta(60))
    eng.store.commit(Write(leased, row.version))
    with pytest.raises(BusyError):
        other.send("z", "Pay")
    [send] = named(exporter.get_finished_spans(), "gorch.send")
    assert send.status.status_code is StatusCode.ERROR
    assert send.attributes["gorch.workflow"] == "shop"
