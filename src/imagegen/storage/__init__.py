"""Storage backends: where image bytes go."""

from ._base import Storage, StorageStats, StoredObject, check_key
from ._local import LocalStorage
from ._memory import MemoryStorage
from ._r2 import R2Storage
from ._r2_client import r2_client

__all__ = [
    "LocalStorage",
    "MemoryStorage",
    "R2Storage",
    "Storage",
    "StorageStats",
    "StoredObject",
    "check_key",
    "r2_client",
]
