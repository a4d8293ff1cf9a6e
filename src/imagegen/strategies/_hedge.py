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

__all__ = ["CUT_OFF_LIMIT", "INITIAL_DELAY_CAP", "INITIAL_DELAY_SHARE", "Hedge", "HedgeBudget"]

#: Until it has learned a delay, Hedge hedges after this share of the call's time limit
#: (the provider's timeout, or the stage's share of the deadline)...
INITIAL_DELAY_SHARE = 0.25
#: ...and never later than this many seconds.
INITIAL_DELAY_CAP = 2.0
#: A provider whose latest calls were all hedged around and cut off, this many in a row, is
#: not hedged around again until one answers: a cut-off call is no failure, so without this
#: a hanging provider would be hidden from its breaker for as long as the budget lasts.
CUT_OFF_LIMIT = 5
#: Slack for float sums in the budget (ten generations at 0.1 pay for one extra call).
_ROUNDING = 1e-9


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

    Extra (hedged) calls are paid from a token bucket shared by the generator's
    generations (:class:`HedgeBudget`): each generation earns ``budget`` of an
    extra call, each extra call spends one, and the bucket starts with ``burst``.
    So over any run, extra calls <= ``budget`` x generations + ``burst``, while
    the extras saved in a quiet stretch pay for a bunch of slow calls later. A
    provider whose last :data:`CUT_OFF_LIMIT` calls were all hedged around and cut
    off is not hedged around again until one answers, so a hanging provider's
    timeouts still reach its breaker.

    Args:
        delay: Seconds to wait before hedging, or None to learn it: the
            ``quantile`` of the running provider's recent latencies
            (``initial_delay`` until ``min_samples`` are known).
        budget: Extra calls earned per generation: the long-run share of extra
            calls, so a slow spell cannot turn hedging into a full race. With
            0.1, one hedge per ten generations on average.
        window: How long savings last, seconds: the bucket holds at most
            ``burst`` plus what the generations of the last ``window`` seconds
            earned.
        quantile: Which latency quantile a learned delay uses. The default, 0.92,
            sits a little above ``1 - budget``: a hedged call that lost is counted
            as taking only as long as it ran, which puts the learned quantiles of
            the tail a little low.
        min_samples: Latencies needed before the delay is learned.
        initial_delay: The delay until then; None (the default) derives it from
            the call's time limit: a quarter of the provider's ``timeout`` (or of
            the stage's share of the deadline), at most 2 s. A provider that hangs
            from the start is hedged around from the first image.
        burst: Extra calls the bucket starts with, beyond what generations earn,
            so the first generations can hedge too and a bunch of slow calls can
            borrow ahead. A second extra call for the same generation (to a third
            provider) is made only if ``burst / 2`` would remain after it, so first
            hedges of other slow calls come first.
    """

    delay: float | None = attrs.field(default=None, validator=_check_hedge_delay)
    budget: float = attrs.field(default=0.1, validator=_check_fraction)
    window: float = attrs.field(default=60.0, validator=_check_positive)
    quantile: float = attrs.field(default=0.92, validator=_check_fraction)
    min_samples: int = 5
    initial_delay: float | None = attrs.field(default=None, validator=_check_optional_positive)
    burst: int = attrs.field(default=20, validator=_check_count)

    async def select(self, tier: Tier) -> None:
        """Start the first provider; start the next after its delay, within the budget."""
        budget = tier.budget
        budget.record_generation(self.window)

        running: list[Provider] = []  # the latest started (its delay is asked right after)

        def delay(provider: Provider) -> float | None:
            running.append(provider)
            limit = tier.share(1) - tier.clock.monotonic()
            if provider.timeout is not None:
                limit = min(limit, provider.timeout)
            return self.launch_delay(tier.latency(provider), limit=limit)

        made = 0

        def may_launch() -> bool:
            nonlocal made
            if not self.may_hedge(budget, made, tier.latency(running[-1])):
                return False
            made += 1
            return True

        await tier.run(launch_delay=delay, may_launch=may_launch)

    def may_hedge(self, budget: HedgeBudget, made: int, running: LatencyWindow) -> bool:
        """Whether a generation that has made ``made`` extra calls may make one more now,
        around the provider with latencies ``running``; if so, it is spent.

        A second one for the same generation must leave ``burst / 2`` in the bucket, so
        the first hedges of other slow calls come first. No first one is made around a
        provider whose last :data:`CUT_OFF_LIMIT` calls were all cut off before they
        answered: that call runs to its end, so a hanging provider reaches its breaker.
        """
        if made == 0 and running.cut_off_in_a_row >= CUT_OFF_LIMIT:
            return False
        keep = self.burst / 2 if made else 0.0
        return budget.try_spend(self.budget, self.window, floor=self.burst, keep=keep)

    def lost(self, tier: Tier, provider: Provider, elapsed: float) -> None:
        """A hedged call that lost took at least ``elapsed``: learning from winners alone
        would bias the delay low, since the slow calls are the ones that lose."""
        tier.latency(provider).add(elapsed, answered=False)

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
    """The generator's token bucket of extra (hedged) calls, shared by its generations.

    Counted in extra calls: every generation earns ``fraction`` of one, every
    extra call spends one. The bucket starts with ``floor`` and holds at most
    ``floor`` plus what the generations of the last ``window`` seconds earned, so
    the savings of a quiet stretch pay for a bunch of slow calls later, but do not
    pile up for ever. Over any run, extra calls <= fraction x generations + floor;
    over any stretch, <= fraction x (its generations and those of the window
    before it) + floor.

    The fraction, window and floor are given at each :meth:`try_spend` (a selection's
    settings may change at any time); generations are credited at the fraction of the
    first spend after them that succeeds, and the cap applies then too.
    """

    __slots__ = ("_balance", "_clock", "_generations", "_uncredited")

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._generations: deque[float] = deque()  # when, over the last window
        self._uncredited = 0  # generations since the last extra call
        self._balance: float | None = None  # until the first extra call: the floor

    def _prune(self, window: float) -> float:
        now = self._clock.monotonic()
        while self._generations and self._generations[0] <= now - window:
            self._generations.popleft()
        return now

    def record_generation(self, window: float) -> None:
        """Count one generation that may make extra calls."""
        self._generations.append(self._prune(window))
        self._uncredited += 1

    def balance(self, fraction: float, window: float, *, floor: int = 0) -> float:
        """Extra calls the bucket would hold now, at ``fraction`` per generation."""
        self._prune(window)
        start = floor if self._balance is None else self._balance
        cap = floor + fraction * len(self._generations)
        return min(cap, start + fraction * self._uncredited)

    def try_spend(
        self, fraction: float, window: float, *, floor: int = 0, keep: float = 0.0
    ) -> bool:
        """Take one extra call if the bucket holds one, with ``keep`` more left after it.

        ``fraction`` of an extra call is earned per generation; the bucket starts with
        ``floor`` and holds at most ``floor`` plus the earnings of the last ``window``
        seconds (see the class).
        """
        balance = self.balance(fraction, window, floor=floor)
        if balance < 1 + keep - _ROUNDING:
            return False
        self._balance = max(0.0, balance - 1)
        self._uncredited = 0
        return True
