"""Each vendor's auth scheme and error answers, in the vendor's own body shape."""

from __future__ import annotations

import http
import json
import math
import uuid
from typing import Any

from ._http import _Action, _json, _Outcome, _Reply
from ._profiles import Fault

_AUTH = {
    "replicate": "Bearer ",
    "fal": "Key ",
    "openai": "Bearer ",
    "unsplash": "Client-ID ",
    "google": "Bearer ",
    "bfl": "",
    "bedrock": "AWS4-HMAC-SHA256 ",
    "azure": "Bearer ",
    "together": "Bearer ",
    "xai": "Bearer ",
    "stability": "Bearer ",
    "huggingface": "Bearer ",
}
#: Bedrock's error names, by HTTP status, when the caller names none.
_BEDROCK_CODES = {
    400: "ValidationException",
    403: "UnrecognizedClientException",
    404: "ResourceNotFoundException",
    429: "ThrottlingException",
    500: "InternalServerException",
    503: "ServiceUnavailableException",
}
#: Google's gRPC status names, by HTTP status.
_GOOGLE_STATUS = {
    400: "INVALID_ARGUMENT",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}


def _authorized(api: str, headers: dict[str, str]) -> bool:
    """Whether the request carries the vendor's auth header (Google: an API key header
    or an OAuth bearer token)."""
    if api == "google" and headers.get("x-goog-api-key"):
        return True
    if api == "bfl":
        return bool(headers.get("x-key"))
    if api == "azure" and headers.get("api-key"):
        return True
    return headers.get("authorization", "").startswith(_AUTH[api])


def _error(api: str, status: int, message: str, **extra: Any) -> _Reply:
    """An error answer in the vendor's own shape."""
    headers: list[tuple[str, str]] = []
    retry_after = extra.pop("retry_after", None)
    if retry_after is not None:
        headers.append(("retry-after", str(max(1, math.ceil(retry_after)))))
        headers.append(("retry-after-ms", str(round(retry_after * 1000))))
    if api == "replicate":
        title = http.HTTPStatus(status).phrase
        body = json.dumps({"title": title, "detail": message, "status": status}).encode()
        return _Reply(status, body, "application/problem+json", tuple(headers))
    if api == "bedrock":  # the error's name in a header, as AWS's services send it
        code = str(extra.get("code"))
        if not code.endswith("Exception"):
            code = _BEDROCK_CODES.get(status, "UnknownError")
        kind = ("x-amzn-errortype", f"{code}:http://internal.amazon.com/coral/com.amazon.bedrock/")
        return _json(status, {"message": message}, (kind, ("x-amzn-requestid", str(uuid.uuid4()))))
    if api == "huggingface":  # the router's {"error": "..."}
        return _json(status, {"error": message}, tuple(headers))
    if api == "stability":  # {"id", "name", "errors"}
        name = {401: "unauthorized", 429: "rate_limit_exceeded"}.get(status, "server_error")
        body = {"id": uuid.uuid4().hex, "name": name, "errors": [message]}
        return _json(status, body, tuple(headers))
    if api == "bfl":  # FastAPI's shape; BFL documents no Retry-After
        return _json(status, {"detail": message})
    if api == "fal":
        data: dict[str, Any] = {"detail": extra.get("detail", message)}
        if extra.get("error_type"):
            data["error_type"] = extra["error_type"]
            headers.append(("x-fal-error-type", extra["error_type"]))
        return _json(status, data, tuple(headers))
    if api == "google":
        details = [dict(d) for d in extra.get("details", ())]
        headers.clear()  # Google says when in the body (a 429's RetryInfo), not in headers
        if retry_after is not None and status == 429:
            details.append({"@type": "type.googleapis.com/google.rpc.RetryInfo",
                            "retryDelay": f"{retry_after:g}s"})  # fmt: skip
        status_name = _GOOGLE_STATUS.get(status, "UNKNOWN")
        error = {"code": status, "message": message, "status": status_name}
        return _json(status, {"error": {**error, "details": details}}, tuple(headers))
    if api in ("openai", "azure", "together", "xai"):
        error = {
            "message": message,
            "type": extra.get("type", "invalid_request_error"),
            "param": None,
            "code": extra.get("code"),
        }
        headers.append(("x-request-id", f"req_{uuid.uuid4().hex}"))
        return _json(status, {"error": error}, tuple(headers))
    return _json(status, {"errors": [message]}, tuple(headers))


def _refusal(api: str, fault: Fault, retry_after: float) -> _Outcome:
    """The answer to a request that meets a fault before any work exists."""
    if fault is Fault.RESET:
        return _Action.RESET
    if fault is Fault.UNAUTHORIZED:
        messages = {
            "replicate": "You did not pass a valid authentication token",
            "fal": "Invalid Key Authorization header format",
            "openai": "Incorrect API key provided.",
            "unsplash": "OAuth error: The access token is invalid",
            "bfl": "Not authenticated",
            "bedrock": "The security token included in the request is invalid.",
            "azure": "Access denied due to invalid subscription key or wrong API endpoint.",
            "together": "Invalid API key provided.",
            "xai": "Incorrect API key provided.",
            "stability": "Missing or invalid API key.",
            "huggingface": "Invalid credentials in Authorization header",
        }
        if api == "google":  # an invalid key is a 400, told apart by its reason
            reason = {"@type": "type.googleapis.com/google.rpc.ErrorInfo",
                      "reason": "API_KEY_INVALID", "domain": "googleapis.com"}  # fmt: skip
            return _error(api, 400, "API key not valid. Please pass a valid API key.",
                          details=[reason])  # fmt: skip
        if api == "bedrock":  # a signature AWS does not know is a 403
            return _error(api, 403, messages[api], code="UnrecognizedClientException")
        return _error(api, 401, messages[api], code="invalid_api_key")
    if fault is Fault.RATE_LIMITED:
        wait = max(1, math.ceil(retry_after))
        messages = {
            "replicate": f"Request was throttled. Your rate limit resets in ~{wait}s.",
            "fal": "Rate limit exceeded",
            "openai": "Rate limit reached for images per minute. Please try again later.",
            "unsplash": "Rate Limit Exceeded",
            "google": "You exceeded your current quota, please check your plan and billing "
            "details.",
            "bfl": "You have exceeded the number of active tasks: 24",
            "bedrock": "Too many requests, please wait before trying again.",
            "azure": "Requests have exceeded the call rate limit of your current tier.",
            "together": "Rate limit exceeded",
            "xai": "Rate limit exceeded",
            "stability": "You have exceeded the rate limit of 150 requests within a 10 second "
            "period, and have been timed out for 60 seconds.",
            "huggingface": "Rate limit reached. Please retry later.",
        }
        return _error(
            api,
            429,
            messages[api],
            retry_after=retry_after,
            type="requests",
            code="rate_limit_exceeded",
        )
    if fault is Fault.UNAVAILABLE:
        return _error(
            api,
            503,
            "Service temporarily unavailable",
            retry_after=retry_after,
            error_type="runner_scheduling_failure",
            type="server_error",
        )
    return _error(
        api,
        500,
        "The server had an error while processing your request.",
        detail="Internal Server Error",
        type="server_error",
    )
