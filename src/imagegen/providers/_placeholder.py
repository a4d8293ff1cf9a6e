"""The offline provider: a landscape drawn from the prompt's hash.

A sky gradient, a sun and two ranges of hills, colours and shapes derived from
``sha256(prompt, seed)``: the same request always gives the same bytes. It is
also the built-in default image.

Speed comes from never touching pixels one by one in Python. The image is an
8-bit palette PNG whose index is ``sky_row + far_hill_mask + near_hill_mask``:
the sky part is constant along a row, and each hill mask only gains columns as
rows go down, so a row is one big-integer addition of two byte strings (the
parts never carry: sky < 64, masks are 0/64/128/192).
"""

from __future__ import annotations

import bisect
import colorsys
import hashlib
import math
from collections.abc import Iterator, Mapping

from .._image import encode_png
from .._models import ImageRequest, RequestWarning
from ._base import Provider, ProviderContext, ProviderImage

_WHO = "the offline placeholder"  # how its warnings name it

__all__ = ["Placeholder", "render_placeholder"]

_SKY_STEPS = 63  # indices 0..62 are sky, 63 is the sun
_SUN = 63
_FAR, _NEAR = 64, 128


def _rgb(hue: float, light: float, sat: float) -> bytes:
    r, g, b = colorsys.hls_to_rgb(hue % 1.0, light, sat)
    return bytes((round(r * 255), round(g * 255), round(b * 255)))


def _ramp(
    hue: tuple[float, float], light: tuple[float, float], sat: float, steps: int = 64
) -> bytes:
    out = bytearray()
    for i in range(steps):
        t = i / (steps - 1)
        out += _rgb(hue[0] + (hue[1] - hue[0]) * t, light[0] + (light[1] - light[0]) * t, sat)
    return bytes(out)


def _palette(digest: bytes, *, muted: bool) -> bytes:
    hue = digest[0] / 256
    sat = 0.12 if muted else 0.35 + digest[1] / 255 * 0.4
    sky = _ramp((hue, hue + 0.08), (0.52, 0.82), sat)[: _SKY_STEPS * 3]
    sun = _rgb(hue + 0.12, 0.9, min(1.0, sat + 0.3))
    far = _ramp((hue + 0.45, hue + 0.5), (0.48, 0.36), sat * 0.7)
    near = _ramp((hue + 0.42, hue + 0.47), (0.3, 0.16), sat * 0.8)
    # 128..191 (near only) and 192..255 (near in front of far) look the same.
    return sky + sun + far + near + near


def _ridge(digest: bytes, offset: int, width: int, height: int, base: float) -> list[int]:
    f1 = 1 + digest[offset] % 3
    f2 = 3 + digest[offset + 1] % 5
    p1, p2 = digest[offset + 2] / 255, digest[offset + 3] / 255
    a1 = 0.05 + digest[offset + 4] / 255 * 0.06
    a2 = 0.015 + digest[offset + 5] / 255 * 0.03
    tau = 2 * math.pi
    return [
        round(
            height
            * (
                base
                + a1 * math.sin(tau * (x / width * f1 + p1))
                + a2 * math.sin(tau * (x / width * f2 + p2))
            )
        )
        for x in range(width)
    ]


def _rows(digest: bytes, width: int, height: int) -> Iterator[bytes]:
    far = _ridge(digest, 4, width, height, 0.58)
    near = _ridge(digest, 10, width, height, 0.74)
    # Columns enter a hill's mask, for good, at the row where its ridge is.
    entries = sorted(
        [(far[x], x, _FAR) for x in range(width)] + [(near[x], x, _NEAR) for x in range(width)]
    )
    keys = [e[0] for e in entries]
    mask = bytearray(width)
    done = 0
    radius = max(2, round(min(width, height) * (0.07 + digest[16] / 255 * 0.05)))
    cx = round(width * (0.2 + digest[17] / 255 * 0.6))
    cy = round(height * (0.22 + digest[18] / 255 * 0.18))
    for y in range(height):
        upto = bisect.bisect_right(keys, y)
        for _, x, add in entries[done:upto]:
            mask[x] += add
        done = upto
        row = bytearray((y * _SKY_STEPS // height,)) * width
        dy = y - cy
        if abs(dy) < radius:
            half = math.isqrt(radius * radius - dy * dy)
            lo, hi = max(0, cx - half), min(width, cx + half + 1)
            row[lo:hi] = bytes((_SUN,)) * (hi - lo)
        yield (int.from_bytes(row, "big") + int.from_bytes(mask, "big")).to_bytes(width, "big")


def render_placeholder(
    prompt: str, width: int, height: int, seed: int | None = None, *, muted: bool = False
) -> bytes:
    """A deterministic PNG landscape of exactly ``width`` x ``height`` for ``prompt``."""
    digest = hashlib.sha256(f"{prompt}\x00{seed}".encode()).digest()
    return encode_png(
        width, height, _rows(digest, width, height), palette=_palette(digest, muted=muted)
    )


class Placeholder(Provider):
    """Offline and free: a pleasant landscape derived from the prompt, as a PNG.

    Same prompt, size and seed give the same bytes. It ignores ``output_format``
    (the result is always PNG, and ``content_type`` says so).
    """

    name = "placeholder"
    paid = False
    unsupported: Mapping[str, str] = {"negative_prompt": f"{_WHO} ignores it"}

    @staticmethod
    def render(
        prompt: str, width: int, height: int, seed: int | None = None, *, muted: bool = False
    ) -> bytes:
        """The PNG :meth:`generate` returns, as bytes; ``muted`` is the default image's look."""
        return render_placeholder(prompt, width, height, seed, muted=muted)

    async def check(self, ctx: ProviderContext) -> None:
        """Nothing to check: it draws offline, with no key."""

    async def generate(self, request: ImageRequest, ctx: ProviderContext) -> ProviderImage:
        data = render_placeholder(request.prompt, request.width, request.height, request.seed)
        warnings: list[RequestWarning] = []
        if request.output_format != "png":
            warnings.append(RequestWarning("output_format", f"{_WHO} draws PNG only"))
        return ProviderImage(
            data=data,
            content_type="image/png",
            width=request.width,
            height=request.height,
            seed=request.seed,
            warnings=warnings,
        )
