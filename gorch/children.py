"""Statements that work with other instances: start a child and wait for its end
(:class:`Child`), or wait inside a ``Wait`` until another instance gets somewhere
(:class:`OnInstance`).

Both are built from what the interpreter has already. A ``Child`` is a ``Wait`` with one
event, ``"<name> ended"``; an ``OnInstance`` is an ``On`` case. Their handlers are
:class:`~gorch.dsl.Handler` objects whose ``setup`` (user code: it calls ``data`` or
``instance``) records in the wait what the engine needs: the child to start, or the instance
to watch. The engine starts the child in the same commit that stores the wait, keeps a watch
on the instance, and delivers the event when the watch is met; :class:`ChildResult` is the
event's payload.

Example::

    Child("deliver", "delivery", self.delivery_order, self.delivered)

    Wait("kitchen or timeout",
         OnInstance("kitchen done", lambda: self.kitchen_id, self.kitchen_done),
         Timeout("too slow", timedelta(hours=1)))
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

import orjson
from attrs import frozen

from gorch import serde
from gorch.dsl import On, Stmt, Wait
from gorch.state import MAIN_THREAD, CallbackRequest, RunStatus

__all__ = ["END", "Child", "ChildResult", "OnInstance", "ended_event", "until_text"]

END = "end"
"""``until`` text for any end status (finished or cancelled)."""


@frozen
class ChildResult:
    """What a ``Child``'s handler (or an ``OnInstance``'s) receives.

    Attributes:
        id: the other instance's id.
        status: its :class:`~gorch.RunStatus` when the event was delivered's cause was
            committed (a ``Child``: ``FINISHED`` or ``CANCELLED``).
        data: its workflow object then.
        at_statements: the statements its threads waited at then.
    """

    id: str
    status: RunStatus
    data: Any = None
    at_statements: tuple[str, ...] = ()


def until_text(until: Any) -> str:
    """The stored form of an ``until``: None (any end status), a :class:`RunStatus`, a set of
    them, or a statement's name.

    Raises:
        TypeError: anything else (with what to pass).

    Example:
        >>> until_text(None), until_text(RunStatus.FAILED), until_text("deliver")
        ('end', 'status:failed', 'at:deliver')
    """
    if until is None:
        return END
    if isinstance(until, RunStatus):
        return f"status:{until.value}"
    if isinstance(until, str):
        if not until:
            raise TypeError("until: a statement's name must not be empty")
        return f"at:{until}"
    if isinstance(until, Iterable):
        found = list(until)
        if found and all(isinstance(s, RunStatus) for s in found):
            return "status:" + ",".join(sorted(s.value for s in found))
    raise TypeError(
        f"until must be None (any end status), a RunStatus, a set of RunStatus or a "
        f"statement name, not {until!r}"
    )


def ended_event(name: str) -> str:
    """The name of the event that ends the wait of ``Child(name, ...)``."""
    return f"{name} ended"


def _slug(text: str) -> str:
    """``text`` for an id: runs of blanks and slashes (an id is part of a URL) as one ``-``."""
    return re.sub(r"[\s/]+", "-", text)


def _value(what: Any) -> Any:
    return what() if callable(what) else what


def _result(input: Any) -> ChildResult:
    """The payload as a :class:`ChildResult` (the engine passes one; a test may pass a dict)."""
    if isinstance(input, ChildResult):
        return input
    if isinstance(input, dict):
        return ChildResult(str(input["id"]), RunStatus(input["status"]), input.get("data"),
                           tuple(input.get("at_statements", ())))  # fmt: skip
    raise TypeError(f"the payload of a child's or instance's event is a ChildResult, not {input!r}")


class _Watching:
    """A handler whose event the engine delivers: refused from ``send``, and called with a
    :class:`ChildResult`."""

    delivered_by_engine = True

    def __init__(self, handler: Callable[..., object] | None) -> None:
        self.user = handler

    def handle(self, req: CallbackRequest, input: Any) -> object:
        result = _result(input)
        return None if self.user is None else self.user(result)

    def teardown(self, req: CallbackRequest, handled: bool) -> None:
        """Nothing to release: the engine drops the watch with the wait."""


class ChildStart(_Watching):
    """The handler of a ``Child``'s event: its setup makes the child's object and id."""

    type = "child"

    def __init__(self, name: str, workflow: str, data: Any, handler: Any, id: Any) -> None:
        super().__init__(handler)
        self.name, self.workflow, self.data, self.id = name, workflow, data, id

    def setup(self, req: CallbackRequest) -> str:
        obj = _value(self.data)
        if self.id is None:
            thread = "" if req.thread_id == MAIN_THREAD else f"{_slug(req.thread_id)}:"
            child_id = f"{req.workflow_id}.{_slug(self.name)}.{thread}{req.pc}"
        else:
            child_id = _value(self.id)
            if not isinstance(child_id, str) or not child_id:
                raise TypeError(
                    f"Child {self.name!r}: id must give a non-empty str, not {child_id!r}"
                )
        if obj is None:
            raise TypeError(
                f"Child {self.name!r}: data gave None; give the child's workflow object"
            )
        text = serde.dumps(obj)
        return orjson.dumps(
            {"instance": child_id, "until": END, "workflow": self.workflow, "data": text}
        ).decode()


class InstanceWatch(_Watching):
    """The handler of an ``OnInstance`` case: its setup names the instance and ``until``."""

    type = "instance"

    def __init__(self, name: str, instance: Any, until: str, handler: Any) -> None:
        super().__init__(handler)
        self.name, self.instance, self.until = name, instance, until

    def setup(self, req: CallbackRequest) -> str:
        target = _value(self.instance)
        if not isinstance(target, str) or not target:
            raise TypeError(
                f"OnInstance {self.name!r}: instance must give an instance id (a non-empty "
                f"str), not {target!r}"
            )
        return orjson.dumps({"instance": target, "until": self.until}).decode()


class Child(Wait):
    """Start an instance of another registered workflow and wait until it ends.

    Args:
        name: the statement's name (where the thread waits: ``goto`` target, ``wait(until=)``).
        workflow: the registered name of the child's workflow.
        data: the child's workflow object, or a callable (usually a method) that returns it;
            called once, when the thread gets here.
        handler: called with a :class:`ChildResult` when the child ends (finished or
            cancelled); its return value is the event's output.
        id: the child's id, or a callable that returns it (default: derived from the parent's
            id, the statement, the thread and its position: ``"order-1.deliver.3"``).

    The child starts in the same commit that stores the wait (never twice, even when the
    parent's step is retried or its worker dies), and its end reaches the parent through a
    message kept in the store until the parent's commit that takes it (never lost).
    """

    __slots__ = ("child_data", "child_handler", "child_id", "workflow")

    def __init__(
        self,
        name: str,
        workflow: str,
        data: Any,
        handler: Callable[[ChildResult], object] | None = None,
        id: str | Callable[[], str] | None = None,
    ) -> None:
        if not isinstance(workflow, str) or not workflow:
            raise TypeError(f"Child {name!r}: workflow must be a registered workflow's name")
        self.workflow = workflow
        self.child_data, self.child_handler, self.child_id = data, handler, id
        start = ChildStart(name, workflow, data, handler, id)
        super().__init__(name, On(ended_event(name), start))

    def __repr__(self) -> str:
        return f"Child({self.name!r}, {self.workflow!r})"


class OnInstance(On):
    """An event case of a ``Wait`` that fires when another instance gets somewhere.

    Args:
        name: the event's name.
        instance: the instance's id, or a callable that returns it (called when the wait
            begins). It need not exist yet.
        handler: called with a :class:`ChildResult`; its return value is the event's output.
        body: statements run after it.
        until: None (default: it finished or was cancelled), a :class:`RunStatus` or a set of
            them, or a statement's name (one of its threads waits there).
    """

    __slots__ = ("target", "until")

    def __init__(
        self,
        name: str,
        instance: str | Callable[[], str],
        handler: Any = None,
        *body: Any,
        until: Any = None,
    ) -> None:
        if isinstance(handler, Stmt):
            body, handler = (handler, *body), None
        self.target = instance
        self.until = until_text(until)
        super().__init__(name, InstanceWatch(name, instance, self.until, handler), *body)

    def __repr__(self) -> str:
        return f"OnInstance({self.name!r})"
