"""Race, Hedge, Fallback and tiers, driven through ImageGenerator with a fake clock."""

from __future__ import annotations

import anyio
import pytest

from imagegen import (
    AllProvidersFailed,
    Fallback,
    Hedge,
    ImageGenerator,
    InvalidConfig,
    ProviderUnavailable,
    Race,
    Retry,
)
from imagegen.strategies import HedgeBudget, LatencyWindow
from imagegen.testing import EventRecorder, FakeClock, failing, hanging, instant, slow

pytestmark = pytest.mark.anyio

NO_RETRY = Retry(attempts=1)


def started(recorder: EventRecorder) -> list[str]:
    return [e.provider or "" for e in recorder.of("attempt_started")]


class TestRace:
    async def test_first_success_wins_while_others_hang(self, clock: FakeClock) -> None:
        """Race returns the first success at its own latency while the others hang."""
        a, b, c = hanging("a", handle="pa"), slow("b", 2.0), slow("c", 5.0)
        gen = ImageGenerator(providers=[a, b, c], strategy=Race(), clock=clock)
        result = await gen.generate("a red fox")
        assert result.provider == "b"
        assert clock.monotonic() == 2.0
        outcomes = {x.provider: x.outcome for x in result.attempts}
        assert outcomes == {"a": "cancelled", "b": "success", "c": "cancelled"}

    async def test_losers_with_remote_work_are_cancelled_remotely(self, clock: FakeClock) -> None:
        """A loser that reported remote work gets Provider.cancel with its handle."""
        a, b = hanging("a", handle="pred"), slow("b", 1.0, handle="other")
        gen = ImageGenerator(providers=[a, b], clock=clock)
        await gen.generate("x")
        assert a.cancelled == ["pred-1"]
        assert b.cancelled == []

    async def test_all_start_at_once(self, clock: FakeClock) -> None:
        """Every provider of the tier is called at time zero."""
        rec = EventRecorder()
        gen = ImageGenerator(
            providers=[slow("a", 3.0), slow("b", 1.0), slow("c", 2.0)], hooks=[rec], clock=clock
        )
        await gen.generate("x")
        assert sorted(started(rec)) == ["a", "b", "c"]

    async def test_failure_of_one_does_not_stop_the_race(self, clock: FakeClock) -> None:
        """An early failure is recorded and the race goes on to the next success."""
        gen = ImageGenerator(
            providers=[failing("a", ProviderUnavailable), slow("b", 1.0)],
            retry=NO_RETRY,
            clock=clock,
        )
        result = await gen.generate("x")
        assert result.provider == "b"
        assert [x.outcome for x in result.attempts] == ["error", "success"]


class TestFallback:
    async def test_priority_order_one_after_another(self, clock: FakeClock) -> None:
        """Fallback calls providers in list order, the next only after the previous failed."""
        rec = EventRecorder()
        a, b, c = failing("a"), failing("b"), instant("c")
        gen = ImageGenerator(
            providers=[a, b, c], strategy=Fallback(), retry=NO_RETRY, hooks=[rec], clock=clock
        )
        result = await gen.generate("x")
        assert result.provider == "c"
        assert started(rec) == ["a", "b", "c"]

    async def test_stops_at_first_success(self, clock: FakeClock) -> None:
        """Later providers are never called once one succeeds."""
        a, b = instant("a"), instant("b")
        gen = ImageGenerator(providers=[a, b], strategy=Fallback(), clock=clock)
        assert (await gen.generate("x")).provider == "a"
        assert b.calls == 0

    async def test_slow_first_provider_leaves_time_for_the_fallback(self, clock: FakeClock) -> None:
        """A hanging first provider gets only its share of the deadline; the fallback still runs."""
        b = slow("b", 1.0)
        gen = ImageGenerator(
            providers=[hanging("a"), b], strategy=Fallback(), timeout=30.0, clock=clock
        )
        result = await gen.generate("x")
        assert result.provider == "b"
        assert result.attempts[0].error is not None
        assert result.attempts[0].error.kind == "ProviderTimeout"
        assert clock.monotonic() < 29.0

    async def test_priority_can_be_changed_at_run_time(self, clock: FakeClock) -> None:
        """configure(priority=...) reorders the fallback chain for the next generation."""
        gen = ImageGenerator(
            providers=[instant("a"), instant("b")], strategy=Fallback(), clock=clock
        )
        gen.configure(priority=["b"])
        assert (await gen.generate("x")).provider == "b"
        assert [p.name for p in gen.providers] == ["b", "a"]


