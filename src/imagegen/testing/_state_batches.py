"""The optional batch calls of a state backend, as checks (part of StateBackendSuite):
``incr_many`` (:class:`~imagegen.state.SupportsIncrMany`) and ``write_batch``
(:class:`~imagegen.state.SupportsWriteBatch`), each skipped, saying so, when the
backend has none."""

# Test code: plain asserts, which pytest rewrites for their messages (imagegen.testing
# registers this module for rewriting before it is imported).
# ruff: noqa: S101

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

import anyio
import pytest

from .._tracking import batch_write
from ..state import StateBackend, SupportsIncrMany, SupportsWriteBatch
from ._suite import call_hook

__all__ = ["BatchChecks", "SuiteTime"]

_TEN_YEARS = 10 * 365 * 86_400.0


class SuiteTime:
    """The suite's time: the backend's own clock moved by a hook, or real seconds.

    Checks are written in *units*: one second on a clock the user moves, or
    ``scale`` real seconds (slept for) without one.
    """

    def __init__(self, advance: Callable[[float], object] | None, scale: float) -> None:
        self._advance = advance
        self.unit = 1.0 if advance is not None else scale

    def ttl(self, units: float) -> float:
        """A ttl of ``units``, in seconds."""
        return units * self.unit

    async def pass_(self, units: float) -> None:
        """Let ``units`` of time go by."""
        if self._advance is None:
            await anyio.sleep(units * self.unit)
        else:
            await call_hook(self._advance, units * self.unit)

    async def pass_long(self) -> None:
        """Let "a long time" go by: ten years on a moved clock, two units in real time."""
        if self._advance is None:
            await self.pass_(2)
        else:
            await call_hook(self._advance, _TEN_YEARS)


class BatchChecks:
    """The checks of the optional batch calls; the suite gives the fixtures."""

    concurrency: ClassVar[int] = 200

    # -- incr_many (optional) -----------------------------------------------------------

    @staticmethod
    def _batching(state: StateBackend) -> SupportsIncrMany:
        if not isinstance(state, SupportsIncrMany):
            pytest.skip(f"{type(state).__name__} has no incr_many (it is optional)")
        return state

    async def test_incr_many_bumps_each_key(
        self, state: StateBackend, suite_time: SuiteTime
    ) -> None:
        """New counters start from their amount with the ttl; existing ones keep theirs."""
        batch = self._batching(state)
        await state.incr("old", 40)
        await batch.incr_many({"old": 2, "new": 5, "one": 1}, ttl=suite_time.ttl(1))
        assert [await state.get(k) for k in ("old", "new", "one")] == [b"42", b"5", b"1"]
        await suite_time.pass_(2)
        assert await state.get("new") is None
        assert await state.get("old") == b"42"  # created without a ttl, none given since

    async def test_incr_many_of_nothing(self, state: StateBackend) -> None:
        """An empty batch is fine and changes nothing."""
        await self._batching(state).incr_many({})
        assert await state.scan("") == []

    async def test_incr_many_refuses_a_non_integer(self, state: StateBackend) -> None:
        """A counter holding text raises the same ValueError as incr and keeps its text."""
        batch = self._batching(state)
        await state.set("text", b"abc")
        with pytest.raises(ValueError, match="integer"):
            await batch.incr_many({"text": 1})
        assert await state.get("text") == b"abc"

    async def test_concurrent_incr_many_loses_nothing(self, state: StateBackend) -> None:
        """Concurrent batches and single increments of the same keys all count."""
        batch = self._batching(state)

        async def both() -> None:
            await batch.incr_many({"a": 1, "b": 2})
            await state.incr("a")

        async with anyio.create_task_group() as tg:
            for _ in range(self.concurrency):
                tg.start_soon(both)
        assert await state.get("a") == str(2 * self.concurrency).encode()
        assert await state.get("b") == str(2 * self.concurrency).encode()

    # -- write_batch (optional) ---------------------------------------------------------

    @staticmethod
    def _writing(state: StateBackend) -> SupportsWriteBatch:
        name = type(state).__name__
        if not isinstance(state, SupportsWriteBatch):
            pytest.skip(f"{name} has no write_batch (it is optional)")
        if batch_write(state) is None:  # as the generator decides
            pytest.skip(
                f"{name}'s write_batch is not used: it has no incr_many, or overrides "
                "set or incr below its write_batch"
            )
        return state

    async def test_write_batch_sets_and_counts(
        self, state: StateBackend, suite_time: SuiteTime
    ) -> None:
        """Each value is stored with its own ttl, each counter bumped with the batch's."""
        batch = self._writing(state)
        await state.incr("old", 40)
        await batch.write_batch(
            {"kept": (b"v", None), "short": (b"s", suite_time.ttl(1)), "gone": (b"g", 0.0)},
            {"old": 2, "new": 5},
            ttl=suite_time.ttl(1),
        )
        got = [await state.get(k) for k in ("kept", "short", "gone", "old", "new")]
        assert got == [b"v", b"s", None, b"42", b"5"]
        await suite_time.pass_(2)
        got = [await state.get(k) for k in ("kept", "short", "old", "new")]
        assert got == [b"v", None, b"42", None]

    async def test_write_batch_once_counts_once(
        self, state: StateBackend, suite_time: SuiteTime
    ) -> None:
        """A batch sent again with the same ``once`` key sets its values again and adds
        its counters no more; once the key expired, a batch counts again."""
        batch = self._writing(state)
        once = ("counted:g1", suite_time.ttl(1))
        for value in (b"first", b"second"):
            await batch.write_batch({"record": (value, None)}, {"n": 2}, once=once)
        assert [await state.get(k) for k in ("record", "n")] == [b"second", b"2"]
        await batch.write_batch({}, {"n": 1}, once=("counted:g2", suite_time.ttl(1)))
        assert await state.get("n") == b"3"
        await suite_time.pass_(2)
        await batch.write_batch({}, {"n": 5}, once=once)
        assert await state.get("n") == b"8"

    async def test_concurrent_batches_with_one_once_key_count_once(
        self, state: StateBackend
    ) -> None:
        batch = self._writing(state)

        async def one() -> None:
            await batch.write_batch({}, {"n": 1}, once=("counted:same", 3600.0))

        async with anyio.create_task_group() as tg:
            for _ in range(self.concurrency):
                tg.start_soon(one)
        assert await state.get("n") == b"1"

    async def test_write_batch_replaces_a_value(self, state: StateBackend) -> None:
        batch = self._writing(state)
        await state.set("k", b"before")
        await batch.write_batch({"k": (b"after", None)}, {})
        assert await state.get("k") == b"after"

    async def test_write_batch_refuses_a_non_integer(self, state: StateBackend) -> None:
        """A counter holding text raises the same ValueError as incr and keeps its text."""
        batch = self._writing(state)
        await state.set("text", b"abc")
        with pytest.raises(ValueError, match="integer"):
            await batch.write_batch({"v": (b"x", None)}, {"text": 1})
        assert await state.get("text") == b"abc"

    async def test_concurrent_write_batches_lose_nothing(self, state: StateBackend) -> None:
        batch = self._writing(state)

        async def one(i: int) -> None:
            await batch.write_batch({f"v{i}": (b"x", None)}, {"n": 1})

        async with anyio.create_task_group() as tg:
            for i in range(self.concurrency):
                tg.start_soon(one, i)
        assert await state.get("n") == str(self.concurrency).encode()
        assert len(await state.scan("v")) == self.concurrency
