"""fal.ai: FLUX and other apps, called directly (sync) or through fal's queue.

Wire shapes follow fal's docs and official clients (``fal-ai/fal`` ``fal_client``,
``fal-ai/fal-js``); see ``provider-apis.md`` section 2.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import os
import re
from collections.abc import Mapping
from typing import Any, ClassVar, Literal, NoReturn
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import attrs
import httpx

from .._errors import (
    ContentRejected,
    InvalidConfig,
    ProviderError,
    ProviderQuotaExceeded,
    ProviderTimeout,
    ProviderUnavailable,
    WebhookVerificationError,
)
from .._models import ImageRequest
from .._webhooks import verify_fal_webhook
from ._base import (
    WEBHOOK_FIRST_POLL,
    WEBHOOK_POLL_CAP,
    ProviderContext,
    ProviderImage,
    WebhookDelivery,
)
from ._http import HTTPProvider

__all__ = ["Fal", "FalRequest", "image_size"]

# fal's named sizes, from fal's "common model arguments" page
# (docs.fal.ai/documentation/model-apis/model-arguments).
_PRESETS: dict[tuple[int, int], str] = {
    (1024, 1024): "square_hd",
    (512, 512): "square",
    (768, 1024): "portrait_4_3",
    (576, 1024): "portrait_16_9",
    (1024, 768): "landscape_4_3",
    (1024, 576): "landscape_16_9",
}

# fal's infrastructure errors (X-Fal-Error-Type / "error_type"): the runner never
# produced an output, and fal bills no 5xx, so trying again costs nothing.
_INFRA: dict[str, type[ProviderError]] = {
    "request_timeout": ProviderTimeout,
    "startup_timeout": ProviderTimeout,
    "runner_scheduling_failure": ProviderUnavailable,
    "runner_connection_timeout": ProviderUnavailable,
    "runner_disconnected": ProviderUnavailable,
}

_APP = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)+$")
_NAMESPACES = ("workflows", "comfy")  # app ids with one more leading segment
_POLL_GROWTH = 1.5
_POLL_CAP = 5.0
_POLL_RETRIES = 3  # consecutive transient failures tolerated per GET
_POLL_MARGIN = 0.25  # seconds kept back so the last poll can still be answered
_JWKS_URL = "https://rest.alpha.fal.ai/.well-known/jwks.json"
_JWKS_TTL = 24 * 3600.0  # fal's keys are kept a day, as public implementations do
_JWKS_REFRESH = 300.0  # an unknown signature refetches the keys at most this often
TOKEN_PARAM = "imagegen_token"  # noqa: S105 - a query parameter's name
_LOCKED = ("exhausted balance", "top_up", "top up")
_POLICY = ("content_policy", "content policy", "nsfw")


def image_size(width: int, height: int) -> str | dict[str, int]:
    """fal's ``image_size`` for a size: the preset name on an exact match, else the pixels.

    >>> image_size(1024, 768)
    'landscape_4_3'
    >>> image_size(640, 480)
    {'width': 640, 'height': 480}
    """
    return _PRESETS.get((width, height)) or {"width": width, "height": height}


@attrs.frozen
class FalRequest:
    """A queued fal request: what ``ctx.started()`` and ``cancel()`` receive.

    Args:
        request_id: fal's id for the request.
        status_url: Polled until the request is ``COMPLETED``.
        response_url: Answers with the output once completed.
        cancel_url: ``PUT`` here stops the request.
    """

    request_id: str
    status_url: str = attrs.field(repr=False)
    response_url: str = attrs.field(repr=False)
    cancel_url: str = attrs.field(repr=False)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _check_url(value: object, field: str) -> str:
    if not isinstance(value, str):
        raise InvalidConfig(f"fal: {field} must be an http(s) URL string", field=field)
    parts = urlsplit(value)
    if parts.scheme not in ("https", "http") or not parts.netloc:
        raise InvalidConfig(f"fal: {field} must be an http(s) URL (got {value!r})", field=field)
    return value.rstrip("/")


def _with_param(url: str, name: str, value: str) -> str:
    parts = urlsplit(url)
    query = [*parse_qsl(parts.query, keep_blank_values=True), (name, value)]
    return urlunsplit(parts._replace(query=urlencode(query)))


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


def _mentions(value: Any, words: tuple[str, ...]) -> bool:
    text = str(value).lower() if value is not None else ""
    return any(word in text for word in words)


def _policy_violation(body: Any) -> bool:
    """A validation error whose ``detail`` says the prompt or image broke content policy."""
    if not isinstance(body, dict):
        return False
    detail = body.get("detail")
    if isinstance(detail, list):
        return any(
            isinstance(d, dict) and d.get("type") == "content_policy_violation" for d in detail
        )
    return _mentions(detail, _POLICY)


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


class Fal(HTTPProvider):
    """fal.ai, by default ``fal-ai/flux/schnell``.

    **Sync or queue.** A call goes to ``POST {base_url}/{app}`` and waits for the
    image, unless ``queue=True`` or more than ``queue_threshold`` seconds remain
    before the deadline: then it is submitted to ``POST {queue_url}/{app}``
    (with ``?fal_webhook=`` when a webhook URL is set), reported with
    ``ctx.started(FalRequest(...))``, and its status URL is polled every
    ``poll_interval`` seconds, growing 1.5x up to 5 s, never past the deadline.
    Up to three transient failures in a row on those GETs are retried in the
    loop. An abandoned queued request is cancelled with ``PUT cancel_url``. The
    status, result and cancel URLs are the ones the submit returned (they drop
    the app's subpath), used only when they point at ``queue_url``'s host, so the
    key never goes anywhere you did not configure.

    **Webhooks.** With ``webhook_url`` (else ``ctx.webhook_url``) queued requests
    carry ``?fal_webhook=``, and the completion fal posts there (routed by
    ``ImageGenerator.handle_webhook``) ends the wait; status polls remain the safety
    net (first after 5 s, then at most every 15 s). fal signs deliveries with
    Ed25519 against its published JWKS (``webhook_auth="signature"``, the default;
    needs ``imagegen[fal-webhooks]``; keys fetched from ``jwks_url`` and kept a
    day). ``webhook_auth="token"`` instead puts a fresh secret per request in the
    callback URL (``?imagegen_token=``, its hash kept in the state backend until
    the deadline plus two hours) and accepts only deliveries that bring it back.

    **Request body.** fal takes the input itself, not wrapped: ``prompt``,
    ``image_size``, ``num_images`` 1, ``seed`` when set, ``output_format``
    (``"png"`` or ``"jpeg"``; fal's FLUX apps have no WebP, so a WebP request is
    sent as ``"png"``), ``enable_safety_checker`` true, then the request's
    ``provider_options[name]`` merged over all of that. ``negative_prompt`` is not
    sent (FLUX has none); pass it through ``provider_options`` for apps that take it.

    **Size.** ``image_size`` is fal's preset name when the size matches one exactly
    (``square_hd`` 1024x1024, ``square`` 512x512, ``portrait_4_3`` 768x1024,
    ``portrait_16_9`` 576x1024, ``landscape_4_3`` 1024x768, ``landscape_16_9``
    1024x576, as fal's model-arguments page lists them), otherwise
    ``{"width": W, "height": H}``. The width and height reported back are fal's.

    **Errors.** 401 and 403 are :class:`ProviderAuthError`, except fal's
    "User is locked. Reason: Exhausted balance / TOP_UP" 403, which is
    :class:`ProviderQuotaExceeded`. Infrastructure errors (``X-Fal-Error-Type`` or
    ``error_type``: ``request_timeout``, ``startup_timeout`` are
    :class:`ProviderTimeout`; ``runner_*`` are :class:`ProviderUnavailable`) are
    retryable even on the creating POST: they say no output was made and fal bills
    no 5xx (its own queue retries exactly these). Any other 5xx on the creating
    POST follows the shared create rule (not retryable: work may have run), unless
    fal says ``X-Fal-Retryable: true``. ``X-Fal-Retryable`` (or the older
    ``X-Fal-Needs-Retry``) decides whenever fal sends it. Validation errors (422,
    ``detail`` a list or a string) are not retryable; ``content_policy_violation``,
    like ``has_nsfw_concepts`` on an output, is :class:`ContentRejected`.

    **check().** ``GET {platform_url}/models/pricing?endpoint_id={app}`` on fal's
    Platform API (documented, authenticated, free; API-scope keys accepted).
    Gateways that do not proxy ``api.fal.ai`` can set ``platform_url``.

    Args:
        key: The fal key (``id:secret``); default: ``FAL_KEY``, else
            ``FAL_KEY_ID`` and ``FAL_KEY_SECRET`` joined with ``:``.
        app: The fal app id, ``owner/alias[/path]``.
        base_url: The sync host.
        queue_url: The queue host.
        queue: Always use the queue.
        queue_threshold: Seconds; with more left before the deadline, use the queue.
        webhook_url: Passed as ``fal_webhook`` on queued requests (else
            ``ctx.webhook_url``, if the generator sets one).
        webhook_auth: How deliveries are authenticated: ``"signature"`` (fal's
            Ed25519 signature) or ``"token"`` (a per-request secret in the URL).
        jwks_url: Where fal publishes its webhook signing keys.
        poll_interval: First wait between status polls, seconds.
        name: Override the provider's name (``"fal"``).
        tier: Override the tier (0).
        timeout: Cap one call, seconds.

    Raises:
        InvalidConfig: A bad argument; ``field`` names it.
    """

    name = "fal"
    default_base_url: ClassVar[str] = "https://fal.run"
    env_var: ClassVar[str | None] = "FAL_KEY"
    auth_scheme: ClassVar[str] = "Key"
    key_argument: ClassVar[str] = "key"
    env_hint: ClassVar[str | None] = "FAL_KEY (or FAL_KEY_ID and FAL_KEY_SECRET)"
    platform_url: str = "https://api.fal.ai/v1"

    def __init__(
        self,
        *,
        key: str | None = None,
        app: str = "fal-ai/flux/schnell",
        base_url: str = "https://fal.run",
        queue_url: str = "https://queue.fal.run",
        queue: bool = False,
        queue_threshold: float = 20.0,
        webhook_url: str | None = None,
        webhook_auth: Literal["signature", "token"] = "signature",
        jwks_url: str = _JWKS_URL,
        poll_interval: float = 0.5,
        name: str | None = None,
        tier: int | None = None,
        timeout: float | None = None,
    ) -> None:
        if key is not None and (not isinstance(key, str) or not key.strip()):
            raise InvalidConfig("fal: key must be a non-empty string", field="key")
        if key is None and not os.environ.get("FAL_KEY"):
            key_id, secret = os.environ.get("FAL_KEY_ID"), os.environ.get("FAL_KEY_SECRET")
            if key_id and secret:
                key = f"{key_id}:{secret}"
        if not isinstance(app, str) or not _APP.match(app):
            raise InvalidConfig(
                f"fal: app must look like 'owner/alias[/path]' (got {app!r})", field="app"
            )
        if not isinstance(queue, bool):
            raise InvalidConfig("fal: queue must be True or False", field="queue")
        if not _is_number(queue_threshold) or queue_threshold < 0:
            raise InvalidConfig(
                "fal: queue_threshold must be seconds >= 0", field="queue_threshold"
            )
        if not _is_number(poll_interval) or poll_interval <= 0:
            raise InvalidConfig("fal: poll_interval must be seconds > 0", field="poll_interval")
        if webhook_auth not in ("signature", "token"):
            raise InvalidConfig(
                "fal: webhook_auth must be 'signature' or 'token'", field="webhook_auth"
            )
        super().__init__(api_key=key, base_url=base_url, name=name, tier=tier, timeout=timeout)
        self.app = app
        self.queue_url = _check_url(queue_url, "queue_url")
        self.queue = queue
        self.queue_threshold = float(queue_threshold)
        self.webhook_url = None if webhook_url is None else _check_url(webhook_url, "webhook_url")
        self.webhook_auth = webhook_auth
        self.jwks_url = _check_url(jwks_url, "jwks_url")
        self.poll_interval = float(poll_interval)
        self._jwks: Mapping[str, Any] | None = None
        self._jwks_fetched = -math.inf  # monotonic time of the last fetch

    # -- the request ----------------------------------------------------------------

    def body(self, request: ImageRequest) -> dict[str, Any]:
        """The JSON fal gets for ``request`` (see the class docstring)."""
        body: dict[str, Any] = {
            "prompt": request.prompt,
            "image_size": image_size(request.width, request.height),
            "num_images": 1,
        }
        if request.seed is not None:
            body["seed"] = request.seed
        body["output_format"] = "jpeg" if request.output_format == "jpeg" else "png"
        body["enable_safety_checker"] = True
        body.update(request.options_for(self.name))
        return body

    async def generate(self, request: ImageRequest, ctx: ProviderContext) -> ProviderImage:
        """Make one image, directly or through the queue (see the class docstring)."""
        self.require_key()
        body = self.body(request)
        if self.queue or ctx.remaining() > self.queue_threshold:
            return await self._queued(body, ctx)
        response = await self.request(
            ctx, "POST", f"{self.base_url}/{self.app}", json=body, create=True
        )
        return self._image(self._object(response, create=True), None)

    # -- the queue ------------------------------------------------------------------

    async def _queued(self, body: dict[str, Any], ctx: ProviderContext) -> ProviderImage:
        webhook = self.webhook_url or ctx.webhook_url
        if webhook and self.webhook_auth == "token":
            webhook = _with_param(webhook, TOKEN_PARAM, await ctx.webhook_token())
        # If the attempt is abandoned while the submit is in flight, the queued request
        # it makes is cancelled once its id is known.
        response = await ctx.protect_create(
            lambda: self.request(
                ctx,
                "POST",
                f"{self.queue_url}/{self.app}",
                json=body,
                params={"fal_webhook": webhook} if webhook else None,
                create=True,
            ),
            self._cancel_submitted,
        )
        handle = self._handle(self._object(response, create=True))
        ctx.started(handle)
        delay = max(self.poll_interval, WEBHOOK_FIRST_POLL) if webhook else self.poll_interval
        cap = WEBHOOK_POLL_CAP if webhook else _POLL_CAP
        while True:
            if webhook:
                delivered = await ctx.webhook(
                    handle.request_id, within=self._wait(ctx, delay, handle)
                )
                if delivered is not None:
                    return await self._delivered(ctx, handle, delivered)
            else:
                await ctx.clock.sleep(self._wait(ctx, delay, handle))
            delay = min(delay * _POLL_GROWTH, cap)
            status = await self._get(ctx, handle.status_url, params={"logs": "1"})
            state = status.get("status")
            if state == "COMPLETED":
                break
            if state == "IN_QUEUE":
                ctx.logger.debug(
                    "fal %s queued at position %s", handle.request_id, status.get("queue_position")
                )
            elif state != "IN_PROGRESS":
                # Unknown states are tolerated, like fal's clients do, and polled again.
                ctx.logger.debug("fal %s reports status %r", handle.request_id, state)
        error, error_type = status.get("error"), status.get("error_type")
        if error or error_type:
            await self._failed(ctx, handle, error, error_type)
        output = await self._get(ctx, handle.response_url)
        return self._image(output, handle)

    def _handle(self, submitted: dict[str, Any]) -> FalRequest:
        request_id = submitted.get("request_id")
        if not isinstance(request_id, str) or not request_id:
            raise ProviderError(
                "fal's queue answered without a request_id", provider=self.name, retryable=False
            )
        # The URLs fal returned drop the app's subpath; rebuild them the way fal's
        # client does when they are missing or point at a host we were not given.
        parts = self.app.split("/")
        root = "/".join(parts[: 3 if parts[0] in _NAMESPACES else 2])
        base = f"{self.queue_url}/{root}/requests/{request_id}"
        ours = urlsplit(self.queue_url)

        def url(field: str, fallback: str) -> str:
            value = submitted.get(field)
            if isinstance(value, str):
                theirs = urlsplit(value)
                if (theirs.scheme, theirs.netloc) == (ours.scheme, ours.netloc):
                    return value
            return fallback

        return FalRequest(
            request_id=request_id,
            status_url=url("status_url", f"{base}/status"),
            response_url=url("response_url", base),
            cancel_url=url("cancel_url", f"{base}/cancel"),
        )

    def _wait(self, ctx: ProviderContext, delay: float, handle: FalRequest) -> float:
        """How long to wait before the next status poll; raises once the deadline is near."""
        wait = min(delay, ctx.remaining() - _POLL_MARGIN)
        if wait <= 0:
            raise ProviderTimeout(
                f"fal request {handle.request_id} was not done by the deadline",
                provider=self.name,
                retryable=False,
            )
        return wait

    async def _delivered(  # noqa: RET503 - _failed always raises
        self, ctx: ProviderContext, handle: FalRequest, delivery: Mapping[str, Any]
    ) -> ProviderImage:
        """The image (or the error) a webhook delivery reports."""
        output = delivery.get("payload")
        if delivery.get("status") == "OK" and isinstance(output, dict):
            return self._image(output, handle)
        error = delivery.get("error") or delivery.get("payload_error") or "no payload"
        if _policy_violation(output) or _mentions(error, _POLICY):
            raise ContentRejected(
                self.redact(f"fal request {handle.request_id} was refused: {error}"),
                provider=self.name,
            )
        error_type = output.get("error_type") if isinstance(output, dict) else None
        await self._failed(ctx, handle, error, error_type)

    async def _get(
        self,
        ctx: ProviderContext,
        url: str,
        *,
        params: dict[str, str] | None = None,
        retries: int = _POLL_RETRIES,
    ) -> dict[str, Any]:
        """GET a queue URL; transient failures are retried here, since raising ends the attempt."""
        delay = self.poll_interval
        failures = 0
        while True:
            try:
                return self._object(await self.request(ctx, "GET", url, params=params))
            except ProviderError as exc:
                failures += 1
                if not exc.retryable or failures > retries:
                    raise
                ctx.logger.info("fal: retrying a GET after %r", exc)
            wait = min(delay, ctx.remaining() - _POLL_MARGIN)
            if wait <= 0:
                raise ProviderTimeout(
                    "fal's queue did not answer by the deadline",
                    provider=self.name,
                    retryable=False,
                )
            await ctx.clock.sleep(wait)
            delay = min(delay * _POLL_GROWTH, _POLL_CAP)

    async def _failed(
        self, ctx: ProviderContext, handle: FalRequest, error: object, error_type: object
    ) -> NoReturn:
        message = self.redact(f"fal request {handle.request_id} failed: {error or error_type}")
        infra = _INFRA.get(error_type) if isinstance(error_type, str) else None
        if infra is not None:
            raise infra(message, provider=self.name, retryable=False)
        if _mentions(error, _POLICY) or error_type == "content_policy_violation":
            raise ContentRejected(message, provider=self.name)
        # A model error ("Invalid status code: 422"): the result URL answers with the
        # classified body (a content-policy 422 becomes ContentRejected).
        await self._get(ctx, handle.response_url, retries=0)
        raise ProviderError(message, provider=self.name, retryable=False)

    async def _cancel_submitted(self, response: httpx.Response, ctx: ProviderContext) -> None:
        """Cancel the queued request an abandoned submit made (it was never reported)."""
        try:
            handle = self._handle(self._object(response, create=True))
        except ProviderError:
            return  # no readable id: nothing we can cancel
        await self.cancel(handle, ctx)

    async def cancel(self, handle: object, ctx: ProviderContext) -> None:
        """Stop a queued request: ``PUT cancel_url``. Finished or unknown requests are left be."""
        if not isinstance(handle, FalRequest):
            return
        # The generator hands cancel() a fresh, short deadline of its own.
        try:
            response = await self.request(ctx, "PUT", handle.cancel_url)
        except ProviderError as exc:
            if exc.status in (400, 404):  # ALREADY_COMPLETED / NOT_FOUND
                ctx.logger.info("fal request %s was not cancelled: %s", handle.request_id, exc)
                return
            raise
        ctx.logger.info(
            "fal request %s: cancel answered %s", handle.request_id, response.text[:100]
        )

    # -- webhooks -------------------------------------------------------------------

    async def receive_webhook(
        self,
        headers: Mapping[str, str],
        body: bytes,
        ctx: ProviderContext,
        *,
        now: float,
        params: Mapping[str, str] | None = None,
    ) -> WebhookDelivery:
        """Verify a delivery (see the class docstring) and read it.

        The queue's ``request_id`` names both the delivery (fal retries a failed
        delivery with the same one, so a second arrival is a replay) and the work.

        Raises:
            WebhookVerificationError: A bad signature or token, or a stale timestamp.
            ProviderError: fal's keys could not be fetched, or the verified body is
                not a fal webhook.
        """
        if self.webhook_auth == "token":
            token = (params or {}).get(TOKEN_PARAM, "")
            if not await ctx.check_webhook_token(token):
                raise WebhookVerificationError(
                    f"fal: the delivery's {TOKEN_PARAM} is missing, unknown or expired"
                )
        else:
            await self._verify_signature(headers, body, ctx, now=now)
        try:
            data = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError):
            data = None
        request_id = data.get("request_id") if isinstance(data, dict) else None
        if not isinstance(request_id, str) or not request_id:
            raise ProviderError(
                "fal webhook body has no request_id", provider=self.name, retryable=False
            )
        assert isinstance(data, dict)  # noqa: S101 - narrowing for the type checker
        return WebhookDelivery(id=request_id, work_id=request_id, payload=data)

    async def _verify_signature(
        self, headers: Mapping[str, str], body: bytes, ctx: ProviderContext, *, now: float
    ) -> None:
        jwks = await self._keys(ctx, refresh=False)
        try:
            verify_fal_webhook(headers, body, jwks=jwks, now=now)
        except WebhookVerificationError:
            # fal may have rotated its keys since we fetched them: look again, rarely.
            if ctx.clock.monotonic() - self._jwks_fetched < _JWKS_REFRESH:
                raise
            verify_fal_webhook(headers, body, jwks=await self._keys(ctx, refresh=True), now=now)

    async def _keys(self, ctx: ProviderContext, *, refresh: bool) -> Mapping[str, Any]:
        """fal's JWKS, fetched without our key (it is public) and kept a day."""
        fresh = ctx.clock.monotonic() - self._jwks_fetched < _JWKS_TTL
        if self._jwks is not None and fresh and not refresh:
            return self._jwks
        try:
            response = await ctx.http.get(self.jwks_url, timeout=ctx.remaining() or None)
            response.raise_for_status()
            jwks = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise ProviderUnavailable(
                f"fal: could not fetch the webhook keys from {self.jwks_url}: {type(exc).__name__}",
                provider=self.name,
            ) from None
        if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list):
            raise ProviderUnavailable(
                f"fal: {self.jwks_url} did not answer with a JWKS", provider=self.name
            )
        self._jwks, self._jwks_fetched = jwks, ctx.clock.monotonic()
        return jwks

    # -- answers --------------------------------------------------------------------

    def _object(self, response: httpx.Response, *, create: bool = False) -> dict[str, Any]:
        """The JSON object in ``response``; after a create, a bad answer is not retried."""
        try:
            data = self.json(response)
        except ProviderError as exc:
            # A 2xx to a create means fal took (and may bill) the work: a retry pays twice.
            exc.retryable = exc.retryable and not create
            raise
        if not isinstance(data, dict):
            raise ProviderUnavailable(
                f"fal answered {type(data).__name__}, not an object",
                provider=self.name,
                status=response.status_code,
                retryable=not create,
            )
        return data

    def _image(self, output: dict[str, Any], handle: FalRequest | None) -> ProviderImage:
        nsfw = output.get("has_nsfw_concepts")
        if isinstance(nsfw, list) and nsfw and nsfw[0] is True:
            raise ContentRejected("fal's safety checker flagged the image", provider=self.name)
        images = output.get("images")
        first = images[0] if isinstance(images, list) and images else None
        url = first.get("url") if isinstance(first, dict) else None
        if not isinstance(url, str) or not url:
            raise ProviderError(
                "fal's output has no images[0].url", provider=self.name, retryable=False
            )
        assert isinstance(first, dict)  # noqa: S101 - narrowing for the type checker
        content_type = first.get("content_type")
        fields: dict[str, Any] = {
            "content_type": content_type if isinstance(content_type, str) else None,
            "width": _int(first.get("width")),
            "height": _int(first.get("height")),
            "seed": _int(output.get("seed")),
            "raw": output,
            "handle": handle,
        }
        if url.startswith("data:"):
            # sync_mode=True (a provider option) inlines the image as a data URI.
            return ProviderImage(data=self._data_uri(url), **fields)
        return ProviderImage(url=url, **fields)

    def _data_uri(self, url: str) -> bytes:
        header, _, payload = url.partition(",")
        if not header.endswith(";base64"):
            raise ProviderError("fal's data URI is not base64", provider=self.name, retryable=False)
        try:
            return base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError):
            raise ProviderError(
                "fal's data URI holds invalid base64", provider=self.name, retryable=False
            ) from None

    def classify(
        self,
        response: httpx.Response,
        body: Any,
        message: str,
        retry_after: float | None,
    ) -> ProviderError | None:
        """fal's error shapes: account locks, infrastructure types, content policy, retry hints."""
        status, name = response.status_code, self.name
        detail = body.get("detail") if isinstance(body, dict) else None
        if status in (402, 403) and _mentions(detail, _LOCKED):
            return ProviderQuotaExceeded(message, provider=name, status=status)
        if status in (401, 403):
            return None
        hint = _retry_hint(response.headers)
        error_type = response.headers.get("x-fal-error-type")
        if (
            error_type is None
            and isinstance(body, dict)
            and isinstance(body.get("error_type"), str)
        ):
            error_type = body["error_type"]
        infra = _INFRA.get(error_type) if error_type else None
        if infra is not None:
            return infra(
                message,
                provider=name,
                status=status,
                retry_after=retry_after,
                retryable=True if hint is None else hint,
            )
        if status in (400, 422) and _policy_violation(body):
            return ContentRejected(message, provider=name, status=status)
        if hint is not None and status != 429:
            cls = (
                ProviderUnavailable
                if status >= 500
                else ProviderTimeout
                if status == 408
                else ProviderError
            )
            return cls(
                message, provider=name, status=status, retry_after=retry_after, retryable=hint
            )
        return super().classify(response, body, message, retry_after)

    # -- check ----------------------------------------------------------------------

    async def check(self, ctx: ProviderContext) -> None:
        """Verify the key without paying: fal's pricing lookup for ``app``.

        ``GET {platform_url}/models/pricing?endpoint_id={app}`` needs a valid key
        and bills nothing. A 401 or 403 raises :class:`ProviderAuthError` (a
        balance lock: :class:`ProviderQuotaExceeded`); 429, 5xx and connection
        errors raise as usual. Any other answer means the key was accepted; an app
        the pricing list does not know (private apps) is only logged.

        Raises:
            ProviderError: The subclass that fits the failure.
        """
        self.require_key()
        try:
            response = await self.request(
                ctx,
                "GET",
                f"{self.platform_url.rstrip('/')}/models/pricing",
                params={"endpoint_id": self.app},
            )
        except ProviderError as exc:
            if (
                exc.status is not None
                and 400 <= exc.status < 500
                and exc.status
                not in (
                    401,
                    402,
                    403,
                    408,
                    429,
                )
            ):
                ctx.logger.warning("fal: the key works, but the pricing lookup said: %s", exc)
                return
            raise
        ctx.logger.debug("fal: key accepted; pricing %s", response.text[:200])

    def __repr__(self) -> str:
        key = "set" if self.has_key else "missing"
        return f"Fal(name={self.name!r}, app={self.app!r}, queue={self.queue!r}, key={key})"
