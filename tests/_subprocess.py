"""The environment of a child process that runs test modules: ``tests/`` and the repository
root on ``PYTHONPATH`` (before what it held), so that it imports the tests' workflows and this
checkout's gorch."""

from __future__ import annotations

import os
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def child_env(base: dict[str, str] | None = None, **extra: str) -> dict[str, str]:
    """``base`` (default: this process's environment) with ``extra`` and that ``PYTHONPATH``."""
    env = dict(os.environ if base is None else base, **extra)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(TESTS), str(TESTS.parent), os.environ.get("PYTHONPATH", "")) if p
    )
    return env
