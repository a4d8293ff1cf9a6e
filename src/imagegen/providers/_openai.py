"""OpenAI's Images API, and any gateway that speaks the same dialect."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from fractions import Fraction
from typing import Any, ClassVar, Literal
from urllib.parse import quote

import httpx

from .._errors import (
    ContentRejected,
    InvalidConfig,
    ProviderError,
    ProviderQuotaExceeded,
    ProviderUnavailable,
)
from .._image import extension_for
from .._inputs import InputImage
from .._models import ImageRequest, RequestWarning
from ._base import ProviderContext, ProviderImage
from ._http import FormFile, HTTPProvider
from ._openai_stream import ImageStream
from ._payloads import decode_base64
from ._prices import openai_answer_cost, openai_price

__all__ = ["OpenAIImages"]

Family = Literal["gpt-image", "dall-e-3", "dall-e-2", "other"]

# The sizes each model family accepts; anything else is a 400 from the API.
SIZES: Mapping[Family, tuple[tuple[int, int], ...]] = {
    "gpt-image": ((1024, 1024), (1536, 1024), (1024, 1536)),
    "dall-e-3": ((1024, 1024), (1792, 1024), (1024, 1792)),
    "dall-e-2": ((256, 256), (512, 512), (1024, 1024)),
}

PROMPT_LIMITS: Mapping[Family, int] = {"gpt-image": 32000, "dall-e-3": 4000, "dall-e-2": 1000}

QUALITIES: Mapping[Family, frozenset[str]] = {
    "gpt-image": frozenset({"auto", "low", "medium", "high"}),
    "dall-e-3": frozenset({"auto", "standard", "hd"}),
    "dall-e-2": frozenset({"auto", "standard"}),
}

# 400 codes meaning the safety system refused the prompt or the picture.
_REJECTED = frozenset({"content_policy_violation", "moderation_blocked"})
_EDIT_IMAGES: dict[str, int] = {"gpt-image": 16, "dall-e-2": 1}
# Out of money: a 429 `insufficient_quota`, or a 400 once the org's hard limit is hit.
_NO_QUOTA = frozenset({"insufficient_quota", "billing_hard_limit_reached"})

_SIZE = re.compile(r"(\d+)x(\d+)")
_DATA_URL = re.compile(r"data:[^,;]*;base64,")


def family_of(model: str) -> Family:
    """Which size, quality and prompt rules apply to ``model``."""
    if model.startswith("gpt-image"):
        return "gpt-image"
    if model.startswith("dall-e-3"):
        return "dall-e-3"
    if model.startswith("dall-e-2"):
        return "dall-e-2"
    return "other"


def nearest_size(model: str, width: int, height: int) -> tuple[int, int]:
    """The allowed size for ``model`` closest to ``width`` x ``height``.

    Closest in aspect ratio first, then in area, both measured as a ratio (so 2x too
    big is as far as 2x too small); a tie goes to the larger size. Models outside the
    known families get the size asked for.
    """
    allowed = SIZES.get(family_of(model))
    if not allowed:
        return width, height
    aspect = Fraction(width, height)
    area = width * height

    def distance(size: tuple[int, int]) -> tuple[Fraction, Fraction, int]:
        w, h = size
        ratio = Fraction(w, h) / aspect
        scale = Fraction(w * h, area)
        return max(ratio, 1 / ratio), max(scale, 1 / scale), -w * h

    return min(allowed, key=distance)


def prompt_limit(model: str) -> int | None:
    """The longest prompt ``model`` takes, in characters (None: unknown, let it decide)."""
    return PROMPT_LIMITS.get(family_of(model))


def _check_text(value: object, field: str, provider: str) -> str:
    if not isinstance(value, str) or not value.strip() or any(c.isspace() for c in value):
        raise InvalidConfig(
            f"{provider}: {field} must be a non-empty string without spaces (got {value!r})",
            field=field,
        )
    return value


class OpenAIImages(HTTPProvider):
    """OpenAI's Images API (``POST /images/generations``) or a compatible gateway.

    One synchronous request makes one image: there is no remote job to poll or
    cancel, so this provider never calls ``ctx.started()``. If the attempt is
    abandoned (lost a race, deadline) the HTTP request itself is dropped; OpenAI
    offers no way to stop a generation already in flight.

    Sizes: the request's ``width`` x ``height`` becomes the allowed size of the model's
    family nearest in aspect ratio, then in area (ties go to the larger):

    - ``gpt-image-*``: 1024x1024, 1536x1024, 1024x1536
    - ``dall-e-3``: 1024x1024, 1792x1024, 1024x1792
    - ``dall-e-2``: 256x256, 512x512, 1024x1024
    - any other model (a compatible gateway): ``"{width}x{height}"`` as asked.

    The size actually used is the image's ``width``/``height`` and ``raw["size"]``,
    so a 1024x768 request to gpt-image-1 reports 1536x1024.

    Output: GPT image models always answer in base64 and get ``output_format`` from
    the request (they reject ``response_format``); DALL·E models get
    ``response_format="b64_json"`` (pass ``{"response_format": "url"}`` in
    ``provider_options`` for a URL, valid 60 minutes) and always make PNG. Other
    models get neither field; either answer shape is accepted. ``seed`` and
    ``negative_prompt`` have no OpenAI equivalent and are ignored. Everything in
    ``request.provider_options["openai"]`` (or this provider's ``name``) is merged
    into the body last, e.g. ``{"background": "transparent"}`` or ``{"style": "natural"}``.

    Prompts longer than the model takes (32000 characters for GPT image models, 4000
    for dall-e-3, 1000 for dall-e-2) fail before anything is sent.

    Args:
        api_key: The API key; default: ``OPENAI_API_KEY``.
        model: ``gpt-image-1``, ``dall-e-3``, ``dall-e-2``, or a gateway's model id.
        base_url: The API root, e.g. ``https://gateway.example.com/openai/v1``.
        quality: ``low``/``medium``/``high``/``auto`` (GPT), ``standard``/``hd``/``auto``
            (dall-e-3), ``standard``/``auto`` (dall-e-2), anything for other models;
            None leaves it to the API.
        organization: Sent as ``OpenAI-Organization``.
        project: Sent as ``OpenAI-Project``.
        name: Override the provider's name (default ``"openai"``).
        tier: Override the tier (default 0).
        timeout: Cap one call, in seconds; GPT image models at high quality can take
            a minute or more.

    Raises:
        InvalidConfig: A bad model, quality, organization or project.
    """

    name = "openai"
    default_base_url: ClassVar[str] = "https://api.openai.com/v1"
    env_var: ClassVar[str | None] = "OPENAI_API_KEY"
    env_settings: ClassVar[Mapping[str, str]] = {
        "model": "IMAGEGEN_OPENAI_MODEL",
        "base_url": "OPENAI_BASE_URL",
    }
    request_id_header: ClassVar[str | None] = "x-request-id"
    # A request sent is a generation made and billed, whatever becomes of the answer.
    bills_unanswered: ClassVar[bool] = True
    #: Whether input images go to ``/images/edits`` as multipart (OpenAI's way); a
    #: gateway that takes them in a generation's JSON body (Together) says False.
    edits_endpoint: ClassVar[bool] = True
    unsupported: Mapping[str, str] = {
        "seed": "OpenAI Images takes no seed",
        "negative_prompt": "OpenAI Images takes no negative prompt",
    }

    def __init__(
        self,
        *,
        api_key: str | None = None,
        model: str = "gpt-image-1",
        base_url: str = "https://api.openai.com/v1",
        quality: str | None = None,
        organization: str | None = None,
        project: str | None = None,
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
        self.model = _check_text(model, "model", self.name)
        self.family: Family = family_of(model)
        # Edits: GPT image models take up to 16 images, dall-e-2 one; both a mask.
        self.input_images = _EDIT_IMAGES.get(self.family, 0)
        self.masks = bool(self.input_images)
        if quality is not None:
            _check_text(quality, "quality", self.name)
            allowed = QUALITIES.get(self.family)
            if allowed is not None and quality not in allowed:
                raise InvalidConfig(
                    f"{self.name}: quality for {model} must be one of "
                    f"{', '.join(sorted(allowed))} (got {quality!r})",
                    field="quality",
                )
        self.quality = quality
        self.organization = (
            None if organization is None else _check_text(organization, "organization", self.name)
        )
        self.project = None if project is None else _check_text(project, "project", self.name)

    def table_price(self, request: ImageRequest) -> float | None:
        """OpenAI's price for the model, quality and size (see ``_prices``)."""
        quality = request.options_for(self.name).get("quality", self.quality)
        width, height = nearest_size(self.model, request.width, request.height)
        return openai_price(self.model, quality, f"{width}x{height}")

    def json_path(self, request: ImageRequest) -> str:
        """Where a JSON create goes: ``images/generations``. A gateway that takes edits
        as JSON at another path (xAI's ``images/edits``) overrides this."""
        return "images/generations"

    def answer_cost(self, answer: Mapping[str, Any]) -> float | None:
        """What an answer cost: OpenAI's usage or quality and size (see ``_prices``). A
        gateway that reports its own cost overrides this."""
        return openai_answer_cost(self.model, answer)

    def refusal(self, answer: Mapping[str, Any]) -> str | None:
        """Why a successful answer holds no image because the vendor refused the
        content (its reason), or None. OpenAI refuses with a 400, so None here; a
        gateway that refuses in a 200 (xAI) overrides this."""
        return None

    def auth_headers(self) -> dict[str, str]:
        """``Authorization: Bearer <key>``, plus the organization and project headers."""
        headers = super().auth_headers()
        if self.organization is not None:
            headers["OpenAI-Organization"] = self.organization
        if self.project is not None:
            headers["OpenAI-Project"] = self.project
        return headers

    def body_for(self, request: ImageRequest) -> dict[str, Any]:
        """The JSON body of ``POST /images/generations`` for ``request``.

        Raises:
            ProviderError: The prompt is longer than the model takes (status 400).
        """
        limit = prompt_limit(self.model)
        if limit is not None and len(request.prompt) > limit:
            raise ProviderError(
                f"the prompt has {len(request.prompt)} characters; {self.model} takes at "
                f"most {limit}",
                provider=self.name,
                status=400,
                retryable=False,
            )
        width, height = nearest_size(self.model, request.width, request.height)
        body: dict[str, Any] = {
            "model": self.model,
            "prompt": request.prompt,
            "n": 1,
            "size": f"{width}x{height}",
        }
        if self.quality is not None:
            body["quality"] = self.quality
        if self.family == "gpt-image":
            body["output_format"] = request.output_format
            if request.safety is not None:
                body["moderation"] = "low" if request.safety == "relaxed" else "auto"
        elif self.family in ("dall-e-3", "dall-e-2"):
            # Inline bytes save a download, and DALL·E URLs expire after an hour.
            body["response_format"] = "b64_json"
        body.update(request.options_for(self.name))
        return body

    def edit_form(self, request: ImageRequest) -> list[tuple[str, str | FormFile]]:
        """The multipart body of ``POST /images/edits``: the fields of
        :meth:`body_for`, then the input images (``image[]`` for GPT image models,
        which take several; ``image`` for dall-e-2) and the ``mask``."""
        form: list[tuple[str, str | FormFile]] = [
            (name, value if isinstance(value, str) else json.dumps(value))
            for name, value in self.body_for(request).items()
        ]
        part = "image[]" if self.family == "gpt-image" else "image"
        for index, image in enumerate(request.images):
            form.append((part, _file(image, f"image-{index}")))
        if request.mask is not None:
            form.append(("mask", _file(request.mask, "mask")))
        return form

    async def generate(self, request: ImageRequest, ctx: ProviderContext) -> ProviderImage:
        """Make one image with one ``POST /images/generations`` (``/images/edits``, as
        multipart, when the request carries input images)."""
        body = self.body_for(request)
        # Previews asked for: GPT image models stream partial images, then the image.
        stream = ImageStream(ctx) if ctx.previews and self.family == "gpt-image" else None
        streaming = {"stream": True, "partial_images": ctx.previews} if stream else {}
        on_chunk = stream.feed if stream is not None else None
        if request.images and self.edits_endpoint:
            form = self.edit_form(request) + [(k, json.dumps(v)) for k, v in streaming.items()]
            response = await self.request(
                ctx, "POST", "images/edits", form=form, create=True, on_chunk=on_chunk
            )
        else:
            response = await self.request(
                ctx,
                "POST",
                self.json_path(request),
                json={**body, **streaming},
                create=True,
                on_chunk=on_chunk,
            )
        request_id = response.headers.get("x-request-id")
        # The image was made (and billed) even if we cannot read the answer.
        answer = self.json(response, create=True) if stream is None else stream.answer()
        if answer is None:
            assert stream is not None  # noqa: S101 - only a stream can bring no answer
            raise self._stream_error(stream.error, response.status_code, request_id)
        ctx.logger.debug("%s: image made, request id %s", self.name, request_id)
        refused = self.refusal(answer)
        if refused is not None:
            raise ContentRejected(
                f"{self.name} refused the image ({refused}){_for(request_id)}",
                provider=self.name,
                status=response.status_code,
                reason=refused,
            )
        item = _first_item(answer)
        if item is None:
            raise ProviderUnavailable(
                f"the answer holds no image{_for(request_id)}",
                provider=self.name,
                status=response.status_code,
                retryable=False,
            )
        size = _size(answer.get("size")) or _size(body.get("size"))
        raw: dict[str, Any] = {k: v for k, v in answer.items() if k != "data"}
        raw.update({"model": self.model, "request_id": request_id})
        if size is not None:
            raw["size"] = f"{size[0]}x{size[1]}"
        if item.get("revised_prompt") is not None:
            raw["revised_prompt"] = item["revised_prompt"]
        width, height = size if size is not None else (None, None)
        # What this answer cost, from its usage (or the quality and size it names).
        cost = None if self.price_per_image is not None else self.answer_cost(answer)
        said: tuple[RequestWarning, ...] = ()  # a safety level DALL·E has no control for
        if request.safety is not None and self.family != "gpt-image":
            said = (RequestWarning("safety", f"{self.model} has no safety setting"),)
        b64 = item.get("b64_json")
        if isinstance(b64, str) and b64:
            return ProviderImage(
                data=self._decode(b64, request_id),
                content_type=_content_type(
                    answer.get("output_format") or body.get("output_format")
                ),
                width=width,
                height=height,
                raw=raw,
                cost=cost,
                warnings=said,
            )
        url = item.get("url")
        if isinstance(url, str) and url:
            return ProviderImage(
                url=url, width=width, height=height, raw=raw, cost=cost, warnings=said
            )
        raise ProviderUnavailable(
            f"the answer's image has neither b64_json nor url{_for(request_id)}",
            provider=self.name,
            status=response.status_code,
            retryable=False,
        )

    def _stream_error(
        self, error: dict[str, Any] | None, status: int, request_id: str | None
    ) -> ProviderError:
        """Why a streamed answer ended without its image: a safety refusal, or not."""
        if error is None:
            return ProviderUnavailable(
                f"the stream ended without the image{_for(request_id)}",
                provider=self.name,
                status=status,
                retryable=False,
            )
        message = self.redact(f"the stream failed: {error.get('message') or error}")
        code = error.get("code") if error.get("code") in _REJECTED else error.get("type")
        if code in _REJECTED:
            return ContentRejected(message, provider=self.name, status=status, reason=str(code))
        return ProviderUnavailable(message, provider=self.name, status=status, retryable=False)

    def _decode(self, b64: str, request_id: str | None) -> bytes:
        # Some gateways send a data: URL rather than bare base64.
        match = _DATA_URL.match(b64)
        if match:
            b64 = b64[match.end() :]
        data = decode_base64(b64)
        if data is None:
            raise ProviderUnavailable(
                f"b64_json is not valid base64{_for(request_id)}",
                provider=self.name,
                retryable=False,
            )
        return data

    async def check(self, ctx: ProviderContext) -> None:
        """``GET {base_url}/models/{model}``: free, and proves the key and the model.

        Raises:
            ProviderAuthError: The key was refused (401/403).
            ProviderError: Status 404 when the endpoint does not know the model; any
                other failure as mapped for every request.
        """
        await self.check_model(ctx, f"models/{quote(self.model, safe='/')}", self.model)

    def classify(
        self, response: httpx.Response, body: Any, message: str, retry_after: float | None
    ) -> ProviderError | None:
        """Safety refusals and quota errors by their ``error.code``/``error.type``.

        A 429 is a rate limit (retryable, honouring ``retry-after-ms``/``retry-after``)
        unless its code or type is ``insufficient_quota``: that one never clears by
        waiting, so it is a non-retryable :class:`ProviderQuotaExceeded`.
        """
        status = response.status_code
        error = body.get("error") if isinstance(body, dict) else None
        codes = (
            {str(error.get("code")), str(error.get("type"))} if isinstance(error, dict) else set()
        )
        if status in (400, 429) and codes & _NO_QUOTA:
            return ProviderQuotaExceeded(
                message, provider=self.name, status=status, retry_after=retry_after
            )
        if status == 400 and codes & _REJECTED:
            assert isinstance(error, dict)  # noqa: S101 - codes come from it
            code = error.get("code") if error.get("code") in _REJECTED else error.get("type")
            return ContentRejected(message, provider=self.name, status=status, reason=str(code))
        return super().classify(response, body, message, retry_after)


def _file(image: InputImage, name: str) -> FormFile:
    """An input image (bytes by now: the generator fetched any URL) as a multipart file."""
    assert image.data is not None  # noqa: S101 - fetched before any provider is called
    content_type = image.content_type or "application/octet-stream"
    return FormFile(image.data, f"{name}.{extension_for(content_type)}", content_type)


def _first_item(answer: Any) -> dict[str, Any] | None:
    if not isinstance(answer, dict):
        return None
    data = answer.get("data")
    if not isinstance(data, list) or not data or not isinstance(data[0], dict):
        return None
    return data[0]


def _size(value: object) -> tuple[int, int] | None:
    match = _SIZE.fullmatch(value) if isinstance(value, str) else None
    return (int(match[1]), int(match[2])) if match else None


def _content_type(output_format: object) -> str | None:
    if output_format in ("png", "jpeg", "webp"):
        return f"image/{output_format}"
    return None


def _for(request_id: str | None) -> str:
    return f" (x-request-id {request_id})" if request_id else ""
