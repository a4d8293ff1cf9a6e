"""Property tests of the image header readers, against the formats' own rules.

The oracles are the sizes written into files built from the specifications
(tests/image_builders.py) and what Pillow decodes; the readers must agree with them,
refuse every truncated file whose format marks its end, and never raise anything but
NotAnImage, whatever the bytes.
"""

from __future__ import annotations

import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

import image_builders as b
from imagegen import DownloadPolicy, ProviderError
from imagegen._download import inspect_image
from imagegen._image import NotAnImage, read_header

PROPERTY = settings(max_examples=150, deadline=None)
MAGICS = [b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"RIFF\x00\x00\x00\x00WEBP", b"GIF89a"]
MAGICS += [b"\x00\x00\x00\x18ftypavif"]


def pillow_bytes(fmt: str, size: tuple[int, int]) -> bytes:
    """A ``size`` image saved by Pillow in ``fmt``."""
    buffer = io.BytesIO()
    Image.new("RGB", size, (200, 80, 40)).save(buffer, fmt)
    return buffer.getvalue()


# Formats whose files say where they end (IEND, EOI, the RIFF size, box sizes).
ENDED = {fmt: pillow_bytes(fmt, (23, 17)) for fmt in ("PNG", "JPEG", "WEBP", "AVIF")}
ALL = {**ENDED, "GIF": pillow_bytes("GIF", (23, 17))}


def outcome(data: bytes) -> tuple[int, int] | None:
    """read_header's size, or None when it refuses (any other exception escapes)."""
    try:
        header = read_header(data)
    except NotAnImage:
        return None
    return header.width, header.height


class TestAnyBytes:
    @PROPERTY
    @given(st.binary(max_size=300))
    def test_anything_is_refused_or_sized(self, data: bytes) -> None:
        """Arbitrary bytes raise NotAnImage or give a positive size; nothing else escapes."""
        size = outcome(data)
        assert size is None or min(size) > 0

    @PROPERTY
    @given(st.sampled_from(MAGICS), st.binary(max_size=300))
    def test_magic_and_junk(self, magic: bytes, junk: bytes) -> None:
        """Magic bytes followed by anything: refused or sized, never a crash."""
        size = outcome(magic + junk)
        assert size is None or min(size) > 0

    @PROPERTY
    @given(st.sampled_from(sorted(ALL)), st.data())
    def test_one_byte_changed(self, fmt: str, data: st.DataObject) -> None:
        """A real image with one byte changed is refused or sized, never a crash."""
        original = ALL[fmt]
        index = data.draw(st.integers(0, len(original) - 1))
        value = data.draw(st.integers(0, 255))
        outcome(original[:index] + bytes([value]) + original[index + 1 :])

    @PROPERTY
    @given(st.integers(12, 32), st.integers(0, 255))
    def test_png_header_changes_fail_the_crc(self, index: int, value: int) -> None:
        """Any change to a PNG's IHDR chunk or its CRC is refused."""
        original = ALL["PNG"]
        changed = original[:index] + bytes([value]) + original[index + 1 :]
        if changed != original:
            assert outcome(changed) is None


class TestTruncation:
    @PROPERTY
    @given(st.sampled_from(sorted(ENDED)), st.data())
    def test_every_strict_prefix_is_refused(self, fmt: str, data: st.DataObject) -> None:
        """A PNG, JPEG, WebP or AVIF cut anywhere short of its end is refused."""
        original = ENDED[fmt]
        cut = data.draw(st.integers(0, len(original) - 1))
        assert outcome(original[:cut]) is None

    @PROPERTY
    @given(st.data())
    def test_a_cut_gif_never_reports_another_size(self, data: st.DataObject) -> None:
        """A GIF cut short is refused or reports its true size (GIF marks no end)."""
        original = ALL["GIF"]
        cut = data.draw(st.integers(0, len(original) - 1))
        assert outcome(original[:cut]) in (None, (23, 17))


SIDE = st.integers(1, 2**31 - 1)
SIDE16 = st.integers(1, 2**16 - 1)
SIDE14 = st.integers(1, 2**14 - 1)
SIDE24 = st.integers(1, 2**24)


class TestDeclaredSizes:
    @PROPERTY
    @given(SIDE, SIDE)
    def test_png(self, width: int, height: int) -> None:
        """A PNG's size is its IHDR's, up to 2**31-1 each way."""
        assert outcome(b.png(width, height)) == (width, height)

    @PROPERTY
    @given(SIDE16, SIDE16, st.sampled_from([0xC0, 0xC1, 0xC2, 0xC3, 0xC9, 0xCA, 0xCB]))
    def test_jpeg(self, width: int, height: int, sof: int) -> None:
        """A JPEG's size is its first frame header's, whatever the coding process."""
        assert outcome(b.jpeg(width, height, sof=sof)) == (width, height)

    @PROPERTY
    @given(SIDE14, SIDE14, st.sampled_from(["lossy", "lossless"]))
    def test_webp_simple(self, width: int, height: int, kind: str) -> None:
        """A simple WebP's size is its VP8 or VP8L header's (14 bits each way)."""
        chunk = b.vp8(width, height) if kind == "lossy" else b.vp8l(width, height)
        assert outcome(b.riff(chunk)) == (width, height)

    @PROPERTY
    @given(SIDE24, SIDE24)
    def test_webp_extended(self, width: int, height: int) -> None:
        """An extended WebP's size is its VP8X canvas (24 bits each way)."""
        assert outcome(b.riff(b.vp8x(width, height), b.vp8l(1, 1))) == (width, height)

    @PROPERTY
    @given(SIDE16, SIDE16)
    def test_gif(self, width: int, height: int) -> None:
        """A GIF's size is its logical screen's."""
        assert outcome(b.gif(width, height)) == (width, height)

    @PROPERTY
    @given(st.lists(st.tuples(SIDE, SIDE), min_size=1, max_size=4))
    def test_avif(self, sizes: list[tuple[int, int]]) -> None:
        """An AVIF's size is its largest declared image size."""
        assert outcome(b.avif(*sizes)) == max(sizes, key=lambda s: s[0] * s[1])

    @PROPERTY
    @given(SIDE16, SIDE16, st.integers(1, 10**9))
    def test_the_pixel_cap(self, width: int, height: int, cap: int) -> None:
        """An image passes the pixel cap exactly when width * height <= max_pixels."""
        policy = DownloadPolicy(max_pixels=cap)
        data = b.jpeg(width, height)
        if width * height <= cap:
            assert inspect_image(data, policy, "prov").width == width
        else:
            with pytest.raises(ProviderError, match=f"{width}x{height} pixels"):
                inspect_image(data, policy, "prov")
