"""A real HTTP server for tests: an ASGI app served by uvicorn on a loopback port, in a thread.

Example::

    from gorch.http import create_app
    from gorch.testing.http import LiveServer

    with LiveServer(create_app(engine)) as url, httpx.Client(base_url=url) as client:
        assert client.get("/health").json() == {"status": "ok"}
"""

from __future__ import annotations

import socket
import threading
import time
from types import TracebackType
from typing import Any

import uvicorn

__all__ = ["LiveServer"]


class LiveServer:
    """Serve ``app`` with uvicorn on ``127.0.0.1`` (a free port) until the block ends.

    The app's lifespan runs (so ``create_app(..., worker=True)`` starts its worker). Entering
    gives the base URL, e.g. ``http://127.0.0.1:43121``.
    """

    def __init__(self, app: Any, *, startup_timeout: float = 20.0, **config: Any) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port: int = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config.setdefault("log_level", "warning")
        config.setdefault("lifespan", "on")
        self.server = uvicorn.Server(uvicorn.Config(app, **config))
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True,
            name=f"uvicorn-{self.port}",
        )  # fmt: skip
        self.startup_timeout = startup_timeout

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + self.startup_timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                self.close()
                raise RuntimeError(f"uvicorn did not start on {self.url}")
            time.sleep(0.01)
        return self.url

    def close(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
        self.sock.close()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
