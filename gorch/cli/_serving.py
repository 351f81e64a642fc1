"""Serving: ``gorch serve`` (the HTTP API under uvicorn) and ``gorch worker`` (timers, resumes,
retries), and the logging ``serve`` sets up.

uvicorn, FastAPI and :mod:`logging.config` are imported only when ``serve`` runs, so that every
other command (and ``gorch --help``) starts without them. :func:`log_config` gives every log
line the time and level, uvicorn's and the requests' as well as gorch's own.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any

import click

from gorch.cli._group import Context, cli, json_option, pass_ctx
from gorch.cli._output import Fail, Usage, emit_json, explain
from gorch.engine import Worker
from gorch.errors import GorchError
from gorch.limits import MAX_BODY, MAX_PAGE

if TYPE_CHECKING:  # needs prometheus-client (the metrics extra)
    from gorch.metrics import PrometheusMetrics

__all__ = ["LOG_FORMAT", "log_config", "serve", "worker"]

SHUTDOWN_GRACE = 5
"""Seconds ``gorch serve`` lets open responses finish on shutdown: a console's change stream
and long polls (up to 60 s) would otherwise hold it."""


@cli.command()
@click.argument("app", required=False, metavar="[MODULE:APP]")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--tokens",
    envvar="GORCH_TOKENS",
    type=click.Path(dir_okay=False),
    help="TOML file of bearer tokens and their roles [env GORCH_TOKENS]; without it, auth is off.",
)
@click.option(
    "--worker/--no-worker",
    default=True,
    show_default=True,
    help="Run a worker in the server process (timers, retries).",
)
@click.option("--max-body", default=MAX_BODY, show_default=True, help="Largest request body.")
@click.option(
    "--metrics/--no-metrics",
    default=False,
    show_default=True,
    help="Serve Prometheus metrics at /metrics (needs the metrics extra; docs/operations.md).",
)
@pass_ctx
def serve(
    c: Context,
    app: str | None,
    host: str,
    port: int,
    tokens: str | None,
    worker: bool,
    max_body: int,
    metrics: bool,
) -> None:
    """Serve the HTTP API with uvicorn.

    Without MODULE:APP, the API of --store and --workflows (docs at /docs). With it, that ASGI
    app (e.g. one made with gorch.http.create_app).
    """
    import logging.config

    try:
        import uvicorn

        from gorch.http import Auth, AuthError, create_app
    except ImportError as exc:
        raise Fail(f'serving needs the http extra: pip install "gorch[http]" ({exc})') from None
    if app is not None:
        if ":" not in app:
            raise Usage(f"{app!r}: write the app as module:attribute, e.g. myshop.api:app")
        if os.getcwd() not in sys.path:
            sys.path.insert(0, os.getcwd())
        uvicorn.run(app, host=host, port=port, log_config=log_config(),
                    timeout_graceful_shutdown=SHUTDOWN_GRACE)  # fmt: skip
        return
    try:
        auth = Auth.from_file(tokens) if tokens else None
    except AuthError as exc:
        raise Fail(str(exc)) from None
    # Before create_app, whose warnings (auth off) must carry the time and level as well.
    logging.config.dictConfig(log_config())
    counted = _metrics(c, "--metrics") if metrics else None
    asgi = create_app(c.engine, auth=auth, worker=worker, max_body=max_body, metrics=counted)
    uvicorn.run(asgi, host=host, port=port, log_config=log_config(),
                timeout_graceful_shutdown=SHUTDOWN_GRACE)  # fmt: skip


LOG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


def log_config() -> dict[str, Any]:
    """uvicorn's logging, and gorch's own loggers, with the time and level on every line:
    ``2025-01-31 12:00:00,123 INFO    uvicorn.access: 127.0.0.1:5000 - "GET /health HTTP/1.1"
    200``."""
    access = '%(client_addr)s - "%(request_line)s" %(status_code)s'
    handler = {"class": "logging.StreamHandler", "stream": "ext://sys.stderr"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "default": {"()": "logging.Formatter", "fmt": LOG_FORMAT},
            "access": {
                "()": "uvicorn.logging.AccessFormatter",
                "fmt": LOG_FORMAT.replace("%(message)s", access),
                "use_colors": False,
            },
        },
        "handlers": {
            "default": {**handler, "formatter": "default"},
            "access": {**handler, "formatter": "access"},
        },
        "loggers": {
            "uvicorn": {"handlers": ["default"], "level": "INFO", "propagate": False},
            "uvicorn.error": {"level": "INFO"},
            "uvicorn.access": {"handlers": ["access"], "level": "INFO", "propagate": False},
            "gorch": {"handlers": ["default"], "level": "INFO", "propagate": False},
        },
    }


@cli.command()
@click.option("--batch", default=16, show_default=True, type=click.IntRange(1, MAX_PAGE))
@click.option("--poll", default=1.0, show_default=True, type=click.FloatRange(0.01, 3600))
@click.option("--once", is_flag=True, help="Do what is due now, then exit.")
@click.option(
    "--metrics-port",
    type=click.IntRange(0, 65535),
    help="Serve Prometheus metrics on this port (needs the metrics extra; docs/operations.md).",
)
@click.option(
    "--metrics-host", default="0.0.0.0", show_default=True, help="The address it listens on."
)
@json_option
@pass_ctx
def worker(
    c: Context,
    batch: int,
    poll: float,
    once: bool,
    metrics_port: int | None,
    metrics_host: str,
    as_json: bool,
) -> None:
    """Fire due timers, resume runnable instances and retry failed steps (until Ctrl-C).

    The worker survives database outages: it logs the fault, backs off and goes on."""
    if metrics_port is not None:
        _serve_metrics(c, metrics_host, metrics_port)
    w = Worker(c.engine, batch=batch, poll=poll)
    if once:
        total = 0
        try:
            while done := w.run_once():
                total += done
        except GorchError as exc:  # the store cannot be reached: say so (without --once, the
            explain(exc)  # worker logs it, backs off and goes on)
        if as_json:
            emit_json({"done": total})
        else:
            c.out.print(f"did {total} item{'s' if total != 1 else ''} of work")
        return
    c.out.print(f"worker on {c.store_url}: Ctrl-C to stop (the item in hand is finished)")
    w.run()


def _metrics(c: Context, option: str) -> PrometheusMetrics:
    """Prometheus metrics of the engine's work and its store's gauges, listening already."""
    try:
        from gorch.metrics import PrometheusMetrics
    except ImportError as exc:
        extra = 'pip install "gorch[metrics]"'
        raise Fail(f"{option} needs the metrics extra: {extra} ({exc})") from None
    metrics = PrometheusMetrics(c.engine.store)
    c.engine.listeners.append(metrics)
    return metrics


def _serve_metrics(c: Context, host: str, port: int) -> None:
    """Count the worker's engine's work and serve it, with the store's gauges, on a port."""
    metrics = _metrics(c, "--metrics-port")
    try:
        metrics.serve(port, host)
    except OSError as exc:
        raise Fail(f"cannot serve metrics on {host}:{port}: {exc}") from None
    c.out.print(f"metrics on http://{host}:{port}/metrics")
