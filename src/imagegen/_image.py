"""Image bytes: recognise them, check their header, read their size, write a PNG.

:func:`read_header` checks that bytes are an image of the format their magic bytes
announce, far enough to trust the size the header declares: the structure in front
of the pixel data is walked with every length bounds-checked, and the start of the
pixel data must be where and what the format says. Pixel data itself is never
decoded, so a check costs microseconds whatever the image's size and needs no
imaging library. What each format must show (and what is not checked) is listed in
docs/security.md.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable, Iterable, Iterator

import attrs

__all__ = [
    "ImageHeader",
    "NotAnImage",
    "dimensions",
    "encode_png",
    "extension_for",
    "read_header",
    "sniff",
]

_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_PNG_IEND = b"\x00\x00\x00\x00IEND\xaeB`\x82"
_EXTENSIONS = {
    "image/png": "png",
    "image/jpeg": "jpg",
    "image/webp": "webp",
    "image/gif": "gif",
    "image/avif": "avif",
}
# Chunks, segments, blocks or boxes walked before the pixel data. Real files need a few
# dozen; the bound keeps a crafted file of millions of empty chunks from stalling the loop.
_MAX_STEPS = 4096
_MAX_DIMENSION = 2**31 - 1  # PNG's own limit, and more than any format here can hold


class NotAnImage(ValueError):
    """The bytes are no image, or not a well-formed one of the format they announce."""


@attrs.frozen
class ImageHeader:
    """What a checked image header declares.

    Args:
        content_type: The MIME type the magic bytes announce.
        width: Pixels across, as the header declares.
        height: Pixels down, as the header declares.
    """

    content_type: str
    width: int
    height: int

    @property
    def pixels(self) -> int:
        """``width * height``: what a decoder would allocate for one frame."""
        return self.width * self.height


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


def read_header(data: bytes) -> ImageHeader:
    """The format and declared size of ``data``, once its structure has been checked.

    Raises:
        NotAnImage: The magic bytes match no known format, or the structure in front
            of the pixel data is not what that format requires (truncated, bad CRC,
            a zero size, no pixel data...). The message says what is wrong.
    """
    kind = sniff(data)
    if kind is None:
        raise NotAnImage("magic bytes match no known format")
    try:
        width, height = _READERS[kind](data)
    except (IndexError, struct.error):
        raise NotAnImage(f"{_NAMES[kind]} header is truncated") from None
    return ImageHeader(content_type=kind, width=width, height=height)


def dimensions(data: bytes) -> tuple[int, int] | None:
    """(width, height) from the checked header, or None when :func:`read_header` refuses it."""
    try:
        header = read_header(data)
    except NotAnImage:
        return None
    return header.width, header.height


def _sized(name: str, width: int, height: int) -> tuple[int, int]:
    if not (0 < width <= _MAX_DIMENSION and 0 < height <= _MAX_DIMENSION):
        raise NotAnImage(f"{name} declares an empty or impossible size ({width}x{height})")
    return width, height


# -- PNG: IHDR (with its CRC) first, chunks to the first IDAT, a zlib stream, an IEND ----

_PNG_DEPTHS = {0: (1, 2, 4, 8, 16), 2: (8, 16), 3: (1, 2, 4, 8), 4: (8, 16), 6: (8, 16)}


def _png(data: bytes) -> tuple[int, int]:
    chunks = _png_chunks(data)
    kind, start, end = next(chunks)
    if kind != b"IHDR" or end - start != 13:
        raise NotAnImage("PNG does not start with an IHDR chunk")
    if struct.unpack_from(">I", data, end)[0] != zlib.crc32(data[start - 4 : end]):
        raise NotAnImage("PNG IHDR chunk fails its CRC")
    width, height, depth, color, method, filtering, interlace = struct.unpack_from(
        ">IIBBBBB", data, start
    )
    if depth not in _PNG_DEPTHS.get(color, ()) or method or filtering or interlace > 1:
        raise NotAnImage("PNG IHDR holds an invalid bit depth, colour type or method")
    size = _sized("PNG", width, height)
    while kind != b"IEND":  # the walk itself raises at the end of the data
        kind, start, end = next(chunks)
        if kind == b"IDAT":
            _png_pixels_start(data[start : min(end, start + 1024)])
            if data.rfind(_PNG_IEND, end) < 0:
                raise NotAnImage("PNG has no IEND chunk after its image data (truncated?)")
            return size
    raise NotAnImage("PNG has no IDAT chunk")


def _png_chunks(data: bytes) -> Iterator[tuple[bytes, int, int]]:
    """(type, body start, body end) of each chunk, its length bounds-checked."""
    pos = len(_PNG_MAGIC)
    for _ in range(_MAX_STEPS):
        length, kind = struct.unpack_from(">I4s", data, pos)
        end = pos + 8 + length
        if end + 4 > len(data) or not kind.isalpha():
            raise NotAnImage("PNG chunk is malformed or runs past the end (truncated?)")
        yield kind, pos + 8, end
        pos = end + 4
    raise NotAnImage("PNG has too many chunks before its image data")


def _png_pixels_start(idat: bytes) -> None:
    # The first decompressed byte is the first row's filter type (0-4): inflating one
    # byte proves the data is a zlib stream without decoding the image.
    try:
        first = zlib.decompressobj().decompress(idat, 1)
    except zlib.error:
        raise NotAnImage("PNG image data is not a zlib stream") from None
    if first and first[0] > 4:
        raise NotAnImage("PNG image data starts with an invalid row filter")


# -- JPEG: segments walked by their lengths to a frame header, then the first scan --------

_JPEG_FRAMES = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}  # SOF0-SOF15 bar DHT, JPG, DAC
_JPEG_SCAN = 0xDA
_JPEG_STANDALONE = frozenset({0xFF, 0x01, *range(0xD0, 0xD8)})  # fill, TEM, RST0-7: no length


def _jpeg(data: bytes) -> tuple[int, int]:
    pos = 2
    frame_size: tuple[int, int] | None = None
    for _ in range(_MAX_STEPS):
        if data[pos] != 0xFF:
            raise NotAnImage("JPEG segment does not start with a marker")
        marker = data[pos + 1]
        pos += 1 if marker == 0xFF else 2  # 0xFF: a fill byte before the marker
        if marker in _JPEG_STANDALONE:
            continue
        if marker in (0xD8, 0xD9):
            raise NotAnImage("JPEG ends or restarts before its first scan")
        end = pos + struct.unpack_from(">H", data, pos)[0]
        if end < pos + 2 or end > len(data):
            raise NotAnImage("JPEG segment is malformed or runs past the end (truncated?)")
        if marker in _JPEG_FRAMES and frame_size is None:
            frame_size = _jpeg_frame(data[pos + 2 : end])
        elif marker == _JPEG_SCAN:
            return _jpeg_scan(data, pos + 2, end, frame_size)
        pos = end
    raise NotAnImage("JPEG has too many segments before its first scan")


def _jpeg_frame(body: bytes) -> tuple[int, int]:
    precision, height, width, components = struct.unpack_from(">BHHB", body)
    if not 2 <= precision <= 16 or not 1 <= components <= 4 or len(body) != 6 + 3 * components:
        raise NotAnImage("JPEG frame header is malformed")
    return _sized("JPEG", width, height)


def _jpeg_scan(data: bytes, start: int, end: int, frame: tuple[int, int] | None) -> tuple[int, int]:
    if frame is None:
        raise NotAnImage("JPEG scan comes before any frame header")
    components = data[start]
    if not 1 <= components <= 4 or end - start != 4 + 2 * components:
        raise NotAnImage("JPEG scan header is malformed")
    if data.rfind(b"\xff\xd9", end) < 0:
        raise NotAnImage("JPEG has no end-of-image marker after its scan (truncated?)")
    return frame


# -- WebP: a RIFF size that fits the data, then a valid VP8, VP8L or VP8X header ----------


def _webp(data: bytes) -> tuple[int, int]:
    riff_end = 8 + struct.unpack_from("<I", data, 4)[0]
    if riff_end < 20 or riff_end > len(data):
        raise NotAnImage("WebP RIFF size does not match the data (truncated?)")
    kind, size = struct.unpack_from("<4sI", data, 12)
    if 20 + size > riff_end:
        raise NotAnImage("WebP chunk runs past the end of the RIFF data")
    if kind == b"VP8X":
        return _webp_extended(data, 20 + size + (size & 1), riff_end)
    return _webp_bitstream(kind, data[20 : 20 + size])


def _webp_bitstream(kind: bytes, body: bytes) -> tuple[int, int]:
    if kind == b"VP8 ":
        # A key frame: bit 0 clear, version 0-3, shown, then the start code and the size.
        tag = int.from_bytes(body[:3], "little")
        if tag & 1 or (tag >> 1) & 7 > 3 or not (tag >> 4) & 1 or body[3:6] != b"\x9d\x01\x2a":
            raise NotAnImage("WebP VP8 data is not a key frame")
        if (tag >> 5) > len(body) - 10:
            raise NotAnImage("WebP VP8 first partition runs past its chunk (truncated?)")
        width, height = struct.unpack_from("<HH", body, 6)
        return _sized("WebP", width & 0x3FFF, height & 0x3FFF)
    if kind == b"VP8L":
        bits = int.from_bytes(body[1:5], "little")
        if body[0] != 0x2F or len(body) < 5 or bits >> 29:
            raise NotAnImage("WebP VP8L header is malformed")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    raise NotAnImage("WebP holds no VP8, VP8L or VP8X chunk")


def _webp_extended(data: bytes, pos: int, riff_end: int) -> tuple[int, int]:
    # VP8X declares the canvas; the image (or the first animation frame) must follow
    # within the RIFF data and fit on it.
    width = int.from_bytes(data[24:27], "little") + 1
    height = int.from_bytes(data[27:30], "little") + 1
    if pos > riff_end or pos < 30:
        raise NotAnImage("WebP VP8X header is malformed")
    for _ in range(_MAX_STEPS):
        if pos + 8 > riff_end:
            raise NotAnImage("WebP VP8X file holds no image (VP8, VP8L or ANMF chunk)")
        kind, size = struct.unpack_from("<4sI", data, pos)
        start, end = pos + 8, pos + 8 + size
        if end > riff_end:
            raise NotAnImage("WebP chunk runs past the end of the RIFF data")
        if kind in (b"VP8 ", b"VP8L"):
            inner = _webp_bitstream(kind, data[start:end])
        elif kind == b"ANMF":  # an animation frame: X/2, Y/2, width-1, height-1 (24 bits each)
            if size < 16:
                raise NotAnImage("WebP animation frame is malformed")
            x, y, w, h = (
                int.from_bytes(data[i : i + 3], "little") for i in range(start, start + 12, 3)
            )
            inner = (2 * x + w + 1, 2 * y + h + 1)
        else:
            pos = end + (size & 1)
            continue
        if inner[0] > width or inner[1] > height:
            raise NotAnImage("WebP image is larger than its VP8X canvas")
        return width, height
    raise NotAnImage("WebP has too many chunks before its image data")


# -- GIF: the logical screen, blocks walked to the first image and its LZW data -----------


def _gif_table(flags: int) -> int:
    return 3 << ((flags & 7) + 1) if flags & 0x80 else 0


def _gif(data: bytes) -> tuple[int, int]:
    width, height, flags = struct.unpack_from("<HHB", data, 6)
    size = _sized("GIF", width, height)
    pos = 13 + _gif_table(flags)
    in_extension = False
    for _ in range(_MAX_STEPS):
        if in_extension:  # an extension's data sub-blocks run up to an empty one
            in_extension = data[pos] != 0
            pos += data[pos] + 1
            continue
        block = data[pos]
        if block == 0x21:  # an extension: introducer, label, then sub-blocks
            pos += 2
            in_extension = True
            continue
        if block != 0x2C:
            raise NotAnImage("GIF has a trailer or an unknown block before its first image")
        left, top, frame_width, frame_height, frame_flags = struct.unpack_from(
            "<HHHHB", data, pos + 1
        )
        if left + frame_width > width or top + frame_height > height:
            raise NotAnImage("GIF image lies outside its logical screen")
        pos += 10 + _gif_table(frame_flags)
        if not 2 <= data[pos] <= 8 or not data[pos + 1]:
            raise NotAnImage("GIF image data is malformed")
        return size
    raise NotAnImage("GIF has too many blocks before its first image")


# -- AVIF: ISO-BMFF boxes, the image size (meta/iprp/ipco/ispe) and media data -------------


def _boxes(data: bytes, start: int, end: int) -> Iterator[tuple[bytes, int, int]]:
    """(type, body start, box end) of each box in ``data[start:end]``, bounds-checked."""
    pos = start
    for _ in range(_MAX_STEPS):
        if pos == end:
            return
        size, kind = struct.unpack_from(">I4s", data, pos)
        header = 8
        if size == 1:  # a 64-bit size follows the type
            size, header = struct.unpack_from(">Q", data, pos + 8)[0], 16
        elif size == 0:  # the box runs to the end of its parent
            size = end - pos
        if size < header or pos + size > end:
            raise NotAnImage("AVIF box is malformed or runs past its parent (truncated?)")
        yield kind, pos + header, pos + size
        pos += size
    raise NotAnImage("AVIF has too many boxes")


def _box(data: bytes, start: int, end: int, kind: bytes) -> tuple[int, int]:
    for found, body, box_end in _boxes(data, start, end):
        if found == kind:
            return body, box_end
    raise NotAnImage(f"AVIF has no {kind.decode()} box")


def _avif(data: bytes) -> tuple[int, int]:
    top = {kind: (body, end) for kind, body, end in _boxes(data, 0, len(data))}
    if b"meta" not in top or b"mdat" not in top:
        raise NotAnImage("AVIF has no meta or no mdat box")
    meta, meta_end = top[b"meta"]
    properties = _box(data, *_box(data, meta + 4, meta_end, b"iprp"), b"ipco")  # meta: a FullBox
    sizes: list[tuple[int, int]] = []
    for kind, body, end in _boxes(data, *properties):
        if kind == b"ispe":  # a FullBox: version and flags, then width and height
            if end - body < 12:
                raise NotAnImage("AVIF image size (ispe) box is malformed")
            sizes.append(struct.unpack_from(">II", data, body + 4))
    if not sizes:
        raise NotAnImage("AVIF declares no image size (ispe)")
    # The primary image (or the grid it is made of) is the largest; tiles and alpha planes
    # are never larger than it.
    width, height = max(sizes, key=lambda size: size[0] * size[1])
    return _sized("AVIF", width, height)


_READERS: dict[str, Callable[[bytes], tuple[int, int]]] = {
    "image/png": _png,
    "image/jpeg": _jpeg,
    "image/webp": _webp,
    "image/gif": _gif,
    "image/avif": _avif,
}
_NAMES = {
    "image/png": "PNG",
    "image/jpeg": "JPEG",
    "image/webp": "WebP",
    "image/gif": "GIF",
    "image/avif": "AVIF",
}


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
