"""The deploy check: would the code about to run still run every unfinished instance?

:meth:`Checking.check` reads every instance that is not finished or cancelled, a page at a
time, and holds it to the registered classes the way the engine will when it next loads it:
its workflow is registered, its row and state load, each thread's body (a ``Go``), statement
and awaited events still exist as the same kind of statement in the same body (after the
class's ``renames``), its data migrates to the class's ``data_version`` and structures into the
class. ``gorch check`` prints the report and exits non-zero when it is not ok, so that CI can
hold a deploy back.

Each problem is reported once, with how many instances have it and the first few ids, so a
report of 100,000 stranded instances is a few lines. Instances mostly share a handful of
shapes (where each thread stands, what it waits for), so the verdict on a shape is kept and
most instances cost a parse of their state and their data.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import Any

from attrs import field, frozen

from gorch import serde
from gorch.engine._core import EngineCore
from gorch.engine._records import RunStatus
from gorch.engine._rows import migrated, registered, structure
from gorch.errors import (
    InputError,
    MigrationError,
    SerializationError,
    UnreadableInstanceError,
    did_you_mean,
    suggest,
)
from gorch.interpreter import Misfit, apply_renames, data_version_of, misfits, program, renames_of
from gorch.samples import sample
from gorch.state import State
from gorch.store.base import InstanceRecord

UNFINISHED = (RunStatus.RUNNING, RunStatus.WAITING, RunStatus.FAILED, RunStatus.PAUSED)
"""The statuses of the instances a deploy can strand (finished and cancelled ones run no
more code)."""

PROBLEM_KINDS = {
    "unknown_workflow": "instances of a workflow that is not registered",
    "missing_thread": "threads run the body of a Go statement the code no longer has",
    "changed_thread": "threads run the body of a Go statement that is now another statement",
    "missing_statement": "threads stand at a statement the code no longer has",
    "changed_statement": "threads stand at a statement that is now of another kind or body",
    "missing_event": "threads wait for an event the code no longer has",
    "changed_event": "threads wait for an event that is now of another kind or Wait",
    "unreadable_row": "a damaged column, or a status this gorch does not know",
    "unreadable_state": "the stored state does not load",
    "failed_migration": "the class's migrate() fails on the stored data",
    "unreadable_data": "the stored data does not load into the class",
}
"""Every :attr:`CheckProblem.kind`, with what it means."""

_WHAT = {
    "thread": "run the body of Go {name!r}",
    "statement": "stand at {expected} {name!r}",
    "event": "wait for event {name!r} ({expected})",
}


@frozen
class CheckProblem:
    """One problem of a check, found in one or more instances.

    Attributes:
        kind: what is wrong (a key of :data:`PROBLEM_KINDS`).
        workflow: the registered workflow name concerned.
        name: the name that is gone or changed (a statement, an event, a Go's name, the
            workflow's name); for data, the places in the data that do not load.
        message: the problem in a sentence, and what to do.
        count: how many instances have it.
        ids: the first of them (at most the check's ``sample``).
        suggestions: the closest names the code has now, best first.
    """

    kind: str
    workflow: str
    name: str
    message: str
    count: int
    ids: tuple[str, ...]
    suggestions: tuple[str, ...] = ()

    def __str__(self) -> str:
        more = f", +{self.count - len(self.ids)} more" if self.count > len(self.ids) else ""
        hint = did_you_mean(self.suggestions)
        return (
            f"{self.workflow}: {self.message}.{hint} {self.count} instance(s): "
            f"{', '.join(self.ids)}{more}"
        )

    def to_json(self) -> dict[str, Any]:
        """The problem as a JSON object (``gorch check --json``)."""
        return {
            "kind": self.kind,
            "workflow": self.workflow,
            "name": self.name,
            "message": self.message,
            "count": self.count,
            "ids": list(self.ids),
            "suggestions": list(self.suggestions),
        }


@frozen
class CheckReport:
    """What :meth:`Checking.check` found.

    Attributes:
        checked: how many unfinished instances were read.
        problems: each problem once, most instances first.
    """

    checked: int
    problems: tuple[CheckProblem, ...] = field(factory=tuple)

    @property
    def ok(self) -> bool:
        """No instance has a problem: the code can run every one of them."""
        return not self.problems

    def __str__(self) -> str:
        if self.ok:
            return f"ok: the code runs all {self.checked} unfinished instance(s)"
        lines = [f"{len(self.problems)} problem(s) in {self.checked} unfinished instance(s):"]
        return "\n".join(lines + [f"- {p}" for p in self.problems])

    def to_json(self) -> dict[str, Any]:
        """The report as a JSON object (``gorch check --json``)."""
        return {
            "ok": self.ok,
            "checked": self.checked,
            "problems": [p.to_json() for p in self.problems],
        }


Finding = tuple[str, str, str, tuple[str, ...]]
"""One problem of one instance: kind, name, message, suggestions."""


class Findings:
    """The problems found so far, each once, with its count and its first ids."""

    def __init__(self, sample: int) -> None:
        self.sample = sample
        self.checked = 0
        self.seen: dict[tuple[str, str, str, str], tuple[list[int], list[str], tuple[str, ...]]]
        self.seen = {}

    def add(self, workflow: str, id: str, finding: Finding) -> None:
        kind, name, message, suggestions = finding
        entry = self.seen.get((kind, workflow, name, message))
        if entry is None:
            entry = self.seen[(kind, workflow, name, message)] = ([0], [], suggestions)
        entry[0][0] += 1
        if len(entry[1]) < self.sample:
            entry[1].append(id)

    def problems(self) -> tuple[CheckProblem, ...]:
        out = [
            CheckProblem(kind, wf, name, message, count[0], tuple(ids), sugg)
            for (kind, wf, name, message), (count, ids, sugg) in self.seen.items()
        ]
        return tuple(sorted(out, key=lambda p: (-p.count, p.workflow, p.kind, p.name)))


class Checking(EngineCore):
    """:class:`~gorch.engine.Engine`'s deploy check."""

    def check(
        self, *, workflow: str | None = None, sample: int = 10, page: int = 5000
    ) -> CheckReport:
        """Check every unfinished instance (not finished or cancelled) against the registered
        code: what the engine will refuse to run, each problem once, with the ids affected.

        Args:
            workflow: only the instances of this workflow name.
            sample: how many ids each problem lists (its ``count`` has them all).
            page: how many rows are read at a time (the check streams: memory holds one
                page). Large pages, because a SQL store sorts the unfinished rows for each
                page it reads (its index on status does not hold their order).

        Returns:
            a :class:`CheckReport`; its ``ok`` is True when the code runs every instance.

        Example::

            report = engine.check()
            if not report.ok:
                for p in report.problems:
                    print(p.kind, p.name, p.count, p.ids, p.suggestions)
        """
        for what, value in (("sample", sample), ("page", page)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise InputError(f"{what} must be a whole number from 1, not {value!r}")
        found = Findings(sample)
        shapes: dict[Any, list[Finding]] = {}
        for row in self._rows_of(workflow, UNFINISHED, page):
            found.checked += 1
            for finding in self._check_row(row, shapes):
                found.add(row.workflow, row.id, finding)
        return CheckReport(found.checked, found.problems())

    # -- the engine package's own ------------------------------------------------------------

    def _rows_of(
        self, workflow: str | None, statuses: Sequence[str] | None, page: int
    ) -> Iterator[InstanceRecord]:
        """Every row (of ``workflow``, with one of ``statuses``), a page at a time."""
        after = None
        while True:
            rows = self.store.list_instances(
                workflow=workflow, status=statuses, limit=page, after=after
            )
            yield from rows
            if len(rows) < page:
                return
            after = (rows[-1].created_at, rows[-1].id)

    def _check_row(self, row: InstanceRecord, shapes: dict[Any, list[Finding]]) -> list[Finding]:
        """The problems of one row (the verdict on its state's shape from ``shapes``)."""
        cls = self.workflows.get(row.workflow)
        if cls is None:
            message = (
                f"instances of workflow {row.workflow!r}, which is not registered: register "
                f"its class again, or cancel them"
            )
            close = tuple(suggest(row.workflow, self.workflows))
            return [("unknown_workflow", row.workflow, message, close)]
        try:
            registered(row, self.workflows)
            state = structure(row, "state", row.state, State)
        except UnreadableInstanceError as exc:
            kind = "unreadable_state" if exc.field == "state" else "unreadable_row"
            return [(kind, exc.field, f"its {exc.field} does not load: {exc.reason}", ())]
        renames = renames_of(cls)
        if renames:
            apply_renames(state, renames)
        key = (row.workflow, shape(state))
        out = shapes.get(key)
        if out is None:
            out = shapes[key] = position_findings(cls, state)
        data = data_finding(cls, row, state)
        return out if data is None else [*out, data]


def shape(state: State) -> tuple[Any, ...]:
    """What the verdict on a state's positions depends on (not its ids, pcs or setup data)."""
    return tuple(
        (
            t.name,
            t.status,
            t.cur_step,
            t.cur_callback,
            tuple((e.req.name, e.status) for e in t.wait_events),
        )
        for t in state.threads
    )


def position_findings(cls: type, state: State) -> list[Finding]:
    """The problems of where the state's threads stand, in ``cls``'s compiled definition."""
    prog = program(sample(cls))[0]
    out = []
    for t in state.threads:
        out += [_finding(cls, m) for m in misfits(prog, t)]
    return out


def _finding(cls: type, m: Misfit) -> Finding:
    what, _, changed = m.kind.partition("_")
    doing = _WHAT[what].format(name=m.name, expected=m.expected)
    if changed:
        message = f"threads {doing}, but it is now {m.found}"
    else:
        message = f"threads {doing}, which {cls.__name__}.definition() no longer has"
    message += "; deploy code that has it, declare a rename, or move them with goto"
    kind = f"{'changed' if changed else 'missing'}_{what}"
    return kind, m.name, message, tuple(suggest(m.name, m.choices, cutoff=0.4))


_VALUE = re.compile(r", got .*?(?= @ |$)")
_INDEX = re.compile(r"\[\d+\]")


def data_finding(cls: type, row: InstanceRecord, state: State) -> Finding | None:
    """The problem of the row's data (migrated to ``cls``'s data version), or None."""
    text = row.data
    current = data_version_of(cls)
    if state.data_version != current:
        try:
            text = migrated(cls, text, state.data_version, current, row.id)
        except MigrationError as exc:
            message = f"{cls.__name__}.migrate(data, {exc.version}) fails: {exc.reason}"
            return "failed_migration", f"version {exc.version}", message, ()
    try:
        serde.loads(text, cls)
    except SerializationError as exc:
        # One problem per place that does not load, not per stored value: without the value
        # and with every list index alike, instances that fail the same way group together.
        details = sorted({_INDEX.sub("[*]", _VALUE.sub("", d)) for d in exc.details})
        places = ", ".join(d.rpartition(" @ ")[2] for d in details) or "the data"
        message = f"the data does not load as {cls.__name__}: {'; '.join(details)}"
        return "unreadable_data", places, message, ()
    return None
