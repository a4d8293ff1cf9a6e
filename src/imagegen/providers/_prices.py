"""What the built-in vendors charge, in USD: each figure with where it was read and when.

Prices change; a figure here is what the vendor's pricing page said on the date given,
and a model or a setting not listed has no price (None), never a guess. Pass
``price_per_image=`` to a provider to use your own figure instead (a negotiated rate,
a newer price, a gateway's).

- OpenAI (https://platform.openai.com/docs/pricing, 2026-05): GPT image models per
  image by quality and size, and by token for the usage an answer reports; DALL·E
  per image by quality and size. ``quality="auto"`` (or none given) has no price until
  the answer says which quality was used.
- Replicate (https://replicate.com/pricing, 2026-05): official FLUX models per output
  image; a prediction without output is not billed.
- fal (https://fal.ai/pricing, 2026-05): FLUX apps per megapixel of output, rounded up
  to a whole megapixel (1024x1024 pixels); only successful outputs are billed.
- Google (https://ai.google.dev/gemini-api/docs/pricing, 2026-05; the same on Vertex AI):
  Gemini image models per token, input and output, with an image's output tokens by its
  ``imageSize``; an answer's cost is read from the usage it reports.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

__all__ = [
    "fal_price",
    "gemini_answer_cost",
    "gemini_price",
    "openai_answer_cost",
    "openai_price",
    "replicate_price",
]

#: (model, quality, size) -> USD per image.
_OPENAI_PER_IMAGE: Mapping[tuple[str, str, str], float] = {
    ("gpt-image-1", "low", "1024x1024"): 0.011,
    ("gpt-image-1", "low", "1024x1536"): 0.016,
    ("gpt-image-1", "low", "1536x1024"): 0.016,
    ("gpt-image-1", "medium", "1024x1024"): 0.042,
    ("gpt-image-1", "medium", "1024x1536"): 0.063,
    ("gpt-image-1", "medium", "1536x1024"): 0.063,
    ("gpt-image-1", "high", "1024x1024"): 0.167,
    ("gpt-image-1", "high", "1024x1536"): 0.25,
    ("gpt-image-1", "high", "1536x1024"): 0.25,
    ("dall-e-3", "standard", "1024x1024"): 0.04,
    ("dall-e-3", "standard", "1024x1792"): 0.08,
    ("dall-e-3", "standard", "1792x1024"): 0.08,
    ("dall-e-3", "hd", "1024x1024"): 0.08,
    ("dall-e-3", "hd", "1024x1792"): 0.12,
    ("dall-e-3", "hd", "1792x1024"): 0.12,
    ("dall-e-2", "standard", "256x256"): 0.016,
    ("dall-e-2", "standard", "512x512"): 0.018,
    ("dall-e-2", "standard", "1024x1024"): 0.02,
}
#: The quality a DALL·E model uses when none is sent (GPT image models: "auto").
_OPENAI_DEFAULT_QUALITY = {"dall-e-3": "standard", "dall-e-2": "standard"}
#: model -> USD per token: (text input, image input, image output).
_OPENAI_TOKENS: Mapping[str, tuple[float, float, float]] = {
    "gpt-image-1": (5e-6, 10e-6, 40e-6),
}
#: Replicate official models -> USD per output image.
_REPLICATE_PER_IMAGE: Mapping[str, float] = {
    "black-forest-labs/flux-schnell": 0.003,
    "black-forest-labs/flux-dev": 0.025,
}
#: fal apps -> USD per megapixel of output.
_FAL_PER_MEGAPIXEL: Mapping[str, float] = {
    "fal-ai/flux/schnell": 0.003,
    "fal-ai/flux/dev": 0.025,
}
_MEGAPIXEL = 1024 * 1024
#: Gemini image models -> USD per token: (input, text and thinking output, image output).
_GEMINI_TOKENS: Mapping[str, tuple[float, float, float]] = {
    "gemini-2.5-flash-image": (0.30e-6, 2.50e-6, 30e-6),
    "gemini-3-pro-image": (2e-6, 12e-6, 120e-6),
    "gemini-3.1-flash-image": (0.50e-6, 3e-6, 60e-6),
}
#: Gemini image models -> output tokens of one image, by ``imageSize`` (None: not sent).
_GEMINI_IMAGE_TOKENS: Mapping[str, Mapping[str | None, int]] = {
    "gemini-2.5-flash-image": {None: 1290},
    "gemini-3-pro-image": {None: 1120, "1K": 1120, "2K": 1120, "4K": 2000},
    "gemini-3.1-flash-image": {None: 1120, "1K": 1120, "2K": 1680, "4K": 2520},
}


def openai_price(model: str, quality: str | None, size: str) -> float | None:
    """USD for one image of ``model`` at ``quality`` and ``size`` ("1024x1024")."""
    quality = quality or _OPENAI_DEFAULT_QUALITY.get(model)
    if quality is None:
        return None
    return _OPENAI_PER_IMAGE.get((model, quality, size))


def openai_answer_cost(model: str, answer: Mapping[str, Any]) -> float | None:
    """What an answer of ``model`` cost: from the usage it reports (GPT image models),
    else from the quality and size it says it used; None when it says neither."""
    tokens = _OPENAI_TOKENS.get(model)
    usage = answer.get("usage")
    if tokens is not None and isinstance(usage, Mapping):
        counts = _usage_counts(usage)
        if counts is not None:
            text_in, image_in, image_out = counts
            return text_in * tokens[0] + image_in * tokens[1] + image_out * tokens[2]
    quality, size = answer.get("quality"), answer.get("size")
    if isinstance(quality, str) and isinstance(size, str):
        return openai_price(model, quality, size)
    return None


def _usage_counts(usage: Mapping[str, Any]) -> tuple[int, int, int] | None:
    """(text input, image input, image output) tokens, or None when not all are there."""
    details = usage.get("input_tokens_details")
    if not isinstance(details, Mapping):
        return None
    counts = (
        _count(details.get("text_tokens", 0)),
        _count(details.get("image_tokens", 0)),
        _count(usage.get("output_tokens")),
    )
    text, image, output = counts
    if text is None or image is None or output is None:
        return None
    return text, image, output


def _count(value: object) -> int | None:
    """A token count (an int >= 0, not a bool), or None."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return None


