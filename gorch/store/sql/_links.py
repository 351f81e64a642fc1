"""What ties instances together in a SQL commit: the change feed, watches and their messages.

A commit that changes an instance's status or the statements it waits at (``Write.change``)
appends one row to ``gorch_changes``, numbered by adding one to the one row of ``gorch_feed``,
whose lock the commit then holds to its end: the feed has no gaps, a number is never given
twice (not even after the last entries were deleted), and a reader never sees seq 7 before
seq 6 is committed. The same commit meets the watches of the instance (each met watch leaves
a message for its watcher, once: the message's key is the watcher's wait).

A commit that writes an instance's own watches meets each against its target as it is now.
Neither may miss the other when both commit at once:

- the target exists: the watching commit marks its row ``watched`` before it reads it, which
  waits for a commit of the target that holds the row and makes the target's next commit
  wait for this one. A target's change runs these statements only once it is watched
  (PostgreSQL commits the change of an unwatched instance in one statement, whose row
  condition ``NOT watched`` sends it here when a watch came meanwhile);
- the target does not exist yet: the watching commit and the commit that inserts the
  target both take the lock of the target's id (``Dialect.lock_id``) before they look, so
  the later one sees the earlier one's rows.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from gorch.store.base import (
    END,
    ChangeRecord,
    InstanceRecord,
    MessageRecord,
    WatchRecord,
    Write,
    watch_matches,
)
from gorch.store.signal import ChangeSignal
from gorch.store.sql._rows import at_text, at_tuple, read_time

if TYPE_CHECKING:
    from gorch.store.sql._dialect import Dialect
    from gorch.store.sql._follow import Follower
    from gorch.store.sql._pool import Pool

__all__ = ["CHANGES_CHANNEL", "Linked", "Links", "change", "message", "watch"]

CHANGES_CHANNEL = "gorch_changes"
"""The channel a change is announced on (PostgreSQL's NOTIFY), with the instance's id."""

_MESSAGE = "instance_id, thread_id, name, pc, target_id, status, at_statements, at"
_WATCH = "instance_id, thread_id, name, pc, target_id, until"


class Links:
    """The statements of the feed, the watches and the messages, in one dialect's SQL."""

    def __init__(self, dialect: Dialect) -> None:
        spell = dialect.spell
        self.dialect = dialect
        self.next_seq = "UPDATE gorch_feed SET seq = seq + 1 WHERE id = 1"
        self.append = spell(
            "INSERT INTO gorch_changes (seq, at, instance_id, workflow, status, at_statements) "
            "SELECT seq, ?, ?, ?, ?, ? FROM gorch_feed WHERE id = 1"
        )
        self.watchers = spell(f"SELECT {_WATCH} FROM gorch_watches WHERE target_id = ?")
        self.drop_watches = spell("DELETE FROM gorch_watches WHERE instance_id = ?")
        self.add_watch = spell(f"INSERT INTO gorch_watches ({_WATCH}) VALUES (?, ?, ?, ?, ?, ?)")
        self.mark = spell("UPDATE gorch_instances SET watched = true WHERE id = ?")
        self.target = spell(
            "SELECT id, status, at_statements, updated_at FROM gorch_instances WHERE id = ?"
        )
        self.leave = spell(
            f"INSERT INTO gorch_messages ({_MESSAGE}) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT DO NOTHING"
        )
        self.forget_messages = spell("DELETE FROM gorch_messages WHERE instance_id = ?")
        self.consume = spell(
            "DELETE FROM gorch_messages WHERE instance_id = ? AND thread_id = ? AND name = ? "
            "AND pc = ?"
        )
        self.messages_of = spell(
            f"SELECT {_MESSAGE} FROM gorch_messages WHERE instance_id = ? ORDER BY at, thread_id, "
            "name, pc"
        )
        self.all_messages = f"SELECT {_MESSAGE} FROM gorch_messages ORDER BY at, instance_id"
        self.first_message = self.messages_of + spell(" LIMIT 1")
        self.watches_of = spell(
            f"SELECT {_WATCH} FROM gorch_watches WHERE instance_id = ? ORDER BY thread_id, name, pc"
        )
        self.all_watches = (
            f"SELECT {_WATCH} FROM gorch_watches ORDER BY instance_id, thread_id, name, pc"
        )
        self.changes = spell(
            "SELECT seq, at, instance_id, workflow, status, at_statements FROM gorch_changes "
            "WHERE seq > ? ORDER BY seq LIMIT ?"
        )
        self.last_change = "SELECT coalesce(max(seq), 0) FROM gorch_changes"
        self.changed_since = spell(
            "SELECT seq, instance_id FROM gorch_changes WHERE seq > ? ORDER BY seq"
        )
        # Claims driven from the messages, as timer claims are from the due timers.
        lease = dialect.lease
        # One row per instance (several messages of one instance take one place), oldest
        # message first.
        waiting = (
            "SELECT i.id FROM gorch_instances i WHERE EXISTS (SELECT 1 FROM gorch_messages m "
            "WHERE m.instance_id = i.id) AND i.status IN ('waiting', 'running') AND "
            "(i.lease_expires IS NULL OR i.lease_expires < ?) AND (i.next_attempt_at IS NULL "
            "OR i.next_attempt_at <= ?){only} ORDER BY (SELECT min(m.at) FROM gorch_messages m "
            f"WHERE m.instance_id = i.id), i.id LIMIT ?{dialect.lock_claimed}"
        )
        self.claim = spell(lease.format(choice=waiting.format(only="")))
        self.claim_among = spell(
            lease.format(choice=waiting.format(only=f" AND i.workflow {dialect.among}"))
        )

    # -- in a commit's transaction -----------------------------------------------------------

    def write(self, cur: Any, write: Write) -> bool:
        """The feed, watch and message statements of ``write`` (after its row's); whether it
        left a message (a watcher has an event to take: wake the workers)."""
        row = write.instance
        left = False
        if write.consume is not None:
            m = write.consume
            cur.execute(self.consume, (m.instance_id, m.thread_id, m.name, m.pc))
        if write.watches is not None:
            left = self._watch(cur, row.id, write.watches)
        if write.change and watch_matches(END, row.status, ()):
            cur.execute(self.forget_messages, (row.id,))  # an ended instance takes no events
        if write.change:
            left = self._changed(cur, write) or left
        return left

    def _watch(self, cur: Any, instance_id: str, watches: Sequence[WatchRecord]) -> bool:
        """Replace the instance's watches; meet each against its target as it is now."""
        cur.execute(self.drop_watches, (instance_id,))
        left = False
        for w in watches:
            cur.execute(self.add_watch, (w.instance_id, w.thread_id, w.name, w.pc, w.target_id,
                                         w.until))  # fmt: skip
            self.dialect.lock_id(cur, w.target_id)
            cur.execute(self.mark, (w.target_id,))
            cur.execute(self.target, (w.target_id,))
            found = cur.fetchone()
            if found is not None:
                at = at_tuple(found[2])
                left = self._meet(cur, w, found[0], found[1], at, read_time(found[3])) or left
        return left

    def _changed(self, cur: Any, write: Write) -> bool:
        """Meet the watches on the instance; append its change to the feed (last: the feed's
        row is locked from here to the commit)."""
        row = write.instance
        cur.execute(self.watchers, (row.id,))
        left = False
        for r in cur.fetchall():
            w = WatchRecord(r[0], r[1], r[2], r[3], r[4], r[5])
            left = self._meet(cur, w, row.id, row.status, row.at_statements, row.updated_at) or left
        dialect = self.dialect
        cur.execute(self.next_seq)
        cur.execute(self.append, (dialect.bind_time(row.updated_at), row.id, row.workflow,
                                  row.status, at_text(row.at_statements)))  # fmt: skip
        dialect.announce(cur, row.id)
        return left

    def _meet(
        self, cur: Any, w: WatchRecord, target: str, status: str, at: tuple[str, ...], when: Any
    ) -> bool:
        if not watch_matches(w.until, status, at):
            return False
        bind = self.dialect.bind_time
        cur.execute(self.leave, (w.instance_id, w.thread_id, w.name, w.pc, target, status,
                                 at_text(at), bind(when)))  # fmt: skip
        return True


def message(r: Sequence[Any]) -> MessageRecord:
    """A message row (``_MESSAGE``'s columns) as a record."""
    return MessageRecord(r[0], r[1], r[2], r[3], r[4], r[5], at_tuple(r[6]), read_time(r[7]))


def watch(r: Sequence[Any]) -> WatchRecord:
    """A watch row (``_WATCH``'s columns) as a record."""
    return WatchRecord(r[0], r[1], r[2], r[3], r[4], r[5])


def change(r: Sequence[Any]) -> ChangeRecord:
    """A change row as a record."""
    return ChangeRecord(int(r[0]), read_time(r[1]), r[2], r[3], r[4], at_tuple(r[5]))


class Linked:
    """The :class:`~gorch.store.base.Store` methods of the feed, the watches and the
    messages, for :class:`~gorch.store.sql.SQLStore` (which provides the attributes below)."""

    dialect: Dialect
    links: Links
    signal: ChangeSignal
    _pool: Pool
    _follower: Follower
    _claim_each: Callable[..., list[tuple[Any, InstanceRecord]]]

    def claim_messages(
        self,
        owner: str,
        now: datetime,
        until: datetime,
        limit: int,
        workflows: Sequence[str] | None = None,
    ) -> list[tuple[MessageRecord, InstanceRecord]]:
        links, dialect = self.links, self.dialect
        query = dialect.claim_query(
            links.claim, links.claim_among, owner, now, until, limit, workflows
        )
        if query is None:
            return []
        got = self._claim_each(query, (links.first_message, lambda row: (row.id,)), owner)
        out = [(message(m), row) for m, row in got]
        return sorted(out, key=lambda mr: (mr[0].at, mr[0].instance_id))  # oldest first

    def messages(self, instance_id: str | None = None) -> list[MessageRecord]:
        if instance_id is None:
            rows = self._pool.fetch(self.links.all_messages)
        else:
            rows = self._pool.fetch(self.links.messages_of, (instance_id,))
        return [message(r) for r in rows]

    def delete_message(self, message: MessageRecord) -> None:
        m = message
        self._pool.run(
            lambda cur: cur.execute(self.links.consume, (m.instance_id, m.thread_id, m.name, m.pc)),
            tx=True,
        )

    def watches(self, instance_id: str | None = None) -> list[WatchRecord]:
        if instance_id is None:
            rows = self._pool.fetch(self.links.all_watches)
        else:
            rows = self._pool.fetch(self.links.watches_of, (instance_id,))
        return [watch(r) for r in rows]

    def changes(self, after: int = 0, limit: int = 100) -> list[ChangeRecord]:
        return [change(r) for r in self._pool.fetch(self.links.changes, (after, limit))]

    def changed_since(self, after: int) -> list[tuple[int, str]]:
        """``(seq, instance_id)`` of the feed's entries after ``after`` (for the follower)."""
        rows = self._pool.fetch(self.links.changed_since, (after,))
        return [(int(r[0]), r[1]) for r in rows]

    def last_change(self) -> int:
        return int(self._pool.fetch(self.links.last_change, one=True)[0])

    def change_mark(self) -> int:
        self._follower.ensure()
        return self.signal.mark()

    def wait_change(self, instance_id: str | None, mark: int, timeout: float) -> bool:
        self._follower.ensure()
        return self.signal.wait(instance_id, mark, timeout)
