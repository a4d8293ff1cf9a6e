"""What the generator remembers of a provider's speed, for selections that learn from it."""

from __future__ import annotations

import math
from collections import deque

__all__ = ["LatencyWindow"]


class LatencyWindow:
    """The last ``size`` latencies of one provider (seconds)."""

    __slots__ = ("_samples",)

    def __init__(self, size: int = 100) -> None:
        self._samples: deque[float] = deque(maxlen=size)

    def add(self, seconds: float) -> None:
        """Remember one latency."""
        self._samples.append(seconds)

    def __len__(self) -> int:
        return len(self._samples)

    def quantile(self, q: float, *, min_samples: int = 1) -> float | None:
        """The ``q`` quantile (nearest rank), or None with fewer than ``min_samples``."""
        if len(self._samples) < max(1, min_samples):
            return None
        ordered = sorted(self._samples)
        return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]
