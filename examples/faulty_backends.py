"""Check your set-up under infrastructure faults: a state backend that fails and stalls.

FaultyState wraps any state backend (here MemoryState) and makes a share of its
calls raise or hang; FaultyStorage does the same for a storage. With a FakeClock
the stalls cost no real time. Whatever the backend does, every generation below
returns by its deadline plus a quarter of a second, with the provider's image,
and its record is written (later, in the background, when the backend was down).

Run: python examples/faulty_backends.py
"""

from __future__ import annotations

import logging

import anyio

from imagegen import ImageGenerator, MemoryState, MemoryStorage
from imagegen.testing import FakeClock, FaultyState, slow


async def main() -> None:
    # Each fault is logged as a warning (what failed, what imagegen did instead); this
    # example prints its own summary, so it keeps only the errors.
    logging.basicConfig(level=logging.ERROR)
    async with FakeClock() as clock:
        # 10% of backend calls fail, 5% never answer.
        state = FaultyState(MemoryState(), fail_rate=0.1, stall_rate=0.05, seed=1, clock=clock)
        async with ImageGenerator(
            providers=[slow("vendor", 0.5)],
            state=state,
            storage=MemoryStorage(),
            timeout=2.0,
            clock=clock,
        ) as gen:
            slowest, ids = 0.0, []
            for _ in range(50):
                start = clock.monotonic()
                result = await gen.generate("a lighthouse at dusk")
                slowest = max(slowest, clock.monotonic() - start)
                assert result.provider == "vendor"
                ids.append(result.id)
            state.stall_rate = state.fail_rate = 0.0  # the backend recovers
            await clock.sleep(30.0)  # records kept back are written meanwhile
            await clock.sleep(1.1)  # and a backend seen down is probed again
            records = [await gen.record(i) for i in ids]
        succeeded = sum(r is not None and r.status == "succeeded" for r in records)
        print(f"injected: {dict(state.failed)} failures, {dict(state.stalled)} stalls")
        print(f"50 images, slowest {slowest:.2f}s (deadline 2s), {succeeded}/50 records succeeded")


if __name__ == "__main__":
    anyio.run(main)
