"""The state protocol: a small async key/value store with TTL, counters and prefix scan."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

__all__ = ["StateBackend"]


@runtime_checkable
class StateBackend(Protocol):
    """Where records, statistics, breaker state and jobs live.

    Values are bytes; ``ttl`` is seconds (None: no expiry). ``incr`` and
    ``set_if_absent`` are atomic, also across processes for shared backends.
    ``incr``'s ``ttl`` applies when the counter is created, so a window's
    counter expires with its window however often it is bumped.
    """

    async def get(self, key: str) -> bytes | None:
        """The value, or None when absent or expired."""
        ...

    async def set(self, key: str, value: bytes, *, ttl: float | None = None) -> None:
        """Store ``value`` (replacing any), expiring after ``ttl`` seconds."""
        ...

    async def delete(self, key: str) -> None:
        """Remove ``key``; absent keys are fine."""
        ...

    async def incr(self, key: str, amount: int = 1, *, ttl: float | None = None) -> int:
        """Add ``amount`` to the integer at ``key`` (0 when absent) and return the new value."""
        ...

    async def scan(self, prefix: str) -> list[str]:
        """Every live key starting with ``prefix`` (literal, no wildcards)."""
        ...

    async def set_if_absent(self, key: str, value: bytes, *, ttl: float | None = None) -> bool:
        """Store ``value`` only if ``key`` is absent; True when it was stored."""
        ...

    async def aclose(self) -> None:
        """Release connections and files."""
        ...
