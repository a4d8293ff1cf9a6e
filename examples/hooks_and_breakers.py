"""Watch what happens: hooks for events, breaker snapshots, statistics and records.

Run: python examples/hooks_and_breakers.py
"""

from __future__ import annotations

import anyio

from imagegen import CircuitBreaker, Event, ImageGenerator, Placeholder, Retry
from imagegen.testing import failing


def print_event(event: Event) -> None:
    if event.kind in ("attempt_finished", "breaker_state_changed"):
        print(f"  [{event.kind}] {event.provider}: {dict(event.data)}")


async def main() -> None:
    async with ImageGenerator(
        providers=[failing("flaky"), Placeholder(tier=1)],
        retry=Retry(attempts=1),
        breaker=CircuitBreaker(failure_threshold=2, reset_timeout=30.0),
        hooks=[print_event],
    ) as gen:
        for n in range(3):
            result = await gen.generate(f"a quiet harbour {n}", width=256, height=256)
            print(f"generation {n}: served by {result.provider}")
        snapshot = await gen.breaker_for("flaky").snapshot()
        print(f"flaky's breaker: {snapshot.state} since {snapshot.since}, {snapshot.reason}")
        for row in await gen.stats():
            print(f"{row.day} {row.provider}: {row.requests} calls, {row.failures} failed")
        record = await gen.record(result.id)
        assert record is not None
        print(f"last record: {record.status}, attempts {[a.outcome for a in record.attempts]}")


if __name__ == "__main__":
    anyio.run(main)
