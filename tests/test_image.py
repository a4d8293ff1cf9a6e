"""Magic-byte sniffing, header dimensions and the PNG encoder."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from imagegen._image import dimensions, encode_png, extension_for, sniff

RED, GREEN, BLUE, WHITE = (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255)


def pillow_bytes(fmt: str, size: tuple[int, int], mode: str = "RGB", **options: object) -> bytes:
    """An image of ``size`` saved by Pillow in ``fmt``."""
    buffer = io.BytesIO()
    Image.new(mode, size, (30, 120, 200, 255)[: len(mode)]).save(buffer, fmt, **options)
    return buffer.getvalue()


def decode(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


class TestSniff:
    @pytest.mark.parametrize(
        ("data", "expected"),
        [
            (b"\x89PNG\r\n\x1a\n" + b"\x00" * 16, "image/png"),
            (b"\xff\xd8\xff\xe0\x00\x10JFIF", "image/jpeg"),
            (b"\xff\xd8\xff", "image/jpeg"),
            (b"RIFF\x24\x00\x00\x00WEBPVP8 ", "image/webp"),
            (b"GIF87a\x01\x00\x01\x00", "image/gif"),
            (b"GIF89a\x01\x00\x01\x00", "image/gif"),
            (b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00", "image/avif"),
            (b"\x00\x00\x00\x1cftypavis\x00\x00\x00\x00", "image/avif"),
        ],
        ids=["png", "jpeg-jfif", "jpeg-bare", "webp", "gif87", "gif89", "avif", "avis"],
    )
    def test_magic(self, data: bytes, expected: str) -> None:
        """Each image format is recognised by its magic bytes."""
        assert sniff(data) == expected

    @pytest.mark.parametrize(
        "data",
        [
            b"",
            b"<!DOCTYPE html><html><body>502 Bad Gateway</body></html>",
            b'{"error": "not found"}',
            b"\x89PNG\r\n",
            b"\xff\xd8",
            b"RIFF\x24\x00\x00\x00WAVEfmt ",
            b"RIFF\x00\x00WEBP",
            b"GIF90a",
            b"\x00\x00\x00\x1cftypheic\x00\x00\x00\x00",
            b"\x00\x00\x00\x1cftypavi",
        ],
        ids=[
            "empty",
            "html",
            "json",
            "png-truncated",
            "jpeg-truncated",
            "wav",
            "webp-misaligned",
            "gif-bad-version",
            "heic",
            "avif-truncated",
        ],
    )
    def test_not_an_image(self, data: bytes) -> None:
        """Non-image bytes, and truncated magic, give None."""
        assert sniff(data) is None

    @pytest.mark.parametrize(
        ("fmt", "expected"),
        [
            ("PNG", "image/png"),
            ("JPEG", "image/jpeg"),
            ("WEBP", "image/webp"),
            ("GIF", "image/gif"),
        ],
    )
    def test_real_files(self, fmt: str, expected: str) -> None:
        """Files written by Pillow are sniffed as their format."""
        assert sniff(pillow_bytes(fmt, (16, 16))) == expected


SIZES = [(37, 21), (1, 1), (640, 480), (21, 300)]


class TestDimensions:
    @pytest.mark.parametrize("size", [*SIZES, (4096, 64), (16383, 2)])
    def test_png_from_encode_png(self, size: tuple[int, int]) -> None:
        """PNG dimensions are read from IHDR."""
        width, height = size
        data = encode_png(width, height, [bytes(3 * width)] * height)
        assert dimensions(data) == size

    @pytest.mark.parametrize("size", SIZES)
    @pytest.mark.parametrize(
        ("fmt", "mode", "options"),
        [
            ("PNG", "RGB", {}),
            ("JPEG", "RGB", {}),
            ("JPEG", "RGB", {"progressive": True}),
            ("JPEG", "L", {}),
            ("WEBP", "RGB", {}),
            ("WEBP", "RGB", {"lossless": True}),
            ("WEBP", "RGBA", {}),
            ("GIF", "RGB", {}),
        ],
        ids=[
            "png",
            "jpeg",
            "jpeg-progressive",
            "jpeg-grey",
            "webp-lossy",
            "webp-lossless",
            "webp-alpha",
            "gif",
        ],
    )
    def test_pillow_files(
        self, size: tuple[int, int], fmt: str, mode: str, options: dict[str, object]
    ) -> None:
        """Dimensions of PNG, JPEG (baseline, progressive), WebP (VP8, VP8L, VP8X) and GIF."""
        data = pillow_bytes(fmt, size, mode, **options)
        assert dimensions(data) == size
        assert decode(data).size == size

    @pytest.mark.parametrize(
        "data",
        [
            b"",
            b"garbage bytes that are not an image at all",
            b"<html>not an image</html>",
            b"\x89PNG\r\n\x1a\n",
            b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR\x00\x00",
            b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIEND" + b"\x00" * 16,
            b"\xff\xd8\xff",
            b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00",
            b"\xff\xd8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00",
            b"GIF89a\x01",
            b"RIFF\x00\x00\x00\x00WEBPVP8 \x00\x00",
            b"RIFF\x00\x00\x00\x00WEBPXXXX" + b"\x00" * 20,
            b"\x00\x00\x00\x1cftypavif" + b"\x00" * 20,
            b"RIFF\x00\x00\x00\x00WEBPVP8X",
            b"RIFF\x00\x00\x00\x00WEBPVP8L",
        ],
        ids=[
            "empty",
            "garbage",
            "html",
            "png-magic-only",
            "png-truncated-ihdr",
            "png-no-ihdr",
            "jpeg-magic-only",
            "jpeg-no-sof",
            "jpeg-not-a-segment",
            "gif-truncated",
            "webp-vp8-truncated",
            "webp-unknown-chunk",
            "avif",
            "webp-vp8x-truncated",
            "webp-vp8l-truncated",
        ],
    )
    def test_unreadable_gives_none(self, data: bytes) -> None:
        """Garbage, truncated headers and formats without a parser give None, never raise."""
        assert dimensions(data) is None


class TestEncodePng:
    def test_rgb_pixels(self) -> None:
        """An RGB PNG decodes to the right size and the exact pixel colours."""
        rows = [bytes([*RED, *GREEN, *BLUE]), bytes([*WHITE, *RED, *GREEN])]
        image = decode(encode_png(3, 2, rows))
        assert (image.size, image.mode) == ((3, 2), "RGB")
        assert [image.getpixel((x, y)) for y in range(2) for x in range(3)] == [
            RED,
            GREEN,
            BLUE,
            WHITE,
            RED,
            GREEN,
        ]

    def test_palette_pixels(self) -> None:
        """A palette PNG stores indices and decodes to the palette's colours."""
        palette = bytes([*RED, *GREEN, *BLUE, *WHITE])
        rows = [bytes([0, 1, 2, 3, 3]), bytes([3, 2, 1, 0, 0]), bytes([1, 1, 1, 1, 1])]
        image = decode(encode_png(5, 3, rows, palette=palette))
        assert (image.size, image.mode) == ((5, 3), "P")
        assert image.getpixel((2, 0)) == 2
        rgb = image.convert("RGB")
        assert [rgb.getpixel((x, 0)) for x in range(5)] == [RED, GREEN, BLUE, WHITE, WHITE]
        assert [rgb.getpixel((x, 1)) for x in range(5)] == [WHITE, BLUE, GREEN, RED, RED]
        assert [rgb.getpixel((x, 2)) for x in range(5)] == [GREEN] * 5

    @pytest.mark.parametrize("level", [0, 1, 9])
    def test_compression_level_only_changes_size(self, level: int) -> None:
        """Any zlib level gives the same decoded pixels."""
        rows = [bytes(v for x in range(50) for v in (x * 5, y * 5, 100)) for y in range(40)]
        image = decode(encode_png(50, 40, rows, level=level))
        assert image.getpixel((10, 20)) == (50, 100, 100)
        assert image.getpixel((49, 39)) == (245, 195, 100)

    def test_sniffed_as_png(self) -> None:
        """encode_png output starts with the PNG magic."""
        assert sniff(encode_png(1, 1, [b"\x00\x00\x00"])) == "image/png"


class TestExtension:
    @pytest.mark.parametrize(
        ("content_type", "extension"),
        [
            ("image/png", "png"),
            ("image/jpeg", "jpg"),
            ("image/webp", "webp"),
            ("image/gif", "gif"),
            ("image/avif", "avif"),
            ("application/octet-stream", "bin"),
            ("text/html", "bin"),
            ("", "bin"),
        ],
    )
    def test_extension_for(self, content_type: str, extension: str) -> None:
        """Known image types map to their usual extension, anything else to ``bin``."""
        assert extension_for(content_type) == extension
