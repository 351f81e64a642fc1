"""The compiled index of a definition: where every statement stands, and how to reach it.

A definition is compiled once per workflow class (by :mod:`gorch.interpreter._compile`) into
an index: every statement gets a position (its path of child indexes from the root) and a link
to its parent, and every named statement is found by name through a dict. Continuing "after
statement X" walks up the parent links, so a step's cost does not grow with the size of the
definition.

The index holds the *shape* only. A statement's values (conditions, a ``Go``'s id, a
``Timeout``'s duration) are read from whichever tree ``definition()`` returned last, at the
statement's path: :func:`node_at`, and :func:`checked_value` for the values that must have a
type.
"""

from __future__ import annotations

from typing import Any

from gorch.dsl import (
    K_BREAK,
    K_CASE,
    K_CONTINUE,
    K_FOR,
    K_GO,
    K_IF,
    K_ON,
    K_RETURN,
    K_SECTION,
    K_STEP,
    K_SWITCH,
    K_TIMEOUT,
    K_WAIT,
    K_WAITFOR,
    Default,
)
from gorch.errors import DefinitionError
from gorch.state import MAIN_THREAD

KIND_NAMES = {
    K_SECTION: "S",
    K_STEP: "Step",
    K_IF: "If",
    K_SWITCH: "Switch",
    K_CASE: "Case",
    K_FOR: "For",
    K_BREAK: "Break",
    K_CONTINUE: "Continue",
    K_RETURN: "Return",
    K_WAIT: "Wait",
    K_ON: "On",
    K_TIMEOUT: "Timeout",
    K_WAITFOR: "WaitFor",
    K_GO: "Go",
}
"""Each kind of statement as a user writes it, for the labels of errors."""

EVENT_KINDS = (K_ON, K_TIMEOUT)
"""The kinds of statement a ``Wait`` waits for: its events."""


class StatementInfo:
    """One statement's place in a compiled definition."""

    __slots__ = (
        "cls",
        "idx",
        "kids",
        "kind",
        "label",
        "lifecycle",
        "loop",
        "name",
        "parent",
        "path",
        "thread",
    )

    def __init__(self, node: Any, parent: StatementInfo | None, idx: int, path: tuple[int, ...]):
        self.cls: type = type(node)
        self.kind: int = node._kind
        self.name: str = node.name
        # Typed Any: only the root has no parent, and the interpreter never leaves the root.
        self.parent: Any = parent
        self.idx = idx
        self.path = path
        self.kids: list[StatementInfo] = []
        self.loop: Any = None  # innermost For of the same thread body (validated: set for Break)
        self.thread: str = MAIN_THREAD  # the thread body this statement belongs to
        self.lifecycle = False  # an On whose handler has setup/teardown
        kind_name = "Default" if isinstance(node, Default) else KIND_NAMES[self.kind]
        if self.name:
            here = f"{kind_name} {self.name!r}"
        elif parent is None:
            here = "S"
        else:
            here = f"{kind_name}[{idx}]"
        self.label: str = here if parent is None else f"{parent.label} > {here}"


class Program:
    """A definition compiled for the interpreter: positions, parent links, a name index."""

    __slots__ = ("by_name", "root")

    def __init__(self, root: StatementInfo, by_name: dict[str, StatementInfo]) -> None:
        self.root = root
        self.by_name = by_name


def node_at(tree: Any, info: StatementInfo) -> Any:
    """The statement of ``tree`` at ``info``'s position."""
    n = tree
    for i in info.path:
        n = n.kids[i]
    return n


def checked_value(node: Any, info: StatementInfo, workflow_id: str = "") -> Any:
    """A Timeout's delay or a Go's thread id, or a DefinitionError saying what is wrong."""
    if info.kind == K_TIMEOUT:
        try:
            return node.delay
        except TypeError:
            problem = f"after must be a timedelta or a number of seconds, got {node.after!r}"
    else:
        gid = node.id
        if gid is None or isinstance(gid, str):
            return gid or node.name
        problem = f"id must be a string, got {gid!r}"
    raise DefinitionError([f"{info.label}: {problem}"], workflow_id=workflow_id)
