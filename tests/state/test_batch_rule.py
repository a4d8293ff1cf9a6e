"""SupportsIncrMany, and when the statistics use a backend's incr_many.

A backend has the capability when it satisfies the protocol; the statistics then send a
call's counters in one batch, except when a subclass wraps ``incr`` alone (the batch it
inherits would go around the wrapper), so such a subclass still sees every increment.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

import imagegen
from imagegen import MemoryState, SQLiteState
from imagegen._tracking import Tracker, batch_incr
from imagegen.state import RedisState, StateBackend, SupportsIncrMany

DAY = dt.date(2026, 1, 1)


class Watched(MemoryState):
    """Wraps incr alone: MemoryState's incr_many would go around it."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[str] = []

    async def incr(self, key: str, amount: int = 1, *, ttl: float | None = None) -> int:
        self.seen.append(key)
        return await super().incr(key, amount, ttl=ttl)


class WatchedAgain(Watched):
    """A subclass of a wrapper, overriding neither method: the wrapper still counts."""


class Both(Watched):
    """Wraps incr and batches too: its own incr_many is trusted to see every key."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[list[str]] = []

    async def incr_many(self, amounts: Mapping[str, int], *, ttl: float | None = None) -> None:
        self.batches.append(list(amounts))
        for key, amount in amounts.items():
            await self.incr(key, amount, ttl=ttl)


class Plain:
    """A StateBackend with incr only (no incr_many), delegating to a MemoryState."""

    def __init__(self) -> None:
        self._inner = MemoryState()
        self.seen: list[str] = []

    async def get(self, key: str) -> bytes | None:
        return await self._inner.get(key)

    async def set(self, key: str, value: bytes, *, ttl: float | None = None) -> None:
        await self._inner.set(key, value, ttl=ttl)

    async def delete(self, key: str) -> None:
        await self._inner.delete(key)

    async def incr(self, key: str, amount: int = 1, *, ttl: float | None = None) -> int:
        self.seen.append(key)
        return await self._inner.incr(key, amount, ttl=ttl)

    async def scan(self, prefix: str) -> list[str]:
        return await self._inner.scan(prefix)

    async def set_if_absent(self, key: str, value: bytes, *, ttl: float | None = None) -> bool:
        return await self._inner.set_if_absent(key, value, ttl=ttl)

    async def aclose(self) -> None:
        await self._inner.aclose()


class AddsBatch(Plain):
    """Adds incr_many below the class that defines incr: the batch is used."""

    async def incr_many(self, amounts: Mapping[str, int], *, ttl: float | None = None) -> None:
        for key, amount in amounts.items():
            await self.incr(key, amount, ttl=ttl)


class Forwarding:
    """Defines nothing itself: every attribute comes from the backend it wraps."""

    def __init__(self, inner: MemoryState) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class Off(MemoryState):
    """Turns the capability off: incr_many = None fails the protocol check."""

    incr_many = None  # type: ignore[assignment]


class TestProtocol:
    def test_exported(self) -> None:
        """SupportsIncrMany is public in imagegen.state and in imagegen."""
        assert imagegen.SupportsIncrMany is SupportsIncrMany

    def test_built_in_backends_have_it(self, tmp_path: Path) -> None:
        """MemoryState, SQLiteState and RedisState all satisfy the protocol."""
        for backend in (
            MemoryState(),
            SQLiteState(tmp_path / "s.db"),
            RedisState("redis://127.0.0.1:6399/0"),  # never connects
        ):
            assert isinstance(backend, SupportsIncrMany)

    def test_incr_alone_is_not_enough(self) -> None:
        """A backend with incr but no incr_many, or incr_many = None, does not have it."""
        assert not isinstance(Plain(), SupportsIncrMany)
        assert not isinstance(Off(), SupportsIncrMany)


class TestWhichIncrement:
    @pytest.mark.parametrize(
        ("make", "batches"),
        [
            (MemoryState, True),
            (Watched, False),
            (WatchedAgain, False),
            (Both, True),
            (Plain, False),
            (AddsBatch, True),
            (Off, False),
            (lambda: Forwarding(MemoryState()), True),
        ],
        ids=[
            "memory",
            "wraps-incr",
            "below-a-wrapper",
            "both",
            "plain",
            "adds-batch",
            "off",
            "forwarding",
        ],
    )
    def test_batch_is_used_only_when_it_cannot_go_around_incr(
        self, make: Any, batches: bool
    ) -> None:
        """The batch is used unless a class below the one defining it wraps incr."""
        assert (batch_incr(make()) is not None) is batches

    @pytest.mark.anyio
    @pytest.mark.parametrize("make", [Watched, WatchedAgain], ids=["wraps-incr", "below"])
    async def test_a_wrapped_incr_sees_every_counter(self, make: Any) -> None:
        """Through the Tracker, each of a call's counters goes through the wrapper's incr."""
        state = make()
        await Tracker(state).count("a", day=DAY, outcome="success", latency=0.01)
        assert [key.rsplit(":", 1)[1] for key in state.seen] == ["requests", "success", "lt.10"]

    @pytest.mark.anyio
    async def test_a_batching_wrapper_gets_one_batch(self) -> None:
        """A subclass defining both gets the counters as one batch."""
        state = Both()
        await Tracker(state).count("a", day=DAY, outcome="failure", error_kind="timeout")
        [batch] = state.batches
        assert [key.rsplit(":", 1)[1] for key in batch] == ["requests", "failure", "kind.timeout"]

    @pytest.mark.anyio
    async def test_forwarded_batches_reach_the_wrapped_backend(self) -> None:
        """A forwarding wrapper's batch lands in the backend it wraps, and reads back."""
        inner = MemoryState()
        tracker = Tracker(Forwarding(inner))  # type: ignore[arg-type]
        await tracker.count("a", day=DAY, outcome="success")
        [row] = await Tracker(inner).stats()
        assert (row.requests, row.successes) == (1, 1)

    def test_every_backend_is_a_state_backend(self) -> None:
        """The test doubles here are StateBackends (the protocol check is structural)."""
        for state in (Watched(), Both(), Plain(), AddsBatch(), Off()):
            assert isinstance(state, StateBackend)
