"""A definition that changes under running instances: renames, data versions, and where a
stored thread no longer fits the code.

A workflow class may declare how its stored instances map onto the code now:

- ``renames: ClassVar[dict[str, str]] = {"old": "new"}``: a statement (a step, a wait, an
  event, a ``Go``) that was renamed. A stored thread that stands at, waits for, or is named
  after an old name is read as the new one (:func:`apply_renames`), before the interpreter sees
  it.
- ``data_version: ClassVar[int] = N`` (1 when absent) and a classmethod
  ``migrate(cls, data: dict, version: int) -> dict`` that upgrades stored data from ``version``
  to ``version + 1``: the engine runs it, step by step, on data written by an older version.

:func:`evolution_problems` holds these declarations to their rules at registration, and
:func:`misfits` says, for ``gorch check``, every way a stored thread no longer fits a compiled
definition: the same rules as the interpreter's refusal to run such a thread, given as data
instead of raised.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from attrs import frozen

from gorch.dsl import K_GO
from gorch.interpreter._index import EVENT_KINDS, KIND_NAMES, Program
from gorch.interpreter._run import POSITIONS
from gorch.interpreter._status import ACTIVE, WAITING_EVENT
from gorch.state import MAIN_THREAD, State, Thread

NO_RENAMES: Mapping[str, str] = {}


def renames_of(cls: type) -> Mapping[str, str]:
    """The class's ``renames`` (old name to new name); empty when it declares none."""
    renames = getattr(cls, "renames", None)
    if not renames:  # the common case, first: this runs on every load of an instance
        return NO_RENAMES
    return renames if isinstance(renames, Mapping) else NO_RENAMES


def data_version_of(cls: type) -> int:
    """The class's ``data_version``: the version of the data its code writes (1 if absent)."""
    version = getattr(cls, "data_version", 1)
    return version if isinstance(version, int) and not isinstance(version, bool) else 1


def apply_renames(state: State, renames: Mapping[str, str]) -> bool:
    """Map every old name of ``state``'s threads (their statement, event, body and wait events)
    to its new name, in place; whether anything changed."""
    changed = False
    for t in state.threads:
        for attr in ("cur_step", "cur_callback", "name"):
            old = getattr(t, attr)
            new = renames.get(old) if old else None
            if new is not None:
                setattr(t, attr, new)
                changed = True
        for e in t.wait_events:
            new = renames.get(e.req.name)
            if new is not None:
                e.req.name = new
                changed = True
    return changed


def evolution_problems(cls: type, prog: Program) -> list[str]:
    """What is wrong with the class's ``renames``, ``data_version`` and ``migrate``."""
    return _rename_problems(cls, prog) + _version_problems(cls)


def _rename_problems(cls: type, prog: Program) -> list[str]:
    renames = getattr(cls, "renames", None)
    if renames is None:
        return []
    if not isinstance(renames, Mapping) or not all(
        isinstance(k, str) and k and isinstance(v, str) and v for k, v in renames.items()
    ):
        return [
            f"renames must be a dict of old statement name to new statement name (non-empty "
            f"strings), got {renames!r}"
        ]
    problems = []
    for old, new in renames.items():
        where = f"renames {old!r} -> {new!r}"
        if new in renames:
            problems.append(
                f"{where}: {new!r} is renamed again (to {renames[new]!r}); renames do not "
                f"chain: map every old name straight to the name it has now"
            )
        elif old in prog.by_name:
            problems.append(
                f"{where}: {old!r} is still a statement of the definition; a rename maps a "
                f"name that is gone. Remove the entry, or rename the statement"
            )
        elif new not in prog.by_name:
            problems.append(
                f"{where}: the definition has no statement {new!r}; map the old name to a "
                f"statement the code has"
            )
    return problems


