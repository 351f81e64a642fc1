"""The pure interpreter: resume, handle_callback, goto, validate.

It advances a :class:`~gorch.state.State` through a workflow's definition until every thread
is blocked. It does no I/O and reads no clock itself (a ``Timeout`` reads gorch's one clock
when its wait begins); everything durable is the caller's job, through the ``checkpoint``
function that ``resume`` calls after every change worth saving.

How it runs, and why it is fast:

- A definition is compiled once per workflow class into an index: every statement gets a
  position (its path of child indexes from the root) and a link to its parent, and every named
  statement is found by name through a dict. Continuing "after statement X" walks up the parent
  links, so a step's cost does not grow with the size of the definition.
- Conditions, ``Go`` ids and ``Timeout`` durations are values read when ``definition()`` is
  called. The interpreter calls it again only when it needs such a value and user code (a step
  or a handler) has run since the last call; actions and handlers are taken from whichever tree
  is at hand. So the *shape* of the tree must not depend on the workflow's data (choose between
  statements with ``If``/``Switch``); gorch checks every statement it visits and stops with a
  :class:`~gorch.errors.DefinitionError` if the shape changed.
- Work happens in units, each applied to the state only when it completed: advancing a thread
  through control flow to its next blocking point, running one step, passing one ``WaitFor``,
  handling one callback, one goto. Each unit adds one to the thread's and the state's ``pc``.
  A unit that raises changes nothing.
"""

from __future__ import annotations

import inspect
import re
import typing
from collections.abc import Callable, Iterable
from typing import Any

from attrs import define, evolve, field

from gorch import serde
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
    Section,
    Stmt,
    Timeout,
)
from gorch.errors import (
    AmbiguousCallback,
    CallbackNotFound,
    DefinitionError,
    GorchError,
    GotoError,
    HandlerError,
    InputError,
    StaleCallback,
    StateMismatchError,
    StepError,
    StepLimitExceeded,
    WorkflowFinishedError,
    did_you_mean,
    suggest,
)
from gorch.samples import sample
from gorch.state import (
    MAIN_THREAD,
    CallbackRequest,
    CheckpointType,
    EventStatus,
    State,
    Thread,
    ThreadStatus,
    WaitEvent,
    WorkflowStatus,
)

__all__ = [
    "ANY",
    "DEFAULT_MAX_STEPS",
    "NO_PAYLOAD",
    "GotoError",
    "GotoPlan",
    "Outcome",
    "Program",
    "StatementInfo",
    "awaited",
    "cancel",
    "class_problems",
    "find_statement",
    "goto",
    "handle_callback",
    "is_lifecycle",
    "payload_type",
    "program",
    "resume",
    "run",
    "validate",
    "waiting_for",
]

DEFAULT_MAX_STEPS = 10_000
"""How many steps one ``resume`` may execute before it stops with ``StepLimitExceeded``."""

Checkpoint = Callable[[CheckpointType], object]
# Called with the thread and the statement's name before user code with side effects runs: a
# step's action, a WaitFor's handler, a Handler's setup or teardown. The engine commits what is
# pending there, so no side effect ever runs ahead of the state it depends on.
Before = Callable[[Thread, str], object]

_EXECUTING = ThreadStatus.EXECUTING
_RESUMING = ThreadStatus.RESUMING
_WAITING_EVENT = ThreadStatus.WAITING_EVENT
_WAITING_CONDITION = ThreadStatus.WAITING_CONDITION
_PENDING_SETUP = EventStatus.PENDING_SETUP
_SETUP = EventStatus.SETUP
_SETUP_ERROR = EventStatus.SETUP_ERROR
_PENDING_TEARDOWN = EventStatus.PENDING_TEARDOWN
_TEARDOWN_ERROR = EventStatus.TEARDOWN_ERROR
_ACTIVE = frozenset((_PENDING_SETUP, _SETUP, _SETUP_ERROR))
_TEARING_DOWN = frozenset((_PENDING_TEARDOWN, _TEARDOWN_ERROR))

