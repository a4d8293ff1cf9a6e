"""The generator's view of its state backend: failures are StorageErrors, stalls are noticed.

Records, statistics, breakers, jobs and shared settings all go through it, so a
backend's own exceptions (``redis.exceptions.ConnectionError``,
``sqlite3.OperationalError``...) never leave the public API raw.

A stalled backend (a call given up on after ``slow_call`` seconds with no other
call answered meanwhile, or calls made for ``stall_after`` seconds and none
answered: a server that accepts connections and never answers, a database locked
by another process) is treated as down:
further calls fail at once with a StorageError rather than each waiting out its
own bound, and one call every ``retry_every`` seconds probes it again. Callers
bound their own waits; this keeps the later ones from paying again, and lets
generations go on (a breaker that cannot read its state lets calls through).
Prefix scans, which serve reports and may be slow on a large backend, are not
watched.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

from ._clock import Clock
from ._errors import ImageGenError, StorageError
from ._tracking import batch_incr, batch_write
from .state import StateBackend

__all__ = ["READ_BOUND", "GuardedBatchState", "GuardedState", "bounded_read", "guarded"]

logger = logging.getLogger("imagegen")

_T = TypeVar("_T")

#: Seconds a read you ask for (records, statistics, jobs, settings) may wait for the
#: state backend before it is a StorageError.
READ_BOUND = 10.0


async def bounded_read(clock: Clock, what: str, read: Callable[[], Awaitable[_T]]) -> _T:
    """``read()`` within ``READ_BOUND`` seconds, or a StorageError saying so."""
    done: list[_T] = []  # a list: the type checker cannot see a scope swallow its cut
    with clock.deadline_scope(clock.monotonic() + READ_BOUND):
        done.append(await read())
    if not done:
        msg = f"the state backend did not answer for {what} within {READ_BOUND:g}s"
        raise StorageError(msg)
    return done[0]


class GuardedState:
    """A :class:`~imagegen.state.StateBackend` around another one (see the module docstring).

    Args:
        inner: The backend.
        clock: For the stall watch.
        slow_call: A call its caller gave up on after this many seconds, with no
            other call answered meanwhile, means the backend is stalled (healthy
            calls take milliseconds; a busy SQLite file may queue them for a
            fraction of a second). One slow call among answered ones is that
            call's trouble (a hot key, a lost reply), not the backend's.
        stall_after: Seconds of calls without a single answer after which the
            backend counts as stalled.
        retry_every: Seconds between probes of a stalled backend.
        probe_bound: Seconds a probe may take before the backend stays down.
    """

    __slots__ = (
        "_answers",
        "_clock",
        "_probe_at",
        "_stalled",
        "_unanswered_since",
        "inner",
        "probe_bound",
        "retry_every",
        "slow_call",
        "stall_after",
    )

    def __init__(
        self,
        inner: StateBackend,
        *,
        clock: Clock,
        slow_call: float = 1.0,
        stall_after: float = 2.0,
        retry_every: float = 1.0,
        probe_bound: float = 0.5,
    ) -> None:
        self.inner = inner
        self.slow_call = slow_call
        self.stall_after = stall_after
        self.retry_every = retry_every
        self.probe_bound = probe_bound
        self._clock = clock
        self._unanswered_since: float | None = None  # first call since the last answer
        self._stalled = False
        self._probe_at = 0.0
        self._answers = 0  # calls answered so far: "any answer since X" without a clock read

    @property
    def stalled(self) -> bool:
        """Whether the backend counts as not answering right now."""
        if self._stalled:
            return True
        since = self._unanswered_since
        return since is not None and self._clock.monotonic() - since > self.stall_after

    async def _call(self, what: str, call: Callable[[], Awaitable[_T]]) -> _T:
        """``call()`` with its failure a StorageError, under the stall watch."""
        now = self._clock.monotonic()
        probing = False
        if self.stalled:
            if now < self._probe_at:
                msg = f"the state backend is not answering (a {what} was not tried)"
                raise StorageError(msg)
            # This call is the probe, bounded; the others keep failing fast meanwhile.
            probing = self._stalled = True
            self._probe_at = now + self.retry_every
        if self._unanswered_since is None:
            self._unanswered_since = now
        answers = self._answers
        try:
            result = await (self._probe(what, call, now) if probing else call())
        except ImageGenError:
            raise
        except Exception as exc:
            self._answered()
            msg = f"the state backend failed a {what}: {type(exc).__name__}: {exc}"
            raise StorageError(msg) from exc
        except BaseException:
            self._given_up(what, now, answered_meanwhile=self._answers != answers)
            raise
        self._answered()
        if self._stalled:
            self._stalled = False
            logger.warning("the state backend answers again")
        return result

    async def _probe(self, what: str, call: Callable[[], Awaitable[_T]], now: float) -> _T:
        done: list[_T] = []  # a list: the type checker cannot see a scope swallow its cut
        with self._clock.deadline_scope(now + self.probe_bound):
            done.append(await call())
        if not done:
            msg = (
                f"the state backend is still not answering (a {what} waited {self.probe_bound:g}s)"
            )
            raise StorageError(msg)
        return done[0]

    def _answered(self) -> None:
        """A call came back (with a value or the backend's own error): it answers."""
        self._unanswered_since = None
        self._answers += 1

    def _given_up(self, what: str, began: float, *, answered_meanwhile: bool) -> None:
        """A caller gave up on a call: after ``slow_call`` seconds, that is a stall."""
        waited = self._clock.monotonic() - began
        if waited >= self.slow_call and not answered_meanwhile and not self._stalled:
            self._stalled = True
            self._probe_at = self._clock.monotonic() + self.retry_every
            logger.warning(
                "the state backend did not answer a %s in %.2fs; treating it as down "
                "and trying again every %gs",
                what,
                waited,
                self.retry_every,
            )

    async def get(self, key: str) -> bytes | None:
        return await self._call("get", lambda: self.inner.get(key))

    async def set(self, key: str, value: bytes, *, ttl: float | None = None) -> None:
        await self._call("set", lambda: self.inner.set(key, value, ttl=ttl))

    async def delete(self, key: str) -> None:
        await self._call("delete", lambda: self.inner.delete(key))

    async def incr(self, key: str, amount: int = 1, *, ttl: float | None = None) -> int:
        return await self._call("incr", lambda: self.inner.incr(key, amount, ttl=ttl))

    async def scan(self, prefix: str) -> list[str]:
        try:
            return await self.inner.scan(prefix)
        except ImageGenError:
            raise
        except Exception as exc:
            msg = f"the state backend failed a scan: {type(exc).__name__}: {exc}"
            raise StorageError(msg) from exc

    async def set_if_absent(self, key: str, value: bytes, *, ttl: float | None = None) -> bool:
        return await self._call(
            "set_if_absent", lambda: self.inner.set_if_absent(key, value, ttl=ttl)
        )

    async def aclose(self) -> None:
        await self.inner.aclose()

    def __repr__(self) -> str:
        return f"GuardedState({self.inner!r})"


class GuardedBatchState(GuardedState):
    """A :class:`GuardedState` over a backend with ``incr_many``."""

    __slots__ = ()

    async def incr_many(self, amounts: Mapping[str, int], *, ttl: float | None = None) -> None:
        inner: Any = self.inner
        await self._call("incr_many", lambda: inner.incr_many(amounts, ttl=ttl))


class GuardedWriteBatchState(GuardedBatchState):
    """A :class:`GuardedState` over a backend with ``incr_many`` and ``write_batch``."""

    __slots__ = ()

    async def write_batch(
        self,
        values: Mapping[str, tuple[bytes, float | None]],
        amounts: Mapping[str, int],
        *,
        ttl: float | None = None,
        once: tuple[str, float] | None = None,
    ) -> None:
        inner: Any = self.inner
        await self._call(
            "write_batch", lambda: inner.write_batch(values, amounts, ttl=ttl, once=once)
        )


def guarded(state: StateBackend, clock: Clock) -> GuardedState:
    """``state`` guarded; with ``incr_many`` and ``write_batch`` exactly when the
    bookkeeping would use the backend's own (see :func:`~imagegen._tracking.batch_incr`
    and :func:`~imagegen._tracking.batch_write`)."""
    if batch_write(state) is not None:
        return GuardedWriteBatchState(state, clock=clock)
    if batch_incr(state) is not None:
        return GuardedBatchState(state, clock=clock)
    return GuardedState(state, clock=clock)
