"""Idempotency keys of :meth:`Engine.send`: what makes two requests the same, and the answer a
repeat gets.

A key is recorded with the event it came with, in the same commit, together with the
request's fingerprint (a hash of the event, the thread and the payload) and the handler's
answer. A repeat with the same key and fingerprint gets that answer and applies nothing; the
same key with another fingerprint is another request, refused with
:class:`IdempotencyKeyError`.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from gorch import serde
from gorch.errors import IdempotencyKeyError, InputError, UnreadableInstanceError
from gorch.limits import MAX_TEXT, is_text
from gorch.store.base import KeyRecord


def fingerprint(key: str | None, event: str, thread: str, payload: Any) -> str:
    """The fingerprint of a request sent with ``key`` ("" without a key).

    Raises:
        InputError: ``key`` is not 1 to MAX_TEXT characters without NUL.
    """
    if key is None:
        return ""
    if not is_text(key):
        raise InputError(
            f"an idempotency key must be 1 to {MAX_TEXT} characters, without NUL: {key!r}"
        )
    try:
        body = orjson.dumps(
            [event, thread, serde.unstructure(payload)], option=orjson.OPT_SORT_KEYS
        )
    except TypeError:
        body = repr((event, thread, payload)).encode()
    return hashlib.sha256(body).hexdigest()


def repeated_answer(done: KeyRecord, id: str, key: str, fingerprint: str) -> Any:
    """The answer recorded for ``key`` of instance ``id`` (``done``), for a repeat of the
    request with ``fingerprint``.

    Raises:
        IdempotencyKeyError: the key was used for another request.
        UnreadableInstanceError: the recorded answer is not JSON (a hand-edited row).
    """
    if done.fingerprint != fingerprint:
        raise IdempotencyKeyError(
            f"idempotency key {key!r} of instance {id!r} was used for another request; use a "
            f"new key for a new request",
            workflow_id=id,
            key=key,
        )
    try:
        return orjson.loads(done.output)
    except orjson.JSONDecodeError as exc:
        raise UnreadableInstanceError(
            f"instance {id!r}: the answer stored for idempotency key {key!r} is not JSON "
            f"({exc}); nothing was applied again. Repair or delete the key's row (gorch_keys) "
            f"to send with this key.",
            workflow_id=id,
            field="idempotency key",
            reason=str(exc),
        ) from None
