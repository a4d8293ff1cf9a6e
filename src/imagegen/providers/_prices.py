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
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

__all__ = [
    "fal_price",
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
