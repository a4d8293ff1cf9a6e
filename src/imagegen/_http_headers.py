"""HTTP header helpers shared by everything that calls out: providers and alert webhooks."""

from __future__ import annotations

import datetime as dt
import email.utils

import httpx

from ._distribution import installed_version

__all__ = ["parse_retry_after", "user_agent"]


def user_agent() -> str:
    """``imagegen/<version>``, sent with every provider request."""
    global _USER_AGENT  # noqa: PLW0603 - computed on first use, then cached
    if _USER_AGENT is None:
        found = installed_version()
        _USER_AGENT = "imagegen" if found is None else f"imagegen/{found}"
    return _USER_AGENT


_USER_AGENT: str | None = None


def parse_retry_after(headers: httpx.Headers, *, now: dt.datetime | None = None) -> float | None:
    """Seconds from ``Retry-After`` (delta-seconds or an HTTP date), or ``retry-after-ms``."""
    millis = headers.get("retry-after-ms")
    if millis is not None:
        try:
            return max(0.0, float(millis) / 1000)
        except ValueError:
            pass
    raw = headers.get("retry-after")
    if raw is None:
        return None
    raw = raw.strip()
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    now = now or dt.datetime.now(tz=dt.UTC)
    return max(0.0, (when - now).total_seconds())
