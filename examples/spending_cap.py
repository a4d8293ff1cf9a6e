"""Daily spending caps: a provider over its cap is skipped before anything is sent.

Run: python examples/spending_cap.py

Two providers priced as hosted ones would be (offline placeholders here): "premium"
may spend $0.10 a day, all providers together $0.15. A call whose price would take
the day past a cap is not made: after two premium images ($0.08) "budget" serves,
and once one more would pass $0.15, the default image does.
The same caps from the environment: IMAGEGEN_SPENDING_CAP=0.15,premium=0.10.
"""

from __future__ import annotations

import anyio

from imagegen import (
    Fallback,
    ImageGenerator,
    MemoryStorage,
    Placeholder,
    SpendingCap,
    SpendingCapReached,
)


class Priced(Placeholder):
    """The offline placeholder, billed as a hosted vendor would be."""

    paid = True


async def main() -> None:
    gen = ImageGenerator(
        providers=[
            Priced(name="premium", price_per_image=0.04),
            Priced(name="budget", price_per_image=0.02),
        ],
        strategy=Fallback(),
        storage=MemoryStorage(),
        spending_cap=SpendingCap(daily=0.15, per_provider={"premium": 0.10}),
    )
    async with gen:
        for n in range(1, 8):
            result = await gen.generate("a lighthouse at dusk", width=256, height=256)
            held = [a.error for a in result.attempts if isinstance(a.error, SpendingCapReached)]
            served = "the default image" if result.is_default else result.provider
            print(f"image {n}: {served}, ${result.cost:.2f}", *(f"({e})" for e in held[:1]))
        spent = {row.provider: row.cost for row in await gen.stats()}
        print(f"spent today: premium ${spent['premium']:.2f}, budget ${spent['budget']:.2f}")


if __name__ == "__main__":
    anyio.run(main)
