"""Stores: where instances, timers, history and idempotency keys live (layer 3).

``MemoryStore`` is for tests; ``SQLStore`` keeps everything in SQLite (the embedded default) or
PostgreSQL. ``SQLStore`` is imported on first use, so ``import gorch`` stays free of SQLAlchemy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gorch.store.base import (
    ChangeRecord as ChangeRecord,
)
from gorch.store.base import (
    HistoryRecord as HistoryRecord,
)
from gorch.store.base import (
    InstanceRecord as InstanceRecord,
)
from gorch.store.base import (
    KeyRecord as KeyRecord,
)
from gorch.store.base import (
    MessageRecord as MessageRecord,
)
from gorch.store.base import (
    ScheduleRecord as ScheduleRecord,
)
from gorch.store.base import (
    StatusCount as StatusCount,
)
from gorch.store.base import (
    Store as Store,
)
from gorch.store.base import (
    TimerRecord as TimerRecord,
)
from gorch.store.base import (
    WatchRecord as WatchRecord,
)
from gorch.store.base import (
    Write as Write,
)
from gorch.store.memory import MemoryStore as MemoryStore

if TYPE_CHECKING:
    from gorch.store.sql import SQLStore as SQLStore

__all__ = [
    "ChangeRecord",
    "HistoryRecord",
    "InstanceRecord",
    "KeyRecord",
    "MemoryStore",
    "MessageRecord",
    "SQLStore",
    "ScheduleRecord",
    "StatusCount",
    "Store",
    "TimerRecord",
    "WatchRecord",
    "Write",
]


def __getattr__(name: str) -> Any:
    if name == "SQLStore":
        from gorch.store.sql import SQLStore

        return SQLStore
    raise AttributeError(f"module 'gorch.store' has no attribute {name!r}")
