"""Hugging Face Inference Providers: text-to-image through the router, with an HF token."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar
from urllib.parse import quote

import attrs

from .._errors import InvalidConfig, ProviderError, ProviderUnavailable
from .._models import ImageRequest, RequestWarning
from ._base import ProviderContext, ProviderImage
from ._http import HTTPProvider
from ._payloads import checked_url, decode_base64

__all__ = ["HuggingFace"]

#: The providers this class speaks to through the router, in no particular order:
#: ``hf-inference`` answers with bytes, ``together`` and ``nscale`` in OpenAI's shape,
#: ``fal-ai`` (its synchronous endpoint) with a URL.
PROVIDERS = ("hf-inference", "together", "nscale", "fal-ai")
_HUB = "https://huggingface.co"
_ROUTER = "https://router.huggingface.co"


class HuggingFace(HTTPProvider):
    """Hugging Face Inference Providers: a Hub model's text-to-image, run by the inference
    provider Hugging Face routes it to, paid with an HF token (``HF_TOKEN``).

    ``provider="auto"`` (the default) asks the Hub which providers serve the model
    (``GET /api/models/{model}?expand[]=inferenceProviderMapping``, once per provider
    object, in the order your account prefers) and takes the first one this class
    speaks: ``hf-inference`` (``POST /hf-inference/models/{model}``, the image's bytes),
    ``together`` and ``nscale`` (``/v1/images/generations`` behind the router, base64),
    ``fal-ai`` (its synchronous endpoint, then a download). Name one to use it (the
    lookup still gives its id for the model; ``hf-inference`` needs none). Each
    provider is sent its own body, with the model id the Hub maps to it.

    The size, ``seed`` and ``negative_prompt`` go to every provider that takes them
    (``hf-inference``: as ``parameters``; fal: ``image_size``; Together: ``width``,
    ``height``, ``seed``; nscale: ``size`` only; what a provider takes none of is
    said in ``ImageResult.warnings``). No input images. The router answers
    a spent credit balance with 402 (a :class:`~imagegen.ProviderQuotaExceeded`). The
    cost is not reported: pass ``price_per_image=`` for one.

    Args:
        api_key: The token; default: ``HF_TOKEN``.
        model: A Hub model id; default ``black-forest-labs/FLUX.1-schnell``.
        provider: ``auto`` or one of ``hf-inference``, ``together``, ``nscale``, ``fal-ai``.
        base_url: The router; default ``https://router.huggingface.co``.
        hub_url: The Hub, for the provider lookup and ``check()``.
    """

    name = "huggingface"
    default_base_url: ClassVar[str] = _ROUTER
    env_var: ClassVar[str | None] = "HF_TOKEN"
    env_settings: ClassVar[Mapping[str, str]] = {
        "model": "IMAGEGEN_HF_MODEL",
        "provider": "IMAGEGEN_HF_PROVIDER",
        "base_url": "IMAGEGEN_HF_BASE_URL",
        "hub_url": "IMAGEGEN_HF_HUB_URL",
    }
    request_id_header: ClassVar[str | None] = "x-request-id"
    # A request sent is an image made and billed, whatever becomes of the answer.
    bills_unanswered: ClassVar[bool] = True

    def __init__(
        self,
        *,
        api_key: str | None = None,
        model: str = "black-forest-labs/FLUX.1-schnell",
        provider: str = "auto",
        base_url: str | None = None,
        hub_url: str = _HUB,
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
        if not isinstance(model, str) or model.count("/") != 1 or model != model.strip():
            raise InvalidConfig(
                f"{self.name}: model must be a Hub id, owner/name (got {model!r})", field="model"
            )
        if provider != "auto" and provider not in PROVIDERS:
            raise InvalidConfig(
                f"{self.name}: provider must be auto or one of {', '.join(PROVIDERS)} "
                f"(got {provider!r})",
                field="provider",
            )
        self.model = model
        self.provider = provider
        self.hub_url = checked_url(hub_url, "hub_url", self.name)
        # (provider, its id for the model), once looked up: the Hub's mapping changes
        # rarely, and a lookup per image would double the calls.
        # hf-inference runs the Hub's model itself; the others have their own ids for it.
        self._route = (provider, model) if provider == "hf-inference" else None

    async def route(self, ctx: ProviderContext) -> tuple[str, str]:
        """The provider that serves the model, and its id for it.

        Raises:
            ProviderError: No provider this class speaks serves the model (not retryable).
        """
        if self._route is not None:
            return self._route
        response = await self.request(
            ctx,
            "GET",
            f"{self.hub_url}/api/models/{self.model}",
            params={"expand[]": "inferenceProviderMapping"},
        )
        mapping = self.json_object(response, what="a model").get("inferenceProviderMapping")
        entries = (
            list(mapping.items())
            if isinstance(mapping, Mapping)
            else [(e.get("provider"), e) for e in mapping or () if isinstance(e, Mapping)]
        )
        wanted = PROVIDERS if self.provider == "auto" else (self.provider,)
        for provider, entry in entries:
            if (
                provider in wanted
                and isinstance(entry, Mapping)
                and entry.get("task") == "text-to-image"
                and entry.get("status") != "error"
                and isinstance(entry.get("providerId"), str)
            ):
                self._route = (str(provider), str(entry["providerId"]))
                return self._route
        served = ", ".join(str(p) for p, _ in entries) or "none"
        which = "no provider this client speaks" if self.provider == "auto" else self.provider
        raise ProviderError(
            f"{which} serves {self.model} for text-to-image (the Hub lists: {served})",
            provider=self.name,
            status=404,
            retryable=False,
        )

    async def generate(self, request: ImageRequest, ctx: ProviderContext) -> ProviderImage:
        """One call to the routed provider (see the class docstring)."""
        provider, model_id = await self.route(ctx)
        raw = {"provider": provider, "model": model_id}
        if provider == "hf-inference":
            parameters: dict[str, Any] = {"width": request.width, "height": request.height}
            if request.seed is not None:
                parameters["seed"] = request.seed
            if request.negative_prompt:
                parameters["negative_prompt"] = request.negative_prompt
            body = {"inputs": request.prompt, "parameters": parameters}
            body.update(request.options_for(self.name))
            response = await self.request(
                ctx,
                "POST",
                f"hf-inference/models/{model_id}",
                json=body,
                headers={"Accept": "image/png"},
                create=True,
            )
            kind = response.headers.get("content-type")
            return ProviderImage(data=response.content, content_type=kind, raw=raw)
        answer = await self._routed(ctx, provider, model_id, request)
        # What the routed provider's body has no field for, said rather than dropped.
        dropped = {"nscale": ("seed", "negative_prompt"), "fal-ai": ("negative_prompt",)}
        said = tuple(
            RequestWarning(field, f"{provider} takes no {field.replace('_', ' ')}")
            for field in dropped.get(provider, ())
            if getattr(request, field)
        )
        image = self._image(answer, provider, raw)
        return attrs.evolve(image, warnings=said)

    async def _routed(
        self, ctx: ProviderContext, provider: str, model_id: str, request: ImageRequest
    ) -> dict[str, Any]:
        """A third-party provider's own request, behind the router."""
        body: dict[str, Any] = {"prompt": request.prompt}
        if provider == "fal-ai":
            body["image_size"] = {"width": request.width, "height": request.height}
            path = f"fal-ai/{quote(model_id, safe='/')}"
        else:
            body.update(model=model_id, n=1)
            if provider == "together":
                body.update(width=request.width, height=request.height, response_format="base64")
            else:  # nscale
                body.update(size=f"{request.width}x{request.height}", response_format="b64_json")
            path = f"{provider}/v1/images/generations"
        if request.seed is not None and provider != "nscale":
            body["seed"] = request.seed
        if request.negative_prompt and provider == "together":
            body["negative_prompt"] = request.negative_prompt
        body.update(request.options_for(self.name))
        response = await self.request(ctx, "POST", path, json=body, create=True)
        return self.json_object(response, create=True, what="an answer")

    def _image(self, answer: dict[str, Any], provider: str, raw: dict[str, Any]) -> ProviderImage:
        """The image in a routed provider's answer (fal's URL, or OpenAI-shaped base64)."""
        items = answer.get("images") if provider == "fal-ai" else answer.get("data")
        first = items[0] if isinstance(items, list) and items else None
        if isinstance(first, Mapping):
            if isinstance(first.get("url"), str) and first["url"]:
                return ProviderImage(url=first["url"], raw=raw)
            data = decode_base64(str(first.get("b64_json") or ""))
            if data:
                return ProviderImage(data=data, raw=raw)
        raise ProviderUnavailable(
            f"{provider}'s answer holds no image", provider=self.name, retryable=False
        )

    async def check(self, ctx: ProviderContext) -> None:
        """``GET {hub_url}/api/whoami-v2``: free; proves the token."""
        await self.request(ctx, "GET", f"{self.hub_url}/api/whoami-v2")
