"""What every engine call stands on: the settings, reading a row, waiting for a lease, and the
read-again loop an operation runs in.

:class:`EngineCore` is the base of each concern's class (reading, delivering, operating), which
:class:`~gorch.engine.Engine` joins into the one class users see; its underscore methods are
the engine package's own, for those classes, the operation and the worker's claims.
"""

from __future__ import annotations

import itertools
import logging
import os
import random
import socket
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from datetime import timedelta
from typing import Any

from gorch import clock
from gorch.engine._keeper import LeaseKeeper
from gorch.engine._op import ReadAgain
from gorch.engine._records import OPERATOR_STATUSES, Instance, Listener, RunStatus
from gorch.engine._rows import read, status_of
from gorch.errors import (
    BusyError,
    ConflictError,
    DefinitionError,
    InputError,
    InstanceStatusError,
    NotFoundError,
    UnreadableInstanceError,
    did_you_mean,
    suggest,
)
from gorch.interpreter import (
    DEFAULT_MAX_STEPS,
    Host,
    child_workflows,
    class_problems,
    find_statement,
    transactional_steps,
)
from gorch.retry import RetryPolicy
from gorch.state import State
from gorch.store.base import InstanceRecord, Store, TimerRecord

log = logging.getLogger("gorch.engine")


class Observed:
    """One engine call as the listeners see it: :meth:`Listener.before_operation` on entry,
    :meth:`Listener.after_operation` (with the error and the seconds) on exit. The call fills
    in ``instance`` and ``workflow`` once it knows them."""

    __slots__ = ("detail", "engine", "instance", "operation", "started", "workflow")

    def __init__(
        self, engine: EngineCore, operation: str, instance: str, workflow: str, detail: str
    ) -> None:
        self.engine, self.operation, self.detail = engine, operation, detail
        self.instance, self.workflow = instance, workflow
        self.started = 0.0

    def __enter__(self) -> Observed:
        self.started = time.perf_counter()
        self.engine._each(
            "before_operation", self.operation, self.instance, self.workflow, self.detail
        )
        return self

    def __exit__(self, kind: object, error: BaseException | None, tb: object) -> None:
        seconds = time.perf_counter() - self.started
        self.engine._each(
            "after_operation", self.operation, self.instance, self.workflow, self.detail,
            error, seconds,
        )  # fmt: skip


class Unobserved:
    """What :meth:`EngineCore._observe` gives when there is no listener: a ``with`` that does
    nothing (one shared object; what a call writes into it is never read)."""

    __slots__ = ("instance", "workflow")
    instance: str
    workflow: str

    def __enter__(self) -> Unobserved:
        return self

    def __exit__(self, kind: object, error: BaseException | None, tb: object) -> None:
        return None


_UNOBSERVED = Unobserved()


_DOING = {"goto": "goto in", "set_data": "set the data of", "delete_data": "delete the data of"}
"""How a refusal names an action whose name is not a verb of the sentence."""


def _transactions_refused(
    store: Store, workflows: Mapping[str, type], transactional: Mapping[type, frozenset[str]]
) -> list[str]:
    """A problem for each ``Step(transaction=True)`` if ``store`` cannot run one."""
    if getattr(store, "transactions", False) is True:
        return []
    return [
        f"workflow {name!r} ({cls.__name__}): Step {step!r} has transaction=True, whose writes "
        f"commit with its checkpoint in one database transaction: that needs an SQLStore on a "
        f"SQLite file or PostgreSQL, and {store!r} is not one. Use such a store, or drop "
        f"transaction=True and make the step safe to run twice "
        f"(gorch.context().idempotency_key)"
        for name, cls in workflows.items()
        for step in sorted(transactional[cls])
    ]


