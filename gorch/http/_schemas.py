"""The documented shapes of requests and responses, and JSON Schemas of workflow types.

The models are named as the OpenAPI document shows them (``Instance``, ``Problem``, ...); they
are distinct from the gorch classes of the same names, so import this module qualified.

Responses are built as plain dicts and encoded with orjson (no per-request validation); these
pydantic models only describe them in the OpenAPI document. The schemathesis tests check that
every response matches.
"""

from __future__ import annotations

import copy
import functools
import logging
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import core_schema

from gorch.catalog import ANY, NO_PAYLOAD
from gorch.engine import RunStatus
from gorch.limits import MAX_BULK, MAX_REASON, MAX_TEXT
from gorch.state import MAIN_THREAD

log = logging.getLogger("gorch.http")

REF = "#/components/schemas/{model}"


class Problem(BaseModel):
    """An error, as RFC 9457 problem details."""

    model_config = ConfigDict(extra="allow")
    type: str = Field(description="URI of the problem type, e.g. urn:gorch:problem:not-found")
    title: str
    status: int
    detail: str = Field(description="what went wrong and what to do")
    instance: str | None = Field(None, description="the request path")
    error: str | None = Field(None, description="the gorch error class")
    instance_id: str | None = None
    errors: list[Any] | None = Field(None, description="one entry per problem in the input")
    waiting_for: list[str] | None = Field(None, description="the events the instance waits for")
    did_you_mean: list[str] | None = Field(
        None, description="the closest names or routes, for a path that does not exist"
    )
    outcome_unknown: bool | None = Field(
        None,
        description="the database connection broke while the change was committed: it may "
        "have been applied; repeat with the same Idempotency-Key",
    )
    field: str | None = Field(
        None, description="what of a stored instance does not load (state, data, status, ...)"
    )
    unhealthy: dict[str, str] | None = Field(
        None, description="GET /health: the unhealthy parts (store, worker), each with why"
    )
    instance_status: str | None = Field(
        None, description="the instance's status (a refusal for its status; a wait's timeout)"
    )
    at_statements: list[str] | None = Field(
        None, description="a wait's timeout: the statements the instance's threads wait at"
    )


class Timer(BaseModel):
    thread: str
    name: str
    due_at: datetime


class Thread(BaseModel):
    id: str
    name: str
    status: str = Field(description="Executing, Resuming, WaitingEvent or WaitingCondition")
    at: str = Field(description="the statement the thread is at")
    events: list[str]


class InstanceSummary(BaseModel):
    id: str
    workflow: str
    status: RunStatus
    created_at: datetime
    updated_at: datetime
    version: int
    waiting_for: list[str]
    last_error: str | None
    load_error: str | None = Field(
        None, description="why the stored row does not load (it is listed as it is); else null"
    )


class RunningStep(BaseModel):
    thread: str
    statement: str
    attempt: int = Field(description="which attempt this is (1: the first)")
    since: datetime = Field(description="when this attempt started")
    heartbeat_at: datetime = Field(description="when its process last reported it")
    details: Any = Field(description="what the step's last heartbeat said (null: nothing)")
    owner: str = Field(description="the lease owner running it")


class Instance(InstanceSummary):
    attempts: int
    next_attempt_at: datetime | None
    threads: list[Thread]
    timers: list[Timer]
    running: RunningStep | None = Field(
        None, description="a long step a process runs now, as it last reported (else null)"
    )
    data: Any = Field(description="the workflow's data")
    state: dict[str, Any] = Field(description="the interpreter's state")
    at_statements: list[str] = Field(
        description="the statements its threads wait at (a Wait, a WaitFor, a Child), sorted"
    )
    parent: str | None = Field(description="the instance whose Child started it, or null")
    children: list[str] = Field(
        description="the instances its Child statements started, oldest first"
    )


class InstancePage(BaseModel):
    items: list[InstanceSummary]
    next: str | None = Field(description="pass as cursor for the next page; null on the last")


