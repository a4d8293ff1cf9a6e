"""State in this process's memory: fast, private, gone on exit."""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping

from .._errors import InvalidConfig

__all__ = ["MemoryState"]

# Sweeps of expired keys wait for at least this many new keys, so a small store does not
# sweep on nearly every insert.
_MIN_SWEEP_EVERY = 64


# A key's value and expiry. The value is bytes as set, or an int once incr has touched it
# (parsed once, encoded on get). The key is live while timer() < expiry (inf: never).
# A tuple, not a mutable object: a tuple of a bytes or int and a float is untracked by
# the garbage collector after its first pass, so a large store costs full collections
# nothing (with a tracked object per key, gc doubled the cost of adding a key).
_Entry = tuple[bytes | int, float]


class MemoryState:
    """A :class:`~imagegen.state.StateBackend` in a dict of this process.

    Every operation is synchronous under the hood, so each is atomic with respect to
    other tasks on the event loop, and each costs a few dict operations (no locks, no
    heap, no per-key objects for the garbage collector to walk); the only pass over the
    whole store is ``scan`` and the amortised sweep below.

    Keys live in one ``OrderedDict`` in recency order. Every operation that finds a live
    key (``get``, ``set``, ``incr``, ``incr_many``, a losing ``set_if_absent``) moves it
    to the end, and a new key joins at the end; ``scan`` and ``delete`` change no order.
    At most ``maxsize`` keys are held: a new key that would make one more evicts the key
    at the front, the least recently used, whether or not it has expired.

    A key is live while ``timer() < expiry``; an expired key is never returned, and
    counts as absent for ``incr`` and ``set_if_absent``. Expired keys are dropped
    lazily: when an operation finds one, when ``scan`` runs, and by a sweep of the whole
    store that runs before a new key is added once at least as many keys have been added
    since the last sweep as the store held after it (and at least 64). Each sweep is
    thus paid for by the insertions before it: at most about two key checks per new
    key, amortised. Expired keys not dropped yet count in ``maxsize`` and in the repr.

    Args:
        maxsize: How many keys to keep at most (an int >= 1).
        timer: The clock expiry is measured on (seconds, monotonic).

    Raises:
        InvalidConfig: ``maxsize`` is not an int >= 1.
    """

    def __init__(
        self, *, maxsize: int = 100_000, timer: Callable[[], float] = time.monotonic
    ) -> None:
        if isinstance(maxsize, bool) or not isinstance(maxsize, int) or maxsize < 1:
            raise InvalidConfig(f"maxsize must be an int >= 1 (got {maxsize!r})", field="maxsize")
        self._maxsize = maxsize
        self._timer = timer
        self._data: OrderedDict[str, _Entry] = OrderedDict()
        self._added = 0  # new keys since the last sweep
        self._sweep_every = _MIN_SWEEP_EVERY

    # -- the store ----------------------------------------------------------------------

    def _add(self, key: str, entry: _Entry, now: float) -> None:
        """Store ``entry`` under ``key``, which is absent: sweep or evict to make room."""
        data = self._data
        self._added += 1
        if self._added >= self._sweep_every:
            self._sweep(now)
        if len(data) >= self._maxsize:
            data.popitem(last=False)
        data[key] = entry

    def _sweep(self, now: float) -> None:
        """Drop every expired key (one pass over the store)."""
        data = self._data
        for key in [key for key, (_, expiry) in data.items() if not now < expiry]:
            del data[key]
        self._added = 0
        self._sweep_every = max(len(data), _MIN_SWEEP_EVERY)

    # -- the protocol -------------------------------------------------------------------

    async def get(self, key: str) -> bytes | None:
        data = self._data
        entry = data.get(key)
        if entry is None:
            return None
        value, expiry = entry
        if not self._timer() < expiry:
            del data[key]
            return None
        data.move_to_end(key)
        return value if isinstance(value, bytes) else str(value).encode()

    async def set(self, key: str, value: bytes, *, ttl: float | None = None) -> None:
        self._set(key, value, ttl, self._timer())

    def _set(self, key: str, value: bytes, ttl: float | None, now: float) -> None:
        data = self._data
        expiry = math.inf if ttl is None else now + ttl
        if not now < expiry:  # stored already expired: whatever was there is gone
            data.pop(key, None)
        elif key in data:  # replaced in place (expired or not), then the most recent
            data[key] = (bytes(value), expiry)
            data.move_to_end(key)
        else:
            self._add(key, (bytes(value), expiry), now)

    async def delete(self, key: str) -> None:
        self._data.pop(key, None)

    async def incr(self, key: str, amount: int = 1, *, ttl: float | None = None) -> int:
        return self._incr(key, amount, ttl, self._timer())

    async def incr_many(self, amounts: Mapping[str, int], *, ttl: float | None = None) -> None:
        """``incr`` of each key by its amount, all at once (no other task runs between)."""
        self._batch({}, amounts, ttl, None)

    async def write_batch(
        self,
        values: Mapping[str, tuple[bytes, float | None]],
        amounts: Mapping[str, int],
        *,
        ttl: float | None = None,
        once: tuple[str, float] | None = None,
    ) -> None:
        """``set`` of each value and ``incr`` of each counter (unless ``once``'s key is
        there already), all at once (no other task runs between)."""
        self._batch(values, amounts, ttl, once)

    def _batch(
        self,
        values: Mapping[str, tuple[bytes, float | None]],
        amounts: Mapping[str, int],
        ttl: float | None,
        once: tuple[str, float] | None,
    ) -> None:
        now = self._timer()
        for key, (value, value_ttl) in values.items():
            self._set(key, value, value_ttl, now)
        if once is not None:
            marker, marker_ttl = once
            entry = self._data.get(marker)
            if entry is not None and now < entry[1]:
                return
            self._set(marker, b"1", marker_ttl, now)
        for key, amount in amounts.items():
            self._incr(key, amount, ttl, now)

    def _incr(self, key: str, amount: int, ttl: float | None, now: float) -> int:
        data = self._data
        entry = data.get(key)
        if entry is not None:
            value, expiry = entry
            if now < expiry:
                if isinstance(value, bytes):
                    try:
                        value = int(value)
                    except ValueError:
                        data.move_to_end(key)
                        msg = f"the value at {key!r} is not an integer"
                        raise ValueError(msg) from None
                value += amount
                data[key] = (value, expiry)
                data.move_to_end(key)
                return value
            del data[key]  # expired: the counter starts again
        expiry = math.inf if ttl is None else now + ttl
        if now < expiry:  # a counter born expired is not stored
            self._add(key, (amount, expiry), now)
        return amount

    async def scan(self, prefix: str) -> list[str]:
        self._sweep(self._timer())
        return [key for key in self._data if key.startswith(prefix)]

    async def set_if_absent(self, key: str, value: bytes, *, ttl: float | None = None) -> bool:
        data = self._data
        now = self._timer()
        entry = data.get(key)
        if entry is not None:
            if now < entry[1]:
                data.move_to_end(key)
                return False
            del data[key]
        expiry = math.inf if ttl is None else now + ttl
        if now < expiry:  # with ttl <= 0 it wins but stores nothing
            self._add(key, (bytes(value), expiry), now)
        return True

    async def aclose(self) -> None:
        return None

    def __repr__(self) -> str:
        return f"MemoryState(keys={len(self._data)})"
