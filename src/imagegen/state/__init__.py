"""State backends: where records, statistics and breaker state live."""

from ._base import StateBackend
from ._memory import MemoryState
from ._sqlite import SQLiteState

__all__ = ["MemoryState", "SQLiteState", "StateBackend"]