class HistoryEntry(BaseModel):
    seq: int = Field(description="the entry's position in the instance's history, from 1")
    at: datetime
    kind: str
    name: str
    thread: str
    input: Any
    output: Any
    error: str | None
    note: str | None = Field(
        description="what is odd about the stored entry (an input or output that is not "
        "JSON, given as its text), or null"
    )
    actor: str | None = Field(
        description="who made the change an operator's entry records (the name of the token "
        "used over HTTP), or null"
    )
    reason: str | None = Field(description="why, as the operator said, or null")


class HistoryPage(BaseModel):
    items: list[HistoryEntry]
    next: str | None = Field(description="pass as cursor for the next page; null on the last")


class ThreadWait(BaseModel):
    thread: str
    name: str
    status: str
    at: str
    events: list[str]
    since: datetime | None
    timers: list[Timer]


class Why(BaseModel):
    """Why an instance is where it is (``Engine.why``): the facts, and ``text`` in plain words."""

    id: str
    workflow: str
    status: str
    reason: str
    now: datetime
    status_since: datetime | None
    threads: list[dict[str, Any]] = Field(
        description="each thread: where it is, since when, the events it accepts, its timers, "
        "a WaitFor's condition, where goto can move it"
    )
    attempts: int
    max_attempts: int | None
    last_error: str | None
    next_attempt_at: datetime | None
    lease_owner: str | None
    lease_expires: datetime | None
    lease_live: bool
    load_error: str | None
    commands: list[dict[str, Any]] = Field(description="what an operator can do next")
    text: str = Field(description="the explanation in plain words")


REASON = Field(
    None, max_length=MAX_REASON, description="why (kept in the history, with the token's name)"
)


class GotoRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    to: str = Field(min_length=1, max_length=MAX_TEXT, description="the statement to continue at")
    thread: str = Field(MAIN_THREAD, min_length=1, max_length=MAX_TEXT)
    dry_run: bool = Field(False, description="only say what would change")
    reason: str | None = REASON


class ActionRequest(BaseModel):
    """The optional body of pause, unpause, cancel and retry."""

    model_config = ConfigDict(extra="forbid")
    reason: str | None = REASON


class GotoPlan(BaseModel):
    instance: str
    thread: str
    from_status: str
    from_step: str
    to_status: str
    to_step: str
    teardown: list[str]
    setup: list[str]
    applied: bool
    description: list[str]


class DataPlan(BaseModel):
    instance: str
    workflow: str
    before: Any = Field(description="the data as JSON, before")
    after: Any = Field(description="the data as JSON, after (or as it would be)")
    changed: bool
    applied: bool = Field(description="false for a dry run, and when nothing changes")
    diff: list[str] = Field(description="a unified diff of the pretty-printed JSON")


class BulkRequest(BaseModel):
    """The filter and options of ``POST /instances/bulk/{action}``."""

    model_config = ConfigDict(extra="forbid")
    workflow: str | None = Field(None, min_length=1, max_length=MAX_TEXT)
    status: list[RunStatus] | None = Field(
        None, description="default: every status the action is allowed in"
    )
    at: str | None = Field(
        None, min_length=1, max_length=MAX_TEXT, description="a thread at this statement"
    )
    older_than: float | None = Field(
        None, ge=0, le=1e9, description="not changed for this many seconds"
    )
    to: str | None = Field(
        None, min_length=1, max_length=MAX_TEXT, description="goto's target statement"
    )
    thread: str = Field(MAIN_THREAD, min_length=1, max_length=MAX_TEXT)
    dry_run: bool = Field(False, description="only count and list a sample")
    limit: int = Field(
        MAX_BULK, ge=1, le=MAX_BULK, description="act on at most this many (more: say so)"
    )
    sample: int = Field(10, ge=0, le=MAX_BULK)
    reason: str | None = REASON


class BulkFailure(BaseModel):
    id: str
    error: str


