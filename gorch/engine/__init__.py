"""The engine: durable workflow instances on a store, and the worker that moves them on.

:class:`Engine` starts instances, delivers events, and repairs, pauses, unpauses, cancels and
retries them. :class:`Worker` fires due timers, resumes runnable instances and retries failed
steps when their backoff is over.

How one instance is kept consistent (docs/engine.md, "What the engine guarantees"):

- Every change is one :meth:`Store.commit <gorch.store.Store.commit>`: the state, the data, the
  timers derived from the state, history rows and an idempotency key, in one transaction, and
  only if the instance's version is still the one read (otherwise nothing is written).
- Work that runs user code with side effects (a step, a ``WaitFor`` handler, a Handler's setup
  or teardown) first commits what is pending (the accepted event) together with a *lease* on the
  instance: ``lease_owner`` and ``lease_expires``. Every step is followed by its own commit (the
  checkpoint), which also renews the lease; the last commit releases it. A lease is taken and
  renewed in short transactions, so a step that takes seconds holds no database lock and never
  blocks other instances.
- Other callers do not start work on a leased instance: ``send`` (and the operator calls) wait
  up to ``busy_wait`` seconds for the lease to be released, then raise :class:`BusyError`
  having changed nothing. An expired lease (its holder crashed) is free to take; the holder's
  next commit then fails its version check, so two processes never both record progress.
- An event that needs no side effect before the next wait (the common case) costs one read and
  one commit. If the instance changed in between, the commit fails its version check, nothing
  was done outside memory, and ``send`` simply reads again and retries.
- A step that raises is recorded (error, attempt, next attempt time) and retried by a worker
  with the step's :class:`~gorch.retry.RetryPolicy`; past its last attempt the instance becomes
  ``FAILED``. A step is run at least once: if the process dies during it, a worker runs it again
  once the lease expires; a step whose checkpoint committed never runs again.

Where each part lives (private modules; everything public is imported from here):

- ``_records.py``: the vocabulary (RunStatus, HistoryKind, OPERATOR_STATUSES) and the records
  the calls return (Instance, Page, HistoryEntry, ThreadWait), and Listener.
- ``_engine.py``: Engine, joined from ``_reading.py`` (get, list, history, waits),
  ``_delivering.py`` (start, send, send_json), ``_operating.py`` (goto, pause, unpause,
  cancel, retry, refusal), ``_why.py`` (why), ``_check.py`` (check: the deploy check;
  CheckReport, CheckProblem), ``_migrate.py`` (migrate; MigrationReport), ``_data.py``
  (set_data; DataPlan) and ``_bulk.py`` (bulk; BulkReport, BulkFailure), on ``_core.py``
  (settings, reading a row, waiting for a lease).
- ``_audit.py``: the ``actor`` and ``reason`` every operator call takes, checked.
- ``_explanation.py``, ``_why_text.py``, ``_conditions.py``: what ``why`` returns (Explanation
  and its parts), the same in plain words, and a ``WaitFor``'s condition read from its source.
- ``_op.py``: one operation on one instance, and each commit it makes, by name.
- ``_rows.py``: a stored row, read (and the error for one that does not load).
- ``_cursors.py``, ``_keys.py``, ``_since.py``: page cursors, idempotency keys, and since when
  a thread waits.
- ``_claims.py`` and ``_worker.py``: what a worker claims and does with it, and its loop
  (Worker, WorkerHealth, backoff).
- ``_scheduling.py``: schedules (schedule, schedules, pause_schedule, resume_schedule,
  unschedule, fire_schedules; Schedule): cron ticks, each started once.
"""

from __future__ import annotations

from gorch.engine._async import AsyncEngine, AsyncWorker
from gorch.engine._bulk import BULK_ACTIONS, BulkFailure, BulkReport
from gorch.engine._check import PROBLEM_KINDS, CheckProblem, CheckReport
from gorch.engine._data import DataPlan
from gorch.engine._engine import Engine
from gorch.engine._explanation import (
    AcceptedEvent,
    DueTimer,
    Explanation,
    SuggestedCommand,
    ThreadExplanation,
    WaitCondition,
)
from gorch.engine._migrate import MigrationReport
from gorch.engine._records import (
    OPERATOR_STATUSES,
    Change,
    ChangePage,
    HistoryEntry,
    HistoryKind,
    Instance,
    Listener,
    Page,
    RunningStep,
    RunStatus,
    ThreadWait,
)
from gorch.engine._scheduling import Schedule
from gorch.engine._worker import Worker, WorkerHealth

__all__ = [
    "BULK_ACTIONS",
    "OPERATOR_STATUSES",
    "PROBLEM_KINDS",
    "AcceptedEvent",
    "AsyncEngine",
    "AsyncWorker",
    "BulkFailure",
    "BulkReport",
    "Change",
    "ChangePage",
    "CheckProblem",
    "CheckReport",
    "DataPlan",
    "DueTimer",
    "Engine",
    "Explanation",
    "HistoryEntry",
    "HistoryKind",
    "Instance",
    "Listener",
    "MigrationReport",
    "Page",
    "RunStatus",
    "RunningStep",
    "Schedule",
    "SuggestedCommand",
    "ThreadExplanation",
    "ThreadWait",
    "WaitCondition",
    "Worker",
    "WorkerHealth",
]
