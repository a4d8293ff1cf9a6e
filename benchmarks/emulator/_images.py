"""Output bytes: real PNG, JPEG and WebP images, an HTML page, an oversized file."""

from __future__ import annotations

import base64

from imagegen.providers._placeholder import render_placeholder

# 16x16 images made once with Pillow, embedded so the emulator needs no Pillow at run time.
_JPEG = base64.b64decode(
    "/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAoHBwgHBgoICAgLCgoLDhgQDg0NDh0VFhEYIx8lJCIfIiEmKzcvJik0KSEi"
    "MEExNDk7Pj4+JS5ESUM8SDc9Pjv/2wBDAQoLCw4NDhwQEBw7KCIoOzs7Ozs7Ozs7Ozs7Ozs7Ozs7Ozs7Ozs7Ozs7Ozs7"
    "Ozs7Ozs7Ozs7Ozs7Ozs7Ozs7Ozv/wAARCAAQABADASIAAhEBAxEB/8QAHwAAAQUBAQEBAQEAAAAAAAAAAAECAwQFBgcI"
    "CQoL/8QAtRAAAgEDAwIEAwUFBAQAAAF9AQIDAAQRBRIhMUEGE1FhByJxFDKBkaEII0KxwRVS0fAkM2JyggkKFhcYGRol"
    "JicoKSo0NTY3ODk6Q0RFRkdISUpTVFVWV1hZWmNkZWZnaGlqc3R1dnd4eXqDhIWGh4iJipKTlJWWl5iZmqKjpKWmp6ip"
    "qrKztLW2t7i5usLDxMXGx8jJytLT1NXW19jZ2uHi4+Tl5ufo6erx8vP09fb3+Pn6/8QAHwEAAwEBAQEBAQEBAQAAAAAA"
    "AAECAwQFBgcICQoL/8QAtREAAgECBAQDBAcFBAQAAQJ3AAECAxEEBSExBhJBUQdhcRMiMoEIFEKRobHBCSMzUvAVYnLR"
    "ChYkNOEl8RcYGRomJygpKjU2Nzg5OkNERUZHSElKU1RVVldYWVpjZGVmZ2hpanN0dXZ3eHl6goOEhYaHiImKkpOUlZaX"
    "mJmaoqOkpaanqKmqsrO0tba3uLm6wsPExcbHyMnK0tPU1dbX2Nna4uPk5ebn6Onq8vP09fb3+Pn6/9oADAMBAAIRAxEA"
    "PwCjRRRXz59kf//Z"
)
_WEBP = base64.b64decode(
    "UklGRjgAAABXRUJQVlA4ICwAAADQAQCdASoQABAAAkA4JaACdLoB+AADsAD+5AF/8WcjEdnm/+hJ2Dg/2gAAAA=="
)
_HTML = b"<!doctype html><html><head><title>Error</title></head><body>Not an image.</body></html>"
_PNGS: dict[int, bytes] = {}
_TYPES = {"png": "image/png", "jpg": "image/jpeg", "jpeg": "image/jpeg", "webp": "image/webp"}


def image_bytes(fmt: str, side: int = 64) -> bytes:
    """A real image: a ``side``-pixel placeholder PNG, or the embedded 16x16 JPEG/WebP."""
    if fmt in ("jpg", "jpeg"):
        return _JPEG
    if fmt == "webp":
        return _WEBP
    if side not in _PNGS:
        _PNGS[side] = render_placeholder("imagegen emulator", side, side)
    return _PNGS[side]


def _oversized(size: int) -> bytes:
    return b"\x89PNG\r\n\x1a\n" + bytes(max(0, size - 8))


def _ext(fmt: object) -> str:
    text = str(fmt).lower()
    return {"jpeg": "jpg", "jpg": "jpg", "webp": "webp"}.get(text, "png")
