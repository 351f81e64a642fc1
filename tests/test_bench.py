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


# It starts PostgreSQL, a uvicorn process and client processes: about 17 s on a 2-core machine
# (one short round), which a loaded machine can push past the suite's 60 s per test.
@pytest.mark.timeout(240)
def test_bench_http_quick_run() -> None:
    """In a process of its own, as run by hand: it starts a uvicorn process and client processes
    (which import ``bench.http`` from the working directory)."""
    import re
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    r = subprocess.run(
        [sys.executable, "-m", "bench.http", "--quick"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    out = r.stdout
    for heading in (
        "machine: ",
        "1. SQLite file",
        "2. PostgreSQL",
        "HTTP (http.client)",
        "engine only",
        "HTTP - engine",
        "1, httpx client",
        "GET /health round trip",
        "target, HTTP adds <= 1 ms p50 at 1 client: SQLite ",
    ):
        assert heading in out, heading
    # "  4  | 1308  1.50  34.94  0 | 3128  0.29  9.24  0 | +1.21  5.14x": 1 and 4 clients, twice
    number, count = r"\s+\d+\.\d\d", r"\s+\d+"
    side = count + number + number + r"\s+0 "
    row = rf"^\s+([14])\s+\|{side}\|{side}\|\s+[+-]\d+\.\d\d\s+\d+\.\d\dx$"
    assert re.findall(row, out, re.MULTILINE) == ["1", "4", "1", "4"], out


def test_bench_check_quick_run(capsys: pytest.CaptureFixture[str]) -> None:
    from bench import check

    assert check.main(["--quick"]) == 0
    out = capsys.readouterr().out
    for heading in ("0. seeding", "1. the code that wrote them", "2. a Wait renamed", "3. the"):
        assert heading in out
    assert "missing_statement 'for payment': 2,000 instances" in out
    assert "missing_event 'payment late': 2,000 instances" in out
    assert "instances/s, ok=True" in out


def test_bench_observability_quick_run(capsys: pytest.CaptureFixture[str]) -> None:
    from bench import observability

    assert observability.main(["--quick"]) == 0
    out = capsys.readouterr().out
    for line in ("none", "metrics", "tracing, no-op", "tracing, SDK", "both", "x none"):
        assert line in out
    assert "one observation costs" in out and "to start and end one span" in out


def test_bench_asyncio_engine_quick_run(capsys: pytest.CaptureFixture[str]) -> None:
    import re

    from bench import asyncio_engine

    assert asyncio_engine.main(["--quick"]) == 0
    out = capsys.readouterr().out
    for heading in ("1. send", "sequential, µs per send", "16 senders, sends/s", "2. event loop"):
        assert heading in out, heading
    for load in asyncio_engine.LAG_LOADS.values():
        assert out.count(load) == 2, load  # SQLite and PostgreSQL
    # "   SQLite file    801    848    1.06x    +48 |    40    701    63": both stores, twice
    ratio = r"\s+\d+\.\d\dx"
    assert len(re.findall(rf"^   (?:SQLite file|PostgreSQL)\s.*{ratio}", out, re.MULTILINE)) == 4


def test_bench_transactions_quick_run(capsys: pytest.CaptureFixture[str]) -> None:
    import re

    from bench import transactions

    assert transactions.main(["--quick"]) == 0
    out = capsys.readouterr().out
    for heading in ("1. SQLite file", "2. PostgreSQL", "target: a transactional step costs"):
        assert heading in out, heading
    for label in transactions.MODES.values():
        assert out.count(label) == 2, label  # SQLite and PostgreSQL
    assert out.count("transactional / (plain + separate write)") == 2
    assert out.count("(ok)") == 2  # every row written exactly once, on both stores
    verdict = r"^   (?:SQLite file|PostgreSQL), .*\s\d+\.\d\dx  (?:PASS|FAIL)$"
    assert len(re.findall(verdict, out, re.MULTILINE)) == 4


def test_bench_together_quick_run(capsys: pytest.CaptureFixture[str]) -> None:
    """bench/together.py runs and prints every figure it promises (the per-step comparison
    needs a base checkout: the quick run leaves it out)."""
    from bench import together

    assert together.main(["--quick"]) == 0
    out = capsys.readouterr().out
    assert out.count("p50") == 2 and "statements in 0.5 idle seconds: 0" in out
    assert out.count("from start to the parent's finish") == 2
