"""Circuit-breaker values: the settings (:class:`CircuitBreaker`, one per generator,
applied to each provider) and a breaker's state as dashboards see it
(:class:`BreakerSnapshot`). The breaker itself, with its state in the state
backend, is :class:`~imagegen.strategies.ProviderBreaker` (``_breaker``)."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

import attrs

from .._errors import ContentRejected, ImageGenError, InvalidConfig, ProviderError, shown
from .._request import finite_number, whole_number

__all__ = ["BreakerSnapshot", "BreakerState", "CircuitBreaker"]

BreakerState = Literal["closed", "open", "half_open"]


def _at_least_one(_: object, attribute: attrs.Attribute[int], value: object) -> None:
    number = whole_number(value)
    if number is None or number < 1:
        raise InvalidConfig(
            f"{attribute.name} must be an integer >= 1 (got {shown(value)})", field=attribute.name
        )


def _positive(_: object, attribute: attrs.Attribute[float], value: object) -> None:
    number = finite_number(value)
    if number is None or number <= 0:
        raise InvalidConfig(
            f"{attribute.name} must be a finite number of seconds > 0 (got {shown(value)})",
            field=attribute.name,
        )


def _optional_at_least_one(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None:
        _at_least_one(_, attribute, value)


def _boolean(_: object, attribute: attrs.Attribute[bool], value: object) -> None:
    if not isinstance(value, bool):
        raise InvalidConfig(
            f"{attribute.name} must be true or false (got {shown(value)})", field=attribute.name
        )


def _rate(_: object, attribute: attrs.Attribute[float | None], value: object) -> None:
    if value is None:
        return
    number = finite_number(value)
    if number is None or not 0 < number <= 1:
        raise InvalidConfig(
            f"{attribute.name} must be None or a number in (0, 1] (got {shown(value)})",
            field=attribute.name,
        )


@attrs.frozen(kw_only=True)
class CircuitBreaker:
    """Breaker settings, one breaker per provider name.

    Opens after ``consecutive_failures`` counted failures in a row (seen by this
    process, no success between them), or after ``failure_threshold`` counted
    failures within ``window`` seconds (and, when ``failure_rate`` is set, only if
    failures are at least that share of at least ``minimum_calls`` calls in the
    window). Half-opens after ``reset_timeout`` seconds, or the provider's
    ``Retry-After`` if longer.

    When it opens, the provider's calls still in flight in this process are cut
    short (``cut_in_flight``): they end at once, as failed, and their generations
    move on to the next provider rather than wait out a provider just seen dead.
    A call cut short is not retried on that provider.

    Counted: timeouts, 5xx and connection errors, rate limits, auth and quota
    errors, and unexpected provider exceptions. Not counted: bad requests (4xx
    other than 401/402/403/408/429) and content-policy rejections, which say
    nothing about the provider's health.
    """

    failure_threshold: int = attrs.field(default=5, validator=_at_least_one)
    consecutive_failures: int | None = attrs.field(default=5, validator=_optional_at_least_one)
    cut_in_flight: bool = attrs.field(default=True, validator=_boolean)
    window: float = attrs.field(default=60.0, validator=_positive)
    reset_timeout: float = attrs.field(default=30.0, validator=_positive)
    half_open_max_calls: int = attrs.field(default=1, validator=_at_least_one)
    failure_rate: float | None = attrs.field(default=None, validator=_rate)
    minimum_calls: int = attrs.field(default=20, validator=_at_least_one)

    @staticmethod
    def counts(error: ImageGenError) -> bool:
        """Whether ``error`` says something about the provider's health.

        Only provider errors do; a request the provider refused as invalid does not.
        """
        if not isinstance(error, ProviderError) or isinstance(error, ContentRejected):
            return False
        status = error.status
        return not (
            status is not None and 400 <= status < 500 and status not in (401, 402, 403, 408, 429)
        )


@attrs.frozen(kw_only=True)
class BreakerSnapshot:
    """A breaker's state, for dashboards.

    ``since`` is when it entered the state, ``next_trial`` when an open breaker
    lets a trial call through (None when closed or forced open).
    """

    provider: str
    state: BreakerState
    since: dt.datetime | None
    reason: str | None
    failures: int
    next_trial: dt.datetime | None
    forced: bool

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form; times in ISO 8601."""
        return {
            "provider": self.provider,
            "state": self.state,
            "since": self.since.isoformat() if self.since else None,
            "reason": self.reason,
            "failures": self.failures,
            "next_trial": self.next_trial.isoformat() if self.next_trial else None,
            "forced": self.forced,
        }
