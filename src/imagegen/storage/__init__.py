"""Storage backends: where image bytes go."""

from ._base import Storage, StorageStats, StoredObject
from ._local import LocalStorage
from ._memory import MemoryStorage

__all__ = ["LocalStorage", "MemoryStorage", "Storage", "StorageStats", "StoredObject"]
