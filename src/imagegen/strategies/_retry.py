"""How often, and how long apart, to call one provider again: :class:`Retry` and its loop."""

from __future__ import annotations

import math
import random
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

import attrs

from .._errors import ImageGenError, InvalidConfig, ProviderError, shown
from .._request import finite_number, whole_number

if TYPE_CHECKING:
    from .._clock import Clock

__all__ = ["Retry"]

_T = TypeVar("_T")


def _retryable(error: ImageGenError) -> bool:
    return isinstance(error, ProviderError) and error.retryable


async def _no_hook(_tries: int, _delay: float, _error: ImageGenError) -> None:
    return None


async def _go_on() -> bool:
    return True


def _positive_int(_: object, attribute: attrs.Attribute[int], value: object) -> None:
    number = whole_number(value)
    if number is None or number < 1:
        raise InvalidConfig(
            f"{attribute.name} must be an integer >= 1 (got {shown(value)})", field=attribute.name
        )


def _at_least(least: float) -> Callable[[object, attrs.Attribute[float], object], None]:
    def check(_: object, attribute: attrs.Attribute[float], value: object) -> None:
        number = finite_number(value)
        if number is None or number < least:
            raise InvalidConfig(
                f"{attribute.name} must be a finite number >= {least:g} (got {shown(value)})",
                field=attribute.name,
            )

    return check


def _boolean(_: object, attribute: attrs.Attribute[bool], value: object) -> None:
    if not isinstance(value, bool):
        raise InvalidConfig(
            f"{attribute.name} must be true or false (got {shown(value)})", field=attribute.name
        )


@attrs.frozen(kw_only=True)
class Retry:
    """Exponential backoff with full jitter, for retryable errors only.

    The n-th retry waits a random time in ``[0, min(maximum, initial * multiplier**(n-1))]``
    (exactly the cap with ``jitter=False``), or the provider's ``Retry-After`` when
    that is longer. A retry that could not finish before the deadline is not made:
    the time goes to the next provider instead.

    Args:
        attempts: Calls to one provider in all, the first included (1 = no retry).
        initial: Cap of the first backoff, seconds.
        maximum: Largest backoff cap, seconds (Retry-After may exceed it).
        multiplier: Growth of the cap per retry.
        jitter: Draw the wait uniformly below the cap (spreads out synchronized clients).
    """

    attempts: int = attrs.field(default=3, validator=_positive_int)
    initial: float = attrs.field(default=0.5, validator=_at_least(0))
    maximum: float = attrs.field(default=8.0, validator=_at_least(0))
    multiplier: float = attrs.field(default=2.0, validator=_at_least(1))
    jitter: bool = attrs.field(default=True, validator=_boolean)

    def should_retry(self, error: ImageGenError, tries: int) -> bool:
        """Whether a call that failed with ``error`` after ``tries`` calls gets another."""
        return tries < self.attempts and _retryable(error)

    async def run(
        self,
        call: Callable[[int], Awaitable[_T]],
        *,
        clock: Clock,
        deadline: float,
        retryable: Callable[[ImageGenError], bool] = _retryable,
        before_sleep: Callable[[int, float, ImageGenError], Awaitable[None]] = _no_hook,
        after_sleep: Callable[[], Awaitable[bool]] = _go_on,
    ) -> _T:
        """Await ``call(try_number)`` until it returns, retrying the errors worth it.

        ``call`` raises an :class:`~imagegen.ImageGenError` to fail a try. A failure
        is retried when ``retryable(error)`` says so (default: a retryable
        :class:`~imagegen.ProviderError`), fewer than ``attempts`` tries were made,
        and the backoff (or the error's ``retry_after``) ends before ``deadline``;
        otherwise the last error is raised, and the time goes to whoever is next.

        Args:
            call: One try; gets its number (1 for the first).
            clock: Where to read the time and sleep.
            deadline: No try starts after it (on ``clock.monotonic()``).
            retryable: Whether an error is worth another try.
            before_sleep: Told ``(tries, delay, error)`` before each backoff.
            after_sleep: Asked after each backoff whether to try again after all
                (say, the provider's breaker opened meanwhile); False raises the
                last error.

        Raises:
            ImageGenError: The last try's error, when no further try is made.
        """
        tries = 0
        while True:
            tries += 1
            try:
                return await call(tries)
            except ImageGenError as error:
                if tries >= self.attempts or not retryable(error):
                    raise
                retry_after = error.retry_after if isinstance(error, ProviderError) else None
                delay = self.backoff(tries, retry_after)
                if clock.monotonic() + delay >= deadline:
                    raise
                await before_sleep(tries, delay, error)
                await clock.sleep(delay)
                if not await after_sleep():
                    raise

    def backoff(
        self,
        tries: int,
        retry_after: float | None = None,
        *,
        rand: Callable[[], float] = random.random,
    ) -> float:
        """Seconds to wait before call number ``tries + 1``."""
        try:
            growth = float(self.multiplier) ** (tries - 1)
        except OverflowError:  # thousands of retries: the cap stopped growing long ago
            growth = math.inf
        cap = min(self.maximum, self.initial * growth) if self.initial else 0.0
        delay = cap * rand() if self.jitter else cap
        if retry_after is not None:
            delay = max(delay, retry_after)
        return delay
