"""State in this process's memory: fast, private, gone on exit."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

import cachetools

__all__ = ["MemoryState"]

_Entry = tuple[bytes, float]  # value, expiry on the timer (inf: never)


class MemoryState:
    """A :class:`~imagegen.state.StateBackend` in a cachetools ``TLRUCache``.

    Every operation is synchronous under the hood, so each is atomic with respect
    to other tasks on the event loop. At most ``maxsize`` keys are kept; the least
    recently used go first when it is full.

    Args:
        maxsize: How many keys to keep at most.
        timer: The clock expiry is measured on (seconds, monotonic).
    """

    def __init__(
        self, *, maxsize: int = 100_000, timer: Callable[[], float] = time.monotonic
    ) -> None:
        self._timer = timer
        self._data: cachetools.TLRUCache[str, _Entry] = cachetools.TLRUCache(
            maxsize=maxsize, ttu=lambda _key, entry, _now: entry[1], timer=timer
        )

    def _expiry(self, ttl: float | None) -> float:
        return float("inf") if ttl is None else self._timer() + ttl

    def _get(self, key: str) -> bytes | None:
        entry = self._data.get(key)
        return None if entry is None else entry[0]

    async def get(self, key: str) -> bytes | None:
        return self._get(key)

    async def set(self, key: str, value: bytes, *, ttl: float | None = None) -> None:
        self._data[key] = (bytes(value), self._expiry(ttl))

    async def delete(self, key: str) -> None:
        self._data.pop(key, None)

    async def incr(self, key: str, amount: int = 1, *, ttl: float | None = None) -> int:
        return self._incr(key, amount, ttl)

    async def incr_many(self, amounts: Mapping[str, int], *, ttl: float | None = None) -> None:
        """``incr`` of each key by its amount, all at once (no other task runs between)."""
        for key, amount in amounts.items():
            self._incr(key, amount, ttl)

    def _incr(self, key: str, amount: int, ttl: float | None) -> int:
        entry = self._data.get(key)
        if entry is None:
            value, expiry = amount, self._expiry(ttl)
        else:
            try:
                value, expiry = int(entry[0]) + amount, entry[1]
            except ValueError:
                msg = f"the value at {key!r} is not an integer"
                raise ValueError(msg) from None
        self._data[key] = (str(value).encode(), expiry)
        return value

    async def scan(self, prefix: str) -> list[str]:
        self._data.expire()
        return [key for key in list(self._data.keys()) if key.startswith(prefix)]

    async def set_if_absent(self, key: str, value: bytes, *, ttl: float | None = None) -> bool:
        if self._get(key) is not None:
            return False
        self._data[key] = (bytes(value), self._expiry(ttl))
        return True

    async def aclose(self) -> None:
        return None

    def __repr__(self) -> str:
        return f"MemoryState(keys={len(self._data)})"
