"""What the test_interpreter*.py modules share: the Go suite's DumbHandler, a Handler that fails
on demand, and short ways to start a workflow, send it an event and check that nothing changed.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import gorch
from gorch import (
    MAIN_THREAD,
    CallbackRequest,
    State,
    Thread,
    WorkflowStatus,
    handle_callback,
    new_state,
    resume,
)

SETUP_DATA = '{"a":"b"}'


class DumbHandler:
    """The Go suite's DumbHandler: fixed setup data, a teardown that checks it, an echo handle.

    Every call is recorded in ``calls`` (a list owned by the workflow, since ``definition()``
    builds a new handler each time) as ``(method, event name, setup_data, extra)``.
    """

    type = "dumb"

    def __init__(self, f: Callable[[], object] | None = None, calls: list[Any] | None = None):
        self.f = f
        self.calls = calls if calls is not None else []

    def setup(self, req: CallbackRequest) -> str:
        self.calls.append(("setup", req.name, req.setup_data, req.pc))
        return SETUP_DATA

    def handle(self, req: CallbackRequest, input: Any) -> object:
        self.calls.append(("handle", req.name, req.setup_data, input))
        if self.f is not None:
            self.f()
        return input

    def teardown(self, req: CallbackRequest, handled: bool) -> None:
        self.calls.append(("teardown", req.name, req.setup_data, handled))
        if req.setup_data != SETUP_DATA:
            raise RuntimeError("Setup Or Teardown issue")


@dataclass
class Faults:
    """How many more times a FlakyHandler's setup / teardown fail, and what it was asked."""

    setup_failures: int = 0
    teardown_failures: int = 0
    calls: list[Any] = field(default_factory=list)


class FlakyHandler:
    """A Handler whose setup and teardown fail as long as ``faults`` says so."""

    type = "flaky"

    def __init__(self, faults: Faults) -> None:
        self.faults = faults

    def setup(self, req: CallbackRequest) -> str:
        self.faults.calls.append(("setup", req.name))
        if self.faults.setup_failures > 0:
            self.faults.setup_failures -= 1
            raise RuntimeError("mail server down")
        return "token"

    def handle(self, req: CallbackRequest, input: Any) -> object:
        self.faults.calls.append(("handle", req.name))
        return input

    def teardown(self, req: CallbackRequest, handled: bool) -> None:
        self.faults.calls.append(("teardown", req.name, handled))
        if self.faults.teardown_failures > 0:
            self.faults.teardown_failures -= 1
            raise RuntimeError("cannot release the token")


def start(wf: Any, workflow: str = "test") -> State:
    """A new state with id "1" (as in the Go suite), resumed once."""
    state = new_state("1", workflow)
    resume(wf, state)
    return state


def send(wf: Any, state: State, name: str, input: Any = None, **req: Any) -> object:
    """Deliver event ``name`` (with optional CallbackRequest fields) and return the output."""
    return handle_callback(CallbackRequest(name=name, **req), wf, state, input)


def snapshot(wf: Any, state: State) -> tuple[str, Any]:
    """What "changes nothing" compares: the state as JSON and a deep copy of the data."""
    return gorch.dumps(state), copy.deepcopy(wf)


def assert_unchanged(wf: Any, state: State, before: tuple[str, Any]) -> None:
    assert gorch.dumps(state) == before[0]
    assert wf == before[1]


def main_thread(state: State) -> Thread:
    t = state.thread(MAIN_THREAD)
    assert t is not None
    return t


def assert_finished(state: State) -> None:
    assert state.status is WorkflowStatus.FINISHED
    assert state.threads == []
