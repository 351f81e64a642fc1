"""cancel: end every thread's wait for good, tearing down what its events set up.

The interpreter's half of ``Engine.cancel``: the threads stop where they stand (their positions
stay, for inspection), and nothing but the teardowns of their Handler events runs.
"""

from __future__ import annotations

from typing import Any

from gorch.interpreter._context import Host
from gorch.interpreter._run import Before, Run
from gorch.interpreter._status import TEARDOWN_ERROR
from gorch.interpreter._waits import end_waits, known_events, teardowns
from gorch.state import State, WaitEvent


def cancel(
    wf: Any, state: State, *, before: Before | None = None, host: Host | None = None
) -> list[WaitEvent]:
    """End every thread's wait for good, tearing down its Handler events (as goto does for one
    thread); nothing else runs. The threads keep their positions, for inspection.

    Events the code no longer has are dropped (they cannot be torn down). A teardown that
    raises is kept in the state with its error.

    Args:
        wf: the workflow object.
        state: the state; changed in place.
        before: as for :func:`resume`, called before each teardown.
        host: as for :func:`resume`.

    Returns:
        The wait events whose teardown failed (each with ``.error``).
    """
    run = Run(wf, state, before, host)
    failed = []
    with run:
        for t in state.threads:
            t.wait_events = known_events(run, t)
            end_waits(run, t)
            teardowns(run, t)
            failed += [e for e in t.wait_events if e.status is TEARDOWN_ERROR]
    return failed
