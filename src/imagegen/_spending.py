"""Daily spending caps: a provider over its cap is skipped before anything is sent.

What a day has spent is what the statistics count: each call's known cost, per UTC
day and provider, in the state backend (so every process sharing it counts against
the same caps). Reading those counters for every generation would cost a round trip
each, so they are read at most every :data:`REFRESH` seconds, and what this process
spends meanwhile is added as it is counted. A cap is checked when a provider is about
to be called for a generation; calls already running when it is reached still finish
(and are paid), so a day can go over a cap by the calls in flight at that moment.

When the backend cannot be read the last figures (and this process's own spending)
stand in: a stalled backend neither stops every provider nor lifts the caps.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any

import anyio
import attrs

from ._clock import Clock, utc_now
from ._cost import call_price
from ._errors import ImageGenError, InvalidConfig, SpendingCapReached
from ._guarded_state import bounded_read
from ._request import ImageRequest, frozen_mapping, is_price
from ._tracking import Tracker
from .providers import Provider

__all__ = ["REFRESH", "Spending", "SpendingCap"]

logger = logging.getLogger("imagegen")

#: Seconds between reads of the day's spending from the state backend.
REFRESH = 2.0


def _check_daily(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None and not is_price(value):
        raise InvalidConfig(
            f"{attribute.name} must be None or USD >= 0 (got {value!r})", field=attribute.name
        )


def _check_per_provider(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, Mapping):
        raise InvalidConfig(
            "per_provider must map provider names to USD >= 0", field=attribute.name
        )
    for name, usd in value.items():
        if not isinstance(name, str) or not is_price(usd):
            raise InvalidConfig(
                f"per_provider[{name!r}] must be USD >= 0 for a provider name (got {usd!r})",
                field=attribute.name,
            )


@attrs.frozen(kw_only=True)
class SpendingCap:
    """USD a UTC day may spend; a provider over a cap is skipped (nothing sent).

    Args:
        daily: All of the generator's providers together; None for no overall cap.
        per_provider: Provider name to its own daily cap.

    Only known costs count (an attempt whose price is unknown adds nothing; see
    ``docs/cost.md``). A skipped provider's attempt says why
    (:class:`~imagegen.SpendingCapReached`); with every provider over, the generation
    ends with the default image, or :class:`~imagegen.AllProvidersFailed`.
    """

    daily: float | None = attrs.field(default=None, validator=_check_daily)
    per_provider: Mapping[str, float] = attrs.field(
        factory=dict, converter=frozen_mapping, validator=_check_per_provider
    )

    def caps(self, provider: str) -> bool:
        """Whether any cap applies to ``provider``'s calls."""
        return self.daily is not None or provider in self.per_provider

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"daily": self.daily, "per_provider": dict(self.per_provider)}


def _usd(amount: float) -> str:
    """``$0.10``, ``$0.003``, ``$1,250.00``: cents always, tenths of a cent when there."""
    whole, cents = f"{amount:,.4f}".split(".")
    return f"${whole}.{cents[:2]}{cents[2:].rstrip('0')}"


def _past(spent: float, price: float | None, cap: float) -> bool:
    """Whether a call of ``price`` (None: not known; 0: free, never held) passes ``cap``."""
    # Within a micro-dollar counts as equal: the counters are whole micro-dollars.
    if price is None:
        return spent >= cap - 1e-6
    return price > 0 and spent + price > cap + 1e-6


def _and(price: float | None) -> str:
    return f" and this call would cost {_usd(price)}" if price else ""


class Spending:
    """Today's spending per provider, against a :class:`SpendingCap`.

    Args:
        cap: The caps; None for none (then nothing is ever read).
        tracker: Where the day's counted costs are read.
        clock: For the day (UTC) and the read interval.
    """

    def __init__(self, cap: SpendingCap | None, tracker: Tracker, clock: Clock) -> None:
        self.cap = cap
        self._tracker = tracker
        self._clock = clock
        self._day: dt.date | None = None
        self._read: dict[str, float] = {}  # as the backend said at the last read
        self._added: dict[str, float] = {}  # counted here since that read began
        self._next_read = -math.inf
        self._reading: anyio.Event | None = None

    def add(self, provider: str, cost: float | None) -> None:
        """One call's cost, as it is counted (unknown costs add nothing)."""
        if self.cap is not None and cost:
            self._added[provider] = self._added.get(provider, 0.0) + cost

    def spent(self, provider: str) -> float:
        """USD ``provider`` is known to have spent today."""
        return self._read.get(provider, 0.0) + self._added.get(provider, 0.0)

    async def refusal(
        self, provider: Provider, request: ImageRequest, providers: Sequence[Provider]
    ) -> SpendingCapReached | None:
        """Why ``provider`` may not be called for ``request`` now, or None when it may.

        ``providers`` are the generator's, whose spending the overall cap adds up. A
        call whose price would take the day past a cap is not made; one of unknown
        price is made until the cap is reached.
        """
        cap, name = self.cap, provider.name
        if cap is None or not cap.caps(name):
            return None
        names = [p.name for p in providers]
        await self._fresh(names)
        price = call_price(provider, request)
        own = cap.per_provider.get(name)
        spent = self.spent(name)
        if own is not None and _past(spent, price, own):
            return SpendingCapReached(
                f"{name} has spent {_usd(spent)} today (UTC){_and(price)}, its cap is {_usd(own)}",
                provider=name,
                spent=spent,
                cap=own,
            )
        if cap.daily is not None:
            total = sum(self.spent(other) for other in names)
            if _past(total, price, cap.daily):
                return SpendingCapReached(
                    f"the providers have spent {_usd(total)} today (UTC){_and(price)}, the "
                    f"daily cap is {_usd(cap.daily)}",
                    provider=name,
                    spent=total,
                    cap=cap.daily,
                )
        return None

    async def _fresh(self, providers: Sequence[str]) -> None:
        """Read the day's spending if it is due; wait for a read only when nothing is
        known of the day yet (a burst at start-up must not all go out unchecked)."""
        day = utc_now(self._clock).date()
        if day == self._day and self._clock.monotonic() < self._next_read:
            return
        if self._reading is not None:
            if day != self._day:
                await self._reading.wait()
            return
        self._reading = reading = anyio.Event()
        try:
            await self._read_day(day, providers)
        finally:
            self._reading = None
            reading.set()

    async def _read_day(self, day: dt.date, providers: Sequence[str]) -> None:
        if day != self._day:
            self._day, self._read, self._added = day, {}, {}
        before = dict(self._added)
        self._next_read = self._clock.monotonic() + REFRESH
        try:
            read = await bounded_read(
                self._clock, "the day's spending", lambda: self._tracker.spent(day, providers)
            )
        except ImageGenError as exc:
            logger.warning("spending caps: the day's spending could not be read: %s", exc)
            return
        # What was added while reading may or may not be in what was read: keep it,
        # counted twice until the next read rather than not at all.
        self._read = read
        self._added = {
            name: amount - before.get(name, 0.0)
            for name, amount in self._added.items()
            if amount - before.get(name, 0.0) > 0
        }