class BulkReport(BaseModel):
    action: str
    run: str = Field(description="this bulk run's id, in each history entry's reason")
    dry_run: bool
    ok: bool
    matched: int
    changed: int
    failed: int
    failures: list[BulkFailure] = Field(description="the first 1000 failures")
    sample: list[str]
    more: bool = Field(description="more instances match than the limit: run it again")


class EventResult(BaseModel):
    instance: str
    event: str
    output: Any = Field(description="what the event's handler returned")


class EventInfo(BaseModel):
    name: str
    timeout: bool
    waits: list[str]
    roles: list[str]
    after_seconds: float | None
    payload: dict[str, Any] | None = Field(description="JSON Schema; null: no payload")
    output: dict[str, Any] = Field(description="JSON Schema of the handler's output")
    path: str | None = Field(description="the typed operation's path (not for timeouts)")


class Statement(BaseModel):
    name: str
    kind: str = Field(description="step, wait or waitfor")
    thread: str = Field(description="_main_, or the name of the Go whose thread runs it")


class Workflow(BaseModel):
    name: str
    doc: str
    start_roles: list[str]
    events: list[EventInfo]
    data: dict[str, Any] = Field(description="JSON Schema of the workflow's data")
    goto_targets: list[Statement] = Field(description="the statements goto can move a thread to")


class Health(BaseModel):
    """GET /health when every part works (else 503, a Problem whose ``unhealthy`` says which
    part does not, and why)."""

    status: Literal["ok"]


class Info(BaseModel):
    title: str = Field(description="the API's title, as given to create_app")
    version: str = Field(description="gorch's version")


class Me(BaseModel):
    roles: list[str] = Field(description="the roles the token holds")
    name: str | None = Field(
        description="the token's name, which operator actions record as who made them "
        "(null when auth is off)"
    )
    admin: bool = Field(description="whether it may goto, pause, unpause, cancel and retry")
    auth: bool = Field(description="false: auth is off and every caller may do everything")


MODELS: list[type[BaseModel]] = [
    Problem, Timer, Thread, RunningStep, InstanceSummary, Instance, InstancePage, HistoryEntry,
    HistoryPage,
    ThreadWait, GotoRequest, ActionRequest, GotoPlan, DataPlan, BulkRequest, BulkFailure,
    BulkReport, EventResult, EventInfo, Statement,
    Workflow, Health, Info, Me,
]  # fmt: skip


class _GorchSchema(GenerateJsonSchema):
    """JSON Schema for the JSON gorch's converter writes (not pydantic's own encodings)."""

    def timedelta_schema(self, schema: core_schema.TimedeltaSchema) -> JsonSchemaValue:
        return {"type": "number", "description": "seconds"}

    def decimal_schema(self, schema: core_schema.DecimalSchema) -> JsonSchemaValue:
        return {"type": "string", "description": "a decimal number as text"}

    def dataclass_args_schema(self, schema: core_schema.DataclassArgsSchema) -> JsonSchemaValue:
        # A record in an input refuses fields it does not have (gorch.serde.structure_input),
        # and one in an output has exactly its fields: say so, for validators and clients.
        out = super().dataclass_args_schema(schema)
        out.setdefault("additionalProperties", False)
        return out


Mode = Literal["validation", "serialization"]


