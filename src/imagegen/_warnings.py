"""What a result says about the request fields it was not made exactly as asked for.

A vendor states what it dropped or rounded (``ProviderImage.warnings``, and the
fields it never takes: ``Provider.unsupported``); the image itself tells the rest,
whatever the vendor claims: its real pixel size against the size (or the shape
and the resolution tier) asked for, its format against ``output_format``
(imagegen converts no image). One warning per field, the vendor's own first.
"""

from __future__ import annotations

import attrs

from ._models import RequestWarning
from ._output import Output
from ._request import ImageRequest
from ._shape import parse_aspect_ratio

__all__ = ["AREA_TOLERANCE", "RATIO_TOLERANCE", "request_warnings"]

#: A shape within 1 % of the ratio asked for counts as that ratio (sides are whole
#: pixels, and vendors round them to their own steps).
RATIO_TOLERANCE = 0.01
#: An image within this factor of the pixels a tier asks for is of that tier: the
#: tiers are 4x apart, and vendors size a tier their own way (Gemini's 1K at 16:9 is
#: 1376x768, ours 1408x792).
AREA_TOLERANCE = 1.5


def _from_image(request: ImageRequest, output: Output) -> list[tuple[str, str]]:
    """(field, message) for what the image itself shows was not as asked."""
    found: list[tuple[str, str]] = []
    if output.content_type != request.content_type:
        made = f"asked for {request.output_format}, the image is {output.content_type}"
        found.append(("output_format", f"{made} (imagegen does not convert images)"))
    width, height = output.width, output.height
    if width is None or height is None:
        return found
    ratio = parse_aspect_ratio(request.aspect_ratio)
    if ratio is None and request.resolution is None:
        return found + _exact_size(request, width, height)
    made = f"the image is {width}x{height}"
    shape = ratio or (1, 1)  # a tier alone asks for a square
    if abs(width / height / (shape[0] / shape[1]) - 1) > RATIO_TOLERANCE:
        field = "aspect_ratio" if ratio is not None else "resolution"
        found.append((field, f"asked for {getattr(request, field)} ({_size(request)}), {made}"))
    area = width * height / (request.width * request.height)
    if request.resolution is not None and not 1 / AREA_TOLERANCE <= area <= AREA_TOLERANCE:
        found.append(("resolution", f"asked for {request.resolution} ({_size(request)}), {made}"))
    return found


def _size(request: ImageRequest) -> str:
    return f"{request.width}x{request.height}"


def _exact_size(request: ImageRequest, width: int, height: int) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    if width != request.width:
        found.append(("width", f"asked for {request.width}, the image is {width} pixels wide"))
    if height != request.height:
        found.append(("height", f"asked for {request.height}, the image is {height} pixels high"))
    return found


def request_warnings(request: ImageRequest, output: Output) -> tuple[RequestWarning, ...]:
    """The provider's warnings (with its name) and the image's own, one per field."""
    provider = output.provider
    warnings = [
        w if w.provider is not None else attrs.evolve(w, provider=provider) for w in output.warnings
    ]
    named = {w.field for w in warnings}
    for field, why in output.unsupported.items():
        if field not in named and getattr(request, field, None) is not None:
            warnings.append(RequestWarning(field, why, provider))
            named.add(field)
    for field, message in _from_image(request, output):
        if field not in named:
            warnings.append(RequestWarning(field, message, provider))
            named.add(field)
    return tuple(warnings)
