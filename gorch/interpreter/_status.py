"""The statuses and checkpoint reasons the interpreter uses, as plain module constants.

The step loop tests and sets statuses at every unit. A module constant is read faster than an
enum's attribute (on Python 3.11, ``WorkflowStatus.RESUMING`` costs about 900 machine
instructions more than a global: a whole run of bench.interpreter's gorchestrate scenario sets
and tests such values about twenty times), and a frozenset answers "one of these" in one test.
"""

from __future__ import annotations

from gorch.state import CheckpointType, EventStatus, ThreadStatus, WorkflowStatus

WORKFLOW_RESUMING = WorkflowStatus.RESUMING
WORKFLOW_WAITING = WorkflowStatus.WAITING
WORKFLOW_FINISHED = WorkflowStatus.FINISHED

EXECUTING = ThreadStatus.EXECUTING
RESUMING = ThreadStatus.RESUMING
WAITING_EVENT = ThreadStatus.WAITING_EVENT
WAITING_CONDITION = ThreadStatus.WAITING_CONDITION

PENDING_SETUP = EventStatus.PENDING_SETUP
SETUP = EventStatus.SETUP
SETUP_ERROR = EventStatus.SETUP_ERROR
PENDING_TEARDOWN = EventStatus.PENDING_TEARDOWN
TEARDOWN_ERROR = EventStatus.TEARDOWN_ERROR
ACTIVE = frozenset((PENDING_SETUP, SETUP, SETUP_ERROR))
"""An event of a wait that has not ended: it can still arrive."""
TEARING_DOWN = frozenset((PENDING_TEARDOWN, TEARDOWN_ERROR))
"""An event of a wait that ended, whose teardown is still to run."""

# Why resume calls its checkpoint (each named where a unit of work completes).
AFTER_STEP = CheckpointType.AFTER_STEP
AFTER_CONDITION = CheckpointType.AFTER_CONDITION
AFTER_RESUME = CheckpointType.AFTER_RESUME
AFTER_SETUP = CheckpointType.AFTER_SETUP
AFTER_TEARDOWN = CheckpointType.AFTER_TEARDOWN
