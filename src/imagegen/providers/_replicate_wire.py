"""Replicate's wire format: what a create sends, and what a prediction ends as.

The request side (model and version ids, the nearest aspect ratio, output formats)
and the answer side (a prediction's status, its image or its error, the file host
that wants the token) of :class:`~imagegen.providers.Replicate`.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx

from .._errors import ContentRejected, InvalidConfig, ProviderError, ProviderUnavailable
from .._shape import nearest_ratio
from ._base import ProviderImage
from ._payloads import EditFields, decode_data_uri, json_or_none, mentions
from ._polling import DONE, RUNNING, Progress

if TYPE_CHECKING:
    from ._http import HTTPProvider

__all__ = [
    "ASPECT_RATIOS",
    "EDIT_INPUTS",
    "MODEL",
    "OUTPUT_FORMATS",
    "aspect_ratio",
    "ended_image",
    "is_delivery_url",
    "parse_version",
    "progress",
    "status_of",
]

#: The ``aspect_ratio`` values flux-schnell accepts, in tie-breaking order.
ASPECT_RATIOS: tuple[str, ...] = (
    "1:1", "16:9", "21:9", "3:2", "2:3", "4:5", "5:4", "3:4", "4:3", "9:16", "9:21",
)  # fmt: skip
#: An official model's id, ``owner/name``.
MODEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")
#: The request's output format as Replicate's models name it.
OUTPUT_FORMATS = {"png": "png", "jpeg": "jpg", "webp": "webp"}
#: Official models that take an input image: its input field, and the mask's.
EDIT_INPUTS: dict[str, EditFields] = {
    "black-forest-labs/flux-dev": ("image", None),
    "black-forest-labs/flux-kontext-pro": ("input_image", None),
    "black-forest-labs/flux-fill-pro": ("image", "mask"),
}

_VERSION = re.compile(r"^[0-9a-fA-F]{64}$")
_RUNNING = ("starting", "processing")
_FINAL = ("succeeded", "failed", "canceled", "aborted")
_DELIVERY_HOST = "replicate.delivery"
_SAFETY = ("nsfw", "safety", "content policy", "content_policy")


def aspect_ratio(width: int, height: int) -> str:
    """The flux-schnell ``aspect_ratio`` nearest to ``width`` x ``height``
    (:func:`~imagegen._shape.nearest_ratio` over :data:`ASPECT_RATIOS`).

    >>> aspect_ratio(1024, 1024)
    '1:1'
    >>> aspect_ratio(1920, 1080)
    '16:9'
    >>> aspect_ratio(800, 1000)
    '4:5'
    """
    return nearest_ratio(width, height, ASPECT_RATIOS)


def parse_version(model: str, version: object) -> tuple[str, str]:
    """``(model, version id)`` from a bare id or ``owner/name:id``.

    Raises:
        InvalidConfig: Neither form (``field`` is ``"version"``).
    """
    if not isinstance(version, str):
        raise InvalidConfig("replicate: version must be a string", field="version")
    owner_name, colon, version_id = version.rpartition(":")
    if (colon and not MODEL.match(owner_name)) or not _VERSION.match(version_id):
        raise InvalidConfig(
            f"replicate: version must be a 64-hex id or 'owner/name:id' (got {version!r})",
            field="version",
        )
    return (owner_name if colon else model), version_id.lower()


def is_delivery_url(url: str) -> bool:
    """Whether ``url`` is on Replicate's file host (``replicate.delivery`` or a subdomain)."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    return parts.scheme == "https" and (
        host == _DELIVERY_HOST or host.endswith("." + _DELIVERY_HOST)
    )


def progress(prediction: dict[str, Any]) -> Progress:
    """What a prediction's status says; a status Replicate may add later counts as running."""
    status = prediction.get("status")
    if status in _FINAL:
        return DONE
    return RUNNING if status in _RUNNING else Progress(note=f"reports status {status!r}")


def ended_image(
    provider: HTTPProvider, prediction: dict[str, Any], seed: int | None
) -> ProviderImage:
    """The image of a prediction that has ended, or the error it ended with.

    Raises:
        ContentRejected: It failed on a safety check.
        ProviderError: It failed, or was canceled or aborted.
        ProviderUnavailable: It succeeded, but its output is gone.
    """
    status = prediction.get("status")
    prediction_id = prediction.get("id")
    label = f"replicate prediction {prediction_id}"
    if status == "failed":
        error = prediction.get("error")
        text = str(error) if error else "no error given"
        message = provider.redact(f"{label} failed: {text}")
        if mentions(text, _SAFETY):
            # Replicate's error text is the model's own reason ("NSFW content detected...").
            raise ContentRejected(message, provider=provider.name, reason=provider.redact(text))
        raise ProviderError(message, provider=provider.name, retryable=False)
    if status != "succeeded":  # canceled, aborted
        raise ProviderError(f"{label} was {status}", provider=provider.name, retryable=False)
    if prediction.get("data_removed") is True:
        raise ProviderUnavailable(
            f"{label} succeeded, but its output was removed",
            provider=provider.name,
            retryable=False,
        )
    output = prediction.get("output")
    if isinstance(output, list):
        output = output[0] if output else None
    if output is None:
        raise ProviderUnavailable(
            f"{label} succeeded without an output", provider=provider.name, retryable=False
        )
    if not isinstance(output, str) or not output:
        raise ProviderError(
            f"{label} output is {type(output).__name__}, not an image URL",
            provider=provider.name,
            retryable=False,
        )
    handle = prediction_id if isinstance(prediction_id, str) else None
    if output.startswith("data:"):
        data = decode_data_uri(output, provider=provider.name)
        return ProviderImage(data=data, seed=seed, raw=prediction, handle=handle)
    return ProviderImage(
        url=output,
        # Replicate's file host wants the token; no other host may see it.
        headers=provider.auth_headers() if is_delivery_url(output) else None,
        seed=seed,
        raw=prediction,
        handle=handle,
    )


def status_of(response: httpx.Response) -> object:
    """The ``status`` in an answer, for log lines; its HTTP status when there is none."""
    data = json_or_none(response.content)
    return data.get("status") if isinstance(data, dict) else response.status_code
