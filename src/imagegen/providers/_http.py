"""Shared HTTP plumbing for providers: auth, bodies, errors, Retry-After, JSON, redaction.

Foreign exceptions are translated here, at one boundary: every httpx exception
and every error status becomes the imagegen error that says whether trying again
can help. Creating a generation is not idempotent, so a request made with
``create=True`` is marked retryable only when the failure proves nothing was
created (the connection was refused, a 429, a 503 with Retry-After), and it tells
its context (:attr:`ProviderContext.create_sent`) once it may have reached the
vendor. Answers are read with a size cap, before any parsing. Secrets never reach
the log: httpx logs each request's URL at INFO, so while a request runs, its
secrets (the key, what its URL carries) are masked in httpx's log records (see
``imagegen._webhooks.hidden_in_logs``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, ClassVar, Final, Self

import httpx

from .._download import DownloadPolicy
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
from .._webhooks import hidden_in_logs, url_secrets
from ._base import Provider, ProviderContext
from ._http_io import CreateSending, Form, FormFile, body_arguments, read_answer
from ._payloads import SAFETY_WORDS, checked_url, error_message, first_mentioned, json_or_none
from ._tokens import AccessTokens

__all__ = [
    "DEFAULT_MAX_RESPONSE_BYTES",
    "FormFile",
    "HTTPProvider",
    "error_message",
]

_CONNECT_TIMEOUT = 10.0
#: The default cap on one answer of a vendor's API: the largest image the default
#: DownloadPolicy accepts, in base64 (4/3 of it, as an inline image comes), plus
#: 1 MiB for the JSON around it.
DEFAULT_MAX_RESPONSE_BYTES: Final = DownloadPolicy().max_bytes * 4 // 3 + 2**20


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

    The key never appears in ``repr``, errors or logs. Answers longer than
    ``max_response_bytes`` (default :data:`DEFAULT_MAX_RESPONSE_BYTES`) are refused.
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
    #: The most bytes one answer may hold; a longer one is refused before any parsing
    #: (a non-retryable ProviderUnavailable). Set it on a subclass or an instance.
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES
    #: Where a vendor authenticated by bearer tokens (Vertex AI, Azure's Entra ID)
    #: gets one before each request, instead of a key; None: the key.
    tokens: AccessTokens | None = None

    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        name: str | None = None,
        tier: int | None = None,
        timeout: float | None = None,
        price_per_image: float | None = None,
    ) -> None:
        super().__init__(name=name, tier=tier, timeout=timeout, price_per_image=price_per_image)
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
            InvalidConfig: A variable holds a value the constructor refuses; the
                message and ``field`` name the variable.
        """
        key = cls.key_from_env(environ)
        if key is None:
            return None
        settings: dict[str, Any] = {
            arg: environ[var] for arg, var in cls.env_settings.items() if environ.get(var)
        }
        try:
            return cls(**{cls.key_argument: key, **settings})
        except InvalidConfig as exc:
            if exc.field not in settings:
                raise
            variable = cls.env_settings[exc.field]
            raise InvalidConfig(f"{variable}: {exc}", field=variable) from None

    @property
    def has_key(self) -> bool:
        """Whether a key was given or found in the environment (or a token source)."""
        return self._key is not None or self.tokens is not None

    def require_key(self) -> None:
        """Raise ProviderAuthError, saying how to give one, when there is no key (nor
        a token source)."""
        if self._key is None and self.tokens is None:
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

    async def request_auth(self) -> dict[str, str]:
        """The auth headers of the next request: ``Authorization: Bearer`` with a token
        from :attr:`tokens` (fetched or refreshed first) when it is set, else
        :meth:`auth_headers`."""
        if self.tokens is not None:
            return {"Authorization": f"Bearer {await self.tokens.get()}"}
        return self.auth_headers()

    def redact(self, text: str) -> str:
        """``text`` with the key (and its secret half, for ``id:secret`` keys) and the
        last bearer token masked."""
        token = self.tokens.current if self.tokens is not None else None
        if token:
            text = text.replace(token, "***")
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

    def log_secrets(self) -> tuple[str, ...]:
        """What :meth:`request` masks in httpx's log: the key, its secret half, and the
        credentials ``base_url`` may carry (a password, query values)."""
        token = self.tokens.current if self.tokens is not None else None
        tokens = (token,) if token else ()
        if self._key is None:
            return (*tokens, *url_secrets(self.base_url))
        return (self._key, self._key.partition(":")[2], *tokens, *url_secrets(self.base_url))

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
        hide: Iterable[str] = (),
        on_chunk: Callable[[bytes], Awaitable[None]] | None = None,
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
        retryable only when they prove nothing was created, and once it may have
        reached the vendor, ``ctx.create_sent`` is set.

        The answer is read as it streams in, and refused once it passes
        ``max_response_bytes`` (of an error answer only the first 64 KiB are kept);
        ``on_chunk`` sees each piece of a successful answer as it comes (a stream).
        While the request runs, httpx's log shows ``***`` for the key, for
        ``hide`` (secrets the URL or its parameters carry) and for callback tokens.

        Raises:
            ProviderError: The subclass that fits the failure.
            ProviderUnavailable: The answer is longer than ``max_response_bytes``
                (not retryable: asking again brings the same answer).
            TypeError: More than one body, or ``content_type`` without ``content``
                (a mistake in the provider, not a vendor failure).
        """
        body = body_arguments(json, form, content, content_type)
        if authenticate:
            self.require_key()
        send_headers = {"User-Agent": user_agent(), "Accept": "application/json"}
        if content is not None:
            send_headers["Content-Type"] = content_type or "application/octet-stream"
        if authenticate:
            send_headers.update(await self.request_auth())
        send_headers.update(headers or {})
        remaining = max(0.001, ctx.remaining())
        timeout = httpx.Timeout(remaining, connect=min(_CONNECT_TIMEOUT, remaining))
        sending = CreateSending(ctx) if create else None
        outgoing = ctx.http.build_request(
            method,
            self.url(path),
            params=params,
            headers=send_headers,
            timeout=timeout,
            extensions=None if sending is None else {"trace": sending.trace},
            **body,
        )
        with hidden_in_logs(*self.log_secrets(), *hide):
            try:
                response = await read_answer(
                    ctx.http,
                    outgoing,
                    limit=self.max_response_bytes,
                    provider=self.name,
                    on_chunk=on_chunk,
                )
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                # The request never reached the vendor: nothing can have been created.
                raise ProviderUnavailable(
                    f"cannot connect: {type(exc).__name__}", provider=self.name
                ) from None
            except BaseException as exc:
                if sending is not None:
                    sending.ended(exc)
                if isinstance(exc, httpx.HTTPError):
                    raise self._failure(method, exc, create=create) from None
                raise
        if sending is not None:
            sending.answered()
        if response.status_code >= 400:
            raise self.error_for(response, create=create)
        return response

    async def check_model(self, ctx: ProviderContext, path: str, model: str) -> httpx.Response:
        """``GET path``, the vendor's free lookup of ``model``, for :meth:`check`.

        Raises:
            ProviderError: Status 404, saying ``model`` is unknown at ``base_url``; any
                other failure as mapped for every request.
        """
        try:
            return await self.request(ctx, "GET", path)
        except ProviderError as exc:
            if exc.status == 404:
                raise ProviderError(
                    f"model {model!r} is unknown at {self.base_url}: {exc}",
                    provider=self.name,
                    status=404,
                    retryable=False,
                ) from None
            raise

    def _failure(self, method: str, exc: httpx.HTTPError, *, create: bool) -> ProviderError:
        """The error an httpx failure after connecting stands for."""
        name = type(exc).__name__
        if isinstance(exc, httpx.TimeoutException):
            return ProviderTimeout(
                f"{method} timed out: {name}", provider=self.name, retryable=not create
            )
        if isinstance(exc, httpx.TransportError):
            return ProviderUnavailable(
                f"{method} failed: {name}", provider=self.name, retryable=not create
            )
        return ProviderError(
            f"{method} could not be sent: {name}", provider=self.name, retryable=False
        )

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
        reason = first_mentioned(body, SAFETY_WORDS) if response.status_code in (400, 422) else None
        if reason is not None:
            return ContentRejected(
                message, provider=self.name, status=response.status_code, reason=reason
            )
        return None

    def __repr__(self) -> str:
        key = "set" if self._key else "missing"
        return f"{type(self).__name__}(name={self.name!r}, base_url={self.base_url!r}, key={key})"
