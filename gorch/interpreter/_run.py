"""One call's view of a workflow: its program, the current tree, its state; and the units of work.

Every public call (``resume``, ``handle_callback``, ``goto``, ``cancel``) makes a :class:`Run`:
the workflow object, its state, the class's compiled program and the tree ``definition()``
returned last.

Why ``definition()`` is called again, and when: conditions, ``Go`` ids and ``Timeout`` durations
are values read when ``definition()`` is called. :meth:`Run.node` calls it again only when it
needs such a value (``fresh``) and user code (a step or a handler) has run since the last call
(``stale``); actions and handlers are taken from whichever tree is at hand. So the *shape* of
the tree must not depend on the workflow's data (choose between statements with
``If``/``Switch``); every statement visited is checked against the index, and a changed shape
stops with a :class:`~gorch.errors.DefinitionError`.

Work happens in units, each applied to the state only when it completed: advancing a thread
through control flow to its next blocking point (:meth:`Run.advance`), running one step
(:meth:`Run.execute`), passing one ``WaitFor`` (:meth:`Run.pass_condition`), handling one
callback, one goto. Each unit adds one to the thread's and the state's ``pc``. A unit that
raises changes nothing. What a wait's events go through (setup, teardown) is in
:mod:`gorch.interpreter._waits`.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable
from typing import Any

from gorch.dsl import (
    K_BREAK,
    K_CASE,
    K_FOR,
    K_GO,
    K_IF,
    K_ON,
    K_RETURN,
    K_SECTION,
    K_STEP,
    K_SWITCH,
    K_TIMEOUT,
    K_WAIT,
    K_WAITFOR,
)
from gorch.errors import (
    DefinitionError,
    HandlerError,
    StateMismatchError,
    StepError,
    did_you_mean,
    suggest,
)
from gorch.interpreter._compile import program
from gorch.interpreter._context import CURRENT, DEFAULT_HOST, Host, call_limited
from gorch.interpreter._handlers import describe
from gorch.interpreter._index import EVENT_KINDS, KIND_NAMES, StatementInfo, checked_value
from gorch.interpreter._status import (
    ACTIVE,
    EXECUTING,
    RESUMING,
    TEARING_DOWN,
    WAITING_CONDITION,
    WAITING_EVENT,
    WORKFLOW_FINISHED,
)
from gorch.interpreter._waits import end_waits, new_events
from gorch.state import (
    MAIN_THREAD,
    CheckpointType,
    State,
    Thread,
    ThreadStatus,
    WaitEvent,
)

_time = time.time
_enter = CURRENT.set
_leave = CURRENT.reset
_is_coroutine = inspect.iscoroutine

Checkpoint = Callable[[CheckpointType], object]
# Called with the thread and the statement's name before user code with side effects runs: a
# step's action, a WaitFor's handler, a Handler's setup or teardown. The engine commits what is
# pending there, so no side effect ever runs ahead of the state it depends on.
Before = Callable[[Thread, str], object]

# What advancing a thread ends in.
BLOCKED, PASS, FINISHED = 0, 1, 2

STANDS_AT = {K_STEP: EXECUTING, K_WAIT: WAITING_EVENT, K_WAITFOR: WAITING_CONDITION}
"""The statements a thread can stand at, with the status it has there (or it resumes after
one of them)."""
# The other way round, for checking a thread: {status: (kinds it may stand at, their names)}.
POSITIONS: dict[ThreadStatus, tuple[tuple[int, ...], str]] = {
    status: ((kind,), KIND_NAMES[kind]) for kind, status in STANDS_AT.items()
}
POSITIONS[RESUMING] = (tuple(STANDS_AT), "Step, Wait or WaitFor")


class Run:
    """A workflow object, its state, its class's program and the tree at hand."""

    __slots__ = ("at", "before", "host", "prog", "stale", "state", "token", "tree", "wf")

    def __init__(
        self, wf: Any, state: State, before: Before | None = None, host: Host | None = None
    ) -> None:
        self.wf = wf
        self.state = state
        self.prog, self.tree = program(wf)
        self.stale = False
        self.before = before
        self.host = DEFAULT_HOST if host is None else host
        # What user code runs now, for gorch.context(): (thread, statement, role, started).
        self.at: tuple[Thread, str, str, float] | None = None

    def call(self, t: Thread, name: str, role: str, fn: Callable[..., Any], *args: Any) -> Any:
        """Call user code ``fn(*args)``, the ``role`` ("step", "handler", "setup", ...) of
        statement ``name`` in thread ``t``: :func:`gorch.context` answers inside it, and a
        coroutine it returns (``async def``) is run to its end by the host."""
        self.at = (t, name, role, _time())
        try:
            result = fn(*args)
            if result is not None and _is_coroutine(result):
                result = self.host.wait(result)
            return result
        finally:
            self.at = None

    def __enter__(self) -> Run:
        """Make this the run :func:`gorch.context` asks (for a public call's duration)."""
        self.token = _enter(self)
        return self

    def __exit__(self, *exc: object) -> None:
        _leave(self.token)

    def node(self, info: StatementInfo, fresh: bool = False) -> Any:
        """The statement at ``info`` in the current tree; a fresh tree if ``fresh`` and
        user code ran since the tree was built."""
        tree = self.tree
        if tree is None or (fresh and self.stale):
            tree = self.tree = self.wf.definition()
            self.stale = False
        n: Any = tree
        try:
            for i in info.path:
                n = n.kids[i]
        except (AttributeError, IndexError, TypeError):
            pass  # the shape changed on the way down: reported below
        if n.name != info.name or n.__class__ is not info.cls:
            raise DefinitionError(
                [
                    f"{type(self.wf).__name__}.definition() returned a tree of another shape than "
                    f"before: at {info.label} there is now {n!r}. The statements must not depend "
                    f"on the workflow's data; choose between them with If or Switch"
                ],
                workflow_id=self.state.id,
            )
        return n

    # -- checks ------------------------------------------------------------------------------

    def mismatch(self, t: Thread, what: str, name: str, expected: str) -> StateMismatchError:
        hint = did_you_mean(suggest(name, self.prog.by_name))
        return StateMismatchError(
            f"workflow {self.state.id!r} ({self.state.workflow}): thread {t.id!r} is at "
            f"{what} {name!r}, but {type(self.wf).__name__}.definition() has no {expected} "
            f"of that name in this thread's body.{hint} Nothing was run: deploy the code that "
            f"has it, or move the thread with goto.",
            workflow_id=self.state.id,
            thread=t.id,
            statement=name,
        )

    def check_thread(self, t: Thread) -> None:
        """Refuse a thread whose position the code no longer has."""
        by_name = self.prog.by_name
        if t.name != MAIN_THREAD:
            body = by_name.get(t.name)
            if body is None or body.kind != K_GO:
                raise self.mismatch(t, "thread body", t.name, "Go statement")
        step = t.cur_step
        if step:
            info = by_name.get(step)
            kinds, expected = POSITIONS[t.status]
            if info is None or info.kind not in kinds or info.thread != t.name:
                raise self.mismatch(t, "statement", step, expected)
            if t.cur_callback:
                event = by_name.get(t.cur_callback)
                if event is None or event.parent is not info:
                    raise self.mismatch(t, "event", t.cur_callback, f"event of Wait {step!r}")
        elif t.status is not RESUMING:
            raise self.mismatch(t, "statement", "", "statement")
        if t.wait_events:
            self.check_events(t)

    def check_events(self, t: Thread) -> None:
        """Refuse wait events the code no longer has, and pending ones of another Wait."""
        by_name = self.prog.by_name
        waiting = by_name.get(t.cur_step) if t.status is WAITING_EVENT else None
        for e in t.wait_events:
            event = by_name.get(e.req.name)
            if event is None or event.kind not in EVENT_KINDS:
                raise self.mismatch(t, "event", e.req.name, "On or Timeout")
            if waiting is not None and e.status in ACTIVE and event.parent is not waiting:
                raise self.mismatch(t, "event", e.req.name, f"event of Wait {t.cur_step!r}")

    # -- units of work -----------------------------------------------------------------------

    def execute(self, t: Thread) -> None:
        """Run the step ``t`` is at. On success the thread resumes after it."""
        info = self.prog.by_name[t.cur_step]
        node = self.node(info)
        action = node.action
        if self.before is not None:
            self.before(t, info.name)
        self.stale = True
        self.at = (t, info.name, "step", _time())  # call(), inlined: the hot path of a step
        try:
            if node.timeout is not None:
                call_limited(self, action, node.seconds())
            else:
                result = action()
                if result is not None and _is_coroutine(result):
                    self.host.wait(result)
        except Exception as exc:
            raise self.step_error(
                t,
                f"workflow {self.state.id!r} ({self.state.workflow}): step {t.cur_step!r} of "
                f"thread {t.id!r} failed: {describe(exc)}. The thread stays at the step; "
                f"resume again to retry it.",
            ) from exc
        finally:
            self.at = None
        t.status = RESUMING
        t.pc += 1
        self.state.pc += 1

    def step_error(self, t: Thread, message: str) -> StepError:
        """The step ``t`` is at did not complete (the thread stays there)."""
        return StepError(message, workflow_id=self.state.id, thread=t.id, statement=t.cur_step)

    def pass_condition(self, t: Thread) -> None:
        """The condition of the WaitFor ``t`` waits at holds: call its handler; the thread
        resumes after it."""
        info = self.prog.by_name[t.cur_step]
        handler = self.node(info).handler
        if handler is not None:
            if self.before is not None:
                self.before(t, info.name)
            self.stale = True
            try:
                self.call(t, info.name, "condition", handler)
            except Exception as exc:
                raise HandlerError(
                    f"workflow {self.state.id!r}: the handler of WaitFor {info.name!r} in "
                    f"thread {t.id!r} failed: {describe(exc)}. Nothing moved; resume again to "
                    f"retry it.",
                    workflow_id=self.state.id,
                    thread=t.id,
                    statement=info.name,
                    event=info.name,
                ) from exc
        t.status = RESUMING
        t.cur_step = info.name
        t.cur_callback = ""
        t.pc += 1
        self.state.pc += 1

    def advance(self, t: Thread) -> int:
        """Move ``t`` through control flow to its next blocking point, as one unit.

        Returns ``BLOCKED``; ``PASS`` when it reached a ``WaitFor`` whose condition holds
        (the caller passes it, as a unit of its own); or ``FINISHED`` when the main thread
        returned.
        """
        # The interpreter's step loop, kept whole on purpose (EXEMPT in
        # tests/test_architecture.py): it runs for every unit, and each statement it passes
        # costs one branch here. Split into a start, a walk, a climb out of a finished body and
        # an apply (a method each), it cost 3.8% more instructions on bench.interpreter's
        # run_loop_workflow (601.8k -> 624.8k per run) and 9% more on 100 sequential steps.
        prog = self.prog
        state = self.state
        by_name = prog.by_name
        cont: StatementInfo
        if not t.cur_step:
            cont = prog.root if t.name == MAIN_THREAD else by_name[t.name]
            i = 0
        elif t.cur_callback:
            cont = by_name[t.cur_callback]
            i = 0
        else:
            at = by_name[t.cur_step]
            cont = at.parent
            i = at.idx + 1
        spawned: list[Thread] = []
        turned: set[StatementInfo] = set()
        pc = t.pc + 1
        status = RESUMING
        step = ""
        events: list[WaitEvent] = []
        passes = False
        ended = False

        while True:
            kids = cont.kids
            if i < len(kids):
                s = kids[i]
                k = s.kind
                if k == K_STEP:
                    status, step = EXECUTING, s.name
                    break
                if k == K_WAIT:
                    status, step = WAITING_EVENT, s.name
                    events = new_events(self, s, t, pc)
                    break
                if k == K_SECTION:
                    cont, i = s, 0
                elif k == K_FOR:
                    if s in turned:
                        raise self.spin(t, s)
                    turned.add(s)
                    if self.node(s, True).cond:
                        cont, i = s, 0
                    else:
                        i += 1
                elif k in (K_IF, K_SWITCH):
                    for case in s.kids:
                        if self.node(case, True).cond:
                            cont, i = case, 0
                            break
                    else:
                        i += 1
                elif k == K_WAITFOR:
                    status, step = WAITING_CONDITION, s.name
                    passes = bool(self.node(s, True).cond)
                    break
                elif k == K_GO:
                    spawned.append(self.spawn(s, spawned))
                    i += 1
                elif k == K_RETURN:
                    ended = True
                    break
                elif k == K_BREAK:
                    loop = s.loop
                    cont, i = loop.parent, loop.idx + 1
                else:  # K_CONTINUE: the For statement runs again (condition re-read)
                    loop = s.loop
                    cont, i = loop.parent, loop.idx
            else:
                k = cont.kind
                if k == K_FOR:
                    # End of a turn: the For statement itself runs again (condition re-read).
                    cont, i = cont.parent, cont.idx
                elif k in (K_CASE, K_ON, K_TIMEOUT):
                    up = cont.parent
                    cont, i = up.parent, up.idx + 1
                elif k == K_SECTION and cont.parent is not None:
                    cont, i = cont.parent, cont.idx + 1
                else:  # the root section, or the body of a Go: the thread ends
                    ended = True
                    break

        # Apply the unit.
        t.pc = pc
        state.pc += 1
        if spawned:
            state.threads.extend(spawned)
        if ended:
            return FINISHED if self.end_thread(t) else BLOCKED
        t.status = status
        t.cur_step = step
        t.cur_callback = ""
        if events:
            t.wait_events.extend(events)
        return PASS if passes else BLOCKED

    def spawn(self, go: StatementInfo, spawned: list[Thread]) -> Thread:
        """The thread a ``Go`` starts (``spawned``: those this unit started already)."""
        gid = checked_value(self.node(go, True), go, self.state.id)
        if self.state.thread(gid) is not None or any(x.id == gid for x in spawned):
            raise DefinitionError(
                [
                    f"{go.label}: starts a thread with id {gid!r} while a thread with that id is "
                    f"still running; give Go an id= that differs for every thread it starts "
                    f"(for example from a loop counter)"
                ],
                workflow_id=self.state.id,
            )
        return Thread(id=gid, name=go.name, status=RESUMING)

    def spin(self, t: Thread, loop: StatementInfo) -> DefinitionError:
        return DefinitionError(
            [
                f"{loop.label}: a turn of the loop ran no Step and waited for nothing, so its "
                f"condition can never change and it would spin forever; add a Step or a Wait to "
                f"every path through the body (thread {t.id!r})"
            ],
            workflow_id=self.state.id,
        )

    def end_thread(self, t: Thread) -> bool:
        """Thread ``t`` ran off its body or returned. Returns whether the workflow finished."""
        state = self.state
        if t.id != MAIN_THREAD:
            leftovers = [e for e in t.wait_events if e.status in TEARING_DOWN]
            state.threads.remove(t)
            if leftovers:  # keep failed teardowns where later resumes retry them
                main = state.thread(MAIN_THREAD)
                if main is not None:
                    main.wait_events.extend(leftovers)
            return False
        # The main thread ended: the workflow is finished, every other thread stops.
        state.status = WORKFLOW_FINISHED
        for other in state.threads:
            end_waits(self, other)
        state.threads = [x for x in state.threads if x.wait_events]
        for x in state.threads:
            x.status = RESUMING
            x.cur_step = ""
            x.cur_callback = ""
        return True
