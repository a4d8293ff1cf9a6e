"""Black Forest Labs' wire format: each FLUX model's fields, a task's status, its price.

The request side (the model's sizing rule: pixels in steps, or an aspect ratio, or the
input image's own; its input images and mask; its safety tolerance range and output
formats) and the answer side (a task's status, its sample URL, moderation) of
:class:`~imagegen.providers.BlackForestLabs`.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Mapping
from typing import Any, Literal

import attrs

from .._errors import ContentRejected, ProviderError
from .._models import ImageRequest
from .._shape import nearest_ratio
from ._polling import DONE, Progress

__all__ = [
    "DEFAULT_MODEL",
    "FluxModel",
    "body_for",
    "model_for",
    "price_of",
    "progress",
    "sample_of",
]

DEFAULT_MODEL = "flux-2-pro"
#: Aspect ratios for the models that take one (BFL accepts 21:9 to 9:21).
RATIOS = ("1:1", "16:9", "9:16", "4:3", "3:4", "3:2", "2:3", "5:4", "4:5", "21:9", "9:21")
_MOD = ("Request Moderated", "Content Moderated")
_RUNNING = ("Pending",)


@attrs.frozen(kw_only=True)
class FluxModel:
    """What one FLUX model on BFL's API takes, and what it costs.

    Args:
        sizing: ``pixels`` (``width``/``height`` in multiples of ``step``, sides
            within ``sides``, at most ``max_pixels``), ``ratio`` (``aspect_ratio``),
            or ``input`` (the input image's own size: fill).
        step: The multiple sides are rounded to.
        sides: The smallest and largest side.
        max_pixels: The largest image, in pixels.
        inputs: The input image fields, in order (``input_image``, ``input_image_2``...).
        mask: The mask's field, or None.
        tolerance: The highest ``safety_tolerance`` (0 is the strictest).
        formats: The output formats it makes.
        per_image: USD per image; None when priced per megapixel.
        per_megapixel: USD for the first megapixel and each one after (output and
            input), for FLUX.2; None when priced per image.
    """

    sizing: Literal["pixels", "ratio", "input"] = "pixels"
    step: int = 16
    sides: tuple[int, int] = (64, 4096)
    max_pixels: int = 4 * 1024 * 1024
    inputs: tuple[str, ...] = ()
    mask: str | None = None
    tolerance: int = 5
    formats: tuple[str, ...] = ("jpeg", "png", "webp")
    per_image: float | None = None
    per_megapixel: tuple[float, float] | None = None


def _inputs(count: int) -> tuple[str, ...]:
    return ("input_image", *(f"input_image_{n}" for n in range(2, count + 1)))


_FLUX1 = FluxModel(step=32, sides=(256, 1440), tolerance=6, formats=("jpeg", "png"))
_KONTEXT = FluxModel(sizing="ratio", inputs=_inputs(4), tolerance=6, formats=("jpeg", "png"))
_FLUX2 = FluxModel(inputs=_inputs(8))
_KLEIN = attrs.evolve(_FLUX2, inputs=_inputs(4))
#: Prices from https://bfl.ai/pricing and docs.bfl.ai (2026-04); 1 credit is $0.01.
MODELS: Mapping[str, FluxModel] = {
    "flux-2-pro": attrs.evolve(_FLUX2, per_megapixel=(0.03, 0.015)),
    "flux-2-max": attrs.evolve(_FLUX2, per_megapixel=(0.07, 0.03)),
    "flux-2-flex": attrs.evolve(_FLUX2, per_megapixel=(0.05, 0.05)),
    "flux-2-klein-4b": attrs.evolve(_KLEIN, per_megapixel=(0.014, 0.001)),
    "flux-2-klein-9b": attrs.evolve(_KLEIN, per_megapixel=(0.015, 0.002)),
    "flux-pro-1.1": attrs.evolve(_FLUX1, per_image=0.04),
    "flux-dev": attrs.evolve(_FLUX1, per_image=0.025),
    "flux-pro-1.1-ultra": attrs.evolve(_FLUX1, sizing="ratio", per_image=0.06),
    "flux-kontext-pro": attrs.evolve(_KONTEXT, per_image=0.04),
    "flux-kontext-max": attrs.evolve(_KONTEXT, per_image=0.08),
    "flux-pro-1.0-fill": FluxModel(
        sizing="input", inputs=("image",), mask="mask", tolerance=6, per_image=0.05
    ),
}


def model_for(model: str) -> FluxModel:
    """The rules of ``model``; a model not listed is taken for a FLUX.2 one, unpriced."""
    return MODELS.get(model, _FLUX2)


def _side(value: float, rules: FluxModel) -> int:
    low, high = rules.sides
    stepped = math.floor(value / rules.step + 0.5) * rules.step  # halves round up
    return max(low, min(high - high % rules.step, stepped))


def size_for(width: int, height: int, rules: FluxModel) -> tuple[int, int]:
    """``width`` x ``height`` in the model's steps and bounds, shrunk (in shape) to
    its largest image when it is bigger."""
    scale = min(1.0, math.sqrt(rules.max_pixels / (width * height)))
    return _side(width * scale, rules), _side(height * scale, rules)


def body_for(request: ImageRequest, rules: FluxModel) -> dict[str, Any]:
    """The JSON body of ``POST /v1/{model}`` for ``request`` (no webhook fields)."""
    body: dict[str, Any] = {"prompt": request.prompt}
    if rules.sizing == "pixels":
        body["width"], body["height"] = size_for(request.width, request.height, rules)
    elif rules.sizing == "ratio":
        body["aspect_ratio"] = request.aspect_ratio or nearest_ratio(
            request.width, request.height, RATIOS
        )
    for field, image in zip(rules.inputs, request.images, strict=False):
        assert image.data is not None  # noqa: S101 - fetched before any provider is called
        body[field] = base64.b64encode(image.data).decode("ascii")
    if rules.mask is not None and request.mask is not None:
        assert request.mask.data is not None  # noqa: S101 - as above
        body[rules.mask] = base64.b64encode(request.mask.data).decode("ascii")
    if request.seed is not None:
        body["seed"] = request.seed
    # A format the model does not make is asked as PNG; the result says what it got.
    body["output_format"] = (
        request.output_format if request.output_format in rules.formats else "png"
    )
    if request.safety is not None:
        body["safety_tolerance"] = 0 if request.safety == "strict" else rules.tolerance
    return body


def price_of(rules: FluxModel, request: ImageRequest) -> float | None:
    """USD for one image of ``request``: per image, or per megapixel of the output as
    sent (FLUX.2). None for a model not listed, and for FLUX.2 with input images,
    whose megapixels are priced too (the create's answer says what it cost)."""
    if rules.per_image is not None:
        return rules.per_image
    if rules.per_megapixel is None or request.images:
        return None
    first, further = rules.per_megapixel
    width, height = size_for(request.width, request.height, rules)
    return first + max(0.0, width * height / 1e6 - 1) * further


def progress(task: Mapping[str, Any], *, provider: str) -> Progress:
    """What a ``get_result`` answer says: done (``Ready``), still running, or an error.

    Raises:
        ContentRejected: The prompt or the image was moderated (with BFL's reasons).
        ProviderError: The task failed or is unknown (not retryable: it was billed).
    """
    status = task.get("status")
    if status == "Ready":
        return DONE
    if status in _RUNNING:
        share = task.get("progress")
        return Progress(note=f"{share:.0%} done" if isinstance(share, int | float) else None)
    if status in _MOD:
        details = task.get("details")
        reasons = details.get("Moderation Reasons") if isinstance(details, Mapping) else None
        said = f": {', '.join(map(str, reasons))}" if isinstance(reasons, list) and reasons else ""
        raise ContentRejected(f"BFL: {status}{said}", provider=provider, reason=str(status))
    if status in ("Error", "Task not found"):
        raise ProviderError(f"BFL task: {status}", provider=provider, retryable=False)
    return Progress(note=f"status {status!r}, polling on")


def sample_of(task: Mapping[str, Any]) -> tuple[str | None, int | None]:
    """The image URL and seed of a ``Ready`` task."""
    result = task.get("result")
    if not isinstance(result, Mapping):
        return None, None
    sample, seed = result.get("sample"), result.get("seed")
    return (
        sample if isinstance(sample, str) and sample else None,
        seed if isinstance(seed, int) and not isinstance(seed, bool) else None,
    )
