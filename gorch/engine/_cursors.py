"""The cursors of :meth:`Engine.list` and :meth:`Engine.history` pages: made from the last row
of a page, parsed back into the store's ``after`` argument.

A cursor is opaque to callers but plain to read here: an instance page's is the last row's
creation time and id (``<time>|<id>``), a history page's the direction and the last entry's
place (``o`` oldest first or ``n`` newest first, then ``<seq>.<version>.<idx>``). A text that
is no cursor of the kind asked for is refused with :class:`InputError`.
"""

from __future__ import annotations

import re
from datetime import datetime

from gorch import clock
from gorch.errors import InputError
from gorch.store.base import HistoryRecord, InstanceRecord


def instance_cursor(row: InstanceRecord) -> str:
    """The cursor of the instance page that ends with ``row``."""
    return f"{clock.format_time(row.created_at)}|{row.id}"


def parse_instance_cursor(cursor: str) -> tuple[datetime, str]:
    """``(created_at, id)`` of the last row of the page before, from its ``next``."""
    at, sep, id = cursor.partition("|")
    try:
        if not sep or "\x00" in cursor:
            raise ValueError(cursor)
        return clock.parse_time(at), id
    except ValueError:
        raise InputError(
            f"{cursor!r} is not a page cursor; pass the 'next' value of the page before"
        ) from None


def history_cursor(last: HistoryRecord, newest_first: bool) -> str:
    """The cursor of the history page that ends with ``last``, read in that direction."""
    return f"{'n' if newest_first else 'o'}{last.seq}.{last.version}.{last.idx}"


_HISTORY_CURSOR = re.compile(r"([on])([0-9]{1,10})\.([0-9]{1,10})\.([0-9]{1,10})")


def parse_history_cursor(cursor: str, newest_first: bool) -> tuple[int, int, int]:
    """``(seq, version, idx)`` from a history page's ``next``: ``o`` (oldest first) or ``n``
    (newest first), then the last entry's seq, version and idx."""
    found = _HISTORY_CURSOR.fullmatch(cursor) if isinstance(cursor, str) else None
    place = tuple(int(g) for g in found.groups()[1:]) if found else ()
    if not found or not all(0 < n < 2**31 for n in place):
        raise InputError(
            f"{cursor!r} is not a history page cursor; pass the 'next' value of the page before"
        )
    if (found.group(1) == "n") != newest_first:
        order = "newest first" if found.group(1) == "n" else "oldest first"
        raise InputError(
            f"the cursor {cursor!r} continues a history read {order}; read with "
            f"newest_first={not newest_first} to go on from it"
        )
    return place[0], place[1], place[2]
