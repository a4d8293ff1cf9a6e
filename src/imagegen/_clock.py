"""Time, injected.

Retry, the breaker, hedging and the deadline all read time through a :class:`Clock`
so tests can drive them with :class:`imagegen.testing.FakeClock` and never sleep.
"""

from __future__ import annotations

import datetime as dt
import time
from contextlib import AbstractContextManager
from typing import Protocol, runtime_checkable

import anyio

__all__ = ["Clock", "SystemClock", "utc_now"]


@runtime_checkable
class Clock(Protocol):
    """Where imagegen reads time from.

    ``monotonic()`` drives deadlines and latencies; ``time()`` (Unix seconds) is
    what gets written to shared state, since monotonic clocks differ between
    processes.
    """

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back (``anyio.current_time()``)."""
        ...

    def time(self) -> float:
        """Unix time in seconds."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` on this clock."""
        ...

    def deadline_scope(self, deadline: float) -> AbstractContextManager[anyio.CancelScope]:
        """A cancel scope that fires when ``monotonic()`` reaches ``deadline``."""
        ...


class SystemClock:
    """The real clock: anyio's event-loop time and ``time.time()``."""

    __slots__ = ()

    def monotonic(self) -> float:
        return anyio.current_time()

    def time(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(max(0.0, seconds))

    def deadline_scope(self, deadline: float) -> anyio.CancelScope:
        # A CancelScope is its own context manager; the event loop enforces it.
        return anyio.CancelScope(deadline=deadline)

    def __repr__(self) -> str:
        return "SystemClock()"


def utc_now(clock: Clock) -> dt.datetime:
    """``clock.time()`` as an aware UTC datetime (records, statistics days)."""
    return dt.datetime.fromtimestamp(clock.time(), tz=dt.UTC)
