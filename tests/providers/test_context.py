"""ProviderContext.protect_create: a create's result is never lost when its attempt is abandoned."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Coroutine
from typing import Any

import anyio
import pytest

from imagegen import ProviderContext, ProviderUnavailable
from imagegen.testing import FakeClock

pytestmark = pytest.mark.anyio


class Undo:
    """Records what it was asked to undo, and how much time it was given."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, float]] = []

    async def __call__(self, value: str, ctx: ProviderContext) -> None:
        self.calls.append((value, ctx.remaining()))


def slow_create(clock: FakeClock, seconds: float, value: str = "pred-1") -> Any:
    async def create() -> str:
        await clock.sleep(seconds)
        return value

    return create


class TestProtectCreate:
    async def test_without_background_it_just_awaits(self, clock: FakeClock) -> None:
        """With no spawn function the create is awaited like any call."""
        ctx = ProviderContext(deadline=10.0, clock=clock)
        undo = Undo()
        assert await ctx.protect_create(slow_create(clock, 1.0), undo) == "pred-1"
        assert undo.calls == []

    async def test_completed_create_is_returned(self, clock: FakeClock) -> None:
        """In the background, a create that finishes is returned and nothing is undone."""
        undo = Undo()
        async with anyio.create_task_group() as tg:
            ctx = ProviderContext(deadline=10.0, clock=clock, spawn=tg.start_soon)
            assert await ctx.protect_create(slow_create(clock, 1.0), undo) == "pred-1"
        assert undo.calls == []

    async def test_abandoned_create_is_finished_then_undone(self, clock: FakeClock) -> None:
        """An attempt cancelled mid-create lets it finish in the background, then undoes it."""
        undo = Undo()
        async with anyio.create_task_group() as tg:
            ctx = ProviderContext(deadline=3.0, clock=clock, spawn=tg.start_soon)
            with clock.deadline_scope(2.0):  # the attempt is abandoned at t=2
                await ctx.protect_create(slow_create(clock, 5.0), undo)
            assert undo.calls == []
        assert clock.monotonic() == 5.0
        assert undo.calls == [("pred-1", 5.0)]  # a fresh deadline, though 3.0 has passed

    async def test_create_errors_reach_the_attempt(self, clock: FakeClock) -> None:
        """A failing create raises its error in the attempt."""

        async def create() -> str:
            raise ProviderUnavailable("down")

        async with anyio.create_task_group() as tg:
            ctx = ProviderContext(deadline=10.0, clock=clock, spawn=tg.start_soon)
            with pytest.raises(ProviderUnavailable):
                await ctx.protect_create(create, Undo())

    async def test_finished_just_as_cancelled_is_undone(self, clock: FakeClock) -> None:
        """A create done by the time the cancelled attempt wakes is undone, not lost."""
        spawned: list[Coroutine[Any, Any, None]] = []

        def run_now(fn: Callable[[], Coroutine[Any, Any, None]]) -> None:
            # Drive the coroutine at once: the create below never waits.
            coro = fn()
            spawned.append(coro)
            with contextlib.suppress(StopIteration):
                coro.send(None)

        async def instant() -> str:
            return "pred-9"

        undo = Undo()
        ctx = ProviderContext(deadline=10.0, clock=clock, spawn=run_now)
        with anyio.CancelScope() as scope:
            scope.cancel()
            await ctx.protect_create(instant, undo)
        assert undo.calls == [("pred-9", 5.0)]
        assert len(spawned) == 2

    async def test_failing_undo_is_logged(
        self, clock: FakeClock, caplog: pytest.LogCaptureFixture
    ) -> None:
        """An undo that raises is logged and does not break the background group."""

        async def bad_undo(value: str, ctx: ProviderContext) -> None:
            raise RuntimeError("cancel endpoint down")

        async with anyio.create_task_group() as tg:
            ctx = ProviderContext(deadline=10.0, clock=clock, spawn=tg.start_soon)
            with clock.deadline_scope(1.0):
                await ctx.protect_create(slow_create(clock, 2.0), bad_undo)
        assert "undoing an abandoned create failed" in caplog.text
