"""The statement DSL: a workflow's ``definition()`` returns a tree of these.

Statements are plain data. Constructors only store their arguments, so that ``definition()``,
which the interpreter calls again whenever it needs fresh conditions, stays cheap; every check
happens once per workflow class, in :func:`gorch.validate`.

Example:
    >>> from gorch import S, Step, Wait, On, For
    >>> class Counter:
    ...     n = 0
    ...     def definition(self):
    ...         return S(
    ...             For("count to three", self.n < 3,
    ...                 Wait("for a tick", On("tick", self.tick)),
    ...             ),
    ...         )
    ...     def tick(self) -> None:
    ...         self.n += 1
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import timedelta
from typing import Any, Protocol, runtime_checkable

from gorch import clock
from gorch.retry import RetryPolicy
from gorch.state import CallbackRequest

__all__ = [
    "Break",
    "Case",
    "Continue",
    "Default",
    "For",
    "Go",
    "Handler",
    "If",
    "On",
    "Return",
    "S",
    "Section",
    "Step",
    "Stmt",
    "Switch",
    "Timeout",
    "Wait",
    "WaitFor",
]

# Node kinds, for the interpreter's dispatch (an int compare is cheaper than isinstance chains).
K_SECTION, K_STEP, K_IF, K_SWITCH, K_CASE, K_FOR, K_BREAK, K_CONTINUE, K_RETURN = range(9)
K_WAIT, K_ON, K_TIMEOUT, K_WAITFOR, K_GO = range(9, 14)

_ZERO = timedelta(0)


@runtime_checkable
class Handler(Protocol):
    """An event handler with a lifecycle: set up when a wait begins, torn down when it ends.

    Each method receives the stored request (``workflow_id``, ``thread_id``, ``pc`` and
    ``setup_data`` filled in). Errors from ``setup`` and ``teardown`` are recorded on the wait
    event and retried by every later resume; an error from ``handle`` refuses the event.

    Attributes:
        type: a short name for the kind of handler (shown in the state and in diagrams).
    """

    type: str

    def setup(self, req: CallbackRequest) -> str:
        """Prepare to receive the event; the returned text is kept as ``req.setup_data``."""
        ...

    def handle(self, req: CallbackRequest, input: Any) -> object:
        """Handle the event's payload; the return value is the callback's output."""
        ...

    def teardown(self, req: CallbackRequest, handled: bool) -> None:
        """Release what ``setup`` prepared; ``handled`` tells whether this event fired."""
        ...


class Stmt:
    """Base of every statement."""

    __slots__ = ()
    _kind: int = -1
    name: str = ""


class Section(Stmt):
    """Statements that run in order. Build one with :func:`S`."""

    __slots__ = ("kids",)
    _kind = K_SECTION

    def __init__(self, kids: tuple[Any, ...]) -> None:
        self.kids = kids

    def __repr__(self) -> str:
        return f"S({', '.join(map(repr, self.kids))})"


def S(*stmts: Any) -> Section:
    """A section: the statements run in order."""
    return Section(stmts)


class Step(Stmt):
    """Run ``action()`` once.

    If it raises, the thread stays at this step and a later resume retries it (the error is
    raised as :class:`gorch.StepError`). A step that completed is never run again by the
    interpreter.

    Args:
        name: the step's name, unique in the definition.
        action: what it runs (a method or function; ``async def`` too).
        retry: the engine's retry policy for this step (None: the engine's default).
        timeout: the longest an attempt may run (a ``timedelta`` or seconds): one that runs
            longer is abandoned and fails with :class:`gorch.StepTimeoutError`; its late
            result is never committed.
        transaction: run the step's database work through ``gorch.context().session``, which
            commits in the same transaction as the step's checkpoint (an engine on an
            ``SQLStore`` only; refused at registration elsewhere).
    """

    __slots__ = ("action", "name", "retry", "timeout", "transaction")
    _kind = K_STEP

    def __init__(
        self,
        name: str,
        action: Callable[[], object],
        *,
        retry: RetryPolicy | None = None,
        timeout: timedelta | float | None = None,
        transaction: bool = False,
    ) -> None:
        self.name = name
        self.action = action
        self.retry = retry
        self.timeout = timeout
        self.transaction = transaction

    def seconds(self) -> float | None:
        """``timeout`` in seconds (None: no timeout)."""
        t = self.timeout
        return t.total_seconds() if isinstance(t, timedelta) else t

    def __repr__(self) -> str:
        return f"Step({self.name!r})"


class Case(Stmt):
    """A branch of a :class:`Switch` (or of an :class:`If`): runs ``body`` if ``cond`` holds."""

    __slots__ = ("cond", "kids", "name")
    _kind = K_CASE

    def __init__(self, cond: Any, name: str, *body: Any) -> None:
        self.cond = cond
        self.name = name
        self.kids = body

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


class Default(Case):
    """The last branch of a :class:`Switch`: runs when no case before it held."""

    __slots__ = ()

    def __init__(self, name: str, *body: Any) -> None:
        self.cond = True
        self.name = name
        self.kids = body


class Switch(Stmt):
    """Run the body of the first case whose condition holds (none, if none holds)."""

    __slots__ = ("kids",)
    _kind = K_SWITCH

    def __init__(self, *cases: Any) -> None:
        self.kids: tuple[Any, ...] | list[Any] = cases

    def __repr__(self) -> str:
        return f"Switch({', '.join(map(repr, self.kids))})"


class If(Switch):
    """Conditional: ``If(cond, name, *body).elif_(cond, name, *body).else_(name, *body)``.

    Each branch is named, so that a thread inside it can be found again after a restart.
    ``elif_`` and ``else_`` return the same ``If`` so that they chain.
    """

    __slots__ = ()
    _kind = K_IF

    def __init__(self, cond: Any, name: str, *body: Any) -> None:
        self.kids = [Case(cond, name, *body)]

    def elif_(self, cond: Any, name: str, *body: Any) -> If:
        """Add a branch that runs if no branch before it held and ``cond`` holds."""
        self.kids.append(Case(cond, name, *body))  # type: ignore[union-attr]
        return self

    def else_(self, name: str, *body: Any) -> If:
        """Add the branch that runs when no branch before it held."""
        self.kids.append(Default(name, *body))  # type: ignore[union-attr]
        return self

    def __repr__(self) -> str:
        return f"If({', '.join(repr(k.name) for k in self.kids)})"


class For(Stmt):
    """Loop while ``cond`` holds.

    ``cond`` is read from a fresh ``definition()`` before every turn. The body must wait or run
    a step in every turn; a turn that does neither could never change the condition, so the
    interpreter stops it with a :class:`gorch.DefinitionError` instead of spinning.
    """

    __slots__ = ("cond", "kids", "name")
    _kind = K_FOR

    def __init__(self, name: str, cond: Any, *body: Any) -> None:
        self.name = name
        self.cond = cond
        self.kids = body

    def __repr__(self) -> str:
        return f"For({self.name!r})"


class Break(Stmt):
    """Leave the innermost enclosing ``For`` now."""

    __slots__ = ()
    _kind = K_BREAK

    def __repr__(self) -> str:
        return "Break()"


class Continue(Stmt):
    """Skip the rest of this turn of the innermost enclosing ``For``."""

    __slots__ = ()
    _kind = K_CONTINUE

    def __repr__(self) -> str:
        return "Continue()"


class Return(Stmt):
    """End this thread; in the main thread, end the workflow (every other thread stops too)."""

    __slots__ = ()
    _kind = K_RETURN

    def __repr__(self) -> str:
        return "Return()"


class On(Stmt):
    """An event case of a :class:`Wait`: when ``event`` arrives, run ``handler`` then ``body``.

    ``handler`` may be:

    - a :class:`Handler` (an object with ``setup``, ``handle`` and ``teardown``);
    - a plain callable. With no parameters it is called with none; otherwise its first
      parameter receives the payload, structured with cattrs into that parameter's type
      annotation (a payload of the wrong shape is refused with :class:`gorch.InputError`);
      an unannotated parameter gets the payload as given. Its return value is the output;
    - ``None``: the event carries no logic of its own;
    - a statement: taken as the first statement of the body.

    ``roles`` names who may send the event (``"Customer"`` or several): the interpreter and
    engine ignore it; :mod:`gorch.http` lets only a caller holding one of them send it.
    """

    __slots__ = ("handler", "kids", "name", "roles")
    _kind = K_ON

    def __init__(
        self, event: str, handler: Any = None, *body: Any, roles: str | Iterable[str] = ()
    ) -> None:
        if isinstance(handler, Stmt):
            body = (handler, *body)
            handler = None
        self.name = event
        self.handler = handler
        self.kids = body
        self.roles: tuple[str, ...] = (roles,) if isinstance(roles, str) else tuple(roles)

    def __repr__(self) -> str:
        return f"On({self.name!r})"


class Timeout(Stmt):
    """An event case of a :class:`Wait` that fires by itself ``after`` the wait began.

    ``after`` is a ``timedelta`` or a number of seconds; it may be computed from the workflow's
    data, and a negative one means "due now". The timeout is its own handler: its
    setup records the absolute due time (from :func:`gorch.clock.now`, as ISO-8601 UTC text) in
    ``setup_data``; the engine fires it then. At the interpreter level a test delivers it by
    hand with ``handle_callback``.
    """

    __slots__ = ("after", "kids", "name")
    _kind = K_TIMEOUT
    type = "timeout"

    def __init__(self, name: str, after: timedelta | float, *body: Any) -> None:
        self.name = name
        self.after = after
        self.kids = body

    @property
    def handler(self) -> Timeout:
        """A timeout is its own handler."""
        return self

    @property
    def delay(self) -> timedelta:
        """``after`` as a ``timedelta``; a negative one (a deadline computed from data that
        has passed already) is zero: the timeout is due at once.

        Raises:
            TypeError: ``after`` is neither a ``timedelta`` nor a number of seconds.
        """
        after = self.after
        if isinstance(after, timedelta):
            delay = after
        elif isinstance(after, int | float) and not isinstance(after, bool):
            delay = timedelta(seconds=after)
        else:
            raise TypeError(
                f"Timeout {self.name!r}: after must be a timedelta or a number of seconds, "
                f"got {after!r}"
            )
        return delay if delay > _ZERO else _ZERO

    def setup(self, req: CallbackRequest) -> str:
        """Return the due time: now plus ``after``, as ISO-8601 UTC text."""
        return clock.format_time(clock.now() + self.delay)

    def handle(self, req: CallbackRequest, input: Any) -> object:
        """A timeout carries no payload; its output is its due time."""
        return req.setup_data

    def teardown(self, req: CallbackRequest, handled: bool) -> None:
        """Nothing to release: the engine drops the timer with the wait."""

    def __repr__(self) -> str:
        return f"Timeout({self.name!r}, {self.after!r})"


class Wait(Stmt):
    """Block until exactly one of ``events`` (``On`` or ``Timeout`` cases) arrives."""

    __slots__ = ("kids", "name")
    _kind = K_WAIT

    def __init__(self, name: str, *events: Any) -> None:
        self.name = name
        self.kids = events

    def __repr__(self) -> str:
        return f"Wait({self.name!r}, {', '.join(map(repr, self.kids))})"


class WaitFor(Stmt):
    """Block until ``cond`` holds, then call ``handler()`` (if given) and go on.

    The condition is re-checked whenever every thread is blocked, before ``resume`` returns; a
    ``WaitFor`` whose condition already holds when reached passes straight on.

    ``description`` says in words what the condition waits for (``"the order is paid in
    full"``); :meth:`gorch.Engine.why` shows it beside the condition's source text. The
    interpreter ignores it.
    """

    __slots__ = ("cond", "description", "handler", "name")
    _kind = K_WAITFOR

    def __init__(
        self,
        name: str,
        cond: Any,
        handler: Callable[[], object] | None = None,
        *,
        description: str = "",
    ):
        self.name = name
        self.cond = cond
        self.handler = handler
        self.description = description

    def __repr__(self) -> str:
        return f"WaitFor({self.name!r})"


class Go(Stmt):
    """Start a parallel thread that runs ``body``, and go on at once.

    ``id`` (default: ``name``) tells apart threads started by the same ``Go`` in a loop; two
    live threads never share an id.
    """

    __slots__ = ("id", "kids", "name")
    _kind = K_GO

    def __init__(self, name: str, *body: Any, id: str | None = None) -> None:
        self.name = name
        self.kids = body
        self.id = id

    def __repr__(self) -> str:
        return f"Go({self.name!r})"
