"""Structured logs: one JSON object per record, with the instance and step as fields.

The engine and worker log to ``gorch.engine`` and put ``gorch_instance`` (and ``gorch_step``,
``gorch_work``) on each record about an instance. :class:`JsonFormatter` writes those as JSON
fields, so a log pipeline can index and filter by instance::

    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    logging.getLogger("gorch").addHandler(handler)
"""

from __future__ import annotations

import logging

import orjson

from gorch import clock

__all__ = ["JsonFormatter"]

_PREFIX = "gorch_"


class JsonFormatter(logging.Formatter):
    """Formats a record as ``{"at", "level", "logger", "message", "instance", ...}``."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, object] = {
            "at": clock.format_time(clock.now()),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key.startswith(_PREFIX):
                out[key[len(_PREFIX) :]] = value
        if record.exc_info:
            out["error"] = self.formatException(record.exc_info)
        return orjson.dumps(out, default=str).decode()
