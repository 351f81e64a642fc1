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


def test_bench_engine_quick_run(capsys: pytest.CaptureFixture[str]) -> None:
    from bench import engine

    assert engine.main(["--quick"]) == 0
    out = capsys.readouterr().out
    for heading in ("0. raw floor", "1. durable steps", "2. send", "3. worker", "4. firing"):
        assert heading in out
    assert "x floor" in out and "events/s" in out and "timers/s" in out
