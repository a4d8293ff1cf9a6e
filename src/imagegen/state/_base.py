"""The state protocol: a small async key/value store with TTL, counters and prefix scan."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol, runtime_checkable

__all__ = ["StateBackend", "SupportsIncrMany", "SupportsWriteBatch"]


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


@runtime_checkable
class SupportsIncrMany(Protocol):
    """A backend that can bump many counters in one call: an optional capability.

    The generator's statistics use ``incr_many`` when the backend has it (a call's
    three or four counters become one SQLite transaction or one Redis round trip),
    else one ``incr`` per counter. The built-in backends have it.

    One rule keeps wrappers whole: ``incr_many`` is used only when it is defined in
    the same class as the ``incr`` in use, or in a subclass of it. A subclass that
    overrides ``incr`` alone (to instrument or shard it) keeps seeing every
    increment, since the ``incr_many`` it inherits would go around it. A subclass can
    also turn the batch off outright with ``incr_many = None``.
    """

    async def incr_many(self, amounts: Mapping[str, int], *, ttl: float | None = None) -> None:
        """``incr`` of each key by its amount (``ttl`` as for ``incr``), in one call.

        Each increment is atomic as ``incr`` is; a value that is not an integer raises
        ``ValueError`` and is left as it was.
        """
        ...


@runtime_checkable
class SupportsWriteBatch(Protocol):
    """A backend that stores values and bumps counters in one call: an optional capability.

    A generation's final bookkeeping (its record and its provider calls' counters) is
    one ``write_batch`` when the backend has it (one SQLite transaction and thread hop,
    one Redis round trip), else a ``set`` per value and the counters as
    :class:`SupportsIncrMany` says. The rule that keeps wrappers whole is the same: it
    is used only when defined in the same class as the ``set`` and ``incr`` in use, or
    in a subclass of it (and the backend batches its counters too).
    """

    async def write_batch(
        self,
        values: Mapping[str, tuple[bytes, float | None]],
        amounts: Mapping[str, int],
        *,
        ttl: float | None = None,
        once: tuple[str, float] | None = None,
    ) -> None:
        """``set`` of each key to its ``(value, ttl)`` and ``incr`` of each counter by its
        amount (``ttl`` as for ``incr``), in one call, no other client's operation
        between them; a counter that is not an integer raises ``ValueError``.

        ``once`` is ``(key, ttl)``: the counters are added only if ``key`` is absent,
        and ``key`` is then stored for ``ttl`` seconds, in the same call, so that a
        batch sent again (its first try cut off, with no telling whether it landed)
        counts once. The values are set either way.
        """
        ...
