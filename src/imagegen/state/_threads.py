"""Worker threads for backends whose client blocks (sqlite3, redis-py): bounded, abandonable.

A caller may give up on a call (its deadline passed, it was cancelled): the call's
thread cannot be stopped, so it runs on, and the caller goes. Those threads are
counted. A call given up on usually ends a moment later; but once every slot is
held by calls given up on at least ``STUCK_AFTER`` seconds ago, the backend is not
answering (a locked database, a server that accepts connections and never
replies), and a new call fails at once with a StorageError instead of queueing
another thread behind them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import anyio
import anyio.to_thread

from .._errors import StorageError

__all__ = ["WorkerThreads"]

_T = TypeVar("_T")

#: Seconds a call given up on may still run before its slot counts as stuck.
STUCK_AFTER = 1.0


class _Call:
    __slots__ = ("abandoned", "done", "started")

    def __init__(self) -> None:
        self.abandoned: float | None = None  # when its caller gave up (time.monotonic())
        self.started = False
        self.done = False


class WorkerThreads:
    """At most ``limit`` calls of one backend in worker threads at once, abandoned ones included.

    Args:
        limit: How many calls may run at once.
        name: The backend, for error messages.
    """

    __slots__ = ("_abandoned", "_counts", "_limiter", "limit", "name")

    def __init__(self, limit: int, name: str) -> None:
        self.limit = limit
        self.name = name
        self._limiter = anyio.CapacityLimiter(limit)
        self._abandoned: set[_Call] = set()  # still running for callers that gave up on them
        self._counts = threading.Lock()  # the set is changed from worker threads too

    @property
    def abandoned(self) -> int:
        """Threads still running for calls whose callers gave up."""
        return len(self._abandoned)

    def _stuck(self) -> bool:
        """Every slot held by a call given up on ``STUCK_AFTER`` seconds ago or more."""
        if len(self._abandoned) < self.limit:
            return False
        cutoff = time.monotonic() - STUCK_AFTER
        with self._counts:
            stuck = [
                c for c in self._abandoned if c.abandoned is not None and c.abandoned <= cutoff
            ]
        return len(stuck) >= self.limit

    async def run(self, fn: Callable[..., _T], *args: Any) -> _T:
        """``fn(*args)`` in a worker thread; the caller may give up on it (cancellation).

        Raises:
            StorageError: Every slot is held by a call given up on: the backend is
                not answering.
        """
        if self._stuck():
            msg = (
                f"{self.name} is not answering: {len(self._abandoned)} earlier call(s) given "
                f"up on have run for over {STUCK_AFTER:g}s"
            )
            raise StorageError(msg)
        call = _Call()

        def work() -> _T:
            with self._counts:
                call.started = True
                if call.abandoned is not None:
                    # Given up on before it began, and begun all the same: it counts.
                    self._abandoned.add(call)
            try:
                return fn(*args)
            finally:
                with self._counts:
                    call.done = True
                    self._abandoned.discard(call)

        try:
            return await anyio.to_thread.run_sync(
                work, limiter=self._limiter, abandon_on_cancel=True
            )
        except BaseException:
            with self._counts:
                if not call.done:
                    call.abandoned = time.monotonic()
                    # Not begun: anyio may never begin it (then nothing is left running).
                    if call.started:
                        self._abandoned.add(call)
            raise
