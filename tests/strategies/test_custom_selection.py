"""A user's own Selection subclass, used without changing imagegen; the Tier it is handed."""

from __future__ import annotations

import logging

import attrs
import pytest

from imagegen import (
    AllProvidersFailed,
    ImageGenerator,
    InvalidConfig,
    MemoryState,
    Provider,
    Race,
    Retry,
    Selection,
    Tier,
)
from imagegen.strategies import selection_kinds
from imagegen.testing import EventRecorder, FakeClock, failing, hanging, instant, slow

pytestmark = pytest.mark.anyio


@attrs.frozen
class LastFirst(Selection):
    """Fallback in reverse priority order: the tests' own strategy."""

    async def select(self, tier: Tier) -> None:
        providers = tier.providers[::-1]
        for index, provider in enumerate(providers):
            if await tier.attempt(provider, deadline=tier.share(len(providers) - index)):
                return

    def stages(self, providers: int) -> int:
        return providers


@attrs.frozen(kw_only=True)
class Pair(Selection):
    """Race the first ``size`` providers, then the rest one by one (fields travel in JSON)."""

    size: int = 2

    async def select(self, tier: Tier) -> None:
        if await tier.run(tier.providers[: self.size]):
            return
        await tier.run(tier.providers[self.size :], launch_delay=lambda _: None)


class CountsLosses(Selection):
    """Races everything and counts what lost calls teach it (state kept outside the value)."""

    def __init__(self) -> None:
        self.lost_calls: list[tuple[str, float]] = []

    async def select(self, tier: Tier) -> None:
        await tier.run()

    def lost(self, tier: Tier, provider: Provider, elapsed: float) -> None:
        self.lost_calls.append((provider.name, elapsed))


class Broken(Selection):
    """A selection with a bug."""

    async def select(self, tier: Tier) -> None:
        raise RuntimeError("oops")


class Sneaky(Selection):
    """Calls a provider its tier did not admit."""

    kind = "sneaky-kind"

    def __init__(self, other: Provider) -> None:
        self.other = other

    async def select(self, tier: Tier) -> None:
        await tier.attempt(self.other, deadline=tier.share())


def started(recorder: EventRecorder) -> list[str]:
    return [e.provider or "" for e in recorder.of("attempt_started")]


