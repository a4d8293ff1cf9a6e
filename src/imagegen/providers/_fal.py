"""fal.ai: FLUX and other apps, called directly (sync) or through fal's queue.

Wire shapes follow fal's docs and official clients (``fal-ai/fal`` ``fal_client``,
``fal-ai/fal-js``). Webhook checks live in ``_fal_webhooks``, error shapes in
``_fal_errors``, hosts, sizes, keys and queue states in ``_fal_wire``; the queue's
submit/poll loop is the shared one of ``_polling``.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Mapping
from typing import Any, ClassVar, Literal, NoReturn

import httpx

from .._errors import ContentRejected, InvalidConfig, ProviderError
from .._models import ImageRequest
from .._webhooks import url_secrets
from ._base import ProviderContext, ProviderImage, WebhookDelivery
from ._fal_errors import POLICY, classify_fal, infra_error, policy_reason, policy_violation
from ._fal_webhooks import JWKS_URL, FalWebhooks
from ._fal_wire import (
    APP,
    EDIT_INPUTS,
    NAMESPACES,
    PLATFORM_URL,
    QUEUE_URL,
    RUN_URL,
    FalRequest,
    beside,
    image_size,
    key_in,
    progress,
)
from ._http import HTTPProvider
from ._payloads import (
    FLUX_UNSUPPORTED,
    as_int,
    checked_url,
    decode_data_uri,
    edit_capability,
    edit_inputs,
    first_mentioned,
    is_number,
    mentions,
    same_origin,
)
from ._polling import PollSchedule, RemoteWork, fetch_result, submit_work, wait_for_work
from ._prices import fal_price

__all__ = ["Fal", "FalRequest", "image_size"]

# Statuses of a pricing lookup that say something about the key or the account; any
# other 4xx means the key was accepted (see Fal.check).
_KEY_STATUSES = (401, 402, 403, 408, 429)


class Fal(HTTPProvider):
    """fal.ai, by default ``fal-ai/flux/schnell``.

    **Sync or queue.** A call goes to ``POST {base_url}/{app}`` and waits for the
    image, unless ``queue=True`` or more than ``queue_threshold`` seconds remain
    before the deadline: then it is submitted to ``POST {queue_url}/{app}``
    (with ``?fal_webhook=`` when a webhook URL is set), reported with
    ``ctx.started(FalRequest(...))``, and its status URL is polled every
    ``poll_interval`` seconds, growing 1.5x up to 5 s, never past the deadline.
    Up to three transient failures in a row on those GETs (and on the result GET)
    are retried in the loop, a ``Retry-After`` stretching the wait after one. An
    abandoned queued request is cancelled with ``PUT cancel_url``. The
    status, result and cancel URLs are the ones the submit returned (they drop
    the app's subpath), used only when they point at ``queue_url``'s host, so the
    key never goes anywhere you did not configure.

    **Webhooks.** With ``webhook_url`` (else ``ctx.webhook_url``) queued requests
    carry ``?fal_webhook=``, and the completion fal posts there (routed by
    ``ImageGenerator.handle_webhook``) ends the wait; status polls remain the safety
    net (first after 5 s, then at most every 15 s). fal signs deliveries with
    Ed25519 against its published JWKS (``webhook_auth="signature"``, the default;
    needs ``imagegen-failover[fal-webhooks]``; keys fetched from ``jwks_url`` and kept a
    day). ``webhook_auth="token"`` instead puts a fresh secret per request in the
    callback URL (``?imagegen_token=``; its hash kept in the state backend until the
    deadline plus fal's two hours of delivery retries), bound to the request id once
    the submit answers: it is accepted once, from a delivery about that request.

    **Request body.** fal takes the input itself, not wrapped: ``prompt``,
    ``image_size``, ``num_images`` 1, ``seed`` when set, ``output_format``
    (``"png"`` or ``"jpeg"``; fal's FLUX apps have no WebP, so a WebP request is
    sent as ``"png"``), ``enable_safety_checker`` true, then the request's
    ``provider_options[name]`` merged over all of that. ``negative_prompt`` is not
    sent (FLUX has none). Editing apps (``_fal_wire.EDIT_INPUTS``) get the input
    image and mask as data URIs; other apps are skipped for requests with images.

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

    **Gateways.** With fal's own ``base_url`` (``fal.run``) the queue is
    ``queue.fal.run`` and the Platform API ``api.fal.ai/v1``. With any other
    ``base_url`` (a gateway, the emulator), unset ``queue_url`` and ``platform_url``
    follow it, so the key goes to no fal host you did not name: ``base_url``
    without a final ``/run``, then ``/queue`` and ``/v1`` (``…/fal/run`` gives
    ``…/fal/queue`` and ``…/fal/v1``). Pass them for any other layout.

    Args:
        key: The fal key (``id:secret``); default: ``FAL_KEY``, else
            ``FAL_KEY_ID`` and ``FAL_KEY_SECRET`` joined with ``:``.
        app: The fal app id, ``owner/alias[/path]``.
        base_url: The sync host.
        queue_url: The queue host; default: fal's, or beside a gateway's
            ``base_url`` (see **Gateways**).
        queue: Always use the queue.
        queue_threshold: Seconds; with more left before the deadline, use the queue.
        webhook_url: Passed as ``fal_webhook`` on queued requests (else
            ``ctx.webhook_url``, if the generator sets one).
        webhook_auth: How deliveries are authenticated: ``"signature"`` (fal's
            Ed25519 signature) or ``"token"`` (a per-request secret in the URL).
        jwks_url: Where fal publishes its webhook signing keys.
        poll_interval: First wait between status polls, seconds.
        platform_url: The Platform API root ``check()`` asks; default: fal's, or
            beside a gateway's ``base_url`` (see **Gateways**).
        name: Override the provider's name (``"fal"``).
        tier: Override the tier (0).
        timeout: Cap one call, seconds.

    Raises:
        InvalidConfig: A bad argument, such as an app id that is not
            ``owner/alias[/path]``; ``field`` names it.
    """

    name = "fal"
    default_base_url: ClassVar[str] = RUN_URL
    env_var: ClassVar[str | None] = "FAL_KEY"
    auth_scheme: ClassVar[str] = "Key"
    key_argument: ClassVar[str] = "key"
    env_hint: ClassVar[str | None] = "FAL_KEY (or FAL_KEY_ID and FAL_KEY_SECRET)"
    env_settings: ClassVar[Mapping[str, str]] = {
        "app": "IMAGEGEN_FAL_APP",
        "webhook_url": "IMAGEGEN_FAL_WEBHOOK_URL",
        "webhook_auth": "IMAGEGEN_FAL_WEBHOOK_AUTH",
        "base_url": "IMAGEGEN_FAL_BASE_URL",
        "queue_url": "IMAGEGEN_FAL_QUEUE_URL",
        "platform_url": "IMAGEGEN_FAL_PLATFORM_URL",
    }
    bills_only_outputs: ClassVar[bool] = True  # "you pay only for successful outputs"
    unsupported: Mapping[str, str] = FLUX_UNSUPPORTED
    #: The Platform API root with fal's own ``base_url`` (a subclass may move it).
    platform_url: str = PLATFORM_URL

    def __init__(
        self,
        *,
        key: str | None = None,
        app: str = "fal-ai/flux/schnell",
        base_url: str = RUN_URL,
        queue_url: str | None = None,
        queue: bool = False,
        queue_threshold: float = 20.0,
        webhook_url: str | None = None,
        webhook_auth: Literal["signature", "token"] = "signature",
        jwks_url: str = JWKS_URL,
        poll_interval: float = 0.5,
        platform_url: str | None = None,
        name: str | None = None,
        tier: int | None = None,
        timeout: float | None = None,
        price_per_image: float | None = None,
    ) -> None:
        if key is None:  # HTTPProvider checks a given key
            key = key_in(os.environ)
        if not isinstance(app, str) or not APP.match(app):
            raise InvalidConfig(
                f"fal: app must look like 'owner/alias[/path]' (got {app!r})", field="app"
            )
        if not isinstance(queue, bool):
            raise InvalidConfig("fal: queue must be True or False", field="queue")
        if not is_number(queue_threshold) or queue_threshold < 0:
            raise InvalidConfig(
                "fal: queue_threshold must be seconds >= 0", field="queue_threshold"
            )
        if not is_number(poll_interval) or poll_interval <= 0:
            raise InvalidConfig("fal: poll_interval must be seconds > 0", field="poll_interval")
        super().__init__(
            api_key=key,
            base_url=base_url,
            name=name,
            tier=tier,
            timeout=timeout,
            price_per_image=price_per_image,
        )
        self.app = app
        self.input_images, self.masks = edit_capability(EDIT_INPUTS.get(app))
        # Unset, the queue and the Platform API follow a gateway's base_url.
        if queue_url is None:
            queue_url = beside(self.base_url, "queue") or QUEUE_URL
        self.queue_url = checked_url(queue_url, "queue_url", "fal")
        if platform_url is None:
            platform_url = beside(self.base_url, "v1") or type(self).platform_url
        self.platform_url = checked_url(platform_url, "platform_url", "fal")
        self.queue = queue
        self.queue_threshold = float(queue_threshold)
        self.webhook_url = (
            None if webhook_url is None else checked_url(webhook_url, "webhook_url", "fal")
        )
        self.poll_interval = float(poll_interval)
        self._webhooks = FalWebhooks(provider=self.name, auth=webhook_auth, jwks_url=jwks_url)

    @classmethod
    def key_from_env(cls, environ: Mapping[str, str]) -> str | None:
        """``FAL_KEY``, else ``FAL_KEY_ID`` and ``FAL_KEY_SECRET`` joined with ``:``."""
        return key_in(environ)

    @property
    def webhook_auth(self) -> Literal["signature", "token"]:
        """How webhook deliveries are authenticated: ``"signature"`` or ``"token"``."""
        return self._webhooks.auth

    @property
    def jwks_url(self) -> str:
        """Where fal's webhook signing keys are fetched from."""
        return self._webhooks.jwks_url

    # -- the request ----------------------------------------------------------------

    def table_price(self, request: ImageRequest) -> float | None:
        """fal's per-megapixel price for the app and size (see ``_prices``)."""
        return fal_price(self.app, request.width, request.height)

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
        body["enable_safety_checker"] = request.safety != "relaxed"  # on unless relaxed
        body.update(edit_inputs(EDIT_INPUTS.get(self.app), request))
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
        return self._image(self.json_object(response, create=True), None)

    # -- the queue ------------------------------------------------------------------

    async def _queued(self, body: dict[str, Any], ctx: ProviderContext) -> ProviderImage:
        callback = await self._webhooks.callback(self.webhook_url or ctx.webhook_url, ctx)
        handle, _ = await submit_work(
            self,
            ctx,
            lambda: self.request(
                ctx,
                "POST",
                f"{self.queue_url}/{self.app}",
                json=body,
                params=callback.params,
                create=True,
                hide=callback.secrets,
            ),
            self._handle,
        )
        await callback.bind(ctx, handle.request_id)
        work = RemoteWork(
            provider=self.name,
            id=handle.request_id,
            late=f"fal request {handle.request_id} was not done by the deadline",
            status=lambda: self._get(ctx, handle.status_url, params={"logs": "1"}),
            read=progress,
            result=lambda status: self._completed(ctx, handle, status),
            delivered=lambda delivery: self._delivered(ctx, handle, delivery),
        )
        return await wait_for_work(
            ctx, work, PollSchedule(first=self.poll_interval), webhook=callback.url is not None
        )

    def _handle(self, submitted: dict[str, Any]) -> FalRequest:
        request_id = submitted.get("request_id")
        if not isinstance(request_id, str) or not request_id:
            raise ProviderError(
                "fal's queue answered without a request_id", provider=self.name, retryable=False
            )
        # The URLs fal returned drop the app's subpath; rebuild them the way fal's
        # client does when they are missing or point at a host we were not given.
        parts = self.app.split("/")
        root = "/".join(parts[: 3 if parts[0] in NAMESPACES else 2])
        base = f"{self.queue_url}/{root}/requests/{request_id}"

        def url(field: str, fallback: str) -> str:
            return same_origin(submitted.get(field), self.queue_url) or fallback

        return FalRequest(
            request_id=request_id,
            status_url=url("status_url", f"{base}/status"),
            response_url=url("response_url", base),
            cancel_url=url("cancel_url", f"{base}/cancel"),
        )

    async def _get(
        self, ctx: ProviderContext, url: str, *, params: Mapping[str, str] | None = None
    ) -> dict[str, Any]:
        return self.json_object(await self.request(ctx, "GET", url, params=params))

    def _output(
        self, ctx: ProviderContext, handle: FalRequest, *, retries: int = 3
    ) -> Awaitable[dict[str, Any]]:
        """The answer of the result URL, its transient failures retried like polls."""
        return fetch_result(
            ctx,
            lambda: self._get(ctx, handle.response_url),
            PollSchedule(first=self.poll_interval, retries=retries),
            provider=self.name,
            work_id=handle.request_id,
            late=f"fal request {handle.request_id}: no result by the deadline",
        )

    async def _completed(
        self, ctx: ProviderContext, handle: FalRequest, status: dict[str, Any]
    ) -> ProviderImage:
        """The image of a ``COMPLETED`` request (or the error it completed with)."""
        error, error_type = status.get("error"), status.get("error_type")
        if error or error_type:
            await self._failed(ctx, handle, error, error_type)
        return self._image(await self._output(ctx, handle), handle)

    async def _delivered(  # noqa: RET503 - _failed always raises
        self, ctx: ProviderContext, handle: FalRequest, delivery: Mapping[str, Any]
    ) -> ProviderImage:
        """The image (or the error) a webhook delivery reports."""
        output = delivery.get("payload")
        if delivery.get("status") == "OK" and isinstance(output, dict):
            return self._image(output, handle)
        error = delivery.get("error") or delivery.get("payload_error") or "no payload"
        if policy_violation(output) or mentions(error, POLICY):
            raise ContentRejected(
                self.redact(f"fal request {handle.request_id} was refused: {error}"),
                provider=self.name,
                reason=policy_reason(output) or first_mentioned(error, POLICY),
            )
        error_type = output.get("error_type") if isinstance(output, dict) else None
        await self._failed(ctx, handle, error, error_type)

    async def _failed(
        self, ctx: ProviderContext, handle: FalRequest, error: object, error_type: object
    ) -> NoReturn:
        message = self.redact(f"fal request {handle.request_id} failed: {error or error_type}")
        infra = infra_error(error_type)
        if infra is not None:
            raise infra(message, provider=self.name, retryable=False)
        if mentions(error, POLICY) or error_type == "content_policy_violation":
            reason = first_mentioned(error, POLICY) or str(error_type)
            raise ContentRejected(message, provider=self.name, reason=reason)
        # A model error ("Invalid status code: 422"): the result URL answers with the
        # classified body (a content-policy 422 becomes ContentRejected).
        await self._output(ctx, handle, retries=0)
        raise ProviderError(message, provider=self.name, retryable=False)

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
        return await self._webhooks.receive(headers, body, ctx, now=now, params=params or {})

    # -- answers --------------------------------------------------------------------

    def _image(self, output: dict[str, Any], handle: FalRequest | None) -> ProviderImage:
        nsfw = output.get("has_nsfw_concepts")
        if isinstance(nsfw, list) and nsfw and nsfw[0] is True:
            raise ContentRejected(
                "fal's safety checker flagged the image", provider=self.name, reason="nsfw"
            )
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
            "width": as_int(first.get("width")),
            "height": as_int(first.get("height")),
            "seed": as_int(output.get("seed")),
            "raw": output,
            "handle": handle,
        }
        if url.startswith("data:"):
            # sync_mode=True (a provider option) inlines the image as a data URI.
            return ProviderImage(data=decode_data_uri(url, provider=self.name), **fields)
        return ProviderImage(url=url, **fields)

    def classify(
        self, response: httpx.Response, body: Any, message: str, retry_after: float | None
    ) -> ProviderError | None:
        """fal's error shapes: account locks, infrastructure types, content policy, retry hints."""
        special = classify_fal(self.name, response, body, message, retry_after)
        if special is not None:
            return special
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
            status = exc.status
            if status is not None and 400 <= status < 500 and status not in _KEY_STATUSES:
                ctx.logger.warning("fal: the key works, but the pricing lookup said: %s", exc)
                return
            raise
        ctx.logger.debug("fal: key accepted; pricing %s", response.text[:200])

    def log_secrets(self) -> tuple[str, ...]:
        """The key, and the credentials ``base_url``, ``queue_url`` and ``platform_url`` carry."""
        hosts = (url_secrets(self.queue_url), url_secrets(self.platform_url))
        return (*super().log_secrets(), *hosts[0], *hosts[1])

    def __repr__(self) -> str:
        key = "set" if self.has_key else "missing"
        return f"Fal(name={self.name!r}, app={self.app!r}, queue={self.queue!r}, key={key})"
