"""Test workflows in a few lines: an engine on a memory or SQLite store, time you move by hand.

With ``pip install "gorch[testing]"`` pytest finds the fixtures by itself (the ``pytest11``
entry point of :mod:`gorch.testing.plugin`); ``pytest_plugins = ["gorch.testing"]`` in a
``conftest.py`` does the same where gorch is not installed that way. Then::

    def test_cart_times_out(gorch):
        h = gorch({"pizza": PizzaOrder})           # time is frozen for the test
        h.start("pizza", PizzaOrder(), id="o1")
        h.advance(hours=23)
        h.assert_waiting("o1", "AddToCart")         # the 24-hour timer has not fired
        h.advance(hours=2)                          # it has now: the worker fired it
        h.assert_status("o1", RunStatus.FINISHED)

:class:`Harness` needs no pytest: ``with Harness({"pizza": PizzaOrder}) as h: ...``; it needs
freezegun only to freeze time (``start=None`` leaves time alone). This module imports neither;
the fixtures ``gorch`` and ``gorch_time`` live in :mod:`gorch.testing.plugin` (importing them
from here loads it, and so pytest).

PYTEST_DONT_REWRITE: this package has no asserts for pytest to rewrite; the marker keeps pytest
from warning when a conftest names it after the entry point has imported it.
"""

from __future__ import annotations

from typing import Any

from gorch.testing._harness import REAL_TIME_MODULES, START, Harness

__all__ = ["REAL_TIME_MODULES", "START", "Harness"]

# What pytest loads when a conftest says ``pytest_plugins = ["gorch.testing"]``; it is skipped
# when the entry point has registered the plugin already (see gorch.testing.plugin).
pytest_plugins = ["gorch.testing.plugin"]


def __getattr__(name: str) -> Any:
    # The fixtures, for ``from gorch.testing import gorch``; loaded on demand because they
    # need pytest. (Not in dir(), so that nothing that walks modules imports pytest.)
    if name in ("gorch", "gorch_time"):
        from gorch.testing import plugin

        return getattr(plugin, name)
    raise AttributeError(f"module 'gorch.testing' has no attribute {name!r}")
