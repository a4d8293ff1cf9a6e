"""Fault-injecting wrappers for chaos tests: a state backend and a storage that fail or stall.

Wrap a real backend (``MemoryState()``, ``MemoryStorage()``) and choose the faults:
a share of calls that raise (as a driver would: ``ConnectionError`` by default), a
share that stall (wait ``stall`` seconds on the clock, or forever), or switch every
call to failing or stalling at run time (``fail_all``, ``stall_all``). The draws come
from a seeded random generator, so a failing run can be replayed.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable, Collection, Mapping
from typing import Generic, TypeVar

import anyio

from .._clock import Clock, SystemClock
from ..state import StateBackend
from ..storage import Storage, StorageStats, StoredObject

__all__ = ["FaultyState", "FaultyStorage"]

_T = TypeVar("_T")
_Inner = TypeVar("_Inner")


def _connection_error(method: str) -> Exception:
    return ConnectionError(f"injected fault in {method}")


def _share(name: str, value: float) -> float:
    if not 0 <= value <= 1:
        msg = f"{name} must be between 0 and 1, not {value!r}"
        raise ValueError(msg)
    return value


class _Faults:
    """The fault plan shared by both wrappers."""

    def __init__(
        self,
        *,
        fail_rate: float,
        stall_rate: float,
        stall: float | None,
        methods: Collection[str] | None,
        error: Callable[[str], Exception],
        seed: int,
        clock: Clock | None,
    ) -> None:
        self.fail_rate = _share("fail_rate", fail_rate)
        self.stall_rate = _share("stall_rate", stall_rate)
        self.stall = stall
        self.methods = None if methods is None else frozenset(methods)
        self.error = error
        self.fail_all = False
        self.stall_all = False
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.failed: dict[str, int] = {}
        self.stalled: dict[str, int] = {}
        self._random = random.Random(seed)

    async def around(self, method: str, call: Callable[[], Awaitable[_T]]) -> _T:
        if self.methods is None or method in self.methods:
            draw = self._random.random()
            if self.stall_all or draw < self.stall_rate:
                self.stalled[method] = self.stalled.get(method, 0) + 1
                if self.stall is None:
                    await anyio.sleep_forever()
                await self.clock.sleep(self.stall or 0.0)
            elif self.fail_all or draw < self.stall_rate + self.fail_rate:
                self.failed[method] = self.failed.get(method, 0) + 1
                raise self.error(method)
        return await call()


class _Faulty(Generic[_Inner]):
    """The switches and counters both wrappers show, and their arguments."""

    def __init__(
        self,
        inner: _Inner,
        *,
        fail_rate: float = 0.0,
        stall_rate: float = 0.0,
        stall: float | None = None,
        methods: Collection[str] | None = None,
        error: Callable[[str], Exception] = _connection_error,
        seed: int = 0,
        clock: Clock | None = None,
    ) -> None:
        self.inner = inner
        self.faults = _Faults(
            fail_rate=fail_rate,
            stall_rate=stall_rate,
            stall=stall,
            methods=methods,
            error=error,
            seed=seed,
            clock=clock,
        )

    @property
    def fail_all(self) -> bool:
        """Every affected call fails, while True."""
        return self.faults.fail_all

    @fail_all.setter
    def fail_all(self, value: bool) -> None:
        self.faults.fail_all = value

    @property
    def stall_all(self) -> bool:
        """Every affected call stalls, while True."""
        return self.faults.stall_all

    @stall_all.setter
    def stall_all(self, value: bool) -> None:
        self.faults.stall_all = value

    @property
    def fail_rate(self) -> float:
        """Share of affected calls that fail; settable at run time."""
        return self.faults.fail_rate

    @fail_rate.setter
    def fail_rate(self, value: float) -> None:
        self.faults.fail_rate = _share("fail_rate", value)

    @property
    def stall_rate(self) -> float:
        """Share of affected calls that stall; settable at run time."""
        return self.faults.stall_rate

    @stall_rate.setter
    def stall_rate(self, value: float) -> None:
        self.faults.stall_rate = _share("stall_rate", value)

    @property
    def failed(self) -> Mapping[str, int]:
        """Injected failures by method."""
        return self.faults.failed

    @property
    def stalled(self) -> Mapping[str, int]:
        """Injected stalls by method."""
        return self.faults.stalled


class FaultyState(_Faulty[StateBackend]):
    """A :class:`~imagegen.state.StateBackend` whose calls fail or stall on purpose.

    Args:
        inner: The backend that answers the calls that go through.
        fail_rate: Share of calls that raise ``error(method)``.
        stall_rate: Share of calls that wait ``stall`` seconds first (None: forever).
        stall: How long a stalled call waits, on ``clock``.
        methods: Only these methods are affected (``"get"``, ``"set"``, ``"incr"``...);
            None for all.
        error: Builds the exception a failing call raises (default ``ConnectionError``).
        seed: Seeds the draws.
        clock: Where stalls wait (a :class:`FakeClock` in tests).

    ``fail_all`` and ``stall_all`` turn every affected call into a failure or a
    stall until set back; ``failed`` and ``stalled`` count what was injected, by
    method.
    """

    async def get(self, key: str) -> bytes | None:
        return await self.faults.around("get", lambda: self.inner.get(key))

    async def set(self, key: str, value: bytes, *, ttl: float | None = None) -> None:
        await self.faults.around("set", lambda: self.inner.set(key, value, ttl=ttl))

    async def delete(self, key: str) -> None:
        await self.faults.around("delete", lambda: self.inner.delete(key))

    async def incr(self, key: str, amount: int = 1, *, ttl: float | None = None) -> int:
        return await self.faults.around("incr", lambda: self.inner.incr(key, amount, ttl=ttl))

    async def scan(self, prefix: str) -> list[str]:
        return await self.faults.around("scan", lambda: self.inner.scan(prefix))

    async def set_if_absent(self, key: str, value: bytes, *, ttl: float | None = None) -> bool:
        return await self.faults.around(
            "set_if_absent", lambda: self.inner.set_if_absent(key, value, ttl=ttl)
        )

    async def aclose(self) -> None:
        await self.inner.aclose()


class FaultyStorage(_Faulty[Storage]):
    """A :class:`~imagegen.storage.Storage` whose calls fail or stall on purpose.

    The same arguments and switches as :class:`FaultyState`; ``url_for`` is never
    affected (it is sync and does no I/O).
    """

    async def put(
        self, key: str, data: bytes, *, content_type: str, metadata: Mapping[str, str]
    ) -> StoredObject:
        return await self.faults.around(
            "put",
            lambda: self.inner.put(key, data, content_type=content_type, metadata=metadata),
        )

    async def get(self, key: str) -> bytes | None:
        return await self.faults.around("get", lambda: self.inner.get(key))

    async def delete(self, key: str) -> None:
        await self.faults.around("delete", lambda: self.inner.delete(key))

    def url_for(self, key: str) -> str | None:
        return self.inner.url_for(key)

    async def stats(self) -> StorageStats:
        return await self.faults.around("stats", self.inner.stats)
