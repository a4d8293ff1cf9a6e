"""Slots: at most ``max_in_flight`` provider calls (and generations) at once per generator."""

from __future__ import annotations

import anyio

from ._clock import Clock
from ._errors import ProviderTimeout

__all__ = ["CallSlots"]


class CallSlots:
    """First come, first served slots for provider calls, each waited for within a deadline.

    Waiting here, not in httpx's pool, keeps a burst of callers cheap: httpcore 1.0
    walks its whole queue on every pool event. A waiter is a semaphore's one future, not
    a capacity limiter's event with a queue of its own: about 1.3 KB less per waiter, in
    a burst of 10,000 waiting generations 13 MiB. ``limit=None`` means no limit.
    """

    __slots__ = ("_clock", "_semaphore", "limit")

    def __init__(self, limit: int | None, clock: Clock) -> None:
        self.limit = limit
        self._clock = clock
        self._semaphore: anyio.Semaphore | None = None  # made on first use, in async context

    async def take(self, deadline: float) -> object | None:
        """A slot (a token to :meth:`free`, once), or None if ``deadline`` passed first."""
        token = object()
        if self.limit is None:
            return token
        if self._semaphore is None:
            self._semaphore = anyio.Semaphore(self.limit, max_value=self.limit)
        try:
            # No checkpoint when a slot is free: the call itself yields soon enough.
            self._semaphore.acquire_nowait()
        except anyio.WouldBlock:
            with self._clock.deadline_scope(deadline) as scope:
                await self._semaphore.acquire()
            if scope.cancelled_caught:
                return None
        return token

    def free(self, token: object) -> None:
        """Give a slot back (``token`` is the one :meth:`take` gave)."""
        if self._semaphore is not None:
            self._semaphore.release()

    def exhausted(self, provider: str) -> ProviderTimeout:
        """The error of a call that never got a slot (nothing was sent: not retryable,
        and neither the provider's statistics nor its breaker hear of it)."""
        return ProviderTimeout(
            f"no free call slot before the deadline ({self.limit} calls in flight; "
            "see max_in_flight)",
            provider=provider,
            retryable=False,
        )
