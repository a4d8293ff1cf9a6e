"""How often, and how long apart, to call one provider again."""

from __future__ import annotations

import random
from collections.abc import Callable

import attrs

from .._errors import InvalidConfig, ProviderError

__all__ = ["Retry"]


def _positive_int(_: object, attribute: attrs.Attribute[int], value: object) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise InvalidConfig(
            f"{attribute.name} must be an integer >= 1 (got {value!r})", field=attribute.name
        )


def _non_negative(_: object, attribute: attrs.Attribute[float], value: object) -> None:
    if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
        raise InvalidConfig(
            f"{attribute.name} must be a number >= 0 (got {value!r})", field=attribute.name
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
    initial: float = attrs.field(default=0.5, validator=_non_negative)
    maximum: float = attrs.field(default=8.0, validator=_non_negative)
    multiplier: float = attrs.field(default=2.0, validator=_non_negative)
    jitter: bool = True

    def __attrs_post_init__(self) -> None:
        if self.multiplier < 1:
            raise InvalidConfig(
                f"multiplier must be >= 1 (got {self.multiplier!r})", field="multiplier"
            )

    def should_retry(self, error: ProviderError, tries: int) -> bool:
        """Whether a call that failed with ``error`` after ``tries`` calls gets another."""
        return error.retryable and tries < self.attempts

    def backoff(
        self,
        tries: int,
        retry_after: float | None = None,
        *,
        rand: Callable[[], float] = random.random,
    ) -> float:
        """Seconds to wait before call number ``tries + 1``."""
        cap = min(self.maximum, self.initial * self.multiplier ** (tries - 1))
        delay = cap * rand() if self.jitter else cap
        if retry_after is not None:
            delay = max(delay, retry_after)
        return delay