_KIND_NAMES = {
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
# What advancing a thread ends in.
_BLOCKED, _PASS, _FINISHED = 0, 1, 2


# --------------------------------------------------------------------------------------------
# The compiled index of a definition


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
        kind_name = "Default" if isinstance(node, Default) else _KIND_NAMES[self.kind]
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


def is_lifecycle(handler: object) -> bool:
    cls = type(handler)
    return all(callable(getattr(cls, m, None)) for m in ("setup", "handle", "teardown"))


_ASYNC = (
    "is a coroutine function (async def); gorch does not run coroutines yet, so its body would "
    "never run. Define it with def (call async code with asyncio.run inside it if you must)"
)


def _is_async(fn: object) -> bool:
    """Whether calling ``fn`` gives a coroutine or async generator instead of running it."""
    target = getattr(fn, "func", fn)  # functools.partial
    if not (inspect.isfunction(target) or inspect.ismethod(target)):
        target = getattr(type(target), "__call__", None)  # noqa: B004 - a callable object
    return inspect.iscoroutinefunction(target) or inspect.isasyncgenfunction(target)


def _value_problems(prog: Program, tree: Any) -> list[str]:
    """What is wrong with the values of one tree (a Timeout's ``after``, a Go's ``id``): these
    may come from the workflow's data, so they are checked on the tree at hand, not compiled
    into the class's program."""
    problems = []
    for info in prog.by_name.values():
        if info.kind == K_TIMEOUT or info.kind == K_GO:
            try:
                _checked_value(_node_at(tree, info), info)
            except DefinitionError as exc:
                problems.extend(exc.problems)
    return problems


def _checked_value(node: Any, info: StatementInfo, workflow_id: str = "") -> Any:
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


def _compile(tree: Any) -> tuple[Program, list[str]]:
    """Index ``tree`` and collect every rule it breaks (as sentences starting with a path)."""
    problems: list[str] = []
    by_name: dict[str, StatementInfo] = {}
    seen: dict[str, list[str]] = {}

    if not isinstance(tree, Stmt):
        return Program(StatementInfo(Section(()), None, 0, ()), {}), [
            f"definition() must return a statement tree built with S(...), got {tree!r}"
        ]

    def visit(
        node: Any,
        parent: StatementInfo | None,
        idx: int,
        path: tuple[int, ...],
        loop: StatementInfo | None,
        thread: str,
    ) -> StatementInfo:
        info = StatementInfo(node, parent, idx, path)
        info.loop = loop
        info.thread = thread
        kind = info.kind
        where = info.label
        if kind not in (K_SECTION, K_SWITCH, K_IF, K_BREAK, K_CONTINUE, K_RETURN):
            name = node.name
            if not isinstance(name, str) or not name:
                problems.append(f"{where}: the name must be a non-empty string, got {name!r}")
            else:
                seen.setdefault(name, []).append(where)
                by_name.setdefault(name, info)
        if kind == K_STEP:
            if not callable(node.action):
                problems.append(
                    f"{where}: the action must be callable (a method or function), "
                    f"got {node.action!r}; pass self.method, not self.method()"
                )
            elif _is_async(node.action):
                problems.append(f"{where}: the action {_ASYNC}")
        elif kind in (K_BREAK, K_CONTINUE) and loop is None:
            word = "Break" if kind == K_BREAK else "Continue"
            problems.append(f"{where}: {word}() must be inside a For loop of the same thread")
        elif kind == K_WAITFOR:
            if node.handler is not None and not callable(node.handler):
                problems.append(
                    f"{where}: the handler must be callable or None, got {node.handler!r}"
                )
            elif node.handler is not None and _is_async(node.handler):
                problems.append(f"{where}: the handler {_ASYNC}")
        elif kind == K_ON:
            h = node.handler
            if h is not None:
                if is_lifecycle(h):
                    info.lifecycle = True
                    problems.extend(
                        f"{where}: the handler's {method} {_ASYNC}"
                        for method in ("setup", "handle", "teardown")
                        if _is_async(getattr(h, method))
                    )
                elif not callable(h):
                    problems.append(
                        f"{where}: the handler must be a Handler (with setup, handle and "
                        f"teardown), a callable or None, got {h!r}"
                    )
                elif _is_async(h):
                    problems.append(f"{where}: the handler {_ASYNC}")
            if not all(isinstance(r, str) and r for r in node.roles):
                problems.append(
                    f"{where}: roles must be non-empty strings, got {list(node.roles)!r}"
                )

        kids = node.kids if hasattr(node, "kids") else ()
        if kind == K_FOR:
            loop = info
        elif kind == K_GO:
            loop = None
            thread = node.name
        for i, kid in enumerate(kids):
            if not isinstance(kid, Stmt):
                hint = " (unpack a list with *)" if isinstance(kid, list | tuple) else ""
                problems.append(f"{where}: item {i} is not a statement: {kid!r}{hint}")
                continue
            kk = kid._kind
            if kind in (K_SWITCH, K_IF):
                if kk != K_CASE:
                    problems.append(f"{where}: item {i} must be a Case or Default, got {kid!r}")
                    continue
                if isinstance(kid, Default) and i != len(kids) - 1:
                    problems.append(f"{where}: Default {kid.name!r} must be the last case")
            elif kind == K_WAIT:
                if kk not in (K_ON, K_TIMEOUT):
                    problems.append(
                        f"{where}: item {i} must be On(...) or Timeout(...), got {kid!r}"
                    )
                    continue
            elif kk == K_CASE:
                problems.append(f"{where}: {kid!r} is only allowed inside Switch(...)")
                continue
            elif kk in (K_ON, K_TIMEOUT):
                problems.append(f"{where}: {kid!r} is only allowed inside Wait(...)")
                continue
            info.kids.append(visit(kid, info, i, (*path, i), loop, thread))

        if kind == K_WAIT and not kids:
            problems.append(f"{where}: a Wait needs at least one On(...) or Timeout(...)")
        if kind == K_SWITCH and not kids:
            problems.append(f"{where}: a Switch needs at least one Case(...)")
        if kind == K_FOR:
            if not kids:
                problems.append(f"{where}: the loop body is empty; it would spin forever")
            elif not _can_block(info):
                problems.append(
                    f"{where}: the loop body never runs a Step, waits, returns or breaks, so "
                    f"its condition could never change; add a Step or a Wait to the body"
                )
        return info

    root = visit(tree, None, 0, (), None, MAIN_THREAD)
    for name, places in seen.items():
        if len(places) > 1:
            problems.append(
                f"the name {name!r} is used {len(places)} times, at "
                + " and at ".join(places)
                + "; every named statement needs a unique name"
            )
    return Program(root, by_name), problems


def _can_block(info: StatementInfo) -> bool:
    """Whether a loop body contains something that blocks, runs a step or leaves the loop."""
    for kid in info.kids:
        if kid.kind in (K_STEP, K_WAIT, K_WAITFOR, K_RETURN, K_BREAK):
            return True
        if kid.kind != K_GO and _can_block(kid):
            return True
    return False


_PROGRAMS: dict[type, Program] = {}


def program(wf: Any) -> tuple[Program, Any]:
    """The compiled program of ``wf``'s class, and the tree it was built from (if just built)."""
    cls = type(wf)
    prog = _PROGRAMS.get(cls)
    if prog is not None:
        return prog, None
    tree = wf.definition()
    prog, problems = _compile(tree)
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
    return _node_at(wf.definition() if tree is None else tree, info)


def _node_at(tree: Any, info: StatementInfo) -> Any:
    n = tree
    for i in info.path:
        n = n.kids[i]
    return n


def validate(definition: Any) -> None:
    """Check a workflow class, or a definition, against every rule; raise once, listing every
    problem.

    Problems found: a name used twice (every named statement shares one namespace), ``Break``
    or ``Continue`` outside a loop, a non-callable step action, an ``On`` handler that is
    neither a ``Handler`` nor callable, a coroutine function (``async def``) where gorch would
    call a function, a ``Case`` outside a ``Switch``, an event outside a ``Wait``, a loop body
    that can never change its condition, a ``Timeout`` whose ``after`` is not a duration, and
    more. Each problem starts with its path in the tree.

    Given a class, the rules are checked on its code, not on one instance's data: the
    definition is read from a stand-in instance (:func:`gorch.samples.sample`), and the types
    of the class's fields are checked to round-trip through JSON (:func:`gorch.serde.check_type`).
    This is what ``Engine(...)`` does for every workflow it registers.

    Args:
        definition: a workflow class, or what a workflow's ``definition()`` returned.

    Raises:
        DefinitionError: with ``.problems``, one sentence per problem.

    Example:
        >>> from gorch import S, Step, Break, validate, DefinitionError
        >>> try:
        ...     validate(S(Step("a", print), Step("a", print), Break()))
        ... except DefinitionError as e:
        ...     print(len(e.problems))
        2
    """
    if isinstance(definition, type):
        problems = [f"{definition.__name__}: {p}" for p in class_problems(definition)]
    else:
        prog, problems = _compile(definition)
        problems += _value_problems(prog, definition)
    if problems:
        raise DefinitionError(problems)


def class_problems(cls: type) -> list[str]:
    """Every problem of workflow class ``cls``: its definition's (read from a stand-in
    instance) and its fields' types'; empty if there is none."""
    if not callable(getattr(cls, "definition", None)):
        return ["the class has no definition() method; a workflow class defines one"]
    try:
        tree = sample(cls).definition()
    except Exception as exc:
        return [
            f"cannot read the definition: {cls.__name__}.definition() on a stand-in instance "
            f"raised {_describe(exc)}. definition() must only build statements from the data "
            f"(conditions and durations), and the class must be constructible; give its "
            f"fields defaults if it needs them"
        ]
    prog, problems = _compile(tree)
    problems += _value_problems(prog, tree)
    return problems + serde.check_type(cls)


# --------------------------------------------------------------------------------------------
# Calling user handlers


class _Missing:
    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


NO_PAYLOAD: Any = _Missing("NO_PAYLOAD")
"""The payload type of an event whose handler takes none (the event carries no body)."""
ANY: Any = _Missing("ANY")
"""The payload or output type of a handler that does not say it: any JSON."""
_HANDLER_SPECS: dict[object, object] = {}


def payload_type(func: Callable[..., Any]) -> object:
    """The type a function handler wants its payload as, ``ANY``, or ``NO_PAYLOAD``."""
    # Functions and methods are keyed by their code, callable objects by their class; anything
    # else (functools.partial, builtins) carries its own signature and is inspected each time.
    key: object = getattr(func, "__code__", None)
    call = getattr(type(func), "__call__", None)  # noqa: B004 - the method, not callability
    if key is None and inspect.isfunction(call):
        key = type(func)
    spec = _HANDLER_SPECS.get(key) if key is not None else None
    if spec is None:
        try:
            params = [
                p
                for p in inspect.signature(func).parameters.values()
                if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)
            ]
        except (TypeError, ValueError):
            params = []
            spec = ANY
        if spec is None:
            if not params:
                spec = NO_PAYLOAD
            else:
                first = params[0]
                target = (
                    func
                    if inspect.isfunction(func) or inspect.ismethod(func)
                    else (type(func).__call__)
                )
                try:
                    hints = typing.get_type_hints(target)
                except Exception:
                    hints = {}
                spec = hints.get(first.name, ANY)
                if spec is Any:
                    spec = ANY
        if key is not None:
            _HANDLER_SPECS[key] = spec
    return spec


