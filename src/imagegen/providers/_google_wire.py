"""Gemini's wire format: what ``generateContent`` is sent, and what its answer holds.

The request side (each image model's aspect ratios, sizes and input images, the
body) and the answer side (the image among the parts, a refusal, the reason there
is no image, an error's retry delay and reasons) of :class:`~imagegen.providers.Google`.
The body is the same on the Gemini API and on Vertex AI, except that Vertex alone
lets the caller choose the output format.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from typing import Any

import attrs

from .._models import ImageRequest, RequestWarning
from .._shape import nearest_ratio, nearest_tier

__all__ = [
    "DEFAULT_MODEL",
    "ModelRules",
    "body_for",
    "error_reasons",
    "image_part",
    "image_size",
    "refusal",
    "retry_delay",
    "rules_for",
    "why_no_image",
]

DEFAULT_MODEL = "gemini-3.1-flash-image"
#: The ``imageConfig.aspectRatio`` values of Gemini's image models, in tie-breaking order.
ASPECT_RATIOS = ("1:1", "16:9", "9:16", "4:3", "3:4", "3:2", "2:3", "5:4", "4:5", "21:9")
#: gemini-3.1-flash-image takes these as well.
_TALL_AND_WIDE = ("4:1", "1:4", "8:1", "1:8")
_TIERS = ("1K", "2K", "4K")
#: The four harm categories ``safetySettings`` adjusts.
_HARMS = (
    "HARM_CATEGORY_HARASSMENT",
    "HARM_CATEGORY_HATE_SPEECH",
    "HARM_CATEGORY_SEXUALLY_EXPLICIT",
    "HARM_CATEGORY_DANGEROUS_CONTENT",
)
_THRESHOLDS = {"strict": "BLOCK_LOW_AND_ABOVE", "relaxed": "BLOCK_NONE"}
#: ``finishReason``s that mean the model refused the content (not that it failed).
_REFUSED = frozenset(
    {
        "SAFETY",
        "IMAGE_SAFETY",
        "PROHIBITED_CONTENT",
        "IMAGE_PROHIBITED_CONTENT",
        "BLOCKLIST",
        "SPII",
        "RECITATION",
        "IMAGE_RECITATION",
    }
)
_MAX_SEED = 2**31 - 1  # generationConfig.seed is an int32
_DELAY = re.compile(r"(\d+(?:\.\d+)?)s")


@attrs.frozen
class ModelRules:
    """What one Gemini image model takes.

    Args:
        ratios: Its ``aspectRatio`` values.
        tiers: Its ``imageSize`` values; empty: it makes one size and takes none.
        input_images: How many input images a call takes.
    """

    ratios: tuple[str, ...] = ASPECT_RATIOS
    tiers: tuple[str, ...] = ()
    input_images: int = 3


#: Known models by id prefix (``-preview`` ids follow their model's rules).
_MODELS: Mapping[str, ModelRules] = {
    "gemini-2.5-flash-image": ModelRules(),
    "gemini-3-pro-image": ModelRules(tiers=_TIERS, input_images=14),
    "gemini-3.1-flash-image": ModelRules(ASPECT_RATIOS + _TALL_AND_WIDE, _TIERS, 14),
}


def rules_for(model: str) -> ModelRules:
    """The rules of ``model``; a model not listed gets those every image model keeps
    to (the ten common ratios, no ``imageSize``, three input images)."""
    return next((r for name, r in _MODELS.items() if model.startswith(name)), ModelRules())


def image_size(request: ImageRequest, rules: ModelRules) -> str | None:
    """The ``imageSize`` tier nearest the request's pixel count; None for a model that
    takes none."""
    return nearest_tier(request.width, request.height, rules.tiers) if rules.tiers else None


def body_for(
    request: ImageRequest, rules: ModelRules, *, vertex: bool
) -> tuple[dict[str, Any], tuple[RequestWarning, ...]]:
    """The JSON body of ``generateContent`` for ``request``, and what it could not honour.

    The size becomes the nearest aspect ratio and, for models that take one, the
    nearest ``imageSize``; input images travel inline. The seed is sent (Gemini does
    not promise that it reproduces an image). On Vertex AI, PNG or JPEG is asked for.
    """
    warnings: list[RequestWarning] = []
    parts: list[dict[str, Any]] = [{"text": request.prompt}]
    for image in request.images:
        assert image.data is not None  # noqa: S101 - fetched before any provider is called
        data = base64.b64encode(image.data).decode("ascii")
        parts.append({"inlineData": {"mimeType": image.content_type, "data": data}})
    ratio = nearest_ratio(request.width, request.height, rules.ratios)
    image_config: dict[str, Any] = {"aspectRatio": ratio}
    tier = image_size(request, rules)
    if tier is not None:
        image_config["imageSize"] = tier
    if vertex and request.output_format in ("png", "jpeg"):
        image_config["imageOutputOptions"] = {"mimeType": request.content_type}
    config: dict[str, Any] = {"responseModalities": ["IMAGE"], "imageConfig": image_config}
    if request.seed is not None:
        config["seed"] = request.seed % (_MAX_SEED + 1)
        if request.seed > _MAX_SEED:
            warnings.append(
                RequestWarning(
                    "seed", f"Gemini takes seeds up to {_MAX_SEED}; sent it modulo 2**31"
                )
            )
    body: dict[str, Any] = {
        "contents": [{"role": "user", "parts": parts}],
        "generationConfig": config,
    }
    if request.safety is not None:
        threshold = _THRESHOLDS[request.safety]
        body["safetySettings"] = [{"category": c, "threshold": threshold} for c in _HARMS]
    return body, tuple(warnings)


def _candidates(answer: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    candidates = answer.get("candidates")
    if not isinstance(candidates, list):
        return []
    return [c for c in candidates if isinstance(c, Mapping)]


def _parts(answer: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    parts: list[Mapping[str, Any]] = []
    for candidate in _candidates(answer):
        content = candidate.get("content")
        found = content.get("parts") if isinstance(content, Mapping) else None
        parts += [p for p in found or () if isinstance(p, Mapping)]
    return parts


def image_part(answer: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The answer's image (``{"mimeType", "data"}``): the last one that is not a
    draft (Gemini 3 models think in ``thought`` images first), else the last one."""
    images = [p for p in _parts(answer) if isinstance(p.get("inlineData"), Mapping)]
    final = [p for p in images if p.get("thought") is not True] or images
    if not final:
        return None
    inline: Mapping[str, Any] = final[-1]["inlineData"]
    return inline


