"""cattrs' errors in people's words: one line per problem, with its path (``... @ $.qty``).

Part of :mod:`gorch.serde` (see its docstring). A failed structuring raises a tree of cattrs
exceptions (a record's, a list's, each with the errors of its fields or items); this walks the
tree as cattrs' ``transform_error`` does, and also names dict keys and unknown fields (with the
closest field a misspelt key stands for).
"""

from __future__ import annotations

import re
from typing import Any

from cattrs.errors import (
    AttributeValidationNote,
    ClassValidationError,
    ForbiddenExtraKeysError,
    IterableValidationError,
    StructureHandlerNotFoundError,
)
from cattrs.v import format_exception

from gorch.errors import InputError, suggest
from gorch.serde._types import init_names


def error_details(exc: BaseException, path: str = "$") -> list[str]:
    """One line per problem of a failed structuring, each with its path (``... @ $.qty``)."""
    details: list[str] = []
    try:
        _transform(exc, path, details)
    except Exception:
        details = []
    return details or [f"{type(exc).__name__}: {exc}"]


def _transform(exc: BaseException, path: str, out: list[str], t: Any = None) -> None:
    """cattrs' error tree to ``what @ path`` lines (as cattrs' transform_error, plus keys)."""
    if isinstance(exc, ClassValidationError | IterableValidationError):
        with_notes, without = exc.group_exceptions()
        for e, note in with_notes:
            if isinstance(note, AttributeValidationNote):
                where = f"{path}.{note.name}"
            else:
                where = f"{path}[{note.index!r}]"
            _transform(e, where, out, note.type)
        for e in without:
            _transform(e, path, out)
    elif isinstance(exc, ForbiddenExtraKeysError):
        out.extend(_unknown_fields(exc, path))
    elif isinstance(exc, InputError):
        out.extend(f"{line} @ {path}" for line in exc.details or [exc.message])
    else:
        out.append(f"{_problem(exc, t)} @ {path}")


def _problem(exc: BaseException, t: Any) -> str:
    """What one error (a leaf of the tree) says was wrong, without the path."""
    if isinstance(exc, ValueError) and str(exc).startswith("expected "):
        return str(exc)
    if isinstance(exc, KeyError):
        return "required field missing"
    if isinstance(exc, StructureHandlerNotFoundError):
        return f"cannot be read: {exc}"
    if isinstance(exc, ValueError | TypeError) and str(exc):  # a validator's own words
        return f"invalid value: {exc}"
    return format_exception(exc, t)


def _unknown_fields(exc: ForbiddenExtraKeysError, path: str) -> list[str]:
    """A line per key the record does not have, with the field it likely stands for."""
    names = sorted(init_names(exc.cl))
    lines = []
    for key in sorted(exc.extra_fields):
        close = suggest(key, names, n=1) or _abbreviated(key, names)
        listed = ", ".join(repr(n) for n in names) or "none"
        hint = (
            f"did you mean {close[0]!r}?" if close else f"{exc.cl.__name__}'s fields are {listed}"
        )
        where = f"{path}.{key}" if re.fullmatch(r"[A-Za-z_]\w*", key) else f"{path}[{key!r}]"
        lines.append(f"unknown field; {hint} @ {where}")
    return lines


def _abbreviated(key: str, names: list[str]) -> list[str]:
    """The field names ``key`` abbreviates (``qty`` for ``quantity``): same first letter, and
    the key's letters in order."""
    found = []
    for name in names:
        rest = iter(name)
        if key[:1] == name[:1] and all(ch in rest for ch in key):
            found.append(name)
    return found[:1]
