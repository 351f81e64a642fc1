"""Compiling a definition into its index, once per workflow class, checking every rule.

:func:`compile_definition` walks a statement tree once. It builds the index of
:mod:`gorch.interpreter._index` and collects every rule the tree breaks, as sentences that start
with the statement's path. The rules are of three sorts:

- every statement with a name needs a string one, unique in the whole definition;
- what may stand inside what (:data:`FITS`): only ``Case``s in a ``Switch`` or an ``If``, only
  ``On`` and ``Timeout`` in a ``Wait``, and neither anywhere else;
- one check per kind of statement (:data:`CHECKS`), run once its body is compiled: a step's
  action is callable, a ``Break`` is inside a loop, a loop can block...

To add a kind of statement, give it a check here (if it has rules of its own) and a place in
:data:`FITS` (if it holds statements of a restricted kind).

:func:`program` keeps the compiled index of each workflow class; the interpreter's calls find
it there, so compiling costs nothing after a class's first instance.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
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
    K_WAIT,
    K_WAITFOR,
    Default,
    Section,
    Stmt,
)
from gorch.errors import DefinitionError
from gorch.interpreter._handlers import ASYNC_GENERATOR, is_async_generator, is_lifecycle
from gorch.interpreter._index import (
    EVENT_KINDS,
    KIND_NAMES,
    Program,
    StatementInfo,
    node_at,
)
from gorch.state import MAIN_THREAD

UNNAMED = frozenset((K_SECTION, K_SWITCH, K_IF, K_BREAK, K_CONTINUE, K_RETURN))
"""The kinds of statement that have no name (every other kind needs a unique one)."""


class Compiler:
    """One compilation of a tree: the name index being built and the problems found so far."""

    __slots__ = ("by_name", "problems", "seen")

    def __init__(self) -> None:
        self.problems: list[str] = []
        self.by_name: dict[str, StatementInfo] = {}
        self.seen: dict[str, list[str]] = {}  # every place each name is used

    def problem(self, info: StatementInfo, text: str) -> None:
        self.problems.append(f"{info.label}: {text}")

    def visit(
        self,
        node: Any,
        parent: StatementInfo | None,
        idx: int,
        path: tuple[int, ...],
        loop: StatementInfo | None,
        thread: str,
    ) -> StatementInfo:
        """Compile ``node`` and its body; check it once its body is compiled."""
        info = StatementInfo(node, parent, idx, path)
        info.loop = loop
        info.thread = thread
        if info.kind not in UNNAMED:
            self.name(node, info)
        if info.kind == K_FOR:
            loop = info
        elif info.kind == K_GO:  # a thread body of its own: a Break there leaves no outer loop
            loop, thread = None, node.name
        kids = getattr(node, "kids", ())
        fits = FITS.get(info.kind, statement_fits)
        for i, kid in enumerate(kids):
            if not isinstance(kid, Stmt):
                self.problem(info, f"item {i} is not a statement: {kid!r}{not_a_statement(kid)}")
            elif fits(self, info, i, kid, len(kids)):
                info.kids.append(self.visit(kid, info, i, (*path, i), loop, thread))
        check = CHECKS.get(info.kind)
        if check is not None:
            check(self, node, info)
        return info

    def name(self, node: Any, info: StatementInfo) -> None:
        name = node.name
        if not isinstance(name, str) or not name:
            self.problem(info, f"the name must be a non-empty string, got {name!r}")
        else:
            self.seen.setdefault(name, []).append(info.label)
            self.by_name.setdefault(name, info)

    def duplicates(self) -> None:
        """One problem per name used more than once, listing every place it is used."""
        for name, places in self.seen.items():
            if len(places) > 1:
                self.problems.append(
                    f"the name {name!r} is used {len(places)} times, at "
                    + " and at ".join(places)
                    + "; every named statement needs a unique name"
                )


def compile_definition(tree: Any) -> tuple[Program, list[str]]:
    """Index ``tree`` and collect every rule it breaks (as sentences starting with a path)."""
    if not isinstance(tree, Stmt):
        return Program(StatementInfo(Section(()), None, 0, ()), {}), [
            f"definition() must return a statement tree built with S(...), got {tree!r}"
        ]
    compiler = Compiler()
    root = compiler.visit(tree, None, 0, (), None, MAIN_THREAD)
    compiler.duplicates()
    return Program(root, compiler.by_name), compiler.problems


# --------------------------------------------------------------------------------------------
# What may stand inside what: {kind of the container: whether a kid fits, reporting if not}

Fits = Callable[[Compiler, StatementInfo, int, Stmt, int], bool]


def case_fits(c: Compiler, info: StatementInfo, i: int, kid: Stmt, count: int) -> bool:
    """Inside a Switch or an If: Cases only, and a Default only last."""
    if kid._kind != K_CASE:
        c.problem(info, f"item {i} must be a Case or Default, got {kid!r}")
        return False
    if isinstance(kid, Default) and i != count - 1:
        c.problem(info, f"Default {kid.name!r} must be the last case")
    return True


def event_fits(c: Compiler, info: StatementInfo, i: int, kid: Stmt, count: int) -> bool:
    """Inside a Wait: its events only."""
    if kid._kind not in EVENT_KINDS:
        c.problem(info, f"item {i} must be On(...) or Timeout(...), got {kid!r}")
        return False
    return True


def statement_fits(c: Compiler, info: StatementInfo, i: int, kid: Stmt, count: int) -> bool:
    """Anywhere else: any statement but a case or an event."""
    if kid._kind == K_CASE:
        c.problem(info, f"{kid!r} is only allowed inside Switch(...)")
        return False
    if kid._kind in EVENT_KINDS:
        c.problem(info, f"{kid!r} is only allowed inside Wait(...)")
        return False
    return True


FITS: dict[int, Fits] = {K_SWITCH: case_fits, K_IF: case_fits, K_WAIT: event_fits}


# --------------------------------------------------------------------------------------------
# One check per kind of statement: {kind: check(compiler, node, info)}


def check_step(c: Compiler, node: Any, info: StatementInfo) -> None:
    if not callable(node.action):
        c.problem(
            info,
            f"the action must be callable (a method or function), got {node.action!r}; "
            f"pass self.method, not self.method()",
        )
    elif is_async_generator(node.action):
        c.problem(info, f"the action {ASYNC_GENERATOR}")
    t = node.timeout
    if t is not None and (
        isinstance(t, bool)
        or not isinstance(t, (int, float, timedelta))
        or (t.total_seconds() if isinstance(t, timedelta) else t) <= 0
    ):
        c.problem(
            info,
            f"timeout must be a positive timedelta or number of seconds (or None), got {t!r}",
        )
    if not isinstance(node.transaction, bool):
        c.problem(info, f"transaction must be True or False, got {node.transaction!r}")


def check_loop_exit(c: Compiler, node: Any, info: StatementInfo) -> None:
    """A Break or a Continue: inside a For of its own thread's body."""
    if info.loop is None:
        word = KIND_NAMES[info.kind]
        c.problem(info, f"{word}() must be inside a For loop of the same thread")


