"""Experiments: variants assigned by weight, sticky by key, named in records, counted apart."""

from __future__ import annotations

import collections
import datetime as dt
from typing import Any

import httpx
import pytest

from imagegen import (
    Experiment,
    Fallback,
    Hedge,
    ImageGenerator,
    InvalidConfig,
    InvalidRequest,
    MemoryState,
    Race,
    Variant,
)
from imagegen.server import create_app
from imagegen.testing import EventRecorder, FakeClock, failing, instant, slow

pytestmark = pytest.mark.anyio

RACE_VS_FALLBACK = Experiment(
    "race-vs-fallback",
    [
        Variant("race", weight=1, settings={"strategy": Race()}),
        Variant("fallback", weight=3, settings={"strategy": Fallback()}),
    ],
)


class TestAssignment:
    """Variants are drawn by weight; a key always gets the same one."""

    def test_weights_are_respected(self) -> None:
        """Over 20,000 keys, a 1:3 split lands within 2 points of 25% / 75%."""
        counts = collections.Counter(
            RACE_VS_FALLBACK.assign(f"user-{i}").name for i in range(20_000)
        )
        assert abs(counts["race"] / 20_000 - 0.25) < 0.02
        assert abs(counts["fallback"] / 20_000 - 0.75) < 0.02

    def test_unkeyed_draws_follow_the_weights(self) -> None:
        """Without a key each draw is random, still by weight."""
        counts = collections.Counter(RACE_VS_FALLBACK.assign().name for _ in range(20_000))
        assert abs(counts["race"] / 20_000 - 0.25) < 0.02

    def test_sticky_by_key(self) -> None:
        """The same key gets the same variant every time, and an equal experiment agrees."""
        twin = Experiment(
            "race-vs-fallback",
            [
                Variant("race", weight=1, settings={"strategy": Race()}),
                Variant("fallback", weight=3, settings={"strategy": Fallback()}),
            ],
        )
        for i in range(200):
            first = RACE_VS_FALLBACK.assign(f"k{i}")
            assert RACE_VS_FALLBACK.assign(f"k{i}") == first
            assert twin.assign(f"k{i}") == first

    def test_experiment_name_reshuffles(self) -> None:
        """Another experiment splits the same keys independently."""
        other = Experiment("other", RACE_VS_FALLBACK.variants)
        same = sum(RACE_VS_FALLBACK.assign(f"k{i}") == other.assign(f"k{i}") for i in range(2_000))
        assert same < 2_000 * 0.75  # independent draws agree ~62.5% of the time

    @pytest.mark.parametrize(
        ("make", "field"),
        [
            (lambda: Variant("bad name"), "variant"),
            (lambda: Variant("a", weight=0), "weight"),
            (lambda: Variant("a", weight=float("nan")), "weight"),
            (lambda: Variant("a", weight=True), "weight"),
            (lambda: Variant("a", settings=["strategy"]), "settings"),
            (lambda: Experiment("x", []), "variants"),
            (lambda: Experiment("x", [Variant("a"), Variant("a")]), "variants"),
            (lambda: Experiment("x", ["a"]), "variants"),
            (lambda: Experiment("", [Variant("a")]), "experiment"),
        ],
    )
    def test_validation(self, make: Any, field: str) -> None:
        """Bad names, weights, settings and variant lists name the field."""
        with pytest.raises(InvalidConfig) as info:
            make()
        assert info.value.field == field


