"""Erasure in the SQL store: overwriting an instance's history and idempotency keys with
scrubbed copies, in the transaction of its commit (:meth:`SQLStore.erase
<gorch.store.sql.SQLStore.erase>`), and what the database keeps of the old contents.

What a database keeps after an ``UPDATE`` differs:

- **SQLite** overwrites a row where it stands, but leaves the old bytes in the page's free
  space, in pages put on the freelist, and in the write-ahead log. Every connection runs with
  ``PRAGMA secure_delete=ON`` (the cost is a memset of the freed space of pages being written
  anyway), so freed space is zeroed; after an erasure the log is checkpointed into the file and
  truncated (``PRAGMA wal_checkpoint(TRUNCATE)``), so the old page images in it are gone.
- **PostgreSQL** writes a new row version and leaves the old one as a dead tuple in the data
  file until ``VACUUM`` (``pg_dump`` and every query read only live rows). After an erasure the
  store runs a plain ``VACUUM`` of its tables (outside a transaction, as it must be; it takes
  no lock that blocks reads or writes), which prunes the dead tuples; the old bytes may stay in
  free space of the pages, in the WAL segments and in backups until they are overwritten or
  expire: ``VACUUM FULL`` rewrites the tables (under an exclusive lock), the WAL and the
  backups are the operator's.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from gorch.store.base import HistoryRecord, KeyRecord

if TYPE_CHECKING:
    from gorch.store.sql._dialect import Dialect

log = logging.getLogger("gorch.store")

__all__ = ["keys_of", "rewrite"]

_KEY_COLUMNS = "instance_id, key, fingerprint, output{text}, at"


def keys_of(dialect: Dialect) -> str:
    """The statement that reads an instance's idempotency keys, by key."""
    cols = _KEY_COLUMNS.format(text=dialect.json_as_text)
    return dialect.spell(f"SELECT {cols} FROM gorch_keys WHERE instance_id = ? ORDER BY key")


def rewrite(
    cur: Any,
    dialect: Dialect,
    instance_id: str,
    history: Sequence[HistoryRecord],
    keys: Sequence[KeyRecord],
) -> None:
    """Overwrite the given history rows and keys of ``instance_id``, in the transaction of
    ``cur``."""
    j = dialect.json_param
    entry = dialect.spell(
        f"UPDATE gorch_history SET input = ?{j}, output = ?{j}, error = ?, reason = ? "
        "WHERE instance_id = ? AND version = ? AND idx = ?"
    )
    for h in history:
        cur.execute(entry, (h.input, h.output, h.error, h.reason, instance_id, h.version, h.idx))
    key = dialect.spell(f"UPDATE gorch_keys SET output = ?{j} WHERE instance_id = ? AND key = ?")
    for k in keys:
        cur.execute(key, (k.output, instance_id, k.key))
