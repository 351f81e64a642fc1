"""What a workflow class offers the outside world: its events, their payloads, outputs and roles.

The HTTP API builds one typed operation per event from this, the CLI suggests event names from
it, and diagrams walk the same tree. It reads the definition of a stand-in instance of the class
(:func:`gorch.samples.sample`), so the class need not have defaults; values the definition reads
from data (a ``Timeout``'s delay) are the stand-in's, an example: an instance's own come from
its data.

Example:
    >>> from dataclasses import dataclass
    >>> from gorch import S, Wait, On
    >>> @dataclass
    ... class Flow:
    ...     n: int = 0
    ...     def definition(self):
    ...         return S(Wait("for n", On("Set", self.set, roles="Admin")))
    ...     def set(self, n: int) -> int:
    ...         self.n = n
    ...         return n
    >>> info = describe("flow", Flow)
    >>> ev = info.events["Set"]
    >>> ev.payload, ev.output, ev.roles, ev.waits
    (<class 'int'>, <class 'int'>, ('Admin',), ('for n',))
"""

from __future__ import annotations

import dataclasses
import inspect
import typing
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from attrs import frozen

from gorch.dsl import K_ON, K_TIMEOUT, K_WAIT
from gorch.errors import DefinitionError
from gorch.interpreter import ANY, NO_PAYLOAD, is_lifecycle, payload_type, validate
from gorch.samples import sample

__all__ = ["ANY", "NO_PAYLOAD", "EventInfo", "WorkflowInfo", "describe", "walk"]


@frozen
class EventInfo:
    """One event a workflow can wait for.

    Attributes:
        name: the event's name, as sent.
        timeout: True for a ``Timeout`` (it fires by itself after ``after``).
        waits: the names of the Waits it is a case of.
        roles: who may send it (empty: anyone who may send events).
        payload: the handler's payload type, :data:`NO_PAYLOAD` or :data:`ANY`.
        output: the handler's return type, ``None`` or :data:`ANY`.
        after: a timeout's delay.
        doc: the first line of the handler's docstring.
    """

    name: str
    timeout: bool = False
    waits: tuple[str, ...] = ()
    roles: tuple[str, ...] = ()
    payload: Any = ANY
    output: Any = ANY
    after: timedelta | None = None
    doc: str = ""


@frozen
class WorkflowInfo:
    """A registered workflow class, described.

    Attributes:
        name: its registered name.
        cls: the class.
        events: its events by name, in definition order.
        start_roles: who may start one (the class attribute ``start_roles``; empty: anyone).
        doc: the first paragraph of the class docstring.
    """

    name: str
    cls: type
    events: dict[str, EventInfo]
    start_roles: tuple[str, ...] = ()
    doc: str = ""

    def definition(self) -> Any:
        """The statement tree of a stand-in instance (see :func:`gorch.samples.sample`)."""
        return sample(self.cls).definition()


def walk(node: Any) -> Iterator[Any]:
    """Every statement of a definition tree, depth first, in definition order."""
    yield node
    for kid in getattr(node, "kids", ()):
        yield from walk(kid)


def describe(name: str, cls: type) -> WorkflowInfo:
    """Describe the workflow class ``cls`` registered as ``name``.

    Raises:
        DefinitionError: the definition cannot be read, or it is invalid (the problems
            listed).
    """
    try:
        tree = sample(cls).definition()
    except Exception as exc:
        raise DefinitionError(
            [
                f"workflow {name!r}: cannot describe {cls.__name__}: its definition() on a "
                f"stand-in instance raised {type(exc).__name__}: {exc}; definition() must only "
                f"build statements from the data"
            ]
        ) from exc
    validate(tree)
    events: dict[str, EventInfo] = {}
    for wait in walk(tree):
        if getattr(wait, "_kind", None) != K_WAIT:
            continue
        for case in wait.kids:
            if getattr(case.handler, "delivered_by_engine", False):
                continue  # a child's end, another instance's move: the engine sends it
            info = _event(case)
            old = events.get(info.name)
            if old is not None:
                info = _merge(old, info)
            events[info.name] = EventInfo(
                info.name,
                info.timeout,
                (*(old.waits if old else ()), wait.name),
                info.roles,
                info.payload,
                info.output,
                info.after,
                info.doc,
            )
    roles = getattr(cls, "start_roles", ())
    return WorkflowInfo(
        name,
        cls,
        events,
        (roles,) if isinstance(roles, str) else tuple(roles),
        _first_paragraph(_own_doc(cls)),
    )


def _event(case: Any) -> EventInfo:
    if case._kind == K_TIMEOUT:
        return EventInfo(case.name, timeout=True, payload=NO_PAYLOAD, output=str, after=case.delay)
    assert case._kind == K_ON
    handler = case.handler
    if handler is None:
        return EventInfo(case.name, roles=case.roles, payload=NO_PAYLOAD, output=None)
    if is_lifecycle(handler):
        return EventInfo(case.name, roles=case.roles, doc=_first_paragraph(handler.__doc__))
    payload = payload_type(handler)
    try:
        hints = typing.get_type_hints(handler)
    except Exception:
        hints = {}
    output = hints.get("return", ANY)
    if output is type(None):
        output = None
    elif output is Any:
        output = ANY
    if output is ANY and inspect.signature(handler).return_annotation is None:
        output = None
    return EventInfo(
        case.name,
        roles=case.roles,
        payload=payload,
        output=output,
        doc=_first_paragraph(getattr(handler, "__doc__", None)),
    )


def _merge(a: EventInfo, b: EventInfo) -> EventInfo:
    """One event name in several Waits: the roles add up; differing types become ANY."""
    return EventInfo(
        a.name,
        a.timeout and b.timeout,
        a.waits,
        tuple(dict.fromkeys(a.roles + b.roles)),
        a.payload if a.payload == b.payload else ANY,
        a.output if a.output == b.output else ANY,
        a.after if a.after == b.after else None,
        a.doc or b.doc,
    )


def _own_doc(cls: type) -> str | None:
    """The class's docstring, or None for the one ``dataclasses`` writes for a class without
    one: its signature (``"PizzaOrder(cart: list = <factory>, ...)"``), which describes
    nothing. It is recognised by being exactly that text, as dataclasses makes it."""
    doc = cls.__dict__.get("__doc__")
    if not doc or not dataclasses.is_dataclass(cls):
        return doc if isinstance(doc, str) else None
    try:
        generated = cls.__name__ + str(inspect.signature(cls)).replace(" -> None", "")
    except (TypeError, ValueError):
        generated = cls.__name__
    return None if doc == generated else doc


def _first_paragraph(doc: str | None) -> str:
    if not doc:
        return ""
    return inspect.cleandoc(doc).split("\n\n", 1)[0].replace("\n", " ")
