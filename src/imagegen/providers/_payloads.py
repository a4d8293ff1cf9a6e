"""Small readers of what vendors send and what users configure, shared by every vendor module.

Each of these used to live, slightly differently, in two or three vendor modules;
a vendor keeps only its own word lists and messages.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote, unquote_plus, urlencode, urlsplit, urlunsplit

import httpx

from .._errors import InvalidConfig, ProviderError
from .._inputs import InputImage
from .._request import ImageRequest

__all__ = [
    "FLUX_UNSUPPORTED",
    "SAFETY_WORDS",
    "EditFields",
    "as_int",
    "checked_url",
    "data_uri",
    "decode_base64",
    "decode_data_uri",
    "edit_capability",
    "edit_inputs",
    "error_message",
    "first_mentioned",
    "is_http_url",
    "is_number",
    "json_or_none",
    "mentions",
    "same_origin",
    "with_params",
]

#: What FLUX models (Replicate's and fal's defaults) cannot take: ``Provider.unsupported``.
FLUX_UNSUPPORTED: Mapping[str, str] = {
    "negative_prompt": "not sent: FLUX takes none (pass it in provider_options if your model does)",
}
#: Words that mark a safety refusal in an error body (the generic 400/422 check).
SAFETY_WORDS = ("content_policy", "nsfw", "safety", "moderation_blocked")


def is_number(value: object) -> bool:
    """A finite int or float, and not a bool (``True`` is an int to Python, not a setting)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def as_int(value: object) -> int | None:
    """``value`` when it is an int (not a bool), else None: for sizes and seeds in answers."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def mentions(value: object, words: Iterable[str]) -> bool:
    """Whether ``value`` (text, or any JSON value) contains one of ``words``, ignoring case."""
    if value is None:
        return False
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    lowered = text.lower()
    return any(word in lowered for word in words)


#: A model's edit inputs: the field taking the input image, and the mask's (or None).
EditFields = tuple[str, str | None]


def data_uri(image: InputImage) -> str:
    """An input image (bytes by now) as a ``data:`` URI, as vendors take small files."""
    assert image.data is not None  # noqa: S101 - fetched before any provider is called
    encoded = base64.b64encode(image.data).decode()
    return f"data:{image.content_type};base64,{encoded}"


def edit_capability(fields: EditFields | None) -> tuple[int, bool]:
    """``(input_images, masks)`` for a model whose edit inputs are ``fields`` (None: none)."""
    return (0, False) if fields is None else (1, fields[1] is not None)


def edit_inputs(fields: EditFields | None, request: ImageRequest) -> dict[str, str]:
    """The model's input fields for the request's input image and mask, as data URIs."""
    if fields is None or not request.images:
        return {}
    image_field, mask_field = fields
    found = {image_field: data_uri(request.images[0])}
    if mask_field is not None and request.mask is not None:
        found[mask_field] = data_uri(request.mask)
    return found


def first_mentioned(value: object, words: Iterable[str]) -> str | None:
    """The first of ``words`` that ``value`` (text or JSON) contains, ignoring case."""
    return next((word for word in words if mentions(value, (word,))), None)


def json_or_none(body: bytes | str) -> Any:
    """``body`` parsed as JSON, or None when it is not JSON (a webhook body, an error body)."""
    try:
        return json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None


def decode_base64(text: str) -> bytes | None:
    """Strict base64 (no stray characters), or None when ``text`` is not valid base64."""
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None


def decode_data_uri(uri: str, *, provider: str) -> bytes:
    """The bytes of a base64 ``data:`` URI, as vendors inline small outputs.

    Raises:
        ProviderError: Not base64, or invalid base64 (not retryable: the work is done
            and billed, and asking again would pay twice).
    """
    header, _, payload = uri.partition(",")
    if not header.endswith(";base64"):
        raise ProviderError(
            f"{provider}'s data URI is not base64", provider=provider, retryable=False
        )
    data = decode_base64(payload)
    if data is None:
        raise ProviderError(
            f"{provider}'s data URI holds invalid base64", provider=provider, retryable=False
        )
    return data


def is_http_url(value: object, *, schemes: tuple[str, ...] = ("https", "http")) -> bool:
    """Whether ``value`` is a URL string with one of ``schemes`` and a host."""
    if not isinstance(value, str):
        return False
    parts = urlsplit(value)
    return parts.scheme in schemes and bool(parts.netloc)


def checked_url(value: object, field: str, provider: str) -> str:
    """A configured http(s) URL without its trailing slash.

    Raises:
        InvalidConfig: ``value`` is not an http(s) URL; ``field`` names the argument.
    """
    if not is_http_url(value):
        raise InvalidConfig(
            f"{provider}: {field} must be an http(s) URL (got {value!r})", field=field
        )
    assert isinstance(value, str)  # noqa: S101 - narrowing for the type checker
    return value.rstrip("/")


def same_origin(url: object, base: str) -> str | None:
    """``url`` when it is on ``base``'s scheme and host, else None.

    Vendors answer with URLs to follow (a status URL, a result URL); only those on the
    host the provider was configured with may receive its key.
    """
    if not isinstance(url, str):
        return None
    ours, theirs = urlsplit(base), urlsplit(url)
    return url if (theirs.scheme, theirs.netloc) == (ours.scheme, ours.netloc) else None


def with_params(url: str, params: Mapping[str, str]) -> str:
    """``url`` with ``params`` set in its query string.

    The existing parameters keep their order and their exact encoding; those named
    in ``params`` are replaced, not duplicated.
    """
    parts = urlsplit(url)
    kept = [
        pair
        for pair in parts.query.split("&")
        if pair and unquote_plus(pair.partition("=")[0]) not in params
    ]
    kept.append(urlencode(params, quote_via=quote))
    return urlunsplit(parts._replace(query="&".join(kept)))


def error_message(body: Any, response: httpx.Response) -> str:
    """The most useful text in a vendor's error body, in any of the shapes vendors use."""
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and error.get("message"):  # OpenAI
            return str(error["message"])
        detail = body.get("detail")
        if isinstance(detail, list):  # fal / FastAPI validation errors
            return "; ".join(
                f"{'.'.join(map(str, d.get('loc', ())))}: {d.get('msg', '')}".strip(": ")
                if isinstance(d, dict)
                else str(d)
                for d in detail
            )
        if detail:  # Replicate problem details, fal infrastructure errors
            title = body.get("title")
            return f"{title}: {detail}" if title else str(detail)
        errors = body.get("errors")
        if isinstance(errors, list) and errors:  # Unsplash
            return "; ".join(map(str, errors))
        if isinstance(error, str):
            return error
        if body.get("title"):
            return str(body["title"])
    text = response.text.strip() if response.content else ""
    return text[:200] or response.reason_phrase or "no details"
