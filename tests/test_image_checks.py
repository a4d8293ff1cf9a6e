"""The checks every image passes: DownloadPolicy limits, bytes, pixels, a real header."""

from __future__ import annotations

import pytest

from download_support import pillow_bytes
from imagegen import DownloadPolicy, InvalidConfig, ProviderError
from imagegen._download import check_image, inspect_image
from imagegen._image import encode_png
from imagegen.testing import tiny_png


class TestPolicy:
    def test_defaults(self) -> None:
        """The documented defaults: 20 MB, 50 megapixels, https only, public addresses only."""
        policy = DownloadPolicy()
        assert (policy.max_bytes, policy.max_pixels) == (20_000_000, 50_000_000)
        assert (policy.allow_http, policy.allow_private_networks) == (False, False)

    @pytest.mark.parametrize("field", ["max_bytes", "max_pixels"])
    @pytest.mark.parametrize("value", [0, -1, 1.5, True, "10"])
    def test_limits_must_be_positive_integers(self, field: str, value: object) -> None:
        """A limit that is no positive integer raises InvalidConfig naming the field."""
        with pytest.raises(InvalidConfig) as info:
            DownloadPolicy(**{field: value})  # type: ignore[arg-type]
        assert info.value.field == field


class TestCheckImage:
    @pytest.mark.parametrize(
        ("fmt", "content_type"),
        [
            ("PNG", "image/png"),
            ("JPEG", "image/jpeg"),
            ("GIF", "image/gif"),
            ("WEBP", "image/webp"),
            ("AVIF", "image/avif"),
        ],
    )
    def test_type_from_the_checked_header(self, fmt: str, content_type: str) -> None:
        """Real images pass; the MIME type and size come from their checked header."""
        header = inspect_image(pillow_bytes(fmt, (40, 30)), DownloadPolicy(), "prov")
        assert (header.content_type, header.width, header.height) == (content_type, 40, 30)
        assert check_image(pillow_bytes(fmt), DownloadPolicy(), "prov") == content_type

    @pytest.mark.parametrize(
        "data",
        [
            b"",
            b"<!doctype html><html></html>",
            b"{}",
            b"\x89PNX",
            b"\x89PNG\r\n\x1a\n" + bytes(range(92)),
            b"\xff\xd8\xff\xe0" + b"\x00" * 20,
            b"GIF89a" + b"\x00" * 20,
            b"RIFF\x00\x00\x00\x00WEBPVP8 ",
        ],
        ids=["empty", "html", "json", "png-typo", "png-junk", "jpeg-junk", "gif-junk", "webp-junk"],
    )
    def test_not_an_image(self, data: bytes) -> None:
        """Non-images and magic bytes followed by junk raise a permanent ProviderError."""
        with pytest.raises(ProviderError) as info:
            check_image(data, DownloadPolicy(), "prov")
        assert type(info.value) is ProviderError
        assert info.value.retryable is False
        assert info.value.provider == "prov"
        assert "not an image" in str(info.value)

    def test_size_limit(self) -> None:
        """An image of exactly max_bytes passes; one byte over is refused."""
        png = tiny_png()
        assert check_image(png, DownloadPolicy(max_bytes=len(png)), "prov") == "image/png"
        with pytest.raises(ProviderError) as info:
            check_image(png, DownloadPolicy(max_bytes=len(png) - 1), "prov")
        assert info.value.retryable is False

    def test_decompression_bomb_refused(self) -> None:
        """A small PNG declaring 50000x50000 is refused by the default pixel cap, naming both."""
        bomb = encode_png(50_000, 50_000, [])  # no rows: a few hundred bytes
        assert len(bomb) < 1000
        with pytest.raises(ProviderError) as info:
            check_image(bomb, DownloadPolicy(), "prov")
        assert type(info.value) is ProviderError
        assert info.value.retryable is False
        assert "50000x50000" in str(info.value)
        assert "50000000-pixel" in str(info.value)

    def test_pixel_cap_is_inclusive(self) -> None:
        """An image of exactly max_pixels passes; one of a pixel more is refused."""
        png = encode_png(7, 3, [bytes(21)] * 3)
        assert check_image(png, DownloadPolicy(max_pixels=21), "prov") == "image/png"
        with pytest.raises(ProviderError, match="7x3 pixels, over the 20-pixel limit"):
            check_image(png, DownloadPolicy(max_pixels=20), "prov")

    @pytest.mark.parametrize("size", [(4096, 4096), (8192, 6000)])
    def test_vendor_sizes_fit_the_default_cap(self, size: tuple[int, int]) -> None:
        """4096x4096 and 49-megapixel outputs fit under the default cap."""
        width, height = size
        header = inspect_image(encode_png(width, height, []), DownloadPolicy(), "prov")
        assert (header.width, header.height) == size
