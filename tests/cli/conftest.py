"""The fixtures of the ``gorch`` command's tests: a clean environment for every test, and a
created store with the pizza workflows (``g``) or with a step that fails as well (``flaky``).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from _cli_workflows import Flaky
from _gorch import BOTH, Gorch


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("GORCH_STORE", "GORCH_WORKFLOWS", "GORCH_TOKENS"):
        monkeypatch.delenv(var, raising=False)
    for var in ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("COLUMNS", "200")  # tables on one line each, for the assertions
    monkeypatch.setattr(sys, "path", list(sys.path))  # --workflows may add the cwd to it


@pytest.fixture
def g(tmp_path: Path) -> Gorch:
    return Gorch(tmp_path / "gorch.db").init()


@pytest.fixture
def flaky(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Gorch:
    monkeypatch.setattr(Flaky, "broken", True)
    return Gorch(tmp_path / "gorch.db", BOTH).init()
