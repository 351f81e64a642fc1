"""The engine's operator calls: goto (repair), pause, unpause, cancel, retry, and
:meth:`~Operating.refusal`, which says whether one would be refused.

Each is allowed in the statuses :data:`~gorch.engine.OPERATOR_STATUSES` names, and each writes
a history entry saying what the operator did, who did it and why: every call takes ``actor=``
and ``reason=`` (checked before anything is read; see ``_audit.py``), kept as the entry's
``actor`` and ``reason``. One that runs user code (goto's and cancel's
teardowns, the run after unpause, retry and goto) holds the instance's lease while it does.
"""

from __future__ import annotations

import logging

from gorch import serde
from gorch.engine._audit import audit
from gorch.engine._core import EngineCore
from gorch.engine._op import Operation
from gorch.engine._records import OPERATOR_STATUSES, HistoryKind, Instance, RunStatus
from gorch.errors import GorchError, UnreadableInstanceError
from gorch.interpreter import GotoPlan, goto
from gorch.interpreter import cancel as interpreter_cancel
from gorch.limits import MAX_PAGE
from gorch.state import MAIN_THREAD
from gorch.store.base import InstanceRecord

log = logging.getLogger("gorch.engine")


class Operating(EngineCore):
    """:class:`~gorch.engine.Engine`'s operator calls."""

    def refusal(self, action: str, id: str) -> GorchError | None:
        """Why the operator ``action`` (``"pause"``, ``"unpause"``, ``"cancel"``, ``"retry"``,
        ``"goto"``, ``"set_data"``, ``"delete_data"``: a key of :data:`OPERATOR_STATUSES`)
        would be refused for instance ``id`` now — it does not exist, or its status does not
        allow it — or None.
        Changes nothing; for checking many ids before acting on any (the CLI's bulk
        commands)."""
        try:
            self._require(self._row(id), action)
        except GorchError as exc:
            return exc
        return None

    def goto(
        self,
        id: str,
        name: str,
        thread: str = MAIN_THREAD,
        *,
        dry_run: bool = False,
        actor: str | None = None,
        reason: str | None = None,
    ) -> GotoPlan:
        """Move ``thread`` of instance ``id`` to the statement ``name`` and run on from there.

        With ``dry_run`` nothing changes and the plan says what would. A failed instance is
        repaired this way (its retry count is reset); a paused one stays paused. ``actor``
        and ``reason``: who moves it and why, kept in the ``goto`` history entry (as for
        every operator call).
        """
        by = audit(actor, reason)

        def body(row: InstanceRecord) -> GotoPlan:
            status = self._require(row, "goto")
            probe = Operation(self, row, leased=False)
            plan = goto(probe.wf, probe.state, name, thread, dry_run=True)
            if dry_run:
                return plan
            op = Operation(self, row, leased=False)
            op.hold()  # while teardowns run
            try:
                plan = goto(op.wf, op.state, name, thread, host=op.host)
            except GorchError:  # refused before anything ran (e.g. a bad delay from data)
                op.release()
                raise
            op.note(HistoryKind.GOTO, name, thread, input=serde.dumps({"plan": plan.describe()}),
                    **by)  # fmt: skip
            if status is RunStatus.PAUSED:
                op.mark(RunStatus.PAUSED)
            else:
                op.restart()
                op.run_accepted(f"goto {name!r} in {id!r}")
            return plan

        plan: GotoPlan = self._operate(id, body, "goto", name)
        return plan

    def pause(self, id: str, *, actor: str | None = None, reason: str | None = None) -> Instance:
        """Stop the instance: no event is accepted and no timer fires until :meth:`unpause`
        (a paused one stays as it is, with no new entry)."""
        by = audit(actor, reason)

        def body(row: InstanceRecord) -> Instance:
            if self._require(row, "pause") is RunStatus.PAUSED:
                return self._instance(row, timers=True, tolerant=True)
            op = Operation(self, row, leased=False, load=False)
            op.note(HistoryKind.PAUSED, **by)
            op.mark(RunStatus.PAUSED)
            return self._instance(op.row, timers=True, tolerant=True)

        return self._operate(id, body, "pause")  # type: ignore[no-any-return]

    def unpause(self, id: str, *, actor: str | None = None, reason: str | None = None) -> Instance:
        """Let a paused instance go on: it runs until it blocks (due timers fire next)."""
        by = audit(actor, reason)

        def body(row: InstanceRecord) -> Instance:
            self._require(row, "unpause")
            op = Operation(self, row, leased=False)
            op.note(HistoryKind.UNPAUSED, **by)
            op.hold()
            op.run_accepted(f"unpause of {id!r}")
            return self._instance(op.row, timers=True)

        return self._operate(id, body, "unpause")  # type: ignore[no-any-return]

    def cancel(self, id: str, *, actor: str | None = None, reason: str | None = None) -> Instance:
        """End the instance for good: its waits are torn down (Handler teardowns run, as for
        goto), its timers are deleted and nothing more runs. The threads keep their
        positions, for inspection. A teardown that fails is recorded in the history; an
        instance whose row does not load is cancelled without teardowns.

        Its children (``Child``) that have not ended are cancelled after it, each in its own
        commit, with the reason ``its parent ... was cancelled``; if the process stops in
        between, cancel the ones left by hand (``list(parent=id)``; ``get(id).children``)."""
        by = audit(actor, reason)

        def body(row: InstanceRecord) -> Instance:
            self._require(row, "cancel")
            try:
                op = Operation(self, row, leased=False)
            except UnreadableInstanceError as exc:
                op = Operation(self, row, leased=False, load=False)
                op.note(HistoryKind.CANCELLED, error=f"no teardowns ran: {exc}", **by)
                op.mark_cancelled(torn_down=False)
                return self._instance(op.row, [], tolerant=True)
            if any(t.wait_events for t in op.state.threads):
                op.hold()  # teardowns are user code
            try:
                failed = interpreter_cancel(op.wf, op.state, host=op.host)
            except GorchError as exc:  # the code cannot tear this state down: keep it as it is
                op.note(HistoryKind.CANCELLED, error=f"no teardowns ran: {exc}", **by)
                op.mark_cancelled(torn_down=False)
                return self._instance(op.row, [])
            errors = [f"teardown of {e.req.name!r} failed: {e.error}" for e in failed]
            op.note(HistoryKind.CANCELLED, error="; ".join(errors) or None, **by)
            op.mark_cancelled(torn_down=True)
            return self._instance(op.row, [])

        inst: Instance = self._operate(id, body, "cancel")
        self._cancel_children(id, actor)
        return inst

    def _cancel_children(self, id: str, actor: str | None) -> None:
        """Cancel the children of a cancelled instance that have not ended (and theirs), each
        in a commit of its own; one that cannot be cancelled is logged and left."""
        open_ = [s.value for s in OPERATOR_STATUSES["cancel"]]
        for kid in self.store.list_instances(parent=id, status=open_, limit=MAX_PAGE):
            try:
                self.cancel(kid.id, actor=actor, reason=f"its parent {id!r} was cancelled")
            except GorchError as exc:
                log.warning("%s: could not cancel child %s: %s", id, kid.id, exc,
                            extra={"gorch_instance": kid.id})  # fmt: skip

    def retry(self, id: str, *, actor: str | None = None, reason: str | None = None) -> Instance:
        """Run a failed instance's step again now (its retry count starts over)."""
        by = audit(actor, reason)

        def body(row: InstanceRecord) -> Instance:
            self._require(row, "retry")
            op = Operation(self, row, leased=False)
            op.note(HistoryKind.RETRY, error=row.last_error, **by)
            op.restart()
            op.run_accepted(f"retry of {id!r}")
            return self._instance(op.row, timers=True)

        return self._operate(id, body, "retry")  # type: ignore[no-any-return]
