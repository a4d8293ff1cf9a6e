"""What a result says about the request fields it was not made exactly as asked for.

A vendor states what it dropped or rounded (``ProviderImage.warnings``, and the
fields it never takes: ``Provider.unsupported``); the image itself tells the rest,
whatever the vendor claims: its real pixel size against the size (or the shape)
asked for, its format against ``output_format`` (imagegen converts no image). One
warning per field, the vendor's own first.
"""

from __future__ import annotations

import attrs

from ._models import RequestWarning
from ._output import Output
from ._request import ImageRequest, parse_aspect_ratio

__all__ = ["RATIO_TOLERANCE", "request_warnings"]

#: A shape within 1 % of the ratio asked for counts as that ratio (sides are whole
#: pixels, and vendors round them to their own steps).
RATIO_TOLERANCE = 0.01


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
    if ratio is not None:
        asked = ratio[0] / ratio[1]
        if abs(width / height / asked - 1) > RATIO_TOLERANCE:
            found.append(
                ("aspect_ratio", f"asked for {request.aspect_ratio}, the image is {width}x{height}")
            )
        return found
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
    return tuple(warnings)
