"""Delivering an event: finding the wait it is for, running its handler, ending the wait.

An event names what it is for (``req.name``, and optionally the thread and the ``pc`` of the
wait); :func:`find_event` finds the one waiting thread and event it fits, or refuses it with an
error that says what the workflow waits for instead. :func:`handle_callback` then runs the
handler and marks the thread to resume: one unit of work, applied only if the handler
succeeded.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from gorch.dsl import K_TIMEOUT
from gorch.errors import (
    AmbiguousCallback,
    CallbackNotFound,
    StaleCallback,
    WorkflowFinishedError,
    did_you_mean,
    suggest,
)
from gorch.interpreter._context import Host
from gorch.interpreter._handlers import call_handler, no_payload, structure_input
from gorch.interpreter._index import EVENT_KINDS, Program, StatementInfo
from gorch.interpreter._run import Run
from gorch.interpreter._status import (
    ACTIVE,
    RESUMING,
    WAITING_EVENT,
    WORKFLOW_FINISHED,
    WORKFLOW_RESUMING,
)
from gorch.interpreter._waits import end_waits
from gorch.state import CallbackRequest, State, Thread, WaitEvent


def waiting_for(state: State) -> list[str]:
    """The events the workflow waits for now, sorted, without repeats."""
    return awaited(state.threads)


def awaited(threads: Iterable[Thread]) -> list[str]:
    """The events these threads wait for now, sorted, without repeats."""
    return sorted({
        e.req.name
        for t in threads if t.status is WAITING_EVENT
        for e in t.wait_events if e.status in ACTIVE
    })  # fmt: skip


def handle_callback(
    req: CallbackRequest,
    wf: Any,
    state: State,
    input: Any = None,
    *,
    services: Mapping[str, Any] | None = None,
    host: Host | None = None,
) -> object:
    """Deliver an event to the thread that waits for it; return the handler's output.

    Runs the handler (a function handler gets ``input`` structured into its first parameter's
    type), ends the wait and marks the thread to resume: call :func:`resume` next to run what
    follows. With an empty ``req.thread_id`` the one thread that waits for ``req.name`` is
    found; a non-zero ``req.pc`` must match the waiting event's.

    Raises:
        CallbackNotFound: no thread waits for this event (``.waiting_for`` lists what they do).
        AmbiguousCallback: several threads wait for it and ``req.thread_id`` is empty.
        StaleCallback: ``req.pc`` belongs to an earlier wait.
        InputError: the payload does not fit the handler's type; nothing changed.
        HandlerError: the handler raised; nothing changed.
        WorkflowFinishedError: the workflow finished already.
        StateMismatchError: the thread waits at a statement the code no longer has.

    ``services``: what :func:`gorch.context` hands the handler (``host``: an engine's instead).
    Example:
        >>> from gorch import S, Wait, On, CallbackRequest, new_state, resume, handle_callback
        >>> class Echo:
        ...     def definition(self):
        ...         return S(Wait("for a word", On("say", self.say)))
        ...     def say(self, word: str) -> str:
        ...         return word.upper()
        >>> wf, state = Echo(), new_state("1", "echo")
        >>> resume(wf, state)
        >>> handle_callback(CallbackRequest(name="say"), wf, state, "hi")
        'HI'
    """
    if state.status is WORKFLOW_FINISHED:
        raise WorkflowFinishedError(
            f"workflow {state.id!r} ({state.workflow}) has finished; it takes no more events "
            f"(got {req.name!r})",
            workflow_id=state.id,
            statement=req.name,
        )
    if host is None and services:
        host = Host(services)
    run = Run(wf, state, host=host)
    t, e = find_event(req, state, run.prog)
    run.check_thread(t)
    info = run.prog.by_name[e.req.name]
    with run:
        out = _handle(run, t, info, e, input)
    end_waits(run, t, e)
    t.status = RESUMING
    t.cur_callback = info.name
    t.pc += 1
    state.pc += 1
    state.status = WORKFLOW_RESUMING
    return out


def _handle(run: Run, t: Thread, info: StatementInfo, e: WaitEvent, input: Any) -> object:
    """Call the handler of event ``e`` (if it has one) with ``input``; give its output."""
    handler = run.node(info).handler
    if handler is None:
        if input is not None:
            raise no_payload(run.state, t.id, info.name, input)
        return None
    if info.kind == K_TIMEOUT or info.lifecycle:
        return call_handler(run, t, info, handler.handle, e.req, input)
    takes, payload = structure_input(handler, input, run.state, t.id, info.name)
    return call_handler(run, t, info, handler, *((payload,) if takes else ()))


def find_event(
    req: CallbackRequest, state: State, prog: Program | None = None
) -> tuple[Thread, WaitEvent]:
    """The waiting thread and event that ``req`` is for; refuses with a precise error.

    Raises:
        CallbackNotFound: no thread (or not ``req.thread_id``) waits for it now.
        AmbiguousCallback: several threads wait for it and ``req.thread_id`` is empty.
        StaleCallback: ``req.pc`` belongs to an earlier wait.
    """
    name = req.name
    threads = [_named_thread(req, state)] if req.thread_id else state.threads
    candidates = [
        (t, e)
        for t in threads
        if t.status is WAITING_EVENT
        for e in t.wait_events
        if e.req.name == name and e.status in ACTIVE
    ]
    if not candidates:
        raise _not_awaited(req, state, threads, prog)
    if len(candidates) > 1:
        raise _ambiguous(req, state, candidates)
    t, e = candidates[0]
    if req.pc and req.pc != e.req.pc:
        raise _stale(req, state, t, e)
    return t, e


def _named_thread(req: CallbackRequest, state: State) -> Thread:
    """The thread ``req.thread_id`` names, or a CallbackNotFound listing the threads."""
    found = state.thread(req.thread_id)
    if found is None:
        raise CallbackNotFound(
            f"workflow {state.id!r} ({state.workflow}) has no thread {req.thread_id!r}; its "
            f"threads are {', '.join(repr(x.id) for x in state.threads) or 'none'}",
            workflow_id=state.id,
            thread=req.thread_id,
            event=req.name,
            waiting_for=waiting_for(state),
        )
    return found


def _not_awaited(
    req: CallbackRequest, state: State, threads: list[Thread], prog: Program | None
) -> CallbackNotFound:
    """No thread of ``threads`` waits for ``req``: say what they wait for instead."""
    name = req.name
    if req.thread_id:
        where, it = f"thread {req.thread_id!r} is not", "it waits"
    else:
        where, it = "no thread", "the workflow waits"
    waiting = awaited(threads)
    listing = ", ".join(map(repr, waiting)) if waiting else "no event at all"
    known = prog.by_name.get(name) if prog is not None else None
    if known is not None and known.kind in EVENT_KINDS:
        # The event exists; it is just not awaited now: say so rather than suggest another.
        hint = (
            f" {name!r} is an event of this workflow (a case of {known.parent.label}), "
            f"but no thread waits there now."
        )
    else:
        hint = did_you_mean(suggest(name, waiting))
    return CallbackNotFound(
        f"workflow {state.id!r} ({state.workflow}): {where} waiting for event "
        f"{name!r}; {it} for {listing}.{hint}",
        workflow_id=state.id,
        thread=req.thread_id,
        event=name,
        waiting_for=waiting,
    )


def _ambiguous(
    req: CallbackRequest, state: State, candidates: list[tuple[Thread, WaitEvent]]
) -> AmbiguousCallback:
    ids = [t.id for t, _ in candidates]
    return AmbiguousCallback(
        f"workflow {state.id!r} ({state.workflow}): threads {', '.join(map(repr, ids))} all "
        f"wait for event {req.name!r}; say which one with thread_id",
        workflow_id=state.id,
        event=req.name,
        threads=ids,
    )


def _stale(req: CallbackRequest, state: State, t: Thread, e: WaitEvent) -> StaleCallback:
    return StaleCallback(
        f"workflow {state.id!r} ({state.workflow}): event {req.name!r} for thread {t.id!r} "
        f"carries pc {req.pc}, but the wait that expects it began at pc {e.req.pc}; the "
        f"callback belongs to an earlier wait (an old timer or a retried delivery) and was "
        f"ignored",
        workflow_id=state.id,
        thread=t.id,
        event=req.name,
        expected_pc=e.req.pc,
        got_pc=req.pc,
    )
