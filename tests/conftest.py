"""Shared fixtures: a real PostgreSQL server for the session, and one store of each kind.

The PostgreSQL server is started by the tests themselves (docs/testing.md, "A real PostgreSQL
server in tests"). If it cannot start, every test that needs it errors: the run fails, it does
not skip.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gorch import Engine, Worker
from gorch.store import MemoryStore, Store
from gorch.store.sql._tables import emptying_postgresql

# The gorch fixtures, also where gorch's metadata has no pytest11 entry point yet (an older
# editable install, a checkout on PYTHONPATH); with the entry point this registers nothing twice.
pytest_plugins = ["gorch.testing"]

STORE_KINDS = ["memory", "sqlite", "postgres"]


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """The URL of a PostgreSQL server started for this test session."""
    from gorch.testing.postgres import TempPostgres

    with TempPostgres() as pg:
        yield pg.url


def _truncate(url: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(emptying_postgresql())


@pytest.fixture
def pg_store_url(pg_url: str) -> str:
    """The session's PostgreSQL URL, with gorch's tables emptied for this test."""
    _truncate(pg_url)
    return pg_url


def make_store(kind: str, tmp_path: Path, pg_url: str | None = None) -> Store:
    if kind == "memory":
        return MemoryStore()
    from gorch.store import SQLStore

    if kind == "sqlite":
        return SQLStore(f"sqlite:///{tmp_path / 'gorch.db'}")
    assert pg_url is not None
    return SQLStore(pg_url)


@pytest.fixture(params=STORE_KINDS)
def store_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def store(store_kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Store]:
    """One store of each kind (the conformance suite runs once per kind)."""
    url = request.getfixturevalue("pg_store_url") if store_kind == "postgres" else None
    s = make_store(store_kind, tmp_path, url)
    yield s
    s.close()


@pytest.fixture
def sql_url(store_kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """A database URL for the SQL kinds (skipping the memory kind is the caller's choice)."""
    if store_kind == "postgres":
        return str(request.getfixturevalue("pg_store_url"))
    return f"sqlite:///{tmp_path / 'gorch.db'}"


@pytest.fixture
def engine_globals() -> Iterator[None]:
    """Clear, after the test, the module globals the engine tests' workflows keep
    (tests/_engine_workflows.py); modules that use them mark every test with it."""
    yield
    from _engine_workflows import clean_globals

    clean_globals()


@pytest.fixture(params=["Engine", "AsyncEngine"])
def engine_face(request: pytest.FixtureRequest) -> str:
    """Which engine the engine tests drive: ``Engine``, or ``AsyncEngine`` through its
    coroutines (tests/_async_face.py)."""
    return str(request.param)


@pytest.fixture
def engine(store: Store, gorch_time: Any, engine_face: str) -> Iterator[Engine]:
    """An engine on each store with the engine tests' workflows (tests/_engine_workflows.py),
    time frozen at START (move it with ``gorch_time``), once as ``Engine`` and once as
    ``AsyncEngine``. A module may define its own."""
    from _engine_workflows import WORKFLOWS

    if engine_face == "Engine":
        yield Engine(store, WORKFLOWS)
        return
    from _async_face import AsyncFace

    from gorch import AsyncEngine

    face = AsyncFace(AsyncEngine(store, WORKFLOWS))
    yield face  # type: ignore[misc]
    face.close()


@pytest.fixture
def worker(engine: Engine) -> Worker:
    return Worker(engine)
