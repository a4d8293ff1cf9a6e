"""Images a request starts from (editing, image-to-image, references) and its mask.

An :class:`InputImage` holds bytes or an ``https`` URL. Bytes are checked on
construction (a well-formed image, within the size cap) and URLs by their form;
the generator fetches a URL once, under its ``DownloadPolicy``, before any provider
is called, so every vendor gets the same checked bytes. In a request, an input may
also be given as plain ``bytes``, a URL string, or a ``data:image/...;base64,`` URI
(how the HTTP API and the command line carry bytes).
"""

from __future__ import annotations

import base64
import binascii
from typing import Any
from urllib.parse import urlsplit

import attrs

from ._errors import InvalidRequest
from ._image import NotAnImage, read_header

__all__ = ["MAX_INPUT_BYTES", "MAX_INPUT_IMAGES", "InputImage", "input_image", "input_images"]

#: The largest input image taken, in bytes (what vendors' edit endpoints take).
MAX_INPUT_BYTES = 20_000_000
#: The most input images one request may carry.
MAX_INPUT_IMAGES = 16
_MAX_URL = 2048


@attrs.frozen
class InputImage:
    """An image a request starts from: ``data`` (bytes) or ``url`` (https), exactly one.

    Raises:
        InvalidRequest: Both or neither given; bytes that are no well-formed image
            (PNG, JPEG, WebP, GIF or AVIF) or over ``MAX_INPUT_BYTES``; a URL that is
            not https, is too long, or carries credentials.
    """

    data: bytes | None = attrs.field(
        default=None, repr=lambda d: f"<{len(d)} bytes>" if d else "None"
    )
    url: str | None = None

    def __attrs_post_init__(self) -> None:
        if (self.data is None) == (self.url is None):
            raise InvalidRequest(
                "an input image takes exactly one of data= and url=", field="images"
            )
        if self.data is not None:
            _check_bytes(self.data, "images")
        else:
            _check_url(self.url, "images")

    @property
    def content_type(self) -> str | None:
        """The image's MIME type, from its magic bytes; None for a URL not fetched yet."""
        return None if self.data is None else read_header(self.data).content_type


def _check_bytes(data: object, field: str) -> None:
    if not isinstance(data, bytes):
        raise InvalidRequest(f"{field}: image data must be bytes", field=field)
    if len(data) > MAX_INPUT_BYTES:
        raise InvalidRequest(
            f"{field}: the image is {len(data)} bytes, over the {MAX_INPUT_BYTES}-byte limit",
            field=field,
        )
    try:
        read_header(data)
    except NotAnImage as exc:
        raise InvalidRequest(f"{field}: not a well-formed image ({exc})", field=field) from None


def _check_url(url: object, field: str) -> None:
    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme != "https" or not parts.hostname:
        raise InvalidRequest(f"{field}: an image URL must be an https URL", field=field)
    assert isinstance(url, str)  # noqa: S101 - narrowing for the type checker
    if len(url) > _MAX_URL:
        raise InvalidRequest(f"{field}: the URL is over {_MAX_URL} characters", field=field)
    if parts.username or parts.password:
        raise InvalidRequest(f"{field}: an image URL must not carry credentials", field=field)


def input_image(value: object, field: str) -> InputImage:
    """``value`` (bytes, a URL, a ``data:`` URI or an InputImage) as an InputImage.

    Raises:
        InvalidRequest: Naming ``field`` (``images[1]``, ``mask``).
    """
    if isinstance(value, InputImage):
        return value
    if isinstance(value, str) and value.startswith("data:"):
        value = _data_uri(value, field)
    try:
        if isinstance(value, bytes | bytearray | memoryview):
            return InputImage(data=bytes(value))
        if isinstance(value, str):
            return InputImage(url=value)
    except InvalidRequest as exc:
        message = str(exc).removeprefix("images: ")
        raise InvalidRequest(f"{field}: {message}", field=field) from None
    raise InvalidRequest(
        f"{field} must be bytes, an https URL, a data: URI or an InputImage "
        f"(got {type(value).__name__})",
        field=field,
    )


def _data_uri(uri: str, field: str) -> bytes:
    header, _, payload = uri.partition(",")
    if not header.startswith("data:image/") or not header.endswith(";base64"):
        raise InvalidRequest(f"{field}: a data URI must be data:image/...;base64,", field=field)
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidRequest(f"{field}: the data URI holds invalid base64", field=field) from None


def input_images(value: Any) -> tuple[InputImage, ...]:
    """The ``images`` of a request: one input, or a list of them, checked one by one."""
    if isinstance(value, tuple | list):
        items = list(value)
    elif value is None:
        items = []
    else:
        items = [value]
    if len(items) > MAX_INPUT_IMAGES:
        raise InvalidRequest(
            f"images takes at most {MAX_INPUT_IMAGES} images (got {len(items)})", field="images"
        )
    return tuple(input_image(item, f"images[{i}]") for i, item in enumerate(items))