def _structure_input(
    func: Callable[..., Any], input: Any, state: State, thread: str, event: str
) -> tuple[bool, Any]:
    """Return (takes_payload, payload structured into the handler's annotation)."""
    spec = payload_type(func)
    if spec is NO_PAYLOAD:
        if input is not None:
            raise _no_payload(state, thread, event, input)
        return False, None
    if spec is ANY:
        return True, input
    if isinstance(spec, type) and isinstance(input, spec):
        return True, input
    try:
        return True, serde.structure_input(input, spec)
    except Exception as exc:
        name = _type_name(spec)
        if input is None:
            details = ["payload: nothing was sent"]
            problem = "it needs a payload, but none was sent"
        else:
            details = serde.error_details(exc, path="payload")
            problem = f"it does not fit {name}: " + "; ".join(details)
        raise InputError(
            f"workflow {state.id!r}: the payload of event {event!r} was refused: {problem}. "
            f"Send a JSON value shaped like {name}.",
            workflow_id=state.id,
            thread=thread,
            statement=event,
            event=event,
            details=details,
        ) from exc


def _no_payload(state: State, thread: str, event: str, input: Any) -> InputError:
    """A payload for an event whose handler takes none: refused, as an unknown field is (it
    would vanish unseen)."""
    shown = repr(input) if len(repr(input)) <= 60 else repr(input)[:57] + "..."
    return InputError(
        f"workflow {state.id!r}: the payload of event {event!r} was refused: the event takes "
        f"no payload, but {shown} was sent. Send it without one (or give its handler a "
        f"parameter to receive it).",
        workflow_id=state.id,
        thread=thread,
        statement=event,
        event=event,
        details=["the event takes no payload @ payload"],
    )


def _type_name(spec: object) -> str:
    """``Pizza``, ``list[Pizza]``: a type as a user wrote it, without module paths."""
    if isinstance(spec, type):
        return spec.__name__
    return re.sub(r"\b(?:\w+\.)+(\w+)", r"\1", str(spec))


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


# --------------------------------------------------------------------------------------------
# One call's view of a workflow: the program, the current tree, the state


