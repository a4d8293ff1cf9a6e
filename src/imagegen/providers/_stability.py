"""Stability AI's own API: Stable Image Core and Ultra, and Stable Diffusion 3.5 (v2beta)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import httpx

from .._errors import ContentRejected, InvalidConfig, ProviderError, ProviderRateLimited
from .._image import extension_for
from .._models import ImageRequest, RequestWarning
from .._shape import nearest_ratio
from ._base import ProviderContext, ProviderImage
from ._http import FormFile, HTTPProvider

__all__ = ["Stability"]

#: Stability's ``aspect_ratio`` values, in tie-breaking order.
ASPECT_RATIOS = ("1:1", "16:9", "9:16", "3:2", "2:3", "5:4", "4:5", "21:9", "9:21")
#: Models by endpoint: Core and Ultra have their own; SD3.5 models share ``sd3``.
_SD3 = ("sd3.5-large", "sd3.5-large-turbo", "sd3.5-medium", "sd3.5-flash")
#: USD per image (https://platform.stability.ai/pricing, 2026-05: credits of $0.01).
_PRICES: Mapping[str, float] = {
    "core": 0.03,
    "ultra": 0.08,
    "sd3.5-large": 0.065,
    "sd3.5-large-turbo": 0.04,
    "sd3.5-medium": 0.035,
    "sd3.5-flash": 0.025,
}
_MAX_SEED = 4_294_967_294
_LOCKOUT = 60.0  # seconds Stability locks a client out after a 429


class Stability(HTTPProvider):
    """Stability AI's REST API (v2beta): ``POST /v2beta/stable-image/generate/{core|ultra|sd3}``.

    One multipart request makes one image, answered as the image's bytes (``Accept:
    image/*``), with the ``finish-reason`` and ``seed`` in headers. Nothing to poll or
    cancel: an abandoned call is billed all the same (failed ones are not).

    **Request.** ``prompt``, ``negative_prompt``, ``seed``, the nearest of Stability's nine
    aspect ratios, ``output_format`` (PNG, JPEG, or WebP except on SD3.5, which is asked
    for PNG instead). SD3.5 models (``model="sd3.5-large"``...) go to ``sd3`` with
    ``model``, and take one input image (``mode=image-to-image``, ``strength`` 0.75
    unless ``provider_options["stability"]`` says otherwise). ``style_preset``,
    ``cfg_scale`` and the rest go in ``provider_options``.

    **Refusals.** A prompt or input Stability's moderation flags is a 403
    ``content_moderation``; an output it flags comes back blurred, with ``finish-reason:
    CONTENT_FILTERED``: both are a :class:`ContentRejected`. A 429 locks the client out
    for 60 s: it is a rate limit waiting that long (or the ``Retry-After`` given).

    Args:
        api_key: The key; default: ``STABILITY_API_KEY``.
        model: ``core`` (default), ``ultra``, ``sd3.5-large``, ``sd3.5-large-turbo``,
            ``sd3.5-medium`` or ``sd3.5-flash``.
    """

    name = "stability"
    default_base_url: ClassVar[str] = "https://api.stability.ai"
    env_var: ClassVar[str | None] = "STABILITY_API_KEY"
    env_settings: ClassVar[Mapping[str, str]] = {
        "model": "IMAGEGEN_STABILITY_MODEL",
        "base_url": "IMAGEGEN_STABILITY_BASE_URL",
    }
    # A request sent is an image made and billed, whatever becomes of the answer.
    bills_unanswered: ClassVar[bool] = True

    def __init__(
        self,
        *,
        api_key: str | None = None,
        model: str = "core",
        base_url: str | None = None,
        name: str | None = None,
        tier: int | None = None,
        timeout: float | None = None,
        price_per_image: float | None = None,
    ) -> None:
        super().__init__(
            api_key=api_key,
            base_url=base_url,
            name=name,
            tier=tier,
            timeout=timeout,
            price_per_image=price_per_image,
        )
        if model not in _PRICES:
            raise InvalidConfig(
                f"{self.name}: model must be one of {', '.join(_PRICES)} (got {model!r})",
                field="model",
            )
        self.model = model
        self.sd3 = model in _SD3
        self.input_images = 1 if self.sd3 else 0

    def table_price(self, request: ImageRequest) -> float | None:
        """Stability's price of the model, per image."""
        return _PRICES[self.model]

    def form_for(
        self, request: ImageRequest
    ) -> tuple[list[tuple[str, str | FormFile]], tuple[RequestWarning, ...]]:
        """The multipart body for ``request``, and what it could not honour."""
        fields: dict[str, str] = {"prompt": request.prompt}
        warnings: list[RequestWarning] = []
        if request.negative_prompt:
            fields["negative_prompt"] = request.negative_prompt
        if request.seed is not None:
            fields["seed"] = str(request.seed % (_MAX_SEED + 1))
            if request.seed > _MAX_SEED:
                warnings.append(RequestWarning("seed", f"Stability takes seeds up to {_MAX_SEED}"))
        fmt = request.output_format
        fields["output_format"] = "png" if self.sd3 and fmt == "webp" else fmt
        if self.sd3:
            fields["model"] = self.model
        files: list[tuple[str, str | FormFile]] = []
        if request.images:
            image = request.images[0]
            assert image.data is not None  # noqa: S101 - fetched before any provider is called
            kind = image.content_type or "application/octet-stream"
            files.append(("image", FormFile(image.data, f"image.{extension_for(kind)}", kind)))
            fields.update(mode="image-to-image", strength="0.75")
        else:
            fields["aspect_ratio"] = nearest_ratio(request.width, request.height, ASPECT_RATIOS)
        options = {k: str(v) for k, v in request.options_for(self.name).items()}
        form: list[tuple[str, str | FormFile]] = [*{**fields, **options}.items()]
        return form + files, tuple(warnings)

    def endpoint(self) -> str:
        """The path of the model's endpoint."""
        return f"v2beta/stable-image/generate/{'sd3' if self.sd3 else self.model}"

    async def generate(self, request: ImageRequest, ctx: ProviderContext) -> ProviderImage:
        """One multipart ``POST``; the answer is the image."""
        form, warnings = self.form_for(request)
        response = await self.request(
            ctx, "POST", self.endpoint(), form=form, headers={"Accept": "image/*"}, create=True
        )
        finish = response.headers.get("finish-reason", "SUCCESS")
        if finish == "CONTENT_FILTERED":
            raise ContentRejected(
                "Stability's moderation filtered the image",
                provider=self.name,
                status=response.status_code,
                reason="CONTENT_FILTERED",
            )
        if finish != "SUCCESS":
            raise ProviderError(
                f"Stability ended the generation: {finish}",
                provider=self.name,
                status=response.status_code,
                retryable=False,
            )
        return ProviderImage(
            data=response.content,
            content_type=response.headers.get("content-type"),
            seed=_seed(response.headers.get("seed")),
            raw={"model": self.model, "finish_reason": finish},
            warnings=warnings,
        )

    async def check(self, ctx: ProviderContext) -> None:
        """``GET /v1/user/balance``: free; proves the key (and says the credits left)."""
        response = await self.request(ctx, "GET", "v1/user/balance")
        left = self.json_object(response, what="a balance").get("credits")
        ctx.logger.debug("%s: key accepted, %s credits left", self.name, left)

    def classify(
        self, response: httpx.Response, body: Any, message: str, retry_after: float | None
    ) -> ProviderError | None:
        """Moderation (403 ``content_moderation``) and the 429 lockout."""
        name = body.get("name") if isinstance(body, dict) else None
        if response.status_code == 403 and name == "content_moderation":
            return ContentRejected(message, provider=self.name, status=403, reason=str(name))
        if response.status_code == 429:
            wait = _LOCKOUT if retry_after is None else retry_after
            return ProviderRateLimited(message, provider=self.name, status=429, retry_after=wait)
        return super().classify(response, body, message, retry_after)


def _seed(value: str | None) -> int | None:
    """The ``seed`` header as a number (None when absent or not one)."""
    return int(value) if value is not None and value.isdigit() else None
