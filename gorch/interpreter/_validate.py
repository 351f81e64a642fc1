"""Validation: every rule a workflow class or a definition breaks, raised once.

The rules about the tree's shape are checked by compiling it
(:func:`~gorch.interpreter._compile.compile_definition`). The rules about *values* that may come
from the workflow's data (a ``Timeout``'s ``after``, a ``Go``'s ``id``) are checked on the tree
at hand by :func:`value_problems` here, and again by the interpreter wherever it reads such a
value (a bad one is then a ``DefinitionError`` for that instance only).
"""

from __future__ import annotations

from typing import Any

from gorch import serde
from gorch.children import Child
from gorch.dsl import K_GO, K_STEP, K_TIMEOUT, K_WAIT
from gorch.errors import DefinitionError
from gorch.interpreter._compile import compile_definition
from gorch.interpreter._evolve import evolution_problems
from gorch.interpreter._handlers import describe
from gorch.interpreter._index import Program, checked_value, node_at
from gorch.interpreter._personal import personal_problems
from gorch.samples import sample


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
    of the class's fields are checked to round-trip through JSON (:func:`gorch.serde.check_type`),
    and its ``renames``, ``data_version`` and ``migrate`` are checked (an old name that is still
    a statement, a new one that is not, a rename of a rename, a data version above 1 without a
    ``migrate``), and its ``personal_data`` (every name a field with a neutral value). This is
    what ``Engine(...)`` does for every workflow it registers.

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
        prog, problems = compile_definition(definition)
        problems += value_problems(prog, definition)
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
            f"raised {describe(exc)}. definition() must only build statements from the data "
            f"(conditions and durations), and the class must be constructible; give its "
            f"fields defaults if it needs them"
        ]
    prog, problems = compile_definition(tree)
    problems += value_problems(prog, tree) + evolution_problems(cls, prog)
    return problems + serde.check_type(cls) + personal_problems(cls)


def value_problems(prog: Program, tree: Any) -> list[str]:
    """What is wrong with the values of one tree (a Timeout's ``after``, a Go's ``id``): these
    may come from the workflow's data, so they are checked on the tree at hand, not compiled
    into the class's program."""
    problems = []
    for info in prog.by_name.values():
        if info.kind == K_TIMEOUT or info.kind == K_GO:
            try:
                checked_value(node_at(tree, info), info)
            except DefinitionError as exc:
                problems.extend(exc.problems)
    return problems


def child_workflows(cls: type) -> list[tuple[str, str]]:
    """``(statement, workflow)`` of each ``Child`` of workflow class ``cls`` (read from a
    stand-in instance, as :func:`transactional_steps` does)."""
    try:
        tree = sample(cls).definition()
    except Exception:
        return []
    prog, _ = compile_definition(tree)
    return [
        (info.name, node.workflow)
        for info in prog.by_name.values()
        if info.kind == K_WAIT and isinstance(node := node_at(tree, info), Child)
    ]


def transactional_steps(cls: type) -> list[str]:
    """The names of the ``Step(transaction=True)`` statements of workflow class ``cls`` (read
    from a stand-in instance, as :func:`class_problems` does; a class whose definition cannot
    be read has none here, its problem is reported there)."""
    try:
        tree = sample(cls).definition()
    except Exception:
        return []
    prog, _ = compile_definition(tree)
    return [
        info.name
        for info in prog.by_name.values()
        if info.kind == K_STEP and getattr(node_at(tree, info), "transaction", False) is True
    ]
