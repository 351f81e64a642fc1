"""The engine's explaining call: :meth:`Explaining.why`, why an instance is where it is.

It reads the row (status, retry count, last error, lease), the instance (:meth:`get`), where
its threads wait and since when (:meth:`waits`), and the statements they stand at, and puts the
facts in an :class:`~gorch.engine._explanation.Explanation`. It writes nothing and runs no
step or handler; it calls ``definition()`` (as every resume does) for what the events take and
what a ``WaitFor``'s condition is worth now.
"""

from __future__ import annotations

import shlex
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from attrs import evolve

from gorch import clock
from gorch.dsl import K_ON, K_STEP, K_TIMEOUT, K_WAIT, K_WAITFOR
from gorch.engine._conditions import condition
from gorch.engine._core import EngineCore
from gorch.engine._explanation import (
    AcceptedEvent,
    DueTimer,
    Explanation,
    SuggestedCommand,
    ThreadExplanation,
)
from gorch.engine._records import OPERATOR_STATUSES, Instance, RunStatus, ThreadWait
from gorch.errors import GorchError
from gorch.interpreter import ANY, NO_PAYLOAD, Program, find_statement, is_lifecycle
from gorch.interpreter import payload_type as handler_payload
from gorch.interpreter import program as compiled
from gorch.state import EventStatus, Thread, ThreadStatus

_STANDS_AT = (K_STEP, K_WAIT, K_WAITFOR)  # what goto can move a thread to
_OPEN = (EventStatus.PENDING_SETUP, EventStatus.SETUP, EventStatus.SETUP_ERROR)
# the history entry that gave each settled status, for "since when"
_STATUS_ENTRY = {
    RunStatus.FAILED: "failed",
    RunStatus.PAUSED: "paused",
    RunStatus.CANCELLED: "cancelled",
    RunStatus.FINISHED: "finished",
}


class Explaining(EngineCore):
    """:class:`~gorch.engine.Engine`'s explaining call."""

    if TYPE_CHECKING:  # Reading's, which Engine joins beside this class

        def waits(self, id: str | Instance) -> list[ThreadWait]: ...

    def why(self, id: str) -> Explanation:
        """Why instance ``id`` is where it is: its status and why, where each thread waits and
        since when, the events it would accept (their payload type, who may send them, and how:
        the HTTP request and the ``gorch send`` command), its timers and whether they are
        overdue, a ``WaitFor``'s condition (its source text, the values it reads and whether it
        holds now), the last error and the next retry, the lease and its holder, and what an
        operator can do next, as commands to type. ``str()`` of the result is all that in plain
        words. Changes nothing.

        Raises:
            NotFoundError: no instance has this id (InputError: the id is not a valid one).
        """
        row = self._row(id)
        inst = self._instance(row, timers=True, tolerant=True)
        now = clock.now()
        prog = None if inst.load_error else _program(inst.data)
        threads = () if prog is None else tuple(
            _thread(inst, prog, w, now) for w in self.waits(inst)
        )  # fmt: skip
        step = _failing_step(inst.state.threads) if inst.attempts else ""
        live = row.lease_expires is not None and row.lease_expires > now
        draft = Explanation(
            id=inst.id,
            workflow=inst.workflow,
            status=inst.status,
            reason="",
            now=now,
            status_since=self._status_since(inst),
            threads=threads,
            attempts=inst.attempts,
            max_attempts=self.policy(inst.data, step).max_attempts if step and prog else 0,
            last_error=inst.last_error,
            next_attempt_at=inst.next_attempt_at,
            lease_owner=row.lease_owner,
            lease_expires=row.lease_expires,
            lease_live=live and row.lease_owner is not None,
            load_error=inst.load_error,
        )
        return _finish(draft, step)

    def _status_since(self, inst: Instance) -> datetime | None:
        """When the instance got a settled status (failed, paused, ...), from its history."""
        kind = _STATUS_ENTRY.get(inst.status)
        if kind is None:
            return None
        for h in self.store.history(inst.id, limit=50, newest_first=True):
            if h.kind == kind:
                return h.at
        return None


def _program(wf: Any) -> Program | None:
    try:
        return compiled(wf)[0]
    except GorchError:  # the class's definition broke since: the row's reason says more
        return None


def _failing_step(threads: list[Thread]) -> str:
    """The step the instance's retry count is about: the one an executing thread is at."""
    for t in threads:
        if t.status is ThreadStatus.EXECUTING:
            return t.cur_step
    return ""


def _thread(inst: Instance, prog: Program, w: ThreadWait, now: datetime) -> ThreadExplanation:
    """One thread, explained."""
    info = prog.by_name.get(w.at)
    t = inst.state.thread(w.thread)
    events: tuple[AcceptedEvent, ...] = ()
    if t is not None and t.status is ThreadStatus.WAITING_EVENT:
        events = tuple(_events(inst, prog, t))
    cond = None
    if w.status == ThreadStatus.WAITING_CONDITION and info is not None:
        cond = condition(inst.data, w.at)
    targets = tuple(
        i.name
        for i in sorted(prog.by_name.values(), key=lambda i: i.path)
        if i.kind in _STANDS_AT and i.thread == w.name
    )
    return ThreadExplanation(
        thread=w.thread,
        name=w.name,
        status=w.status,
        at=w.at,
        kind=info.cls.__name__ if info is not None else "",
        since=w.since,
        events=events,
        timers=tuple(DueTimer(tm.name, tm.due_at, tm.due_at <= now) for tm in w.timers),
        condition=cond,
        goto_targets=targets,
    )


