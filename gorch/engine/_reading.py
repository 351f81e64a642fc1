"""The engine's reading calls: an instance, a page of instances, a page of its history, where
its threads wait, and what is registered. None of them writes.

A row that does not load never breaks a listing: :meth:`Reading.list` shows it with
``load_error``, and :meth:`Reading.history` shows a hand-edited entry as its text with a note.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from typing import Any

import orjson

from gorch import clock
from gorch.engine._core import EngineCore
from gorch.engine._cursors import (
    history_cursor,
    instance_cursor,
    parse_history_cursor,
    parse_instance_cursor,
)
from gorch.engine._records import (
    HistoryEntry,
    HistoryKind,
    Instance,
    Page,
    RunningStep,
    RunStatus,
    ThreadWait,
)
from gorch.engine._since import since
from gorch.errors import InputError
from gorch.interpreter import awaited
from gorch.limits import MAX_PAGE, MAX_TEXT, is_text
from gorch.store.base import HistoryRecord, InstanceRecord, Store


def running_step(store: Store, row: InstanceRecord) -> RunningStep | None:
    """The step a process runs in ``row`` now, as its last heartbeat entry says: only while the
    instance runs under a live lease and that entry is the newest (a later commit ended it)."""
    if row.status != RunStatus.RUNNING.value or row.lease_owner is None:
        return None
    if row.lease_expires is None or row.lease_expires <= clock.now():
        return None
    last = store.history(row.id, limit=1, newest_first=True)
    if not last or last[0].kind != HistoryKind.HEARTBEAT.value or last[0].output is None:
        return None
    try:
        report = orjson.loads(last[0].output)
        return RunningStep(
            thread=last[0].thread, statement=last[0].name, attempt=int(report["attempt"]),
            started_at=clock.parse_time(report["started_at"]), heartbeat_at=last[0].at,
            details=report.get("details"), owner=row.lease_owner,
        )  # fmt: skip
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return None  # a hand-edited entry: nothing to tell


class Reading(EngineCore):
    """:class:`~gorch.engine.Engine`'s reading calls."""

    def workflow_class(self, name: str) -> type:
        """The class registered as ``name``. Raises :class:`NotFoundError` with the closest
        registered names."""
        return self._class(name)

    def workflow_of(self, id: str) -> str:
        """The registered workflow name of instance ``id``. Raises :class:`NotFoundError`."""
        return self._row(id).workflow

    def get(self, id: str) -> Instance:
        """The instance ``id`` (with its timers, its children, and the step a process runs
        now, if one reported it). Raises :class:`NotFoundError`."""
        row = self._row(id)
        inst = self._instance(row, timers=True)
        inst.running = running_step(self.store, row)
        kids = self.store.list_instances(parent=row.id, limit=MAX_PAGE)
        inst.children = [k.id for k in sorted(kids, key=lambda k: (k.created_at, k.id))]
        return inst

    def list(
        self,
        *,
        workflow: str | None = None,
        status: RunStatus | str | Sequence[RunStatus | str] | None = None,
        limit: int = 50,
        cursor: str | None = None,
        search: str | None = None,
        parent: str | None = None,
    ) -> Page[Instance]:
        """Instances, newest first, filtered by workflow, status, text in the id (``search``,
        case-sensitive) and ``parent`` (the children a ``Child`` of that instance started);
        one page at a time (iterate the :class:`Page`, or read its ``items`` and ``next``)."""
        if not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE:
            raise InputError(f"limit must be an integer from 1 to {MAX_PAGE}, not {limit!r}")
        statuses = None if status is None else _status_values(status)
        if workflow is not None and not is_text(workflow):
            raise InputError(
                f"a workflow name must be 1 to {MAX_TEXT} characters, without NUL: {workflow!r}"
            )
        if search is not None and (len(search) > MAX_TEXT or "\x00" in search):
            raise InputError(
                f"a search must be at most {MAX_TEXT} characters, without NUL: {search!r}"
            )
        if parent is not None and not is_text(parent):
            raise InputError(f"a parent must be an instance id, not {parent!r}")
        after = parse_instance_cursor(cursor) if cursor else None
        rows = self.store.list_instances(
            workflow=workflow, status=statuses, limit=limit + 1, after=after, id_contains=search,
            parent=parent,
        )  # fmt: skip
        more = len(rows) > limit
        rows = rows[:limit]
        nxt = instance_cursor(rows[-1]) if more else None
        return Page([self._instance(r, tolerant=True) for r in rows], nxt)

    def history(
        self,
        id: str,
        *,
        limit: int | None = None,
        cursor: str | None = None,
        newest_first: bool = False,
    ) -> Page[HistoryEntry]:
        """The instance's history, oldest first (``newest_first``: newest first).

        Without ``limit`` the page holds the whole history; with it, at most ``limit`` entries
        and ``next``, the cursor of the page after (None on the last). A cursor continues in
        the direction it was made for.

        Raises:
            NotFoundError: no instance has this id.
            InputError: ``limit`` is not 1 to 1000, or ``cursor`` is not a ``next`` of this
                kind of page.
        """
        if limit is not None and (
            not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= MAX_PAGE
        ):
            raise InputError(f"limit must be an integer from 1 to {MAX_PAGE}, not {limit!r}")
        after = parse_history_cursor(cursor, newest_first) if cursor else None
        self._row(id)
        rows = self.store.history(
            id,
            limit=None if limit is None else limit + 1,
            after=after,
            newest_first=newest_first,
        )
        nxt = None
        if limit is not None and len(rows) > limit:
            rows = rows[:limit]
            nxt = history_cursor(rows[-1], newest_first)
        return Page([_entry(h) for h in rows], nxt)

    def waits(self, id: str | Instance) -> builtins.list[ThreadWait]:
        """Where every thread of instance ``id`` is, what it waits for, since when, and its
        timers. Pass the :class:`Instance` from :meth:`get` instead of its id to save reading
        it again. Raises :class:`NotFoundError`.

        ``since`` is when the thread began what it does now, as far as the history shows: the
        time of its latest entry (a step it ran, an event or timer it received, a goto that
        moved it); for the main thread without one, the instance's start. A thread started by
        a ``Go`` that has done nothing yet has no entry of its own: it has been where it is
        since the Go ran, and the Go ran right after the latest entry of the spawning thread
        for a statement before the Go in the definition (or right after the instance's start,
        or when the spawning thread itself was started), in the same run.
        """
        inst = id if isinstance(id, Instance) else self.get(id)
        when = since(inst.data, inst.state, self.store.history(inst.id))
        return [
            ThreadWait(
                t.id,
                t.name,
                t.status.value,
                t.cur_step,
                awaited([t]),
                when[t.id],
                [tm for tm in inst.timers if tm.thread_id == t.id],
            )
            for t in inst.state.threads
        ]


def _status_values(status: RunStatus | str | Sequence[RunStatus | str]) -> list[str]:
    """The stored texts of one status or several; InputError naming the known ones."""
    items = [status] if isinstance(status, str) else list(status)
    try:
        return [RunStatus(s).value for s in items]
    except ValueError:
        raise InputError(
            f"unknown status in {items!r}; use one of {', '.join(s.value for s in RunStatus)}"
        ) from None


def _entry(h: HistoryRecord) -> HistoryEntry:
    """A stored history row as an entry; input or output text that is not JSON (a hand-edited
    row) is kept as text, with a note, so that one bad row does not hide the whole history."""
    notes: list[str] = []

    def parse(text: str | None, what: str) -> Any:
        if text is None:
            return None
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            notes.append(f"the stored {what} is not valid JSON ({exc}); shown as its text")
            return text

    entry = HistoryEntry(h.at, h.kind, h.name, h.thread, parse(h.input, "input"),
                         parse(h.output, "output"), h.error, h.seq, actor=h.actor,
                         reason=h.reason)  # fmt: skip
    entry.note = "; ".join(notes) or None
    return entry
