"""gorch over HTTP: ``create_app(engine)`` is an ASGI app with an OpenAPI document.

Resource-oriented JSON routes start instances, read and list them, send events (one typed
operation per event of every registered workflow), show history and waits, and let operators
goto, pause, unpause, cancel and retry. Errors are RFC 9457 problem details; bearer tokens map
to roles (:class:`Auth`). Needs the ``http`` extra: ``pip install "gorch[http]"``.

Example::

    from gorch import Engine
    from gorch.http import Auth, create_app
    from gorch.store import SQLStore

    engine = Engine(SQLStore("sqlite:///shop.db"), {"pizza": PizzaOrder})
    app = create_app(engine, auth=Auth.from_file("tokens.toml"), worker=True)
    # uvicorn shop:app   or   gorch serve shop:app
"""

from gorch.http._app import create_app
from gorch.http._auth import ADMIN, Auth, AuthError, Caller
from gorch.http._problems import PROBLEM, Problem
from gorch.limits import MAX_BODY

__all__ = ["ADMIN", "MAX_BODY", "PROBLEM", "Auth", "AuthError", "Caller", "Problem", "create_app"]
