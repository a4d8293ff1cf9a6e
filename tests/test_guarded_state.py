"""The generator's guard around its state backend: errors become StorageError, stalls are seen."""

from __future__ import annotations

import anyio
import pytest

from imagegen import MemoryState, StorageError
from imagegen._guarded_state import GuardedState
from imagegen.testing import FakeClock, FaultyState

pytestmark = pytest.mark.anyio


class SlowKey(MemoryState):
    """Answers every call at once, but a ``get`` of ``"slow"`` never."""

    async def get(self, key: str) -> bytes | None:
        if key == "slow":
            await anyio.sleep_forever()
        return await super().get(key)


async def give_up(guard: GuardedState, clock: FakeClock, key: str, after: float) -> None:
    """A caller that stops waiting for ``guard.get(key)`` after ``after`` seconds."""
    with clock.deadline_scope(clock.monotonic() + after):
        await guard.get(key)


async def test_a_backends_own_error_is_a_storage_error(clock: FakeClock) -> None:
    """The driver's exception is the cause; only StorageError leaves."""
    inner = FaultyState(MemoryState(), clock=clock)
    inner.fail_all = True
    guard = GuardedState(inner, clock=clock)
    with pytest.raises(StorageError, match="failed a set: ConnectionError") as info:
        await guard.set("k", b"v")
    assert isinstance(info.value.__cause__, ConnectionError)
    assert not guard.stalled  # an error is an answer: the backend is there


async def test_a_call_nobody_answers_marks_it_down_until_a_probe_answers(
    clock: FakeClock,
) -> None:
    """Given up after slow_call with no answer meanwhile: down; calls fail at once; one
    probe a second; the first answered probe brings it back."""
    inner = FaultyState(MemoryState(), clock=clock)
    guard = GuardedState(inner, clock=clock, slow_call=1.0, retry_every=1.0, probe_bound=0.5)
    inner.stall_all = True
    await give_up(guard, clock, "k", after=1.0)
    assert guard.stalled
    began = clock.monotonic()
    with pytest.raises(StorageError, match="not answering"):
        await guard.get("k")
    assert clock.monotonic() == began  # failed at once, not after a bound of its own
    await clock.sleep(1.0)
    with pytest.raises(StorageError, match="still not answering"):
        await guard.get("k")  # the probe, bounded by probe_bound
    assert clock.monotonic() - began == pytest.approx(1.5)
    inner.stall_all = False
    await clock.sleep(1.0)
    await guard.set("k", b"v")  # the next probe answers
    assert not guard.stalled
    assert await guard.get("k") == b"v"


async def test_one_slow_call_among_answered_ones_is_not_a_stall(clock: FakeClock) -> None:
    """A call given up on while other calls were answered does not take the backend down."""
    guard = GuardedState(SlowKey(), clock=clock, slow_call=1.0)

    async def others() -> None:
        for _ in range(5):
            await guard.set("k", b"v")
            await clock.sleep(0.3)

    async with anyio.create_task_group() as tg:
        tg.start_soon(others)
        await give_up(guard, clock, "slow", after=1.2)
    assert not guard.stalled
    assert await guard.get("k") == b"v"


async def test_calls_unanswered_for_stall_after_mark_it_down(clock: FakeClock) -> None:
    """Short-bounded callers never reach slow_call, but seconds without any answer do."""
    inner = FaultyState(MemoryState(), clock=clock)
    guard = GuardedState(inner, clock=clock, slow_call=1.0, stall_after=2.0)
    inner.stall_all = True
    for _ in range(8):
        await give_up(guard, clock, "k", after=0.25)
    assert not guard.stalled  # 2.0 s of calls: not past stall_after yet
    await give_up(guard, clock, "k", after=0.25)
    assert guard.stalled