class EngineCore:
    """The settings and the shared machinery of :class:`~gorch.engine.Engine` (whose
    docstring describes the arguments)."""

    def __init__(
        self,
        store: Store,
        workflows: Mapping[str, type],
        *,
        retry: RetryPolicy | None = None,
        lease: timedelta | float = timedelta(seconds=60),
        busy_wait: float = 10.0,
        max_steps: int = DEFAULT_MAX_STEPS,
        listeners: Iterable[Listener] = (),
        owner: str | None = None,
        services: Mapping[str, Any] | None = None,
    ) -> None:
        problems = []
        for name, cls in workflows.items():
            if not isinstance(name, str) or not name:
                raise ValueError(f"workflow names must be non-empty strings, not {name!r}")
            if not isinstance(cls, type) or not callable(getattr(cls, "definition", None)):
                raise ValueError(f"workflow {name!r}: {cls!r} has no definition() method")
            problems += [f"workflow {name!r} ({cls.__name__}): {p}" for p in class_problems(cls)]
            problems += [
                f"workflow {name!r} ({cls.__name__}): Child {stmt!r} starts workflow {child!r}, "
                "which is not registered (register it with the engine too)."
                + did_you_mean(suggest(child, list(workflows)))
                for stmt, child in child_workflows(cls)
                if child not in workflows
            ]
        self.transactional = {
            cls: frozenset(transactional_steps(cls)) for cls in workflows.values()
        }
        problems += _transactions_refused(store, workflows, self.transactional)
        if problems:
            raise DefinitionError(problems)
        self.store = store
        self.workflows = dict(workflows)
        self.retry_policy = retry or RetryPolicy()
        self.lease = lease if isinstance(lease, timedelta) else timedelta(seconds=lease)
        self.busy_wait = busy_wait
        self.max_steps = max_steps
        self.listeners = list(listeners)
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._leases = itertools.count(1)
        self.rng = random.Random()
        self.services = Host(services).services  # checked: a mapping, kept read-only
        self.keeper = LeaseKeeper(self)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.store!r}, {sorted(self.workflows)})"

    def policy(self, wf: Any, step: str) -> RetryPolicy:
        """The retry policy of ``step`` in workflow ``wf`` (the step's own, or the default)."""
        node = find_statement(wf, step) if step else None
        own = getattr(node, "retry", None)
        return own if isinstance(own, RetryPolicy) else self.retry_policy

    # -- the engine package's own ------------------------------------------------------------

    def _class(self, workflow: str) -> type:
        """The class registered as ``workflow``; NotFoundError with the closest names."""
        try:
            return self.workflows[workflow]
        except KeyError:
            hint = did_you_mean(suggest(workflow, self.workflows))
            known = ", ".join(map(repr, sorted(self.workflows))) or "none"
            raise NotFoundError(
                f"workflow {workflow!r}, which is not registered with this engine "
                f"(registered: {known}).{hint}",
            ) from None

    def _lease_name(self) -> str:
        """A lease owner's name for one operation or one claim."""
        return f"{self.owner}#{next(self._leases)}"

    def _each(self, hook: str, *args: Any) -> None:
        """Call ``hook`` of every listener; one that raises is logged and ignored."""
        for listener in self.listeners:
            try:
                getattr(listener, hook)(*args)
            except Exception:
                log.exception("listener %r failed in %s", listener, hook)

    def _observe(
        self, operation: str, instance: str, workflow: str = "", detail: str = ""
    ) -> Observed | Unobserved:
        """A ``with`` around one engine call that tells the listeners (see :class:`Observed`);
        nearly free when there are none."""
        if not self.listeners:
            return _UNOBSERVED
        return Observed(self, operation, instance, workflow, detail)

    def _status(self, id: str, workflow: str, old: RunStatus | None, new: RunStatus) -> None:
        """An instance's status changed: log it and tell the listeners."""
        log.info("%s: %s -> %s", id, old, new.value, extra={"gorch_instance": id})
        self._each("on_status", id, workflow, old, new)

    def _row(self, id: str) -> InstanceRecord:
        """The stored row of instance ``id``; NotFoundError (InputError for a bad id)."""
        if not isinstance(id, str) or not id:
            raise InputError(f"an instance id must be a non-empty string, not {id!r}")
        row = self.store.get(id) if "\x00" not in id else None  # start refuses NUL in ids
        if row is None:
            raise NotFoundError(f"no instance has id {id!r}", workflow_id=id)
        return row

    def _instance(
        self, row: InstanceRecord, timers: bool | list[TimerRecord] = False, tolerant: bool = False
    ) -> Instance:
        """The row as an :class:`Instance`. ``timers``: True to read them, or the timers.
        ``tolerant``: a row that does not load is shown with what is known and ``load_error``
        (else it raises UnreadableInstanceError)."""
        try:
            state, data = read(row, self.workflows)
            error = None
        except UnreadableInstanceError as exc:
            if not tolerant:
                raise
            state, data, error = State(row.id, row.workflow, threads=[]), None, str(exc)
        if timers is True:
            timers = self.store.timers(row.id)
        return Instance(
            id=row.id,
            workflow=row.workflow,
            status=status_of(row) or RunStatus.FAILED,
            data=data,
            state=state,
            created_at=row.created_at,
            updated_at=row.updated_at,
            version=row.version,
            attempts=row.attempts,
            next_attempt_at=row.next_attempt_at,
            last_error=row.last_error,
            timers=timers or [],
            load_error=error,
            at_statements=row.at_statements,
            parent=row.parent_id,
        )

    def _operate(
        self, id: str, body: Callable[[InstanceRecord], Any], operation: str, detail: str = ""
    ) -> Any:
        """Run ``body`` on a freshly read, unleased row; read again while the instance changes
        under it before it did anything (``body`` raised :class:`ReadAgain`). ``operation``
        and ``detail``: the call, for the listeners (:meth:`_observe`)."""
        with self._observe(operation, id, "", detail) as seen:
            waited = [0.0]
            for _ in range(1000):
                row = self._free_row(id, waited, seen)
                try:
                    return body(row)
                except ReadAgain:
                    continue
        raise ConflictError(  # pragma: no cover - needs 1000 lost races in a row
            f"instance {id!r} kept changing under this call; nothing changed, try again",
            workflow_id=id,
        )

    def _free_row(
        self, id: str, waited: list[float], seen: Observed | Unobserved
    ) -> InstanceRecord:
        """Read the instance, waiting (up to ``busy_wait`` in all) while someone else holds a
        live lease on it; tell ``seen`` its workflow."""
        pause = 0.002
        while True:
            row = self._row(id)
            seen.workflow = row.workflow
            owner, until = row.lease_owner, row.lease_expires
            if owner is None or until is None or until < clock.now():
                return row
            if waited[0] >= self.busy_wait:
                raise BusyError(
                    f"instance {id!r} is busy: {owner} is running it (lease until "
                    f"{clock.format_time(until)}) and did not finish within "
                    f"{self.busy_wait:g} s. Nothing changed; send again later.",
                    workflow_id=id,
                    owner=owner,
                )
            # time.monotonic may be frozen by freezegun in tests: count what we slept instead
            step = min(pause, self.busy_wait - waited[0])
            time.sleep(step)
            waited[0] += step
            pause = min(pause * 2, 0.05)

    def _require(self, row: InstanceRecord, action: str) -> RunStatus:
        """The row's status, if the operator ``action`` is allowed in it (see
        :data:`OPERATOR_STATUSES`); an unknown status text counts as failed."""
        status = status_of(row) or RunStatus.FAILED
        allowed = OPERATOR_STATUSES[action]
        if status in allowed:
            return status
        if len(allowed) == 1:
            why = f"it is {status.value}, not {allowed[0].value}"
        else:
            why = f"it is {status.value}"
        doing = _DOING.get(action, action)
        raise InstanceStatusError(
            f"cannot {doing} instance {row.id!r}: {why}", workflow_id=row.id, status=status.value
        )
