"""Instances, history, waits and the change feed as plain JSON data: one shape for every face
(HTTP, CLI, the console)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import attrs

from gorch import clock, serde
from gorch.engine import Change, Explanation, HistoryEntry, Instance, RunningStep, ThreadWait
from gorch.interpreter import GotoPlan, awaited
from gorch.store.base import TimerRecord

__all__ = ["change", "goto_plan", "history", "instance", "summary", "time", "wait", "why"]


def time(at: datetime | None) -> str | None:
    return None if at is None else clock.format_time(at)


def timer(t: TimerRecord) -> dict[str, Any]:
    return {"thread": t.thread_id, "name": t.name, "due_at": time(t.due_at)}


def summary(inst: Instance) -> dict[str, Any]:
    return {
        "id": inst.id,
        "workflow": inst.workflow,
        "status": inst.status.value,
        "created_at": time(inst.created_at),
        "updated_at": time(inst.updated_at),
        "version": inst.version,
        "waiting_for": inst.waiting_for(),
        "last_error": inst.last_error,
        "load_error": inst.load_error,
    }


def instance(inst: Instance) -> dict[str, Any]:
    out = summary(inst)
    out["attempts"] = inst.attempts
    out["next_attempt_at"] = time(inst.next_attempt_at)
    out["threads"] = [
        {"id": t.id, "name": t.name, "status": t.status.value, "at": t.cur_step,
         "events": awaited([t])}
        for t in inst.state.threads
    ]  # fmt: skip
    out["timers"] = [timer(t) for t in inst.timers]
    out["running"] = running(inst.running)
    out["data"] = serde.unstructure(inst.data)
    out["state"] = serde.unstructure(inst.state)
    out["at_statements"] = list(inst.at_statements)
    out["parent"] = inst.parent
    out["children"] = list(inst.children)
    return out


def running(r: RunningStep | None) -> dict[str, Any] | None:
    """The step a process runs now (None: none reported)."""
    if r is None:
        return None
    return {
        "thread": r.thread,
        "statement": r.statement,
        "attempt": r.attempt,
        "since": time(r.started_at),
        "heartbeat_at": time(r.heartbeat_at),
        "details": r.details,
        "owner": r.owner,
    }


def history(h: HistoryEntry) -> dict[str, Any]:
    return {
        "seq": h.seq,
        "at": time(h.at),
        "kind": h.kind,
        "name": h.name,
        "thread": h.thread,
        "input": h.input,
        "output": h.output,
        "error": h.error,
        "note": h.note,
        "actor": h.actor,
        "reason": h.reason,
    }


def wait(w: ThreadWait) -> dict[str, Any]:
    return {
        "thread": w.thread,
        "name": w.name,
        "status": w.status,
        "at": w.at,
        "events": w.events,
        "since": time(w.since),
        "timers": [timer(t) for t in w.timers],
    }


def change(c: Change) -> dict[str, Any]:
    """One entry of the change feed (``GET /changes``, the stream's ``data``)."""
    return {
        "seq": c.seq,
        "at": time(c.at),
        "instance": c.instance,
        "workflow": c.workflow,
        "status": c.status.value,
        "at_statements": list(c.at_statements),
    }


def goto_plan(id: str, plan: GotoPlan) -> dict[str, Any]:
    return {
        "instance": id,
        "thread": plan.thread,
        "from_status": plan.from_status.value,
        "from_step": plan.from_step,
        "to_status": plan.to_status.value,
        "to_step": plan.to_step,
        "teardown": plan.teardown,
        "setup": plan.setup,
        "applied": plan.applied,
        "description": plan.describe(),
    }


def why(e: Explanation) -> dict[str, Any]:
    """An :class:`~gorch.engine.Explanation` as JSON data: its fields, times as ISO-8601 UTC
    text, and ``text``, the explanation in plain words."""

    def value(_: Any, __: Any, v: Any) -> Any:
        if isinstance(v, datetime):
            return time(v)
        return list(v) if isinstance(v, tuple) else v  # JSON's arrays, as orjson writes them

    out = attrs.asdict(e, value_serializer=value)
    for t in out["threads"]:
        if t["condition"] is not None:
            t["condition"]["values"] = dict(t["condition"]["values"])
    out["text"] = str(e)
    return out
