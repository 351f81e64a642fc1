"""Errors as RFC 9457 problem details (``application/problem+json``)."""

from __future__ import annotations

import logging
from typing import Any

import orjson
from starlette.responses import Response

from gorch.errors import (
    AlreadyExistsError,
    AmbiguousCallback,
    BusyError,
    CallbackNotFound,
    ConflictError,
    ErasureError,
    GorchError,
    GotoError,
    HandlerError,
    IdempotencyKeyError,
    InputError,
    InstanceStatusError,
    NotFoundError,
    StaleCallback,
    StateMismatchError,
    StoreUnavailableError,
    UnreadableInstanceError,
    WaitTimeout,
    WorkflowFinishedError,
)

__all__ = ["PROBLEM", "Problem", "from_gorch", "problem_response"]

log = logging.getLogger("gorch.http")

PROBLEM = "application/problem+json"
TYPE_BASE = "urn:gorch:problem:"

# (error class, HTTP status, problem type, title); the first match wins, so subclasses first.
_KINDS: list[tuple[type[GorchError], int, str, str]] = [
    (NotFoundError, 404, "not-found", "Not found"),
    (AlreadyExistsError, 409, "already-exists", "Already exists"),
    (CallbackNotFound, 409, "not-waiting", "Not waiting for this event"),
    (AmbiguousCallback, 409, "ambiguous-event", "Several threads wait for this event"),
    (StaleCallback, 409, "stale-event", "Stale event"),
    (WorkflowFinishedError, 409, "finished", "Instance finished"),
    (InstanceStatusError, 409, "wrong-status", "Not allowed in the instance's status"),
    (ErasureError, 409, "not-erasable", "The workflow declares no personal data"),
    (ConflictError, 409, "conflict", "Conflict"),
    (HandlerError, 409, "refused", "The workflow refused the event"),
    (StateMismatchError, 409, "state-mismatch", "Stored state does not match the code"),
    (UnreadableInstanceError, 409, "unreadable", "The stored instance cannot be read"),
    (BusyError, 503, "busy", "Instance busy"),
    (StoreUnavailableError, 503, "store-unavailable", "Database unavailable"),
    (IdempotencyKeyError, 422, "idempotency-key-reused", "Idempotency key reused"),
    (InputError, 422, "invalid-payload", "Invalid payload"),
    (GotoError, 422, "invalid-goto", "No such statement or thread to go to"),
    # A long poll (GET /instances/{id}/wait) that ran out of time: 408, not 504. Nothing is
    # wrong with the server: the request's own timeout passed before the instance got there,
    # and a 5xx would count as a server error for monitors, clients, proxies (and this API's
    # rule that bad input is never a 5xx); 504 says a gateway's upstream did not answer, which
    # is what a proxy in front answers when *its* read timeout passes, so the two stay apart.
    # 408 lets a client repeat the request as it is (RFC 9110 15.5.9), which is what a long
    # poll does next. (Chromium repeats a 408 by itself once on a reused connection.)
    (WaitTimeout, 408, "wait-timeout", "Not there in time"),
]


# error attributes carried as problem extension members
_EXTRAS = {
    "waiting_for": "waiting_for",
    "details": "errors",
    "threads": "threads",
    "status": "instance_status",
    "key": "idempotency_key",
    "outcome_unknown": "outcome_unknown",  # StoreUnavailableError: the write may have happened
    "field": "field",
}


class Problem(Exception):
    """An HTTP error to answer with problem details."""

    def __init__(
        self,
        status: int,
        kind: str,
        title: str,
        detail: str,
        *,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.kind = kind
        self.title = title
        self.detail = detail
        self.headers = headers or {}
        self.extra = extra


def from_gorch(exc: GorchError) -> Problem:
    """The problem a gorch error stands for (anything unmapped is a server error)."""
    match = next((k for k in _KINDS if isinstance(exc, k[0])), None)
    if match is None:
        log.error("unexpected gorch error: %s", exc, exc_info=exc)
        status, kind, title = 500, "server-error", "Server error"
    else:
        _, status, kind, title = match
    extra: dict[str, Any] = {"error": type(exc).__name__}
    if exc.workflow_id:
        extra["instance_id"] = exc.workflow_id
    for attr, key in _EXTRAS.items():
        value = getattr(exc, attr, None)
        if value:
            extra[key] = value
    if isinstance(exc, WaitTimeout):  # where it stands, even waiting at no statement
        extra["at_statements"] = list(exc.at_statements)
    headers = {"Retry-After": "1"} if status == 503 else None
    return Problem(status, kind, title, str(exc), headers=headers, **extra)


def problem_response(p: Problem, path: str = "") -> Response:
    body: dict[str, Any] = {
        "type": TYPE_BASE + p.kind,
        "title": p.title,
        "status": p.status,
        "detail": p.detail,
    }
    if path:
        body["instance"] = path
    body.update(p.extra)
    return Response(orjson.dumps(body), p.status, headers=p.headers, media_type=PROBLEM)