class TestGenerator:
    """A generator with an experiment runs each generation with its variant's settings."""

    async def test_variant_settings_apply(self, clock: FakeClock) -> None:
        """Race calls both providers; Fallback only the first, which answers."""
        a, b = slow("a", delay=1.0), slow("b", delay=2.0)
        experiment = Experiment(
            "e",
            [
                Variant("race", settings={"strategy": Race()}),
                Variant("fallback", settings={"strategy": Fallback()}),
            ],
        )
        gen = ImageGenerator(providers=[a, b], clock=clock, experiment=experiment)
        race_key = next(f"k{i}" for i in range(100) if experiment.assign(f"k{i}").name == "race")
        fall_key = next(f"k{i}" for i in range(100) if experiment.assign(f"k{i}").name != "race")
        raced = await gen.generate("a fox", experiment_key=race_key)
        assert (a.calls, b.calls) == (1, 1)
        fell = await gen.generate("a fox", experiment_key=fall_key)
        assert (a.calls, b.calls) == (2, 1)
        assert (raced.variant, fell.variant) == ("race", "fallback")
        record = await gen.record(fell.id)
        assert record is not None
        assert record.variant == "fallback"
        assert isinstance(gen.strategy, Race)  # the base settings are untouched

    async def test_stats_per_variant(self, clock: FakeClock) -> None:
        """Each variant's generations, outcomes, calls and latency are counted apart."""
        experiment = Experiment(
            "e",
            [
                Variant("control"),
                Variant("broken", settings={"enabled": {"good": False}}),
            ],
        )
        gen = ImageGenerator(
            providers=[failing("bad"), slow("good", delay=0.5, tier=1)],
            clock=clock,
            experiment=experiment,
            state=MemoryState(),
        )
        keys = {experiment.assign(f"k{i}").name: f"k{i}" for i in range(50)}
        for _ in range(3):
            await gen.generate("a fox", experiment_key=keys["control"])
        for _ in range(2):
            result = await gen.generate("a fox", experiment_key=keys["broken"])
            assert result.is_default
        rows = {row.variant: row for row in await gen.variant_stats()}
        control, broken = rows["control"], rows["broken"]
        assert (control.generations, control.succeeded, control.defaults) == (3, 3, 0)
        assert (broken.generations, broken.succeeded, broken.defaults) == (2, 0, 2)
        assert control.calls == 3 * 2  # bad (not retryable) and good, per generation
        assert broken.calls == 2 * 1
        assert control.p50 is not None
        assert 0.25 <= control.p50 <= 0.5  # 0.5 s generations: their bucket (0.398, 0.501]
        assert control.experiment == "e"
        today = clock.time()
        day = dt.datetime.fromtimestamp(today, tz=dt.UTC).date()
        assert control.day == day
        assert await gen.variant_stats(since=day + dt.timedelta(days=1)) == []
        assert await gen.variant_stats(experiment="other") == []
        assert len(await gen.variant_stats(until=day, experiment="e")) == 2

    async def test_failed_generations_count_as_failed(self, clock: FakeClock) -> None:
        """Without a default image, a variant's failures are counted as failed."""
        experiment = Experiment("e", [Variant("only")])
        gen = ImageGenerator(
            providers=[failing("bad")], clock=clock, experiment=experiment, default_image=None
        )
        with pytest.raises(Exception, match="all providers failed"):
            await gen.generate("a fox")
        (row,) = await gen.variant_stats()
        assert (row.generations, row.failed) == (1, 1)

    async def test_event_and_job_carry_the_variant(self, clock: FakeClock) -> None:
        """generation_started names the variant; a submitted job's result does too."""
        recorder = EventRecorder()
        experiment = Experiment("e", [Variant("v", settings={"strategy": Hedge(delay=1.0)})])
        async with ImageGenerator(
            providers=[instant()], clock=clock, experiment=experiment, hooks=[recorder]
        ) as gen:
            job_id = await gen.submit("a fox", experiment_key="user-1")
            result = await gen.wait(job_id, timeout=5)
        assert result.variant == "v"
        assert recorder.of("generation_started")[0].data["variant"] == "v"

    async def test_without_experiment_nothing_changes(self, clock: FakeClock) -> None:
        """No experiment: no variant on results, no variant stats."""
        recorder = EventRecorder()
        gen = ImageGenerator(providers=[instant()], clock=clock, hooks=[recorder])
        result = await gen.generate("a fox", experiment_key="ignored")
        assert result.variant is None
        assert "variant" not in recorder.of("generation_started")[0].data
        assert await gen.variant_stats() == []

    @pytest.mark.parametrize("key", ["", "x" * 257, 42])
    async def test_bad_key(self, clock: FakeClock, key: Any) -> None:
        """experiment_key must be a short string; nothing runs otherwise."""
        provider = instant()
        gen = ImageGenerator(providers=[provider], clock=clock)
        with pytest.raises(InvalidRequest) as info:
            await gen.generate("a fox", experiment_key=key)
        assert info.value.field == "experiment_key"
        assert provider.calls == 0

    def test_variants_checked_against_the_generator(self) -> None:
        """A variant naming an unknown provider, or a bad value, is refused up front."""
        experiment = Experiment("e", [Variant("v", settings={"enabled": {"ghost": True}})])
        with pytest.raises(InvalidConfig) as info:
            ImageGenerator(providers=[instant()], experiment=experiment)
        assert info.value.field == "experiment"
        assert "variant 'v'" in str(info.value)
        with pytest.raises(InvalidConfig) as info:
            ImageGenerator(providers=[instant()], experiment="e")  # type: ignore[arg-type]
        assert info.value.field == "experiment"

    async def test_variant_follows_configure(self, clock: FakeClock) -> None:
        """A variant applies on top of the current settings, even after configure()."""
        a, b = instant("a"), instant("b")
        experiment = Experiment("e", [Variant("v", settings={"strategy": Fallback()})])
        gen = ImageGenerator(providers=[a, b], clock=clock, experiment=experiment)
        await gen.generate("a fox")
        gen.configure(priority=["b"])
        result = await gen.generate("a fox")
        assert result.provider == "b"
        assert (a.calls, b.calls) == (1, 1)


class TestServer:
    """The HTTP API takes an experiment key and reports variant statistics."""

    async def test_key_and_stats_over_http(self, clock: FakeClock) -> None:
        """POST with experiment_key names the variant; /admin/stats lists variants."""
        experiment = Experiment("e", [Variant("a"), Variant("b")])
        gen = ImageGenerator(providers=[instant()], clock=clock, experiment=experiment)
        app = create_app(gen, admin_token="t")
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            made = await client.post(
                "/images/generate", json={"prompt": "a fox", "experiment_key": "user-7"}
            )
            assert made.status_code == 200
            assert made.json()["variant"] == experiment.assign("user-7").name
            bad = await client.post("/images/generate", json={"prompt": "x", "experiment_key": 1})
            assert bad.status_code == 422
            assert bad.json()["errors"][0]["field"] == "experiment_key"
            stats = await client.get("/admin/stats", headers={"Authorization": "Bearer t"})
        (row,) = stats.json()["variants"]
        assert row["variant"] == made.json()["variant"]
        assert row["generations"] == 1
