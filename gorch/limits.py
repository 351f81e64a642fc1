"""The limits gorch applies at its boundaries, in one place (every face and the engine use these).

Example:
    >>> from gorch.limits import MAX_TEXT, is_text
    >>> is_text("order-1"), is_text("x" * (MAX_TEXT + 1))
    (True, False)
"""

from __future__ import annotations

from typing import Any

__all__ = ["MAX_BODY", "MAX_BULK", "MAX_DEPTH", "MAX_PAGE", "MAX_REASON", "MAX_TEXT", "is_text"]

MAX_TEXT = 200
"""Characters in an instance id, an idempotency key, a workflow, event, thread or statement name,
or a search text. (PostgreSQL's text cannot hold NUL, so none of them may contain it either.)"""

MAX_REASON = 2000
"""Characters in the reason an operator gives for a change (its actor, who made it, is a
name: at most :data:`MAX_TEXT`)."""

MAX_PAGE = 1000
"""Items in one page of a list or a history."""

MAX_BULK = 1000
"""Instances one bulk request over HTTP acts on (``POST /instances/bulk/{action}``): a request
stays short, and its report says when more match (run it again)."""

MAX_DEPTH = 64
"""Levels of nesting (arrays and objects) accepted in a payload or in start data.

orjson writes at most 254 levels, and a stored payload sits inside a history row, and its
value often inside the workflow's data, which nests it deeper: 64 levels leave those ~190
levels, and keep cattrs' recursive structuring far from Python's recursion limit."""

MAX_BODY = 1 << 20
"""Bytes in an HTTP request body (``create_app(max_body=...)`` changes it for an app)."""


def is_text(value: Any) -> bool:
    """Whether ``value`` is usable as an id, key or name: 1 to :data:`MAX_TEXT` characters,
    without NUL."""
    return isinstance(value, str) and 0 < len(value) <= MAX_TEXT and "\x00" not in value