class TestHedge:
    async def test_no_hedge_when_first_answers_before_delay(self, clock: FakeClock) -> None:
        """The second provider is not started when the first answers within the delay."""
        a, b = slow("a", 1.0), instant("b")
        gen = ImageGenerator(providers=[a, b], strategy=Hedge(delay=2.0, budget=1.0), clock=clock)
        result = await gen.generate("x")
        assert result.provider == "a"
        assert b.calls == 0

    async def test_hedges_after_delay(self, clock: FakeClock) -> None:
        """The second provider starts once the delay has passed without an answer."""
        a, b = slow("a", 10.0), slow("b", 1.0)
        gen = ImageGenerator(providers=[a, b], strategy=Hedge(delay=2.0, budget=1.0), clock=clock)
        result = await gen.generate("x")
        assert result.provider == "b"
        assert clock.monotonic() == 3.0
        assert {x.provider: x.outcome for x in result.attempts}["a"] == "cancelled"

    async def test_failure_starts_next_without_waiting(self, clock: FakeClock) -> None:
        """A failure of the running provider starts the next at once, budget or not."""
        b = instant("b")
        gen = ImageGenerator(
            providers=[failing("a"), b],
            strategy=Hedge(delay=5.0, budget=0.0),
            retry=NO_RETRY,
            clock=clock,
        )
        result = await gen.generate("x")
        assert result.provider == "b"
        assert clock.monotonic() == 0.0

    async def test_budget_caps_extra_calls(self, clock: FakeClock) -> None:
        """With budget 0.5, at most one hedge per two generations in the window."""
        a, b = slow("a", 10.0), slow("b", 1.0)
        gen = ImageGenerator(
            providers=[a, b],
            strategy=Hedge(delay=2.0, budget=0.5, burst=0),
            timeout=60.0,
            clock=clock,
        )
        providers = [(await gen.generate("x")).provider for _ in range(4)]
        # Generation 1: 1 extra > 0.5 * 1, no hedge; 2: 1 <= 0.5 * 2, hedge; and so on.
        assert providers == ["a", "b", "a", "b"]
        assert b.calls == 2

    async def test_burst_lets_the_first_generations_hedge(self, clock: FakeClock) -> None:
        """Before the budget has filled, ``burst`` hedges per window go through anyway."""
        a, b = slow("a", 10.0), slow("b", 1.0)
        gen = ImageGenerator(
            providers=[a, b],
            strategy=Hedge(delay=2.0, budget=0.1, burst=2),
            timeout=60.0,
            clock=clock,
        )
        providers = [(await gen.generate("x")).provider for _ in range(3)]
        assert providers == ["b", "b", "a"]  # the third is over both 0.1 x 3 and the burst

    @pytest.mark.parametrize(
        ("provider_timeout", "hedged_at"),
        [(2.0, 0.5), (40.0, 2.0), (None, 2.0)],
    )
    async def test_first_delay_comes_from_the_calls_limit(
        self, clock: FakeClock, provider_timeout: float | None, hedged_at: float
    ) -> None:
        """Before any latency is known, a quarter of the call's limit (the provider's timeout,
        or the stage's share of the deadline), at most 2 s: a primary that hangs from the
        first call is hedged around from the first image."""
        a = hanging("a")
        a.timeout = provider_timeout
        gen = ImageGenerator(
            providers=[a, instant("b")], strategy=Hedge(), timeout=30.0, clock=clock
        )
        result = await gen.generate("x")
        assert result.provider == "b"
        assert clock.monotonic() == pytest.approx(hedged_at)

    async def test_refused_hedge_is_asked_again(self, clock: FakeClock) -> None:
        """A hedge the budget refused is asked for again one delay later, and runs once a
        newer generation has made room."""
        a, b = slow("a", 10.0), slow("b", 1.0)
        gen = ImageGenerator(
            providers=[a, b],
            strategy=Hedge(delay=2.0, budget=0.5, burst=0),
            timeout=60.0,
            clock=clock,
        )
        results = []

        async def one() -> None:
            results.append((await gen.generate("x"), clock.monotonic()))

        async with anyio.create_task_group() as group:
            group.start_soon(one)  # refused at t=2: 1 extra > 0.5 x 1 generation
            await clock.sleep(3.0)
            group.start_soon(one)  # now 2 generations: room for 1 extra
        first, finished = results[0]
        # Asked again at t=4, hedged, and b answered 1 s later.
        assert (first.provider, finished) == ("b", 5.0)
        assert b.calls == 1

    async def test_lost_calls_teach_the_delay(self, clock: FakeClock) -> None:
        """A hedged call that lost counts as at least as slow as it ran: the learned delay
        grows past the latency of the calls that win."""
        a, b = slow("a", 10.0), slow("b", 1.0)
        strategy = Hedge(delay=None, budget=1.0, min_samples=2, initial_delay=1.0)
        gen = ImageGenerator(providers=[a, b], strategy=strategy, timeout=60.0, clock=clock)
        for _ in range(2):  # hedged at 1 s (initial_delay); a loses after 2 s each time
            await gen.generate("x")
        start = clock.monotonic()
        assert (await gen.generate("x")).provider == "b"
        # Learned from a's two lost calls (2 s each): hedged at 2 s, b done at 3 s.
        assert clock.monotonic() - start == pytest.approx(3.0)

    async def test_learned_delay_uses_recent_latency(self, clock: FakeClock) -> None:
        """With delay=None the hedge waits the running provider's p90 latency once learned."""
        a = slow("a", 1.0)
        b = slow("b", 0.5)
        strategy = Hedge(delay=None, budget=1.0, min_samples=3, initial_delay=50.0)
        gen = ImageGenerator(providers=[a, b], strategy=strategy, timeout=100.0, clock=clock)
        for _ in range(3):
            assert (await gen.generate("x")).provider == "a"
        assert b.calls == 0
        a.delay = 10.0  # a slows down: the learned 1 s delay now triggers the hedge
        start = clock.monotonic()
        result = await gen.generate("x")
        assert result.provider == "b"
        assert clock.monotonic() - start == pytest.approx(1.5)

    async def test_initial_delay_before_enough_samples(self, clock: FakeClock) -> None:
        """Without enough samples the learned delay falls back to initial_delay."""
        a, b = slow("a", 10.0), instant("b")
        gen = ImageGenerator(
            providers=[a, b],
            strategy=Hedge(delay=None, budget=1.0, initial_delay=4.0),
            clock=clock,
        )
        await gen.generate("x")
        assert clock.monotonic() == 4.0

    @pytest.mark.parametrize(
        ("kwargs", "field"),
        [
            ({"delay": -1.0}, "delay"),
            ({"budget": 1.5}, "budget"),
            ({"window": 0}, "window"),
            ({"initial_delay": 0}, "initial_delay"),
            ({"burst": -1}, "burst"),
            ({"burst": 1.5}, "burst"),
        ],
    )
    def test_bad_settings_are_refused(self, kwargs: dict[str, float], field: str) -> None:
        """Hedge settings out of range raise InvalidConfig naming the field."""
        with pytest.raises(InvalidConfig) as info:
            Hedge(**kwargs)
        assert info.value.field == field


