"""The public surface: what `gorch` exports is a contract (docs/architecture.md, "The public
surface")."""

from __future__ import annotations

import subprocess
import sys

import gorch

# Names that tests outside this repository rely on. Removing one is a breaking change.
CONTRACT = {
    # section 1: the DSL
    "S", "Step", "If", "Switch", "Case", "Default", "For", "Break", "Continue", "Return",
    "Wait", "On", "Timeout", "WaitFor", "Go", "Handler",
    # section 2: state and interpreter
    "new_state", "resume", "handle_callback", "goto", "validate", "CallbackRequest",
    "WorkflowStatus", "ThreadStatus", "EventStatus", "CheckpointType", "MAIN_THREAD",
    "State", "Thread", "WaitEvent", "dumps", "loads",
    "GorchError", "DefinitionError", "StepError", "CallbackNotFound", "StaleCallback",
    "WorkflowFinishedError", "HandlerError", "InputError", "StepLimitExceeded",
}  # fmt: skip


def test_every_contract_name_is_exported() -> None:
    missing = sorted(n for n in CONTRACT if not hasattr(gorch, n))
    assert missing == []
    assert set(gorch.__all__) >= CONTRACT


# Names the engine, the store and the faces map errors with (issue: surviving the database).
ENGINE = {
    "Engine", "Worker", "RunStatus", "NotFoundError", "AlreadyExistsError", "ConflictError",
    "BusyError", "InstanceStatusError", "IdempotencyKeyError", "StoreUnavailableError",
}  # fmt: skip


def test_the_engine_names_are_exported() -> None:
    assert set(gorch.__all__) >= ENGINE
    err = gorch.StoreUnavailableError("down", outcome_unknown=True)
    assert isinstance(err, gorch.GorchError) and err.outcome_unknown is True
    assert gorch.StoreUnavailableError("down").outcome_unknown is False


def test_all_names_exist_once() -> None:
    """(ruff's RUF022 keeps __all__ sorted.)"""
    assert len(gorch.__all__) == len(set(gorch.__all__))
    for name in gorch.__all__:
        assert hasattr(gorch, name), name


def test_every_error_derives_from_gorch_error() -> None:
    errors = [getattr(gorch, n) for n in gorch.__all__ if n.endswith(("Error", "Callback"))]
    errors += [gorch.CallbackNotFound, gorch.StepLimitExceeded]
    for cls in errors:
        assert issubclass(cls, gorch.GorchError), cls


def test_status_values_are_the_documented_strings() -> None:
    assert [s.value for s in gorch.WorkflowStatus] == ["Resuming", "Waiting", "Finished"]
    assert [s.value for s in gorch.ThreadStatus] == [
        "Executing", "Resuming", "WaitingEvent", "WaitingCondition",
    ]  # fmt: skip
    assert [s.value for s in gorch.EventStatus] == [
        "PendingSetup", "Setup", "PendingTeardown", "SetupError", "TeardownError",
    ]  # fmt: skip
    assert [s.value for s in gorch.CheckpointType] == [
        "afterStep", "afterSetup", "afterTeardown", "afterResume", "afterCondition",
    ]  # fmt: skip
    assert gorch.MAIN_THREAD == "_main_"


def test_import_gorch_stays_light() -> None:
    """`import gorch` must not load a database driver, an ORM or a web framework."""
    code = (
        "import sys, gorch\n"
        "heavy = {'sqlalchemy', 'sqlmodel', 'psycopg', 'fastapi', 'starlette', 'uvicorn',"
        " 'pydantic', 'click', 'rich', 'pickle', 'prometheus_client', 'opentelemetry'}\n"
        "print(sorted(heavy & {m.split('.')[0] for m in sys.modules}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# The exact public surface of each public module: adding or removing a name is deliberate (edit
# here, and say so in docs/architecture.md's public surface).
SURFACE = {
    "gorch": {
        "AlreadyExistsError", "AmbiguousCallback", "Break", "BulkFailure", "BulkReport",
        "BusyError", "CallbackNotFound",
        "CallbackRequest", "Case", "CheckProblem", "CheckReport", "CheckpointType",
        "ConflictError", "Continue", "DataPlan", "Default", "DefinitionError", "Engine",
        "ErasureError", "EventStatus",
        "Explanation", "For", "Go", "GorchError", "GotoError", "GotoPlan", "Handler",
        "HandlerError", "HistoryEntry", "HistoryKind",
        "IdempotencyKeyError", "If", "InputError", "Instance", "InstanceStatusError", "Listener",
        "MAIN_THREAD", "MigrationError", "MigrationReport", "NotFoundError", "On", "Outcome",
        "Page", "RetryPolicy", "Return",
        "RunStatus", "S", "Section", "SerializationError", "StaleCallback", "State",
        "StateMismatchError", "Step", "StepError", "StepLimitExceeded", "Stmt", "StoreError",
        "StoreUnavailableError", "Switch", "Thread", "ThreadStatus", "ThreadWait", "Timeout",
        "UnreadableInstanceError", "Wait", "WaitEvent", "WaitFor", "Worker",
        "WorkflowFinishedError", "WorkflowStatus", "dumps", "goto", "handle_callback", "loads",
        "new_state", "resume", "run", "validate", "waiting_for",
        # steps that meet the world
        "AsyncEngine", "AsyncWorker", "NoContextError", "RunningStep", "StepContext",
        "StepTimeoutError", "context",
        # workflows that work together
        "Change", "ChangePage", "Child", "ChildResult", "OnInstance", "WaitTimeout",
        # schedules
        "Schedule",
    },
    "gorch.store": {
        "HistoryRecord", "InstanceRecord", "KeyRecord", "MemoryStore", "SQLStore", "StatusCount",
        "Store", "TimerRecord", "Write",
        "ChangeRecord", "MessageRecord", "WatchRecord",
        "ScheduleRecord",
    },
    "gorch.http": {
        "ADMIN", "Auth", "AuthError", "Caller", "MAX_BODY", "PROBLEM", "Problem", "create_app",
    },
    "gorch.testing": {"Harness", "REAL_TIME_MODULES", "START"},
    # The observability extras (gorch[metrics], gorch[tracing]); not re-exported by gorch.
    "gorch.metrics": {
        "DURATION_BUCKETS", "LAG_BUCKETS", "MetricsApp", "PrometheusMetrics", "StoreCollector",
    },
    "gorch.tracing": {"DETAIL_ATTRIBUTES", "Tracing"},
    "gorch.graph": {
        "Edge", "Graph", "Marks", "Node", "NodeKind", "build", "dot", "duration", "mermaid",
        "position", "render", "svg",
    },
}  # fmt: skip


def test_each_public_module_exports_exactly_its_surface() -> None:
    import importlib

    for name, expected in SURFACE.items():
        module = importlib.import_module(name)
        assert set(module.__all__) == expected, name
        assert len(module.__all__) == len(expected), f"{name}: a name is listed twice"
        missing = [n for n in expected if not hasattr(module, n)]
        assert missing == [], (name, missing)
