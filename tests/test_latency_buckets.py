"""Latency statistics: log-spaced buckets resolve 1 ms calls as well as 70 s ones."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Mapping

import pytest

from imagegen import ImageGenerator, MemoryState
from imagegen._tracking import LATENCY_BUCKETS, Tracker, quantile
from imagegen.testing import FakeClock, slow

pytestmark = pytest.mark.anyio

DAY = dt.date(2026, 1, 1)
#: The ratio between neighbouring bucket edges: the resolution promised.
RATIO = LATENCY_BUCKETS[1] / LATENCY_BUCKETS[0]
LATENCIES = (0.001, 0.003, 0.04, 2.0, 70.0)


def near(estimate: float | None, true: float) -> bool:
    """Whether ``estimate`` is within one bucket's ratio of ``true``."""
    return estimate is not None and true / RATIO <= estimate <= true * RATIO


class Batched(MemoryState):
    """Keeps every incr_many batch."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[list[str]] = []

    async def incr_many(self, amounts: Mapping[str, int], *, ttl: float | None = None) -> None:
        self.batches.append(list(amounts))
        await super().incr_many(amounts, ttl=ttl)


def test_the_layout_is_log_spaced_and_bounded() -> None:
    """From 1 ms past ten minutes, ten buckets a decade, each edge ~1.26x the one before."""
    assert LATENCY_BUCKETS[0] == pytest.approx(0.001)
    assert LATENCY_BUCKETS[-1] >= 600.0
    assert len(LATENCY_BUCKETS) < 64
    assert pytest.approx(10**0.1) == RATIO
    for lower, upper in itertools.pairwise(LATENCY_BUCKETS):
        assert upper / lower == pytest.approx(RATIO)


def test_one_call_reads_back_within_a_bucket() -> None:
    """Any latency from 1 ms to ~600 s reads back within one bucket ratio of itself."""
    for k in range(215):
        true = 1e-3 * 10 ** (k / 37)
        index = sum(edge < true for edge in LATENCY_BUCKETS)
        histogram = [0] * (len(LATENCY_BUCKETS) + 1)
        histogram[index] = 1
        for q in (0.5, 0.9, 0.99):
            assert near(quantile(histogram, q), true), (true, q)


def test_the_open_bucket_reports_its_floor() -> None:
    """Above the last edge all that is known is the edge: it is reported."""
    histogram = [0] * len(LATENCY_BUCKETS) + [3]
    assert quantile(histogram, 0.5) == LATENCY_BUCKETS[-1]
    assert quantile([0] * (len(LATENCY_BUCKETS) + 1), 0.5) is None


async def test_generations_of_each_latency(clock: FakeClock) -> None:
    """Calls of 1 ms, 3 ms, 40 ms, 2 s and 70 s: each provider's p50/p90/p99 near its own."""
    state = MemoryState()
    for true in LATENCIES:
        provider = slow(f"p{true}", delay=true)
        async with ImageGenerator(providers=[provider], state=state, clock=clock) as gen:
            for _ in range(3):
                await gen.generate("x", timeout=120.0)
    async with ImageGenerator(providers=[slow("any")], state=state, clock=clock) as gen:
        rows = {row.provider: row for row in await gen.stats()}
    for true in LATENCIES:
        row = rows[f"p{true}"]
        assert row.successes == 3
        for estimate in (row.p50, row.p90, row.p99):
            assert near(estimate, true), (true, estimate)


async def test_a_mix_resolves_each_quantile() -> None:
    """50 calls of 3 ms, 40 of 40 ms, 9 of 2 s and 1 of 70 s: p50, p90, p99 each in place."""
    tracker = Tracker(MemoryState())
    for true, calls in ((0.003, 50), (0.04, 40), (2.0, 9), (70.0, 1)):
        for _ in range(calls):
            await tracker.count("p", day=DAY, outcome="success", latency=true)
    [row] = await tracker.stats()
    assert row.requests == 100
    assert near(row.p50, 0.003)
    assert near(row.p90, 0.04)
    assert near(row.p99, 2.0)


async def test_a_call_writes_one_latency_counter() -> None:
    """requests, the outcome and one `lt.<i>` bucket, in one batch, whatever the latency."""
    state = Batched()
    tracker = Tracker(state)
    for true in LATENCIES:
        await tracker.count("p", day=DAY, outcome="success", latency=true)
    names = [[key.rsplit(":", 1)[1] for key in batch] for batch in state.batches]
    assert [batch[:2] for batch in names] == [["requests", "success"]] * len(LATENCIES)
    assert all(len(batch) == 3 and batch[2].startswith("lt.") for batch in names)
    buckets = [batch[2] for batch in names]
    assert len(set(buckets)) == len(LATENCIES)  # each resolved in a bucket of its own


async def test_counters_of_the_old_layout_are_ignored() -> None:
    """`lat.<i>` counters (the linear layout before) are not read as `lt.<i>` ones."""
    state = MemoryState()
    tracker = Tracker(state)
    old = f"stats:{DAY.isoformat()}:p:"
    await state.incr(old + "requests", 5)
    await state.incr(old + "success", 5)
    await state.incr(old + "lat.0", 5)  # 0-50 ms under the old layout
    [row] = await tracker.stats()
    assert (row.requests, row.p50, row.p99) == (5, None, None)
    await tracker.count("p", day=DAY, outcome="success", latency=2.0)
    [row] = await tracker.stats()
    assert row.requests == 6
    assert near(row.p50, 2.0)


async def test_variants_use_the_same_buckets() -> None:
    """A variant's whole-generation latencies are read back the same way."""
    tracker = Tracker(MemoryState())
    for true in (0.003, 0.003, 70.0):
        await tracker.count_variant("e", "v", day=DAY, outcome="succeeded", calls=1, latency=true)
    [row] = await tracker.variant_stats()
    assert near(row.p50, 0.003)
    assert near(row.p99, 70.0)
    assert row.generations == 3
