"""Gateways that speak a dialect of OpenAI's Images API: Together AI and xAI.

Each is :class:`OpenAIImages` with its own base URL, key variable, default model and
the fields where its dialect differs; the request, error and answer machinery is
OpenAI's.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar

from .._errors import InvalidConfig
from .._models import ImageRequest
from .._shape import nearest_ratio, nearest_tier
from ._base import ProviderContext
from ._openai import OpenAIImages
from ._payloads import data_uri

__all__ = ["XAI", "Together"]

#: xAI's aspect ratios with whole terms, in tie-breaking order.
XAI_RATIOS = ("1:1", "16:9", "9:16", "4:3", "3:4", "3:2", "2:3", "2:1", "1:2")
#: Together's FLUX.2 and Kontext models take no negative prompt.
_NO_NEGATIVE = ("FLUX.2", "kontext")
#: Together's models that take an input image (``image_url``).
_EDITS = ("kontext", "FLUX.2-pro", "FLUX.2-flex")
_TICKS_PER_USD = 1e10  # xAI's usage.cost_in_usd_ticks
#: xAI's listed prices per image (https://docs.x.ai/docs/models, 2026-08).
_XAI_PRICES: Mapping[str, float] = {"grok-imagine-image": 0.02}


def _model(value: object, provider: str) -> str:
    if not isinstance(value, str) or not value.strip() or value != value.strip():
        raise InvalidConfig(f"{provider}: model must be a model id", field="model")
    return value


class _Dialect(OpenAIImages):
    """OpenAI's Images API at another vendor: its base URL and default model, no
    organization or project headers, no quality setting of OpenAI's."""

    default_model: ClassVar[str] = ""

    def __init__(
        self,
        *,
        api_key: str | None = None,
        model: str | None = None,
        base_url: str | None = None,
        name: str | None = None,
        tier: int | None = None,
        timeout: float | None = None,
        price_per_image: float | None = None,
    ) -> None:
        super().__init__(
            api_key=api_key,
            model=_model(self.default_model if model is None else model, name or self.name),
            base_url=base_url or self.default_base_url,
            name=name,
            tier=tier,
            timeout=timeout,
            price_per_image=price_per_image,
        )
        self.input_images, self.masks = 0, False
        self._fit_model()

    def _fit_model(self) -> None:
        """Set what depends on the model (input images, fields it refuses)."""


class Together(_Dialect):
    """Together AI's images API (``POST /v1/images/generations``).

    Its dialect: ``width`` and ``height`` (multiples of 8, 256 to 1920) instead of
    ``size``; ``seed``; ``negative_prompt`` (not for FLUX.2 and Kontext, which warn);
    ``response_format`` ``base64``; ``output_format`` JPEG or PNG (WebP is asked as PNG);
    ``safety="relaxed"`` turns the safety checker off (``disable_safety_checker``). An
    input image goes in the same call as ``image_url`` (a data URI) to the Kontext and
    FLUX.2 pro/flex models; there is no edits endpoint and no mask. Together's NSFW
    refusal (a 422) is a :class:`~imagegen.ContentRejected`. Prices are per megapixel
    and step count, which the answer does not report: the cost is unknown unless you
    pass ``price_per_image=``.

    Args:
        api_key: The key; default: ``TOGETHER_API_KEY``.
        model: A Together model id; default ``black-forest-labs/FLUX.1-schnell``.
    """

    name = "together"
    default_base_url: ClassVar[str] = "https://api.together.xyz/v1"
    default_model: ClassVar[str] = "black-forest-labs/FLUX.1-schnell"
    env_var: ClassVar[str | None] = "TOGETHER_API_KEY"
    env_settings: ClassVar[Mapping[str, str]] = {
        "model": "IMAGEGEN_TOGETHER_MODEL",
        "base_url": "IMAGEGEN_TOGETHER_BASE_URL",
    }
    request_id_header: ClassVar[str | None] = None
    edits_endpoint: ClassVar[bool] = False
    unsupported: Mapping[str, str] = {}

    def _fit_model(self) -> None:
        """One input image (``image_url``) for Kontext and FLUX.2 pro/flex; no negative
        prompt for FLUX.2 and Kontext."""
        model = self.model
        self.input_images = 1 if any(part in model for part in _EDITS) else 0
        self.negative = not any(part in model for part in _NO_NEGATIVE)
        if not self.negative:
            self.unsupported = {"negative_prompt": f"{model} takes no negative prompt"}

    def body_for(self, request: ImageRequest) -> dict[str, Any]:
        """Together's JSON body for ``request`` (see the class docstring)."""
        body: dict[str, Any] = {
            "model": self.model,
            "prompt": request.prompt,
            "n": 1,
            "width": max(256, min(1920, request.width)),
            "height": max(256, min(1920, request.height)),
            "response_format": "base64",
            "output_format": "jpeg" if request.output_format == "jpeg" else "png",
        }
        if request.seed is not None:
            body["seed"] = request.seed
        if request.negative_prompt and self.negative:
            body["negative_prompt"] = request.negative_prompt
        if request.safety is not None:
            body["disable_safety_checker"] = request.safety == "relaxed"
        if request.images:
            body["image_url"] = data_uri(request.images[0])
        body.update(request.options_for(self.name))
        return body

    async def check(self, ctx: ProviderContext) -> None:
        """``GET /v1/models``: free; proves the key."""
        await self.request(ctx, "GET", "models")


