"""SpendingCap: a provider over its daily cap (or all over the overall one) is skipped
before anything is sent, with the reason in its attempt; its breaker never hears of it."""

from __future__ import annotations

import datetime as dt
from typing import Any

import anyio
import pytest

from imagegen import (
    AllProvidersFailed,
    Fallback,
    ImageGenerator,
    InvalidConfig,
    MemoryState,
    MemoryStorage,
    Placeholder,
    Race,
    SpendingCap,
    SpendingCapReached,
)
from imagegen._spending import REFRESH
from imagegen.providers import Provider
from imagegen.testing import FakeClock, FakeProvider, FaultyState, instant, slow

pytestmark = pytest.mark.anyio


def gen_of(
    providers: list[Provider], clock: FakeClock, cap: SpendingCap, **kw: Any
) -> ImageGenerator:
    kw.setdefault("strategy", Fallback())
    return ImageGenerator(
        providers=providers, storage=MemoryStorage(), clock=clock, spending_cap=cap, **kw
    )


def cents(name: str, price: float = 0.01) -> FakeProvider:
    return instant(name, price_per_image=price)


def refusal(attempts: Any, provider: str) -> SpendingCapReached:
    (attempt,) = [a for a in attempts if a.provider == provider]
    assert attempt.outcome == "skipped"
    assert isinstance(attempt.error, SpendingCapReached)
    return attempt.error


class TestPerProvider:
    async def test_over_its_cap_it_is_skipped_and_the_next_serves(self, clock: FakeClock) -> None:
        a, b = cents("a"), cents("b")
        gen = gen_of([a, b], clock, SpendingCap(per_provider={"a": 0.02}))
        served = [(await gen.generate("x")).provider for _ in range(3)]
        assert served == ["a", "a", "b"]
        assert (a.calls, b.calls) == (2, 1)
        result = await gen.generate("x")
        error = refusal(result.attempts, "a")
        assert (error.provider, error.cap) == ("a", 0.02)
        assert error.spent == pytest.approx(0.02)
        assert str(error) == (
            "a has spent $0.02 today (UTC) and this call would cost $0.01, its cap is $0.02"
        )
        # Not a failure of a's: its breaker counted nothing.
        snapshot = await gen.breaker_for("a").snapshot()
        assert snapshot.failures == 0

    async def test_a_provider_without_a_cap_is_never_held(self, clock: FakeClock) -> None:
        a = cents("a")
        gen = gen_of([a], clock, SpendingCap(per_provider={"other": 0.0}))
        for _ in range(5):
            assert (await gen.generate("x")).provider == "a"

    async def test_unknown_costs_count_nothing(self, clock: FakeClock) -> None:
        """A provider whose price is not known is never stopped by what it cannot count."""
        a = instant("a")  # price not known
        gen = gen_of([a], clock, SpendingCap(per_provider={"a": 0.001}, daily=0.001))
        for _ in range(3):
            result = await gen.generate("x")
            assert (result.provider, result.cost) == ("a", None)


class TestOverall:
    async def test_no_call_that_would_pass_the_cap_is_made(self, clock: FakeClock) -> None:
        """$0.03 spent of $0.05: a ($0.03 more) would pass it, b ($0.02) would not."""
        a, b = cents("a", 0.03), cents("b", 0.02)
        gen = gen_of([a, b], clock, SpendingCap(daily=0.05))
        served = [(await gen.generate("x")).provider for _ in range(2)]
        assert served == ["a", "b"]
        result = await gen.generate("x")  # $0.05 spent: nothing more fits
        assert result.is_default
        assert refusal(result.attempts, "a").cap == 0.05
        assert refusal(result.attempts, "b").spent == pytest.approx(0.05)
        assert (a.calls, b.calls) == (1, 1)

    async def test_a_free_provider_is_never_held(self, clock: FakeClock) -> None:
        a = cents("a", 0.05)
        gen = gen_of([a, Placeholder()], clock, SpendingCap(daily=0.05))
        served = [(await gen.generate("x", width=64, height=64)).provider for _ in range(3)]
        assert served == ["a", "placeholder", "placeholder"]

    async def test_a_call_of_unknown_price_is_made_until_the_cap(self, clock: FakeClock) -> None:
        """Its price not known, a provider is held only once the day reached the cap."""
        a, b = cents("a", 0.03), instant("b")
        gen = gen_of([a, b], clock, SpendingCap(daily=0.05))
        served = [(await gen.generate("x")).provider for _ in range(3)]
        assert served == ["a", "b", "b"]  # $0.03 spent: a would pass, b may go

    async def test_without_a_default_image_the_error_says_why(self, clock: FakeClock) -> None:
        gen = gen_of([cents("a", 0.05)], clock, SpendingCap(daily=0.05), default_image=None)
        await gen.generate("x")
        with pytest.raises(AllProvidersFailed) as caught:
            await gen.generate("x")
        message = str(caught.value)
        assert message.startswith("no provider could be called")
        assert "SpendingCapReached" in message

    async def test_a_race_skips_only_those_over(self, clock: FakeClock) -> None:
        a, b = cents("a", 0.05), slow("b", 1.0, price_per_image=0.01)
        cap = SpendingCap(per_provider={"a": 0.05})
        gen = gen_of([a, b], clock, cap, strategy=Race())
        assert (await gen.generate("x")).provider == "a"
        assert (a.calls, b.calls) == (1, 1)
        result = await gen.generate("x")
        assert result.provider == "b"
        assert (a.calls, b.calls) == (1, 2)


