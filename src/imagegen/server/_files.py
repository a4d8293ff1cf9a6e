"""``GET /files/{key}``: the stored images themselves, for storage without a web server.

``LocalStorage`` without a ``base_url`` hands out ``file://`` URLs, which no HTTP
client can follow; ``imagegen serve`` points the storage's ``base_url`` at this route
instead. Keys are unique per generation and an object is never rewritten, so answers
may be cached for a year (``immutable``) and the ETag is the key's own hash: no
hashing of image bytes per request. Keys the storage would refuse (``..``, dot-files
such as LocalStorage's temporary files) and missing objects answer 404 alike.
"""

from __future__ import annotations

import hashlib
import mimetypes
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response

from .. import StorageError
from ..storage import check_key
from ._problems import Problem, backend_call

if TYPE_CHECKING:
    from .. import ImageGenerator

__all__ = ["CACHE_CONTROL", "stored_file"]

#: An object under a key never changes: caches may keep it a year without asking again.
CACHE_CONTROL = "public, max-age=31536000, immutable"


def _etag(key: str) -> str:
    return '"' + hashlib.sha256(key.encode()).hexdigest()[:32] + '"'


def _matches(header: str | None, etag: str) -> bool:
    """Whether an ``If-None-Match`` value names ``etag`` (or is ``*``)."""
    if not header:
        return False
    tags = {tag.strip().removeprefix("W/") for tag in header.split(",")}
    return "*" in tags or etag in tags


async def stored_file(generator: ImageGenerator, request: Request) -> Response:
    """The object stored under the path's key, with caching headers; 304 when the
    client's copy is current, 404 when there is none."""
    key = request.path_params["key"]
    storage = generator.storage
    try:
        check_key(key)
    except StorageError:
        storage = None  # a key no object can have
    if storage is None:
        raise Problem(404, "no stored image has this key")
    etag = _etag(key)
    headers = {
        "Cache-Control": CACHE_CONTROL,
        "ETag": etag,
        "X-Content-Type-Options": "nosniff",
    }
    # The object may have been taken back (a generation cancelled after storing): look
    # before answering 304, so a deleted image is not vouched for.
    data = await backend_call(storage.get(key), "the storage")
    if data is None:
        raise Problem(404, "no stored image has this key")
    if _matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    media_type = mimetypes.guess_type(key)[0] or "application/octet-stream"
    return Response(data, media_type=media_type, headers=headers)
