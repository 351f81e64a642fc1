"""``gorch worker`` (``--once``, in this process), and ``gorch serve`` and ``python -m gorch
--help`` in real subprocesses: a real server on a free port, stopped by a real signal.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest
from _gorch import (
    CART_EVENTS,
    MARGHERITA,
    PIZZA,
    ROOT,
    Gorch,
    order,
)
from freezegun import freeze_time

from gorch.engine import RunStatus

# -- worker ---------------------------------------------------------------------------------


def test_worker_once_fires_due_timers(g: Gorch) -> None:
    start = datetime(2026, 1, 1, 10, 0, 0)
    with freeze_time(start):
        order(g, "order-1")
        order(g, "order-2", ("AddToCart", MARGHERITA))
    with freeze_time(start + timedelta(hours=23)):
        assert g("worker", "--once").stdout == "did 0 items of work\n"
    assert g.get("order-1").status is RunStatus.WAITING
    assert g.get("order-1").data.status == "cart"
    with freeze_time(start + timedelta(hours=25)):
        assert g.json("worker", "--once") == {"done": 2}
    for id in ("order-1", "order-2"):
        inst = g.get(id)
        assert inst.status is RunStatus.FINISHED
        assert inst.data.status == "expired"
        assert inst.data.log == ["order opened", "cart timed out"]
        assert "timer" in g.kinds(id)
    with freeze_time(start + timedelta(hours=26)):
        assert g("worker", "--once").stdout == "did 0 items of work\n"


def test_worker_once_leaves_a_paused_instance_alone(g: Gorch) -> None:
    start = datetime(2026, 1, 1, 10, 0, 0)
    with freeze_time(start):
        order(g, "order-1")
        g("pause", "order-1")
    with freeze_time(start + timedelta(hours=25)):
        g("worker", "--once")
        assert g.get("order-1").status is RunStatus.PAUSED
        g("unpause", "order-1")  # the due timer fires when it goes on
        g("worker", "--once")
    assert g.get("order-1").data.status == "expired"


# -- serve, in a real process -----------------------------------------------------------------


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GORCH_")}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_python_m_gorch_help() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "gorch", "--help"],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Run and repair durable gorch workflows." in proc.stdout
    assert "Usage: gorch" in proc.stdout


def test_python_m_gorch_cli_is_the_same_command() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "gorch.cli", "list", "--help"],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("Usage: gorch list [OPTIONS]"), proc.stdout


# What a command imports only when it runs: the store's SQLAlchemy and driver, serve's server.
HEAVY = ["fastapi", "psycopg", "pydantic", "sqlalchemy", "starlette", "uvicorn"]


def test_help_imports_no_database_nor_web_framework() -> None:
    """``gorch --help`` and every command's ``--help`` stay quick to answer."""
    code = (
        "import sys\n"
        "from gorch.cli import cli, main\n"
        "for args in [['--help'], *([name, '--help'] for name in cli.commands)]:\n"
        "    try:\n"
        "        main(args)\n"
        "    except SystemExit as exc:\n"
        "        assert exc.code == 0, (args, exc.code)\n"
        f"print(sorted(n for n in {HEAVY!r} if n in sys.modules), file=sys.stderr)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Usage: gorch serve [OPTIONS] [MODULE:APP]" in proc.stdout  # every command answered
    assert proc.stderr.strip() == "[]", proc.stderr


def test_serve_an_app_needs_module_colon_attribute(g: Gorch) -> None:
    message = g.usage("serve", "myshop.api")
    assert message == "Error: 'myshop.api': write the app as module:attribute, e.g. myshop.api:app"


def test_serve_with_a_missing_tokens_file(g: Gorch, tmp_path: Path) -> None:
    missing = tmp_path / "tokens.toml"
    message = g.fail("serve", "--tokens", str(missing), "--port", "0")
    assert message == f"error: token file {str(missing)!r} does not exist"
    assert g.ids() == []


@pytest.mark.parametrize(
    ("sig", "codes"),
    [
        (signal.SIGINT, {0}),
        # uvicorn (>= 0.29) shuts down gracefully, then re-raises SIGTERM on itself, so the
        # process ends "killed by SIGTERM" rather than with status 0.
        (signal.SIGTERM, {0, -signal.SIGTERM}),
    ],
    ids=["SIGINT", "SIGTERM"],
)
def test_serve(tmp_path: Path, sig: signal.Signals, codes: set[int]) -> None:
    db = tmp_path / "served.db"
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "serve.log"
    argv = [sys.executable, "-m", "gorch", "--store", str(db), "--workflows", PIZZA, "--create"]
    argv += ["serve", "--port", str(port), "--tokens", "examples/pizza/tokens.toml", "--metrics"]
    with log.open("w") as out:
        proc = subprocess.Popen(argv, cwd=ROOT, env=_env(), stdout=out, stderr=subprocess.STDOUT)
    try:
        with httpx.Client(base_url=base, timeout=5) as client:
            deadline = time.monotonic() + 20
            while True:
                assert proc.poll() is None, log.read_text()
                try:
                    if client.get("/health").json() == {"status": "ok"}:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, "gorch serve did not come up in 20 s"
                time.sleep(0.1)

            path = "/workflows/pizza/instances"
            assert client.post(path, json={"id": "web-1"}).status_code == 401
            customer = {"Authorization": "Bearer customer-demo-token"}
            response = client.post(path, json={"id": "web-1"}, headers=customer)
            assert response.status_code == 201, response.text
            assert response.json()["status"] == "waiting"
            assert response.json()["waiting_for"] == CART_EVENTS
            # --metrics: Prometheus' text at /metrics, no token, counting what was done
            scraped = client.get("/metrics")
            assert scraped.status_code == 200, scraped.text
            assert 'gorch_instances{status="waiting",workflow="pizza"} 1.0' in scraped.text
            assert 'gorch_operation_seconds_count{operation="start"' in scraped.text
        # The instance is in the store the CLI reads.
        assert Gorch(db).json("show", "web-1")["data"]["status"] == "cart"

        proc.send_signal(sig)
        assert proc.wait(timeout=20) in codes, log.read_text()
        text = log.read_text()
        assert "Application shutdown complete" in text and "Finished server process" in text
        assert "Traceback" not in text
        # every log line says when and how bad: uvicorn's, the requests', gorch's own
        stamp = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (INFO|WARNING|ERROR) +"
        lines = [x for x in text.splitlines() if x]
        assert lines and all(re.match(stamp, x) for x in lines), text
        assert re.search(stamp + r'uvicorn\.access: 127\.0\.0\.1:\d+ - "POST /workflows', text)
        assert re.search(stamp + r"gorch\.engine: web-1: running -> waiting", text), text
        assert re.search(stamp + r"uvicorn\.error: Application startup complete", text)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_serve_without_tokens_warns_with_time_and_level(tmp_path: Path) -> None:
    port = _free_port()
    log = tmp_path / "serve.log"
    argv = [sys.executable, "-m", "gorch", "--store", str(tmp_path / "open.db"), "--workflows",
            PIZZA, "--create", "serve", "--port", str(port), "--no-worker"]  # fmt: skip
    with log.open("w") as out:
        proc = subprocess.Popen(argv, cwd=ROOT, env=_env(), stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        while "Application startup complete" not in log.read_text():
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=20)
        text = log.read_text()
        stamp = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (INFO|WARNING|ERROR) +"
        lines = [x for x in text.splitlines() if x]
        assert lines and all(re.match(stamp, x) for x in lines), text
        assert re.search(stamp + r"gorch\.http: no auth configured", text), text
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
