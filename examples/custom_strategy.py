"""Write your own strategy: the cheapest provider first, the next one only if it fails.

A Selection decides how a tier's providers are launched. It gets a Tier: the
providers whose breakers let calls through, ``tier.attempt(provider, deadline=...)``
to call one (retries, breaker, bookkeeping and cancelling included), and
``tier.share(n)`` for a fair share of the time left. Nothing in imagegen changes.

Run: python examples/custom_strategy.py
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import anyio
import attrs

from imagegen import ImageGenerator, Selection, Tier
from imagegen.testing import failing, slow


@attrs.frozen
class CheapestFirst(Selection):
    """Call providers from the cheapest up; each gets a fair share of the time left."""

    prices: Mapping[str, float]  # USD per image, by provider name

    async def select(self, tier: Tier) -> None:
        ranked = sorted(tier.providers, key=lambda p: self.prices.get(p.name, math.inf))
        for index, provider in enumerate(ranked):
            # n providers left to try: this one gets 1/n of the time (later tiers too).
            if await tier.attempt(provider, deadline=tier.share(len(ranked) - index)):
                return

    def stages(self, providers: int) -> int:
        return providers  # one share of the deadline per provider, like Fallback


async def main() -> None:
    prices = {"premium": 0.04, "budget": 0.003, "mid": 0.01}
    providers = [slow("premium", 0.2), failing("budget"), slow("mid", 0.1)]
    strategy = CheapestFirst(prices=prices)
    async with ImageGenerator(providers=providers, strategy=strategy, timeout=10) as gen:
        result = await gen.generate("a lighthouse at dusk")
        tried = ", ".join(f"{a.provider} ({a.outcome})" for a in result.attempts)
        print(f"{result.provider} won after: {tried}")
        print("settings:", gen.settings()["strategy"])


if __name__ == "__main__":
    anyio.run(main)
