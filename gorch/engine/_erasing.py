"""Deleting an instance's personal data on request: ``Engine.delete_data`` (GDPR's right to
erasure; luno/workflow's RequestedDataDeleted and DataDeleted).

The workflow class names the fields that hold personal data (``personal_data``, see
:mod:`gorch.interpreter._personal`). An erasure, in one commit of the instance
(:meth:`Store.erase <gorch.store.Store.erase>`, one transaction):

- sets each of those fields of the data to its neutral value (its default, or the empty value
  of its type), so that the data still loads and the instance can go on;
- scrubs the payloads of every history entry (input, output, error, reason) and the answers
  kept for idempotency keys (:class:`~gorch.engine._scrub.Scrubber`): values under those
  fields' names are reset, and every text equal to (or containing) an erased value becomes
  ``"<erased>"``. Entries keep their kind, name, thread, time and order: the history keeps its
  shape, only payload text changes;
- records a ``data_deleted`` history entry with the actor, the reason (scrubbed too) and the
  names of the fields erased (never their values).

It is allowed in every status (requests come after the fact: finished, cancelled and failed
instances too); an instance that another process is running waits as any operator call does
(``BusyError`` after ``busy_wait``).
"""

from __future__ import annotations

from typing import Any

import attrs
import orjson

from gorch import clock, serde
from gorch.engine._audit import audit
from gorch.engine._core import EngineCore
from gorch.engine._op import Operation, ReadAgain
from gorch.engine._records import HistoryKind, Instance
from gorch.engine._rows import timers_of
from gorch.engine._scrub import Scrubber
from gorch.errors import ConflictError, ErasureError
from gorch.interpreter import neutral_values, personal_data_of
from gorch.store.base import HistoryRecord, InstanceRecord, KeyRecord, Write


class Erasing(EngineCore):
    """:class:`~gorch.engine.Engine`'s deletion of personal data."""

    def delete_data(
        self, id: str, *, actor: str | None = None, reason: str | None = None
    ) -> Instance:
        """Erase the personal data of instance ``id``: the fields its class names in
        ``personal_data``, in its data and in every payload of its history and of its
        idempotency keys, in one commit (see the module docstring). A repeat erases nothing
        new and records another entry.

        Args:
            id: the instance.
            actor, reason: who asked and why, kept in the ``data_deleted`` entry (as for
                every operator call).

        Returns:
            The instance as it is after the erasure.

        Raises:
            NotFoundError: no instance has that id.
            ErasureError: its workflow class declares no ``personal_data``.
            UnreadableInstanceError: its row does not load (nothing to erase it from safely).
            BusyError: another process is running it and did not finish in ``busy_wait``.
            InputError: a bad ``actor`` or ``reason``.
        """
        by = audit(actor, reason)

        def body(row: InstanceRecord) -> Instance:
            cls = self.workflows.get(row.workflow)
            if cls is not None and not personal_data_of(cls):
                raise ErasureError(
                    f"cannot delete the personal data of instance {id!r}: {cls.__name__} "
                    f"names no personal data fields; declare them, e.g. personal_data: "
                    f"ClassVar[tuple[str, ...]] = ('name', 'email'). Nothing changed.",
                    workflow_id=id,
                )
            op = Operation(self, row, leased=False)
            cls = self.workflows[row.workflow]  # registered: the row loaded
            scrub, data = _scrubbed_data(cls, op.wf)
            history, keys = self._scrubbed_rows(id, scrub)
            entry = HistoryRecord(
                id, clock.now(), HistoryKind.DATA_DELETED, row.workflow,
                input=serde.dumps({"fields": list(personal_data_of(cls))}),
                actor=by["actor"], reason=scrub.text(by["reason"]),
            )  # fmt: skip
            now = clock.now()
            new = attrs.evolve(
                row, state=serde.dumps(op.state), data=data, updated_at=now, lease_owner=None,
                lease_expires=None, last_error=scrub.text(row.last_error),
            )  # fmt: skip
            added = [op.migration(**by), entry] if op.migrated else [entry]
            timers = timers_of(op.state) if op.timers is None else None
            write = Write(new, row.version, timers=timers, history=added)
            try:
                new.version = self.store.erase(write, history, keys)
            except ConflictError:
                raise ReadAgain() from None  # nothing done: read again
            return self._instance(new, timers=True)

        return self._operate(id, body, "delete_data")  # type: ignore[no-any-return]

    # -- the engine package's own ------------------------------------------------------------

    def _scrubbed_rows(
        self, id: str, scrub: Scrubber
    ) -> tuple[list[HistoryRecord], list[KeyRecord]]:
        """The instance's history rows and keys that the erasure changes, scrubbed (after
        ``scrub`` learnt the values they hold under the erased fields' names)."""
        history = self.store.history(id)
        keys = self.store.keys(id)
        for h in history:
            scrub.learn_text(h.input)
            scrub.learn_text(h.output)
        for k in keys:
            scrub.learn_text(k.output)
        changed = []
        for h in history:
            new = attrs.evolve(
                h, input=scrub.json_text(h.input), output=scrub.json_text(h.output),
                error=scrub.text(h.error), reason=scrub.text(h.reason),
            )  # fmt: skip
            if new != h:
                changed.append(new)
        rekeyed = []
        for k in keys:
            output = scrub.json_text(k.output)
            if output != k.output:
                rekeyed.append(attrs.evolve(k, output=output))
        return changed, rekeyed


def _scrubbed_data(cls: type, wf: Any) -> tuple[Scrubber, str]:
    """A scrubber that knows the erased fields and the values ``wf`` holds in them, and the
    data with each of them set to its neutral value (as stored JSON)."""
    neutral = neutral_values(cls)
    scrub = Scrubber({path.rpartition(".")[2]: value for path, value in neutral.items()})
    doc = orjson.loads(serde.dumps(wf))
    for path, value in neutral.items():
        *outer, name = path.split(".")
        holder = doc
        for part in outer:
            holder = holder.get(part) if isinstance(holder, dict) else None
        if isinstance(holder, dict) and name in holder:
            scrub.add(holder[name])
            holder[name] = value
    return scrub, serde.dumps(serde.structure(doc, cls))
