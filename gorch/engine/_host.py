"""What an engine lends the user code of one operation through :func:`gorch.context`: the
engine's services and the attempt number from the instance's retry count."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gorch.engine._keeper import heartbeat
from gorch.interpreter import Host, StepContext

if TYPE_CHECKING:
    from gorch.engine._op import Operation


class OperationHost(Host):
    """The host of one :class:`~gorch.engine._op.Operation`."""

    __slots__ = ("op",)

    def __init__(self, op: Operation) -> None:
        self.op = op
        self.services = op.engine.services
        self.attempt_number = 1
        self.last_heartbeat = None

    def attempt(self, role: str) -> int:
        # An event's handler runs inside the call that delivers it: a refused event is not
        # retried by the engine, so each delivery is a first attempt. Everything else runs in
        # a run, at the statement whose failed attempts the row counts.
        return 1 if role == "handler" else self.op.row.attempts + 1

    def heartbeat(self, details: Any) -> None:
        heartbeat(self.op, details)

    def session(self, ctx: StepContext) -> Any:
        """The session of a ``Step(transaction=True)``: its transaction begins on first use,
        and the step's checkpoint commits in it (:meth:`Operation.reached`)."""
        op = self.op
        if ctx.role != "step" or ctx.statement not in op.engine.transactional[type(op.wf)]:
            return super().session(ctx)  # refuses, saying what to do
        if op.tx is None:
            op.tx = op.engine.store.step_transaction()  # type: ignore[attr-defined]
        return op.tx.session
