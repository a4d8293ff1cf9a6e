"""An alert (:class:`Alert`, :data:`AlertKind`) and what receives one (:data:`AlertSink`).

:class:`~imagegen.Alerts` makes alerts from the generator's events; the sinks
(:class:`~imagegen.LogAlerts`, :class:`~imagegen.AlertWebhook`, or any callable)
deliver them.

.. versionadded:: 0.1
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any, Final, Literal

import attrs

from ._errors import InvalidConfig

__all__ = ["Alert", "AlertKind", "AlertSink"]

AlertKind = Literal[
    "breaker_opened", "breaker_closed", "success_rate_low", "success_rate_recovered"
]

_BAD_NEWS: Final = frozenset({"breaker_opened", "success_rate_low"})


def _utc(value: object) -> dt.datetime:
    if not isinstance(value, dt.datetime) or value.utcoffset() is None:
        raise InvalidConfig("at must be a timezone-aware datetime", field="at")
    return value.astimezone(dt.UTC)


@attrs.frozen(kw_only=True)
class Alert:
    """Something an operator should hear about.

    Args:
        kind: ``"breaker_opened"``, ``"breaker_closed"``, ``"success_rate_low"`` or
            ``"success_rate_recovered"``.
        provider: The provider concerned; None for the success rate of all
            generations.
        message: One human-readable line.
        data: Details, JSON-ready: ``from``/``to``/``reason`` for a breaker;
            ``success_rate``, ``threshold``, ``successes``, ``calls``, ``window``
            for a success rate.
        at: When it happened, in UTC.

    .. versionadded:: 0.1
    """

    kind: AlertKind
    provider: str | None
    message: str
    data: Mapping[str, Any] = attrs.field(factory=dict)
    at: dt.datetime = attrs.field(converter=_utc)

    @property
    def bad_news(self) -> bool:
        """True for an opened breaker or a low success rate, False for a recovery."""
        return self.kind in _BAD_NEWS

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (``at`` in ISO 8601); the webhook's body."""
        return {
            "kind": self.kind,
            "provider": self.provider,
            "message": self.message,
            "data": dict(self.data),
            "at": self.at.isoformat(),
        }


AlertSink = Callable[[Alert], Any]
"""A callable taking one :class:`Alert`; sync or async. Its exceptions are logged.

A sink that is also an async context manager is entered and exited with the
:class:`Alerts` that holds it.
"""