class TypeSchemas:
    """JSON Schemas of payload, output and data types, sharing one ``$defs`` pool that becomes
    the OpenAPI document's ``components/schemas``."""

    def __init__(self) -> None:
        self.defs: dict[str, Any] = {}
        self._done: dict[tuple[Any, ...], dict[str, Any]] = {}

    def of(self, tp: Any, mode: Mode = "validation") -> dict[str, Any]:
        """The schema of ``tp`` for the OpenAPI document: classes as ``$ref`` to components
        (``{}``, meaning any JSON, where no schema can be made)."""
        if tp is ANY or tp is NO_PAYLOAD:
            return {}
        if tp is None:
            return {"type": "null"}
        key = (tp, mode)
        if key not in self._done:
            schema = _schema(tp, mode, REF)
            defs = schema.pop("$defs", {})
            if isinstance(tp, type) and schema.get("type") == "object":
                # a class gets a named component, as client generators expect
                defs[tp.__name__] = schema
                schema = {"$ref": REF.format(model=tp.__name__)}
            for name, d in defs.items():
                if self.defs.setdefault(name, d) != d:
                    log.warning("two types are named %s; the OpenAPI document shows one", name)
            self._done[key] = schema
        return self._done[key]

    def standalone(self, tp: Any, mode: Mode = "validation") -> dict[str, Any]:
        """The schema of ``tp`` on its own (with its ``$defs``), for a form or a validator."""
        if tp is ANY or tp is NO_PAYLOAD:
            return {}
        if tp is None:
            return {"type": "null"}
        key = ("standalone", tp, mode)
        if key not in self._done:
            self._done[key] = _schema(tp, mode, "#/$defs/{model}")
        return self._done[key]


def _schema(tp: Any, mode: Mode, ref_template: str) -> dict[str, Any]:
    """A fresh copy (the callers change it) of the schema pydantic makes for ``tp``: made
    once per type, as it takes milliseconds and every app of a process asks again."""
    try:
        return copy.deepcopy(_made(tp, mode, ref_template))
    except TypeError:  # not hashable: made each time
        return _make(tp, mode, ref_template)


def _make(tp: Any, mode: Mode, ref_template: str) -> dict[str, Any]:
    try:
        return TypeAdapter(tp).json_schema(
            ref_template=ref_template, mode=mode, schema_generator=_GorchSchema
        )
    except Exception as exc:
        log.warning("no JSON Schema for %r (documented as any JSON): %s", tp, exc)
        return {}


_made = functools.lru_cache(maxsize=1024)(_make)


class Schedule(BaseModel):
    """A schedule (``Engine.schedule``): a workflow started at every tick of a cron
    expression."""

    name: str
    workflow: str
    cron: str = Field(description="five fields: minute hour day-of-month month day-of-week")
    timezone: str = Field(description="the IANA time zone the cron expression is read in")
    catchup: bool = Field(description="after an outage, start every missed tick (else the latest)")
    paused: bool
    next_at: datetime = Field(description="the next tick")
    last_tick: datetime | None = Field(description="the last tick started")
    created_at: datetime
    updated_at: datetime
    data: Any = Field(None, description="the data each tick starts from (null: the defaults)")


class ScheduleRequest(BaseModel):
    """The body of ``PUT /schedules/{name}``: the schedule's definition (it replaces one of
    that name)."""

    model_config = ConfigDict(extra="forbid")
    workflow: str = Field(min_length=1, max_length=MAX_TEXT, description="a registered workflow")
    cron: str = Field(
        min_length=1,
        max_length=MAX_TEXT,
        description="five fields: minute hour day-of-month month day-of-week, e.g. 0 2 * * *",
    )
    timezone: str = Field(
        "UTC", min_length=1, max_length=MAX_TEXT, description="an IANA time zone: Europe/Berlin"
    )
    catchup: bool = Field(False, description="after an outage, start every missed tick")
    data: Any = Field(
        None, description="the workflow's data each tick starts from (null: the class's defaults)"
    )


MODELS += [Schedule, ScheduleRequest]


class Change(BaseModel):
    """One entry of the change feed: a commit that changed an instance's status or the
    statements it waits at."""

    seq: int = Field(description="its place in the feed, from 1, without gaps")
    at: datetime = Field(description="when it was committed")
    instance: str = Field(description="the instance's id")
    workflow: str
    status: RunStatus = Field(description="the instance's status after the commit")
    at_statements: list[str] = Field(description="the statements it waits at after it, sorted")


class ChangePage(BaseModel):
    items: list[Change] = Field(description="oldest first")
    next: int = Field(
        description="pass as after for what comes next (the last item's seq; the after asked "
        "for if there are no items)"
    )


MODELS += [Change, ChangePage]