class XAI(_Dialect):
    """xAI's Grok Imagine images API (``POST /v1/images/generations``).

    Its dialect: no ``size`` but ``aspect_ratio`` (the nearest of 1:1 16:9 9:16 4:3 3:4
    3:2 2:3 2:1 1:2) and ``resolution`` (``1k`` or ``2k``, the nearer to the size
    asked); ``response_format`` ``b64_json``; no seed, negative prompt, quality or
    mask. One input image makes an edit, sent as JSON to ``/v1/images/edits`` (a data
    URI). xAI refuses in a 200: an item with ``respect_moderation: false`` (or no
    item at all) is a :class:`~imagegen.ContentRejected`. The cost is what the answer
    says (``usage.cost_in_usd_ticks``).

    Args:
        api_key: The key; default: ``XAI_API_KEY``.
        model: ``grok-imagine-image`` (default), ``grok-imagine-image-quality``...
    """

    name = "xai"
    default_base_url: ClassVar[str] = "https://api.x.ai/v1"
    default_model: ClassVar[str] = "grok-imagine-image"
    env_var: ClassVar[str | None] = "XAI_API_KEY"
    env_settings: ClassVar[Mapping[str, str]] = {
        "model": "IMAGEGEN_XAI_MODEL",
        "base_url": "IMAGEGEN_XAI_BASE_URL",
    }
    request_id_header: ClassVar[str | None] = None
    edits_endpoint: ClassVar[bool] = False
    unsupported: Mapping[str, str] = {
        "seed": "xAI takes no seed",
        "negative_prompt": "xAI takes no negative prompt",
    }

    def _fit_model(self) -> None:
        """One input image, sent as JSON to ``images/edits``."""
        self.input_images = 1

    def body_for(self, request: ImageRequest) -> dict[str, Any]:
        """xAI's JSON body for ``request`` (see the class docstring)."""
        tier = nearest_tier(request.width, request.height, ("1K", "2K"))
        body: dict[str, Any] = {
            "model": self.model,
            "prompt": request.prompt,
            "n": 1,
            "response_format": "b64_json",
            "resolution": tier.lower(),
        }
        if request.images:
            body["image"] = {"url": data_uri(request.images[0]), "type": "image_url"}
        else:  # an edit keeps its image's shape
            body["aspect_ratio"] = nearest_ratio(request.width, request.height, XAI_RATIOS)
        body.update(request.options_for(self.name))
        return body

    def json_path(self, request: ImageRequest) -> str:
        """Edits go, as JSON, to ``images/edits``."""
        return "images/edits" if request.images else "images/generations"

    def refusal(self, answer: Mapping[str, Any]) -> str | None:
        """``moderation`` for an item xAI would not show, or an answer with no item."""
        data = answer.get("data")
        if not isinstance(data, list) or not data:
            return "moderation"
        first = data[0]
        if isinstance(first, Mapping) and first.get("respect_moderation") is False:
            return "moderation"
        return None

    def answer_cost(self, answer: Mapping[str, Any]) -> float | None:
        """``usage.cost_in_usd_ticks``, in USD (ten billion ticks to the dollar)."""
        usage = answer.get("usage")
        ticks = usage.get("cost_in_usd_ticks") if isinstance(usage, Mapping) else None
        if isinstance(ticks, bool) or not isinstance(ticks, int | float):
            return None
        if not math.isfinite(ticks) or ticks < 0:
            return None
        return float(ticks) / _TICKS_PER_USD

    def table_price(self, request: ImageRequest) -> float | None:
        """xAI's listed price for the model (2026-08), before the answer says."""
        return _XAI_PRICES.get(self.model)

    async def check(self, ctx: ProviderContext) -> None:
        """``GET /v1/api-key``: free; proves the key (and says if it is blocked)."""
        await self.request(ctx, "GET", "api-key")
