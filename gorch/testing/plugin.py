"""gorch's pytest plugin: the ``gorch`` and ``gorch_time`` fixtures.

Installing ``gorch[testing]`` registers this module with pytest through the ``pytest11``
entry point named ``gorch.testing.plugin``, so the fixtures need no ``conftest.py`` line.
``pytest_plugins = ["gorch.testing"]`` (or ``"gorch.testing.plugin"``) keeps working, with or
without the entry point, and never registers the fixtures twice: ``gorch.testing`` names this
module in its own ``pytest_plugins``, and pytest skips a plugin already registered under that
name. ``-p no:gorch.testing.plugin`` turns the plugin off.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest

from gorch.testing._harness import START, Harness, frozen_time

__all__ = ["gorch", "gorch_time"]


@pytest.fixture
def gorch() -> Iterator[Callable[..., Harness]]:
    """A factory of :class:`~gorch.testing.Harness` objects, closed after the test:
    ``h = gorch({"pizza": PizzaOrder}, store="sqlite")``."""
    made: list[Harness] = []

    def make(workflows: Mapping[str, type], **options: Any) -> Harness:
        h = Harness(workflows, **options)
        made.append(h)
        return h

    yield make
    for h in reversed(made):
        h.close()


@pytest.fixture
def gorch_time() -> Iterator[Any]:
    """Frozen time at :data:`~gorch.testing.START` for the test (with the Harness's ignore
    list); ``gorch_time.tick(timedelta(hours=1))``, ``gorch_time.move_to(when)``."""
    with frozen_time(START) as frozen:
        yield frozen
