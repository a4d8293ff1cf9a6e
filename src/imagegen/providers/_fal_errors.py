"""fal's error shapes: account locks, infrastructure errors, content policy, retry hints.

See the **Errors** paragraph of :class:`~imagegen.providers.Fal` for the rules.
"""

from __future__ import annotations

from typing import Any

import httpx

from .._errors import (
    ContentRejected,
    ProviderError,
    ProviderQuotaExceeded,
    ProviderTimeout,
    ProviderUnavailable,
)
from ._payloads import first_mentioned, mentions

__all__ = ["POLICY", "classify_fal", "infra_error", "policy_violation"]

# fal's infrastructure errors (X-Fal-Error-Type / "error_type"): the runner never
# produced an output, and fal bills no 5xx, so trying again costs nothing.
_INFRA: dict[str, type[ProviderError]] = {
    "request_timeout": ProviderTimeout,
    "startup_timeout": ProviderTimeout,
    "runner_scheduling_failure": ProviderUnavailable,
    "runner_connection_timeout": ProviderUnavailable,
    "runner_disconnected": ProviderUnavailable,
}
_LOCKED = ("exhausted balance", "top_up", "top up")
#: Words of a content-policy refusal in fal's error texts.
POLICY = ("content_policy", "content policy", "nsfw")


def infra_error(error_type: object) -> type[ProviderError] | None:
    """The error class of one of fal's infrastructure error types; None for any other."""
    return _INFRA.get(error_type) if isinstance(error_type, str) else None


def policy_violation(body: Any) -> bool:
    """A validation error whose ``detail`` says the prompt or image broke content policy."""
    if not isinstance(body, dict):
        return False
    detail = body.get("detail")
    if isinstance(detail, list):
        return any(
            isinstance(d, dict) and d.get("type") == "content_policy_violation" for d in detail
        )
    return mentions(detail, POLICY)


def policy_reason(body: Any) -> str | None:
    """What a content-policy refusal says about why: the ``detail`` item's type (and its
    message, when it has one), or the policy word the detail mentions."""
    detail = body.get("detail") if isinstance(body, dict) else None
    if isinstance(detail, list):
        for item in detail:
            if isinstance(item, dict) and item.get("type") == "content_policy_violation":
                said = item.get("msg")
                return (
                    f"content_policy_violation: {said}"
                    if isinstance(said, str)
                    else str(item["type"])
                )
    return first_mentioned(detail, POLICY)


def _retry_hint(headers: httpx.Headers) -> bool | None:
    """fal's own verdict on retrying: ``X-Fal-Retryable`` (formerly ``X-Fal-Needs-Retry``)."""
    for header in ("x-fal-retryable", "x-fal-needs-retry"):
        value = headers.get(header)
        if value is not None:
            value = value.strip().lower()
            if value in ("true", "1"):
                return True
            if value in ("false", "0"):
                return False
    return None


def classify_fal(
    name: str, response: httpx.Response, body: Any, message: str, retry_after: float | None
) -> ProviderError | None:
    """The error a fal error response stands for; None leaves it to the generic mapping."""
    status = response.status_code
    detail = body.get("detail") if isinstance(body, dict) else None
    if status in (402, 403) and mentions(detail, _LOCKED):
        return ProviderQuotaExceeded(message, provider=name, status=status)
    if status in (401, 403):
        return None
    hint = _retry_hint(response.headers)
    error_type = response.headers.get("x-fal-error-type")
    if error_type is None and isinstance(body, dict):
        error_type = body.get("error_type")
    infra = infra_error(error_type)
    if infra is not None:
        return infra(
            message,
            provider=name,
            status=status,
            retry_after=retry_after,
            retryable=True if hint is None else hint,
        )
    if status in (400, 422) and policy_violation(body):
        return ContentRejected(message, provider=name, status=status, reason=policy_reason(body))
    if hint is None or status == 429:
        return None
    cls = (
        ProviderUnavailable
        if status >= 500
        else ProviderTimeout
        if status == 408
        else ProviderError
    )
    return cls(message, provider=name, status=status, retry_after=retry_after, retryable=hint)
