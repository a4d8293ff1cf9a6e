"""read_header: real files pass with their true size; each broken rule is refused by name."""

from __future__ import annotations

import io
import os
import struct
import time
import zlib

import pytest
from PIL import Image

import image_builders as b
from imagegen._default_image import DefaultRenderer
from imagegen._image import _MAX_STEPS, ImageHeader, NotAnImage, encode_png, read_header
from imagegen.providers._placeholder import render_placeholder
from imagegen.testing import tiny_png


def pillow_bytes(
    fmt: str, size: tuple[int, int], mode: str = "RGB", frames: int = 1, **options: object
) -> bytes:
    """An image (``frames`` frames) of ``size`` saved by Pillow in ``fmt``."""
    images = [Image.new("RGB", size, (40 * i,) * 3).convert(mode) for i in range(frames)]
    buffer = io.BytesIO()
    extra = {"save_all": True, "append_images": images[1:]} if frames > 1 else {}
    images[0].save(buffer, fmt, **extra, **options)
    return buffer.getvalue()


class TestRealFiles:
    @pytest.mark.parametrize(
        ("fmt", "mode", "frames", "options"),
        [
            ("PNG", "1", 1, {}),
            ("PNG", "P", 1, {}),
            ("PNG", "LA", 1, {}),
            ("PNG", "I;16", 1, {}),
            ("PNG", "RGBA", 1, {}),
            ("PNG", "RGB", 1, {"interlace": 1}),
            ("PNG", "RGB", 3, {}),
            ("JPEG", "CMYK", 1, {}),
            ("JPEG", "RGB", 1, {"progressive": True, "exif": Image.Exif()}),
            ("WEBP", "RGBA", 1, {"lossless": True}),
            ("WEBP", "RGB", 3, {}),
            ("GIF", "1", 1, {}),
            ("GIF", "RGB", 3, {"comment": b"x" * 600}),
            ("AVIF", "RGB", 1, {}),
            ("AVIF", "RGBA", 1, {}),
            ("AVIF", "RGB", 3, {}),
        ],
        ids=lambda value: str(value).replace(" ", ""),
    )
    def test_pillow_variants(
        self, fmt: str, mode: str, frames: int, options: dict[str, object]
    ) -> None:
        """Modes, interlacing, progressive scans, EXIF, alpha and animations all pass."""
        data = pillow_bytes(fmt, (37, 21), mode, frames, **options)
        assert (read_header(data).width, read_header(data).height) == (37, 21)

    @pytest.mark.anyio
    async def test_the_project_s_own_images(self) -> None:
        """tiny_png, Placeholder drawings, encode_png palettes and default images pass."""
        default = await DefaultRenderer().image(320, 200)
        assert read_header(tiny_png()) == ImageHeader(content_type="image/png", width=8, height=8)
        assert read_header(render_placeholder("a fox", 640, 480)).width == 640
        palette = encode_png(2, 1, [b"\x00\x01"], palette=b"\x00" * 6)
        assert (read_header(palette).width, read_header(palette).height) == (2, 1)
        assert (read_header(default).width, read_header(default).height) == (320, 200)

    def test_an_exif_thumbnail_does_not_lend_its_size(self) -> None:
        """A JPEG inside an APP1 segment is skipped: the size is the main frame's."""
        thumbnail = b.jpeg(9999, 9999)
        data = b.jpeg(40, 30, before=b.jpeg_segment(0xE1, b"Exif\x00\x00" + thumbnail))
        assert (read_header(data).width, read_header(data).height) == (40, 30)

    def test_the_largest_avif_image_size_is_reported(self) -> None:
        """Of several AVIF sizes (grid, tiles, alpha), the largest is the image's."""
        data = b.avif((512, 512), (1024, 768), (16, 16))
        assert (read_header(data).width, read_header(data).height) == (1024, 768)

    @pytest.mark.parametrize(
        "data",
        [
            b.jpeg(before=b"\xff\xff\xff"),
            b.jpeg(before=b"\xff\xd0\xff\x01"),
            b.jpeg(sof=0xC2),
            b.jpeg(components=1),
            b.png(before=b.png_chunk(b"tEXt", b"k\x00v")),
            b.png(idat=b""),
            b.gif(before=b.gif_extension(0xF9, b"\x00" * 4) + b.gif_extension(0xFE)),
            b.riff(b.vp8x(), b.webp_chunk(b"ICCP", b"abc"), b.vp8()),
            b.riff(b.vp8x(9, 9), b.webp_chunk(b"ANIM", b"\x00" * 6), b.anmf(2, 4, 7, 5)),
            b.avif(
                meta=b.box(
                    b"meta", b"\x00" * 4 + b.box(b"iprp", b.box(b"ipco", b.ispe(3, 2)), size=0)
                )
            ),
        ],
        ids=[
            "jpeg-fill-bytes",
            "jpeg-standalone-markers",
            "jpeg-progressive-frame",
            "jpeg-grey",
            "png-text-chunk",
            "png-empty-first-idat",
            "gif-extensions",
            "webp-vp8x-still",
            "webp-vp8x-animation",
            "avif-box-to-the-end",
        ],
    )
    def test_what_the_formats_allow(self, data: bytes) -> None:
        """Valid structures the readers must step over."""
        header = read_header(data)
        assert header.width > 0
        assert header.height > 0


