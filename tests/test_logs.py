"""JSON log records carry the instance they are about."""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass

import orjson

from gorch import Engine, S, Step
from gorch.logs import JsonFormatter
from gorch.store import MemoryStore


@dataclass
class Boom:
    def definition(self):
        return S(Step("explode", self.explode))

    def explode(self):
        raise RuntimeError("kaboom")


def test_engine_logs_are_json_with_the_instance() -> None:
    buf = io.StringIO()
    handler = logging.StreamHandler(buf)
    handler.setFormatter(JsonFormatter())
    log = logging.getLogger("gorch")
    log.addHandler(handler)
    old = log.level
    log.setLevel(logging.INFO)
    try:
        Engine(MemoryStore(), {"boom": Boom}).start("boom", Boom(), id="b1")
    finally:
        log.removeHandler(handler)
        log.setLevel(old)
    records = [orjson.loads(line) for line in buf.getvalue().splitlines()]
    failed = [r for r in records if r["level"] == "warning"]
    assert failed and failed[0]["instance"] == "b1" and failed[0]["step"] == "explode"
    assert "kaboom" in failed[0]["message"] and failed[0]["logger"] == "gorch.engine"
    assert all(r["at"].endswith("+00:00") for r in records)
