"""Since when each thread of an instance has been where it is (``ThreadWait.since``), from its
history.

A thread's time is that of its latest history entry (a step it ran, an event or timer it
received, a goto that moved it); for the main thread without one, the instance's start. A
thread a ``Go`` started that has done nothing yet has no entry of its own: it has been where it
is since the Go ran, which is found from the spawning thread's entries and the positions of the
statements in the definition (see :func:`spawned_at`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from gorch.dsl import K_GO
from gorch.engine._records import HistoryKind
from gorch.errors import GorchError
from gorch.interpreter import program
from gorch.state import MAIN_THREAD, State
from gorch.store.base import HistoryRecord

# history kinds after which a thread moves on
_MOVES = (HistoryKind.STEP, HistoryKind.EVENT, HistoryKind.TIMER, HistoryKind.GOTO)


def since(wf: Any, state: State, records: Sequence[HistoryRecord]) -> dict[str, datetime | None]:
    """Thread id -> when it began what it does now (None where the history cannot say), for
    every thread of ``state``; ``records`` is the instance's whole history, oldest first."""
    last: dict[str, datetime] = {}
    for h in records:
        if h.thread:
            last[h.thread] = h.at
        elif h.kind == HistoryKind.STARTED:
            last[MAIN_THREAD] = h.at
    return {
        t.id: last[t.id] if t.id in last else spawned_at(wf, t.name, records) for t in state.threads
    }


def spawned_at(wf: Any, go: str, records: Sequence[HistoryRecord]) -> datetime | None:
    """When the thread that the ``Go`` named ``go`` started has been where it is, for a thread
    with no history entry of its own; None if history cannot say.

    The Go ran right after the latest entry of the spawning thread for a statement before the
    Go in the definition (or right after the instance's start, or when the spawning thread
    itself was started), in the same run."""
    try:
        prog, _ = program(wf)
    except GorchError:
        return None
    for _ in range(100):  # up through Go statements nested in Go bodies
        info = prog.by_name.get(go)
        if info is None or info.kind != K_GO:
            return None
        body = info.thread  # the thread body the Go statement is part of
        for h in reversed(records):
            if h.kind == HistoryKind.STARTED and body == MAIN_THREAD:
                return h.at
            stmt = prog.by_name.get(h.name) if h.kind in _MOVES else None
            # The spawning thread moved on from this statement, before the Go in the body:
            # the Go ran right after it (a statement after the Go ran later).
            if stmt is not None and stmt.thread == body and stmt.path < info.path:
                return h.at
        if body == MAIN_THREAD:
            return None
        go = body  # the spawning thread did nothing before the Go: it ran when that one began
    return None