class _Run:
    __slots__ = ("before", "prog", "stale", "state", "tree", "wf")

    def __init__(self, wf: Any, state: State, before: Before | None = None) -> None:
        self.wf = wf
        self.state = state
        self.prog, self.tree = program(wf)
        self.stale = False
        self.before = before

    def node(self, info: StatementInfo, fresh: bool = False) -> Any:
        """The statement at ``info`` in the current tree; a fresh tree if ``fresh`` and
        user code ran since the tree was built."""
        tree = self.tree
        if tree is None or (fresh and self.stale):
            tree = self.tree = self.wf.definition()
            self.stale = False
        n: Any = tree
        try:
            for i in info.path:
                n = n.kids[i]
        except (AttributeError, IndexError, TypeError):
            pass  # the shape changed on the way down: reported below
        if n.name != info.name or n.__class__ is not info.cls:
            raise DefinitionError(
                [
                    f"{type(self.wf).__name__}.definition() returned a tree of another shape than "
                    f"before: at {info.label} there is now {n!r}. The statements must not depend "
                    f"on the workflow's data; choose between them with If or Switch"
                ],
                workflow_id=self.state.id,
            )
        return n

    # -- checks ------------------------------------------------------------------------------

    def mismatch(self, t: Thread, what: str, name: str, expected: str) -> StateMismatchError:
        hint = did_you_mean(suggest(name, self.prog.by_name))
        return StateMismatchError(
            f"workflow {self.state.id!r} ({self.state.workflow}): thread {t.id!r} is at "
            f"{what} {name!r}, but {type(self.wf).__name__}.definition() has no {expected} "
            f"of that name in this thread's body.{hint} Nothing was run: deploy the code that "
            f"has it, or move the thread with goto.",
            workflow_id=self.state.id,
            thread=t.id,
            statement=name,
        )

    def check_thread(self, t: Thread) -> None:
        """Refuse a thread whose position the code no longer has."""
        by_name = self.prog.by_name
        if t.name != MAIN_THREAD:
            body = by_name.get(t.name)
            if body is None or body.kind != K_GO:
                raise self.mismatch(t, "thread body", t.name, "Go statement")
        step = t.cur_step
        status = t.status
        if step:
            info = by_name.get(step)
            if status is _EXECUTING:
                ok = info is not None and info.kind == K_STEP
                expected = "Step"
            elif status is _WAITING_EVENT:
                ok = info is not None and info.kind == K_WAIT
                expected = "Wait"
            elif status is _WAITING_CONDITION:
                ok = info is not None and info.kind == K_WAITFOR
                expected = "WaitFor"
            else:
                ok = info is not None and info.kind in (K_STEP, K_WAITFOR, K_WAIT)
                expected = "Step, Wait or WaitFor"
            if not ok or info is None or info.thread != t.name:
                raise self.mismatch(t, "statement", step, expected)
            if t.cur_callback:
                ev = by_name.get(t.cur_callback)
                if ev is None or ev.parent is not info:
                    raise self.mismatch(t, "event", t.cur_callback, f"event of Wait {step!r}")
        elif status is not _RESUMING:
            raise self.mismatch(t, "statement", "", "statement")
        waiting = by_name.get(step) if status is _WAITING_EVENT else None
        for e in t.wait_events:
            ev = by_name.get(e.req.name)
            if ev is None or ev.kind not in (K_ON, K_TIMEOUT):
                raise self.mismatch(t, "event", e.req.name, "On or Timeout")
            if waiting is not None and e.status in _ACTIVE and ev.parent is not waiting:
                raise self.mismatch(t, "event", e.req.name, f"event of Wait {step!r}")

    # -- setup and teardown ------------------------------------------------------------------

    def teardowns(self, t: Thread) -> bool:
        """Tear down every wait event of ``t`` whose wait ended; keep failures for a retry.

        Returns whether anything changed (the caller checkpoints).
        """
        changed = False
        keep: list[WaitEvent] = []
        for e in t.wait_events:
            if e.status not in _TEARING_DOWN:
                keep.append(e)
                continue
            changed = True
            info = self.prog.by_name[e.req.name]
            if self.before is not None:
                self.before(t, e.req.name)
            try:
                self.node(info).handler.teardown(e.req, e.handled)
            except Exception as exc:
                e.status = _TEARDOWN_ERROR
                e.error = _describe(exc)
                keep.append(e)
        if changed:
            t.wait_events = keep
        return changed

    def finish_teardowns(self, checkpoint: Checkpoint | None) -> None:
        """The workflow finished: tear down what is left; keep only threads still holding
        failed teardowns, for a later resume to retry."""
        state = self.state
        changed = False
        for x in state.threads:
            changed = self.teardowns(x) or changed
        state.threads = [x for x in state.threads if x.wait_events]
        if changed and checkpoint is not None:
            checkpoint(CheckpointType.AFTER_TEARDOWN)

    def setups(self, t: Thread, checkpoint: Checkpoint | None) -> None:
        """Set up every event of ``t``'s wait that is not set up yet; keep failures."""
        changed = False
        for e in t.wait_events:
            if e.status is not _PENDING_SETUP and e.status is not _SETUP_ERROR:
                continue
            changed = True
            if self.before is not None:
                self.before(t, e.req.name)
            try:
                data = self.node(self.prog.by_name[e.req.name]).handler.setup(e.req)
            except Exception as exc:
                e.status = _SETUP_ERROR
                e.error = _describe(exc)
                continue
            e.req.setup_data = "" if data is None else str(data)
            e.status = _SETUP
            e.error = ""
        if changed and checkpoint is not None:
            checkpoint(CheckpointType.AFTER_SETUP)

    def end_waits(self, t: Thread, fired: WaitEvent | None = None) -> None:
        """The wait of ``t`` ended: mark its events for teardown (or drop the ones that need
        none: functions, timeouts, and events whose setup never succeeded)."""
        keep = []
        for e in t.wait_events:
            if e.status in _TEARING_DOWN:
                keep.append(e)
            elif e.status is _SETUP and self.prog.by_name[e.req.name].lifecycle:
                e.status = _PENDING_TEARDOWN
                e.handled = e is fired
                keep.append(e)
        t.wait_events = keep

    def new_events(self, wait: StatementInfo, t: Thread, pc: int) -> list[WaitEvent]:
        """The events of a wait that begins now, at ``pc``."""
        events = []
        wid = self.state.id
        for ev in wait.kids:
            req = CallbackRequest(wid, t.id, ev.name, pc, "")
            if ev.kind == K_TIMEOUT:
                node = self.node(ev, fresh=True)
                _checked_value(node, ev, wid)
                req.setup_data = node.setup(req)
                events.append(WaitEvent(Timeout.type, req, _SETUP))
            elif ev.lifecycle:
                h = self.node(ev).handler
                events.append(WaitEvent(getattr(h, "type", type(h).__name__), req))
            else:
                kind = "none" if self.node(ev).handler is None else "function"
                events.append(WaitEvent(kind, req, _SETUP))
        return events

    # -- units of work -----------------------------------------------------------------------

    def execute(self, t: Thread) -> None:
        """Run the step ``t`` is at. On success the thread resumes after it."""
        info = self.prog.by_name[t.cur_step]
        action = self.node(info).action
        if self.before is not None:
            self.before(t, info.name)
        self.stale = True
        try:
            result = action()
        except Exception as exc:
            raise StepError(
                f"workflow {self.state.id!r} ({self.state.workflow}): step {t.cur_step!r} of "
                f"thread {t.id!r} failed: {_describe(exc)}. The thread stays at the step; "
                f"resume again to retry it.",
                workflow_id=self.state.id,
                thread=t.id,
                statement=t.cur_step,
            ) from exc
        if result is not None and inspect.isawaitable(result):
            if inspect.iscoroutine(result):
                result.close()
            raise StepError(
                f"workflow {self.state.id!r}: step {t.cur_step!r} returned an awaitable; "
                f"gorch steps are plain synchronous functions. Define the action with def, "
                f"not async def.",
                workflow_id=self.state.id,
                thread=t.id,
                statement=t.cur_step,
            )
        t.status = _RESUMING
        t.pc += 1
        self.state.pc += 1

    def pass_condition(self, t: Thread, info: StatementInfo, handler: Any) -> None:
        """A WaitFor's condition holds: call its handler; the thread resumes after it."""
        if handler is not None:
            if self.before is not None:
                self.before(t, info.name)
            self.stale = True
            try:
                handler()
            except Exception as exc:
                raise HandlerError(
                    f"workflow {self.state.id!r}: the handler of WaitFor {info.name!r} in "
                    f"thread {t.id!r} failed: {_describe(exc)}. Nothing moved; resume again to "
                    f"retry it.",
                    workflow_id=self.state.id,
                    thread=t.id,
                    statement=info.name,
                    event=info.name,
                ) from exc
        t.status = _RESUMING
        t.cur_step = info.name
        t.cur_callback = ""
        t.pc += 1
        self.state.pc += 1

    def advance(self, t: Thread) -> int:
        """Move ``t`` through control flow to its next blocking point, as one unit.

        Returns ``_BLOCKED``; ``_PASS`` when it reached a ``WaitFor`` whose condition holds
        (the caller passes it, as a unit of its own); or ``_FINISHED`` when the main thread
        returned.
        """
        prog = self.prog
        state = self.state
        by_name = prog.by_name
        cont: StatementInfo
        if not t.cur_step:
            cont = prog.root if t.name == MAIN_THREAD else by_name[t.name]
            i = 0
        elif t.cur_callback:
            cont = by_name[t.cur_callback]
            i = 0
        else:
            at = by_name[t.cur_step]
            cont = at.parent
            i = at.idx + 1
        spawned: list[Thread] = []
        turned: set[StatementInfo] = set()
        pc = t.pc + 1
        status = _RESUMING
        step = ""
        events: list[WaitEvent] = []
        passes = False
        ended = False

        while True:
            kids = cont.kids
            if i < len(kids):
                s = kids[i]
                k = s.kind
                if k == K_STEP:
                    status, step = _EXECUTING, s.name
                    break
                if k == K_WAIT:
                    status, step = _WAITING_EVENT, s.name
                    events = self.new_events(s, t, pc)
                    break
                if k == K_SECTION:
                    cont, i = s, 0
                elif k == K_FOR:
                    if s in turned:
                        raise self.spin(t, s)
                    turned.add(s)
                    if self.node(s, True).cond:
                        cont, i = s, 0
                    else:
                        i += 1
                elif k in (K_IF, K_SWITCH):
                    for case in s.kids:
                        if self.node(case, True).cond:
                            cont, i = case, 0
                            break
                    else:
                        i += 1
                elif k == K_WAITFOR:
                    status, step = _WAITING_CONDITION, s.name
                    passes = bool(self.node(s, True).cond)
                    break
                elif k == K_GO:
                    gid = _checked_value(self.node(s, True), s, state.id)
                    if state.thread(gid) is not None or any(x.id == gid for x in spawned):
                        raise DefinitionError(
                            [
                                f"{s.label}: starts a thread with id {gid!r} while a thread with "
                                f"that id is still running; give Go an id= that differs for every "
                                f"thread it starts (for example from a loop counter)"
                            ],
                            workflow_id=state.id,
                        )
                    spawned.append(Thread(id=gid, name=s.name, status=_RESUMING))
                    i += 1
                elif k == K_RETURN:
                    ended = True
                    break
                elif k == K_BREAK:
                    loop = s.loop
                    cont, i = loop.parent, loop.idx + 1
                else:  # K_CONTINUE: the For statement runs again (condition re-read)
                    loop = s.loop
                    cont, i = loop.parent, loop.idx
            else:
                k = cont.kind
                if k == K_FOR:
                    # End of a turn: the For statement itself runs again (condition re-read).
                    cont, i = cont.parent, cont.idx
                elif k in (K_CASE, K_ON, K_TIMEOUT):
                    up = cont.parent
                    cont, i = up.parent, up.idx + 1
                elif k == K_SECTION and cont.parent is not None:
                    cont, i = cont.parent, cont.idx + 1
                else:  # the root section, or the body of a Go: the thread ends
                    ended = True
                    break

        # Apply the unit.
        t.pc = pc
        state.pc += 1
        if spawned:
            state.threads.extend(spawned)
        if ended:
            return _FINISHED if self.end_thread(t) else _BLOCKED
        t.status = status
        t.cur_step = step
        t.cur_callback = ""
        if events:
            t.wait_events.extend(events)
        return _PASS if passes else _BLOCKED

    def spin(self, t: Thread, loop: StatementInfo) -> DefinitionError:
        return DefinitionError(
            [
                f"{loop.label}: a turn of the loop ran no Step and waited for nothing, so its "
                f"condition can never change and it would spin forever; add a Step or a Wait to "
                f"every path through the body (thread {t.id!r})"
            ],
            workflow_id=self.state.id,
        )

    def end_thread(self, t: Thread) -> bool:
        """Thread ``t`` ran off its body or returned. Returns whether the workflow finished."""
        state = self.state
        if t.id != MAIN_THREAD:
            leftovers = [e for e in t.wait_events if e.status in _TEARING_DOWN]
            state.threads.remove(t)
            if leftovers:  # keep failed teardowns where later resumes retry them
                main = state.thread(MAIN_THREAD)
                if main is not None:
                    main.wait_events.extend(leftovers)
            return False
        # The main thread ended: the workflow is finished, every other thread stops.
        state.status = WorkflowStatus.FINISHED
        for other in state.threads:
            self.end_waits(other)
        state.threads = [x for x in state.threads if x.wait_events]
        for x in state.threads:
            x.status = _RESUMING
            x.cur_step = ""
            x.cur_callback = ""
        return True


