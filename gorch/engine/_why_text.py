"""An :class:`~gorch.engine._explanation.Explanation` in plain words: ``str(engine.why(id))``.

The text is for a person at a terminal: the status and why first, then the row's troubles
(the last error, the next retry, the lease), then each thread (where it waits and since when,
what it would accept and how to send it, its timers, its condition), then the commands to type
next. Times are UTC and measured from ``Explanation.now``, so one explanation always reads the
same; :func:`span` says "3 min ago" or "in 22 h".
"""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from gorch.engine._records import RunStatus
from gorch.state import ThreadStatus

if TYPE_CHECKING:
    from gorch.engine._explanation import Explanation, ThreadExplanation, WaitCondition

_WORKER = "is `gorch worker` running?"
_WIDTH = 96  # the commands' descriptions wrap here
_SETTLED = (RunStatus.FINISHED, RunStatus.CANCELLED)
_IS = {s: "is" for s in RunStatus} | {
    RunStatus.FAILED: "has",
    RunStatus.FINISHED: "has",
    RunStatus.CANCELLED: "was",
}


def render(e: Explanation) -> str:
    """The explanation as text, one fact a line."""
    lines = [f"{e.id} ({e.workflow}) {_IS[e.status]} {e.status.value}: {e.reason}."]
    if e.status_since is not None:
        lines.append(f"  {e.status.value} at {when(e.status_since, e.now)}")
    lines += _troubles(e)
    if e.status is not RunStatus.FINISHED:
        for t in e.threads:
            lines += ["", *_thread(e, t)]
    lines += ["", "what you can do:"]
    width = max(len(c.command) for c in e.commands) if e.commands else 0
    for c in e.commands:
        lines += textwrap.wrap(
            c.what,
            _WIDTH,
            initial_indent=f"  {c.command.ljust(width)}  ",
            subsequent_indent=" " * (width + 4),
            break_on_hyphens=False,
        )
    return "\n".join(lines) + "\n"


def _troubles(e: Explanation) -> list[str]:
    """The last error, the next retry and the lease, each with what it means."""
    out = []
    if e.load_error:
        out.append("  fix the code or the stored row; until then nothing can run it")
    if e.last_error:
        of = f" of {e.max_attempts}" if e.max_attempts else ""
        out.append(f"  last error (attempt {e.attempts}{of}): {e.last_error}")
    if e.next_attempt_at is not None and e.status is RunStatus.RUNNING:
        at = when(e.next_attempt_at, e.now)
        if e.next_attempt_at <= e.now:
            out.append(f"  next attempt was due {at}: a worker should run it; {_WORKER}")
        else:
            out.append(f"  next attempt {at}, by a worker")
    if e.lease_owner is not None and e.lease_expires is not None:
        until = when(e.lease_expires, e.now)
        if e.lease_live:
            out.append(
                f"  lease: held by {e.lease_owner} until {until}; it is running user code now, "
                f"and other calls wait for it"
            )
        else:
            out.append(
                f"  lease: {e.lease_owner}'s lease expired {until}; that process stopped "
                f"before it finished, and a worker takes the instance over"
            )
    return out


def _thread(e: Explanation, t: ThreadExplanation) -> list[str]:
    """One thread: where it is, since when, and what moves it on."""
    since = f", since {when(t.since, e.now)}" if t.since is not None else ""
    lines = [f"thread {t.thread} {_doing(e, t)}{since}"]
    if e.status not in _SETTLED:
        lines += _events(e, t)
        lines += [_timer(e, tm.name, tm.due_at, tm.overdue) for tm in t.timers]
    if t.condition is not None:
        lines += _condition(t.condition)
    return lines


def _doing(e: Explanation, t: ThreadExplanation) -> str:
    """What the thread does (or, in a finished or cancelled instance, did) at its statement."""
    where = f"{t.kind} {t.at!r}" if t.kind else repr(t.at)
    was = e.status in _SETTLED
    if t.status == ThreadStatus.EXECUTING and e.status is RunStatus.FAILED:
        return f"stopped at {where}, which failed"
    if t.status == ThreadStatus.EXECUTING:
        doing = f"{'was about to run' if was else 'is about to run'} {where}"
        if e.status is RunStatus.RUNNING and not e.lease_live and not e.attempts:
            doing += f" (a worker runs it; {_WORKER})"
        return doing
    if t.status == ThreadStatus.RESUMING:
        return f"goes on after {where}" if t.at else "has not started yet"
    return f"{'waited' if was else 'waits'} at {where}"


def _events(e: Explanation, t: ThreadExplanation) -> list[str]:
    """The events the thread would accept, each with how to send it."""
    if not t.events:
        return []
    lines = [f"  {_accepts(e.status)}:"]
    for ev in t.events:
        roles = f"; roles {', '.join(ev.roles)}" if ev.roles else ""
        lines.append(f"    {ev.name}: payload {ev.payload}{roles}")
        lines.append(f"      {ev.command}")
        lines.append(f"      {ev.http}")
        if ev.setup_error:
            lines.append(f"      its setup failed (retried by every resume): {ev.setup_error}")
    return lines


def _accepts(status: RunStatus) -> str:
    if status is RunStatus.PAUSED:
        return "once unpaused, it would accept"
    if status is RunStatus.FAILED:
        return "once repaired, it would accept (events are refused while it is failed)"
    return "it would accept"


def _timer(e: Explanation, name: str, due_at: datetime, overdue: bool) -> str:
    at = when(due_at, e.now)
    if e.status is RunStatus.PAUSED:
        return f"  timer {name!r} due {at}; it fires once unpaused"
    if overdue and e.status is RunStatus.WAITING:
        return f"  timer {name!r} was due {at}: a worker should fire it; {_WORKER}"
    return f"  timer {name!r} due {at}, fired by a worker"


def _condition(c: WaitCondition) -> list[str]:
    """A WaitFor's condition: its text, its description, its value, the values it reads."""
    if c.holds is None:
        value = ""
    else:
        value = " (it holds now: the next resume lets the thread on)" if c.holds else " (false now)"
    lines = [f"  until: {c.source}{value}" if c.source else f"  until its condition holds{value}"]
    if c.description:
        lines.append(f"  which means: {c.description}")
    for name, v in c.values:
        lines.append(f"    self.{name} = {v!r}")
    if c.note:
        lines.append(f"  ({c.note})")
    return lines


def when(at: datetime, now: datetime) -> str:
    """A time in UTC and how far from ``now``: ``2026-01-01 00:00:00 UTC (3 min ago)``."""
    return f"{at.astimezone(UTC).strftime('%Y-%m-%d %H:%M:%S')} UTC ({span(at, now)})"


def span(at: datetime, now: datetime) -> str:
    """How long ago (or how soon) ``at`` is: ``3 min ago``, ``in 1 h 30 min``, ``now``."""
    exact = (now - at).total_seconds()
    seconds = int(exact)
    if exact == 0:
        return "now"
    size = abs(seconds)
    if size == 0:
        text = "under 1 s"
    elif size < 60:
        text = f"{size} s"
    elif size < 3600:
        text = f"{size // 60} min"
    elif size < 86400:
        h, m = divmod(size // 60, 60)
        text = f"{h} h" + (f" {m} min" if m else "")
    else:
        d, h = divmod(size // 3600, 24)
        text = f"{d} d" + (f" {h} h" if h else "")
    return f"{text} ago" if exact > 0 else f"in {text}"
