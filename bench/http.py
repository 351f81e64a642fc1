"""HTTP benchmarks: ``python -m bench.http [--quick]``.

What ``gorch.http`` adds to an event. The pizza API (``create_app`` on ``examples/pizza``) is
served by uvicorn (uvloop + httptools, one worker) in a process of its own; client processes
send ``POST /workflows/pizza/instances/{id}/events/AddToCart`` over loopback, each on its own
order, all started together. In the same run, on the same store and at the same concurrency,
the same number of client processes each hold an ``Engine`` of their own on that store and call
``engine.send`` with the same payloads: the engine-only figures. For SQLite (a file, WAL,
``synchronous=FULL``) and PostgreSQL (started here, fsync on) it prints, for 1, 4 and 16
clients: events per second, p50 and p99 latency of both, and ``HTTP p50 - engine p50`` (the
HTTP layer's own cost; target: at most 1 ms at 1 client) with the ratio.

Every client empties its cart after every 50 pizzas (one ``EmptyCart``, counted in events/s,
not in the latencies): the order's data is saved whole on every event, so a cart growing
without end would make later events slower than earlier ones.

Also: one row with ``httpx`` as the client (1 client: what a typical Python client costs), the
``GET /health`` round trip (the HTTP stack with no engine call), and (full run) 4 clients
sharing one order. ``err`` counts requests not answered 200 (sends that raised, engine-only):
none are expected. Medians over three rounds that alternate HTTP, engine-only (and httpx);
machines are shared and noisy. ``--quick``: few events, one round, 1 and 4 clients (a
smoke run: its figures mean little).
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import os
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import orjson

from bench.engine import pct, sqlite_url
from examples.pizza.workflow import PizzaOrder
from gorch import Engine
from gorch.errors import GorchError
from gorch.store import SQLStore

if TYPE_CHECKING:
    from fastapi import FastAPI

WORKFLOW = "pizza"
ADD = {"pizza": {"name": "margherita"}}
ADD_BODY = orjson.dumps(ADD)
CART = 50  # AddToCart events between two EmptyCart
STORE_ENV = "GORCH_BENCH_STORE"


def app_factory() -> FastAPI:
    """The app uvicorn serves (``--factory bench.http:app_factory``), on the store whose URL
    is in ``$GORCH_BENCH_STORE``. No auth: the figures are the HTTP layer's, not a token
    lookup's."""
    from gorch.http import create_app

    store = SQLStore(os.environ[STORE_ENV])
    return create_app(Engine(store, {WORKFLOW: PizzaOrder}))


def event_path(id: str, event: str) -> str:
    return f"/workflows/{WORKFLOW}/instances/{id}/events/{event}"


# -- client processes --------------------------------------------------------------------------
# A client process serves commands from its parent, one JSON line each: open a sender (HTTP or
# engine), warm up, say "ready", wait for "go" (every client of a run gets it at once: the
# barrier), send its events, and answer with its latencies and start and end times.

Send = Callable[[str, str, Any], bool]  # (instance id, event, payload) -> accepted


def http_client_sender(base: str) -> tuple[Send, Callable[[], None]]:
    """The stdlib's ``http.client``: one keep-alive connection, no pool, no header objects,
    no event hooks. It costs ~65 µs of CPU per request (system calls included), httpx ~280 µs
    (both measured on ``GET /health`` on the 2-core development machine; see the httpx row),
    so the client's own cost hides as little of the server's as possible. The request goes
    out in one ``send`` (http.client joins headers and a bytes body) with TCP_NODELAY, so
    Nagle's algorithm never holds it back."""
    host, port = base.removeprefix("http://").rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=60)
    conn.connect()
    assert conn.sock is not None
    conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    headers = {"Content-Type": "application/json"}

    def send(id: str, event: str, payload: Any) -> bool:
        body = ADD_BODY if payload is ADD else orjson.dumps(payload) if payload else None
        if event == "/health":
            conn.request("GET", "/health")
        else:
            conn.request("POST", event_path(id, event), body=body, headers=headers)
        r = conn.getresponse()
        r.read()
        return r.status == 200

    return send, conn.close