def check_condition(c: Compiler, node: Any, info: StatementInfo) -> None:
    """A condition is a value that ``definition()`` computes (and computes again to re-read
    it): a function there is always true."""
    cond = node.cond
    if callable(cond):
        what = getattr(cond, "__name__", type(cond).__name__)
        c.problem(
            info,
            f"the condition is a function ({what}), which is always true; gorch re-reads a "
            f"condition by calling definition() again, so write the expression itself "
            f"(self.paid > 0, not lambda: self.paid > 0)",
        )


def check_wait_for(c: Compiler, node: Any, info: StatementInfo) -> None:
    check_condition(c, node, info)
    handler = node.handler
    if handler is not None and not callable(handler):
        c.problem(info, f"the handler must be callable or None, got {handler!r}")
    elif handler is not None and is_async_generator(handler):
        c.problem(info, f"the handler {ASYNC_GENERATOR}")


def check_on(c: Compiler, node: Any, info: StatementInfo) -> None:
    handler = node.handler
    if handler is None:
        pass
    elif is_lifecycle(handler):
        info.lifecycle = True
        for method in ("setup", "handle", "teardown"):
            if is_async_generator(getattr(handler, method)):
                c.problem(info, f"the handler's {method} {ASYNC_GENERATOR}")
    elif not callable(handler):
        c.problem(
            info,
            f"the handler must be a Handler (with setup, handle and teardown), a callable or "
            f"None, got {handler!r}",
        )
    elif is_async_generator(handler):
        c.problem(info, f"the handler {ASYNC_GENERATOR}")
    if not all(isinstance(r, str) and r for r in node.roles):
        c.problem(info, f"roles must be non-empty strings, got {list(node.roles)!r}")


