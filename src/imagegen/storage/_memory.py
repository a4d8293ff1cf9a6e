"""Storage in a dict: for tests, demos and short-lived processes."""

from __future__ import annotations

from collections.abc import Mapping

from ._base import StorageStats, StoredObject, check_key

__all__ = ["MemoryStorage"]


class MemoryStorage:
    """Keeps every image in this process's memory; ``url_for`` gives ``memory://key``."""

    def __init__(self) -> None:
        self.objects: dict[str, tuple[bytes, str, dict[str, str]]] = {}

    async def put(
        self, key: str, data: bytes, *, content_type: str, metadata: Mapping[str, str]
    ) -> StoredObject:
        self.objects[check_key(key)] = (bytes(data), content_type, dict(metadata))
        return StoredObject(key=key, url=self.url_for(key), size=len(data))

    async def get(self, key: str) -> bytes | None:
        entry = self.objects.get(check_key(key))
        return None if entry is None else entry[0]

    async def delete(self, key: str) -> None:
        self.objects.pop(check_key(key), None)

    def url_for(self, key: str) -> str:
        return f"memory://{check_key(key)}"

    async def stats(self) -> StorageStats:
        return StorageStats(
            objects=len(self.objects), bytes=sum(len(v[0]) for v in self.objects.values())
        )

    def __repr__(self) -> str:
        return f"MemoryStorage(objects={len(self.objects)})"
