"""A throwaway PostgreSQL server for tests and benchmarks.

Starts the server binaries found on the machine (``/usr/lib/postgresql/*/bin`` or ``PATH``) in
a temporary directory on a free loopback port, and removes everything on exit. PostgreSQL
refuses to run as root, so under root the server runs as the ``postgres`` user.

Example::

    with TempPostgres() as pg:
        store = SQLStore(pg.url)
        pg.restart()            # an outage: every connection is cut, the data stays

Fault tests take the server down and up again on the same port (``down``, ``up``,
``restart``), and cut connections with :meth:`TempPostgres.terminate_backends`.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Literal

__all__ = ["PostgresUnavailable", "TempPostgres", "find_bin"]


class PostgresUnavailable(RuntimeError):
    """The PostgreSQL server binaries are missing or the server would not start."""


def find_bin() -> Path:
    """The directory holding ``initdb`` and ``pg_ctl``."""
    env = os.environ.get("GORCH_PG_BIN")
    candidates = [env] if env else []
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    which = shutil.which("pg_ctl")
    if which:
        candidates.append(str(Path(which).parent))
    for c in candidates:
        if c and (Path(c) / "initdb").exists() and (Path(c) / "pg_ctl").exists():
            return Path(c)
    raise PostgresUnavailable(
        "PostgreSQL server binaries (initdb, pg_ctl) were not found; install them with "
        "`apt-get install postgresql` or point GORCH_PG_BIN at their directory"
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class TempPostgres:
    """A PostgreSQL server of its own, for the life of a ``with`` block.

    Attributes:
        url: ``postgresql://postgres@127.0.0.1:PORT/postgres`` once started.
    """

    def __init__(self, *, settings: dict[str, str] | None = None) -> None:
        self.settings = {"max_connections": "200", "shared_buffers": "128MB"}
        self.settings.update(settings or {})
        self.url = ""
        self.port = 0
        self._opts = ""
        self._dir: Path | None = None
        self._bin: Path | None = None
        self._user: str | None = None

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        cmd = list(args)
        if self._user:
            cmd = ["runuser", "-u", self._user, "--", *cmd]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=120)

    def start(self) -> str:
        self._bin = find_bin()
        self._dir = Path(tempfile.mkdtemp(prefix="gorch-pg-"))
        data = self._dir / "data"
        if os.geteuid() == 0:
            try:
                info = pwd.getpwnam("postgres")
            except KeyError as exc:
                raise PostgresUnavailable(
                    "running as root, and there is no 'postgres' user to run the server as"
                ) from exc
            self._user = "postgres"
            os.chown(self._dir, info.pw_uid, info.pw_gid)
        r = self._run(
            str(self._bin / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust",
            "--no-sync", "-E", "UTF8",
        )  # fmt: skip
        if r.returncode:
            raise PostgresUnavailable(f"initdb failed: {r.stderr.strip() or r.stdout.strip()}")
        self.port = _free_port()
        self._opts = " ".join(
            [f"-p {self.port}", "-c listen_addresses=127.0.0.1", f"-k {self._dir}"]
            + [f"-c {k}={v}" for k, v in self.settings.items()]
        )
        self.up()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        return self.url

    def up(self) -> None:
        """Start the server (again, on the same port and data) and wait until it accepts
        TCP connections."""
        if self._dir is None or self._bin is None:
            raise PostgresUnavailable("the server was never set up: call start() first")
        r = self._run(
            str(self._bin / "pg_ctl"), "-D", str(self._dir / "data"), "-l",
            str(self._dir / "log"), "-o", self._opts, "-w", "-t", "60", "start",
        )  # fmt: skip
        if r.returncode:
            log = (self._dir / "log").read_text() if (self._dir / "log").exists() else ""
            raise PostgresUnavailable(f"pg_ctl start failed: {r.stderr.strip()}\n{log[-2000:]}")
        deadline = time.monotonic() + 30
        while True:  # accept TCP connections before handing out the URL
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), 1),
            ):
                break
            if time.monotonic() > deadline:
                raise PostgresUnavailable("PostgreSQL did not accept connections within 30 s")
            time.sleep(0.05)

    def down(self, mode: Literal["smart", "fast", "immediate"] = "immediate") -> None:
        """Stop the server, keeping its data: ``immediate`` is a crash (every backend is
        killed at once, and the next start recovers from the WAL); ``fast`` disconnects every
        client cleanly first."""
        if self._dir is None or self._bin is None:
            return
        r = self._run(
            str(self._bin / "pg_ctl"), "-D", str(self._dir / "data"), "-m", mode, "-w",
            "-t", "60", "stop",
        )  # fmt: skip
        if r.returncode:
            raise PostgresUnavailable(f"pg_ctl stop failed: {r.stderr.strip()}")

    def restart(self, mode: Literal["smart", "fast", "immediate"] = "immediate") -> None:
        """:meth:`down`, then :meth:`up`: every connection made before is cut."""
        self.down(mode)
        self.up()

    def terminate_backends(self) -> int:
        """Cut every other client's connection to the database (``pg_terminate_backend``),
        and wait (up to 10 s) until each of their server processes has exited; how many were
        cut."""
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            rows = conn.execute(
                "SELECT pg_terminate_backend(pid, 10000) FROM pg_stat_activity "
                "WHERE pid <> pg_backend_pid() AND datname = current_database()"
            ).fetchall()
        return sum(1 for (ok,) in rows if ok)

    def stop(self) -> None:
        """Stop the server and remove its data (for good)."""
        if self._dir is None or self._bin is None:
            return
        data = self._dir / "data"
        if data.exists():
            self._run(str(self._bin / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop")
        shutil.rmtree(self._dir, ignore_errors=True)
        self._dir = None

    def __enter__(self) -> TempPostgres:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