def httpx_sender(base: str) -> tuple[Send, Callable[[], None]]:
    """A typical Python client: ``httpx.Client`` with its keep-alive pool."""
    import httpx

    client = httpx.Client(base_url=base, timeout=60)
    headers = {"Content-Type": "application/json"}

    def send(id: str, event: str, payload: Any) -> bool:
        body = ADD_BODY if payload is ADD else orjson.dumps(payload) if payload else None
        r = client.post(event_path(id, event), content=body, headers=headers)
        return r.status_code == 200

    return send, client.close


def engine_sender(url: str, engines: dict[str, Engine]) -> tuple[Send, Callable[[], None]]:
    """``engine.send`` on an Engine of this process (kept across commands, like a server's)."""
    if url not in engines:
        engines[url] = Engine(SQLStore(url, pool_size=2), {WORKFLOW: PizzaOrder})
    engine = engines[url]

    def send(id: str, event: str, payload: Any) -> bool:
        try:
            engine.send(id, event, payload, workflow=WORKFLOW)
        except GorchError:  # e.g. BusyError on a shared instance: what HTTP answers 503 for
            return False
        return True

    return send, lambda: None


def drive(send: Send, id: str, n: int, first: int) -> tuple[list[float], int, int]:
    """``n`` AddToCart (timed) with an EmptyCart after every ``CART``-th; ``first`` is how many
    this client sent before (so the cart never holds more than ``CART`` pizzas)."""
    lat: list[float] = []
    ok = errors = 0
    for j in range(first, first + n):
        t0 = time.perf_counter()
        good = send(id, "AddToCart", ADD)
        lat.append(time.perf_counter() - t0)
        ok, errors = ok + good, errors + (not good)
        if j % CART == CART - 1:
            good = send(id, "EmptyCart", None)
            ok, errors = ok + good, errors + (not good)
    return lat, ok, errors


def client_process() -> None:
    """Child mode (``--client``): serve commands from stdin until it closes."""
    engines: dict[str, Engine] = {}
    out = sys.stdout
    for line in sys.stdin:
        cmd = orjson.loads(line)
        mode, target, id = cmd["mode"], cmd["target"], cmd["id"]
        if mode == "engine":
            send, close = engine_sender(target, engines)
        elif mode == "httpx":
            send, close = httpx_sender(target)
        else:
            send, close = http_client_sender(target)
        if mode == "health":  # GET /health round trips: the HTTP stack alone
            for _ in range(cmd["warm"]):
                send("", "/health", None)
        else:
            drive(send, id, cmd["warm"], 0)
        out.write("ready\n")
        out.flush()
        if sys.stdin.readline().strip() != "go":  # the parent gave up
            return
        start = time.monotonic()  # CLOCK_MONOTONIC: comparable across processes
        if mode == "health":
            lat = []
            for _ in range(cmd["n"]):
                t0 = time.perf_counter()
                send("", "/health", None)
                lat.append(time.perf_counter() - t0)
            ok, errors = len(lat), 0
        else:
            lat, ok, errors = drive(send, id, cmd["n"], cmd["warm"])
        end = time.monotonic()
        close()
        res = {"lat": lat, "ok": ok, "errors": errors, "start": start, "end": end}
        out.write(orjson.dumps(res).decode() + "\n")
        out.flush()


@dataclass
class Result:
    """One run: events per second (all clients), p50 and p99 latency (seconds), errors."""

    eps: float
    p50: float
    p99: float
    errors: int


def median_result(runs: list[Result]) -> Result:
    return Result(
        statistics.median(r.eps for r in runs),
        statistics.median(r.p50 for r in runs),
        statistics.median(r.p99 for r in runs),
        sum(r.errors for r in runs),
    )


