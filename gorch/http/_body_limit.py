"""The ASGI middleware that caps request bodies (``create_app(max_body=...)``): 413 before a
handler reads a byte too many."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gorch.http._problems import Problem, problem_response

__all__ = ["BodyLimit"]


class BodyLimit:
    """Refuse request bodies over ``limit`` bytes with 413, by Content-Length up front and by
    counting what arrives for chunked bodies."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length":
                if not value.isdigit() or int(value) > self.limit:
                    await problem_response(self._problem(), scope["path"])(scope, receive, send)
                    return
                break
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            msg = await receive()
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                if seen > self.limit:
                    raise self._problem()
            return msg

        await self.app(scope, counted, send)

    def _problem(self) -> Problem:
        return Problem(
            413,
            "too-large",
            "Request body too large",
            f"the request body must be at most {self.limit} bytes (with a valid Content-Length)",
        )
