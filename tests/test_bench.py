"""The interpreter benchmark runs (a smoke test: no timing is asserted, machines are noisy)."""

from __future__ import annotations

import pytest

from bench import interpreter


def test_bench_interpreter_quick_run(capsys: pytest.CaptureFixture[str]) -> None:
    assert interpreter.main(["--quick"]) == 0
    out = capsys.readouterr().out
    for heading in ("1. gorchestrate", "2. the same run", "3. sequential", "4. a loop"):
        assert heading in out
    assert "after  10000 turns" in out