def refusal(answer: Mapping[str, Any]) -> str | None:
    """Why the prompt or the image was refused (``blockReason`` or ``finishReason``);
    None when it was not."""
    feedback = answer.get("promptFeedback")
    if isinstance(feedback, Mapping) and feedback.get("blockReason"):
        return str(feedback["blockReason"])
    for candidate in _candidates(answer):
        if candidate.get("finishReason") in _REFUSED:
            return str(candidate["finishReason"])
    if isinstance(feedback, Mapping) and not _candidates(answer):
        return "BLOCKED"  # prompt feedback without a reason, and nothing made
    return None


def why_no_image(answer: Mapping[str, Any]) -> str:
    """What an answer without an image says instead: its finish reason and message,
    or the model's words."""
    said: list[str] = []
    for candidate in _candidates(answer):
        if candidate.get("finishReason"):
            said.append(f"finishReason {candidate['finishReason']}")
        if candidate.get("finishMessage"):
            said.append(str(candidate["finishMessage"]))
    text = " ".join(str(p["text"]) for p in _parts(answer) if isinstance(p.get("text"), str))
    if text.strip():
        said.append(f"the model said: {text.strip()[:200]}")
    return "; ".join(said) or "no candidates"


def _details(body: Any) -> list[Mapping[str, Any]]:
    error = body.get("error") if isinstance(body, Mapping) else None
    details = error.get("details") if isinstance(error, Mapping) else None
    return [d for d in details or () if isinstance(d, Mapping)]


def error_reasons(body: Any) -> set[str]:
    """The ``ErrorInfo`` reasons and quota ids of an error body (``API_KEY_INVALID``,
    ``GenerateRequestsPerDayPerProjectPerModel``...)."""
    reasons = {str(d["reason"]) for d in _details(body) if d.get("reason")}
    for detail in _details(body):
        for violation in detail.get("violations") or ():
            if isinstance(violation, Mapping) and violation.get("quotaId"):
                reasons.add(str(violation["quotaId"]))
    return reasons


def retry_delay(body: Any) -> float | None:
    """Seconds from a ``RetryInfo`` detail's ``retryDelay`` (``"26s"``); None without one."""
    for detail in _details(body):
        match = _DELAY.fullmatch(str(detail.get("retryDelay", "")))
        if match:
            return float(match[1])
    return None