# --------------------------------------------------------------------------------------------
# The public calls


def resume(
    wf: Any,
    state: State,
    checkpoint: Checkpoint | None = None,
    *,
    max_steps: int = DEFAULT_MAX_STEPS,
    before: Before | None = None,
) -> None:
    """Run the workflow until every thread is blocked (or it finished).

    Tears down the waits that ended, runs every thread that can make progress (first runnable
    thread first) one unit at a time, re-checks ``WaitFor`` conditions whenever every thread is
    blocked, and finally sets up the events of new waits.

    Args:
        wf: the workflow object (its data); steps and handlers may change it.
        state: the workflow's state; changed in place.
        checkpoint: called with a :class:`CheckpointType` after every change worth saving; an
            exception from it propagates unchanged, and the state is then as it was when it
            was called.
        max_steps: the most steps (and passed ``WaitFor``s) this call may execute.
        before: called as ``before(thread, name)`` just before user code with side effects
            runs (a step's action, a ``WaitFor`` handler, a Handler's setup or teardown); an
            exception from it propagates unchanged and that code does not run. The engine
            commits pending changes here.

    Raises:
        StepError: a step raised; the thread stays at the step, resume again to retry it.
        HandlerError: a ``WaitFor`` handler raised.
        StepLimitExceeded: ``max_steps`` was reached; the state can be resumed again.
        StateMismatchError: the state is at a statement the code no longer has (nothing ran).
        DefinitionError: the definition breaks a rule of the DSL.
        WorkflowFinishedError: the workflow finished already.

    Example:
        >>> from gorch import S, Step, new_state, resume
        >>> class Hello:
        ...     said = ""
        ...     def definition(self):
        ...         return S(Step("greet", self.greet))
        ...     def greet(self):
        ...         self.said = "hello"
        >>> wf, state = Hello(), new_state("1", "hello")
        >>> resume(wf, state)
        >>> wf.said, state.status.value
        ('hello', 'Finished')
    """
    if state.status is WorkflowStatus.FINISHED:
        if state.threads:  # only threads holding failed teardowns can be left
            _Run(wf, state, before).finish_teardowns(checkpoint)
            return
        raise WorkflowFinishedError(
            f"workflow {state.id!r} ({state.workflow}) has finished; there is nothing to resume",
            workflow_id=state.id,
        )
    run = _Run(wf, state, before)
    for x in state.threads:
        run.check_thread(x)
    for x in state.threads:
        if x.wait_events and run.teardowns(x) and checkpoint is not None:
            checkpoint(CheckpointType.AFTER_TEARDOWN)
    steps = 0
    while True:
        t = _next_runnable(state.threads)
        if t is None:
            t = _first_passing(run)
            if t is None:
                break
            if steps >= max_steps:
                raise _limit(state, t, max_steps)
            info = run.prog.by_name[t.cur_step]
            run.pass_condition(t, info, run.node(info).handler)
            steps += 1
            if checkpoint is not None:
                checkpoint(CheckpointType.AFTER_CONDITION)
            continue
        state.status = WorkflowStatus.RESUMING
        if t.status is _EXECUTING:
            if steps >= max_steps:
                raise _limit(state, t, max_steps)
            run.execute(t)
            steps += 1
            if checkpoint is not None:
                checkpoint(CheckpointType.AFTER_STEP)
            continue
        outcome = run.advance(t)
        if outcome == _PASS:  # a WaitFor whose condition holds passes straight on
            # No checkpoint in between: a state saved at the WaitFor would, once reloaded, let
            # other threads run before the condition is looked at again, and so diverge from
            # this run.
            if steps >= max_steps:
                raise _limit(state, t, max_steps)
            info = run.prog.by_name[t.cur_step]
            run.pass_condition(t, info, run.node(info).handler)
            steps += 1
            if checkpoint is not None:
                checkpoint(CheckpointType.AFTER_CONDITION)
            continue
        if checkpoint is not None:
            checkpoint(CheckpointType.AFTER_RESUME)
        if outcome == _FINISHED:
            run.finish_teardowns(checkpoint)
            return
    for x in state.threads:
        if x.status is _WAITING_EVENT:
            run.setups(x, checkpoint)
    state.status = WorkflowStatus.WAITING


