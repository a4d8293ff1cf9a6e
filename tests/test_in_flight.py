"""max_in_flight: at most N generations, and N provider calls, at once per generator; the
rest wait their turn."""

from __future__ import annotations

import anyio
import anyio.abc
import pytest

from imagegen import (
    AllProvidersFailed,
    CircuitBreaker,
    ImageGenerator,
    ImageRequest,
    InvalidConfig,
    Provider,
    ProviderContext,
    ProviderImage,
    ProviderTimeout,
    Retry,
)
from imagegen.testing import FakeClock, FakeProvider, failing, instant, tiny_png

pytestmark = pytest.mark.anyio


class Counted(Provider):
    """Takes ``delay`` virtual seconds per call and remembers the most calls at once."""

    def __init__(self, name: str = "counted", *, delay: float = 1.0) -> None:
        super().__init__(name=name)
        self.delay = delay
        self.running = 0
        self.peak = 0
        self.calls = 0

    async def generate(self, request: ImageRequest, ctx: ProviderContext) -> ProviderImage:
        self.calls += 1
        self.running += 1
        self.peak = max(self.peak, self.running)
        try:
            await ctx.clock.sleep(self.delay)
        finally:
            self.running -= 1
        return ProviderImage(data=tiny_png(), width=8, height=8)


class Gate(Provider):
    """Each call tells ``entered`` and waits for ``gate``; no timers, so no autojump."""

    def __init__(self, name: str = "gate") -> None:
        super().__init__(name=name)
        self.gate = anyio.Event()
        self.entered = anyio.Event()
        self.calls = 0

    async def generate(self, request: ImageRequest, ctx: ProviderContext) -> ProviderImage:
        self.calls += 1
        self.entered.set()
        await self.gate.wait()
        return ProviderImage(data=tiny_png(), width=8, height=8)


class TestSetting:
    """The setting is checked when the generator is built."""

    @pytest.mark.parametrize("value", [0, -1, True, 2.5, "4"])
    def test_bad_values_name_the_field(self, value: object) -> None:
        """Zero, negatives, bools, floats and strings are refused, naming the field."""
        with pytest.raises(InvalidConfig) as caught:
            ImageGenerator(providers=[instant()], max_in_flight=value)  # type: ignore[arg-type]
        assert caught.value.field == "max_in_flight"
        assert "int >= 1" in str(caught.value)

    def test_default_matches_the_http_pool(self) -> None:
        """The default is the size of the generator's own HTTP pool, and it is read-only."""
        gen = ImageGenerator(providers=[instant()])
        assert gen.max_in_flight == 100
        with pytest.raises(AttributeError):
            gen.max_in_flight = 5  # type: ignore[misc]


def fails_once_then_waits(clock: FakeClock) -> tuple[ImageGenerator, FakeProvider]:
    """One turn and one call slot; a provider whose first call times out, then a 5 s
    backoff before the retry."""
    flaky = failing("flaky", error=ProviderTimeout)
    flaky.fail = None
    flaky.errors = [ProviderTimeout]
    gen = ImageGenerator(
        providers=[flaky],
        clock=clock,
        max_in_flight=1,
        retry=Retry(attempts=2, initial=5.0, maximum=5.0, jitter=False),
    )
    return gen, flaky


class TestLimit:
    """Calls beyond the limit wait, first come first served, and all complete."""

    async def test_at_most_n_calls_at_once(self) -> None:
        """Six callers, two slots: two calls at a time, in three waves, all succeed."""
        provider = Counted(delay=1.0)
        async with FakeClock() as clock:
            gen = ImageGenerator(providers=[provider], clock=clock, max_in_flight=2)
            results = []

            async def one(i: int) -> None:
                results.append(await gen.generate(f"fox {i}"))

            async with anyio.create_task_group() as group:
                for i in range(6):
                    group.start_soon(one, i)
            assert provider.peak == 2
            assert len(results) == 6
            assert all(not r.is_default for r in results)
            # Three waves of two one-second calls.
            assert clock.monotonic() == pytest.approx(3.0)
            await gen.aclose()

    async def test_none_means_no_limit(self) -> None:
        """With None, 150 callers all call at once."""
        provider = Counted(delay=1.0)
        async with FakeClock() as clock:
            gen = ImageGenerator(providers=[provider], clock=clock, max_in_flight=None)
            async with anyio.create_task_group() as group:
                for i in range(150):
                    group.start_soon(gen.generate, f"fox {i}")
            assert provider.peak == 150
            assert clock.monotonic() == pytest.approx(1.0)
            await gen.aclose()

    async def test_default_limit_is_100(self) -> None:
        """By default 150 callers run as 100 calls, then 50."""
        provider = Counted(delay=1.0)
        async with FakeClock() as clock:
            gen = ImageGenerator(providers=[provider], clock=clock)
            async with anyio.create_task_group() as group:
                for i in range(150):
                    group.start_soon(gen.generate, f"fox {i}")
            assert provider.peak == 100
            assert provider.calls == 150
            assert clock.monotonic() == pytest.approx(2.0)
            await gen.aclose()

    async def test_a_retry_backoff_frees_the_call_slot(self) -> None:
        """While one image of a generation sleeps before its retry, the other image's call
        runs: the backoff holds the generation's turn, not a call slot."""
        async with FakeClock() as clock:
            gen, flaky = fails_once_then_waits(clock)
            result = await gen.generate("two", n=2)
            # One image met the failure and slept 5 s before its retry; the other one's
            # call ran during that backoff instead of waiting for it.
            assert len(result.images) == 2
            assert flaky.calls == 3
            assert clock.monotonic() == pytest.approx(5.0)
            await gen.aclose()

    async def test_a_generation_waits_for_a_turn(self) -> None:
        """With one turn, a second generation starts when the first ends (its backoff
        included), never in the middle of it."""
        async with FakeClock() as clock:
            gen, flaky = fails_once_then_waits(clock)
            finished: list[float] = []

            async def one(prompt: str) -> None:
                await gen.generate(prompt)
                finished.append(clock.monotonic())

            async with anyio.create_task_group() as group:
                group.start_soon(one, "first")
                group.start_soon(one, "second")
            assert flaky.calls == 3
            assert finished == [pytest.approx(5.0), pytest.approx(5.0)]
            await gen.aclose()


