"""FakeClock: virtual time that jumps ahead whenever every task is blocked."""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import TracebackType

import anyio
import anyio.abc
import anyio.lowlevel

__all__ = ["FakeClock"]


class FakeClock:
    """Virtual time for tests; a :class:`~imagegen.Clock`.

    ``advance(seconds)`` moves time by hand. Used as an async context manager it
    also *autojumps*: whenever every task is blocked, time moves to the earliest
    pending sleep or deadline, so tests never wait for real.

    Args:
        start: The initial ``monotonic()`` reading.
        epoch: ``time()`` at ``start`` (default 2026-01-01T00:00:00Z).
    """

    def __init__(self, start: float = 0.0, *, epoch: float = 1_767_225_600.0) -> None:
        self._now = start
        self._epoch = epoch - start
        self._timers: list[tuple[float, int, Callable[[], None]]] = []
        self._live: set[int] = set()
        self._seq = itertools.count()
        self._changed: anyio.Event | None = None
        self._tg: anyio.abc.TaskGroup | None = None

    def monotonic(self) -> float:
        """Virtual seconds."""
        return self._now

    def time(self) -> float:
        """Virtual Unix time."""
        return self._epoch + self._now

    def _add(self, when: float, action: Callable[[], None]) -> int:
        ident = next(self._seq)
        heapq.heappush(self._timers, (when, ident, action))
        self._live.add(ident)
        if self._changed is not None:
            self._changed.set()
        return ident

    def _fire_due(self) -> None:
        while self._timers and self._timers[0][0] <= self._now:
            _, ident, action = heapq.heappop(self._timers)
            if ident in self._live:
                self._live.discard(ident)
                action()

    def _next_due(self) -> float | None:
        while self._timers and self._timers[0][1] not in self._live:
            heapq.heappop(self._timers)
        return self._timers[0][0] if self._timers else None

    async def sleep(self, seconds: float) -> None:
        """Wait until virtual time has moved ``seconds`` on."""
        if seconds <= 0:
            await anyio.lowlevel.checkpoint()
            return
        done = anyio.Event()
        ident = self._add(self._now + seconds, done.set)
        try:
            await done.wait()
        finally:
            self._live.discard(ident)

    @contextmanager
    def deadline_scope(self, deadline: float) -> Iterator[anyio.CancelScope]:
        """A cancel scope cancelled when virtual time reaches ``deadline``."""
        scope = anyio.CancelScope()
        if deadline <= self._now:
            scope.cancel()
        ident = self._add(deadline, scope.cancel)
        try:
            with scope:
                yield scope
        finally:
            self._live.discard(ident)

    def advance(self, seconds: float) -> None:
        """Move time on by ``seconds``, waking sleepers and firing deadlines on the way."""
        target = self._now + seconds
        while (due := self._next_due()) is not None and due <= target:
            self._now = max(self._now, due)
            self._fire_due()
        self._now = target

    @staticmethod
    async def _quiet() -> None:
        # On asyncio a task that just finished still has its done-callbacks (which wake
        # whoever waits for it) queued for the next loop iterations, while every task
        # left already looks blocked. Let queued callbacks run, then check twice.
        for _ in range(2):
            for _ in range(5):
                await anyio.lowlevel.checkpoint()
            await anyio.wait_all_tasks_blocked()

    async def _autojump(self) -> None:
        while True:
            await self._quiet()
            due = self._next_due()
            if due is None:
                self._changed = anyio.Event()
                await self._changed.wait()
                self._changed = None
                continue
            self.advance(max(0.0, due - self._now))

    async def __aenter__(self) -> FakeClock:
        self._tg = anyio.create_task_group()
        await self._tg.__aenter__()
        self._tg.start_soon(self._autojump)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        assert self._tg is not None  # noqa: S101 - set by __aenter__
        # Stop the autojump task, and let the body's own exception (if any) propagate
        # as it is, not wrapped in an ExceptionGroup by the task group.
        self._tg.cancel_scope.cancel()
        await self._tg.__aexit__(None, None, None)
        return None

    def __repr__(self) -> str:
        return f"FakeClock(monotonic={self._now!r})"