def replicate_price(model: str, version: str | None) -> float | None:
    """USD per output image of an official model (a pinned version has no price here)."""
    return None if version is not None else _REPLICATE_PER_IMAGE.get(model)


def fal_price(app: str, width: int, height: int) -> float | None:
    """USD for one ``width`` x ``height`` output of ``app``."""
    per_megapixel = _FAL_PER_MEGAPIXEL.get(app)
    if per_megapixel is None:
        return None
    return per_megapixel * max(1, math.ceil(width * height / _MEGAPIXEL))


def _gemini_family(model: str) -> str | None:
    """The priced model ``model`` is a version of (``-preview`` ids share the price)."""
    return next((name for name in _GEMINI_TOKENS if model.startswith(name)), None)


def gemini_price(model: str, image_size: str | None) -> float | None:
    """USD for the output tokens of one image of ``model`` at ``image_size`` ("2K")."""
    family = _gemini_family(model)
    if family is None:
        return None
    tokens = _GEMINI_IMAGE_TOKENS[family].get(image_size)
    return None if tokens is None else tokens * _GEMINI_TOKENS[family][2]


def gemini_answer_cost(model: str, usage: object) -> float | None:
    """What an answer of ``model`` cost, from its ``usageMetadata``: prompt tokens at the
    input rate, image tokens at the image rate, the rest of the output (text, thinking)
    at the text rate. None when the usage does not say all of that."""
    family = _gemini_family(model)
    if family is None or not isinstance(usage, Mapping):
        return None
    prompt = _count(usage.get("promptTokenCount", 0))
    output = _count(usage.get("candidatesTokenCount", 0))
    thinking = _count(usage.get("thoughtsTokenCount", 0))
    details = usage.get("candidatesTokensDetails", [])
    if prompt is None or output is None or thinking is None or not isinstance(details, list):
        return None
    image = 0
    for item in details:
        tokens = _count(item.get("tokenCount", 0)) if isinstance(item, Mapping) else None
        if tokens is None:
            return None
        if item.get("modality") == "IMAGE":
            image += tokens
    input_rate, text_rate, image_rate = _GEMINI_TOKENS[family]
    text = max(0, output - image) + thinking
    return prompt * input_rate + text * text_rate + image * image_rate