async def _second_caller_fails(gen: ImageGenerator, stuck: Gate) -> AllProvidersFailed:
    """One caller holds the only turn on ``stuck``; a second one, with a 10 s timeout,
    waits for it. Returns the second one's error (the first is cancelled after)."""
    async with anyio.create_task_group() as group:
        group.start_soon(gen.generate, "holds the only slot")
        await stuck.entered.wait()
        gen.configure(timeout=10.0)
        with pytest.raises(AllProvidersFailed) as caught:
            await gen.generate("waits")
        group.cancel_scope.cancel()
    return caught.value


class TestWaitingOut:
    """A caller that cannot get a slot before its deadline gets a structured error."""

    async def test_deadline_passes_while_waiting(self) -> None:
        """The wait for a turn ends with a ProviderTimeout naming max_in_flight; nothing is
        counted."""
        stuck = Gate("stuck")
        async with FakeClock() as clock:
            gen = ImageGenerator(
                providers=[stuck],
                clock=clock,
                timeout=100.0,
                max_in_flight=1,
                default_image=None,
                breaker=CircuitBreaker(failure_threshold=1),
            )
            failed = await _second_caller_fails(gen, stuck)
            attempt = failed.attempts[0]
            assert attempt.provider == "stuck"
            assert attempt.tries == 0
            assert isinstance(attempt.error, ProviderTimeout)
            assert "no turn came" in str(attempt.error)
            assert "max_in_flight" in str(attempt.error)
            # Nothing was sent: the provider was called once (by the first caller), and
            # neither its breaker nor its statistics count the wait as its failure.
            assert stuck.calls == 1
            assert gen.providers_status()[0]["breaker"] == "closed"
            [row] = await gen.stats()
            assert row.failures == 0
            assert row.requests == 1  # the first caller's call, cancelled
            record = await gen.record(failed.generation_id or "")
            assert record is not None
            assert record.status == "failed"
            await gen.aclose()

    async def test_a_call_waits_for_a_slot_within_the_time_left(self) -> None:
        """Two images, one call slot, the first image's call holding it: the second waits
        for the slot until the providers' time is up, then says why; nothing was sent."""
        stuck = Gate("stuck")
        async with FakeClock() as clock:
            gen = ImageGenerator(
                providers=[stuck], clock=clock, max_in_flight=1, default_image=None, timeout=10.0
            )
            with pytest.raises(AllProvidersFailed) as caught:
                await gen.generate("two", n=2)
            [waited] = [a for a in caught.value.attempts if a.tries == 0]
            assert waited.elapsed == pytest.approx(9.0)  # 10 s less the 10 % kept back
            assert isinstance(waited.error, ProviderTimeout)
            assert "no free call slot" in str(waited.error)
            assert stuck.calls == 1
            await gen.aclose()

    async def test_a_cancelled_waiter_leaves_no_slot_behind(self) -> None:
        """A caller cancelled while waiting takes no slot with it."""
        provider = Gate()
        gen = ImageGenerator(providers=[provider], max_in_flight=1)
        results = []

        async def one(prompt: str) -> None:
            results.append(await gen.generate(prompt))

        async def waiter(*, task_status: anyio.abc.TaskStatus[anyio.CancelScope]) -> None:
            with anyio.CancelScope() as scope:
                task_status.started(scope)
                await gen.generate("cancelled while waiting")

        async with anyio.create_task_group() as group:
            group.start_soon(one, "first")
            await provider.entered.wait()
            scope = await group.start(waiter)
            await anyio.wait_all_tasks_blocked()
            scope.cancel()
            await anyio.wait_all_tasks_blocked()
            group.start_soon(one, "third")
            await anyio.wait_all_tasks_blocked()
            assert provider.calls == 1  # "third" waits for "first"'s slot
            provider.gate.set()
        assert len(results) == 2
        assert not any(r.is_default for r in results)
        assert provider.calls == 2  # the cancelled caller never called the provider
        await gen.aclose()
