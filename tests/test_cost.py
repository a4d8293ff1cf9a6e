"""Attempt.cost and ImageResult.cost: USD billed, losers and retries included, never guessed."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import httpx
import pytest
from benchmarks.emulator import Emulator, Fixed, ProviderProfile, ProviderStats

from cli_support import SMALL, run_cli
from imagegen import (
    AllProvidersFailed,
    DownloadPolicy,
    Hedge,
    ImageGenerator,
    ImageRequest,
    ImageResult,
    InvalidConfig,
    MemoryState,
    MemoryStorage,
    Placeholder,
    ProviderUnavailable,
    Race,
    Retry,
    Selection,
)
from imagegen.providers import Provider, ProviderContext, ProviderImage
from imagegen.server import create_app
from imagegen.testing import FakeClock, FakeProvider, failing, instant, slow, tiny_png

pytestmark = pytest.mark.anyio

POLICY = DownloadPolicy(allow_http=True, allow_private_networks=True)


def gen_of(providers: list[Provider], clock: FakeClock, **kw: Any) -> ImageGenerator:
    return ImageGenerator(providers=providers, storage=MemoryStorage(), clock=clock, **kw)


class TestSums:
    async def test_a_race_pays_for_its_losers(self, clock: FakeClock) -> None:
        """Three providers with remote work each: the winner and both losers are billed."""
        providers: list[Provider] = [
            slow("a", 1.0, handle="a", price_per_image=0.01),
            slow("b", 2.0, handle="b", price_per_image=0.02),
            slow("c", 3.0, handle="c", price_per_image=0.03),
        ]
        async with gen_of(providers, clock, strategy=Race()) as gen:
            result = await gen.generate("x")
        assert result.provider == "a"
        costs = {a.provider: a.cost for a in result.attempts}
        assert costs == {"a": 0.01, "b": 0.02, "c": 0.03}
        assert result.cost == pytest.approx(0.06)

    async def test_a_hedge_pays_for_the_extra_call(self, clock: FakeClock) -> None:
        providers: list[Provider] = [
            slow("a", 5.0, handle="a", price_per_image=0.04),
            slow("b", 1.0, handle="b", price_per_image=0.01),
        ]
        async with gen_of(providers, clock, strategy=Hedge(delay=0.5)) as gen:
            result = await gen.generate("x")
        assert result.provider == "b"
        assert result.cost == pytest.approx(0.05)

    async def test_a_refused_try_costs_nothing(self, clock: FakeClock) -> None:
        """A 503 answered before any work, then an image: one image's price."""
        flaky = FakeProvider(
            "a", errors=[ProviderUnavailable("busy", status=503)], price_per_image=0.02
        )
        gen = gen_of([flaky], clock, retry=Retry(attempts=3))
        result = await gen.generate("x")
        assert result.attempts[0].tries == 2
        assert result.cost == 0.02

    async def test_a_free_provider_costs_zero(self, clock: FakeClock) -> None:
        result = await gen_of([Placeholder()], clock).generate("x", width=64, height=64)
        assert result.cost == 0.0
        assert result.attempts[0].cost == 0.0

    async def test_an_unknown_price_makes_the_sum_unknown(self, clock: FakeClock) -> None:
        """One attempt of unknown cost: the generation's cost is None, not a partial sum."""
        providers: list[Provider] = [
            slow("a", 1.0, handle="a", price_per_image=0.01),
            slow("b", 2.0, handle="b"),  # price not known
        ]
        async with gen_of(providers, clock, strategy=Race()) as gen:
            result = await gen.generate("x")
        assert {a.provider: a.cost for a in result.attempts} == {"a": 0.01, "b": None}
        assert result.cost is None

    async def test_failures_carry_their_costs(self, clock: FakeClock) -> None:
        """Every provider failed after making remote work: the error's attempts say what
        it cost."""
        gen = gen_of([failing("a", handle="a", price_per_image=0.03)], clock, default_image=None)
        with pytest.raises(AllProvidersFailed) as caught:
            await gen.generate("x")
        assert [a.cost for a in caught.value.attempts] == [0.03]


class Told(Provider):
    """Says what its image cost."""

    async def generate(self, request: ImageRequest, ctx: ProviderContext) -> ProviderImage:
        return ProviderImage(data=tiny_png(), cost=0.0123)


class Unanswered(Provider):
    """Sends a create that is never answered (a stalled vendor)."""

    timeout = 1.0

    async def generate(self, request: ImageRequest, ctx: ProviderContext) -> ProviderImage:
        await ctx.protect_create(anyio.sleep_forever, lambda _v, _c: anyio.lowlevel.checkpoint())
        raise AssertionError("unreachable")


class Finishes(Unanswered):
    bills_unanswered = True


class TestWhatIsKnown:
    async def test_the_answer_says_what_it_cost(self, clock: FakeClock) -> None:
        result = await gen_of([Told(price_per_image=1.0)], clock).generate("x")
        assert result.cost == 0.0123

    @pytest.mark.parametrize(("cls", "cost"), [(Unanswered, None), (Finishes, 0.5)])
    async def test_an_unanswered_create(
        self, clock: FakeClock, cls: type[Unanswered], cost: float | None
    ) -> None:
        """Billed by a vendor that finishes the work anyway; otherwise nobody can tell."""
        gen = gen_of([cls(price_per_image=0.5)], clock, default_image=None, timeout=5.0)
        with pytest.raises(AllProvidersFailed) as caught:
            await gen.generate("x")
        [attempt] = caught.value.attempts
        assert attempt.tries == 1  # never re-posted
        assert attempt.cost == cost


