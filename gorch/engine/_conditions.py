"""A ``WaitFor``'s condition, explained: its source text, the data it reads, its value now.

A condition is a value ``definition()`` computes from the workflow's data
(``WaitFor("payment received", self.paid >= self.amount > 0)``), so its text is found in the
source of the class's ``definition`` method: the ``WaitFor(...)`` call whose name is that
statement's, and its second argument (or ``cond=``). The attributes of ``self`` the expression
reads are found with :mod:`ast` and shown with their values on the loaded object. Where the
source cannot be read (a class defined in a REPL, a name computed at run time), the
explanation says so and shows what it can: the ``WaitFor``'s ``description`` and the value.
"""

from __future__ import annotations

import ast
import inspect
import textwrap
from typing import Any

from gorch import serde
from gorch.engine._explanation import WaitCondition
from gorch.interpreter import find_statement


def condition(wf: Any, name: str) -> WaitCondition:
    """The condition of the ``WaitFor`` named ``name`` in ``wf``'s definition, explained."""
    notes: list[str] = []
    try:
        node = find_statement(wf, name)  # a fresh definition(): the condition's value now
        holds: bool | None = bool(node.cond)
        description = str(getattr(node, "description", "") or "")
    except Exception as exc:  # user code: definition() or the condition's __bool__ raised
        holds, description = None, ""
        notes.append(f"its value could not be computed: {type(exc).__name__}: {exc}")
    source, reads, why_not = _source(type(wf), name)
    if why_not:
        notes.append(why_not)
    values = tuple((attr, _value(wf, attr)) for attr in reads if _readable(wf, attr))
    return WaitCondition(source, description, holds, values, "; ".join(notes))


def _source(cls: type, name: str) -> tuple[str | None, list[str], str]:
    """The condition's source text, the attributes of ``self`` it reads (in order of first
    use), and why the text is missing ("" when found)."""
    try:
        text = textwrap.dedent(inspect.getsource(cls.definition))  # type: ignore[attr-defined]
        tree = ast.parse(text)
    except (OSError, TypeError, SyntaxError) as exc:
        return None, [], f"the source of {cls.__name__}.definition() is not available ({exc})"
    func = tree.body[0] if tree.body else None
    args = func.args.args if isinstance(func, ast.FunctionDef | ast.AsyncFunctionDef) else []
    me = args[0].arg if args else "self"
    cond = _cond_of(tree, name)
    if cond is None:
        missing = f"no WaitFor({name!r}, ...) call was found in {cls.__name__}.definition()"
        return None, [], missing
    segment = ast.get_source_segment(text, cond) or ast.unparse(cond)
    return " ".join(segment.split()), _reads(cond, me), ""


def _cond_of(tree: ast.AST, name: str) -> ast.expr | None:
    """The condition argument of the ``WaitFor(name, cond, ...)`` call in ``tree``."""
    for call in ast.walk(tree):
        if not isinstance(call, ast.Call):
            continue
        func = call.func
        called = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
        if called != "WaitFor":
            continue
        kw = {k.arg: k.value for k in call.keywords if k.arg}
        first = call.args[0] if call.args else kw.get("name")
        if not (isinstance(first, ast.Constant) and first.value == name):
            continue
        return call.args[1] if len(call.args) > 1 else kw.get("cond")
    return None


def _reads(expr: ast.expr, me: str) -> list[str]:
    """The attributes of ``me`` (``self``) that ``expr`` reads, in order of first use."""
    found: dict[str, None] = {}
    for node in ast.walk(expr):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == me
        ):
            found.setdefault(node.attr)
    # ast.walk goes breadth first: order the names as they stand in the text
    return sorted(found, key=lambda a: _first_col(expr, me, a))


def _first_col(expr: ast.expr, me: str, attr: str) -> tuple[int, int]:
    return min(
        (n.lineno, n.col_offset)
        for n in ast.walk(expr)
        if isinstance(n, ast.Attribute) and n.attr == attr
        and isinstance(n.value, ast.Name) and n.value.id == me
    )  # fmt: skip


def _readable(wf: Any, attr: str) -> bool:
    """An attribute that holds data (a method or a property that raises is left out)."""
    try:
        return not callable(getattr(wf, attr))
    except Exception:
        return False


def _value(wf: Any, attr: str) -> Any:
    """The attribute's value as JSON data (its repr where it is not serialisable)."""
    value = getattr(wf, attr)
    try:
        return serde.unstructure(value)
    except Exception:
        return repr(value)