def check_wait(c: Compiler, node: Any, info: StatementInfo) -> None:
    if not node.kids:
        c.problem(info, "a Wait needs at least one On(...) or Timeout(...)")


def check_switch(c: Compiler, node: Any, info: StatementInfo) -> None:
    if not node.kids:
        c.problem(info, "a Switch needs at least one Case(...)")


def check_for(c: Compiler, node: Any, info: StatementInfo) -> None:
    check_condition(c, node, info)
    if not node.kids:
        c.problem(info, "the loop body is empty; it would spin forever")
    elif not can_block(info):
        c.problem(
            info,
            "the loop body never runs a Step, waits, returns or breaks, so its condition could "
            "never change; add a Step or a Wait to the body",
        )


def can_block(info: StatementInfo) -> bool:
    """Whether a loop body contains something that blocks, runs a step or leaves the loop."""
    for kid in info.kids:
        if kid.kind in (K_STEP, K_WAIT, K_WAITFOR, K_RETURN, K_BREAK):
            return True
        if kid.kind != K_GO and can_block(kid):
            return True
    return False


CHECKS: dict[int, Callable[[Compiler, Any, StatementInfo], None]] = {
    K_STEP: check_step,
    K_BREAK: check_loop_exit,
    K_CONTINUE: check_loop_exit,
    K_WAITFOR: check_wait_for,
    K_ON: check_on,
    K_WAIT: check_wait,
    K_SWITCH: check_switch,
    K_CASE: check_condition,
    K_FOR: check_for,
}


# --------------------------------------------------------------------------------------------
# The compiled programs, by class

_PROGRAMS: dict[type, Program] = {}


def program(wf: Any) -> tuple[Program, Any]:
    """The compiled program of ``wf``'s class, and the tree it was built from (if just built)."""
    cls = type(wf)
    prog = _PROGRAMS.get(cls)
    if prog is not None:
        return prog, None
    tree = wf.definition()
    prog, problems = compile_definition(tree)
    if problems:
        raise DefinitionError([f"{cls.__name__}: {p}" for p in problems])
    _PROGRAMS[cls] = prog
    return prog, tree


def find_statement(wf: Any, name: str) -> Any:
    """The statement named ``name`` in ``wf``'s definition, or None (through the name index)."""
    prog, tree = program(wf)
    info = prog.by_name.get(name)
    if info is None:
        return None
    return node_at(wf.definition() if tree is None else tree, info)


def not_a_statement(kid: object) -> str:
    """What to do about ``kid``, found where a statement belongs (a hint, or nothing)."""
    if isinstance(kid, list | tuple):
        return " (unpack a list with *)"
    if callable(kid):
        name = getattr(kid, "__name__", "action")
        call = f"self.{name}" if hasattr(kid, "__self__") else name
        return f"; a body holds statements: to run {call} there, write Step({name!r}, {call})"
    return ""
