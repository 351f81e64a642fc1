"""The pure interpreter: resume, handle_callback, goto, validate.

It advances a :class:`~gorch.state.State` through a workflow's definition until every thread
is blocked. It does no I/O and reads no clock itself (a ``Timeout`` reads gorch's one clock
when its wait begins); everything durable is the caller's job, through the ``checkpoint``
function that ``resume`` calls after every change worth saving.

How it runs, and why it is fast, is told where it happens:

- ``_index``: the compiled index of a definition (positions, parent links, a name index), so a
  step's cost does not grow with the size of the definition.
- ``_compile``: compiling a definition into its index once per class, with one check per kind of
  statement; ``_validate``: every rule a class or a tree breaks, raised once.
- ``_context``: what running user code may know (:func:`context`), the host that lends it
  services and attempts, and running the coroutines of ``async def`` code.
- ``_handlers``: telling handlers apart, reading a function handler's payload type, calling it.
- ``_run``: one call's view of a workflow, why ``definition()`` is called again and when, and
  the units of work (advance, execute a step, pass a ``WaitFor``); ``_waits``: the events of a
  wait (made, set up, ended, torn down); ``_status``: the statuses as module constants.
- ``_resume``: the step loop (:func:`resume`) and the load-resume-save call (:func:`run`).
- ``_callbacks``: delivering an event (:func:`handle_callback`); ``_goto``: moving a stuck
  thread (:func:`goto`); ``_cancel``: ending every wait (:func:`cancel`).
- ``_evolve``: a definition that changes under running instances: renames, data versions, and
  where a stored thread no longer fits the code (:func:`misfits`, for ``gorch check``).
- ``_personal``: the personal data a class declares, and the neutral values that erase it.
"""

from __future__ import annotations

from gorch.errors import GotoError
from gorch.interpreter._callbacks import awaited, handle_callback, waiting_for
from gorch.interpreter._cancel import cancel
from gorch.interpreter._compile import find_statement, program
from gorch.interpreter._context import Host, StepContext, context, run_coroutine
from gorch.interpreter._evolve import (
    Misfit,
    apply_renames,
    data_version_of,
    misfits,
    renames_of,
)
from gorch.interpreter._goto import GotoPlan, goto
from gorch.interpreter._handlers import ANY, NO_PAYLOAD, is_lifecycle, payload_type
from gorch.interpreter._index import Program, StatementInfo
from gorch.interpreter._personal import neutral_values, personal_data_of
from gorch.interpreter._resume import DEFAULT_MAX_STEPS, Outcome, resume, run
from gorch.interpreter._validate import (
    child_workflows,
    class_problems,
    transactional_steps,
    validate,
)

__all__ = [
    "ANY",
    "DEFAULT_MAX_STEPS",
    "NO_PAYLOAD",
    "GotoError",
    "GotoPlan",
    "Host",
    "Misfit",
    "Outcome",
    "Program",
    "StatementInfo",
    "StepContext",
    "apply_renames",
    "awaited",
    "cancel",
    "child_workflows",
    "class_problems",
    "context",
    "data_version_of",
    "find_statement",
    "goto",
    "handle_callback",
    "is_lifecycle",
    "misfits",
    "neutral_values",
    "payload_type",
    "personal_data_of",
    "program",
    "renames_of",
    "resume",
    "run",
    "run_coroutine",
    "transactional_steps",
    "validate",
    "waiting_for",
]
