""":class:`Engine`: the one class users see, joined from one class per concern.

Each concern's calls live in their own module, written once with their docstrings, on a base
that holds the settings and the shared machinery (:class:`~gorch.engine._core.EngineCore`):

- reading (get, list, history, waits, workflow_class, workflow_of): ``_reading.py``;
- delivering (start, send, send_json): ``_delivering.py``;
- awaiting (wait, changes): ``_awaiting.py``;
- operating (goto, pause, unpause, cancel, retry, refusal): ``_operating.py``;
- explaining (why): ``_why.py``;
- deploying (check, migrate): ``_check.py`` and ``_migrate.py``;
- repairing data (set_data): ``_data.py``;
- operator actions over a filter (bulk): ``_bulk.py``;
- erasing personal data (delete_data): ``_erasing.py``;
- schedules (schedule, schedules, pause_schedule, resume_schedule, unschedule,
  fire_schedules): ``_scheduling.py``.

Mixins rather than thin methods that forward to functions: a call and its documentation then
stand in one place, with nothing to keep in step (a forwarding method repeats every
parameter), and a call costs no extra frame on the hot path (``send``).
"""

from __future__ import annotations

from gorch.engine._awaiting import Awaiting
from gorch.engine._bulk import Bulk
from gorch.engine._data import DataRepairs
from gorch.engine._delivering import Delivering
from gorch.engine._erasing import Erasing
from gorch.engine._migrate import Migrating
from gorch.engine._operating import Operating
from gorch.engine._reading import Reading
from gorch.engine._scheduling import Scheduling
from gorch.engine._why import Explaining


class Engine(
    Reading,
    Scheduling,
    Delivering,
    Awaiting,
    Bulk,
    Operating,
    Explaining,
    Migrating,
    DataRepairs,
    Erasing,
):
    """Durable workflow instances on a store.

    Args:
        store: where instances live (:class:`gorch.store.SQLStore` or ``MemoryStore``).
        workflows: registered workflow classes by name.
        retry: the default retry policy for failing steps (a step may override it with
            ``Step(..., retry=RetryPolicy(...))``).
        lease: how long a claim on an instance lasts without a checkpoint or a renewal. While
            user code runs, the lease is renewed in the background every third of it, so only a
            process that died (or stalled for a whole lease) loses an instance to a worker that
            takes it over.
        busy_wait: seconds an operation waits for an instance another process is working on
            before it raises :class:`BusyError`.
        max_steps: steps one resume may run before yielding the instance to a worker.
        listeners: :class:`Listener` objects.
        owner: this engine's name in leases (default: host, pid and a random suffix).
        services: the application's services by name (a database, an HTTP client, a payment
            client): what user code reaches as ``gorch.context().services``, so that it needs
            no globals and tests can swap them.

    Raises:
        DefinitionError: a registered class breaks a rule of the DSL, or one of its fields has
            a type that cannot round-trip through JSON (every problem listed; see
            :func:`gorch.validate`).

    Example::

        engine = Engine(SQLStore("sqlite:///gorch.db"), {"pizza": PizzaOrder})
        engine.start("pizza", PizzaOrder(), id="order-1")
        engine.send("order-1", "AddToCart", {"name": "margherita", "qty": 2}, key="req-17")
    """
