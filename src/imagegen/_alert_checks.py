"""Argument checks that :class:`~imagegen.Alerts` and :class:`~imagegen.AlertWebhook` share.

Each returns the value it accepts (a float for a number, the system clock for
None) or raises :class:`~imagegen.InvalidConfig` naming the argument.
"""

from __future__ import annotations

import math

from ._clock import Clock, SystemClock
from ._errors import InvalidConfig

__all__ = ["check_clock", "check_positive_int", "check_rate", "check_seconds"]


def check_rate(name: str, value: object) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool) or not 0 < value <= 1:
        raise InvalidConfig(f"{name} must be a number in (0, 1] (got {value!r})", field=name)
    return float(value)


def check_seconds(name: str, value: object) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool) or not 0 < value < math.inf:
        raise InvalidConfig(f"{name} must be seconds > 0 (got {value!r})", field=name)
    return float(value)


def check_positive_int(name: str, value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise InvalidConfig(f"{name} must be an integer >= 1 (got {value!r})", field=name)
    return value


def check_clock(value: object) -> Clock:
    if value is None:
        return SystemClock()
    if not isinstance(value, Clock):
        raise InvalidConfig("clock must be a Clock (or None for the system clock)", field="clock")
    return value
