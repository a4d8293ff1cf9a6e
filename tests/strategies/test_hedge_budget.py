"""Hedge's budget of extra calls: a token bucket on the generator's clock.

Each generation earns ``budget`` of an extra call, each extra call spends one, the bucket
starts with ``burst`` and holds at most ``burst`` plus the last ``window``'s earnings. The
property tests check the documented guarantees against an oracle written from them (counts of
generations and extras), not against the bucket's own arithmetic.
"""

from __future__ import annotations

import anyio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from imagegen import Hedge, ImageGenerator, Retry
from imagegen.strategies import HedgeBudget, LatencyWindow
from imagegen.strategies._hedge import CUT_OFF_LIMIT
from imagegen.testing import FakeClock, hanging, instant, slow

pytestmark = pytest.mark.anyio

NO_RETRY = Retry(attempts=1)


class TestBucket:
    def test_starts_with_the_floor(self) -> None:
        """Before any generation has earned anything, ``floor`` extra calls are there."""
        budget = HedgeBudget(FakeClock())
        assert [budget.try_spend(0.1, 60.0, floor=3) for _ in range(4)] == [
            True,
            True,
            True,
            False,
        ]

    def test_ten_generations_at_a_tenth_pay_for_one_call(self) -> None:
        """Earnings are exact enough: 10 x 0.1 pays for one call, 9 x 0.1 does not."""
        budget = HedgeBudget(FakeClock())
        for _ in range(9):
            budget.record_generation(60.0)
        assert not budget.try_spend(0.1, 60.0)
        budget.record_generation(60.0)
        assert budget.try_spend(0.1, 60.0)
        assert not budget.try_spend(0.1, 60.0)

    def test_savings_and_the_floor_add_up(self) -> None:
        """A quiet stretch's savings pay for a later bunch, on top of the floor."""
        budget = HedgeBudget(FakeClock())
        for _ in range(40):
            budget.record_generation(60.0)
        assert budget.balance(0.1, 60.0, floor=2) == pytest.approx(6.0)
        spent = 0
        while budget.try_spend(0.1, 60.0, floor=2):
            spent += 1
        assert spent == 6

    def test_savings_expire_with_the_traffic_that_earned_them(self) -> None:
        """The bucket holds at most the floor plus the last window's earnings."""
        clock = FakeClock()
        budget = HedgeBudget(clock)
        for _ in range(50):
            budget.record_generation(60.0)
        assert budget.balance(0.1, 60.0, floor=1) == pytest.approx(6.0)
        clock.advance(61.0)
        budget.record_generation(60.0)  # the 50 are out of the window now
        assert budget.balance(0.1, 60.0, floor=1) == pytest.approx(1.1)
        assert budget.try_spend(0.1, 60.0, floor=1)
        assert not budget.try_spend(0.1, 60.0, floor=1)

    def test_a_quiet_generator_earns_no_more_than_its_generations(self) -> None:
        """One generation every two minutes: not a floor per window (that would be one
        extra per generation), only what the generations earn."""
        clock = FakeClock()
        budget = HedgeBudget(clock)
        spent = 0
        for _ in range(30):
            clock.advance(120.0)
            budget.record_generation(60.0)
            spent += budget.try_spend(0.1, 60.0, floor=1)
        # The floor, then one per ten generations: 30 x 0.1 earned.
        assert spent == 1 + 3

    def test_keep_leaves_tokens_for_others(self) -> None:
        """``keep`` refuses a call that would leave less than that many in the bucket."""
        budget = HedgeBudget(FakeClock())
        assert budget.try_spend(0.0, 60.0, floor=3, keep=2)
        assert not budget.try_spend(0.0, 60.0, floor=3, keep=2)
        assert budget.try_spend(0.0, 60.0, floor=3, keep=1)
        assert budget.try_spend(0.0, 60.0, floor=3)
        assert budget.balance(0.0, 60.0, floor=3) == 0

    @settings(max_examples=200, deadline=None)
    @given(
        steps=st.lists(
            st.tuples(
                st.sampled_from(["generation", "spend", "wait"]),
                st.floats(min_value=0.0, max_value=90.0),
            ),
            max_size=300,
        ),
        fraction=st.sampled_from([0.0, 0.05, 0.1, 0.25, 1.0]),
        floor=st.integers(min_value=0, max_value=5),
    )
    def test_never_more_than_earned_plus_the_floor(
        self, steps: list[tuple[str, float]], fraction: float, floor: int
    ) -> None:
        """Whatever the pattern: all along, extras <= fraction x generations + floor; over
        any stretch, extras <= fraction x (generations in it and in the window before it)
        + floor."""
        window = 60.0
        clock = FakeClock()
        budget = HedgeBudget(clock)
        generations: list[float] = []
        extras: list[float] = []
        for kind, seconds in steps:
            if kind == "wait":
                clock.advance(seconds)
            elif kind == "generation":
                budget.record_generation(window)
                generations.append(clock.monotonic())
            elif budget.try_spend(fraction, window, floor=floor):
                extras.append(clock.monotonic())
            assert len(extras) <= fraction * len(generations) + floor + 1e-6
        for start in {*extras, *generations}:
            spent = sum(1 for t in extras if t >= start)
            earned = sum(1 for t in generations if t > start - window)
            assert spent <= fraction * earned + floor + 1e-6


