"""Black Forest Labs' own API for FLUX: submit a task, then poll its polling URL."""

from __future__ import annotations

import hmac
import json
import os
from collections.abc import Mapping
from typing import Any, ClassVar
from urllib.parse import quote, urlsplit

from .._errors import InvalidConfig, ProviderError, WebhookVerificationError
from .._models import ImageRequest
from ._base import ProviderContext, ProviderImage, WebhookDelivery
from ._bfl_wire import DEFAULT_MODEL, body_for, model_for, price_of, progress, sample_of
from ._http import HTTPProvider
from ._payloads import FLUX_UNSUPPORTED, is_http_url, is_number, same_origin
from ._polling import PollSchedule, Progress, RemoteWork, submit_work, wait_for_work

__all__ = ["BlackForestLabs"]

#: BFL's hosts: global (routed across clusters), and the EU-only and US-only ones.
REGIONS: Mapping[str, str] = {
    "global": "https://api.bfl.ai/v1",
    "eu": "https://api.eu.bfl.ai/v1",
    "us": "https://api.us.bfl.ai/v1",
}
#: Statuses of a webhook delivery that end a task (BFL's polling ones, and the
#: SUCCESS/FAILED its deliveries have been seen to carry).
_FINAL = frozenset(
    {"Ready", "Error", "Request Moderated", "Content Moderated", "Task not found", "SUCCESS",
     "FAILED"}
)  # fmt: skip
_BFL_DOMAIN = ".bfl.ai"


