"""The database transaction of a ``Step(transaction=True)``: the step's own writes, through a
SQLModel session, and the step's checkpoint commit together or not at all.

A :class:`StepTransaction` holds one connection of SQLAlchemy's engine of the store (in
autocommit, as all of the store's connections: the store issues ``BEGIN`` and ``COMMIT``
itself), opens a transaction on it (``BEGIN`` on PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite),
and binds a ``sqlmodel.Session`` to it. The step uses the session; :meth:`StepTransaction.commit`
then flushes it, writes the checkpoint with the store's own statements on the same connection
and sends one ``COMMIT``. A crash anywhere before the ``COMMIT`` leaves neither (the step runs
again on a clean database); after it, both are there and the step never runs again.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sqlmodel import Session

from gorch.errors import AlreadyExistsError, ConflictError, StoreError, StoreUnavailableError
from gorch.store.base import Write

if TYPE_CHECKING:
    from gorch.store.sql._store import SQLStore


class StepTransaction:
    """One transactional step's database transaction (see the module docstring).

    Attributes:
        session: the SQLModel session the step works through (``gorch.context().session``).
    """

    def __init__(self, store: SQLStore, write: Callable[[Write, int, Any], bool]) -> None:
        if store.dialect.lock is not None:
            raise StoreError(
                f"{store!r}: an in-memory SQLite database has one connection, shared by the "
                f"whole store, so a step cannot hold a transaction of its own on it; use a "
                f"SQLite file or PostgreSQL for transactional steps"
            )
        self.store, self.write = store, write
        try:
            self.conn = store.sa_engine.connect()
            self.cur = self.conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
            self.cur.execute(store.dialect.begin)
        except Exception as exc:
            self.close()
            raise StoreUnavailableError(
                f"{store!r}: cannot begin the step's transaction: {exc}"
            ) from exc
        self.session = Session(bind=self.conn, expire_on_commit=False)
        self.open = True
        self.ready = False  # the step returned: the next commit of its operation is this one

    def commit(self, write: Write) -> int:
        """Flush the session, write ``write`` (the step's checkpoint) and commit both; the
        instance's new version. A failure rolls both back: the step's work is undone with its
        checkpoint (its outcome unknown if the ``COMMIT`` itself broke)."""
        expected = write.expected_version
        version = 1 if expected is None else expected + 1
        sent = False
        try:
            self.session.flush()
            woke = self.write(write, version, self.cur)
            sent = True
            self.finish()
        except (ConflictError, AlreadyExistsError):
            self.rollback()
            raise
        except Exception as exc:
            if not sent:
                self.rollback()
                raise
            raise StoreUnavailableError(
                f"{self.store!r}: the COMMIT of a transactional step's checkpoint broke "
                f"({type(exc).__name__}: {exc})",
                outcome_unknown=True,
            ) from exc
        finally:
            self.close()
        self.store.after_commit(write, bool(woke))
        return version

    def finish(self) -> None:
        """Send the ``COMMIT`` (a method of its own, for the crash tests to stop at)."""
        self.open = False
        self.cur.execute("COMMIT")

    def rollback(self) -> None:
        """Undo the step's work (best effort: a broken connection has undone it already)."""
        if getattr(self, "open", False):
            self.open = False
            with contextlib.suppress(Exception):
                self.cur.execute("ROLLBACK")

    def close(self) -> None:
        """Roll back what is not committed and give the connection back."""
        self.rollback()
        session: Any = getattr(self, "session", None)
        if session is not None:
            with contextlib.suppress(Exception):
                session.close()
        conn: Any = getattr(self, "conn", None)
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()
