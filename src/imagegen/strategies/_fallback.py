"""Fallback: one provider after another, in priority order."""

from __future__ import annotations

import attrs

from ._selection import Selection, Tier

__all__ = ["Fallback"]


@attrs.frozen
class Fallback(Selection):
    """Call providers one after another, in priority order, until one succeeds.

    Each provider is a stage of its own with a fair share of the time left, so a
    hanging first provider leaves its fallbacks their time.
    """

    async def select(self, tier: Tier) -> None:
        """Try each provider in turn, each within its share of the deadline."""
        providers = tier.providers
        for index, provider in enumerate(providers):
            if await tier.attempt(provider, deadline=tier.share(len(providers) - index)):
                return

    def stages(self, providers: int) -> int:
        """One stage per provider."""
        return providers
