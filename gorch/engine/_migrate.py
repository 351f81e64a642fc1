"""Migrating stored data in bulk: ``Engine.migrate`` and ``gorch migrate``.

Data written by an older ``data_version`` of a class is migrated whenever the engine loads the
instance (and written back, with a ``migrated`` history entry, by its next commit). This
migrates every such instance now, one commit each, so that nothing waits for an event to be
upgraded (and reporting tools that read the rows see the new shape). A dry run migrates in
memory only and counts. A migration that fails leaves its instance as it was and is reported
(as by :meth:`~gorch.engine.Engine.check`), and the others go on.
"""

from __future__ import annotations

from typing import Any

import orjson
from attrs import field, frozen

from gorch.engine._audit import By, audit
from gorch.engine._check import Checking, CheckProblem, Findings
from gorch.engine._op import Operation
from gorch.engine._records import RunStatus
from gorch.engine._rows import status_of
from gorch.errors import InputError, UnreadableInstanceError
from gorch.interpreter import data_version_of
from gorch.store.base import InstanceRecord


@frozen
class MigrationReport:
    """What :meth:`Migrating.migrate` did (or, in a dry run, would do).

    Attributes:
        checked: instances read.
        migrated: instances whose data was (dry run: would be) migrated and written.
        current: instances whose data was at the class's version already.
        failed: instances whose migration failed (each problem in ``problems``).
        problems: the failures, each once, with the ids (as :class:`CheckProblem`).
        dry_run: whether nothing was written.
    """

    checked: int = 0
    migrated: int = 0
    current: int = 0
    failed: int = 0
    problems: tuple[CheckProblem, ...] = field(factory=tuple)
    dry_run: bool = False

    @property
    def ok(self) -> bool:
        """No migration failed."""
        return not self.failed

    def __str__(self) -> str:
        verb = "would migrate" if self.dry_run else "migrated"
        head = (
            f"{verb} {self.migrated} of {self.checked} instance(s); {self.current} current, "
            f"{self.failed} failed"
        )
        return "\n".join([head, *(f"- {p}" for p in self.problems)])

    def to_json(self) -> dict[str, Any]:
        """The report as a JSON object (``gorch migrate --json``)."""
        return {
            "ok": self.ok,
            "dry_run": self.dry_run,
            "checked": self.checked,
            "migrated": self.migrated,
            "current": self.current,
            "failed": self.failed,
            "problems": [p.to_json() for p in self.problems],
        }


class Migrating(Checking):
    """:class:`~gorch.engine.Engine`'s bulk migration."""

    def migrate(
        self,
        workflow: str | None = None,
        *,
        dry_run: bool = False,
        sample: int = 10,
        actor: str | None = None,
        reason: str | None = None,
    ) -> MigrationReport:
        """Migrate the data of every instance (of ``workflow``, or of every registered
        workflow; finished ones too) written by an older ``data_version`` of its class.

        Each instance is migrated in a commit of its own (its state, data and timers, and a
        ``migrated`` history entry); one whose migration fails is left as it was.

        Args:
            workflow: only this registered workflow.
            dry_run: run the migrations in memory and count; write nothing.
            sample: how many ids each problem lists.
            actor, reason: who migrates and why, kept in each ``migrated`` entry (as for every
                operator call; an instance migrated by a later commit of its own has none).

        Raises:
            NotFoundError: ``workflow`` is not registered.
            InputError: a bad ``sample``, ``actor`` or ``reason``.
        """
        by = audit(actor, reason)
        if workflow is not None:
            self._class(workflow)
        if not isinstance(sample, int) or isinstance(sample, bool) or sample < 1:
            raise InputError(f"sample must be a whole number from 1, not {sample!r}")
        counts = {"migrated": 0, "current": 0, "failed": 0}
        found = Findings(sample)
        for row in self._rows_of(workflow, None, 500):
            cls = self.workflows.get(row.workflow)
            if cls is None:
                continue
            found.checked += 1
            if _stored_version(row) == data_version_of(cls):
                counts["current"] += 1
                continue
            try:
                done = self._migrate_one(row, dry_run, by)
            except UnreadableInstanceError as exc:
                counts["failed"] += 1
                found.add(row.workflow, row.id, ("failed_migration", exc.field, exc.reason, ()))
                continue
            counts["migrated" if done else "current"] += 1
        return MigrationReport(found.checked, **counts, problems=found.problems(),
                               dry_run=dry_run)  # fmt: skip

    # -- the engine package's own ------------------------------------------------------------

    def _migrate_one(self, row: InstanceRecord, dry_run: bool, by: By) -> bool:
        """Migrate one instance (read again while it changes); whether its data was old."""
        if dry_run:
            return Operation(self, row, leased=False).migrated != 0

        def body(fresh: InstanceRecord) -> bool:
            op = Operation(self, fresh, leased=False)
            if not op.migrated:  # someone's commit migrated it meanwhile
                return False
            op.history.insert(0, op.migration(**by))  # (so the commit adds none of its own)
            op.mark(status_of(fresh) or RunStatus.FAILED)
            return True

        return self._operate(row.id, body, "migrate")  # type: ignore[no-any-return]


def _stored_version(row: InstanceRecord) -> int:
    """The data version stored in the row's state (1 for a state from before versions; 0 for
    one that does not parse: loading it then says what is wrong)."""
    try:
        version = orjson.loads(row.state).get("data_version", 1)
    except (orjson.JSONDecodeError, AttributeError):
        return 0
    return version if isinstance(version, int) else 0