class TestUsersOwnSelection:
    async def test_subclass_decides_the_order(self, clock: FakeClock) -> None:
        """A subclass passed as strategy= decides who is called, and in what order."""
        rec = EventRecorder()
        gen = ImageGenerator(
            providers=[instant("a"), failing("b"), failing("c")],
            strategy=LastFirst(),
            retry=Retry(attempts=1),
            hooks=[rec],
            clock=clock,
        )
        result = await gen.generate("x")
        assert result.provider == "a"
        assert started(rec) == ["c", "b", "a"]

    async def test_stages_split_the_deadline(self, clock: FakeClock) -> None:
        """stages() gives each provider of the chain its own share: a hang cannot eat it all."""
        gen = ImageGenerator(
            providers=[slow("a", 1.0), hanging("b")], strategy=LastFirst(), timeout=30, clock=clock
        )
        result = await gen.generate("x")
        assert result.provider == "a"
        hung = result.attempts[0]
        assert hung.provider == "b"
        assert hung.error is not None
        assert hung.error.kind == "ProviderTimeout"
        assert hung.elapsed == pytest.approx((30 - 1) / 2)

    async def test_run_on_a_subset_then_the_rest(self, clock: FakeClock) -> None:
        """Tier.run races the subset it is given; the rest follow one by one."""
        rec = EventRecorder()
        gen = ImageGenerator(
            providers=[failing("a"), failing("b"), failing("c"), instant("d")],
            strategy=Pair(size=2),
            retry=Retry(attempts=1),
            hooks=[rec],
            clock=clock,
        )
        result = await gen.generate("x")
        assert result.provider == "d"
        assert sorted(started(rec)[:2]) == ["a", "b"]
        assert started(rec)[2:] == ["c", "d"]

    async def test_lost_calls_reach_the_selection(self, clock: FakeClock) -> None:
        """lost() hears of every call cut off because another provider won."""
        selection = CountsLosses()
        gen = ImageGenerator(
            providers=[slow("fast", 1.0), hanging("stuck")], strategy=selection, clock=clock
        )
        assert (await gen.generate("x")).provider == "fast"
        assert selection.lost_calls == [("stuck", 1.0)]

    async def test_a_bug_in_the_selection_still_gets_the_default_image(
        self, clock: FakeClock, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A selection that raises is logged; the caller gets the default image, not the bug."""
        gen = ImageGenerator(providers=[instant("a")], strategy=Broken(), clock=clock)
        with caplog.at_level(logging.ERROR, logger="imagegen"):
            result = await gen.generate("x")
        assert result.is_default
        assert "RuntimeError: oops" in caplog.text

    async def test_a_selection_that_tries_nobody_fails_cleanly(self, clock: FakeClock) -> None:
        """Without a default image, a selection that wins nothing is AllProvidersFailed."""
        gen = ImageGenerator(
            providers=[instant("a")], strategy=Broken(), default_image=None, clock=clock
        )
        with pytest.raises(AllProvidersFailed):
            await gen.generate("x")

    async def test_only_admitted_providers_can_be_called(self, clock: FakeClock) -> None:
        """Calling a provider the breaker kept out is refused with InvalidConfig."""
        kept_out = instant("b")
        gen = ImageGenerator(
            providers=[instant("a"), kept_out], strategy=Sneaky(kept_out), clock=clock
        )
        await gen.breaker_for("b").force_open()
        with pytest.raises(InvalidConfig) as info:
            await gen.generate("x")
        assert info.value.field == "strategy"
        assert kept_out.calls == 0

    def test_a_non_selection_is_refused(self) -> None:
        """strategy= must be a Selection; the error names the field."""
        with pytest.raises(InvalidConfig) as info:
            ImageGenerator(providers=[instant("a")], strategy="race")  # type: ignore[arg-type]
        assert info.value.field == "strategy"


class TestSettingsJson:
    def test_kind_and_fields_travel(self) -> None:
        """settings() names a user's selection by its kind, with its attrs fields."""
        gen = ImageGenerator(providers=[instant("a")], strategy=Pair(size=3))
        assert gen.settings()["strategy"] == {"kind": "pair", "size": 3}
        gen.configure(strategy=Race())
        gen.update_settings({"strategy": {"kind": "pair", "size": 1}})
        assert gen.strategy == Pair(size=1)

    def test_plain_classes_travel_by_kind(self) -> None:
        """A selection that is not an attrs class is named by kind alone."""
        gen = ImageGenerator(providers=[instant("a")], strategy=CountsLosses())
        assert gen.settings()["strategy"] == {"kind": "countslosses"}

    def test_unknown_kind_lists_the_known_ones(self) -> None:
        """An unknown kind is refused, and the message lists the kinds there are."""
        gen = ImageGenerator(providers=[instant("a")])
        with pytest.raises(InvalidConfig) as info:
            gen.update_settings({"strategy": {"kind": "nope"}})
        assert info.value.field == "strategy.kind"
        for kind in ("race", "hedge", "fallback", "pair"):
            assert kind in str(info.value)

    def test_unknown_field_is_named(self) -> None:
        """A field the selection does not have is named, dotted."""
        gen = ImageGenerator(providers=[instant("a")])
        with pytest.raises(InvalidConfig) as info:
            gen.update_settings({"strategy": {"kind": "pair", "sizes": 2}})
        assert info.value.field == "strategy.sizes"

    def test_arguments_a_selection_needs_are_reported(self) -> None:
        """A kind whose class needs arguments cannot be built from JSON: a clear error."""
        gen = ImageGenerator(providers=[instant("a")])
        with pytest.raises(InvalidConfig) as info:
            gen.update_settings({"strategy": {"kind": "sneaky-kind"}})
        assert info.value.field == "strategy"

    async def test_shared_settings_carry_a_users_selection(self, clock: FakeClock) -> None:
        """A generator adopts a user's selection published by another on the same backend."""
        state = MemoryState()
        one = ImageGenerator(providers=[instant("a")], state=state, clock=clock)
        two = ImageGenerator(providers=[instant("a")], state=state, clock=clock, config_ttl=0)
        one.configure(strategy=Pair(size=4))
        await one.publish_config()
        clock.advance(1.0)
        await two.refresh_config()
        assert two.strategy == Pair(size=4)

    def test_two_classes_with_one_kind_are_an_error(self) -> None:
        """Two Selection classes sharing a kind make the lookup fail with a clear message."""

        class Twin(Selection):
            kind = "pair"

            async def select(self, tier: Tier) -> None:
                return None

        try:
            with pytest.raises(InvalidConfig) as info:
                selection_kinds()
            assert "pair" in str(info.value)
        finally:
            Twin.kind = "twin-of-pair"
        assert selection_kinds()["pair"] is Pair

    def test_builtins_are_known(self) -> None:
        """Race, Hedge and Fallback are found by their kinds."""
        kinds = selection_kinds()
        assert {kinds["race"].__name__, kinds["hedge"].__name__, kinds["fallback"].__name__} == {
            "Race",
            "Hedge",
            "Fallback",
        }