class TestStatistics:
    async def test_per_day_and_provider(self, clock: FakeClock) -> None:
        state = MemoryState()
        providers: list[Provider] = [
            slow("a", 1.0, handle="a", price_per_image=0.25),
            slow("b", 2.0, handle="b"),
        ]
        async with gen_of(providers, clock, strategy=Race(), state=state) as gen:
            for _ in range(3):
                await gen.generate("x")
            rows = {row.provider: row for row in await gen.stats()}
        assert rows["a"].cost == pytest.approx(0.75)
        assert rows["a"].cost_unknown == 0
        assert rows["b"].cost == 0.0
        assert rows["b"].cost_unknown == 3

    async def test_in_the_record_and_the_http_answer(self, clock: FakeClock) -> None:
        gen = gen_of([instant("a", price_per_image=0.02)], clock, state=MemoryState())
        transport = httpx.ASGITransport(app=create_app(gen))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            answer = await http.post("/images/generate", json={"prompt": "x"})
        body = answer.json()
        assert body["cost"] == 0.02
        assert body["attempts"][0]["cost"] == 0.02
        record = await gen.record(body["id"])
        assert record is not None
        assert [a.cost for a in record.attempts] == [0.02]


@pytest.mark.parametrize("bad", [-0.01, math.nan, math.inf, True, "0.1"])
def test_a_bad_price_is_refused(bad: object) -> None:
    with pytest.raises(InvalidConfig, match="price_per_image") as caught:
        FakeProvider("a", price_per_image=bad)  # type: ignore[arg-type]
    assert caught.value.field == "price_per_image"


def test_the_cli_shows_cost(tmp_path: Path) -> None:
    """`imagegen stats` has a cost column; --json has cost and cost_unknown."""
    assert run_cli(tmp_path, "generate", "a fox", *SMALL).returncode == 0
    table = run_cli(tmp_path, "stats")
    assert table.returncode == 0, table.stderr
    header, row = table.stdout.splitlines()[:2]
    assert header.split()[-2:] == ["cost", "$"]
    assert row.split()[1] == "placeholder"
    assert row.split()[-1] == "0.0000"
    data = json.loads(run_cli(tmp_path, "stats", "--json").stdout)
    assert (data[0]["cost"], data[0]["cost_unknown"]) == (0.0, 0)


async def on_the_emulator(
    slow: str, strategy: Selection
) -> tuple[ImageResult, dict[str, ProviderStats]]:
    """One generation with Replicate and fal (queued) on the emulator, ``slow`` taking
    5 s, ``strategy`` choosing between them; the result and each vendor's counters."""
    profiles = {
        name: ProviderProfile(api=name, latency=Fixed(5.0 if name == slow else 0.0))  # type: ignore[arg-type]
        for name in (slow, "fal" if slow == "replicate" else "replicate")
    }
    options: dict[str, dict[str, Any]] = {
        "replicate": {"poll_interval": 0.05},
        "fal": {"queue": True, "poll_interval": 0.05},
    }
    async with Emulator(profiles) as emu:
        gen = ImageGenerator(
            providers=[emu.provider(name, **options[name]) for name in profiles],
            strategy=strategy,
            retry=Retry(attempts=1),
            download=POLICY,
            default_image=None,
        )
        async with gen:
            result = await gen.generate("a fox", width=1024, height=1024)
        return result, {name: emu.stats(name) for name in profiles}


def charged(stats: dict[str, ProviderStats]) -> float:
    """What the vendors charge: both bill the outputs made, $0.003 each (flux-schnell)."""
    return sum(vendor.outputs * 0.003 for vendor in stats.values())


class TestAgainstTheEmulatorsCharges:
    """What imagegen adds up is what the vendors would charge, losers included."""

    async def test_a_cancelled_loser_at_vendors_that_bill_outputs(self) -> None:
        """Replicate wins a race; fal's queued job is cancelled before it made its image:
        fal charges nothing (it bills outputs), and neither does the sum."""
        result, stats = await on_the_emulator("fal", Race())
        assert result.provider == "replicate"
        assert {a.provider: a.cost for a in result.attempts} == {"replicate": 0.003, "fal": 0.0}
        assert stats["fal"].billed == 1  # the job existed...
        assert stats["fal"].outputs == 0  # ...and was stopped before its image
        assert result.cost == pytest.approx(charged(stats))

    async def test_a_hedge_pays_for_both_calls_as_the_vendors_charge(self) -> None:
        """fal is slow: the hedge asks Replicate too, and Replicate wins. fal's queued
        job is cancelled by its id before its image: the sum is what each made."""
        result, stats = await on_the_emulator("fal", Hedge(initial_delay=0.2))
        assert result.provider == "replicate"
        outcomes = {a.provider: (a.outcome, a.cost) for a in result.attempts}
        assert outcomes == {"fal": ("cancelled", 0.0), "replicate": ("success", 0.003)}
        assert (stats["fal"].billed, stats["fal"].outputs) == (1, 0)
        assert result.cost == pytest.approx(charged(stats))

    async def test_a_loser_whose_create_is_held_open_costs_what_is_not_known(self) -> None:
        """Replicate is slow and loses a hedge while its create is held open
        (``Prefer: wait``): whether it will be charged is not known when the result is
        returned (its image may yet be made), so the sum is None, never a guess."""
        result, _ = await on_the_emulator("replicate", Hedge(initial_delay=0.2))
        outcomes = {a.provider: (a.outcome, a.cost) for a in result.attempts}
        assert outcomes == {"replicate": ("cancelled", None), "fal": ("success", 0.003)}
        assert result.cost is None
