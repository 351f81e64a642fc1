"""The engine's delivering calls: start an instance, send it an event (as data or as JSON
text), and run it on until it blocks.

An accepted event is committed (state, data, history, idempotency key) before any step after
it runs; an event that needs no side effect before the next wait costs one read and one
commit. Everything refused is refused before anything is written.
"""

from __future__ import annotations

import uuid
from typing import Any

import orjson

from gorch import clock, serde
from gorch.engine._audit import NOBODY, By, audit
from gorch.engine._core import EngineCore, Observed, Unobserved
from gorch.engine._keys import fingerprint, repeated_answer
from gorch.engine._links import delivered_by_engine
from gorch.engine._op import Operation
from gorch.engine._records import OPEN_STATUSES, HistoryKind, Instance, RunStatus
from gorch.engine._rows import read, status_of
from gorch.errors import (
    HandlerError,
    InputError,
    InstanceStatusError,
    NotFoundError,
    SerializationError,
    WorkflowFinishedError,
)
from gorch.interpreter import data_version_of, handle_callback
from gorch.limits import MAX_TEXT, is_text
from gorch.state import CallbackRequest, State, new_state
from gorch.store.base import InstanceRecord, KeyRecord


class Delivering(EngineCore):
    """:class:`~gorch.engine.Engine`'s delivering calls."""

    def start(
        self, workflow: str, data: Any, id: str | None = None, *, defer: bool = False
    ) -> Instance:
        """Create an instance of ``workflow`` from ``data`` and run it until it blocks.

        Args:
            workflow: a registered workflow's name.
            data: the workflow object to start from (an instance of the registered class).
            id: the instance's id (default: a random one).
            defer: only commit the new instance as ``RUNNING``; a worker runs it.

        Raises:
            NotFoundError: ``workflow`` is not registered.
            AlreadyExistsError: an instance with ``id`` exists already (nothing changed).
            InputError: ``data`` is not an instance of the registered class, or a bad id.
        """
        with self._observe("start", id if isinstance(id, str) else "", str(workflow)) as seen:
            return self._start(workflow, data, id, defer, seen)

    def _start(
        self, workflow: str, data: Any, id: str | None, defer: bool, seen: Observed | Unobserved
    ) -> Instance:
        """:meth:`start`, telling ``seen`` the id it chose."""
        cls = self._class(workflow)
        if not isinstance(data, cls):
            raise InputError(
                f"start({workflow!r}): data must be a {cls.__name__}, not {type(data).__name__}"
            )
        if id is None:
            id = seen.instance = uuid.uuid4().hex
        elif not is_text(id) or "/" in id:
            raise InputError(
                f"an instance id must be text of 1 to {MAX_TEXT} characters, without NUL or "
                f'"/" (it is part of the instance\'s URL): {id!r}'
            )
        try:
            text = serde.dumps(data)
        except SerializationError as exc:
            raise InputError(
                f"start({workflow!r}): the data cannot be stored: {exc}", details=exc.details
            ) from exc
        now = clock.now()
        state = new_state(id, workflow)
        state.data_version = data_version_of(cls)
        row = InstanceRecord(
            id, workflow, RunStatus.RUNNING.value, serde.dumps(state), text, now, now
        )
        op = Operation(self, row, leased=False, new=True, live=(state, data))
        op.note(HistoryKind.STARTED, workflow, input=row.data)
        if defer:
            op.queue()
        else:
            op.run_accepted(f"start of {id!r}")
        return self._instance(op.row, list(op.timers or ()))

    def send(
        self,
        id: str,
        event: str,
        payload: Any = None,
        *,
        key: str | None = None,
        thread: str = "",
        workflow: str | None = None,
        actor: str | None = None,
        reason: str | None = None,
    ) -> Any:
        """Deliver ``event`` with ``payload`` to instance ``id`` and run it until it blocks.

        The accepted event is committed (state, data, history) before any step after it runs;
        a step that then fails does not undo the event (it is retried by a worker).

        Args:
            id: the instance.
            event: the event's name (as in ``On(event, ...)``).
            payload: parsed JSON (or an instance of the handler's payload type).
            key: an idempotency key: a repeat with the same key returns the first answer and
                applies nothing again.
            thread: the thread to deliver to; by default the one thread waiting for ``event``.
            workflow: if given, refuse (``NotFoundError``) an instance of another workflow.
            actor, reason: who sends it and why, kept in its history entry (an operator who
                fires a timeout by hand; the HTTP API's token name, the CLI's user).

        Returns:
            The handler's output as JSON-compatible data (the same on a repeat with ``key``).

        Raises:
            NotFoundError, CallbackNotFound, InputError, WorkflowFinishedError,
            InstanceStatusError (paused, cancelled, failed), BusyError, IdempotencyKeyError;
            none of them changes anything.
        """
        _check_event(id, event, payload)
        by = NOBODY if actor is None and reason is None else audit(actor, reason)
        request = fingerprint(key, event, thread, payload)
        return self._operate(
            id,
            lambda row: self._deliver(row, event, payload, key, request, thread, workflow, by),
            "send",
            event,
        )

    def send_json(
        self,
        id: str,
        event: str,
        body: str | bytes,
        *,
        key: str | None = None,
        thread: str = "",
        workflow: str | None = None,
        actor: str | None = None,
        reason: str | None = None,
    ) -> Any:
        """:meth:`send` with the payload as JSON text (a request body, a message)."""
        try:
            payload = orjson.loads(body) if body not in ("", b"") else None
        except orjson.JSONDecodeError as exc:
            raise InputError(
                f"the payload of {event!r} for instance {id!r} is not valid JSON: {exc}",
                workflow_id=id,
                event=event,
                details=[str(exc)],
            ) from None
        return self.send(
            id, event, payload, key=key, thread=thread, workflow=workflow, actor=actor,
            reason=reason,
        )  # fmt: skip

    def _deliver(
        self,
        row: InstanceRecord,
        event: str,
        payload: Any,
        key: str | None,
        request: str,
        thread: str,
        workflow: str | None,
        by: By,
    ) -> Any:
        """:meth:`send` on a freshly read row; ``request`` is the request's fingerprint, ``by``
        who sent it and why."""
        id = row.id
        if workflow is not None and row.workflow != workflow:
            raise NotFoundError(
                f"instance {id!r} is a {row.workflow!r} workflow, not a {workflow!r} one",
                workflow_id=id,
            )
        if key is not None:
            done = self.store.get_key(id, key)
            if done is not None:
                return repeated_answer(done, id, key, request)
        self._check_open(row, f"send {event!r} to")
        op = Operation(self, row, leased=False)
        if delivered_by_engine(op.state, event):
            raise InputError(
                f"instance {id!r} waits for {event!r} from the engine (a child's end, or another "
                "instance getting somewhere); it cannot be sent",
                workflow_id=id,
                event=event,
            )
        out = handle_callback(
            CallbackRequest(workflow_id=id, thread_id=thread, name=event), op.wf, op.state,
            payload, host=op.host,
        )  # fmt: skip
        try:
            out_json = serde.dumps(out)
            op.dirty = True
            op.note(HistoryKind.EVENT, event, _thread_of(op.state, event, thread),
                    input=None if payload is None else serde.dumps(payload),
                    output=out_json, **by)  # fmt: skip
            if key is not None:
                op.key = KeyRecord(id, key, request, out_json, clock.now())
            op.run_accepted(f"event {event!r} for {id!r}")
        except SerializationError as exc:  # raised only while nothing was committed
            raise HandlerError(
                f"workflow {id!r}: the event {event!r} was not applied: its handler left a "
                f"value that cannot be stored ({exc}). Fix the handler; nothing changed.",
                workflow_id=id,
                statement=event,
                event=event,
            ) from exc
        return orjson.loads(out_json)

    def _check_open(self, row: InstanceRecord, doing: str) -> None:
        """Refuse to ``doing`` an instance that accepts no events (finished, paused,
        cancelled, failed, or with a status text this gorch does not know)."""
        status = status_of(row)
        if status is None:
            read(row, self.workflows)  # raises: the status text is unknown
            raise AssertionError("unreachable")  # pragma: no cover
        if status is RunStatus.FINISHED:
            raise WorkflowFinishedError(
                f"cannot {doing} instance {row.id!r}: it has finished", workflow_id=row.id
            )
        if status not in OPEN_STATUSES:
            what = {
                RunStatus.PAUSED: "it is paused; unpause it first",
                RunStatus.CANCELLED: "it was cancelled",
                RunStatus.FAILED: f"it failed ({row.last_error}); repair it with goto or retry "
                "it first",
            }[status]
            raise InstanceStatusError(
                f"cannot {doing} instance {row.id!r}: {what}",
                workflow_id=row.id,
                status=status.value,
            )


def _check_event(id: str, event: str, payload: Any) -> None:
    """Refuse an event name that is not text, or a payload nested too deep to be stored."""
    if not isinstance(event, str) or not event:
        raise InputError(f"an event name must be a non-empty string, not {event!r}")
    try:  # also in a field the handler ignores: the payload is written to history
        serde.check_depth(payload)
    except InputError as exc:
        raise InputError(
            f"the payload of {event!r} for instance {id!r} was refused: {exc}",
            workflow_id=id,
            event=event,
            details=[f"{d} @ payload" for d in exc.details],
        ) from None


def _thread_of(state: State, event: str, thread: str) -> str:
    """The thread an event was delivered to: the one named, or the one that took it."""
    if thread:
        return thread
    for t in state.threads:
        if t.cur_callback == event:
            return t.id
    return ""
