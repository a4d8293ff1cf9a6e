"""Race: every provider of the tier at once; the first success wins."""

from __future__ import annotations

import attrs

from ._selection import Selection, Tier

__all__ = ["Race"]


@attrs.frozen
class Race(Selection):
    """Call every provider of the tier at once; the first success wins, the rest are cancelled."""

    async def select(self, tier: Tier) -> None:
        """Start them all; the tier cancels the losers, locally and remotely."""
        await tier.run()
