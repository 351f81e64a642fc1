"""Repairing an instance's data: :meth:`DataRepairs.set_data` and the :class:`DataPlan` it
returns.

The new data is either an object of the workflow class (it replaces the data) or a dict, a JSON
merge patch (RFC 7396) applied to the data's JSON: a key set to ``null`` is removed (the field
then takes its default), an object is merged key by key, anything else replaces. Either way
the result is built into the class as an event's payload is (strictly: an unknown key is
refused), so that what is written is data the code can load; one that does not fit is an
``InputError`` with one line per problem and changes nothing. Like goto, a dry run computes the
same plan as the change and writes nothing.
"""

from __future__ import annotations

import difflib
from typing import Any

import orjson
from attrs import frozen

from gorch import serde
from gorch.engine._audit import audit
from gorch.engine._core import EngineCore
from gorch.engine._op import Operation
from gorch.engine._records import HistoryKind, RunStatus
from gorch.errors import InputError
from gorch.state import ThreadStatus
from gorch.store.base import InstanceRecord


@frozen
class DataPlan:
    """What :meth:`DataRepairs.set_data` changes (or, in a dry run, would change).

    Attributes:
        id, workflow: the instance and its workflow.
        before, after: the data as JSON (plain dicts, lists and scalars), before and after.
        applied: whether the change was written (False in a dry run, and when nothing
            changes).
    """

    id: str
    workflow: str
    before: Any
    after: Any
    applied: bool = False

    @property
    def changed(self) -> bool:
        """Whether the data would be different."""
        return bool(self.before != self.after)

    def diff(self) -> list[str]:
        """A unified diff of the pretty-printed JSON, one line each (empty if unchanged)."""
        return list(
            difflib.unified_diff(
                _pretty(self.before), _pretty(self.after),
                f"{self.id} data (before)", f"{self.id} data (after)", lineterm="",
            )
        )  # fmt: skip

    def describe(self) -> list[str]:
        """The plan in words, then the diff."""
        if not self.changed:
            return [f"the data of {self.id!r} would not change"]
        verb = "changed" if self.applied else "would change"
        return [f"the data of {self.id!r} ({self.workflow}) {verb}:", *self.diff()]

    def to_json(self) -> dict[str, Any]:
        """The plan as a JSON object (the HTTP API's and ``gorch data --json``'s)."""
        return {
            "instance": self.id,
            "workflow": self.workflow,
            "before": self.before,
            "after": self.after,
            "changed": self.changed,
            "applied": self.applied,
            "diff": self.diff(),
        }


class DataRepairs(EngineCore):
    """:class:`~gorch.engine.Engine`'s data repairs."""

    def set_data(
        self,
        id: str,
        data: Any,
        *,
        replace: bool = False,
        dry_run: bool = False,
        actor: str | None = None,
        reason: str | None = None,
    ) -> DataPlan:
        """Replace or patch the data of instance ``id``.

        Args:
            id: the instance.
            data: an object of the workflow's class (it becomes the data), or a dict: a JSON
                merge patch (RFC 7396) of the data's JSON (``{"address": "Via Po 2"}`` changes
                one field, ``{"note": None}`` resets one to its default).
            replace: ``data`` is the whole new data as JSON (a request body, a file), built
                into the class strictly, as an event's payload is.
            dry_run: only say what would change.
            actor, reason: who changes it and why, kept in the ``data_set`` history entry
                (its input is the data before, its output the data after).

        A waiting instance with a thread at a ``WaitFor`` runs on at once, as after an event,
        so a condition the new data makes true passes now (else nothing would wake it);
        otherwise the status stays as it was and nothing runs (a paused or failed instance
        goes on at its ``unpause`` or ``retry``). A change to nothing writes nothing.

        Raises:
            InputError: ``data`` is neither, or the result does not fit the class (one line
                per problem in ``details``), or a bad ``actor``/``reason``; nothing changed.
            InstanceStatusError: the instance finished or was cancelled (its data is a record
                of what happened, not to be rewritten).
            NotFoundError, UnreadableInstanceError: no such instance; a row that does not load.
        """
        by = audit(actor, reason)

        def body(row: InstanceRecord) -> DataPlan:
            status = self._require(row, "set_data")
            op = Operation(self, row, leased=False)
            new, plan = _plan(row, op.wf, data, replace)
            if dry_run or not plan.changed:
                return plan
            op.wf = new
            op.note(HistoryKind.DATA_SET, row.workflow, input=serde.dumps(plan.before),
                    output=serde.dumps(plan.after), **by)  # fmt: skip
            if status is RunStatus.WAITING and any(
                t.status is ThreadStatus.WAITING_CONDITION for t in op.state.threads
            ):
                op.dirty = True  # as an accepted event: committed before any user code runs
                op.run_accepted(f"the data repair of {id!r}")
            else:
                op.mark(status)
            return DataPlan(plan.id, plan.workflow, plan.before, plan.after, applied=True)

        plan: DataPlan = self._operate(id, body, "set_data")
        return plan


def _plan(row: InstanceRecord, wf: Any, data: Any, replace: bool) -> tuple[Any, DataPlan]:
    """The new workflow object and the plan, for the data ``wf`` loaded from ``row``."""
    cls = type(wf)
    before = _json(wf)
    if replace:
        serde.check_depth(data, "data")
        wanted = data
    elif isinstance(data, dict):
        serde.check_depth(data, "patch")
        wanted = merge_patch(before, data)
    elif isinstance(data, cls):
        wanted = _json(data)
    else:
        raise InputError(
            f"the data of {row.id!r} is set from a {cls.__name__} (it replaces the data) or a "
            f"dict (a JSON merge patch of it), not {type(data).__name__}; nothing changed",
            workflow_id=row.id,
        )
    try:
        new = serde.structure_input(wanted, cls)
    except InputError:
        raise
    except Exception as exc:
        details = serde.error_details(exc, path="data")
        raise InputError(
            f"the new data of {row.id!r} does not fit {cls.__name__}: {'; '.join(details)}; "
            f"nothing changed",
            workflow_id=row.id,
            details=details,
        ) from None
    return new, DataPlan(row.id, row.workflow, before, _json(new))


def merge_patch(target: Any, patch: Any) -> Any:
    """``target`` with the JSON merge patch ``patch`` applied (RFC 7396): an object merges key
    by key (a ``None`` value removes the key), anything else replaces. Neither is changed."""
    if not isinstance(patch, dict):
        return patch
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


def _json(value: Any) -> Any:
    """The JSON data gorch writes for ``value`` (what the store keeps), as plain values."""
    return orjson.loads(serde.dumps(value))


def _pretty(value: Any) -> list[str]:
    return orjson.dumps(value, option=orjson.OPT_INDENT_2).decode().splitlines()