BROKEN = [
    ("png-magic-only", b"\x89PNG\r\n\x1a\n", "PNG header is truncated"),
    ("png-ihdr-crc", b.png(ihdr_crc=0), "fails its CRC"),
    ("png-ihdr-not-first", b"\x89PNG\r\n\x1a\n" + b.png_chunk(b"tEXt", b"") + b.IEND, "IHDR"),
    ("png-ihdr-short", b"\x89PNG\r\n\x1a\n" + b.png_chunk(b"IHDR", b"\x00" * 12), "IHDR"),
    ("png-bad-depth", b.png(depth=3), "bit depth"),
    ("png-bad-colour", b.png(color=5), "bit depth"),
    ("png-zero-width", b.png(0, 5), "empty or impossible size (0x5)"),
    ("png-too-tall", b.png(1, 2**31), "empty or impossible size"),
    ("png-no-idat", b.png()[:33] + b.IEND, "no IDAT"),
    ("png-idat-not-zlib", b.png(idat=b"junk junk junk"), "not a zlib stream"),
    ("png-bad-filter", b.png(idat=zlib.compress(b"\x07\x00\x00\x00")), "row filter"),
    ("png-no-iend", b.png(end=b""), "no IEND"),
    ("png-iend-truncated", b.png()[:-1], "no IEND"),
    ("png-chunk-past-end", b.png()[:33] + b"\x00\x01\x00\x00IDAT\x00", "runs past the end"),
    ("png-chunk-type", b.png(before=b.png_chunk(b"t3Xt", b"")), "malformed"),
    ("png-junk-after-magic", b"\x89PNG\r\n\x1a\n" + bytes(range(92)), "runs past the end"),
    ("jpeg-magic-only", b"\xff\xd8\xff", "JPEG header is truncated"),
    ("jpeg-not-a-marker", b"\xff\xd8\xff\xe0\x00\x04\x00\x00\x12", "not start with a marker"),
    ("jpeg-eoi-first", b"\xff\xd8\xff\xd9", "ends or restarts"),
    ("jpeg-soi-again", b"\xff\xd8\xff\xd8", "ends or restarts"),
    ("jpeg-length-1", b"\xff\xd8\xff\xe0\x00\x01", "malformed or runs past"),
    ("jpeg-length-past-end", b"\xff\xd8\xff\xe0\x01\x00\x00", "malformed or runs past"),
    (
        "jpeg-scan-first",
        b.jpeg()[:20] + b.jpeg_segment(0xDA, b"\x01\x01\x00\x00\x3f\x00"),
        "before any frame",
    ),
    (
        "jpeg-frame-length",
        b"\xff\xd8" + b.jpeg_segment(0xC0, b"\x08\x00\x02\x00\x03\x01\x01\x11"),
        "frame header",
    ),
    (
        "jpeg-precision",
        b"\xff\xd8" + b.jpeg_segment(0xC0, b"\x01\x00\x02\x00\x03\x01\x01\x11\x00"),
        "frame header",
    ),
    ("jpeg-zero-height", b.jpeg(3, 0), "empty or impossible size (3x0)"),
    ("jpeg-scan-header", b.jpeg(scan=b"\x05\x01\x00"), "scan header"),
    ("jpeg-no-eoi", b.jpeg(tail=b""), "end-of-image"),
    ("jpeg-only-junk", b"\xff\xd8\xff\xe0" + b"\x00" * 20, "runs past"),
    ("webp-riff-too-big", b.riff(b.vp8(), size=1000), "RIFF size"),
    ("webp-riff-too-small", b.riff(b.vp8(), size=8), "RIFF size"),
    ("webp-chunk-past-riff", b.riff(b.webp_chunk(b"VP8L", b"\x2f", size=99)), "past the end"),
    ("webp-unknown-chunk", b.riff(b.webp_chunk(b"XXXX", b"\x00" * 10)), "no VP8"),
    ("webp-vp8-interframe", b.riff(b.vp8(tag=1 | 1 << 4)), "not a key frame"),
    ("webp-vp8-version", b.riff(b.vp8(tag=7 << 1 | 1 << 4)), "not a key frame"),
    ("webp-vp8-hidden", b.riff(b.vp8(tag=0)), "not a key frame"),
    ("webp-vp8-start-code", b.riff(b.vp8(start=b"\x9d\x01\x2b")), "not a key frame"),
    ("webp-vp8-partition", b.riff(b.vp8(tag=1 << 4 | 99 << 5)), "first partition"),
    ("webp-vp8-zero-size", b.riff(b.vp8(0, 2)), "empty or impossible size"),
    ("webp-vp8l-signature", b.riff(b.vp8l(signature=0x2E)), "VP8L header"),
    ("webp-vp8l-version", b.riff(b.vp8l(version=1)), "VP8L header"),
    ("webp-vp8l-short", b.riff(b.webp_chunk(b"VP8L", b"\x2f\x00")), "VP8L header"),
    ("webp-vp8x-short", b.riff(b.webp_chunk(b"VP8X", b"\x00" * 4) + b"\x00" * 30), "VP8X header"),
    ("webp-vp8x-no-image", b.riff(b.vp8x(), b.webp_chunk(b"EXIF", b"\x00" * 8)), "holds no image"),
    ("webp-vp8x-too-small", b.riff(b.vp8x(2, 2), b.vp8l(3, 2)), "larger than its VP8X canvas"),
    ("webp-anmf-outside", b.riff(b.vp8x(8, 8), b.anmf(4, 0, 5, 5)), "larger than its VP8X"),
    ("webp-anmf-short", b.riff(b.vp8x(), b.webp_chunk(b"ANMF", b"\x00" * 8)), "animation frame"),
    ("webp-vp8x-chunk-past", b.riff(b.vp8x(), b.webp_chunk(b"VP8L", b"", size=50)), "past the end"),
    ("gif-truncated", b"GIF89a\x01", "GIF header is truncated"),
    ("gif-zero-size", b.gif(0, 2, frame=(0, 0, 0, 2)), "empty or impossible size"),
    ("gif-frame-outside", b.gif(frame=(1, 0, 3, 2)), "outside its logical screen"),
    ("gif-code-size", b.gif(code_size=12), "image data is malformed"),
    ("gif-no-data", b.gif(data=b"\x00"), "image data is malformed"),
    ("gif-trailer-first", b"GIF89a" + struct.pack("<HHBBB", 3, 2, 0, 0, 0) + b"\x3b", "trailer"),
    ("gif-unknown-block", b"GIF89a" + struct.pack("<HHBBB", 3, 2, 0, 0, 0) + b"\x99", "unknown"),
    ("gif-junk", b"GIF89a" + b"\x00" * 20, "empty or impossible size"),
    ("avif-no-meta", b.box(b"ftyp", b"avif\x00\x00\x00\x00") + b.box(b"mdat"), "no meta"),
    ("avif-no-mdat", b.avif()[: -len(b.box(b"mdat", b"\x00" * 8))], "no mdat"),
    ("avif-no-iprp", b.avif(meta=b.box(b"meta", b"\x00" * 4)), "no iprp box"),
    ("avif-no-ipco", b.avif(meta=b.box(b"meta", b"\x00" * 4 + b.box(b"iprp"))), "no ipco box"),
    ("avif-no-ispe", b.avif(properties=b.box(b"pixi", b"\x00" * 5)), "declares no image size"),
    ("avif-short-ispe", b.avif(properties=b.box(b"ispe", b"\x00" * 8)), "ispe) box is malformed"),
    ("avif-zero-size", b.avif((0, 10)), "empty or impossible size"),
    ("avif-box-past-end", b.avif()[:-1], "runs past its parent"),
    ("avif-box-too-small", b.avif(mdat=b.box(b"mdat", size=4)), "malformed"),
    ("avif-box-header-cut", b.avif() + b"\x00\x00", "truncated"),
    ("avif-trailing-bytes", b.avif() + b"trailing bytes", "malformed"),
    ("avif-junk", b"\x00\x00\x00\x1cftypavif" + b"\x00" * 20, "truncated"),
]


