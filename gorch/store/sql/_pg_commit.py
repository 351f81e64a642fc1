"""PostgreSQL's commits of one statement: a workflow's start, its steps and its end, each in
one round trip.

Most commits write the instance's row and its history rows and nothing else (a step's
checkpoint): one ``UPDATE`` whose history rows are ``INSERT``\\ ed in the same statement, from
arrays that ``unnest()`` turns back into rows. A commit that also changes the instance's status
or the statements it waits at (``Write.change``: a start, a wait, an end) adds the change feed's
entry to that statement, and a new instance's insert adds the messages of the watches already
waiting for it. Every part reads ``u``, the row written, so a failed version check writes
nothing at all.

One statement reads with one snapshot, taken before it waits for any lock, so it cannot see
what commits while it waits. Two rules keep that from losing a watch (see
:mod:`gorch.store.sql._links`):

- an update of a change says ``NOT watched``. A watch that commits meanwhile has marked the
  row, so the update writes nothing, and the commit goes to ``SQLStore``'s transaction, which
  meets the watches;
- an insert runs after ``Dialect.lock_id`` in a transaction of its own. Its statement's
  snapshot is then taken after any watch of the new id committed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from gorch.store.base import END, watch_matches
from gorch.store.sql._dialect import NOTIFY_CHANNEL
from gorch.store.sql._links import CHANGES_CHANNEL
from gorch.store.sql._rows import at_text

if TYPE_CHECKING:
    from gorch.store.base import Write
    from gorch.store.sql._dialect import Dialect

__all__ = ["HISTORY", "history_params", "one_statement"]

HISTORY = (
    "INSERT INTO gorch_history (instance_id, version, idx, at, kind, name, thread, input, "
    "output, error, actor, reason) SELECT u.id, %s, h.idx, h.at, h.kind, h.name, h.thread, "
    "h.input::json, h.output::json, h.error, h.actor, h.reason FROM u, "
    "unnest(%s::timestamptz[], %s::text[], %s::text[], %s::text[], %s::text[], %s::text[], "
    "%s::text[], %s::text[], %s::text[]) WITH ORDINALITY "
    "AS h(at, kind, name, thread, input, output, error, actor, reason, idx)"
)
"""The history rows of the instance row ``u`` a statement wrote (its ``WITH`` part)."""

# The watches that a new instance meets as it is inserted: watch_matches (gorch.store.base)
# in SQL, given the exact ``until`` texts it meets (the end, each statement it waits at) and
# its status.
_MESSAGES = (
    "m AS (INSERT INTO gorch_messages (instance_id, thread_id, name, pc, target_id, status, "
    "at_statements, at) SELECT w.instance_id, w.thread_id, w.name, w.pc, u.id, %s, %s, %s "
    "FROM u JOIN gorch_watches w ON w.target_id = u.id WHERE w.until = ANY(%s::text[]) OR "
    "(w.until LIKE 'status:%%' AND %s = ANY(string_to_array(substr(w.until, 8), ','))) "
    "ON CONFLICT DO NOTHING RETURNING 1)"
)

_FORGET = "x AS (DELETE FROM gorch_messages WHERE instance_id IN (SELECT id FROM u))"

# The feed's entry: the feed's row is updated from ``u``, so once the instance's row is
# written (a row lock first, the feed's lock last, as in SQLStore's transaction).
_FEED = (
    "s AS (UPDATE gorch_feed f SET seq = f.seq + 1 FROM u WHERE f.id = 1 RETURNING f.seq), "
    "c AS (INSERT INTO gorch_changes (seq, at, instance_id, workflow, status, at_statements) "
    "SELECT s.seq, %s, %s, %s, %s, %s FROM s)"
)


def history_params(write: Write, version: int) -> list[Any]:
    """The parameters of :data:`HISTORY`: one array per column."""
    history = write.history
    return [
        version,
        [entry.at for entry in history],
        [entry.kind for entry in history],
        [entry.name for entry in history],
        [entry.thread for entry in history],
        [entry.input for entry in history],
        [entry.output for entry in history],
        [entry.error for entry in history],
        [entry.actor for entry in history],
        [entry.reason for entry in history],
    ]


def one_statement(dialect: Dialect, write: Write, version: int) -> tuple[str, list[Any]] | None:
    """The statement, and its parameters, that commit ``write`` (a new instance, or a
    ``change``) by itself; None if it needs more than one (timers, a key, watches, children,
    a message to take). It returns one row if it wrote the instance's row, none if the row
    was not at ``write.expected_version`` or is ``watched``."""
    if not _fits(write):
        return None
    row, insert = write.instance, write.expected_version is None
    at = at_text(row.at_statements)
    if insert:
        parts = [f"u AS ({dialect.insert} RETURNING id)"]
    else:
        parts = [f"u AS ({dialect.update_at} AND NOT watched RETURNING id)"]
    params = list(dialect.row_params(write, version))
    if write.history:
        parts.append(f"h AS ({HISTORY})")
        params += history_params(write, version)
    if not insert and watch_matches(END, row.status, ()):
        parts.append(_FORGET)  # an ended instance takes no more events
    if insert:
        parts.append(_MESSAGES)
        params += [row.status, at, row.updated_at, _met(row.status, row.at_statements), row.status]
    parts.append(_FEED)
    params += [row.updated_at, row.id, row.workflow, row.status, at]
    # NOTIFY: readers of the feed, workers (for this commit, or for a watcher it met).
    wake = [f"pg_notify('{CHANGES_CHANNEL}', u.id)"]
    if insert:
        wake.append(f"(SELECT pg_notify('{NOTIFY_CHANNEL}', '') FROM m LIMIT 1)")
    if write.notify:
        wake.append(f"pg_notify('{NOTIFY_CHANNEL}', '')")
    return f"WITH {', '.join(parts)} SELECT {', '.join(wake)} FROM u", params


def _fits(write: Write) -> bool:
    if not write.change or write.key is not None or write.watches is not None:
        return False
    if write.starts or write.consume is not None:
        return False
    # A new instance's empty timers are none to write; an update's say: delete them.
    return not write.timers if write.expected_version is None else write.timers is None


def _met(status: str, at: Sequence[str]) -> list[str]:
    """The ``until`` texts (other than ``status:...``) that an instance with ``status``,
    waiting at ``at``, meets."""
    met = [END] if watch_matches(END, status, at) else []
    return met + [f"at:{name}" for name in at]
