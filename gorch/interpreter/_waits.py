"""The events of a wait: made when it begins, set up, ended, torn down.

A ``Wait`` begins with one event per ``On`` and ``Timeout`` (:func:`new_events`). Functions and
timeouts need no setup: their events are made already set up. A ``Handler``'s are set up when
every thread is blocked (:func:`setups`), and when the wait ends (:func:`end_waits`) they are
marked for teardown, which runs before anything else next (:func:`teardowns`). A setup or a
teardown that raises is kept on its event, with the error, and retried by every later resume.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gorch.dsl import K_TIMEOUT, Timeout
from gorch.interpreter._handlers import describe
from gorch.interpreter._index import EVENT_KINDS, StatementInfo, checked_value
from gorch.interpreter._status import (
    AFTER_SETUP,
    AFTER_TEARDOWN,
    PENDING_SETUP,
    PENDING_TEARDOWN,
    SETUP,
    SETUP_ERROR,
    TEARDOWN_ERROR,
    TEARING_DOWN,
)
from gorch.state import CallbackRequest, Thread, WaitEvent

if TYPE_CHECKING:
    from gorch.interpreter._run import Checkpoint, Run


def teardowns(run: Run, t: Thread) -> bool:
    """Tear down every wait event of ``t`` whose wait ended; keep failures for a retry.

    Returns whether anything changed (the caller checkpoints).
    """
    changed = False
    keep: list[WaitEvent] = []
    for e in t.wait_events:
        if e.status not in TEARING_DOWN:
            keep.append(e)
            continue
        changed = True
        info = run.prog.by_name[e.req.name]
        if run.before is not None:
            run.before(t, e.req.name)
        try:
            run.call(t, e.req.name, "teardown", run.node(info).handler.teardown, e.req, e.handled)
        except Exception as exc:
            e.status = TEARDOWN_ERROR
            e.error = describe(exc)
            keep.append(e)
    if changed:
        t.wait_events = keep
    return changed


def finish_teardowns(run: Run, checkpoint: Checkpoint | None) -> None:
    """The workflow finished: tear down what is left; keep only threads still holding
    failed teardowns, for a later resume to retry."""
    state = run.state
    changed = False
    for x in state.threads:
        changed = teardowns(run, x) or changed
    state.threads = [x for x in state.threads if x.wait_events]
    if changed and checkpoint is not None:
        checkpoint(AFTER_TEARDOWN)


def setups(run: Run, t: Thread, checkpoint: Checkpoint | None) -> None:
    """Set up every event of ``t``'s wait that is not set up yet; keep failures."""
    changed = False
    for e in t.wait_events:
        if e.status is not PENDING_SETUP and e.status is not SETUP_ERROR:
            continue
        changed = True
        if run.before is not None:
            run.before(t, e.req.name)
        try:
            handler = run.node(run.prog.by_name[e.req.name]).handler
            data = run.call(t, e.req.name, "setup", handler.setup, e.req)
        except Exception as exc:
            e.status = SETUP_ERROR
            e.error = describe(exc)
            continue
        e.req.setup_data = "" if data is None else str(data)
        e.status = SETUP
        e.error = ""
    if changed and checkpoint is not None:
        checkpoint(AFTER_SETUP)


def end_waits(run: Run, t: Thread, fired: WaitEvent | None = None) -> None:
    """The wait of ``t`` ended: mark its events for teardown (or drop the ones that need
    none: functions, timeouts, and events whose setup never succeeded)."""
    keep = []
    for e in t.wait_events:
        if e.status in TEARING_DOWN:
            keep.append(e)
        elif e.status is SETUP and run.prog.by_name[e.req.name].lifecycle:
            e.status = PENDING_TEARDOWN
            e.handled = e is fired
            keep.append(e)
    t.wait_events = keep


def known_events(run: Run, t: Thread) -> list[WaitEvent]:
    """The wait events of ``t`` that the code still has (the others cannot be torn down)."""
    by_name = run.prog.by_name
    return [
        e
        for e in t.wait_events
        if e.req.name in by_name and by_name[e.req.name].kind in EVENT_KINDS
    ]


def new_events(run: Run, wait: StatementInfo, t: Thread, pc: int) -> list[WaitEvent]:
    """The events of a wait that begins now, at ``pc``."""
    events = []
    wid = run.state.id
    for ev in wait.kids:
        req = CallbackRequest(wid, t.id, ev.name, pc, "")
        if ev.kind == K_TIMEOUT:
            node = run.node(ev, fresh=True)
            checked_value(node, ev, wid)
            req.setup_data = node.setup(req)
            events.append(WaitEvent(Timeout.type, req, SETUP))
        elif ev.lifecycle:
            h = run.node(ev).handler
            events.append(WaitEvent(getattr(h, "type", type(h).__name__), req))
        else:
            kind = "none" if run.node(ev).handler is None else "function"
            events.append(WaitEvent(kind, req, SETUP))
    return events
