"""Image bytes: recognise them by their magic, read their size, write a PNG.

Nothing here decodes pixels; we read headers only, which is enough to refuse an
HTML error page dressed up as an image and to report dimensions.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterable

__all__ = ["dimensions", "encode_png", "extension_for", "sniff"]

_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_EXTENSIONS = {
    "image/png": "png",
    "image/jpeg": "jpg",
    "image/webp": "webp",
    "image/gif": "gif",
    "image/avif": "avif",
}


def sniff(data: bytes) -> str | None:
    """The MIME type that ``data``'s magic bytes announce, or None when it is no image."""
    if data.startswith(_PNG_MAGIC):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if len(data) >= 12 and data[4:8] == b"ftyp" and data[8:12] in (b"avif", b"avis"):
        return "image/avif"
    return None


def extension_for(content_type: str) -> str:
    """File extension (no dot) for a MIME type we store."""
    return _EXTENSIONS.get(content_type, "bin")


def dimensions(data: bytes) -> tuple[int, int] | None:
    """(width, height) read from the header, or None when the header is not understood."""
    kind = sniff(data)
    try:
        if kind == "image/png" and data[12:16] == b"IHDR":
            width, height = struct.unpack(">II", data[16:24])
            return int(width), int(height)
        if kind == "image/gif":
            width, height = struct.unpack("<HH", data[6:10])
            return int(width), int(height)
        if kind == "image/jpeg":
            return _jpeg_dimensions(data)
        if kind == "image/webp":
            return _webp_dimensions(data)
    except struct.error:
        return None
    return None


def _jpeg_dimensions(data: bytes) -> tuple[int, int] | None:
    # Walk the segments to the first start-of-frame marker (C0..CF bar C4, C8, CC).
    pos = 2
    while pos + 9 < len(data):
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            height, width = struct.unpack(">HH", data[pos + 5 : pos + 9])
            return int(width), int(height)
        pos += 2 + length
    return None


def _webp_dimensions(data: bytes) -> tuple[int, int] | None:
    if len(data) < 30:  # the longest header read below ends at byte 30
        return None
    chunk = data[12:16]
    if chunk == b"VP8X":
        width = int.from_bytes(data[24:27], "little") + 1
        height = int.from_bytes(data[27:30], "little") + 1
        return width, height
    if chunk == b"VP8L":
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8 ":
        width, height = struct.unpack("<HH", data[26:30])
        return int(width) & 0x3FFF, int(height) & 0x3FFF
    return None


def _chunk(kind: bytes, body: bytes) -> bytes:
    crc = zlib.crc32(body, zlib.crc32(kind))
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)


def encode_png(
    width: int,
    height: int,
    rows: Iterable[bytes],
    *,
    palette: bytes | None = None,
    level: int = 6,
) -> bytes:
    """A PNG from raw rows: RGB (3 bytes a pixel) or, with ``palette``, 8-bit indices.

    Rows are written with filter type 0; the caller's rows must be exactly
    ``width`` pixels wide.
    """
    color_type = 3 if palette is not None else 2
    header = struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, 0)
    compressor = zlib.compressobj(level)
    parts = [compressor.compress(b"\x00" + row) for row in rows]
    parts.append(compressor.flush())
    chunks = [_PNG_MAGIC, _chunk(b"IHDR", header)]
    if palette is not None:
        chunks.append(_chunk(b"PLTE", palette))
    chunks += [_chunk(b"IDAT", b"".join(parts)), _chunk(b"IEND", b"")]
    return b"".join(chunks)