class BlackForestLabs(HTTPProvider):
    """FLUX on Black Forest Labs' API: ``POST /v1/{model}``, then ``GET`` the task's
    ``polling_url`` until it is ``Ready``, then one download of its ``sample`` URL
    (signed, valid ten minutes, no key needed).

    **Request.** ``prompt``; the size as the model takes it: FLUX.2 models
    (``flux-2-pro``, the default; ``-max``, ``-flex``, ``-klein-4b/9b``) and FLUX.1
    (``flux-pro-1.1``, ``flux-dev``) take ``width``/``height`` (rounded to multiples
    of 16, resp. 32, within the model's bounds: 64 to 4 MP, resp. 256 to 1440 a
    side); ``flux-pro-1.1-ultra`` and Kontext (``flux-kontext-pro``/``-max``) take the
    request's ``aspect_ratio`` or the nearest common one; fill (``flux-pro-1.0-fill``)
    keeps its input image's size. Input images go as ``input_image``,
    ``input_image_2``... (8 for FLUX.2, 4 for Klein and Kontext), base64; fill takes
    ``image`` and ``mask``. ``seed``; ``output_format`` (WebP only on FLUX.2, PNG
    otherwise); ``safety`` as ``safety_tolerance`` 0 (strict) or the model's highest
    (relaxed). There is no negative prompt. ``request.provider_options["bfl"]`` is
    merged last (``prompt_upsampling``, ``raw``, ``guidance``...).

    **Cost.** The create's answer says what the task cost (``cost``, in credits of
    $0.01): that is the attempt's cost. BFL has no way to cancel a task, so a task
    abandoned (a lost race, the deadline) runs, and is billed, all the same.

    **Webhooks.** With ``webhook_url`` (https) and ``webhook_secret``, the task is
    created with both; BFL posts to the URL when it ends, with the secret in
    ``X-Webhook-Secret`` (checked in constant time). The delivery's body is not
    documented, so it is taken as a signal: the task is polled once more and its
    answer used. Polls remain the safety net.

    Args:
        api_key: The key; default: ``BFL_API_KEY``.
        model: The model's endpoint name (``flux-2-pro``...).
        region: ``global`` (default), ``eu`` or ``us``: where tasks run and data stays.
        base_url: Overrides ``region`` (a gateway, the emulator).
        webhook_url: Where BFL posts when a task ends (https).
        webhook_secret: Sent with each task and echoed in ``X-Webhook-Secret``;
            default: ``BFL_WEBHOOK_SECRET``. Needed for webhooks.
        poll_interval: Seconds before the first poll (BFL suggests 0.5); later
            polls are further apart, up to 5 s.

    Raises:
        InvalidConfig: A bad model, region, webhook URL or secret.
    """

    name = "bfl"
    default_base_url: ClassVar[str] = REGIONS["global"]
    env_var: ClassVar[str | None] = "BFL_API_KEY"
    env_settings: ClassVar[Mapping[str, str]] = {
        "model": "IMAGEGEN_BFL_MODEL",
        "region": "IMAGEGEN_BFL_REGION",
        "base_url": "IMAGEGEN_BFL_BASE_URL",
        "webhook_url": "IMAGEGEN_BFL_WEBHOOK_URL",
        "webhook_secret": "BFL_WEBHOOK_SECRET",
    }
    # No cancel: a task that exists runs to its end, and is billed.
    bills_unanswered: ClassVar[bool] = True
    unsupported: Mapping[str, str] = FLUX_UNSUPPORTED

    def __init__(
        self,
        *,
        api_key: str | None = None,
        model: str = DEFAULT_MODEL,
        region: str = "global",
        base_url: str | None = None,
        webhook_url: str | None = None,
        webhook_secret: str | None = None,
        poll_interval: float = 0.5,
        name: str | None = None,
        tier: int | None = None,
        timeout: float | None = None,
        price_per_image: float | None = None,
    ) -> None:
        if region not in REGIONS:
            raise InvalidConfig(
                f"bfl: region must be one of {', '.join(REGIONS)} (got {region!r})",
                field="region",
            )
        super().__init__(
            api_key=api_key,
            base_url=base_url or REGIONS[region],
            name=name,
            tier=tier,
            timeout=timeout,
            price_per_image=price_per_image,
        )
        if not isinstance(model, str) or not model or "/" in model or model != model.strip():
            raise InvalidConfig(
                f"{self.name}: model must be an endpoint name such as flux-2-pro (got {model!r})",
                field="model",
            )
        self.model = model
        self.rules = model_for(model)
        self.input_images = len(self.rules.inputs)
        self.masks = self.rules.mask is not None
        if webhook_url is not None and not is_http_url(webhook_url, schemes=("https",)):
            raise InvalidConfig(
                f"{self.name}: webhook_url must be an https URL", field="webhook_url"
            )
        if webhook_secret is None:
            webhook_secret = os.environ.get("BFL_WEBHOOK_SECRET") or None
        if webhook_secret is not None and not webhook_secret.strip():
            raise InvalidConfig(f"{self.name}: webhook_secret is empty", field="webhook_secret")
        if webhook_url is not None and webhook_secret is None:
            raise InvalidConfig(
                f"{self.name}: webhook_url needs webhook_secret (or BFL_WEBHOOK_SECRET): "
                "it is how a delivery proves it came from BFL",
                field="webhook_secret",
            )
        self.webhook_url = webhook_url
        self._webhook_secret = webhook_secret
        if not is_number(poll_interval) or not poll_interval > 0:
            raise InvalidConfig(
                f"{self.name}: poll_interval must be > 0 (got {poll_interval!r})",
                field="poll_interval",
            )
        self.poll_interval = float(poll_interval)

    def auth_headers(self) -> dict[str, str]:
        """``x-key: <key>``."""
        return {"x-key": self._key} if self._key is not None else {}

    def log_secrets(self) -> tuple[str, ...]:
        """The key, and the webhook secret (it travels in the create's body)."""
        secret = (self._webhook_secret,) if self._webhook_secret else ()
        return (*super().log_secrets(), *secret)

    def redact(self, text: str) -> str:
        """The key and the webhook secret masked."""
        if self._webhook_secret:
            text = text.replace(self._webhook_secret, "***")
        return super().redact(text)

    def table_price(self, request: ImageRequest) -> float | None:
        """BFL's price of the model for the size sent (see ``_bfl_wire.MODELS``)."""
        return price_of(self.rules, request)

    def _webhook(self, ctx: ProviderContext) -> str | None:
        url = self.webhook_url or ctx.webhook_url
        if url is None or self._webhook_secret is None:
            return None  # the generator's URL alone: without a secret, polling only
        if urlsplit(url).scheme != "https":
            ctx.logger.warning("%s: not sending a non-https webhook URL; polling", self.name)
            return None
        return url

    async def generate(self, request: ImageRequest, ctx: ProviderContext) -> ProviderImage:
        """Create a task and follow it to its image (see the class docstring)."""
        body = body_for(request, self.rules)
        webhook = self._webhook(ctx)
        if webhook is not None:
            body.update(webhook_url=webhook, webhook_secret=self._webhook_secret)
        body.update(request.options_for(self.name))
        # No cancel exists: an abandoned create's task is left to run (submit_work's
        # undo calls the no-op cancel), and it is billed whatever we do.
        (task_id, polling_url), created = await submit_work(
            self,
            ctx,
            lambda: self.request(ctx, "POST", self.model, json=body, create=True),
            self._handle,
        )
        charged = created.get("cost")  # in credits of $0.01
        cost = None
        if isinstance(charged, int | float) and is_number(charged) and charged >= 0:
            cost = None if self.price_per_image is not None else float(charged) / 100

        async def status() -> dict[str, Any]:
            response = await self.request(ctx, "GET", polling_url)
            return self.json_object(response, what="a task")

        async def result(task: dict[str, Any]) -> ProviderImage:
            sample, seed = sample_of(task)
            if sample is None:
                raise ProviderError(
                    f"BFL task {task_id} is Ready without a sample URL",
                    provider=self.name,
                    retryable=False,
                )
            raw = {"id": task_id, "model": self.model, "cost_credits": charged}
            return ProviderImage(url=sample, seed=seed, raw=raw, cost=cost)

        async def delivered(_: Mapping[str, Any]) -> ProviderImage | None:
            # The delivery's body is undocumented: it only says to look now.
            task = await status()
            return await result(task) if self._read(task).done else None

        work = RemoteWork(
            provider=self.name,
            id=task_id,
            late=f"BFL task {task_id} was not done by the deadline",
            status=status,
            read=self._read,
            result=result,
            delivered=delivered,
        )
        schedule = PollSchedule(first=self.poll_interval)
        return await wait_for_work(ctx, work, schedule, webhook=webhook is not None)

    def _read(self, task: dict[str, Any]) -> Progress:
        return progress(task, provider=self.name)

    def _handle(self, created: dict[str, Any]) -> tuple[str, str]:
        """The task's id, and where to poll it: its ``polling_url`` when that is on our
        host or on BFL's domain over https (it is often another BFL cluster), else
        ``get_result?id=`` on ours (the key goes nowhere else)."""
        task_id = created.get("id")
        if not isinstance(task_id, str) or not task_id:
            raise ProviderError(
                "BFL answered the create without a task id", provider=self.name, retryable=False
            )
        url = created.get("polling_url")
        if same_origin(url, self.base_url) is None and not _on_bfl(url):
            url = self.url(f"get_result?id={quote(task_id, safe='')}")
        assert isinstance(url, str)  # noqa: S101 - checked, or built, above
        return task_id, url

    async def check(self, ctx: ProviderContext) -> None:
        """``GET /v1/credits``: free; proves the key (and says what is left)."""
        response = await self.request(ctx, "GET", "credits")
        left = self.json_object(response, what="a credit balance").get("credits")
        ctx.logger.debug("%s: key accepted, %s credits left", self.name, left)

    async def receive_webhook(
        self,
        headers: Mapping[str, str],
        body: bytes,
        ctx: ProviderContext,
        *,
        now: float,
        params: Mapping[str, str] | None = None,
    ) -> WebhookDelivery:
        """Check a delivery's ``X-Webhook-Secret`` and read which task it is about.

        Raises:
            WebhookVerificationError: No secret configured, or a missing or wrong one.
            ProviderError: The verified body names no task.
        """
        given = next((v for k, v in headers.items() if k.lower() == "x-webhook-secret"), None)
        secret = self._webhook_secret
        if secret is None or given is None or not hmac.compare_digest(given, secret):
            raise WebhookVerificationError("BFL webhook: missing or wrong X-Webhook-Secret")
        try:
            payload = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError):
            payload = None
        task_id = payload.get("task_id") or payload.get("id") if isinstance(payload, dict) else None
        if not isinstance(task_id, str) or not task_id:
            raise ProviderError(
                "BFL webhook: the body names no task", provider=self.name, retryable=False
            )
        assert isinstance(payload, dict)  # noqa: S101 - read above
        status = str(payload.get("status"))
        return WebhookDelivery(
            id=f"{task_id}:{status}", work_id=task_id, payload=payload, final=status in _FINAL
        )


def _on_bfl(url: object) -> bool:
    """Whether ``url`` is https on BFL's domain (``api.eu2.bfl.ai``...)."""
    if not isinstance(url, str):
        return False
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    return parts.scheme == "https" and host.endswith(_BFL_DOMAIN)