@define
class Outcome:
    """What one :func:`run` did, and what to save.

    Attributes:
        output: the event handler's output (None without an event).
        state: the state to save, as JSON text: as of the last checkpoint.
        data: the workflow data to save, as JSON text: as of the last checkpoint (without the
            half-done changes of a step that raised).
        status: the workflow's status after the run.
        error: what stopped the run after the event was applied — a ``StepError`` or a
            ``WaitFor`` handler's ``HandlerError`` (save, and resume later to retry it), a
            ``StepLimitExceeded`` (save, resume again), a ``StateMismatchError`` or a
            ``DefinitionError`` (save; repair with goto) — or None.
    """

    output: object
    state: str
    data: str
    status: WorkflowStatus
    error: GorchError | None = None


def run(
    wf: Any,
    state: State,
    req: CallbackRequest | None = None,
    input: Any = None,
    *,
    max_steps: int = DEFAULT_MAX_STEPS,
) -> Outcome:
    """Deliver an event (if ``req`` is given), resume until every thread is blocked, and say
    what to save: the load-resume-save pattern, safe by construction.

    A refused event raises, as :func:`handle_callback` does, and nothing changed: save
    nothing. Once the event is applied it is never lost: whatever happens in the run after it
    — a step that raises, the step bound — is returned in ``Outcome.error``, with the state and
    data *as of the last checkpoint* to save (as the engine does: a failed step's half-done
    changes are not kept, and a later resume runs the step again).

    Example (a request handler)::

        state = loads(db.get_state(order_id), State)
        order = loads(db.get_data(order_id), PizzaOrder)
        out = run(order, state, CallbackRequest(name=event), payload)  # refused: raises
        db.save(order_id, out.state, out.data)                          # accepted: save
        if out.error:
            log.warning("%s", out.error)      # resume later (with run) to retry the step

    Raises:
        The refusals of :func:`handle_callback` (``CallbackNotFound``, ``InputError``,
        ``HandlerError``, ...), and ``WorkflowFinishedError`` for a finished workflow without
        an event. None of them changes anything.
    """
    output = None if req is None else handle_callback(req, wf, state, input)
    saved: list[str] = []

    def before(t: Thread, name: str) -> None:
        # User code is about to run: the data as it is now is the last checkpoint's.
        saved[:] = [serde.dumps(wf)]

    try:
        resume(wf, state, max_steps=max_steps, before=before)
    except (StepError, HandlerError, StepLimitExceeded, StateMismatchError, DefinitionError) as exc:
        data = saved[0] if saved and not isinstance(exc, StepLimitExceeded) else serde.dumps(wf)
        return Outcome(output, serde.dumps(state), data, state.status, exc)
    return Outcome(output, serde.dumps(state), serde.dumps(wf), state.status)


def _next_runnable(threads: list[Thread]) -> Thread | None:
    """The first thread that can make progress: it executes a step or resumes."""
    for t in threads:
        st = t.status
        if st is _EXECUTING or st is _RESUMING:
            return t
    return None


def _first_passing(run: _Run) -> Thread | None:
    """The first thread whose awaited condition holds now (read from a fresh definition)."""
    for t in run.state.threads:
        if t.status is _WAITING_CONDITION and run.node(run.prog.by_name[t.cur_step], True).cond:
            return t
    return None


def _limit(state: State, t: Thread, limit: int) -> StepLimitExceeded:
    return StepLimitExceeded(
        f"workflow {state.id!r} ({state.workflow}): resume stopped after {limit} steps, in "
        f"thread {t.id!r} at {t.cur_step!r}. The state is consistent: resume again to go on. A "
        f"workflow that keeps hitting this bound loops without waiting; give its loop a Wait.",
        workflow_id=state.id,
        thread=t.id,
        limit=limit,
    )


def waiting_for(state: State) -> list[str]:
    """The events the workflow waits for now, sorted, without repeats."""
    return awaited(state.threads)


def awaited(threads: Iterable[Thread]) -> list[str]:
    """The events these threads wait for now, sorted, without repeats."""
    return sorted({
        e.req.name
        for t in threads if t.status is _WAITING_EVENT
        for e in t.wait_events if e.status in _ACTIVE
    })  # fmt: skip


