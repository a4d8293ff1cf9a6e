"""Which providers of a tier to call, and when: Race, Hedge, Fallback.

All three are one policy with a different launch delay. Candidates start in
priority order; the next one starts as soon as a running one has failed, or,
when the strategy gives a delay, once that delay has passed since the last
start. The first success wins and the rest are cancelled. ``Race`` starts the
next at once, ``Fallback`` never early, and ``Hedge`` after a fixed or learned
delay, within a budget of extra calls.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

import anyio
import attrs

from .._clock import Clock
from .._errors import InvalidConfig

__all__ = ["Fallback", "Hedge", "HedgeBudget", "LatencyWindow", "Race", "Selection", "staggered"]

_T = TypeVar("_T")
_C = TypeVar("_C")


@attrs.frozen
class Race:
    """Call every provider of the tier at once; the first success wins, the rest are cancelled."""

    def launch_delay(self, _latencies: LatencyWindow) -> float | None:
        """Start the next provider at once."""
        return 0.0


@attrs.frozen
class Fallback:
    """Call providers one after another, in priority order, until one succeeds."""

    def launch_delay(self, _latencies: LatencyWindow) -> float | None:
        """Start the next provider only when the running one has failed."""
        return None


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


def _check_positive(_: object, attribute: attrs.Attribute[float], value: object) -> None:
    if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
        raise InvalidConfig(f"{attribute.name} must be > 0 (got {value!r})", field=attribute.name)


@attrs.frozen(kw_only=True)
class Hedge:
    """Call the best provider; call the next too if no answer comes within ``delay``.

    Args:
        delay: Seconds to wait before hedging, or None to learn it: the
            ``quantile`` of the running provider's recent successful latencies
            (``initial_delay`` until ``min_samples`` are known).
        budget: At most this fraction of extra calls per generation over the
            last ``window`` seconds, so a slow spell cannot turn hedging into a
            full race. With 0.1, one hedge per ten generations.
        window: The sliding window of the budget, seconds.
        quantile: Which latency quantile a learned delay uses.
        min_samples: Latencies needed before the delay is learned.
        initial_delay: The delay until then.
    """

    delay: float | None = attrs.field(default=None, validator=_check_hedge_delay)
    budget: float = attrs.field(default=0.1, validator=_check_fraction)
    window: float = attrs.field(default=60.0, validator=_check_positive)
    quantile: float = attrs.field(default=0.9, validator=_check_fraction)
    min_samples: int = 5
    initial_delay: float = attrs.field(default=2.0, validator=_check_positive)

    def launch_delay(self, latencies: LatencyWindow) -> float | None:
        """The fixed delay, or the learned one from ``latencies``."""
        if self.delay is not None:
            return self.delay
        learned = latencies.quantile(self.quantile, min_samples=self.min_samples)
        return self.initial_delay if learned is None else learned


Selection = Race | Hedge | Fallback


class LatencyWindow:
    """The last ``size`` successful call latencies of one provider."""

    def __init__(self, size: int = 100) -> None:
        self._samples: deque[float] = deque(maxlen=size)

    def add(self, seconds: float) -> None:
        """Remember one latency."""
        self._samples.append(seconds)

    def quantile(self, q: float, *, min_samples: int = 1) -> float | None:
        """The ``q`` quantile (nearest rank), or None with fewer than ``min_samples``."""
        if len(self._samples) < max(1, min_samples):
            return None
        ordered = sorted(self._samples)
        return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


class HedgeBudget:
    """Counts generations and hedged calls over a sliding window."""

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
        """Count one generation that may hedge."""
        self._generations.append(self._prune(window))

    def try_spend(self, fraction: float, window: float) -> bool:
        """Take one extra call if that keeps extras within ``fraction`` of generations."""
        now = self._prune(window)
        if len(self._extras) + 1 > fraction * len(self._generations):
            return False
        self._extras.append(now)
        return True


async def staggered(
    candidates: Sequence[_C],
    attempt: Callable[[_C], Awaitable[_T | None]],
    *,
    launch_delay: Callable[[_C], float | None],
    may_hedge: Callable[[], bool],
    clock: Clock,
) -> _T | None:
    """Run ``attempt`` over ``candidates`` with staggered starts; the first non-None wins.

    ``attempt`` returns None on failure (it records why itself). ``launch_delay``
    gives, for the provider just started, how long before starting the next one
    regardless (0: at once; None: only after a failure). ``may_hedge`` is asked
    before each start that a delay (not a failure) triggers, and again after each
    further delay while it says no.
    """
    if len(candidates) == 1:
        # Nothing to race against: skip the task group.
        return await attempt(candidates[0])
    winner: list[_T] = []
    failures = 0
    wake = anyio.Event()

    async with anyio.create_task_group() as tg:

        async def run(candidate: _C) -> None:
            nonlocal failures
            result = await attempt(candidate)
            if result is not None:
                if not winner:
                    winner.append(result)
                    tg.cancel_scope.cancel()
                return
            failures += 1
            wake.set()

        for index, candidate in enumerate(candidates):
            seen = failures
            tg.start_soon(run, candidate)
            if index == len(candidates) - 1:
                break
            delay = launch_delay(candidate)
            if delay == 0:
                continue
            # Wait for a failure among the running calls, or for the hedge delay.
            while failures == seen:
                wake = anyio.Event()
                if delay is None:
                    await wake.wait()
                    continue
                with clock.deadline_scope(clock.monotonic() + delay) as scope:
                    await wake.wait()
                if scope.cancelled_caught and may_hedge():
                    break
                # Out of budget for now: ask again one delay later, so that a call still
                # running then (one of the slowest) gets its hedge once there is room.
    return winner[0] if winner else None