def _events(inst: Instance, prog: Program, t: Thread) -> list[AcceptedEvent]:
    """The events thread ``t`` would accept (not its Timeouts: they are its timers)."""
    out = []
    for e in t.wait_events:
        info = prog.by_name.get(e.req.name)
        if e.status not in _OPEN or info is None or info.kind == K_TIMEOUT:
            continue
        if e.type in ("child", "instance"):
            continue  # the engine delivers it (a child's end, another instance's move)
        node = _statement(inst.data, e.req.name)
        roles = tuple(node.roles) if node is not None and node._kind == K_ON else ()
        payload = _payload(node.handler) if node is not None else "any JSON"
        name = e.req.name
        send = ["gorch", "send", inst.id, name] + ([] if payload == "none" else ["PAYLOAD"])
        out.append(
            AcceptedEvent(
                name=name,
                wait=t.cur_step,
                payload=payload,
                roles=roles,
                http=f"POST /instances/{quote(inst.id, safe='')}/events/{quote(name, safe='')}",
                command=shlex.join(send).replace("'PAYLOAD'", "PAYLOAD"),
                setup_error=e.error if e.status is EventStatus.SETUP_ERROR else "",
            )
        )
    return out


def _statement(wf: Any, name: str) -> Any:
    try:
        return find_statement(wf, name)
    except Exception:  # definition() is user code; the names are known from the program
        return None


def _payload(handler: Any) -> str:
    """An event handler's payload type, as a name."""
    if handler is None:
        return "none"
    if is_lifecycle(handler):
        return "any JSON"
    kind = handler_payload(handler)
    if kind is NO_PAYLOAD:
        return "none"
    if kind is ANY:
        return "any JSON"
    return kind.__name__ if isinstance(kind, type) else str(kind).replace("typing.", "")


def _finish(e: Explanation, step: str) -> Explanation:
    """The explanation with its reason and the commands an operator can type next."""
    return evolve(e, reason=_reason(e, step), commands=tuple(_commands(e, step)))


def _reason(e: Explanation, step: str) -> str:
    """Why the instance has its status, in one sentence."""
    s = e.status
    if e.load_error:
        return f"its stored row does not load with the code deployed now: {e.load_error}"
    if s is RunStatus.WAITING:
        return "every thread waits for an event, a timer or a condition"
    if s is RunStatus.RUNNING:
        if e.lease_live:
            return f"a process is working on it now ({e.lease_owner} holds its lease)"
        if step and e.attempts:
            return f"its step {step!r} failed and waits for a worker to retry it"
        return "it has work to do (a step to run) and waits for a worker to pick it up"
    if s is RunStatus.FAILED:
        if step and e.attempts:
            return (
                f"its step {step!r} failed {_times(e.attempts)}, past its retry policy (at "
                f"most {_times(e.max_attempts)}): it waits for an operator"
            )
        return "the engine gave up on it (see the last error): it waits for an operator"
    if s is RunStatus.PAUSED:
        return "an operator paused it: it accepts no event and fires no timer until unpaused"
    if s is RunStatus.CANCELLED:
        return (
            "an operator cancelled it: nothing more runs (its threads are kept where they "
            "were, for inspection)"
        )
    return "its main thread returned: nothing more runs"


def _times(n: int) -> str:
    return "once" if n == 1 else f"{n} times"


def _commands(e: Explanation, step: str) -> list[SuggestedCommand]:
    """What an operator can do next, in the order one would try them."""
    q = shlex.quote(e.id)
    out: list[SuggestedCommand] = []
    s = e.status

    def add(action: str, command: str, what: str) -> None:
        if s in OPERATOR_STATUSES[action]:
            out.append(SuggestedCommand(command, what))

    if _needs_worker(e):
        out.append(SuggestedCommand("gorch worker", "run a worker: it runs what is due"))
    add("unpause", f"gorch unpause {q}", "let it go on (due timers fire next)")
    doing = f" {step!r}" if step else ""
    add("retry", f"gorch retry {q}", f"run its failed step{doing} again now")
    for t in e.threads:
        if t.goto_targets:
            opt = "" if t.thread == "_main_" else f" --thread {shlex.quote(t.thread)}"
            names = ", ".join(map(repr, t.goto_targets))
            what = f"move thread {t.thread} to NAME (shows the plan first), one of: {names}"
            add("goto", f"gorch goto {q} NAME{opt}", what)
    if s is not RunStatus.PAUSED:
        add("pause", f"gorch pause {q}", "stop it: no event is accepted, no timer fires")
    add("cancel", f"gorch cancel {q}", "end it for good: its waits are torn down")
    out.append(SuggestedCommand(f"gorch history {q}", "what it did, oldest first"))
    return out


def _needs_worker(e: Explanation) -> bool:
    """Something is due that only a worker does: a step to run, a retry, a timer."""
    if e.status is RunStatus.RUNNING and not e.lease_live:
        return e.next_attempt_at is None or e.next_attempt_at <= e.now
    if e.status is RunStatus.WAITING:
        return any(tm.overdue for t in e.threads for tm in t.timers)
    return False
