"""What the interpreter knows about user handlers, and how it calls them.

A handler is whatever a definition hands the interpreter to call: an ``On``'s handler (a
``Handler`` with setup, handle and teardown, or a plain function), a ``WaitFor``'s handler, a
step's action. This module tells them apart (:func:`is_lifecycle`, :func:`is_async_generator`),
reads the payload type a function handler wants (:func:`payload_type`, cached per function),
structures an event's payload into it (:func:`structure_input`), and calls a handler so that a
failure refuses the event with a :class:`~gorch.errors.HandlerError` (:func:`call_handler`).
Any of them may be ``async def``: the run's host runs the coroutine.
"""

from __future__ import annotations

import inspect
import re
import typing
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from gorch import serde
from gorch.errors import GorchError, HandlerError, InputError
from gorch.interpreter._index import StatementInfo
from gorch.state import State, Thread

if TYPE_CHECKING:
    from gorch.interpreter._run import Run


def is_lifecycle(handler: object) -> bool:
    """Whether ``handler`` is a ``Handler``: it has setup, handle and teardown methods."""
    cls = type(handler)
    return all(callable(getattr(cls, m, None)) for m in ("setup", "handle", "teardown"))


ASYNC_GENERATOR = (
    "is an async generator function (async def with yield): calling it runs nothing, so its "
    "body would never run. gorch runs coroutines (async def without yield): return, don't yield"
)
"""The end of the sentence that refuses an async generator where gorch calls a function."""


def _callee(fn: object) -> object:
    """The function calling ``fn`` runs: itself, a partial's, or a callable object's
    ``__call__``."""
    target = getattr(fn, "func", fn)  # functools.partial
    if not (inspect.isfunction(target) or inspect.ismethod(target)):
        target = getattr(type(target), "__call__", None)  # noqa: B004 - a callable object
    return target


def is_async_generator(fn: object) -> bool:
    """Whether calling ``fn`` gives an async generator instead of running it."""
    return inspect.isasyncgenfunction(_callee(fn))


def is_coroutine_function(fn: object) -> bool:
    """Whether calling ``fn`` gives a coroutine (``async def``)."""
    return inspect.iscoroutinefunction(_callee(fn))


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
        spec = _read_payload_type(func)
        if key is not None:
            _HANDLER_SPECS[key] = spec
    return spec


def _read_payload_type(func: Callable[..., Any]) -> object:
    """The annotation of the first positional parameter of ``func`` (uncached)."""
    try:
        params = [
            p
            for p in inspect.signature(func).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)
        ]
    except (TypeError, ValueError):
        return ANY
    if not params:
        return NO_PAYLOAD
    target = func if inspect.isfunction(func) or inspect.ismethod(func) else type(func).__call__
    try:
        hints = typing.get_type_hints(target)
    except Exception:
        hints = {}
    spec = hints.get(params[0].name, ANY)
    return ANY if spec is Any else spec


def structure_input(
    func: Callable[..., Any], input: Any, state: State, thread: str, event: str
) -> tuple[bool, Any]:
    """Return (takes_payload, payload structured into the handler's annotation)."""
    spec = payload_type(func)
    if spec is NO_PAYLOAD:
        if input is not None:
            raise no_payload(state, thread, event, input)
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


def no_payload(state: State, thread: str, event: str, input: Any) -> InputError:
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


def describe(exc: BaseException) -> str:
    """An exception as the errors quote it: ``ValueError: out of dough``."""
    return f"{type(exc).__name__}: {exc}"


def call_handler(
    run: Run, t: Thread, info: StatementInfo, fn: Callable[..., Any], *args: Any
) -> Any:
    """Call an event's handler ``fn(*args)`` for ``run``; what it raises refuses the event (a
    ``HandlerError``)."""
    state = run.state
    try:
        return run.call(t, info.name, "handler", fn, *args)
    except GorchError:
        raise
    except Exception as exc:
        raise HandlerError(
            f"workflow {state.id!r} ({state.workflow}): the handler of event {info.name!r} in "
            f"thread {t.id!r} failed: {describe(exc)}. The event was not applied; fix the "
            f"cause and send it again.",
            workflow_id=state.id,
            thread=t.id,
            statement=info.name,
            event=info.name,
        ) from exc