def _find_event(
    req: CallbackRequest, state: State, prog: Program | None = None
) -> tuple[Thread, WaitEvent]:
    """The waiting thread and event that ``req`` is for; refuses with a precise error."""
    name = req.name
    if req.thread_id:
        found = state.thread(req.thread_id)
        if found is None:
            raise CallbackNotFound(
                f"workflow {state.id!r} ({state.workflow}) has no thread {req.thread_id!r}; its "
                f"threads are {', '.join(repr(x.id) for x in state.threads) or 'none'}",
                workflow_id=state.id,
                thread=req.thread_id,
                event=name,
                waiting_for=waiting_for(state),
            )
        threads = [found]
        where, it = f"thread {req.thread_id!r} is not", "it waits"
    else:
        threads = state.threads
        where, it = "no thread", "the workflow waits"
    candidates = [
        (t, e)
        for t in threads
        if t.status is _WAITING_EVENT
        for e in t.wait_events
        if e.req.name == name and e.status in _ACTIVE
    ]
    if not candidates:
        waiting = awaited(threads)
        listing = ", ".join(map(repr, waiting)) if waiting else "no event at all"
        known = prog.by_name.get(name) if prog is not None else None
        if known is not None and known.kind in (K_ON, K_TIMEOUT):
            # The event exists; it is just not awaited now: say so rather than suggest another.
            hint = (
                f" {name!r} is an event of this workflow (a case of {known.parent.label}), "
                f"but no thread waits there now."
            )
        else:
            hint = did_you_mean(suggest(name, waiting))
        raise CallbackNotFound(
            f"workflow {state.id!r} ({state.workflow}): {where} waiting for event "
            f"{name!r}; {it} for {listing}.{hint}",
            workflow_id=state.id,
            thread=req.thread_id,
            event=name,
            waiting_for=waiting,
        )
    if len(candidates) > 1:
        ids = [t.id for t, _ in candidates]
        raise AmbiguousCallback(
            f"workflow {state.id!r} ({state.workflow}): threads {', '.join(map(repr, ids))} all "
            f"wait for event {name!r}; say which one with thread_id",
            workflow_id=state.id,
            event=name,
            threads=ids,
        )
    t, e = candidates[0]
    if req.pc and req.pc != e.req.pc:
        raise StaleCallback(
            f"workflow {state.id!r} ({state.workflow}): event {name!r} for thread {t.id!r} "
            f"carries pc {req.pc}, but the wait that expects it began at pc {e.req.pc}; the "
            f"callback belongs to an earlier wait (an old timer or a retried delivery) and was "
            f"ignored",
            workflow_id=state.id,
            thread=t.id,
            event=name,
            expected_pc=e.req.pc,
            got_pc=req.pc,
        )
    return t, e


def handle_callback(req: CallbackRequest, wf: Any, state: State, input: Any = None) -> object:
    """Deliver an event to the thread that waits for it; return the handler's output.

    Runs the handler (a function handler gets ``input`` structured into its first parameter's
    type), ends the wait and marks the thread to resume: call :func:`resume` next to run what
    follows. With an empty ``req.thread_id`` the one thread that waits for ``req.name`` is
    found; a non-zero ``req.pc`` must match the waiting event's.

    Raises:
        CallbackNotFound: no thread waits for this event (``.waiting_for`` lists what they do).
        AmbiguousCallback: several threads wait for it and ``req.thread_id`` is empty.
        StaleCallback: ``req.pc`` belongs to an earlier wait.
        InputError: the payload does not fit the handler's type; nothing changed.
        HandlerError: the handler raised; nothing changed.
        WorkflowFinishedError: the workflow finished already.
        StateMismatchError: the thread waits at a statement the code no longer has.

    Example:
        >>> from gorch import S, Wait, On, CallbackRequest, new_state, resume, handle_callback
        >>> class Echo:
        ...     def definition(self):
        ...         return S(Wait("for a word", On("say", self.say)))
        ...     def say(self, word: str) -> str:
        ...         return word.upper()
        >>> wf, state = Echo(), new_state("1", "echo")
        >>> resume(wf, state)
        >>> handle_callback(CallbackRequest(name="say"), wf, state, "hi")
        'HI'
    """
    if state.status is WorkflowStatus.FINISHED:
        raise WorkflowFinishedError(
            f"workflow {state.id!r} ({state.workflow}) has finished; it takes no more events "
            f"(got {req.name!r})",
            workflow_id=state.id,
            statement=req.name,
        )
    run = _Run(wf, state)
    t, e = _find_event(req, state, run.prog)
    run.check_thread(t)
    info = run.prog.by_name[e.req.name]
    handler = run.node(info).handler
    stored = e.req
    if handler is None:
        if input is not None:
            raise _no_payload(state, t.id, info.name, input)
        out: object = None
    elif info.kind == K_TIMEOUT or info.lifecycle:
        out = _call(lambda: handler.handle(stored, input), state, t, info)
    else:
        takes, payload = _structure_input(handler, input, state, t.id, info.name)
        out = _call((lambda: handler(payload)) if takes else handler, state, t, info)
    run.end_waits(t, e)
    t.status = _RESUMING
    t.cur_callback = info.name
    t.pc += 1
    state.pc += 1
    state.status = WorkflowStatus.RESUMING
    return out


def _call(fn: Callable[[], object], state: State, t: Thread, info: StatementInfo) -> object:
    try:
        return fn()
    except GorchError:
        raise
    except Exception as exc:
        raise HandlerError(
            f"workflow {state.id!r} ({state.workflow}): the handler of event {info.name!r} in "
            f"thread {t.id!r} failed: {_describe(exc)}. The event was not applied; fix the "
            f"cause and send it again.",
            workflow_id=state.id,
            thread=t.id,
            statement=info.name,
            event=info.name,
        ) from exc


# --------------------------------------------------------------------------------------------
# goto


@define
class GotoPlan:
    """What a goto changes (or, for a dry run, would change).

    Attributes:
        workflow_id: the workflow instance.
        thread: the thread that moves.
        from_status, from_step: where it was.
        to_status, to_step: where it will be: at a Step (it runs next), a Wait or a WaitFor.
        teardown: events of the old wait that will be torn down.
        setup: events of the new wait (a goto to a Wait) that will be set up.
        applied: whether the state was changed (``False`` for a dry run).
    """

    workflow_id: str
    thread: str
    from_status: ThreadStatus
    from_step: str
    to_status: ThreadStatus
    to_step: str
    teardown: list[str] = field(factory=list)
    setup: list[str] = field(factory=list)
    applied: bool = False

    def describe(self) -> list[str]:
        """The plan as lines a person reads before confirming."""
        verb = "moved" if self.applied else "would move"
        lines = [
            f"thread {self.thread!r} of workflow {self.workflow_id!r} {verb}:",
            f"  from {self.from_status.value} at {self.from_step or '(start)'!r}",
            f"  to   {self.to_status.value} at {self.to_step!r}",
        ]
        if self.teardown:
            lines.append(f"  tear down: {', '.join(self.teardown)}")
        if self.setup:
            lines.append(f"  set up: {', '.join(self.setup)}")
        return lines


