"""Bursts: at most max_in_flight generations run at once; the rest wait their turn before
doing any work (no record, no state call), within their own deadline."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from imagegen import ImageGenerator, ImageResult, MemoryState, MemoryStorage, ProviderTimeout
from imagegen.testing import FakeClock, slow

pytestmark = pytest.mark.anyio


class CountingState(MemoryState):
    """MemoryState counting the calls made on it."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    async def set(self, key: str, value: bytes, *, ttl: float | None = None) -> None:
        self.calls += 1
        await super().set(key, value, ttl=ttl)


def generator(clock: FakeClock, **kw: Any) -> ImageGenerator:
    kw.setdefault("providers", [slow("a", 10.0)])
    return ImageGenerator(storage=MemoryStorage(), clock=clock, max_in_flight=2, **kw)


async def test_the_rest_wait_without_doing_anything(clock: FakeClock) -> None:
    """Five at once, two turns: three hold nothing (no record written) until a turn frees."""
    state = CountingState()
    provider = slow("a", 10.0)
    gen = generator(clock, providers=[provider], state=state, timeout=60.0)
    results: list[ImageResult] = []

    async def one() -> None:
        results.append(await gen.generate("x", width=64, height=64))

    async with anyio.create_task_group() as tg:
        for _ in range(5):
            tg.start_soon(one)
        await clock.sleep(5.0)
        assert provider.calls == 2
        running = len(await state.scan("imagegen::record:"))
        assert running == 2  # the three waiting have no record yet
        await clock.sleep(10.0)
        assert provider.calls == 4
    assert provider.calls == 5
    assert [r.provider for r in results] == ["a"] * 5
    assert clock.monotonic() == pytest.approx(30.0)


async def test_a_turn_that_comes_too_late_is_the_default_image(clock: FakeClock) -> None:
    """Its providers' time is up while it waits: no provider is called, the default image
    comes by its deadline, and the attempts say why."""
    provider = slow("a", 10.0)
    gen = generator(clock, providers=[provider])
    late: list[ImageResult] = []

    async def hurried() -> None:
        await clock.sleep(1.0)  # after the two that take the turns
        late.append(await gen.generate("x", width=64, height=64, timeout=5.0))
        assert clock.monotonic() <= 6.0

    async with anyio.create_task_group() as tg:
        tg.start_soon(gen.generate, "x")
        tg.start_soon(gen.generate, "x")
        tg.start_soon(hurried)
    assert provider.calls == 2
    [result] = late
    assert result.is_default
    [attempt] = result.attempts
    assert attempt.outcome == "skipped"
    assert isinstance(attempt.error, ProviderTimeout)
    assert "no turn came before its providers' time was up" in str(attempt.error)


async def test_a_waiting_job_is_pending(clock: FakeClock) -> None:
    gen = generator(clock)
    async with gen:
        ids = [await gen.submit("x", width=64, height=64) for _ in range(3)]
        await clock.sleep(1.0)
        statuses = {i: (await gen.job(i)).status for i in ids}  # type: ignore[union-attr]
        assert sorted(statuses.values()) == ["pending", "running", "running"]
        [waiting] = [i for i, status in statuses.items() if status == "pending"]
        await clock.sleep(10.0)
        assert (await gen.job(waiting)).status == "running"  # type: ignore[union-attr]
        result = await gen.wait(waiting)
    assert result.provider == "a"


async def test_no_limit_runs_everyone_at_once(clock: FakeClock) -> None:
    provider = slow("a", 10.0)
    gen = ImageGenerator(providers=[provider], clock=clock, max_in_flight=None)
    async with anyio.create_task_group() as tg:
        for _ in range(50):
            tg.start_soon(gen.generate, "x")
        await clock.sleep(1.0)
        assert provider.calls == 50
