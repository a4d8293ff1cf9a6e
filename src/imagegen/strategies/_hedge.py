"""Hedge: call the best provider, and the next too when the first is slow."""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any

import attrs

from .._errors import InvalidConfig
from ._latency import LatencyWindow
from ._selection import Selection, Tier

if TYPE_CHECKING:
    from .._clock import Clock
    from ..providers import Provider

__all__ = ["INITIAL_DELAY_CAP", "INITIAL_DELAY_SHARE", "Hedge", "HedgeBudget"]

#: Until it has learned a delay, Hedge hedges after this share of the call's time limit
#: (the provider's timeout, or the stage's share of the deadline)...
INITIAL_DELAY_SHARE = 0.25
#: ...and never later than this many seconds.
INITIAL_DELAY_CAP = 2.0


def _check_hedge_delay(_: object, attribute: attrs.Attribute[float | None], value: object) -> None:
    if value is not None and (
        not isinstance(value, int | float) or isinstance(value, bool) or value < 0
    ):
        raise InvalidConfig(
            f"delay must be None or seconds >= 0 (got {value!r})", field=attribute.name
        )


def _check_fraction(_: object, attribute: attrs.Attribute[float], value: object) -> None:
    if not isinstance(value, int | float) or isinstance(value, bool) or not 0 <= value <= 1:
        raise InvalidConfig(
            f"{attribute.name} must be between 0 and 1 (got {value!r})", field=attribute.name
        )


def _check_optional_positive(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None:
        _check_positive(_, attribute, value)


def _check_count(_: object, attribute: attrs.Attribute[int], value: object) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise InvalidConfig(
            f"{attribute.name} must be an integer >= 0 (got {value!r})", field=attribute.name
        )


def _check_positive(_: object, attribute: attrs.Attribute[float], value: object) -> None:
    if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
        raise InvalidConfig(f"{attribute.name} must be > 0 (got {value!r})", field=attribute.name)


@attrs.frozen(kw_only=True)
class Hedge(Selection):
    """Call the best provider; call the next too if no answer comes within ``delay``.

    Args:
        delay: Seconds to wait before hedging, or None to learn it: the
            ``quantile`` of the running provider's recent latencies
            (``initial_delay`` until ``min_samples`` are known).
        budget: At most this fraction of extra calls per generation over the
            last ``window`` seconds, so a slow spell cannot turn hedging into a
            full race. With 0.1, one hedge per ten generations.
        window: The sliding window of the budget, seconds.
        quantile: Which latency quantile a learned delay uses.
        min_samples: Latencies needed before the delay is learned.
        initial_delay: The delay until then; None (the default) derives it from
            the call's time limit: a quarter of the provider's ``timeout`` (or of
            the stage's share of the deadline), at most 2 s. A provider that hangs
            from the start is hedged around from the first image.
        burst: Extra calls allowed in any ``window`` whatever ``budget`` says, so
            the first generations (before the budget has filled) can hedge too.
    """

    delay: float | None = attrs.field(default=None, validator=_check_hedge_delay)
    budget: float = attrs.field(default=0.1, validator=_check_fraction)
    window: float = attrs.field(default=60.0, validator=_check_positive)
    quantile: float = attrs.field(default=0.9, validator=_check_fraction)
    min_samples: int = 5
    initial_delay: float | None = attrs.field(default=None, validator=_check_optional_positive)
    burst: int = attrs.field(default=1, validator=_check_count)

    async def select(self, tier: Tier) -> None:
        """Start the first provider; start the next after its delay, within the budget."""
        budget = tier.budget
        budget.record_generation(self.window)

        def delay(provider: Provider) -> float | None:
            limit = tier.share(1) - tier.clock.monotonic()
            if provider.timeout is not None:
                limit = min(limit, provider.timeout)
            return self.launch_delay(tier.latency(provider), limit=limit)

        await tier.run(
            launch_delay=delay,
            may_launch=lambda: budget.try_spend(self.budget, self.window, floor=self.burst),
        )

    def lost(self, tier: Tier, provider: Provider, elapsed: float) -> None:
        """A hedged call that lost took at least ``elapsed``: learning from winners alone
        would bias the delay low, since the slow calls are the ones that lose."""
        tier.latency(provider).add(elapsed)

    def launch_delay(self, latencies: LatencyWindow, *, limit: float | None = None) -> float | None:
        """The fixed delay, or the learned one from ``latencies``; before enough are known,
        ``initial_delay``, or a share of ``limit`` (the call's time, seconds) when it is None."""
        if self.delay is not None:
            return self.delay
        learned = latencies.quantile(self.quantile, min_samples=self.min_samples)
        if learned is not None:
            return learned
        if self.initial_delay is not None:
            return self.initial_delay
        if limit is None or limit <= 0:
            return INITIAL_DELAY_CAP
        return min(INITIAL_DELAY_CAP, INITIAL_DELAY_SHARE * limit)


class HedgeBudget:
    """Counts generations and extra calls over a sliding window (one per generator)."""

    __slots__ = ("_clock", "_extras", "_generations")

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._generations: deque[float] = deque()
        self._extras: deque[float] = deque()

    def _prune(self, window: float) -> float:
        now = self._clock.monotonic()
        for queue in (self._generations, self._extras):
            while queue and queue[0] <= now - window:
                queue.popleft()
        return now

    def record_generation(self, window: float) -> None:
        """Count one generation that may make extra calls."""
        self._generations.append(self._prune(window))

    def try_spend(self, fraction: float, window: float, *, floor: int = 0) -> bool:
        """Take one extra call if that keeps extras within ``fraction`` of generations, or
        within ``floor`` extras in the window, whichever allows more."""
        now = self._prune(window)
        if len(self._extras) + 1 > max(fraction * len(self._generations), floor):
            return False
        self._extras.append(now)
        return True
