"""State backends: where records, statistics and breaker state live."""

from ._base import StateBackend, SupportsIncrMany, SupportsWriteBatch
from ._memory import MemoryState
from ._redis import RedisState
from ._sqlite import SQLiteState

__all__ = [
    "MemoryState",
    "RedisState",
    "SQLiteState",
    "StateBackend",
    "SupportsIncrMany",
    "SupportsWriteBatch",
]
