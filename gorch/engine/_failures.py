"""How an operation records what went wrong: a failed attempt of user code (retried with
backoff, or given up past its policy), a checkpoint that could not be written, code that no
longer fits the state. A mixin of :class:`~gorch.engine._op.Operation`, whose commits it uses.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from gorch import clock, serde
from gorch.engine._records import HistoryKind, RunStatus
from gorch.engine._rows import Attempts
from gorch.errors import GorchError

if TYPE_CHECKING:
    from gorch.engine._core import EngineCore
    from gorch.store.base import InstanceRecord

log = logging.getLogger("gorch.engine")


class Failures:
    """The failure records of an operation."""

    __slots__ = ()

    engine: EngineCore
    row: InstanceRecord
    wf: Any
    effect: tuple[str, str] | None
    ran: tuple[str, str] | None
    history: list[Any]

    if TYPE_CHECKING:

        def note(self, kind: HistoryKind, name: str = "", thread: str = "", **kw: Any) -> None: ...
        def fail(self, error: str) -> None: ...
        def _commit(self, status: RunStatus, live: bool, lease: bool, notify: bool = False,
                    attempts: Attempts | None = None) -> None: ...  # fmt: skip

    def record_failure(self, thread: str, name: str, error: str) -> None:
        """Record a failed attempt at ``name``: retry it with backoff, or give up past its
        retry policy. The committed state and data are kept."""
        eng = self.engine
        policy = eng.policy(self.wf, name)
        attempts = self.row.attempts + 1
        self.note(HistoryKind.STEP_FAILED, name, thread, error=error,
                  output=serde.dumps({"attempt": attempts}))  # fmt: skip
        extra = {"gorch_instance": self.row.id, "gorch_step": name}
        if attempts >= policy.max_attempts:
            self.note(HistoryKind.FAILED, name, thread, error=error)
            log.error("%s: %r failed for good after %d attempts: %s", self.row.id, name,
                      attempts, error, extra=extra)  # fmt: skip
            gave_up = Attempts(attempts, None, error)
            self._commit(RunStatus.FAILED, live=False, lease=False, attempts=gave_up)
            eng._each("on_step_failed", self.row.id, self.row.workflow, thread, name, attempts,
                      None)  # fmt: skip
            return
        due = clock.now() + policy.delay(attempts, eng.rng)
        log.warning(
            "%s: %r failed (attempt %d of %d), retrying at %s: %s", self.row.id, name,
            attempts, policy.max_attempts, clock.format_time(due), error, extra=extra,
        )  # fmt: skip
        self._commit(RunStatus.RUNNING, live=False, lease=False, notify=True,
                     attempts=Attempts(attempts, due, error))  # fmt: skip
        eng._each("on_step_failed", self.row.id, self.row.workflow, thread, name, attempts, due)

    def step_failed(self, exc: GorchError) -> None:
        """A step (or WaitFor handler) raised: keep the state of the last checkpoint, count the
        attempt, and schedule a retry or give up."""
        thread, name = self.effect or (exc.thread, exc.statement)
        self.effect = None  # type: ignore[misc]  # a slot of Operation
        cause = exc.__cause__ or exc
        self.engine._each("after_step", self.row.id, self.row.workflow, thread, name, cause)
        self.record_failure(thread, name, f"{type(cause).__name__}: {cause}")

    def checkpoint_failed(self, cause: Exception) -> None:
        """The checkpoint after user code could not be written: that code's work is undone
        (the committed state is kept), and counted as a failed attempt of it."""
        thread, name = self.ran or ("", "")
        self.history = []  # type: ignore[misc]  # (a slot of Operation) undone with the code
        error = (
            f"the checkpoint after {name!r} could not be written ({type(cause).__name__}: "
            f"{cause}); what ran since the last checkpoint will run again"
        )
        self.record_failure(thread, name, error)

    def broken(self, exc: GorchError) -> None:
        """The code no longer fits the state: nothing can run until an operator repairs it."""
        error = f"{type(exc).__name__}: {exc}"
        self.note(HistoryKind.FAILED, exc.statement, exc.thread, error=error)
        log.error("%s: %s", self.row.id, error, extra={"gorch_instance": self.row.id})
        self.fail(error)