class TestBroken:
    @pytest.mark.parametrize(
        ("data", "reason"), [(d, r) for _, d, r in BROKEN], ids=[i for i, _, _ in BROKEN]
    )
    def test_refused_with_the_reason(self, data: bytes, reason: str) -> None:
        """Each broken rule raises NotAnImage, and the message says which."""
        with pytest.raises(NotAnImage, match=reason.replace("(", r"\(").replace(")", r"\)")):
            read_header(data)

    def test_avif_64_bit_box_sizes(self) -> None:
        """A box with a 64-bit size is read; one whose 64-bit size runs past the end is not."""
        mdat = struct.pack(">I", 1) + b"mdat" + struct.pack(">Q", 24) + b"\x00" * 8
        assert read_header(b.avif(mdat=mdat)).width == 3
        with pytest.raises(NotAnImage, match="runs past"):
            read_header(b.avif(mdat=mdat[:-1]))


class TestWorkIsBounded:
    @pytest.mark.parametrize(
        ("data", "what"),
        [
            (b.png(before=b.png_chunk(b"tEXt", b"") * (_MAX_STEPS + 1)), "too many chunks"),
            (b.jpeg(before=b.jpeg_segment(0xE1, b"") * (_MAX_STEPS + 1)), "too many segments"),
            (b.jpeg(before=b"\xff" * 20_000), "too many segments"),
            (b.riff(b.vp8x(), b.webp_chunk(b"EXIF", b"") * (_MAX_STEPS + 1), b.vp8l()), "too many"),
            (b.gif(before=b.gif_extension(0xFE, *[b"x"] * _MAX_STEPS)), "too many blocks"),
            (b.avif(properties=b.box(b"free") * (_MAX_STEPS + 1)), "too many boxes"),
        ],
        ids=["png", "jpeg-segments", "jpeg-fill", "webp", "gif", "avif"],
    )
    def test_crafted_walks_stop_early(self, data: bytes, what: str) -> None:
        """Files of thousands of empty chunks or blocks are refused after a bounded walk."""
        with pytest.raises(NotAnImage, match=what):
            read_header(data)

    def test_a_big_file_costs_no_more_than_its_header(self) -> None:
        """An 18 MB PNG is checked in milliseconds: no Python loop runs over its pixel data."""
        big = encode_png(2000, 3000, [os.urandom(6000) for _ in range(3000)], level=1)
        assert len(big) > 17_000_000
        began = time.perf_counter()
        for _ in range(10):
            read_header(big)
        assert (time.perf_counter() - began) / 10 < 0.05

    def test_pixel_data_past_its_start_is_not_decoded(self) -> None:
        """A limit, kept on purpose: damage after the first bytes of PNG data is not seen."""
        idat = zlib.compress(b"\x00" + bytes(3 * 40) * 40)
        damaged = idat[:20] + bytes(len(idat) - 24) + idat[-4:]
        assert read_header(b.png(40, 40, idat=damaged)).width == 40
