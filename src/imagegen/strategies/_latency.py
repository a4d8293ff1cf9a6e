"""What the generator remembers of a provider's speed, for selections that learn from it."""

from __future__ import annotations

import math
from collections import deque

__all__ = ["LatencyWindow"]


class LatencyWindow:
    """The last ``size`` latencies of one provider (seconds), and how many of its latest
    calls in a row were cut off before they answered."""

    __slots__ = ("_cut_off", "_samples")

    def __init__(self, size: int = 100) -> None:
        self._samples: deque[float] = deque(maxlen=size)
        self._cut_off = 0

    def add(self, seconds: float, *, answered: bool = True) -> None:
        """Remember one latency: a call that answered, or (``answered=False``) one cut off
        after ``seconds`` because another provider won."""
        self._samples.append(seconds)
        self._cut_off = 0 if answered else self._cut_off + 1

    @property
    def cut_off_in_a_row(self) -> int:
        """How many of the latest calls, in a row, were cut off before they answered."""
        return self._cut_off

    def __len__(self) -> int:
        return len(self._samples)

    def quantile(self, q: float, *, min_samples: int = 1) -> float | None:
        """The ``q`` quantile (nearest rank), or None with fewer than ``min_samples``."""
        if len(self._samples) < max(1, min_samples):
            return None
        ordered = sorted(self._samples)
        return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]