def goto(
    wf: Any,
    state: State,
    name: str,
    thread: str = MAIN_THREAD,
    *,
    dry_run: bool = False,
    checkpoint: Checkpoint | None = None,
) -> GotoPlan:
    """Move a thread so that it continues *at* the named Step, Wait or WaitFor.

    The repair tool for a stuck workflow: the step runs next, or the wait is waited on next.
    The thread's pending waits are torn down. Call :func:`resume` afterwards to run on (and to
    set up the events of a new wait). The thread's current position need not exist in the code
    any more: that is what goto repairs.

    Args:
        wf: the workflow object.
        state: the state; changed in place unless ``dry_run``.
        name: the statement to continue at; it must belong to the thread's own body.
        thread: the id of the thread to move.
        dry_run: only return the plan; change nothing.
        checkpoint: called after the teardowns of the old wait, if any ran.

    Returns:
        The :class:`GotoPlan`: what changed, or would change.

    Raises:
        GotoError: unknown statement or thread (the closest names are suggested), a statement
            that is not a Step, Wait or WaitFor, or one in another thread's body. Nothing
            changes.
        WorkflowFinishedError: the workflow finished already.
    """
    if state.status is WorkflowStatus.FINISHED:
        raise WorkflowFinishedError(
            f"workflow {state.id!r} ({state.workflow}) has finished; goto cannot revive it",
            workflow_id=state.id,
        )
    run = _Run(wf, state)
    t, info = _goto_target(run, name, thread)
    move = _GotoMove(run, t, info)
    if dry_run:
        return move.plan
    move.apply()
    if run.teardowns(t) and checkpoint is not None:
        checkpoint(CheckpointType.AFTER_TEARDOWN)
    move.plan.applied = True
    return move.plan


_GOTO_TARGETS = {K_STEP: _EXECUTING, K_WAIT: _WAITING_EVENT, K_WAITFOR: _WAITING_CONDITION}


def _goto_target(run: _Run, name: str, thread: str) -> tuple[Thread, StatementInfo]:
    """The thread to move and the statement it moves to; refuses anything else."""
    state, by_name = run.state, run.prog.by_name
    t = state.thread(thread)
    if t is None:
        ids = [x.id for x in state.threads]
        close = suggest(thread, ids)
        raise GotoError(
            f"workflow {state.id!r} ({state.workflow}) has no thread {thread!r}; its threads "
            f"are {', '.join(map(repr, ids)) or 'none'}.{did_you_mean(close)}",
            workflow_id=state.id,
            thread=thread,
            suggestions=close,
        )
    info = by_name.get(name)
    if info is not None and info.kind in _GOTO_TARGETS and info.thread == t.name:
        return t, info
    targets = sorted(
        n for n, i in by_name.items() if i.kind in _GOTO_TARGETS and i.thread == t.name
    )
    close = suggest(name, targets, cutoff=0.4)
    if info is None:
        why = f"{type(run.wf).__name__}.definition() has no statement named {name!r}."
    elif info.thread != t.name:
        owner = "the main body" if info.thread == MAIN_THREAD else f"Go {info.thread!r}"
        why = (
            f"{name!r} belongs to {owner}, not to thread {thread!r}; goto moves a thread "
            f"within its own body."
        )
    else:
        why = (
            f"{info.label} is not a Step, Wait or WaitFor; goto can only continue at one of those."
        )
    raise GotoError(
        f"workflow {state.id!r} ({state.workflow}): goto refused: {why}{did_you_mean(close)}",
        workflow_id=state.id,
        thread=thread,
        statement=name,
        suggestions=close,
    )


class _GotoMove:
    """A goto worked out before anything changes: the dry run reports it, the goto applies it,
    so the two cannot disagree (the plan runs the very function the apply runs, end_waits, on
    copies of the thread's events)."""

    __slots__ = ("info", "known", "plan", "run", "thread")

    def __init__(self, run: _Run, t: Thread, info: StatementInfo) -> None:
        self.run, self.thread, self.info = run, t, info
        by_name = run.prog.by_name
        # Events the code no longer has cannot be torn down: they go.
        self.known = [
            e
            for e in t.wait_events
            if e.req.name in by_name and by_name[e.req.name].kind in (K_ON, K_TIMEOUT)
        ]
        probe = Thread(t.id, t.name, t.status, wait_events=[evolve(e) for e in self.known])
        if t.status is _WAITING_EVENT:
            run.end_waits(probe)
        self.plan = GotoPlan(
            workflow_id=run.state.id,
            thread=t.id,
            from_status=t.status,
            from_step=t.cur_step,
            to_status=_GOTO_TARGETS[info.kind],
            to_step=info.name,
            teardown=[e.req.name for e in probe.wait_events if e.status in _TEARING_DOWN],
            setup=[k.name for k in info.kids] if info.kind == K_WAIT else [],
        )

    def apply(self) -> None:
        """Move the thread; the caller then runs the teardowns the plan lists."""
        run, t, info = self.run, self.thread, self.info
        events = run.new_events(info, t, t.pc + 1) if info.kind == K_WAIT else []
        t.wait_events = self.known
        if t.status is _WAITING_EVENT:
            run.end_waits(t)
        t.wait_events.extend(events)
        t.status = self.plan.to_status
        t.cur_step = info.name
        t.cur_callback = ""
        t.pc += 1
        run.state.pc += 1
        run.state.status = WorkflowStatus.RESUMING


def cancel(wf: Any, state: State, *, before: Before | None = None) -> list[WaitEvent]:
    """End every thread's wait for good, tearing down its Handler events (as goto does for one
    thread); nothing else runs. The threads keep their positions, for inspection.

    Events the code no longer has are dropped (they cannot be torn down). A teardown that
    raises is kept in the state with its error.

    Args:
        wf: the workflow object.
        state: the state; changed in place.
        before: as for :func:`resume`, called before each teardown.

    Returns:
        The wait events whose teardown failed (each with ``.error``).
    """
    run = _Run(wf, state, before)
    by_name = run.prog.by_name
    failed = []
    for t in state.threads:
        t.wait_events = [
            e
            for e in t.wait_events
            if e.req.name in by_name and by_name[e.req.name].kind in (K_ON, K_TIMEOUT)
        ]
        run.end_waits(t)
        run.teardowns(t)
        failed += [e for e in t.wait_events if e.status is _TEARDOWN_ERROR]
    return failed