class TestHedgeSpends:
    async def test_long_run_stays_within_budget_plus_burst(self, clock: FakeClock) -> None:
        """Fifty slow generations in a row: 3 hedges from the burst, then one per ten."""
        a, b = slow("a", 10.0), slow("b", 1.0)
        gen = ImageGenerator(
            providers=[a, b],
            strategy=Hedge(delay=1.0, budget=0.1, burst=3),
            retry=NO_RETRY,
            timeout=60.0,
            clock=clock,
        )
        providers = [(await gen.generate("x")).provider for _ in range(50)]
        assert b.calls == 3 + 5
        assert providers[:3] == ["b", "b", "b"]
        # 0.3 left after the burst, 0.1 earned per generation: the tenth is hedged.
        assert providers[3:10] == ["a"] * 6 + ["b"]

    async def test_a_bunch_of_slow_calls_hedges_after_a_quiet_stretch(
        self, clock: FakeClock
    ) -> None:
        """Twenty quick generations save 2 hedges; with the burst of 2, four slow calls at
        once are all hedged (a budget of 10% of the window's generations, or the burst,
        whichever is larger, would hedge only two)."""
        a, b = slow("a", 0.5), slow("b", 1.0)
        gen = ImageGenerator(
            providers=[a, b],
            strategy=Hedge(delay=1.0, budget=0.1, burst=2),
            retry=NO_RETRY,
            timeout=60.0,
            clock=clock,
        )
        for _ in range(20):
            assert (await gen.generate("x")).provider == "a"
        assert b.calls == 0
        a.delay = 10.0
        winners: list[str] = []

        async def one() -> None:
            winners.append((await gen.generate("x")).provider)

        start = clock.monotonic()
        async with anyio.create_task_group() as group:
            for _ in range(4):
                group.start_soon(one)
        assert winners == ["b"] * 4
        assert clock.monotonic() - start == pytest.approx(2.0)

    @pytest.mark.parametrize(("burst", "winner", "c_calls"), [(2, "b", 0), (4, "c", 1)])
    async def test_second_hedge_leaves_half_the_burst(
        self, clock: FakeClock, burst: int, winner: str, c_calls: int
    ) -> None:
        """A second extra call for one generation needs ``burst / 2`` left after it, so the
        first hedges of other slow calls come first: with 2 in the bucket the third
        provider waits (and b wins), with 4 it starts."""
        a, b, c = slow("a", 10.0), slow("b", 5.0), slow("c", 0.5)
        gen = ImageGenerator(
            providers=[a, b, c],
            strategy=Hedge(delay=1.0, budget=0.0, burst=burst),
            retry=NO_RETRY,
            timeout=60.0,
            clock=clock,
        )
        result = await gen.generate("x")
        assert (result.provider, c.calls) == (winner, c_calls)
        assert clock.monotonic() == pytest.approx(6.0 if winner == "b" else 2.5)

    async def test_a_hanging_primary_still_reaches_its_breaker(self, clock: FakeClock) -> None:
        """Hedged around and cut off, a hanging primary's calls are no failures: after five
        in a row it is not hedged around any more, its calls time out, and its breaker opens
        after five of those, however much budget is left (20 here)."""
        a, b = hanging("a"), instant("b")
        a.timeout = 2.0
        gen = ImageGenerator(
            providers=[a, b],
            strategy=Hedge(delay=0.5, burst=20),
            retry=NO_RETRY,
            timeout=30.0,
            clock=clock,
        )
        took = []
        for _ in range(12):
            start = clock.monotonic()
            assert (await gen.generate("x")).provider == "b"
            took.append(clock.monotonic() - start)
        assert took == pytest.approx([0.5] * CUT_OFF_LIMIT + [2.0] * 5 + [0.0] * 2)
        assert a.calls == CUT_OFF_LIMIT + 5

    def test_no_first_hedge_around_a_provider_that_stopped_answering(self) -> None:
        """The rule, directly: five calls cut off in a row stop a first hedge (not a second
        one for the same generation), and one answer lifts it."""
        hedge, budget, latencies = Hedge(), HedgeBudget(FakeClock()), LatencyWindow()
        for _ in range(CUT_OFF_LIMIT - 1):
            latencies.add(0.5, answered=False)
        assert hedge.may_hedge(budget, 0, latencies)
        latencies.add(0.5, answered=False)
        assert not hedge.may_hedge(budget, 0, latencies)
        assert hedge.may_hedge(budget, 1, latencies)
        latencies.add(0.2)
        assert latencies.cut_off_in_a_row == 0
        assert hedge.may_hedge(budget, 0, latencies)

    def test_defaults(self) -> None:
        """The defaults the benchmarks chose: budget 0.1, quantile 0.92, burst 20."""
        hedge = Hedge()
        assert (hedge.budget, hedge.quantile, hedge.burst, hedge.window) == (0.1, 0.92, 20, 60.0)
