"""The web console at ``/ui/``: static files (plain ES modules, no build step) over the JSON
API, served with a Content-Security-Policy that lets them load nothing from elsewhere. Public:
the files hold no data; every call they make to the API sends the token."""

from __future__ import annotations

import pathlib
from typing import Any

from fastapi import FastAPI, Request
from starlette.responses import RedirectResponse, Response
from starlette.staticfiles import StaticFiles

__all__ = ["HEADERS", "mount"]

FILES = pathlib.Path(__file__).parent.parent / "ui"
# The console loads nothing from elsewhere; the SVG diagrams carry their own <style>.
HEADERS = {
    "Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


class _Static(StaticFiles):
    def file_response(self, *args: Any, **kwargs: Any) -> Response:
        res = super().file_response(*args, **kwargs)
        res.headers.update(HEADERS)
        return res


async def to_ui(request: Request) -> Response:
    return RedirectResponse("ui/")  # relative: right behind a proxy or a path prefix


def mount(app: FastAPI) -> None:
    """``GET /ui`` (to ``/ui/``) and the console's files under ``/ui/``."""
    app.add_api_route("/ui", to_ui, methods=["GET"], include_in_schema=False)
    app.mount("/ui/", _Static(directory=FILES, html=True), name="ui")