class TestTiers:
    async def test_lower_tier_only_after_whole_tier_failed(self, clock: FakeClock) -> None:
        """Tier 1 is called only once every provider of tier 0 has failed."""
        stock = instant("stock", tier=1)
        gen = ImageGenerator(
            providers=[failing("a"), failing("b"), stock], retry=NO_RETRY, clock=clock
        )
        result = await gen.generate("x")
        assert result.provider == "stock"
        assert stock.calls == 1

    async def test_higher_tier_untouched_when_tier_zero_succeeds(self, clock: FakeClock) -> None:
        """A success in tier 0 never calls tier 1, whatever the list order."""
        stock = instant("stock", tier=1)
        gen = ImageGenerator(providers=[stock, slow("ai", 3.0)], clock=clock)
        assert (await gen.generate("x")).provider == "ai"
        assert stock.calls == 0

    async def test_disabled_providers_are_not_called(self, clock: FakeClock) -> None:
        """configure(enabled=...) removes a provider from the plan."""
        a, b = instant("a"), instant("b")
        gen = ImageGenerator(providers=[a, b], strategy=Fallback(), clock=clock)
        gen.configure(enabled={"a": False})
        assert (await gen.generate("x")).provider == "b"
        assert a.calls == 0
        gen.configure(enabled={"a": True})
        assert (await gen.generate("x")).provider == "a"

    async def test_all_tiers_failed_raises_with_attempts(self, clock: FakeClock) -> None:
        """With no default image, total failure raises AllProvidersFailed listing each provider."""
        gen = ImageGenerator(
            providers=[failing("a"), failing("s", tier=1)],
            retry=NO_RETRY,
            default_image=None,
            clock=clock,
        )
        with pytest.raises(AllProvidersFailed) as info:
            await gen.generate("x")
        assert [a.provider for a in info.value.attempts] == ["a", "s"]
        assert info.value.generation_id is not None


class TestHelpers:
    def test_latency_window_quantile(self) -> None:
        """Nearest-rank quantile over the kept samples; None below min_samples."""
        window = LatencyWindow(size=10)
        assert window.quantile(0.9) is None
        for value in range(1, 11):
            window.add(float(value))
        assert window.quantile(0.9) == 9.0
        assert window.quantile(0.5) == 5.0
        assert window.quantile(0.9, min_samples=11) is None
        window.add(100.0)  # the oldest sample (1.0) drops out
        assert window.quantile(1.0) == 100.0

    def test_hedge_budget_slides(self) -> None:
        """Old generations and extras leave the window and stop counting."""
        fake = FakeClock()
        budget = HedgeBudget(fake)
        for _ in range(10):
            budget.record_generation(60.0)
        assert budget.try_spend(0.1, 60.0)
        assert not budget.try_spend(0.1, 60.0)
        fake.advance(61.0)
        budget.record_generation(60.0)
        assert not budget.try_spend(0.1, 60.0)
        assert budget.try_spend(1.0, 60.0)