def _version_problems(cls: type) -> list[str]:
    version = getattr(cls, "data_version", 1)
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        return [f"data_version must be a whole number from 1, got {version!r}"]
    if version > 1 and not callable(getattr(cls, "migrate", None)):
        return [
            f"data_version is {version}, but the class has no migrate(); add a classmethod "
            f"migrate(cls, data: dict, version: int) -> dict that upgrades data from version "
            f"to version + 1, so that instances written by older code can be read"
        ]
    return []


@frozen
class Misfit:
    """One way a stored thread does not fit a definition.

    Attributes:
        kind: ``"thread"`` (its ``Go`` body is gone), ``"statement"`` (it stands at a name
            the code lacks) or ``"event"`` (it waits for one), each with ``"_kind"``
            appended when the name exists as another kind of statement, or elsewhere.
        name: the name that does not fit.
        expected: what the thread needs there (``"Go statement"``, ``"Step"``...).
        found: what the code has of that name (``"Wait in thread 'notify'"``), or ``""``.
        choices: the names of the code that would fit, for suggestions.
    """

    kind: str
    name: str
    expected: str
    found: str = ""
    choices: tuple[str, ...] = ()


def misfits(prog: Program, t: Thread) -> list[Misfit]:
    """Every way thread ``t`` does not fit ``prog`` (what the interpreter would refuse)."""
    out = []
    if t.name != MAIN_THREAD:
        body = prog.by_name.get(t.name)
        if body is None or body.kind != K_GO:
            out.append(_misfit(prog, "thread", t.name, "Go statement", (K_GO,), None))
    if t.cur_step:
        out += _position(prog, t)
    if t.wait_events:
        out += _events(prog, t)
    return out


def _position(prog: Program, t: Thread) -> list[Misfit]:
    """The misfit of the statement ``t`` stands at (and of the event it resumes after)."""
    info = prog.by_name.get(t.cur_step)
    kinds, expected = POSITIONS[t.status]
    if info is None or info.kind not in kinds or info.thread != t.name:
        return [_misfit(prog, "statement", t.cur_step, expected, kinds, t.name)]
    if not t.cur_callback:
        return []
    event = prog.by_name.get(t.cur_callback)  # resuming after the handler of an event
    if event is not None and event.parent is info:
        return []
    expected = f"event of Wait {t.cur_step!r}"
    choices = tuple(k.name for k in info.kids)
    if event is None:
        return [Misfit("event", t.cur_callback, expected, "", choices)]
    return [Misfit("event_kind", t.cur_callback, expected, _found(event), choices)]


def _events(prog: Program, t: Thread) -> list[Misfit]:
    """The misfits of the events ``t`` waits for (or waits to tear down)."""
    by_name = prog.by_name
    waiting = by_name.get(t.cur_step) if t.status is WAITING_EVENT else None
    out = []
    for e in t.wait_events:
        event = by_name.get(e.req.name)
        if event is None or event.kind not in EVENT_KINDS:
            out.append(_misfit(prog, "event", e.req.name, "On or Timeout", EVENT_KINDS, None))
        elif waiting is not None and e.status in ACTIVE and event.parent is not waiting:
            expected = f"event of Wait {t.cur_step!r}"
            choices = tuple(k.name for k in waiting.kids)
            out.append(Misfit("event_kind", e.req.name, expected, _found(event), choices))
    return out


def _misfit(
    prog: Program, what: str, name: str, expected: str, kinds: Any, thread: str | None
) -> Misfit:
    """The misfit of ``name``, which is not a statement of ``kinds`` (in body ``thread``)."""
    choices = tuple(
        n
        for n, i in prog.by_name.items()
        if i.kind in kinds and (thread is None or i.thread == thread)
    )
    info = prog.by_name.get(name)
    if info is None:
        return Misfit(what, name, expected, "", choices)
    return Misfit(f"{what}_kind", name, expected, _found(info), choices)


def _found(info: Any) -> str:
    here = "the main body" if info.thread == MAIN_THREAD else f"thread {info.thread!r}"
    return f"a {KIND_NAMES[info.kind]} in {here}"
