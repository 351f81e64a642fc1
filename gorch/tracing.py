"""OpenTelemetry traces of an engine and its workers (the ``tracing`` extra: ``opentelemetry-api``).

:class:`Tracing` is a :class:`~gorch.engine.Listener` that opens a span for every engine call
(``gorch.start``, ``gorch.send``, ``gorch.goto``, ``gorch.pause``, ``gorch.unpause``,
``gorch.cancel``, ``gorch.retry``), every item a worker works on (``gorch.run``,
``gorch.timer``) and every claim that took work (``gorch.claim``), and, inside them, one span
per step (``gorch.step``). Attributes: ``gorch.instance_id``, ``gorch.workflow``,
``gorch.operation``, ``gorch.statement`` (the step, or goto's target), ``gorch.event``,
``gorch.thread``, ``gorch.timer``. An error is recorded on its span (the exception and an
``ERROR`` status): the refusal of a call, the exception of a step, each failed attempt as a
span event.

A call's span is a child of the span that is current when the call is made: an HTTP request's
span, when the route calls the engine in the request's context (FastAPI runs a sync route in a
thread pool with the request's context copied), or your own::

    from gorch.tracing import Tracing

    engine = Engine(store, workflows, listeners=[Tracing()])  # the global tracer provider
    with tracer.start_as_current_span("checkout"):
        engine.send("order-1", "Pay", {...})    # gorch.send is a child of checkout

Without a tracer provider set, OpenTelemetry's API gives no-op spans; without a ``Tracing``
listener, the engine calls no tracing code at all.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime
from typing import Any

from opentelemetry import context, trace
from opentelemetry.trace import Span, Status, StatusCode, Tracer, TracerProvider

from gorch.engine import Listener

__all__ = ["DETAIL_ATTRIBUTES", "Tracing"]

DETAIL_ATTRIBUTES = {"send": "gorch.event", "goto": "gorch.statement", "timer": "gorch.timer"}
"""The attribute each operation's ``detail`` is recorded as (see
:meth:`Listener.before_operation <gorch.engine.Listener.before_operation>`)."""


class Tracing(Listener):
    """Spans for the engine's calls and steps (see the module docstring).

    Args:
        tracer_provider: where spans go (default: OpenTelemetry's global provider).
        tracer: a tracer to use instead (overrides ``tracer_provider``).
    """

    def __init__(
        self, tracer_provider: TracerProvider | None = None, *, tracer: Tracer | None = None
    ) -> None:
        self.tracer = tracer or trace.get_tracer("gorch", tracer_provider=tracer_provider)
        self._local = threading.local()

    def _stack(self) -> list[tuple[str, Span, object]]:
        """This thread's open spans: (what, span, context token), innermost last."""
        stack: list[tuple[str, Span, object]] | None = getattr(self._local, "stack", None)
        if stack is None:
            stack = self._local.stack = []
        return stack

    def _open(self, what: str, name: str, attributes: dict[str, Any]) -> None:
        span = self.tracer.start_span(name, attributes=attributes)
        self._stack().append((what, span, context.attach(trace.set_span_in_context(span))))

    def _close(self, what: str, error: BaseException | None) -> Span | None:
        """End the innermost span if it is a ``what`` (and any step left open inside an
        operation); returns it (ended), or None if there was none."""
        stack = self._stack()
        while stack and stack[-1][0] != what and what == "operation":
            self._end(*stack.pop(), None)  # a setup's or teardown's span: no after_step
        if not stack or stack[-1][0] != what:
            return None
        _what, span, token = stack.pop()
        self._end(_what, span, token, error)
        return span

    @staticmethod
    def _end(what: str, span: Span, token: object, error: BaseException | None) -> None:
        if error is not None:
            span.record_exception(error)
            span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"))
        span.end()
        context.detach(token)  # type: ignore[arg-type]

    # -- the listener ------------------------------------------------------------------------

    def before_operation(self, operation: str, instance: str, workflow: str, detail: str) -> None:
        attributes = {"gorch.operation": operation}
        if instance:
            attributes["gorch.instance_id"] = instance
        if workflow:
            attributes["gorch.workflow"] = workflow
        if detail and operation in DETAIL_ATTRIBUTES:
            attributes[DETAIL_ATTRIBUTES[operation]] = detail
        self._open("operation", f"gorch.{operation}", attributes)

    def after_operation(
        self,
        operation: str,
        instance: str,
        workflow: str,
        detail: str,
        error: BaseException | None,
        seconds: float,
    ) -> None:
        stack = self._stack()
        if stack and stack[-1][0] == "operation":  # known only now: the id chosen, the row read
            span = stack[-1][1]
            if instance:
                span.set_attribute("gorch.instance_id", instance)
            if workflow:
                span.set_attribute("gorch.workflow", workflow)
        self._close("operation", error)

    def before_step(self, instance: str, workflow: str, thread: str, step: str) -> None:
        self._close("step", None)  # a setup or teardown before it (they have no after_step)
        self._open("step", "gorch.step", {
            "gorch.instance_id": instance, "gorch.workflow": workflow, "gorch.thread": thread,
            "gorch.statement": step,
        })  # fmt: skip

    def after_step(
        self, instance: str, workflow: str, thread: str, step: str, error: BaseException | None
    ) -> None:
        self._close("step", error)

    def on_step_failed(
        self,
        instance: str,
        workflow: str,
        thread: str,
        step: str,
        attempt: int,
        retry_at: datetime | None,
    ) -> None:
        attributes: dict[str, Any] = {"gorch.statement": step, "gorch.attempt": attempt}
        if retry_at is not None:
            attributes["gorch.retry_at"] = retry_at.isoformat()
        name = "gorch.attempt_failed" if retry_at is not None else "gorch.gave_up"
        trace.get_current_span().add_event(name, attributes)

    def on_timer(self, instance: str, workflow: str, timer: str, lag: float) -> None:
        trace.get_current_span().set_attribute("gorch.timer_lag_seconds", lag)

    def on_claim(self, kind: str, claimed: int, seconds: float) -> None:
        if not claimed:
            return  # an idle worker's polls would flood the traces
        end = time.time_ns()
        span = self.tracer.start_span(
            "gorch.claim", start_time=end - int(seconds * 1e9),
            attributes={"gorch.kind": kind, "gorch.claimed": claimed},
        )  # fmt: skip
        span.end(end_time=end)
