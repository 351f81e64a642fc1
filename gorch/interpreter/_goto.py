"""goto: the repair tool that moves a stuck thread to a Step, Wait or WaitFor of its body.

One computation in three parts, so that the dry run and the goto cannot disagree:
:func:`goto_target` finds the thread and the statement (or refuses), :class:`GotoMove` works out
the plan before anything changes (a :class:`GotoPlan`, which the dry run returns), and
:meth:`GotoMove.apply` makes the very move the plan describes.
"""

from __future__ import annotations

from typing import Any

from attrs import define, evolve, field

from gorch.dsl import K_WAIT
from gorch.errors import GotoError, WorkflowFinishedError, did_you_mean, suggest
from gorch.interpreter._context import Host
from gorch.interpreter._index import StatementInfo
from gorch.interpreter._run import STANDS_AT, Checkpoint, Run
from gorch.interpreter._status import (
    AFTER_TEARDOWN,
    TEARING_DOWN,
    WAITING_EVENT,
    WORKFLOW_FINISHED,
    WORKFLOW_RESUMING,
)
from gorch.interpreter._waits import end_waits, known_events, new_events, teardowns
from gorch.state import MAIN_THREAD, State, Thread, ThreadStatus


@define
class GotoPlan:
    """What a goto changes (or, for a dry run, would change).

    Attributes:
        workflow_id: the workflow instance.
        thread: the thread that moves.
        from_status, from_step: where it was.
        to_status, to_step: where it will be: at a Step (it runs next), a Wait or a WaitFor.
        teardown: events of the old wait that will be torn down.
        setup: events of the new wait (a goto to a Wait) that will be set up.
        applied: whether the state was changed (``False`` for a dry run).
    """

    workflow_id: str
    thread: str
    from_status: ThreadStatus
    from_step: str
    to_status: ThreadStatus
    to_step: str
    teardown: list[str] = field(factory=list)
    setup: list[str] = field(factory=list)
    applied: bool = False

    def describe(self) -> list[str]:
        """The plan as lines a person reads before confirming."""
        verb = "moved" if self.applied else "would move"
        lines = [
            f"thread {self.thread!r} of workflow {self.workflow_id!r} {verb}:",
            f"  from {self.from_status.value} at {self.from_step or '(start)'!r}",
            f"  to   {self.to_status.value} at {self.to_step!r}",
        ]
        if self.teardown:
            lines.append(f"  tear down: {', '.join(self.teardown)}")
        if self.setup:
            lines.append(f"  set up: {', '.join(self.setup)}")
        return lines


def goto(
    wf: Any,
    state: State,
    name: str,
    thread: str = MAIN_THREAD,
    *,
    dry_run: bool = False,
    checkpoint: Checkpoint | None = None,
    host: Host | None = None,
) -> GotoPlan:
    """Move a thread so that it continues *at* the named Step, Wait or WaitFor.

    The repair tool for a stuck workflow: the step runs next, or the wait is waited on next.
    The thread's pending waits are torn down. Call :func:`resume` afterwards to run on (and to
    set up the events of a new wait). The thread's current position need not exist in the code
    any more: that is what goto repairs.

    Args:
        wf: the workflow object.
        state: the state; changed in place unless ``dry_run``.
        name: the statement to continue at; it must belong to the thread's own body.
        thread: the id of the thread to move.
        dry_run: only return the plan; change nothing.
        checkpoint: called after the teardowns of the old wait, if any ran.
        host: as for :func:`resume` (what the teardowns see through :func:`gorch.context`).

    Returns:
        The :class:`GotoPlan`: what changed, or would change.

    Raises:
        GotoError: unknown statement or thread (the closest names are suggested), a statement
            that is not a Step, Wait or WaitFor, or one in another thread's body. Nothing
            changes.
        WorkflowFinishedError: the workflow finished already.
    """
    if state.status is WORKFLOW_FINISHED:
        raise WorkflowFinishedError(
            f"workflow {state.id!r} ({state.workflow}) has finished; goto cannot revive it",
            workflow_id=state.id,
        )
    run = Run(wf, state, host=host)
    t, info = goto_target(run, name, thread)
    move = GotoMove(run, t, info)
    if dry_run:
        return move.plan
    move.apply()
    with run:
        torn = teardowns(run, t)
    if torn and checkpoint is not None:
        checkpoint(AFTER_TEARDOWN)
    move.plan.applied = True
    return move.plan


def goto_target(run: Run, name: str, thread: str) -> tuple[Thread, StatementInfo]:
    """The thread to move and the statement it moves to; refuses anything else."""
    state, by_name = run.state, run.prog.by_name
    t = state.thread(thread)
    if t is None:
        ids = [x.id for x in state.threads]
        close = suggest(thread, ids)
        raise GotoError(
            f"workflow {state.id!r} ({state.workflow}) has no thread {thread!r}; its threads "
            f"are {', '.join(map(repr, ids)) or 'none'}.{did_you_mean(close)}",
            workflow_id=state.id,
            thread=thread,
            suggestions=close,
        )
    info = by_name.get(name)
    if info is not None and info.kind in STANDS_AT and info.thread == t.name:
        return t, info
    targets = sorted(n for n, i in by_name.items() if i.kind in STANDS_AT and i.thread == t.name)
    close = suggest(name, targets, cutoff=0.4)
    if info is None:
        why = f"{type(run.wf).__name__}.definition() has no statement named {name!r}."
    elif info.thread != t.name:
        owner = "the main body" if info.thread == MAIN_THREAD else f"Go {info.thread!r}"
        why = (
            f"{name!r} belongs to {owner}, not to thread {thread!r}; goto moves a thread "
            f"within its own body."
        )
    else:
        why = (
            f"{info.label} is not a Step, Wait or WaitFor; goto can only continue at one of those."
        )
    raise GotoError(
        f"workflow {state.id!r} ({state.workflow}): goto refused: {why}{did_you_mean(close)}",
        workflow_id=state.id,
        thread=thread,
        statement=name,
        suggestions=close,
    )


class GotoMove:
    """A goto worked out before anything changes: the dry run reports it, the goto applies it,
    so the two cannot disagree (the plan runs the very function the apply runs, end_waits, on
    copies of the thread's events)."""

    __slots__ = ("info", "known", "plan", "run", "thread")

    def __init__(self, run: Run, t: Thread, info: StatementInfo) -> None:
        self.run, self.thread, self.info = run, t, info
        self.known = known_events(run, t)  # the others go: they cannot be torn down
        probe = Thread(t.id, t.name, t.status, wait_events=[evolve(e) for e in self.known])
        if t.status is WAITING_EVENT:
            end_waits(run, probe)
        self.plan = GotoPlan(
            workflow_id=run.state.id,
            thread=t.id,
            from_status=t.status,
            from_step=t.cur_step,
            to_status=STANDS_AT[info.kind],
            to_step=info.name,
            teardown=[e.req.name for e in probe.wait_events if e.status in TEARING_DOWN],
            setup=[k.name for k in info.kids] if info.kind == K_WAIT else [],
        )

    def apply(self) -> None:
        """Move the thread; the caller then runs the teardowns the plan lists."""
        run, t, info = self.run, self.thread, self.info
        events = new_events(run, info, t, t.pc + 1) if info.kind == K_WAIT else []
        t.wait_events = self.known
        if t.status is WAITING_EVENT:
            end_waits(run, t)
        t.wait_events.extend(events)
        t.status = self.plan.to_status
        t.cur_step = info.name
        t.cur_callback = ""
        t.pc += 1
        run.state.pc += 1
        run.state.status = WORKFLOW_RESUMING
