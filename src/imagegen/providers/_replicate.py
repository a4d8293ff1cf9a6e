"""Replicate: predictions on official models or pinned versions, sync first, then polled.

Wire shapes follow Replicate's docs and official clients (``replicate-python``,
``replicate-javascript`` and the OpenAPI-generated beta client). The polling loop is
the shared one of ``_polling``.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from typing import Any, ClassVar
from urllib.parse import quote, urlsplit

import httpx

from .._errors import InvalidConfig, ProviderError, ProviderRateLimited
from .._models import ImageRequest
from .._webhooks import verify_standard_webhook
from ._base import ProviderContext, ProviderImage, WebhookDelivery
from ._http import HTTPProvider
from ._payloads import (
    FLUX_UNSUPPORTED,
    edit_capability,
    edit_inputs,
    is_http_url,
    is_number,
    json_or_none,
    same_origin,
)
from ._polling import PollSchedule, RemoteWork, submit_work, wait_for_work
from ._prices import replicate_price
from ._replicate_wire import (
    ASPECT_RATIOS,
    EDIT_INPUTS,
    MODEL,
    OUTPUT_FORMATS,
    aspect_ratio,
    ended_image,
    is_delivery_url,
    parse_version,
    progress,
    status_of,
)

__all__ = ["ASPECT_RATIOS", "Replicate", "aspect_ratio", "is_delivery_url"]

_MAX_PREFER_WAIT = 60  # Replicate holds a sync request open for at most 60 s
_RESETS_IN = re.compile(r"resets in\s*~?\s*(\d+(?:\.\d+)?)\s*s", re.IGNORECASE)


class Replicate(HTTPProvider):
    """Replicate, by default the official model ``black-forest-labs/flux-schnell``.

    **Create.** Official models are run with
    ``POST {base_url}/models/{owner}/{name}/predictions`` and a body of
    ``{"input": {...}}``; with ``version=`` (a 64-hex version id, or
    ``owner/name:<id>``, of which the id is used) the call is
    ``POST {base_url}/predictions`` with ``{"version": id, "input": {...}}``.
    Every create carries two headers that follow the deadline:

    - ``Prefer: wait=N`` (sync mode): Replicate holds the request open up to N
      seconds, N = ``int(remaining - 1)`` clamped to 1..``min(60, max_wait)``, so
      a fast model answers in one round trip, and (with two seconds or more
      left) a slow one answers with its id a second before the deadline: it is
      polled, never created again. With less left, a prediction slower than the
      time left is cut off unanswered; it is not created again either (the
      attempt fails over), and ``Cancel-After`` stops it.
    - ``Cancel-After: <S>s``: S is the remaining deadline in whole seconds,
      rounded up (at least 1), written with an ``s`` suffix (``"25s"``). Replicate
      then stops the prediction by itself if we are gone by then: ``aborted``
      (not billed) if it had not started, ``canceled`` if it had.

    **Input.** ``prompt``; ``aspect_ratio``, the nearest of flux-schnell's
    ratios (1:1 16:9 21:9 3:2 2:3 4:5 5:4 3:4 4:3 9:16 9:21) to the requested
    width/height by distance of log-ratios (see :func:`aspect_ratio`; the
    pixels are Replicate's, about one megapixel); ``num_outputs`` 1;
    ``output_format`` (``"jpeg"`` is sent as ``"jpg"``, ``png`` and ``webp`` as
    they are); ``seed`` when set; then the request's ``provider_options[name]``,
    merged over all of that (``megapixels``, ``go_fast``, or inputs of another
    model). ``negative_prompt`` is not sent (FLUX has none); pass it through
    ``provider_options`` for models that take it.

    **Lifecycle.** The prediction's id is reported with ``ctx.started()`` as
    soon as the create answers. A ``succeeded`` answer is returned at once;
    ``starting``/``processing`` (the wait ran out) is polled at ``urls.get``
    (used only when it is on ``base_url``'s host, else
    ``{base_url}/predictions/{id}``) every ``poll_interval`` seconds, growing 1.5x
    up to 5 s, never past the deadline. Unknown statuses count as still running.
    Up to three transient failures in a row (5xx, 429, connection errors,
    timeouts, unreadable JSON) on those GETs are retried in the loop, a
    ``Retry-After`` (or "resets in ~Ns") stretching the wait after one.
    ``failed`` raises :class:`ProviderError` with the prediction's ``error``
    text, or :class:`ContentRejected` when that text mentions NSFW or safety;
    ``canceled`` and ``aborted`` raise a :class:`ProviderError`; a success whose
    output is gone (``null``, empty, or ``data_removed``) raises
    :class:`ProviderUnavailable`. None of these is retryable (the prediction was
    billed, or would be again). An abandoned prediction is cancelled with
    ``POST {base_url}/predictions/{id}/cancel``.

    **Output.** The first URL of ``output`` (a list, or a single string);
    a ``data:`` URI is decoded. Files on ``replicate.delivery`` (or a subdomain)
    are fetched with the token, as Replicate's clients do; other hosts never
    see it.

    **Errors.** Replicate answers with problem JSON (``title``, ``detail``):
    401/403 :class:`ProviderAuthError`; 402 (insufficient credit)
    :class:`ProviderQuotaExceeded`; 404 and 422 (invalid version or input)
    non-retryable :class:`ProviderError` (:class:`ContentRejected` if the body
    mentions safety); 429 :class:`ProviderRateLimited` with ``retry_after`` from
    ``Retry-After``, else from "resets in ~30s" in ``detail``. A 5xx on the
    create is not retryable (the prediction may exist), except 503 with
    ``Retry-After``.

    **Webhooks.** With ``webhook_url`` (else ``ctx.webhook_url``; https only, as
    Replicate requires) the create body also has ``"webhook"`` and
    ``"webhook_events_filter": ["completed"]``. :meth:`parse_webhook` reads a
    delivery's body and :meth:`image_from` turns the prediction into an image or
    an error; signatures are checked elsewhere, with :meth:`signing_secret`.

    **check().** ``GET {base_url}/account``: authenticated, bills nothing.

    Args:
        api_token: The Replicate API token; default: ``REPLICATE_API_TOKEN``.
        model: The official model, ``owner/name``.
        version: A version id (64 hex digits) or ``owner/name:<id>``; when set,
            predictions are created on that version instead of ``model``.
        base_url: The API root, ``/v1`` included.
        webhook_url: Where Replicate posts the finished prediction (https).
        webhook_secret: The ``whsec_...`` signing secret; default:
            ``REPLICATE_WEBHOOK_SECRET``, else fetched by :meth:`signing_secret`.
        poll_interval: First wait between polls, seconds.
        max_wait: Cap on ``Prefer: wait``, seconds (Replicate caps it at 60).
        name: Override the provider's name (``"replicate"``).
        tier: Override the tier (0).
        timeout: Cap one call, seconds.

    Raises:
        InvalidConfig: A bad argument, such as a model that is not ``owner/name`` or
            a webhook URL that is not https; ``field`` names it.
    """

    name = "replicate"
    default_base_url: ClassVar[str] = "https://api.replicate.com/v1"
    env_var: ClassVar[str | None] = "REPLICATE_API_TOKEN"
    key_argument: ClassVar[str] = "api_token"
    env_settings: ClassVar[Mapping[str, str]] = {
        "model": "IMAGEGEN_REPLICATE_MODEL",
        "webhook_url": "IMAGEGEN_REPLICATE_WEBHOOK_URL",
        "webhook_secret": "REPLICATE_WEBHOOK_SECRET",
        # Not REPLICATE_BASE_URL: replicate-python reads that as the host without /v1.
        "base_url": "IMAGEGEN_REPLICATE_BASE_URL",
    }
    # Official models are priced per output: a prediction without one costs nothing.
    bills_only_outputs: ClassVar[bool] = True
    unsupported: Mapping[str, str] = FLUX_UNSUPPORTED

    def __init__(
        self,
        *,
        api_token: str | None = None,
        model: str = "black-forest-labs/flux-schnell",
        version: str | None = None,
        base_url: str = "https://api.replicate.com/v1",
        webhook_url: str | None = None,
        webhook_secret: str | None = None,
        poll_interval: float = 0.5,
        max_wait: float = 60,
        name: str | None = None,
        tier: int | None = None,
        timeout: float | None = None,
        price_per_image: float | None = None,
    ) -> None:
        if not isinstance(model, str) or not MODEL.match(model):
            raise InvalidConfig(
                f"replicate: model must look like 'owner/name' (got {model!r})", field="model"
            )
        if version is not None:
            model, version = parse_version(model, version)
        if webhook_url is not None and not is_http_url(webhook_url, schemes=("https",)):
            raise InvalidConfig(
                "replicate: webhook_url must be an https URL (Replicate sends webhooks "
                "only to https)",
                field="webhook_url",
            )
        if webhook_secret is None:
            webhook_secret = os.environ.get("REPLICATE_WEBHOOK_SECRET") or None
        elif not isinstance(webhook_secret, str) or not webhook_secret.strip():
            raise InvalidConfig(
                "replicate: webhook_secret must be a non-empty string", field="webhook_secret"
            )
        if not is_number(poll_interval) or poll_interval <= 0:
            raise InvalidConfig(
                "replicate: poll_interval must be seconds > 0", field="poll_interval"
            )
        if not is_number(max_wait) or max_wait < 1:
            raise InvalidConfig("replicate: max_wait must be seconds >= 1", field="max_wait")
        super().__init__(
            api_key=api_token,
            base_url=base_url,
            name=name,
            tier=tier,
            timeout=timeout,
            price_per_image=price_per_image,
        )
        self.model = model
        self.version = version
        self.input_images, self.masks = edit_capability(EDIT_INPUTS.get(model))
        self.webhook_url = webhook_url
        self._webhook_secret = webhook_secret.strip() if webhook_secret else None
        self.poll_interval = float(poll_interval)
        self.max_wait = float(max_wait)

    # -- the request ----------------------------------------------------------------

    def table_price(self, request: ImageRequest) -> float | None:
        """Replicate's per-image price of an official model (see ``_prices``)."""
        return replicate_price(self.model, self.version)

    def input(self, request: ImageRequest) -> dict[str, Any]:
        """The model ``input`` for ``request`` (see the class docstring)."""
        data: dict[str, Any] = {
            "prompt": request.prompt,
            "aspect_ratio": aspect_ratio(request.width, request.height),
            "num_outputs": 1,
            "output_format": OUTPUT_FORMATS[request.output_format],
        }
        if request.seed is not None:
            data["seed"] = request.seed
        if request.safety is not None:  # FLUX's own checker: off only when relaxed
            data["disable_safety_checker"] = request.safety == "relaxed"
        data.update(edit_inputs(EDIT_INPUTS.get(self.model), request))
        data.update(request.options_for(self.name))
        return data

    def body(self, request: ImageRequest, webhook_url: str | None = None) -> dict[str, Any]:
        """The create body: ``input``, plus ``version`` and the webhook fields when set."""
        body: dict[str, Any] = {}
        if self.version is not None:
            body["version"] = self.version
        body["input"] = self.input(request)
        if webhook_url:
            body["webhook"] = webhook_url
            # Only the end matters to us; "output"/"logs" deliveries would be noise.
            body["webhook_events_filter"] = ["completed"]
        return body

    def create_path(self) -> str:
        """Where predictions are created: the version endpoint or the model's own."""
        if self.version is not None:
            return "predictions"
        owner, name = self.model.split("/")
        return f"models/{quote(owner, safe='')}/{quote(name, safe='')}/predictions"

    def create_headers(self, ctx: ProviderContext) -> dict[str, str]:
        """``Prefer: wait=N`` and ``Cancel-After: <S>s``, both from the time left."""
        remaining = ctx.remaining()
        ceiling = int(min(_MAX_PREFER_WAIT, self.max_wait))
        wait = max(1, min(int(remaining - 1), ceiling))
        cancel_after = max(1, math.ceil(remaining))
        return {"Prefer": f"wait={wait}", "Cancel-After": f"{cancel_after}s"}

    def _webhook(self, ctx: ProviderContext) -> str | None:
        if self.webhook_url is not None:
            return self.webhook_url
        if ctx.webhook_url is None:
            return None
        if urlsplit(ctx.webhook_url).scheme != "https":
            # Replicate refuses non-https webhooks; polling still gets the image.
            ctx.logger.warning("replicate: not sending a non-https webhook URL; polling instead")
            return None
        return ctx.webhook_url

    async def generate(self, request: ImageRequest, ctx: ProviderContext) -> ProviderImage:
        """Create a prediction and wait for its image (see the class docstring).

        Raises:
            ProviderError: The subclass that fits the failure.
        """
        self.require_key()
        webhook = self._webhook(ctx)
        # Prefer: wait can hold the create open for up to a minute: if the attempt is
        # abandoned meanwhile, the prediction it makes is cancelled once it exists.
        prediction_id, prediction = await submit_work(
            self,
            ctx,
            lambda: self.request(
                ctx,
                "POST",
                self.create_path(),
                json=self.body(request, webhook),
                headers=self.create_headers(ctx),
                create=True,
            ),
            self._prediction_id,
        )

        async def result(ended: dict[str, Any]) -> ProviderImage:
            return ended_image(self, ended, request.seed)

        if progress(prediction).done:
            return await result(prediction)
        url = self._get_url(prediction, prediction_id)
        work = RemoteWork(
            provider=self.name,
            id=prediction_id,
            late=f"replicate prediction {prediction_id} was not done by the deadline",
            status=lambda: self._get(ctx, url),
            read=progress,
            result=result,
        )
        # With a webhook the completion arrives by delivery; polling is the safety net.
        schedule = PollSchedule(first=self.poll_interval)
        return await wait_for_work(ctx, work, schedule, webhook=webhook is not None)

    def _prediction_id(self, prediction: dict[str, Any]) -> str:
        prediction_id = prediction.get("id")
        if not isinstance(prediction_id, str) or not prediction_id:
            raise ProviderError(
                "replicate answered the create without a prediction id",
                provider=self.name,
                retryable=False,
            )
        return prediction_id

    def _get_url(self, prediction: dict[str, Any], prediction_id: str) -> str:
        """``urls.get`` when it is on our API host; else built from ``base_url``."""
        urls = prediction.get("urls")
        # Only our own host gets the token: a gateway in base_url stays in the path.
        url = same_origin(urls.get("get") if isinstance(urls, dict) else None, self.base_url)
        return url or f"{self.base_url}/predictions/{quote(prediction_id, safe='')}"

    async def _get(self, ctx: ProviderContext, url: str) -> dict[str, Any]:
        response = await self.request(ctx, "GET", url)
        return self.json_object(response, what="a prediction")

    # -- predictions ----------------------------------------------------------------

    def image_from(
        self, prediction: dict[str, Any], *, seed: int | None = None
    ) -> ProviderImage | None:
        """The image a prediction holds; None while it is still running.

        Used for create and poll answers, and for webhook deliveries (see
        :meth:`parse_webhook`).

        Args:
            prediction: The prediction object, as the API or a webhook sends it.
            seed: The requested seed, reported back on the image.

        Raises:
            ContentRejected: It failed on a safety check.
            ProviderError: It failed, or was canceled or aborted.
            ProviderUnavailable: It succeeded, but its output is gone.
        """
        return ended_image(self, prediction, seed) if progress(prediction).done else None

    def parse_webhook(self, body: bytes) -> dict[str, Any]:
        """The prediction a webhook delivery carries (its body is the prediction object).

        Call it only after the signature was verified; this checks the shape, not
        the sender. Pass the result to :meth:`image_from`.

        Args:
            body: The raw request body.

        Raises:
            ProviderError: The body is not a JSON prediction with an ``id``.
        """
        data = json_or_none(body)
        if data is None:
            raise ProviderError(
                "replicate webhook body is not JSON", provider=self.name, retryable=False
            )
        if not isinstance(data, dict) or not isinstance(data.get("id"), str) or not data["id"]:
            raise ProviderError(
                "replicate webhook body is not a prediction", provider=self.name, retryable=False
            )
        return data

    # -- cancel, check, secret ------------------------------------------------------

    async def cancel(self, handle: object, ctx: ProviderContext) -> None:
        """Stop a prediction: ``POST {base_url}/predictions/{id}/cancel``.

        Failures raise (the generator logs them); handles that are not a
        prediction id are ignored.
        """
        if not isinstance(handle, str) or not handle:
            return
        response = await self.request(ctx, "POST", f"predictions/{quote(handle, safe='')}/cancel")
        status = status_of(response)
        ctx.logger.info("replicate prediction %s: cancel answered %s", handle, status)

    async def check(self, ctx: ProviderContext) -> None:
        """Verify the token without paying: ``GET {base_url}/account``.

        The account endpoint needs a valid token and bills nothing. A 401 raises
        :class:`ProviderAuthError`; 429, 5xx and connection errors raise as usual.

        Raises:
            ProviderError: The subclass that fits the failure.
        """
        self.require_key()
        response = await self.request(ctx, "GET", "account")
        ctx.logger.debug("replicate: token accepted (%s)", status_of(response))

    async def receive_webhook(
        self,
        headers: Mapping[str, str],
        body: bytes,
        ctx: ProviderContext,
        *,
        params: Mapping[str, str] | None = None,
        now: float,
    ) -> WebhookDelivery:
        """Verify a delivery (Standard Webhooks signature, 5-minute tolerance) and read it.

        Its ``webhook-id`` is the delivery id (Replicate keeps it across retries);
        the prediction is the payload, final once its status is succeeded, failed,
        canceled or aborted. ``params`` are not needed: the signature is the proof.

        Raises:
            WebhookVerificationError: Missing, wrong or stale signature.
            ProviderError: The secret could not be fetched, or the verified body is
                not a prediction.
        """
        webhook_id = verify_standard_webhook(await self.signing_secret(ctx), headers, body, now=now)
        prediction = self.parse_webhook(body)
        return WebhookDelivery(
            id=webhook_id,
            work_id=prediction["id"],
            payload=prediction,
            final=progress(prediction).done,
        )

    async def signing_secret(self, ctx: ProviderContext) -> str:
        """The webhook signing secret (``whsec_...``).

        ``webhook_secret`` or ``REPLICATE_WEBHOOK_SECRET`` when set; otherwise
        ``GET {base_url}/webhooks/default/secret`` (one secret per account), kept
        for later calls.

        Raises:
            ProviderError: The secret could not be fetched.
        """
        if self._webhook_secret is None:
            self.require_key()
            response = await self.request(ctx, "GET", "webhooks/default/secret")
            data = self.json(response)
            key = data.get("key") if isinstance(data, dict) else None
            if not isinstance(key, str) or not key:
                raise ProviderError(
                    "replicate's webhook secret answer has no key",
                    provider=self.name,
                    status=response.status_code,
                    retryable=False,
                )
            self._webhook_secret = key
        return self._webhook_secret

    # -- errors ---------------------------------------------------------------------

    def classify(
        self, response: httpx.Response, body: Any, message: str, retry_after: float | None
    ) -> ProviderError | None:
        """Replicate specifics: a 429 without ``Retry-After`` says when in ``detail``."""
        if response.status_code == 429 and retry_after is None:
            detail = body.get("detail") if isinstance(body, dict) else None
            match = _RESETS_IN.search(detail) if isinstance(detail, str) else None
            if match is not None:
                return ProviderRateLimited(
                    message,
                    provider=self.name,
                    status=429,
                    retry_after=float(match.group(1)),
                )
        return super().classify(response, body, message, retry_after)

    def __repr__(self) -> str:
        key = "set" if self.has_key else "missing"
        target = f"version={self.version!r}" if self.version else f"model={self.model!r}"
        return f"Replicate(name={self.name!r}, {target}, key={key})"
