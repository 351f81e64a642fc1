"""What running user code can learn about itself: :func:`context`, and the host behind it.

While the interpreter calls user code (a step's action, an event handler, a ``WaitFor``
handler, a ``Handler``'s setup, handle or teardown), the :class:`~gorch.interpreter._run.Run`
that calls it is in :data:`CURRENT` and its ``at`` says what runs: ``(thread, statement, role,
started)``. :func:`context` builds a :class:`StepContext` from them only when asked, so code that
never asks pays one tuple and a context variable per call.

What the interpreter cannot know itself (the application's services, which attempt this is,
where a heartbeat goes, the database session of a transactional step, how to wait for a
coroutine) comes from a :class:`Host`: the pure API's is :class:`Host` itself; the engine lends
one per operation.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import threading
import time
import uuid
from collections.abc import Callable, Coroutine, Mapping
from contextvars import ContextVar
from datetime import UTC, datetime
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from gorch.errors import NoContextError, StepTimeoutError
from gorch.interpreter._handlers import is_coroutine_function

if TYPE_CHECKING:
    from gorch.interpreter._run import Run

CURRENT: ContextVar[Run | None] = ContextVar("gorch.run", default=None)
"""The run whose user code is running in this context (None outside user code)."""

KEYS = uuid.UUID("6f0c7a4e-2a55-4c1b-9a57-0b1d3c2e9f10")
"""The namespace of idempotency keys (UUID5 of instance, thread, statement, role and pc)."""

NO_SERVICES: Mapping[str, Any] = MappingProxyType({})


class Host:
    """What the code around the interpreter lends to user code. This one is the pure API's:
    the services and attempt number it was given; heartbeats are kept in memory
    (``last_heartbeat``); there is no session.
    """

    __slots__ = ("attempt_number", "last_heartbeat", "services")

    def __init__(self, services: Mapping[str, Any] | None = None, attempt: int = 1) -> None:
        if services is not None and not isinstance(services, Mapping):
            raise TypeError(
                f"services must be a mapping of names to objects (a dict), got "
                f"{type(services).__name__}"
            )
        if not isinstance(attempt, int) or attempt < 1:
            raise ValueError(f"attempt must be a whole number of at least 1, got {attempt!r}")
        self.services = NO_SERVICES if not services else MappingProxyType(dict(services))
        self.attempt_number = attempt
        self.last_heartbeat: Any = None

    def attempt(self, role: str) -> int:
        """Which attempt the user code in ``role`` ("step", "handler", "setup", ...) is."""
        return self.attempt_number

    def heartbeat(self, details: Any) -> None:
        self.last_heartbeat = details

    def session(self, ctx: StepContext) -> Any:
        raise NoContextError(
            f"context().session is there only inside a Step(..., transaction=True) run by an "
            f"engine on an SQLStore; {ctx.statement!r} is not one. Declare the step with "
            f"transaction=True, or open a session of your own."
        )

    def wait(self, coro: Coroutine[Any, Any, Any]) -> Any:
        """Run the coroutine an ``async def`` returned to its end and give its result."""
        return run_coroutine(coro)


DEFAULT_HOST = Host()


class StepContext:
    """What the running user code may know; see :func:`context`.

    Attributes:
        instance_id: the instance (the state's id).
        workflow: the workflow's name.
        thread: the id of the thread the code runs in.
        statement: the statement's name (a step, an event, a ``WaitFor``).
        role: what runs: ``"step"``, ``"handler"`` (an event's), ``"condition"`` (a
            ``WaitFor``'s handler), ``"setup"`` or ``"teardown"`` (a ``Handler``'s).
        attempt: 1 on the first attempt of this execution, 2 on its first retry, ...
        started_at: when this attempt started (aware UTC).
        idempotency_key: a UUID string, the same on every attempt of this execution and new
            on the next turn of a loop: what to pass to a payment provider.
        services: the application's services, by name (read-only).
    """

    __slots__ = ("_at", "_host", "_run", "attempt", "idempotency_key", "instance_id", "role",
                 "services", "started_at", "statement", "thread", "workflow")  # fmt: skip

    def __init__(self, run: Run, at: tuple[Any, str, str, float]) -> None:
        t, name, role, started = at
        host = run.host
        self._host, self._run, self._at = host, run, at
        self.instance_id: str = run.state.id
        self.workflow: str = run.state.workflow
        self.thread: str = t.id
        self.statement = name
        self.role = role
        self.attempt = host.attempt(role)
        self.started_at = datetime.fromtimestamp(started, UTC)
        seed = f"{self.instance_id}\x1f{t.id}\x1f{name}\x1f{role}\x1f{t.pc}"
        self.idempotency_key = str(uuid.uuid5(KEYS, seed))
        self.services: Mapping[str, Any] = host.services

    def heartbeat(self, details: Any = None) -> None:
        """Report progress (any JSON value): operators see it (``gorch show``, the instance's
        ``running``), and under an engine it renews the instance's lease.

        Raises:
            NoContextError: this attempt has ended (it returned, or it was abandoned past its
                timeout).
            InputError: ``details`` is not JSON.
        """
        if self._run.at is not self._at:
            raise NoContextError(
                f"the attempt of {self.statement!r} this context belongs to has ended (it "
                f"returned, or it was abandoned past its timeout): its heartbeat is not recorded"
            )
        self._host.heartbeat(details)

    @property
    def session(self) -> Any:
        """The database session of a ``Step(transaction=True)``: what it adds and changes
        commits together with the step's checkpoint."""
        return self._host.session(self)

    def __repr__(self) -> str:
        return (
            f"StepContext(instance_id={self.instance_id!r}, workflow={self.workflow!r}, "
            f"thread={self.thread!r}, statement={self.statement!r}, attempt={self.attempt})"
        )


def context() -> StepContext:
    """What the running user code may know: its instance, thread, statement, attempt, an
    idempotency key, and the application's services.

    Call it inside a step's action, an event handler, a ``WaitFor`` handler or a ``Handler``
    method (under an engine, a worker, :mod:`gorch.testing` or the pure API alike).

    Raises:
        NoContextError: called anywhere else (in ``definition()``, a condition, or outside
            gorch).

    Example:
        >>> from gorch import S, Step, context, new_state, resume
        >>> class Hello:
        ...     seen = ""
        ...     def definition(self):
        ...         return S(Step("greet", self.greet))
        ...     def greet(self):
        ...         ctx = context()
        ...         self.seen = f"{ctx.instance_id}/{ctx.statement}/{ctx.attempt}"
        >>> wf = Hello()
        >>> resume(wf, new_state("1", "hello"))
        >>> wf.seen
        '1/greet/1'
    """
    run = CURRENT.get()
    at = None if run is None else run.at
    if at is None:
        raise NoContextError(
            "gorch.context() was called outside running user code: it is there only inside a "
            "step's action, an event handler, a WaitFor handler or a Handler method while "
            "gorch runs it (not in definition(), a condition, or code gorch did not call)"
        )
    return StepContext(run, at)  # type: ignore[arg-type]


# -- coroutines ---------------------------------------------------------------------------------

_LOCAL = threading.local()

HOME: ContextVar[asyncio.AbstractEventLoop | None] = ContextVar("gorch.home", default=None)
"""The event loop async user code belongs on, if its call came from one (``AsyncEngine`` sets
it for the thread that does the call's work): clients the application made on that loop work
only there."""


def run_coroutine(coro: Coroutine[Any, Any, Any]) -> Any:
    """Run ``coro`` to its end from synchronous code and give its result.

    On the :data:`HOME` loop if there is one (an ``AsyncEngine`` call from that loop: this
    thread waits while the loop runs it). Else, in a thread without a running event loop, on
    that thread's own loop (one per thread, kept for the next coroutine, so clients bound to
    it stay usable); inside a running loop (sync gorch called from async code), on a loop in a
    helper thread, since this thread's loop is busy waiting for us. The context variables
    (:func:`context`) go with it.
    """
    home = HOME.get()
    try:
        running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if home is not None and home is not running and home.is_running():
        return asyncio.run_coroutine_threadsafe(coro, home).result()
    if running is None:
        runner = getattr(_LOCAL, "runner", None)
        if runner is None:
            runner = _LOCAL.runner = asyncio.Runner()
        return runner.run(coro, context=contextvars.copy_context())
    box: list[Any] = []

    def side() -> None:
        try:
            box.append((True, asyncio.run(coro)))
        except BaseException as exc:
            box.append((False, exc))

    worker = threading.Thread(target=contextvars.copy_context().run, args=(side,),
                              name="gorch-coroutine", daemon=True)  # fmt: skip
    worker.start()
    worker.join()
    ok, value = box[0]
    if ok:
        return value
    raise value


# -- a step's timeout -------------------------------------------------------------------------


def call_limited(run: Run, fn: Callable[[], Any], seconds: float) -> Any:
    """Call the step ``fn`` of ``run`` (whose ``at`` is set), abandoning it after ``seconds``.

    A coroutine function is awaited under :func:`asyncio.wait_for` (cancelled at the limit);
    anything else runs in a thread of its own, which is left behind at the limit (Python
    cannot stop a thread): what it does later is never committed, and its context is gone
    (``gorch.context()`` refuses in it).

    Raises:
        StepTimeoutError: the attempt ran longer than ``seconds``.
    """
    started = time.monotonic()
    if is_coroutine_function(fn):

        async def limited() -> Any:
            return await asyncio.wait_for(fn(), seconds)

        try:
            return run.host.wait(limited())
        except TimeoutError:
            if time.monotonic() - started < seconds:
                raise  # the step's own TimeoutError
            raise _timed_out(run, seconds) from None
    box: list[tuple[bool, Any]] = []

    def body() -> None:
        try:
            result = fn()
            if result is not None and inspect.iscoroutine(result):
                result = run.host.wait(result)
            box.append((True, result))
        except BaseException as exc:
            box.append((False, exc))

    at = run.at
    name = at[1] if at else "step"
    worker = threading.Thread(target=contextvars.copy_context().run, args=(body,),
                              name=f"gorch-step {name}", daemon=True)  # fmt: skip
    worker.start()
    worker.join(seconds)
    if not box:
        raise _timed_out(run, seconds)
    ok, value = box[0]
    if ok:
        return value
    raise value


def _timed_out(run: Run, seconds: float) -> StepTimeoutError:
    at = run.at
    name = at[1] if at else ""
    return StepTimeoutError(
        f"step {name!r} ran longer than its timeout of {seconds:g} s; the attempt was abandoned "
        f"(whatever it does from now on is never committed) and counts as a failed attempt",
        workflow_id=run.state.id,
        thread=at[0].id if at else "",
        statement=name,
    )
