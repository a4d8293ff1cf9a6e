"""Shared HTTP plumbing for providers: auth, bodies, errors, Retry-After, JSON, redaction.

Foreign exceptions are translated here, at one boundary: every httpx exception
and every error status becomes the imagegen error that says whether trying again
can help. Creating a generation is not idempotent, so a request made with
``create=True`` is marked retryable only when the failure proves nothing was
created (the connection was refused, a 429, a 503 with Retry-After).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Self

import attrs
import httpx

from .._errors import (
    ContentRejected,
    InvalidConfig,
    ProviderAuthError,
    ProviderError,
    ProviderQuotaExceeded,
    ProviderRateLimited,
    ProviderTimeout,
    ProviderUnavailable,
)
from .._http_headers import parse_retry_after, user_agent
from ._base import Provider, ProviderContext
from ._payloads import SAFETY_WORDS, checked_url, json_or_none, mentions

__all__ = ["FormFile", "HTTPProvider", "error_message"]

_CONNECT_TIMEOUT = 10.0


@attrs.frozen
class FormFile:
    """One file in a multipart body (see :meth:`HTTPProvider.request`'s ``form=``).

    Args:
        data: The file's bytes (never shown in repr).
        filename: The part's file name; vendors often check its extension.
        content_type: The part's Content-Type.
    """

    data: bytes = attrs.field(repr=False)
    filename: str = "file"
    content_type: str = "application/octet-stream"


#: A multipart body: fields (str) and files, by name; a sequence repeats a name.
Form = Mapping[str, str | FormFile] | Sequence[tuple[str, str | FormFile]]


class HTTPProvider(Provider):
    """A provider that speaks to a vendor's HTTP API.

    Subclasses set ``default_base_url``, ``env_var`` (where the key is read from
    when ``api_key`` is not given) and ``auth_scheme``, and use :meth:`request`
    (JSON, multipart or raw bytes) and :meth:`json`; the status mapping and
    error-body parsing are shared, with :meth:`classify` as the hook for vendor
    specifics (content policy, quota). :meth:`from_env` builds one from
    environment variables (``env_var`` and ``env_settings``).

    Args:
        api_key: The vendor key; default: the environment variable ``env_var``.
        base_url: The API root; tests and self-hosted gateways point it elsewhere.
        name: Override the provider's name.
        tier: Override the provider's tier.
        timeout: Override the provider's per-call timeout (seconds).

    The key never appears in ``repr``, errors or logs.
    """

    default_base_url: ClassVar[str] = ""
    env_var: ClassVar[str | None] = None
    auth_scheme: ClassVar[str] = "Bearer"
    #: The constructor argument users pass the key as, for error messages.
    key_argument: ClassVar[str] = "api_key"
    #: How to name the environment variables in error messages (default: ``env_var``).
    env_hint: ClassVar[str | None] = None
    #: A response header holding the vendor's request id, quoted in error messages
    #: (it is what the vendor's support asks for; it is not a secret).
    request_id_header: ClassVar[str | None] = None
    #: Constructor keywords :meth:`from_env` reads besides the key: argument -> variable.
    env_settings: ClassVar[Mapping[str, str]] = {}

    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        name: str | None = None,
        tier: int | None = None,
        timeout: float | None = None,
    ) -> None:
        super().__init__(name=name, tier=tier, timeout=timeout)
        if api_key is None and self.env_var:
            api_key = os.environ.get(self.env_var) or None
        if api_key is not None and (not isinstance(api_key, str) or not api_key.strip()):
            raise InvalidConfig(
                f"{self.name}: {self.key_argument} must be a non-empty string",
                field=self.key_argument,
            )
        self._key = api_key.strip() if api_key else None
        self.base_url = checked_url(base_url or self.default_base_url, "base_url", self.name)

    @classmethod
    def key_from_env(cls, environ: Mapping[str, str]) -> str | None:
        """The key as ``environ`` gives it (``env_var``); None when it is not set."""
        return (environ.get(cls.env_var) or None) if cls.env_var else None

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Self | None:
        """This provider configured from ``environ``; None when its key is not set there.

        The key comes from :meth:`key_from_env` and is passed as ``key_argument``;
        each variable of ``env_settings`` that is set (not empty) becomes the
        constructor keyword it is listed under.

        Raises:
            InvalidConfig: A variable holds a value the constructor refuses.
        """
        key = cls.key_from_env(environ)
        if key is None:
            return None
        settings: dict[str, Any] = {
            arg: environ[var] for arg, var in cls.env_settings.items() if environ.get(var)
        }
        return cls(**{cls.key_argument: key, **settings})

    @property
    def has_key(self) -> bool:
        """Whether a key was given or found in the environment."""
        return self._key is not None

    def require_key(self) -> None:
        """Raise ProviderAuthError, saying how to give one, when there is no key."""
        if self._key is None:
            where = self.env_hint or self.env_var
            hint = f" or set {where}" if where else ""
            raise ProviderAuthError(
                f"no API key: pass {self.key_argument}={hint}", provider=self.name
            )

    def auth_headers(self) -> dict[str, str]:
        """The vendor's auth header for this key."""
        if self._key is None:
            return {}
        return {"Authorization": f"{self.auth_scheme} {self._key}"}

    def redact(self, text: str) -> str:
        """``text`` with the key (and its secret half, for ``id:secret`` keys) masked."""
        if self._key:
            text = text.replace(self._key, "***")
            _, _, secret = self._key.partition(":")
            if len(secret) >= 8:
                text = text.replace(secret, "***")
        return text

    def url(self, path: str) -> str:
        """``path`` joined to ``base_url``; absolute URLs pass through."""
        if path.startswith(("https://", "http://")):
            return path
        return f"{self.base_url}/{path.lstrip('/')}"

    async def request(
        self,
        ctx: ProviderContext,
        method: str,
        path: str,
        *,
        json: Any = None,
        form: Form | None = None,
        content: bytes | None = None,
        content_type: str | None = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        create: bool = False,
        authenticate: bool = True,
    ) -> httpx.Response:
        """Send one request within ``ctx``'s deadline; a non-2xx answer raises.

        The body is at most one of ``json`` (any JSON value), ``form`` (a
        ``multipart/form-data`` body: ``str`` values are fields, :class:`FormFile`
        values are files; pairs in a sequence may repeat a name) and ``content``
        (raw bytes, sent as ``content_type``, by default
        ``application/octet-stream``). Auth, the deadline, the error mapping and
        ``Retry-After`` are the same for all three. ``headers`` are sent last, so
        they can replace ``Accept`` (``image/*`` for vendors that answer in bytes).

        ``create=True`` marks a request that makes billable work: its failures are
        retryable only when they prove nothing was created.

        Raises:
            ProviderError: The subclass that fits the failure.
            TypeError: More than one body, or ``content_type`` without ``content``
                (a mistake in the provider, not a vendor failure).
        """
        body = _body_arguments(json, form, content, content_type)
        if authenticate:
            self.require_key()
        send_headers = {"User-Agent": user_agent(), "Accept": "application/json"}
        if content is not None:
            send_headers["Content-Type"] = content_type or "application/octet-stream"
        if authenticate:
            send_headers.update(self.auth_headers())
        send_headers.update(headers or {})
        remaining = max(0.001, ctx.remaining())
        timeout = httpx.Timeout(remaining, connect=min(_CONNECT_TIMEOUT, remaining))
        try:
            response = await ctx.http.request(
                method,
                self.url(path),
                params=params,
                headers=send_headers,
                timeout=timeout,
                **body,
            )
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            # The request never reached the vendor: nothing can have been created.
            raise ProviderUnavailable(
                f"cannot connect: {type(exc).__name__}", provider=self.name
            ) from None
        except httpx.TimeoutException as exc:
            raise ProviderTimeout(
                f"{method} timed out: {type(exc).__name__}",
                provider=self.name,
                retryable=not create,
            ) from None
        except httpx.TransportError as exc:
            raise ProviderUnavailable(
                f"{method} failed: {type(exc).__name__}", provider=self.name, retryable=not create
            ) from None
        except httpx.HTTPError as exc:
            raise ProviderError(
                f"{method} could not be sent: {type(exc).__name__}",
                provider=self.name,
                retryable=False,
            ) from None
        if response.status_code >= 400:
            raise self.error_for(response, create=create)
        return response

    def json(self, response: httpx.Response, *, create: bool = False) -> Any:
        """The response body as JSON; an unreadable body is a ProviderUnavailable.

        It is retryable unless ``create`` says the answer came from a request that
        created billable work (which a retry would create again).
        """
        try:
            return response.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise ProviderUnavailable(
                f"malformed JSON in a {response.status_code} answer",
                provider=self.name,
                status=response.status_code,
                retryable=not create,
            ) from None

    def json_object(
        self, response: httpx.Response, *, create: bool = False, what: str = "an object"
    ) -> dict[str, Any]:
        """The JSON object in ``response``; anything else is a ProviderUnavailable.

        As with :meth:`json`, it is retryable unless ``create`` says the answer came
        from a request that created billable work. ``what`` names the object in the
        message ("a prediction").
        """
        data = self.json(response, create=create)
        if not isinstance(data, dict):
            raise ProviderUnavailable(
                f"{self.name} answered {type(data).__name__}, not {what}",
                provider=self.name,
                status=response.status_code,
                retryable=not create,
            )
        return data

    def error_for(self, response: httpx.Response, *, create: bool = False) -> ProviderError:
        """The error an error response stands for (see the status table in docs/providers.md)."""
        status = response.status_code
        body = json_or_none(response.content)
        message = self.redact(f"HTTP {status}: {error_message(body, response)}")
        request_id = response.headers.get(self.request_id_header or "", "")
        if request_id:
            message = f"{message} (request id {request_id})"
        retry_after = parse_retry_after(response.headers)
        special = self.classify(response, body, message, retry_after)
        if special is not None:
            return special
        name = self.name
        if status in (401, 403):
            return ProviderAuthError(message, provider=name, status=status)
        if status == 402:
            return ProviderQuotaExceeded(message, provider=name, status=status)
        if status == 429:
            return ProviderRateLimited(
                message, provider=name, status=status, retry_after=retry_after
            )
        if status == 408:
            return ProviderTimeout(message, provider=name, status=status, retryable=not create)
        if status >= 500:
            # A create that failed with 5xx may still have created work, unless the vendor
            # says it is overloaded and when to come back.
            retryable = not create or (status == 503 and retry_after is not None)
            return ProviderUnavailable(
                message, provider=name, status=status, retry_after=retry_after, retryable=retryable
            )
        return ProviderError(message, provider=name, status=status, retryable=False)

    def classify(
        self, response: httpx.Response, body: Any, message: str, retry_after: float | None
    ) -> ProviderError | None:
        """Vendor-specific mapping before the generic one; None to use the generic one.

        The default recognises safety rejections by the usual words in the body
        (``content_policy_violation``, ``nsfw``, ``safety``) on 400/422.
        """
        if response.status_code in (400, 422) and mentions(body, SAFETY_WORDS):
            return ContentRejected(message, provider=self.name, status=response.status_code)
        return None

    def __repr__(self) -> str:
        key = "set" if self._key else "missing"
        return f"{type(self).__name__}(name={self.name!r}, base_url={self.base_url!r}, key={key})"


def _body_arguments(
    json: Any, form: Form | None, content: bytes | None, content_type: str | None
) -> dict[str, Any]:
    """httpx's keyword for the one body given (see :meth:`HTTPProvider.request`)."""
    given = [n for n, v in (("json", json), ("form", form), ("content", content)) if v is not None]
    if len(given) > 1:
        raise TypeError(f"request() takes one body, not {' and '.join(given)}")
    if content_type is not None and content is None:
        raise TypeError("request(content_type=...) goes with content=")
    if content is not None:
        return {"content": content}
    if form is None:
        return {"json": json}
    items = form.items() if isinstance(form, Mapping) else form
    # Fields go as parts without a file name, so even a form without files is sent as
    # multipart/form-data (httpx would send fields alone url-encoded).
    parts = [
        (name, (value.filename, value.data, value.content_type))
        if isinstance(value, FormFile)
        else (name, (None, value))
        for name, value in items
    ]
    if not parts:
        raise TypeError("request(form=...) needs at least one field or file")
    return {"files": parts}


def error_message(body: Any, response: httpx.Response) -> str:
    """The most useful text in a vendor's error body, in any of the shapes vendors use."""
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and error.get("message"):  # OpenAI
            return str(error["message"])
        detail = body.get("detail")
        if isinstance(detail, list):  # fal / FastAPI validation errors
            return "; ".join(
                f"{'.'.join(map(str, d.get('loc', ())))}: {d.get('msg', '')}".strip(": ")
                if isinstance(d, dict)
                else str(d)
                for d in detail
            )
        if detail:  # Replicate problem details, fal infrastructure errors
            title = body.get("title")
            return f"{title}: {detail}" if title else str(detail)
        errors = body.get("errors")
        if isinstance(errors, list) and errors:  # Unsplash
            return "; ".join(map(str, errors))
        if isinstance(error, str):
            return error
        if body.get("title"):
            return str(body["title"])
    text = response.text.strip() if response.content else ""
    return text[:200] or response.reason_phrase or "no details"
