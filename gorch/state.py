"""What gorch persists about a running workflow: pure data, no behaviour.

A :class:`State` is everything the interpreter needs besides the workflow's own data object:
where every thread stands, which events each waiting thread expects, and a program counter that
tells callbacks of an earlier wait from callbacks of the current one. It serializes to JSON with
:func:`gorch.dumps` and back with :func:`gorch.loads`; the format is pinned by golden files.
"""

from __future__ import annotations

from enum import StrEnum

from attrs import define, field

__all__ = [
    "MAIN_THREAD",
    "CallbackRequest",
    "CheckpointType",
    "EventStatus",
    "RunStatus",
    "State",
    "Thread",
    "ThreadStatus",
    "WaitEvent",
    "WorkflowStatus",
    "new_state",
]

MAIN_THREAD = "_main_"
"""Id and name of the thread that runs the body of ``definition()``."""


class WorkflowStatus(StrEnum):
    """Where a workflow stands as a whole."""

    RESUMING = "Resuming"  # some thread can make progress: call resume()
    WAITING = "Waiting"  # every thread is blocked on an event or a condition
    FINISHED = "Finished"  # the main thread returned; nothing more will run


class RunStatus(StrEnum):
    """Where an instance stands, as the engine sees it (``gorch.RunStatus``; the store keeps
    the text)."""

    RUNNING = "running"  # a worker has work to do on it (or is doing it)
    WAITING = "waiting"  # every thread waits for an event, a timer or a condition
    FINISHED = "finished"
    FAILED = "failed"  # a step kept failing past its retry policy; an operator repairs it
    PAUSED = "paused"  # no event is accepted, no timer fires, until unpaused
    CANCELLED = "cancelled"


class ThreadStatus(StrEnum):
    """What a thread does next."""

    EXECUTING = "Executing"  # run the step named by cur_step
    RESUMING = "Resuming"  # continue after cur_step (or from the start when cur_step is "")
    WAITING_EVENT = "WaitingEvent"  # blocked on the Wait named by cur_step
    WAITING_CONDITION = "WaitingCondition"  # blocked on the WaitFor named by cur_step


class EventStatus(StrEnum):
    """Lifecycle of one event of a wait: set up when the wait begins, torn down when it ends."""

    PENDING_SETUP = "PendingSetup"  # the wait began; the handler's setup has not run yet
    SETUP = "Setup"  # setup succeeded; the event can arrive
    PENDING_TEARDOWN = "PendingTeardown"  # the wait ended; teardown has not run yet
    SETUP_ERROR = "SetupError"  # setup raised; retried by every later resume
    TEARDOWN_ERROR = "TeardownError"  # teardown raised; retried by every later resume


class CheckpointType(StrEnum):
    """Why ``resume`` calls its checkpoint function.

    ``AFTER_STEP``, ``AFTER_CONDITION``, ``AFTER_SETUP`` and ``AFTER_TEARDOWN`` follow a side
    effect (user code ran) and must be saved before the effect can be repeated. ``AFTER_RESUME``
    follows pure control flow, which a later resume recomputes identically, so a store may skip it.
    """

    AFTER_STEP = "afterStep"
    AFTER_SETUP = "afterSetup"
    AFTER_TEARDOWN = "afterTeardown"
    AFTER_RESUME = "afterResume"
    AFTER_CONDITION = "afterCondition"


@define
class CallbackRequest:
    """Identifies one event of one wait.

    Attributes:
        workflow_id: the workflow instance.
        thread_id: the waiting thread; ``""`` lets ``handle_callback`` find it by event name.
        name: the event name.
        pc: the thread's pc when the wait began; ``0`` skips the staleness check.
        setup_data: what the handler's ``setup`` returned (a Timeout: its due time).
    """

    workflow_id: str = ""
    thread_id: str = ""
    name: str = ""
    pc: int = 0
    setup_data: str = ""


@define
class WaitEvent:
    """One event a thread waits for (or waits to tear down)."""

    type: str
    req: CallbackRequest
    status: EventStatus = EventStatus.PENDING_SETUP
    handled: bool = False
    error: str = ""


@define
class Thread:
    """One thread of execution: the main body, or the body of a ``Go``."""

    id: str
    name: str
    status: ThreadStatus = ThreadStatus.RESUMING
    cur_step: str = ""
    cur_callback: str = ""
    wait_events: list[WaitEvent] = field(factory=list)
    pc: int = 0


@define
class State:
    """The persisted execution state of one workflow instance.

    ``data_version`` is the ``data_version`` of the workflow class whose code wrote the data
    stored with it (a state stored before versions existed reads as 1): the engine migrates
    older data with the class's ``migrate`` before it loads it.
    """

    id: str
    workflow: str
    status: WorkflowStatus = WorkflowStatus.RESUMING
    threads: list[Thread] = field(factory=list)
    pc: int = 0
    data_version: int = 1

    def thread(self, thread_id: str) -> Thread | None:
        """Return the thread with this id, or ``None``."""
        for t in self.threads:
            if t.id == thread_id:
                return t
        return None


def new_state(id: str, workflow: str) -> State:
    """Return the state of a workflow that has not run yet: a main thread about to start.

    Example:
        >>> state = new_state("order-1", "pizza")
        >>> state.threads[0].id
        '_main_'
    """
    return State(
        id=id,
        workflow=workflow,
        status=WorkflowStatus.RESUMING,
        threads=[Thread(id=MAIN_THREAD, name=MAIN_THREAD, status=ThreadStatus.RESUMING)],
        pc=0,
    )
