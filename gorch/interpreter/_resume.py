"""Resuming a workflow until every thread is blocked, and the load-resume-save call on top.

:func:`resume` is the interpreter's step loop: it picks the first thread that can make progress
and runs one unit of work for it (:mod:`gorch.interpreter._run`), calling the caller's
``checkpoint`` after every change worth saving, until no thread can run and no ``WaitFor``
condition holds. :func:`run` wraps it for a request handler: deliver an event, resume, and say
what to save (:class:`Outcome`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from attrs import define

from gorch import serde
from gorch.errors import (
    DefinitionError,
    GorchError,
    HandlerError,
    StateMismatchError,
    StepError,
    StepLimitExceeded,
    WorkflowFinishedError,
)
from gorch.interpreter._callbacks import handle_callback
from gorch.interpreter._context import CURRENT, Host
from gorch.interpreter._run import FINISHED, PASS, Before, Checkpoint, Run
from gorch.interpreter._status import (
    AFTER_CONDITION,
    AFTER_RESUME,
    AFTER_STEP,
    AFTER_TEARDOWN,
    EXECUTING,
    RESUMING,
    WAITING_CONDITION,
    WAITING_EVENT,
    WORKFLOW_FINISHED,
    WORKFLOW_RESUMING,
    WORKFLOW_WAITING,
)
from gorch.interpreter._waits import finish_teardowns, setups, teardowns
from gorch.state import CallbackRequest, State, Thread, WorkflowStatus

DEFAULT_MAX_STEPS = 10_000
"""How many steps one ``resume`` may execute before it stops with ``StepLimitExceeded``."""


def resume(
    wf: Any,
    state: State,
    checkpoint: Checkpoint | None = None,
    *,
    max_steps: int = DEFAULT_MAX_STEPS,
    before: Before | None = None,
    services: Mapping[str, Any] | None = None,
    attempt: int = 1,
    host: Host | None = None,
) -> None:
    """Run the workflow until every thread is blocked (or it finished).

    Tears down the waits that ended, runs every thread that can make progress (first runnable
    thread first) one unit at a time, re-checks ``WaitFor`` conditions whenever every thread is
    blocked, and finally sets up the events of new waits.

    Args:
        wf: the workflow object (its data); steps and handlers may change it.
        state: the workflow's state; changed in place.
        checkpoint: called with a :class:`CheckpointType` after every change worth saving; what
            it raises propagates, the state as it was when it was called.
        max_steps: the most steps (and passed ``WaitFor``s) this call may execute.
        before: called as ``before(thread, name)`` just before user code with side effects
            runs (a step's action, a ``WaitFor`` handler, a Handler's setup or teardown); an
            exception from it propagates unchanged and that code does not run. The engine
            commits pending changes here.
        services, attempt: what :func:`gorch.context` tells user code (the caller counts the
            retries of a step); ``host``: what an engine lends instead.

    Raises:
        StepError: a step raised; the thread stays at the step, resume again to retry it.
        HandlerError: a ``WaitFor`` handler raised.
        StepLimitExceeded: ``max_steps`` was reached; the state can be resumed again.
        StateMismatchError: the state is at a statement the code no longer has (nothing ran).
        DefinitionError: the definition breaks a rule of the DSL.
        WorkflowFinishedError: the workflow finished already.

    Example:
        >>> from gorch import S, Step, new_state, resume
        >>> class Hello:
        ...     said = ""
        ...     def definition(self):
        ...         return S(Step("greet", self.greet))
        ...     def greet(self):
        ...         self.said = "hello"
        >>> wf, state = Hello(), new_state("1", "hello")
        >>> resume(wf, state)
        >>> wf.said, state.status.value
        ('hello', 'Finished')
    """
    if host is None:
        host = Host(services, attempt) if services or attempt != 1 else None
    r = Run(wf, state, before, host)
    token = CURRENT.set(r)  # the run gorch.context() asks; not a with: this is the hot path
    try:
        (_resume_finished(r, checkpoint) if state.status is WORKFLOW_FINISHED
         else _run_until_blocked(r, checkpoint, max_steps))  # fmt: skip
    finally:
        CURRENT.reset(token)


def _resume_finished(run: Run, checkpoint: Checkpoint | None) -> None:
    """A finished workflow: retry the teardowns it left failed; nothing else is left to run."""
    state = run.state
    if not state.threads:  # only threads holding failed teardowns can be left
        raise WorkflowFinishedError(
            f"workflow {state.id!r} ({state.workflow}) has finished; there is nothing to resume",
            workflow_id=state.id,
        )
    finish_teardowns(run, checkpoint)


def _run_until_blocked(run: Run, checkpoint: Checkpoint | None, max_steps: int) -> None:
    """The step loop: one unit at a time for the first thread that can make progress."""
    state = run.state
    _prepare(run, checkpoint)
    steps = 0
    while True:
        t = _next_runnable(state.threads)
        if t is not None:
            state.status = WORKFLOW_RESUMING
            if t.status is RESUMING:
                outcome = run.advance(t)
                if outcome != PASS:
                    if checkpoint is not None:
                        checkpoint(AFTER_RESUME)
                    if outcome == FINISHED:
                        finish_teardowns(run, checkpoint)
                        return
                    continue
                # A WaitFor whose condition holds passes straight on, with no checkpoint in
                # between: a state saved at the WaitFor would, once reloaded, let other threads
                # run before the condition is looked at again, and so diverge from this run.
        else:
            t = _first_passing(run)
            if t is None:
                break
        # A step to execute or a WaitFor to pass: a unit that counts against max_steps.
        if steps >= max_steps:
            raise _limit(state, t, max_steps)
        steps += 1
        if t.status is EXECUTING:
            run.execute(t)
            done = AFTER_STEP
        else:
            run.pass_condition(t)
            done = AFTER_CONDITION
        if checkpoint is not None:
            checkpoint(done)
    _set_up_waits(run, checkpoint)


def _prepare(run: Run, checkpoint: Checkpoint | None) -> None:
    """Before anything runs: refuse a state the code no longer fits (nothing runs then), and
    tear down the waits that ended (a failure is kept, for the next resume to retry)."""
    threads = run.state.threads
    for x in threads:
        run.check_thread(x)
    for x in threads:
        if x.wait_events and teardowns(run, x) and checkpoint is not None:
            checkpoint(AFTER_TEARDOWN)


def _set_up_waits(run: Run, checkpoint: Checkpoint | None) -> None:
    """Every thread is blocked: set up the events of the waits that began."""
    for x in run.state.threads:
        if x.status is WAITING_EVENT:
            setups(run, x, checkpoint)
    run.state.status = WORKFLOW_WAITING


def _next_runnable(threads: list[Thread]) -> Thread | None:
    """The first thread that can make progress: it executes a step or resumes."""
    for t in threads:
        st = t.status
        if st is EXECUTING or st is RESUMING:
            return t
    return None


def _first_passing(run: Run) -> Thread | None:
    """The first thread whose awaited condition holds now (read from a fresh definition)."""
    for t in run.state.threads:
        if t.status is WAITING_CONDITION and run.node(run.prog.by_name[t.cur_step], True).cond:
            return t
    return None


def _limit(state: State, t: Thread, limit: int) -> StepLimitExceeded:
    return StepLimitExceeded(
        f"workflow {state.id!r} ({state.workflow}): resume stopped after {limit} steps, in "
        f"thread {t.id!r} at {t.cur_step!r}. The state is consistent: resume again to go on. A "
        f"workflow that keeps hitting this bound loops without waiting; give its loop a Wait.",
        workflow_id=state.id,
        thread=t.id,
        limit=limit,
    )


@define
class Outcome:
    """What one :func:`run` did, and what to save.

    Attributes:
        output: the event handler's output (None without an event).
        state: the state to save, as JSON text: as of the last checkpoint.
        data: the workflow data to save, as JSON text: as of the last checkpoint (without the
            half-done changes of a step that raised).
        status: the workflow's status after the run.
        error: what stopped the run after the event was applied — a ``StepError`` or a
            ``WaitFor`` handler's ``HandlerError`` (save, and resume later to retry it), a
            ``StepLimitExceeded`` (save, resume again), a ``StateMismatchError`` or a
            ``DefinitionError`` (save; repair with goto) — or None.
    """

    output: object
    state: str
    data: str
    status: WorkflowStatus
    error: GorchError | None = None


def run(
    wf: Any,
    state: State,
    req: CallbackRequest | None = None,
    input: Any = None,
    *,
    max_steps: int = DEFAULT_MAX_STEPS,
    services: Mapping[str, Any] | None = None,
    attempt: int = 1,
) -> Outcome:
    """Deliver an event (if ``req`` is given), resume until every thread is blocked, and say
    what to save: the load-resume-save pattern, safe by construction.

    A refused event raises, as :func:`handle_callback` does, and nothing changed: save
    nothing. Once the event is applied it is never lost: whatever happens in the run after it
    — a step that raises, the step bound — is returned in ``Outcome.error``, with the state and
    data *as of the last checkpoint* to save (as the engine does: a failed step's half-done
    changes are not kept, and a later resume runs the step again).

    Example (a request handler)::

        state = loads(db.get_state(order_id), State)
        order = loads(db.get_data(order_id), PizzaOrder)
        out = run(order, state, CallbackRequest(name=event), payload)  # refused: raises
        db.save(order_id, out.state, out.data)                          # accepted: save
        if out.error:
            log.warning("%s", out.error)      # resume later (with run) to retry the step

    Raises:
        The refusals of :func:`handle_callback` (``CallbackNotFound``, ``InputError``,
        ``HandlerError``, ...), and ``WorkflowFinishedError`` for a finished workflow without
        an event. None of them changes anything.

    ``services`` and ``attempt`` are what :func:`gorch.context` tells the code that runs.
    """
    host = Host(services, attempt)
    output = None if req is None else handle_callback(req, wf, state, input, host=host)
    saved: list[str] = []

    def before(t: Thread, name: str) -> None:
        # User code is about to run: the data as it is now is the last checkpoint's.
        saved[:] = [serde.dumps(wf)]

    try:
        resume(wf, state, max_steps=max_steps, before=before, host=host)
    except (StepError, HandlerError, StepLimitExceeded, StateMismatchError, DefinitionError) as exc:
        data = saved[0] if saved and not isinstance(exc, StepLimitExceeded) else serde.dumps(wf)
        return Outcome(output, serde.dumps(state), data, state.status, exc)
    return Outcome(output, serde.dumps(state), serde.dumps(wf), state.status)
