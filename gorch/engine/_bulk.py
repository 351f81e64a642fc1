"""Operator actions over a filter: :meth:`Bulk.bulk` and the :class:`BulkReport` it returns.

``bulk("retry", workflow="pizza", older_than=timedelta(days=3))`` reads the instances that
match page by page (a keyset page of the store's listing, so rows that change while it runs
neither repeat nor shift the pages) and applies the action to each in a commit of its own: the
operator call of that name, with its own checks and its own history entry. Each entry's
reason starts with ``[bulk <action> <run>]``, ``run`` being the report's id for this bulk
run, so that the history of any instance tells which bulk run changed it. An instance the
action is refused for (it changed since it was listed) or that fails is counted and named in
the report; the others go on. A dry run lists and counts, and changes nothing.

Killed in the middle, a bulk run leaves every instance either changed with its history entry
(one commit does both) or as it was: running it again with the same filter picks up the rest.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any

import attrs
import orjson
from attrs import field, frozen

from gorch import clock
from gorch.engine._audit import audit
from gorch.engine._operating import Operating
from gorch.engine._records import OPERATOR_STATUSES, RunStatus
from gorch.errors import GorchError, InputError
from gorch.interpreter import renames_of
from gorch.limits import MAX_REASON, is_text
from gorch.state import MAIN_THREAD
from gorch.store.base import InstanceRecord

BULK_ACTIONS = ("retry", "cancel", "pause", "unpause", "goto")
"""The actions :meth:`Bulk.bulk` applies."""

PAGE = 500
"""Rows read from the store at a time."""

MAX_FAILURES = 1000
"""Failures a report names (it counts them all)."""


@frozen
class BulkFailure:
    """An instance the bulk action failed for: its ``id`` and the ``error``'s message."""

    id: str
    error: str


@frozen
class BulkReport:
    """What :meth:`Bulk.bulk` did (or, in a dry run, would do).

    Attributes:
        action: the action; ``run``: this bulk run's id, in each history entry's reason.
        matched: instances that match the filter (up to ``limit``).
        changed: instances the action was applied to (0 in a dry run).
        failed: instances it was refused for or failed for; ``failures``: the first
            :data:`MAX_FAILURES` of them, each with its error.
        sample: the first ids matched (``sample=`` of the call).
        more: the run stopped at ``limit`` and more instances match (run it again).
        dry_run: whether nothing was written.
    """

    action: str
    run: str
    matched: int = 0
    changed: int = 0
    failed: int = 0
    failures: tuple[BulkFailure, ...] = field(factory=tuple)
    sample: tuple[str, ...] = field(factory=tuple)
    more: bool = False
    dry_run: bool = False

    @property
    def ok(self) -> bool:
        """Nothing failed."""
        return not self.failed

    def __str__(self) -> str:
        if self.dry_run:
            head = f"would {self.action} {self.matched} instance(s)"
        else:
            head = f"{self.action}: {self.changed} of {self.matched} changed, {self.failed} failed"
        if self.more:
            head += " (stopped at the limit: more match)"
        return "\n".join([head, *(f"- {f.id}: {f.error}" for f in self.failures)])

    def to_json(self) -> dict[str, Any]:
        """The report as a JSON object (the HTTP API's and ``--json``'s)."""
        return {
            "action": self.action,
            "run": self.run,
            "dry_run": self.dry_run,
            "ok": self.ok,
            "matched": self.matched,
            "changed": self.changed,
            "failed": self.failed,
            "failures": [{"id": f.id, "error": f.error} for f in self.failures],
            "sample": list(self.sample),
            "more": self.more,
        }


