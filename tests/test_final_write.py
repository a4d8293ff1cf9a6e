"""A generation's bookkeeping: its running record, then its final record together with
its provider calls' counters in one backend call (write_batch), where the backend has one."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from imagegen import ImageGenerator, MemoryState, Race, SQLiteState
from imagegen.testing import FakeClock, failing, instant, slow

pytestmark = pytest.mark.anyio


class Recording(MemoryState):
    """Remembers each write the generator makes: sets and batches of counters. It
    overrides set below MemoryState's write_batch, so the generator does not use that."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, list[str]]] = []

    async def set(self, key: str, value: bytes, *, ttl: float | None = None) -> None:
        self.calls.append(("set", [key]))
        await super().set(key, value, ttl=ttl)

    async def incr_many(self, amounts: Mapping[str, int], *, ttl: float | None = None) -> None:
        self.calls.append(("incr_many", list(amounts)))
        await super().incr_many(amounts, ttl=ttl)


class Written(Recording):
    """A Recording with a write_batch of its own (so it is used), remembered too."""

    async def write_batch(
        self,
        values: Mapping[str, tuple[bytes, float | None]],
        amounts: Mapping[str, int],
        *,
        ttl: float | None = None,
        once: tuple[str, float] | None = None,
    ) -> None:
        self.calls.append(("write_batch", [*values, *amounts]))
        await super().write_batch(values, amounts, ttl=ttl, once=once)


def writes(state: Recording) -> list[tuple[str, list[str]]]:
    """The calls about records and statistics (not breakers, settings...)."""
    wanted = ("imagegen::record:", "imagegen::stats:")
    return [(kind, keys) for kind, keys in state.calls if keys[0].startswith(wanted)]


def whats(keys: list[str]) -> list[str]:
    """The last part of each statistics key, the kind of each record key."""
    return ["record" if ":record:" in k else k.rsplit(":", 2)[-2] + ":" + k.rsplit(":", 1)[1]
            for k in keys]  # fmt: skip


async def test_the_final_record_and_the_counters_are_one_write(clock: FakeClock) -> None:
    state = Written()
    gen = ImageGenerator(providers=[instant("a", price_per_image=0.01)], state=state, clock=clock)
    result = await gen.generate("x")
    (running, _), (final, keys) = writes(state)
    assert (running, final) == ("set", "write_batch")
    assert whats(keys) == ["record", "a:requests", "a:success", "a:lt.0", "a:cost.micros"]
    [row] = await gen.stats()
    assert (row.requests, row.successes, row.cost) == (1, 1, 0.01)
    record = await gen.record(result.id)
    assert record is not None
    assert record.status == "succeeded"


async def test_a_race_and_its_losers_in_the_same_write(clock: FakeClock) -> None:
    state = Written()
    gen = ImageGenerator(
        providers=[slow("a", 1.0), slow("b", 5.0), failing("c")],
        strategy=Race(),
        state=state,
        clock=clock,
    )
    await gen.generate("x")
    (_, _), (final, keys) = writes(state)
    assert final == "write_batch"
    assert {w for w in whats(keys) if w.endswith("requests")} == {
        "a:requests",
        "b:requests",
        "c:requests",
    }
    rows = {row.provider: row for row in await gen.stats()}
    assert (rows["a"].successes, rows["b"].cancelled, rows["c"].failures) == (1, 1, 1)


async def test_several_images_count_in_one_write(clock: FakeClock) -> None:
    state = Written()
    gen = ImageGenerator(providers=[instant("a")], state=state, clock=clock)
    await gen.generate("x", n=3)
    assert [kind for kind, _ in writes(state)] == ["set", "write_batch"]
    [row] = await gen.stats()
    assert row.requests == 3


async def test_a_failed_generation_too(clock: FakeClock) -> None:
    state = Written()
    gen = ImageGenerator(providers=[failing("a")], state=state, clock=clock, default_image=None)
    with pytest.raises(Exception, match="all providers failed"):
        await gen.generate("x")
    assert [kind for kind, _ in writes(state)] == ["set", "write_batch"]
    [row] = await gen.stats()
    assert row.failures == 1


async def test_without_write_batch_the_counters_follow_the_record(clock: FakeClock) -> None:
    """A backend subclass that overrides set alone: its set sees the record, then the
    counters go as one incr_many (write_batch would go around its set)."""

    state = Recording()
    gen = ImageGenerator(providers=[instant("a")], state=state, clock=clock)
    await gen.generate("x")
    assert [kind for kind, _ in writes(state)] == ["set", "set", "incr_many"]


async def test_sqlite_takes_it_in_one_transaction(tmp_path: object) -> None:
    state = SQLiteState(f"{tmp_path}/state.db")
    gen = ImageGenerator(providers=[instant("a")], state=state)
    async with gen:
        result = await gen.generate("x")
        [row] = await gen.stats()
        record = await gen.record(result.id)
    await state.aclose()
    assert row.successes == 1
    assert record is not None
    assert record.status == "succeeded"


async def test_a_record_written_again_counts_its_calls_once(clock: FakeClock) -> None:
    """The final write is tried again (its first try may have landed, or not): the calls
    are counted once either way."""
    state = Written()
    gen = ImageGenerator(providers=[instant("a")], state=state, clock=clock)
    result = await gen.generate("x")
    record = await gen.record(result.id)
    assert record is not None
    # What a late try does: the same record, the same counters, the same once-key.
    ((_, keys),) = [(kind, keys) for kind, keys in writes(state) if kind == "write_batch"]
    amounts = dict.fromkeys(keys[1:], 1)
    await state.write_batch({}, amounts, once=(f"imagegen::counted:{result.id}", 3600.0))
    [row] = await gen.stats()
    assert (row.requests, row.successes) == (1, 1)