class Clients:
    """A pool of client processes, started once; a run uses the first ``k`` of them."""

    def __init__(self, n: int) -> None:
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(Path.cwd()), *sys.path]))
        self.procs = [
            subprocess.Popen(
                [sys.executable, "-m", "bench.http", "--client"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                env=env,
            )
            for _ in range(n)
        ]

    def run(self, mode: str, target: str, ids: list[str], n: int, warm: int) -> Result:
        """Each of ``len(ids)`` clients warms up with ``warm`` events, then (together) sends
        ``n`` more to its id."""
        procs = self.procs[: len(ids)]
        for p, id in zip(procs, ids, strict=True):
            cmd = {"mode": mode, "target": target, "id": id, "n": n, "warm": warm}
            self._write(p, orjson.dumps(cmd).decode())
        for p in procs:
            self._expect(p, "ready")
        for p in procs:
            self._write(p, "go")
        done = [orjson.loads(self._read(p)) for p in procs]
        lat = [x for d in done for x in d["lat"]]
        wall = max(d["end"] for d in done) - min(d["start"] for d in done)
        ok = sum(d["ok"] for d in done)
        errors = sum(d["errors"] for d in done)
        return Result(ok / wall, statistics.median(lat), pct(lat, 99), errors)

    @staticmethod
    def _write(p: subprocess.Popen[str], line: str) -> None:
        assert p.stdin is not None
        p.stdin.write(line + "\n")
        p.stdin.flush()

    @staticmethod
    def _read(p: subprocess.Popen[str]) -> str:
        assert p.stdout is not None
        line = p.stdout.readline()
        if not line:
            raise RuntimeError(f"client process {p.pid} died (exit code {p.wait()})")
        return line

    def _expect(self, p: subprocess.Popen[str], word: str) -> None:
        got = self._read(p).strip()
        if got != word:
            raise RuntimeError(f"client process {p.pid} said {got!r}, not {word!r}")

    def close(self) -> None:
        for p in self.procs:
            assert p.stdin is not None
            p.stdin.close()
        for p in self.procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def __enter__(self) -> Clients:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- the server --------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_healthy(base: str, proc: subprocess.Popen[bytes], log: IO[bytes], timeout: float) -> None:
    host, port = base.removeprefix("http://").rsplit(":", 1)
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(OSError, http.client.HTTPException):
            conn = http.client.HTTPConnection(host, int(port), timeout=2)
            try:
                conn.request("GET", "/health")
                if conn.getresponse().status == 200:
                    return
            finally:
                conn.close()
        if proc.poll() is not None or time.monotonic() > deadline:
            log.seek(0)
            text = log.read().decode(errors="replace")[-3000:]
            raise RuntimeError(f"the uvicorn server on {base} did not come up:\n{text}")
        time.sleep(0.05)


@contextmanager
def server(url: str) -> Iterator[str]:
    """uvicorn serving :func:`app_factory` on ``url``'s store, one worker process of its own
    (so that it shares no GIL with the clients); its log goes to a file shown if it fails."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(Path.cwd()), *sys.path]))
    env[STORE_ENV] = url
    cmd = [
        sys.executable, "-m", "uvicorn", "--factory", "bench.http:app_factory",
        "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
        "--loop", "uvloop", "--http", "httptools",
        "--log-level", "warning", "--no-access-log", "--timeout-keep-alive", "600",
    ]  # fmt: skip
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_healthy(base, proc, log, 60)
            yield base
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


# -- main --------------------------------------------------------------------------------------


def pg_version(url: str) -> str:
    import psycopg

    with psycopg.connect(url) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    return str(row[0]).split()[0] if row else "?"


def new_orders(engine: Engine, k: int) -> list[str]:
    """``k`` fresh orders, their carts open."""
    return [engine.start(WORKFLOW, PizzaOrder(), id=uuid.uuid4().hex).id for _ in range(k)]


@dataclass
class Row:
    label: str
    http: Result
    engine: Result


def ms(x: float) -> str:
    return f"{x * 1e3:7.2f}"


def print_rows(rows: list[Row]) -> None:
    print(
        f"   {'':<22}| {'HTTP (http.client)':^29} | {'engine only':^29} | HTTP - engine\n"
        f"   {'clients':<22}| events/s  p50 ms  p99 ms err | events/s  p50 ms  p99 ms err "
        f"| p50 ms  ratio"
    )
    for r in rows:
        h, e = r.http, r.engine
        print(
            f"   {r.label:<22}| {h.eps:8.0f} {ms(h.p50)} {ms(h.p99)} {h.errors:3} "
            f"| {e.eps:8.0f} {ms(e.p50)} {ms(e.p99)} {e.errors:3} "
            f"| {(h.p50 - e.p50) * 1e3:+6.2f} {h.p50 / e.p50:5.2f}x"
        )


def bench_store(
    name: str, url: str, pool: Clients, concurrency: tuple[int, ...], q: bool
) -> tuple[float, float]:
    """Print one store's table; return HTTP and engine p50 at 1 client."""
    total = 100 if q else 2000  # events per run, spread over the clients
    rounds = 1 if q else 3
    warm = 10 if q else 50
    engine = Engine(SQLStore(url, pool_size=2), {WORKFLOW: PizzaOrder})
    rows: list[Row] = []
    with server(url) as base:
        most = max(concurrency)  # warm both paths up once, at full concurrency, unrecorded
        pool.run("http", base, new_orders(engine, most), warm, warm)
        pool.run("engine", url, new_orders(engine, most), warm, warm)
        health = pool.run("health", base, ["-"], total, warm)
        cases = [(f"{c:>2}", c, False) for c in concurrency]
        if not q:
            cases.append((" 4, one shared order", 4, True))
        httpx_row = []
        for label, c, shared in cases:
            n = max(total // c, 25 if q else 100)
            modes = ("http", "engine", "httpx") if c == 1 else ("http", "engine")
            runs: dict[str, list[Result]] = {mode: [] for mode in modes}
            for _ in range(rounds):  # alternate, so that drift hits every mode alike
                for mode in modes:
                    ids = new_orders(engine, 1) * c if shared else new_orders(engine, c)
                    target = url if mode == "engine" else base
                    runs[mode].append(pool.run(mode, target, ids, n, warm))
            alone = median_result(runs["engine"])
            rows.append(Row(label, median_result(runs["http"]), alone))
            if "httpx" in runs:
                httpx_row = [Row(" 1, httpx client", median_result(runs["httpx"]), alone)]
        rows[len(concurrency) : len(concurrency)] = httpx_row
    engine.store.close()
    print(f"\n{name}")
    print_rows(rows)
    print(
        f"   GET /health round trip (the HTTP stack, no engine call): p50 {ms(health.p50).strip()}"
        f" ms, p99 {ms(health.p99).strip()} ms"
    )
    print("   (httpx row: against the engine-only run at 1 client; shared row: both sides 4")
    print("    clients on one order; err: requests not answered 200 / sends that raised)")
    return rows[0].http.p50, rows[0].engine.p50


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument(
        "--quick", action="store_true", help="few events, one round, 1 and 4 clients (a smoke run)"
    )
    ap.add_argument("--client", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.client:
        client_process()
        return 0
    from gorch.testing.postgres import TempPostgres

    concurrency = (1, 4) if args.quick else (1, 4, 16)
    started = time.monotonic()
    print("gorch HTTP benchmarks: AddToCart over loopback vs engine.send (medians)")
    with TempPostgres() as pg, Clients(max(concurrency)) as pool:
        print(
            f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}, SQLite "
            f"{sqlite3.sqlite_version}, PostgreSQL {pg_version(pg.url)}, uvicorn "
            f"{version('uvicorn')} (uvloop, httptools, 1 worker), FastAPI {version('fastapi')}"
        )
        verdicts = []
        with sqlite_url("FULL") as sqlite:
            for store, title, url in (
                ("SQLite", "1. SQLite file, WAL, synchronous=FULL", sqlite),
                ("PostgreSQL", "2. PostgreSQL (loopback, fsync on)", pg.url),
            ):
                SQLStore(url).close()  # the schema, before any client or server opens it
                p50s = bench_store(title, url, pool, concurrency, args.quick)
                verdicts.append((store, *p50s))
    print(
        "\nAt 4 and 16 clients the server is one process (one GIL) doing the HTTP work and every"
        "\nengine.send, where each engine-only client is a process of its own: the gap there is"
        "\nthe price of one server process on 2 cores, not per-request overhead alone."
    )
    print(f"(took {time.monotonic() - started:.0f} s)")
    held = [
        f"{name} {'held' if h - e <= 1e-3 else 'MISSED'} ({(h - e) * 1e3:+.2f} ms: "
        f"{ms(h).strip()} vs {ms(e).strip()} ms)"
        for name, h, e in verdicts
    ]
    print("target, HTTP adds <= 1 ms p50 at 1 client: " + "; ".join(held))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
