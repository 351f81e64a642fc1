"""State objects: new_state, lookups, equality field by field."""

from __future__ import annotations

from gorch import MAIN_THREAD, State, ThreadStatus, WorkflowStatus, new_state


def test_new_state_has_a_main_thread_about_to_start() -> None:
    state = new_state("order-1", "pizza")
    assert (state.id, state.workflow, state.status, state.pc) == (
        "order-1", "pizza", WorkflowStatus.RESUMING, 0,
    )  # fmt: skip
    [main] = state.threads
    assert (main.id, main.name, main.status, main.cur_step) == (
        MAIN_THREAD, MAIN_THREAD, ThreadStatus.RESUMING, "",
    )  # fmt: skip


def test_states_compare_field_by_field() -> None:
    assert new_state("a", "w") == new_state("a", "w")
    other = new_state("a", "w")
    other.threads[0].pc = 1
    assert new_state("a", "w") != other
    assert State("a", "w") != new_state("a", "w")


def test_thread_lookup() -> None:
    state = new_state("a", "w")
    assert state.thread(MAIN_THREAD) is state.threads[0]
    assert state.thread("nope") is None