class Bulk(Operating):
    """:class:`~gorch.engine.Engine`'s operator actions over a filter."""

    def bulk(
        self,
        action: str,
        *,
        workflow: str | None = None,
        status: RunStatus | str | Sequence[RunStatus | str] | None = None,
        at: str | None = None,
        older_than: timedelta | None = None,
        to: str | None = None,
        thread: str = MAIN_THREAD,
        dry_run: bool = False,
        limit: int | None = None,
        sample: int = 10,
        actor: str | None = None,
        reason: str | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> BulkReport:
        """Apply ``action`` to every instance that matches the filter, each in its own commit.

        Args:
            action: ``"retry"``, ``"cancel"``, ``"pause"``, ``"unpause"`` or ``"goto"``.
            workflow: only instances of this registered workflow.
            status: only these statuses (default: every status the action is allowed in,
                :data:`OPERATOR_STATUSES`); one the action is not allowed in is refused.
            at: only instances with a thread at this statement (its waits, its failed step).
            older_than: only instances not written for longer than this (``updated_at``:
                the last commit, so a waiting instance's wait began at least this long ago).
            to, thread: goto's target statement (required for goto) and thread.
            dry_run: list and count the matches; change nothing.
            limit: stop after this many matches (the report's ``more`` says if others match).
            sample: how many matched ids the report lists.
            actor, reason: who acts and why, in every history entry (after the bulk run's tag).
            progress: called with the number of instances handled so far, after each one.

        Raises:
            InputError: an unknown action, a status it is not allowed in, a goto without
                ``to``, a bad ``older_than``, ``limit``, ``sample``, ``actor`` or ``reason``.
            NotFoundError: ``workflow`` is not registered.
        """
        run = uuid.uuid4().hex[:8]
        statuses = _statuses(action, status)
        _check_args(action, to, older_than, limit, sample)
        if workflow is not None:
            self._class(workflow)
        tag = f"[bulk {action} {run}]"
        audit(actor, reason)
        why = f"{tag} {reason}"[:MAX_REASON] if reason and reason.strip() else tag
        apply = None if dry_run else self._bulk_call(action, to, thread, actor, why)
        cutoff = None if older_than is None else clock.now() - older_than
        rows = self._matching(workflow, statuses, at, cutoff)
        report = BulkReport(action, run, dry_run=dry_run)
        return _run(report, rows, apply, limit, sample, progress)

    # -- the engine package's own ------------------------------------------------------------

    def _bulk_call(
        self, action: str, to: str | None, thread: str, actor: str | None, reason: str
    ) -> Callable[[str], Any]:
        """The operator call ``action`` on one id, with the bulk run's actor and reason."""
        if action == "goto":
            assert to is not None
            return lambda id: self.goto(id, to, thread, actor=actor, reason=reason)
        method = getattr(self, action)
        return lambda id: method(id, actor=actor, reason=reason)

    def _matching(
        self,
        workflow: str | None,
        statuses: list[str],
        at: str | None,
        cutoff: datetime | None,
    ) -> Iterator[InstanceRecord]:
        """The rows that match, newest first, a keyset page at a time."""
        after = None
        while True:
            rows = self.store.list_instances(
                workflow=workflow, status=statuses, limit=PAGE, after=after
            )
            for row in rows:
                if cutoff is not None and not row.updated_at < cutoff:
                    continue
                if at is not None and not self._stands_at(row, at):
                    continue
                yield row
            if len(rows) < PAGE:
                return
            after = (rows[-1].created_at, rows[-1].id)

    def _stands_at(self, row: InstanceRecord, at: str) -> bool:
        """Whether a thread of the row is at the statement ``at`` (its class's renames read
        old names as the new ones); a state that does not parse stands nowhere."""
        cls = self.workflows.get(row.workflow)
        try:
            threads = orjson.loads(row.state).get("threads", [])
            steps = [t.get("cur_step") for t in threads]
        except (orjson.JSONDecodeError, AttributeError):
            return False
        renames = renames_of(cls) if cls is not None else {}
        return any(renames.get(s, s) == at for s in steps if isinstance(s, str))


def _run(
    report: BulkReport,
    rows: Iterator[InstanceRecord],
    apply: Callable[[str], Any] | None,
    limit: int | None,
    sample: int,
    progress: Callable[[int], None] | None,
) -> BulkReport:
    """Apply to each row (``apply`` None: a dry run), up to ``limit``; the report."""
    changed = 0
    failures: list[BulkFailure] = []
    failed = 0
    ids: list[str] = []
    more = False
    for row in rows:
        if limit is not None and len(ids) >= limit:
            more = True
            break
        ids.append(row.id)
        if apply is not None:
            try:
                apply(row.id)
                changed += 1
            except GorchError as exc:  # refused (it changed since it was listed), or failed
                failed += 1
                if len(failures) < MAX_FAILURES:
                    failures.append(BulkFailure(row.id, f"{type(exc).__name__}: {exc}"))
        if progress is not None:
            progress(len(ids))
    return attrs.evolve(
        report, matched=len(ids), changed=changed, failed=failed, failures=tuple(failures),
        sample=tuple(ids[:sample]), more=more,
    )  # fmt: skip


def _statuses(action: str, status: Any) -> list[str]:
    """The status texts to select: those asked for, each allowed for ``action``."""
    if action not in BULK_ACTIONS:
        raise InputError(
            f"a bulk action is one of {', '.join(BULK_ACTIONS)}, not {action!r}; nothing changed"
        )
    allowed = [s.value for s in OPERATOR_STATUSES[action]]
    if status is None:  # (pausing a paused instance does nothing: not by default)
        return [s for s in allowed if not (action == "pause" and s == RunStatus.PAUSED)]
    asked = [status] if isinstance(status, str) else list(status)
    try:
        wanted = [RunStatus(s).value for s in asked]
    except ValueError:
        known = ", ".join(s.value for s in RunStatus)
        raise InputError(f"unknown status in {asked!r}; use one of {known}") from None
    refused = [s for s in wanted if s not in allowed]
    if refused:
        raise InputError(
            f"{action} is allowed for {', '.join(allowed)} instances, not "
            f"{', '.join(refused)}; nothing changed"
        )
    return wanted


def _check_args(action: str, to: str | None, older_than: Any, limit: Any, sample: Any) -> None:
    """Refuse a bulk call's bad arguments before anything is read."""
    if action == "goto" and not is_text(to):
        raise InputError("a bulk goto needs to=, the statement to move each instance to")
    if action != "goto" and to is not None:
        raise InputError(f"to= is goto's target; {action} takes none")
    if older_than is not None and (
        not isinstance(older_than, timedelta) or older_than < timedelta(0)
    ):
        raise InputError(f"older_than must be a timedelta of 0 or more, not {older_than!r}")
    for name, value, least in (("limit", limit, 1), ("sample", sample, 0)):
        if value is None and name == "limit":
            continue
        if not isinstance(value, int) or isinstance(value, bool) or value < least:
            raise InputError(f"{name} must be a whole number from {least}, not {value!r}")
