"""The storage protocol and the small values it speaks."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol, runtime_checkable

import attrs

from .._errors import StorageError

__all__ = ["Storage", "StorageStats", "StoredObject", "check_key"]


@attrs.frozen(kw_only=True)
class StoredObject:
    """Where ``put`` left an image: its final key, public URL (if any) and size."""

    key: str
    url: str | None
    size: int


@attrs.frozen(kw_only=True)
class StorageStats:
    """How much a storage holds."""

    objects: int
    bytes: int


@runtime_checkable
class Storage(Protocol):
    """Where images go. ``url_for`` is sync: it only computes a URL."""

    async def put(
        self, key: str, data: bytes, *, content_type: str, metadata: Mapping[str, str]
    ) -> StoredObject:
        """Store ``data`` under ``key`` atomically: the key holds all of it or nothing."""
        ...

    async def get(self, key: str) -> bytes | None:
        """The bytes under ``key``, or None."""
        ...

    async def delete(self, key: str) -> None:
        """Remove ``key``; an absent key is fine."""
        ...

    def url_for(self, key: str) -> str | None:
        """The URL a browser can fetch ``key`` from, or None when there is none."""
        ...

    async def stats(self) -> StorageStats:
        """Count the objects and bytes held."""
        ...


def check_key(key: str) -> str:
    """``key`` when it is safe as a relative path; for storage you write yourself.

    Raises:
        StorageError: The key is empty, has a backslash or an empty part, or a part
            starting with ``.`` (``..`` could escape a directory or a prefix; dot-files
            are where :class:`~imagegen.LocalStorage` keeps temporary files).
    """
    parts = key.split("/")
    # Dot-prefixed names are refused too: they are where LocalStorage keeps temporary files.
    if not key or "\\" in key or any(not p or p.startswith(".") for p in parts):
        raise StorageError(
            f"storage key {key!r} must be a relative path of names that are not empty "
            "and do not start with '.'"
        )
    return key
