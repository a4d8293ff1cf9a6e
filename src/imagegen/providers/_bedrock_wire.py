"""Amazon Bedrock's image models, as ``InvokeModel`` bodies and answers.

Two body families: Stability's (SD3.5 Large, Stable Image Core and Ultra: a prompt, an
aspect ratio, ``finish_reasons`` in the answer) and Amazon's (Nova Canvas, Titan Image
Generator v2: ``taskType`` with its params and ``imageGenerationConfig``, an ``error``
in the answer). Prices are Bedrock's on-demand prices per image.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Mapping
from fractions import Fraction
from typing import Any, Literal

import attrs

from .._errors import ContentRejected, ProviderError, ProviderUnavailable
from .._models import ImageRequest, RequestWarning
from .._shape import nearest_ratio

__all__ = [
    "DEFAULT_MODEL",
    "BedrockModel",
    "body_for",
    "image_of",
    "model_for",
]

DEFAULT_MODEL = "stability.stable-image-core-v1:1"
#: Stability's ``aspect_ratio`` values on Bedrock, in tie-breaking order.
STABILITY_RATIOS = ("1:1", "16:9", "9:16", "3:2", "2:3", "5:4", "4:5", "21:9", "9:21")
#: Titan Image Generator v2's sizes: it takes no others.
TITAN_SIZES = (
    (1024, 1024), (768, 768), (512, 512), (768, 1152), (384, 576), (1152, 768), (576, 384),
    (768, 1280), (384, 640), (1280, 768), (640, 384), (896, 1152), (448, 576), (1152, 896),
    (576, 448), (768, 1408), (384, 704), (1408, 768), (704, 384), (640, 1408), (320, 704),
    (1408, 640), (704, 320), (1152, 640), (1173, 640),
)  # fmt: skip
_NOVA_MAX_PIXELS = 4_194_304
_CONTENT_FILTERS = "blocked by our content filters"


@attrs.frozen(kw_only=True)
class BedrockModel:
    """What one Bedrock image model takes.

    Args:
        family: ``stability`` or ``amazon`` (Nova Canvas, Titan): the body's shape.
        prompt_limit: The longest prompt, in characters.
        max_seed: The largest seed.
        input_images: How many input images a call takes (0: none).
        masks: Whether it takes a mask (Amazon's inpainting).
        sizes: Titan's fixed sizes; empty: Nova's rule (multiples of 16) or a ratio.
        prices: USD per image: one figure, or (up to 1 MP, up to 4 MP) for Nova; empty
            when not known (Titan v2, whose listed price we could not confirm).
    """

    family: Literal["stability", "amazon"]
    prompt_limit: int
    max_seed: int
    input_images: int = 0
    masks: bool = False
    sizes: tuple[tuple[int, int], ...] = ()
    prices: tuple[float, ...] = ()


#: On-demand prices (https://aws.amazon.com/bedrock/pricing/, 2026-07), standard quality.
MODELS: Mapping[str, BedrockModel] = {
    "stability.stable-image-core-v1:1": BedrockModel(
        family="stability", prompt_limit=10_000, max_seed=4_294_967_294, prices=(0.04,)
    ),
    "stability.stable-image-ultra-v1:1": BedrockModel(
        family="stability", prompt_limit=10_000, max_seed=4_294_967_294, prices=(0.14,)
    ),
    "stability.sd3-5-large-v1:0": BedrockModel(
        family="stability",
        prompt_limit=10_000,
        max_seed=4_294_967_294,
        input_images=1,
        prices=(0.08,),
    ),
    "amazon.nova-canvas-v1:0": BedrockModel(
        family="amazon",
        prompt_limit=1024,
        max_seed=858_993_459,
        input_images=5,
        masks=True,
        prices=(0.04, 0.06),
    ),
    "amazon.titan-image-generator-v2:0": BedrockModel(
        family="amazon",
        prompt_limit=512,
        max_seed=2_147_483_646,
        input_images=5,
        masks=True,
        sizes=TITAN_SIZES,
    ),
}


def model_for(model_id: str) -> BedrockModel:
    """The rules of ``model_id``; an inference profile (``us.stability...``) or an ARN
    follows the model it names. An unknown id is taken for a Stability model, unpriced."""
    tail = model_id.rpartition("/")[2]
    for name, rules in MODELS.items():
        if tail == name or tail.endswith(f".{name}"):
            return rules
    family: Literal["stability", "amazon"] = "amazon" if ".amazon." in f".{tail}" else "stability"
    return BedrockModel(family=family, prompt_limit=1024, max_seed=858_993_459)


def _b64(data: bytes | None) -> str:
    assert data is not None  # noqa: S101 - fetched before any provider is called
    return base64.b64encode(data).decode("ascii")


def nova_size(width: int, height: int) -> tuple[int, int]:
    """Nova Canvas's size nearest ``width`` x ``height``: the shape within 1:4 to 4:1, at
    most 4,194,304 pixels (2048x2048), sides in multiples of 16 from 320 to 4096.

    The short side is rounded down first and the long one drawn from it, so rounding
    never takes the shape past 4:1 nor the size past the pixel cap.
    """
    ratio = max(1.0, min(4.0, max(width, height) / min(width, height)))
    area = min(width * height, _NOVA_MAX_PIXELS)
    short = max(320, int(math.sqrt(area / ratio)) // 16 * 16)
    long = min(4096, int(short * ratio) // 16 * 16)
    return (long, short) if width >= height else (short, long)


def titan_size(width: int, height: int) -> tuple[int, int]:
    """Titan v2's size nearest in shape, then in pixel count."""
    aspect, area = Fraction(width, height), width * height

    def distance(size: tuple[int, int]) -> tuple[Fraction, Fraction]:
        shape = Fraction(*size) / aspect
        scale = Fraction(size[0] * size[1], area)
        return max(shape, 1 / shape), max(scale, 1 / scale)

    return min(TITAN_SIZES, key=distance)


def body_for(
    request: ImageRequest, rules: BedrockModel
) -> tuple[dict[str, Any], tuple[RequestWarning, ...]]:
    """The ``InvokeModel`` body for ``request``, and what it could not honour.

    Raises:
        ProviderError: The prompt is longer than the model takes, or a mask comes with
            more than one input image (status 400, before anything is sent).
    """
    if len(request.prompt) > rules.prompt_limit:
        raise ProviderError(
            f"the prompt has {len(request.prompt)} characters; the model takes at most "
            f"{rules.prompt_limit}",
            provider="bedrock",
            status=400,
            retryable=False,
        )
    warnings: list[RequestWarning] = []
    seed = request.seed
    if seed is not None and seed > rules.max_seed:
        warnings.append(RequestWarning("seed", f"the model takes seeds up to {rules.max_seed}"))
        seed %= rules.max_seed + 1
    if rules.family == "stability":
        return _stability(request, seed), tuple(warnings)
    return _amazon(request, rules, seed), tuple(warnings)


def _stability(request: ImageRequest, seed: int | None) -> dict[str, Any]:
    body: dict[str, Any] = {"prompt": request.prompt, "mode": "text-to-image"}
    if request.images:
        body.update(mode="image-to-image", image=_b64(request.images[0].data), strength=0.75)
    else:
        body["aspect_ratio"] = nearest_ratio(request.width, request.height, STABILITY_RATIOS)
    if request.negative_prompt:
        body["negative_prompt"] = request.negative_prompt
    if seed is not None:
        body["seed"] = seed
    body["output_format"] = "jpeg" if request.output_format == "jpeg" else "png"
    return body


def _amazon(request: ImageRequest, rules: BedrockModel, seed: int | None) -> dict[str, Any]:
    text: dict[str, Any] = {"text": request.prompt}
    if request.negative_prompt:
        text["negativeText"] = request.negative_prompt
    if request.mask is not None:
        if len(request.images) != 1:
            raise ProviderError(
                "inpainting takes one input image with its mask",
                provider="bedrock",
                status=400,
                retryable=False,
            )
        task, params = "INPAINTING", "inPaintingParams"
        text.update(image=_b64(request.images[0].data), maskImage=_b64(request.mask.data))
    elif request.images:
        task, params = "IMAGE_VARIATION", "imageVariationParams"
        text["images"] = [_b64(image.data) for image in request.images]
    else:
        task, params = "TEXT_IMAGE", "textToImageParams"
    width, height = amazon_size(request, rules)
    config: dict[str, Any] = {"numberOfImages": 1, "width": width, "height": height}
    if seed is not None:
        config["seed"] = seed
    return {"taskType": task, params: text, "imageGenerationConfig": config}


def amazon_size(request: ImageRequest, rules: BedrockModel) -> tuple[int, int]:
    """The size an Amazon model is asked for: Titan's nearest, or Nova's rule."""
    return (titan_size if rules.sizes else nova_size)(request.width, request.height)


def price_of(rules: BedrockModel, request: ImageRequest) -> float | None:
    """USD for one image of ``request`` (Nova: by the size sent, standard quality)."""
    if not rules.prices:
        return None
    if len(rules.prices) == 1:
        return rules.prices[0]
    width, height = amazon_size(request, rules)
    return rules.prices[0] if width * height <= 1024 * 1024 else rules.prices[1]


def image_of(answer: Mapping[str, Any], provider: str) -> tuple[bytes, int | None]:
    """The image (and its seed) an answer holds.

    Raises:
        ContentRejected: A content filter blocked the prompt or the image.
        ProviderUnavailable: The model failed, or the answer holds no readable image
            (not retryable: the call was made).
    """
    reasons = answer.get("finish_reasons")
    reason = reasons[0] if isinstance(reasons, list) and reasons else None
    if isinstance(reason, str) and reason.startswith("Filter reason"):
        raise ContentRejected(f"Bedrock: {reason}", provider=provider, reason=reason)
    error = answer.get("error")
    if isinstance(error, str) and _CONTENT_FILTERS in error:
        raise ContentRejected(f"Bedrock: {error}", provider=provider, reason="content filters")
    images = answer.get("images")
    first = images[0] if isinstance(images, list) and images else None
    data = None
    if isinstance(first, str):
        try:
            data = base64.b64decode(first, validate=True)
        except ValueError:
            data = None
    if not data:
        said = reason or error or "no image in the answer"
        raise ProviderUnavailable(f"Bedrock: {said}", provider=provider, retryable=False)
    seeds = answer.get("seeds")
    seed = seeds[0] if isinstance(seeds, list) and seeds else None
    return data, seed if isinstance(seed, int) and not isinstance(seed, bool) else None
