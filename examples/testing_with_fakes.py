"""Test code that uses imagegen without waiting and without a network.

FakeClock makes time virtual: inside `async with FakeClock()`, time jumps to the
next sleep or deadline whenever every task is blocked. The fake providers are
instant, slow, failing or hanging on demand.

Run: python examples/testing_with_fakes.py   (or point pytest at functions like these)
"""

from __future__ import annotations

import anyio

from imagegen import Hedge, ImageGenerator, ProviderUnavailable, Retry
from imagegen.testing import EventRecorder, FakeClock, failing, hanging, slow


async def hanging_provider_loses_the_race() -> None:
    async with FakeClock() as clock:
        gen = ImageGenerator(providers=[hanging("a"), slow("b", 2.0)], clock=clock)
        result = await gen.generate("a red fox")
        assert result.provider == "b"
        assert clock.monotonic() == 2.0  # two virtual seconds, no real waiting
        assert [a.outcome for a in result.attempts] == ["success", "cancelled"]


async def hedge_waits_before_the_second_call() -> None:
    async with FakeClock() as clock:
        first, second = slow("first", 10.0), slow("second", 1.0)
        gen = ImageGenerator(
            providers=[first, second], strategy=Hedge(delay=3.0, budget=1.0), clock=clock
        )
        result = await gen.generate("a red fox")
        assert (result.provider, clock.monotonic()) == ("second", 4.0)


async def everything_down_gives_the_default_image() -> None:
    async with FakeClock() as clock:
        events = EventRecorder()
        gen = ImageGenerator(
            providers=[failing("a", ProviderUnavailable)],
            retry=Retry(attempts=3),
            hooks=[events],
            clock=clock,
        )
        result = await gen.generate("a red fox")
        assert result.is_default
        assert result.attempts[0].tries == 3
        assert len(events.of("retry_scheduled")) == 2


async def main() -> None:
    await hanging_provider_loses_the_race()
    await hedge_waits_before_the_second_call()
    await everything_down_gives_the_default_image()
    print("all three checks passed")


if __name__ == "__main__":
    anyio.run(main)
