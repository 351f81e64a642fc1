"""The gorch error tree.

Every error gorch raises derives from :class:`GorchError` and says what happened, to which
workflow, thread and statement, and what to do about it. The context is also available as
attributes (``workflow_id``, ``thread``, ``statement``) so that callers (the engine, the HTTP
layer) can map errors to responses without parsing messages.

A call that raises one of these leaves the :class:`~gorch.state.State` it was given as it was
before the call, or in a state that a later call continues correctly; never half-applied.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence

__all__ = [
    "AlreadyExistsError",
    "AmbiguousCallback",
    "BusyError",
    "CallbackNotFound",
    "ConflictError",
    "DefinitionError",
    "ErasureError",
    "GorchError",
    "GotoError",
    "HandlerError",
    "IdempotencyKeyError",
    "InputError",
    "InstanceStatusError",
    "MigrationError",
    "NoContextError",
    "NotFoundError",
    "SerializationError",
    "StaleCallback",
    "StateMismatchError",
    "StepError",
    "StepLimitExceeded",
    "StepTimeoutError",
    "StoreError",
    "StoreUnavailableError",
    "UnreadableInstanceError",
    "WaitTimeout",
    "WorkflowFinishedError",
    "did_you_mean",
    "suggest",
]


def suggest(name: str, choices: Iterable[str], *, n: int = 3, cutoff: float = 0.6) -> list[str]:
    """The choices closest to ``name``, best first: what a "did you mean" offers."""
    return difflib.get_close_matches(name, list(choices), n=n, cutoff=cutoff)


def did_you_mean(names: Sequence[str], *, joiner: str = ", ") -> str:
    """``" Did you mean 'a', 'b'?"`` (with its leading space) for ``names``; ``""`` for none."""
    return f" Did you mean {joiner.join(map(repr, names))}?" if names else ""


class GorchError(Exception):
    """Base of every error gorch raises.

    Attributes:
        workflow_id: id of the workflow instance concerned, or ``""``.
        thread: id of the thread concerned, or ``""``.
        statement: name of the statement concerned, or ``""``.
    """

    def __init__(
        self, message: str, *, workflow_id: str = "", thread: str = "", statement: str = ""
    ) -> None:
        super().__init__(message)
        self.message = message
        self.workflow_id = workflow_id
        self.thread = thread
        self.statement = statement


class DefinitionError(GorchError):
    """A workflow definition breaks a rule of the DSL.

    Attributes:
        problems: every problem found, each a sentence that starts with its path in the tree.
    """

    def __init__(self, problems: Sequence[str], *, workflow_id: str = "") -> None:
        self.problems = list(problems)
        if len(self.problems) == 1:
            message = f"Invalid workflow definition: {self.problems[0]}"
        else:
            lines = "\n".join(f"  - {p}" for p in self.problems)
            message = f"Invalid workflow definition ({len(self.problems)} problems):\n{lines}"
        super().__init__(message, workflow_id=workflow_id)


class GotoError(GorchError):
    """A goto was refused (unknown statement or thread, or a target goto cannot move to).

    Attributes:
        suggestions: the closest valid names, best first.
    """

    def __init__(
        self,
        message: str,
        *,
        workflow_id: str = "",
        thread: str = "",
        statement: str = "",
        suggestions: Iterable[str] = (),
    ) -> None:
        super().__init__(message, workflow_id=workflow_id, thread=thread, statement=statement)
        self.suggestions = list(suggestions)


class StateMismatchError(GorchError):
    """The state names a statement or thread that the workflow's code no longer has.

    Nothing runs: continuing would guess. Deploy the code that has the statement again, or move
    the thread to a statement that exists with ``goto``.
    """


class StepError(GorchError):
    """A step's action raised. The thread stays at the step; a later resume retries it.

    The original exception is chained as ``__cause__``.

    Attributes:
        step: name of the failing step (same as ``statement``).
    """

    @property
    def step(self) -> str:
        return self.statement


class HandlerError(GorchError):
    """An event handler (or a ``WaitFor`` handler) raised; the state was not changed.

    The original exception is chained as ``__cause__``.

    Attributes:
        event: name of the event whose handler failed.
    """

    def __init__(
        self,
        message: str,
        *,
        workflow_id: str = "",
        thread: str = "",
        statement: str = "",
        event: str = "",
    ) -> None:
        super().__init__(message, workflow_id=workflow_id, thread=thread, statement=statement)
        self.event = event


class InputError(GorchError):
    """An event's payload does not fit the handler's declared type; nothing was changed.

    Attributes:
        event: name of the event.
        details: one line per problem found in the payload (path and reason).
    """

    def __init__(
        self,
        message: str,
        *,
        workflow_id: str = "",
        thread: str = "",
        statement: str = "",
        event: str = "",
        details: Sequence[str] = (),
    ) -> None:
        super().__init__(message, workflow_id=workflow_id, thread=thread, statement=statement)
        self.event = event
        self.details = list(details)


class SerializationError(GorchError, ValueError):
    """``gorch.dumps`` could not write a value, or ``gorch.loads`` could not read a document.

    Also a ``ValueError``. The original error is chained as ``__cause__``.

    Attributes:
        details: one line per problem, with its path in the document (``$.threads[0].pc``).
    """

    def __init__(self, message: str, *, details: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.details = list(details)


class CallbackNotFound(GorchError):
    """No thread of the workflow waits for this event.

    Attributes:
        event: the event that was sent.
        waiting_for: the events the workflow waits for now, sorted.
    """

    def __init__(
        self,
        message: str,
        *,
        workflow_id: str = "",
        thread: str = "",
        event: str = "",
        waiting_for: Sequence[str] = (),
    ) -> None:
        super().__init__(message, workflow_id=workflow_id, thread=thread)
        self.event = event
        self.waiting_for = list(waiting_for)


class AmbiguousCallback(GorchError):
    """Several threads wait for this event and the request did not say which one.

    Attributes:
        event: the event that was sent.
        threads: ids of the threads waiting for it.
    """

    def __init__(
        self,
        message: str,
        *,
        workflow_id: str = "",
        event: str = "",
        threads: Sequence[str] = (),
    ) -> None:
        super().__init__(message, workflow_id=workflow_id)
        self.event = event
        self.threads = list(threads)


class StaleCallback(GorchError):
    """The callback was meant for an earlier wait (its ``pc`` differs from the stored one).

    Typical sources: a timer from an earlier loop turn, a retried webhook. Refusing it is the
    correct outcome; the sender can drop it.

    Attributes:
        event: the event that was sent.
        expected_pc: the pc the waiting event carries.
        got_pc: the pc the request carried.
    """

    def __init__(
        self,
        message: str,
        *,
        workflow_id: str = "",
        thread: str = "",
        event: str = "",
        expected_pc: int = 0,
        got_pc: int = 0,
    ) -> None:
        super().__init__(message, workflow_id=workflow_id, thread=thread, statement=event)
        self.event = event
        self.expected_pc = expected_pc
        self.got_pc = got_pc


class WorkflowFinishedError(GorchError):
    """The workflow has finished; it takes no more events, resumes or gotos."""


class StepLimitExceeded(GorchError):
    """One ``resume`` executed more steps than its bound allows.

    The state is consistent and can be resumed again; a workflow that keeps hitting the bound
    most likely loops without waiting for anything.

    Attributes:
        limit: the bound that was reached.
    """

    def __init__(self, message: str, *, workflow_id: str = "", thread: str = "", limit: int = 0):
        super().__init__(message, workflow_id=workflow_id, thread=thread)
        self.limit = limit


# --------------------------------------------------------------------------------------------
# The engine's errors (layer 4); defined here so that every face maps one tree.


class NotFoundError(GorchError):
    """No instance (or workflow) has that id or name. Nothing changed."""


class AlreadyExistsError(GorchError):
    """An instance with that id exists already. Nothing changed; choose another id, or omit it
    and let the engine make one."""


class ConflictError(GorchError):
    """Someone else changed the instance between our read and our write (its version moved on).

    Nothing of this call was saved. The engine retries where that is safe; when it is raised to
    a caller, read the instance again and decide.
    """


class BusyError(GorchError):
    """Another process holds the instance (it is running a step) and did not let go within the
    wait bound. Nothing changed; send again later.

    Attributes:
        owner: who holds the instance's lease.
    """

    def __init__(self, message: str, *, workflow_id: str = "", owner: str = "") -> None:
        super().__init__(message, workflow_id=workflow_id)
        self.owner = owner


class InstanceStatusError(GorchError):
    """The instance's status does not allow this call (an event for a paused, cancelled or
    failed instance; unpausing one that is not paused). Nothing changed.

    Attributes:
        status: the instance's status, as its lower-case word.
    """

    def __init__(self, message: str, *, workflow_id: str = "", status: str = "") -> None:
        super().__init__(message, workflow_id=workflow_id)
        self.status = status


class ErasureError(GorchError):
    """Personal data cannot be erased from the instance: its workflow class names no fields
    of personal data (``personal_data``). Nothing changed; declare them."""


class IdempotencyKeyError(GorchError):
    """The idempotency key was used before for another request to the same instance. Nothing
    changed; use a new key for a new request.

    Attributes:
        key: the key.
    """

    def __init__(self, message: str, *, workflow_id: str = "", key: str = "") -> None:
        super().__init__(message, workflow_id=workflow_id)
        self.key = key


class UnreadableInstanceError(GorchError):
    """An instance's stored row cannot be read by this code: its state or data does not load
    into the registered types, its status is unknown, a column is damaged, or its workflow is
    not registered with this engine. Nothing changed.

    Only that instance is affected: lists and histories show it with the reason, and a worker
    marks it failed. Repair the row, deploy code whose types match it, or cancel it.

    Attributes:
        field: what does not load: ``"state"``, ``"data"``, ``"status"``, ``"workflow"``, or a
            damaged column's name.
        reason: why, in a sentence.
    """

    def __init__(self, message: str, *, workflow_id: str = "", field: str = "", reason: str = ""):
        super().__init__(message, workflow_id=workflow_id)
        self.field = field
        self.reason = reason


class MigrationError(GorchError):
    """A workflow class's ``migrate`` failed on stored data: it raised, or did not return a
    dict. The instance was left as it was.

    Attributes:
        workflow_class: the class's name.
        version: the version ``migrate`` was upgrading from.
        reason: what went wrong, in a sentence.
    """

    def __init__(self, workflow_class: str, version: int, reason: str, *, workflow_id: str = ""):
        super().__init__(
            f"{workflow_class}.migrate(data, {version}) failed: {reason}. The instance was "
            f"left as it was: fix migrate() (it upgrades data from version {version} to "
            f"{version + 1}) and deploy again",
            workflow_id=workflow_id,
        )
        self.workflow_class = workflow_class
        self.version = version
        self.reason = reason


class NoContextError(GorchError):
    """:func:`gorch.context` was called outside running user code (a step, an event handler, a
    ``Handler`` method or a ``WaitFor`` handler), or asked for what this code does not have
    (``session`` outside a ``Step(transaction=True)``)."""


class StepTimeoutError(GorchError, TimeoutError):
    """A step's attempt ran longer than its ``Step(timeout=...)``: it was abandoned and counts
    as a failed attempt; whatever it does after that is never committed."""


class WaitTimeout(GorchError, TimeoutError):
    """:meth:`gorch.Engine.wait` gave up: the instance did not get where it was waited for
    within the timeout. Nothing was changed; ``status`` and ``at_statements`` say where it
    stood last."""

    def __init__(
        self, message: str, *, status: str = "", at_statements: tuple[str, ...] = (), **kw: str
    ) -> None:
        super().__init__(message, **kw)
        self.status = status
        self.at_statements = at_statements


class StoreError(GorchError):
    """The database cannot be used as a gorch store: a URL of no database gorch can use, a
    schema written by a newer gorch, a database without gorch's tables where one is needed."""


class StoreUnavailableError(GorchError):
    """The database cannot be used right now: it does not answer (down, restarting, the
    network is cut, a SQLite file that cannot be opened or read), or (SQLite) another
    connection held its write lock past the store's ``busy_timeout``.

    Call again later (over HTTP: 503 with ``Retry-After``). What the call did depends on
    ``outcome_unknown``.

    Attributes:
        outcome_unknown: False: nothing of this call was written. True: the connection broke
            while a write was being committed, so it may or may not have been committed.
            Repeat the request with the same idempotency key: if the first one was committed,
            the repeat returns its answer and applies nothing again. (Without a key, read the
            instance to see what happened before you repeat.)
    """

    def __init__(self, message: str, *, workflow_id: str = "", outcome_unknown: bool = False):
        super().__init__(message, workflow_id=workflow_id)
        self.outcome_unknown = outcome_unknown
