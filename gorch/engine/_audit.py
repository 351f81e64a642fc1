"""Who made an operator's change, and why: the ``actor`` and ``reason`` every operator call
takes and its history entry records (``HistoryEntry.actor``, ``.reason``).

:func:`audit` checks them before the call reads anything, so that a bad one is refused with
nothing changed; its result is the keywords of the history entry
(``op.note(kind, ..., **audit(actor, reason))``).
"""

from __future__ import annotations

from typing import Any, TypedDict

from gorch.errors import InputError
from gorch.limits import MAX_REASON, MAX_TEXT


class By(TypedDict):
    """The keywords of an operator's history entry: who, and why."""

    actor: str | None
    reason: str | None


NOBODY = By(actor=None, reason=None)
"""The keywords of an entry that names no one (an event sent without an actor)."""


def audit(actor: Any, reason: Any) -> By:
    """``{"actor": ..., "reason": ...}`` for a history entry, checked.

    ``actor``: None, or a name of 1 to :data:`~gorch.limits.MAX_TEXT` characters.
    ``reason``: None, or a text of up to :data:`~gorch.limits.MAX_REASON` characters (an empty
    or blank one is None). Neither may contain NUL (PostgreSQL's text cannot hold it).

    Raises:
        InputError: one of them is not that.
    """
    if actor is not None and not _fits(actor, MAX_TEXT, empty=False):
        raise InputError(
            f"an actor must be a name of 1 to {MAX_TEXT} characters without NUL, not "
            f"{_show(actor)}; nothing changed"
        )
    if reason is not None and not _fits(reason, MAX_REASON, empty=True):
        raise InputError(
            f"a reason must be a text of at most {MAX_REASON} characters without NUL, not "
            f"{_show(reason)}; nothing changed"
        )
    return By(actor=actor, reason=reason if reason and reason.strip() else None)


def _fits(value: Any, most: int, *, empty: bool) -> bool:
    if not isinstance(value, str) or len(value) > most or "\x00" in value:
        return False
    return empty or bool(value.strip())


def _show(value: Any) -> str:
    """The refused value, briefly (a long text by its length)."""
    if isinstance(value, str) and len(value) > 40:
        return f"a text of {len(value)} characters"
    return repr(value)
