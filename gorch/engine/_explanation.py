"""What :meth:`Engine.why <gorch.engine.Engine.why>` returns: why an instance is where it is,
as structured facts.

:class:`Explanation` holds the facts (the status and why, each thread's wait, the events it
would accept, its timers, a ``WaitFor``'s condition, the last error and the next retry, the
lease, the commands an operator can type next); ``str()`` of it is the same in plain words
(:mod:`gorch.engine._why_text`). The records are frozen: an explanation is a snapshot, taken at
``Explanation.now``, and every "ago" or "overdue" in its text is measured from then, so the
same explanation always reads the same.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from attrs import frozen

from gorch.engine._records import RunStatus
from gorch.engine._why_text import render


@frozen
class AcceptedEvent:
    """An event a waiting thread would accept now.

    Attributes:
        name: the event's name, as sent.
        wait: the ``Wait`` it is a case of.
        payload: the payload's type, as a name: a class name (``"AddToCart"``), ``"none"``
            (the event carries no body) or ``"any JSON"``.
        roles: who may send it over HTTP (empty: anyone who may send events).
        http: the request that sends it, e.g. ``"POST /instances/order-1/events/AddToCart"``.
        command: the command that sends it, e.g. ``"gorch send order-1 AddToCart PAYLOAD"``.
        setup_error: why its handler's setup failed (it is retried by every resume), or "".
    """

    name: str
    wait: str
    payload: str
    roles: tuple[str, ...]
    http: str
    command: str
    setup_error: str = ""


@frozen
class DueTimer:
    """A ``Timeout`` a thread waits on, and when it falls due.

    Attributes:
        name: the Timeout's name.
        due_at: when it falls due (aware UTC).
        overdue: it was due before ``Explanation.now``: a worker should have fired it.
    """

    name: str
    due_at: datetime
    overdue: bool


@frozen
class WaitCondition:
    """The condition a thread's ``WaitFor`` waits for.

    Attributes:
        source: the condition's source text, as written in ``definition()``
            (``"self.paid >= self.amount > 0"``), or None where it cannot be read (``note``
            says why).
        description: the ``WaitFor``'s own ``description=`` (or "").
        holds: the condition's value now, from a fresh ``definition()`` of the loaded data
            (None if it could not be computed; ``note`` says why). A condition that holds
            lets the thread on at its next resume.
        values: the attributes of the workflow object the condition reads, with their current
            values as JSON data: ``(("paid", 0.0), ("amount", 31.5))``.
        note: what could not be found out, or "".
    """

    source: str | None
    description: str
    holds: bool | None
    values: tuple[tuple[str, Any], ...]
    note: str = ""


@frozen
class ThreadExplanation:
    """Where one thread of the instance is, and what moves it on.

    Attributes:
        thread, name: the thread's id and name (the ``Go`` that started it).
        status: its :class:`~gorch.ThreadStatus` value.
        at: the statement it is at (its name; "" for a thread that has not started).
        kind: that statement's kind as written: ``"Step"``, ``"Wait"``, ``"WaitFor"``, or ""
            (unknown to the code, or none).
        since: when it began what it does now (:attr:`ThreadWait.since <gorch.ThreadWait>`).
        events: the events it would accept.
        timers: its timers, soonest first.
        condition: a ``WaitFor``'s condition (None at any other statement).
        goto_targets: the statements ``goto`` can move this thread to (Steps, Waits and
            WaitFors of its own body), in definition order.
    """

    thread: str
    name: str
    status: str
    at: str
    kind: str
    since: datetime | None
    events: tuple[AcceptedEvent, ...] = ()
    timers: tuple[DueTimer, ...] = ()
    condition: WaitCondition | None = None
    goto_targets: tuple[str, ...] = ()


@frozen
class SuggestedCommand:
    """A command an operator can type next, and what it does.

    Attributes:
        command: the command line, e.g. ``"gorch unpause order-1"``.
        what: what it does, in words.
    """

    command: str
    what: str


@frozen
class Explanation:
    """Why instance ``id`` is where it is: :meth:`Engine.why <gorch.engine.Engine.why>`.

    ``str()`` of it is the explanation in plain words.

    Attributes:
        id, workflow: the instance and its registered workflow.
        status: its :class:`~gorch.RunStatus`.
        reason: why it has that status, in one sentence.
        now: when the explanation was made (every "ago" is measured from it).
        status_since: when it got that status, from its history (None if history cannot say).
        threads: each thread, in the state's order.
        attempts: consecutive failed attempts of the step it is at.
        max_attempts: that step's retry policy's ``max_attempts`` (0 when no step failed).
        last_error: the last step failure, or None.
        next_attempt_at: when a worker retries the step (None: no retry is due).
        lease_owner, lease_expires: who holds the instance's lease, until when (None: nobody).
        lease_live: the lease was still live at ``now`` (an expired one is free to take).
        load_error: why the stored row does not load (then there are no threads), or None.
        commands: what an operator can do next, as commands to type.
    """

    id: str
    workflow: str
    status: RunStatus
    reason: str
    now: datetime
    status_since: datetime | None = None
    threads: tuple[ThreadExplanation, ...] = ()
    attempts: int = 0
    max_attempts: int = 0
    last_error: str | None = None
    next_attempt_at: datetime | None = None
    lease_owner: str | None = None
    lease_expires: datetime | None = None
    lease_live: bool = False
    load_error: str | None = None
    commands: tuple[SuggestedCommand, ...] = ()

    def __str__(self) -> str:
        return render(self)