class TestShared:
    async def test_another_process_spending_counts(self, clock: FakeClock) -> None:
        """Two generators on one backend: the second reads what the first spent."""
        state = MemoryState()
        cap = SpendingCap(per_provider={"a": 0.02})
        first = gen_of([cents("a")], clock, cap, state=state)
        for _ in range(2):
            await first.generate("x")
        a = cents("a")
        second = gen_of([a, cents("b")], clock, cap, state=state)
        assert (await second.generate("x")).provider == "b"
        assert a.calls == 0

    async def test_read_again_within_the_refresh_interval(self, clock: FakeClock) -> None:
        """The figures are at most REFRESH seconds old: then the other's spending shows."""
        state = MemoryState()
        cap = SpendingCap(per_provider={"a": 0.02})
        a = cents("a")
        watcher = gen_of([a, cents("b")], clock, cap, state=state)
        assert (await watcher.generate("x")).provider == "a"  # read: nothing spent yet
        spender = gen_of([cents("a")], clock, cap, state=state)
        await spender.generate("x")
        await spender.generate("x")
        assert (await watcher.generate("x")).provider == "a"  # its figures: $0.01
        await clock.sleep(REFRESH)
        assert (await watcher.generate("x")).provider == "b"
        assert a.calls == 2

    async def test_a_burst_at_start_waits_for_the_first_read(self, clock: FakeClock) -> None:
        """Ten at once, the day already over the cap: not one of them calls the provider."""
        state = MemoryState()
        cap = SpendingCap(per_provider={"a": 0.01})
        await gen_of([cents("a")], clock, cap, state=state).generate("x")
        a = cents("a")
        gen = gen_of([a, cents("b")], clock, cap, state=state)
        async with anyio.create_task_group() as tg:
            for _ in range(10):
                tg.start_soon(gen.generate, "x")
        assert a.calls == 0

    async def test_a_new_utc_day_starts_from_nothing(self, clock: FakeClock) -> None:
        a = cents("a")
        gen = gen_of([a, cents("b")], clock, SpendingCap(per_provider={"a": 0.01}))
        await gen.generate("x")
        assert (await gen.generate("x")).provider == "b"
        now = dt.datetime.fromtimestamp(clock.time(), dt.UTC)
        midnight = dt.datetime.combine(now.date() + dt.timedelta(days=1), dt.time(), dt.UTC)
        await clock.sleep(midnight.timestamp() - clock.time() + 1)
        assert (await gen.generate("x")).provider == "a"


class TestBackendFaults:
    async def test_a_failing_backend_keeps_this_processs_own_spending(
        self, clock: FakeClock
    ) -> None:
        """The backend stops answering after the cap is reached: the cap holds."""
        state = FaultyState(MemoryState(), clock=clock)
        a = cents("a")
        gen = gen_of([a, cents("b")], clock, SpendingCap(per_provider={"a": 0.01}), state=state)
        await gen.generate("x")
        state.fail_all = True
        await clock.sleep(REFRESH)
        assert (await gen.generate("x")).provider == "b"
        assert a.calls == 1

    async def test_a_backend_down_from_the_start_stops_nothing(self, clock: FakeClock) -> None:
        """Nothing known of the day, the backend down: providers are called (and each
        call this process makes still counts against the cap)."""
        state = FaultyState(MemoryState(), clock=clock)
        state.fail_all = True
        a = cents("a")
        gen = gen_of([a, cents("b")], clock, SpendingCap(per_provider={"a": 0.02}), state=state)
        served = [(await gen.generate("x")).provider for _ in range(3)]
        assert served == ["a", "a", "b"]


class TestSettings:
    def test_shown_on_the_generator(self) -> None:
        cap = SpendingCap(daily=5, per_provider={"openai": 2.5})
        assert ImageGenerator(providers=[cents("openai")], spending_cap=cap).spending_cap == cap
        assert cap.to_dict() == {"daily": 5, "per_provider": {"openai": 2.5}}
        assert ImageGenerator(providers=[cents("a")]).spending_cap is None

    @pytest.mark.parametrize(
        ("fields", "field"),
        [
            ({"daily": -1}, "daily"),
            ({"daily": float("nan")}, "daily"),
            ({"daily": True}, "daily"),
            ({"daily": "5"}, "daily"),
            ({"per_provider": {"a": -0.5}}, "per_provider"),
            ({"per_provider": {"a": "1"}}, "per_provider"),
            ({"per_provider": [("a", 1)]}, "per_provider"),
        ],
    )
    def test_bad_caps_are_refused(self, fields: dict[str, Any], field: str) -> None:
        with pytest.raises(InvalidConfig) as caught:
            SpendingCap(**fields)
        assert caught.value.field == field

    def test_only_a_spending_cap_is_taken(self) -> None:
        with pytest.raises(InvalidConfig) as caught:
            ImageGenerator(providers=[cents("a")], spending_cap=5)  # type: ignore[arg-type]
        assert caught.value.field == "spending_cap"
