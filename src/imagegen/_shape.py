"""The size of the image asked for: sides, an aspect ratio, a resolution tier.

A request names its size in pixels (``width``/``height``), or as a shape
(``aspect_ratio="16:9"``) and a tier (``resolution="2K"``). A shape and a tier
become one exact size here, so everything downstream (vendors, warnings, the
record) sees pixels, and vendors that take a ratio or a tier natively read them
back from the request.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Final

from ._errors import InvalidRequest

__all__ = [
    "ASPECT_AREA",
    "MAX_SIDE",
    "MIN_SIDE",
    "RESOLUTIONS",
    "SIDE_STEP",
    "check_aspect_ratio",
    "check_resolution",
    "nearest_ratio",
    "nearest_tier",
    "parse_aspect_ratio",
    "size_for",
]

MIN_SIDE, MAX_SIDE, SIDE_STEP = 64, 4096, 8
#: A size drawn from an aspect ratio has exactly that ratio, sides that are multiples
#: of 8, and about this many pixels (1 megapixel): 16:9 is 1408x792, 4:3 is 1184x888.
ASPECT_AREA = 1024 * 1024
MAX_ASPECT = 4.0  # 4:1 to 1:4
MAX_ASPECT_TERM = 100  # "W:H" with W and H at most this (once reduced)
#: Resolution tiers by the side of their square: a tier is about that many pixels
#: squared, in whatever shape (the names vendors use: Gemini's ``imageSize``, fal's
#: ``resolution``). No side goes past ``MAX_SIDE``, so a 4K that is not square has a
#: 4096-pixel long side rather than 16 megapixels.
RESOLUTIONS: Final = {"1K": 1024, "2K": 2048, "4K": 4096}


def parse_aspect_ratio(value: object) -> tuple[int, int] | None:
    """``"W:H"`` as two positive integers, or None when it is not of that form."""
    if not isinstance(value, str):
        return None
    left, sep, right = value.strip().partition(":")
    if not sep or not left.isdigit() or not right.isdigit() or not left.isascii():
        return None
    w, h = int(left), int(right)
    return (w, h) if w > 0 and h > 0 and right.isascii() else None


def _reduced(ratio: tuple[int, int]) -> tuple[int, int]:
    common = math.gcd(*ratio)
    return ratio[0] // common, ratio[1] // common


def size_for(ratio: tuple[int, int] | None, resolution: str | None) -> tuple[int, int]:
    """The size closest to the tier's area (a megapixel without one) with exactly the
    shape ``ratio`` asks for (square without one), in sides that are multiples of
    ``SIDE_STEP`` (a reduced ratio's terms times 8, times a whole scale), the long
    side at most ``MAX_SIDE``."""
    w, h = _reduced(ratio or (1, 1))
    side = RESOLUTIONS[resolution] if resolution is not None else math.isqrt(ASPECT_AREA)
    unit_w, unit_h = w * SIDE_STEP, h * SIDE_STEP
    scale = round(math.sqrt(side * side / (unit_w * unit_h)))
    scale = max(1, min(scale, MAX_SIDE // max(unit_w, unit_h)))
    return unit_w * scale, unit_h * scale


def check_aspect_ratio(value: object, field: str = "aspect_ratio") -> None:
    """Refuse what is not a ``"W:H"`` from 1:4 to 4:1 with small terms.

    Raises:
        InvalidRequest: Naming ``field`` and the rule broken.
    """
    ratio = parse_aspect_ratio(value)
    if ratio is None:
        raise InvalidRequest(
            f'{field} must be "W:H" with whole numbers, such as "16:9" (got {value!r})',
            field=field,
        )
    if max(_reduced(ratio)) > MAX_ASPECT_TERM:
        raise InvalidRequest(
            f"{field} must be W:H with W and H at most {MAX_ASPECT_TERM} once reduced "
            f"(got {value!r})",
            field=field,
        )
    if not 1 / MAX_ASPECT <= ratio[0] / ratio[1] <= MAX_ASPECT:
        raise InvalidRequest(
            f"{field} must be between 1:{MAX_ASPECT:g} and {MAX_ASPECT:g}:1 (got {value!r})",
            field=field,
        )


def resolution_name(value: object) -> object:
    """``"2k"`` read as ``"2K"``; anything else as it is (the check names it)."""
    if isinstance(value, str):
        upper = value.strip().upper()
        return upper if upper in RESOLUTIONS else value
    return value


def check_resolution(value: object, field: str = "resolution") -> None:
    """Refuse what is not one of the tiers.

    Raises:
        InvalidRequest: Naming ``field`` and the tiers there are.
    """
    if value not in RESOLUTIONS:
        raise InvalidRequest(
            f"{field} must be one of {', '.join(RESOLUTIONS)}, or None (got {value!r})",
            field=field,
        )


def nearest_ratio(width: int, height: int, choices: Sequence[str]) -> str:
    """The ``"W:H"`` of ``choices`` (a vendor's list) nearest to ``width`` x ``height``.

    Nearest means the smallest ``|log(width / height) - log(W / H)|``, so 2:1 and 1:2
    are equally far from 1:1; on a tie the earlier choice wins.
    """
    wanted = math.log(width / height)

    def distance(label: str) -> float:
        w, _, h = label.partition(":")
        return abs(wanted - math.log(int(w) / int(h)))

    return min(choices, key=distance)


def nearest_tier(width: int, height: int, choices: Sequence[str]) -> str:
    """The resolution tier of ``choices`` (``"1K"``...) nearest to ``width`` x ``height``
    in pixel count, measured as a ratio (2x too many is as far as 2x too few); on a
    tie the earlier choice wins."""
    area = width * height

    def distance(tier: str) -> float:
        return abs(math.log(area / RESOLUTIONS[tier] ** 2))

    return min(choices, key=distance)
