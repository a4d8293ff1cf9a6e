"""Image files built byte by byte from the format specifications, for the header tests.

Each builder writes what the specification says a minimal, valid file holds (PNG: RFC
2083 / W3C PNG; JPEG: ITU T.81; WebP: RFC 9649; GIF89a; AVIF: ISO/IEC 14496-12 boxes),
independently of imagegen's own encoder, so the reader is checked against the formats
rather than against itself. Keyword arguments break one rule at a time.
"""

from __future__ import annotations

import struct
import zlib

IEND = b"\x00\x00\x00\x00IEND\xaeB`\x82"


def png_chunk(kind: bytes, body: bytes, *, crc: int | None = None) -> bytes:
    """A PNG chunk: length, type, body, CRC-32 over type and body."""
    crc = zlib.crc32(kind + body) if crc is None else crc
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)


def png(
    width: int = 3,
    height: int = 2,
    *,
    depth: int = 8,
    color: int = 2,
    ihdr_crc: int | None = None,
    before: bytes = b"",
    idat: bytes | None = None,
    end: bytes = IEND,
) -> bytes:
    """A PNG: IHDR, ``before`` (chunks), one IDAT of filter-0 rows, IEND."""
    ihdr = struct.pack(">IIBBBBB", width, height, depth, color, 0, 0, 0)
    if idat is None:
        idat = zlib.compress(b"\x00" * 4)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr, crc=ihdr_crc)
        + before
        + png_chunk(b"IDAT", idat)
        + end
    )


def jpeg_segment(marker: int, body: bytes) -> bytes:
    """A JPEG marker segment: FF, marker, a length counting itself, the body."""
    return bytes([0xFF, marker]) + struct.pack(">H", len(body) + 2) + body


def jpeg(
    width: int = 3,
    height: int = 2,
    *,
    sof: int = 0xC0,
    components: int = 3,
    before: bytes = b"",
    scan: bytes | None = None,
    tail: bytes = b"\xff\xd9",
) -> bytes:
    """A JPEG: SOI, APP0, ``before``, a frame header, a scan header, data, EOI."""
    frame = struct.pack(">BHHB", 8, height, width, components)
    frame += b"".join(bytes([i + 1, 0x11, 0]) for i in range(components))
    if scan is None:
        scan = bytes([components]) + b"".join(bytes([i + 1, 0]) for i in range(components))
        scan += b"\x00\x3f\x00"
    return (
        b"\xff\xd8"
        + jpeg_segment(0xE0, b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00")
        + before
        + jpeg_segment(sof, frame)
        + jpeg_segment(0xDA, scan)
        + b"\x12\x34\xff\x00\x56"
        + tail
    )


def riff(*chunks: bytes, size: int | None = None) -> bytes:
    """A WebP file: RIFF, the size of what follows, WEBP, ``chunks``."""
    body = b"WEBP" + b"".join(chunks)
    return b"RIFF" + struct.pack("<I", len(body) if size is None else size) + body


def webp_chunk(kind: bytes, body: bytes, *, size: int | None = None) -> bytes:
    """A RIFF chunk, padded to an even length."""
    head = kind + struct.pack("<I", len(body) if size is None else size)
    return head + body + b"\x00" * (len(body) & 1)


def vp8(
    width: int = 3,
    height: int = 2,
    *,
    tag: int | None = None,
    start: bytes = b"\x9d\x01\x2a",
    partition: int = 4,
) -> bytes:
    """A lossy key frame: the frame tag (key frame, version 0, shown), start code, size."""
    tag = (1 << 4) | (partition << 5) if tag is None else tag
    head = tag.to_bytes(3, "little") + start + struct.pack("<HH", width, height)
    return webp_chunk(b"VP8 ", head + b"\x00" * partition)


def vp8l(width: int = 3, height: int = 2, *, signature: int = 0x2F, version: int = 0) -> bytes:
    """A lossless bitstream header: signature, 14-bit width-1 and height-1, version."""
    bits = (width - 1) | (height - 1) << 14 | version << 29
    return webp_chunk(b"VP8L", bytes([signature]) + bits.to_bytes(4, "little") + b"\x00")


def vp8x(width: int = 3, height: int = 2, *, size: int | None = None) -> bytes:
    """The extended header: flags, reserved bytes, 24-bit canvas width-1 and height-1."""
    body = b"\x00" * 4 + (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    return webp_chunk(b"VP8X", body, size=size)


def anmf(x: int, y: int, width: int, height: int, *, size: int | None = None) -> bytes:
    """An animation frame: offset / 2, width-1, height-1, duration, flags, then its data."""
    fields = (x // 2, y // 2, width - 1, height - 1, 100)
    body = b"".join(v.to_bytes(3, "little") for v in fields) + b"\x00" + vp8l(width, height)
    return webp_chunk(b"ANMF", body, size=size)


def gif(
    width: int = 3,
    height: int = 2,
    *,
    frame: tuple[int, int, int, int] | None = None,
    before: bytes = b"",
    code_size: int = 2,
    data: bytes = b"\x02\x4c\x01\x00",
) -> bytes:
    """A GIF89a: screen, ``before`` (blocks), one image (a frame), its LZW data, trailer."""
    left, top, w, h = frame or (0, 0, width, height)
    screen = struct.pack("<HHBBB", width, height, 0, 0, 0)
    image = b"\x2c" + struct.pack("<HHHHB", left, top, w, h, 0)
    return b"GIF89a" + screen + before + image + bytes([code_size]) + data + b"\x3b"


def gif_extension(label: int, *blocks: bytes) -> bytes:
    """An extension: introducer, label, sized sub-blocks, the empty terminator."""
    return bytes([0x21, label]) + b"".join(bytes([len(b)]) + b for b in blocks) + b"\x00"


def box(kind: bytes, body: bytes = b"", *, size: int | None = None) -> bytes:
    """An ISO-BMFF box: a 32-bit size counting itself, the type, the body."""
    return struct.pack(">I", 8 + len(body) if size is None else size) + kind + body


def ispe(width: int, height: int) -> bytes:
    """An image spatial extents property (a FullBox)."""
    return box(b"ispe", b"\x00\x00\x00\x00" + struct.pack(">II", width, height))


def avif(
    *sizes: tuple[int, int],
    properties: bytes | None = None,
    meta: bytes | None = None,
    mdat: bytes | None = None,
) -> bytes:
    """An AVIF: ftyp, meta (a FullBox) holding iprp/ipco with ``sizes``, then mdat."""
    if properties is None:
        properties = b"".join(ispe(w, h) for w, h in sizes or [(3, 2)])
    if meta is None:
        meta = box(b"meta", b"\x00" * 4 + box(b"iprp", box(b"ipco", properties)))
    if mdat is None:
        mdat = box(b"mdat", b"\x00" * 8)
    return box(b"ftyp", b"avif\x00\x00\x00\x00mif1avif") + meta + mdat
