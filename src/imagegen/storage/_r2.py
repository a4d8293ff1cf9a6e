"""Storage in a Cloudflare R2 bucket (or any S3-compatible store) through boto3.

This module holds :class:`R2Storage`, and the content addressing of its dedupe. Its
neighbours hold the rest: ``_r2_client`` the client factory, ``_r2_checks`` the
checks of its arguments, ``_s3`` how values travel over S3.

boto3 is an optional extra (``pip install 'imagegen-failover[r2]'``): nothing here imports
boto3 or botocore at module level, so ``import imagegen`` works without them. The
caller brings the client (``r2_client()`` builds one R2 accepts); every blocking
boto3 call runs in an anyio worker thread, bounded per event loop by a
``CapacityLimiter``, so the storage works on asyncio and on trio alike.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote

import anyio
import anyio.to_thread
from anyio.lowlevel import RunVar

from .._errors import InvalidConfig, StorageError
from ._base import StorageStats, StoredObject, check_key
from ._r2_checks import (
    check_base_url,
    check_cache_control,
    check_prefix,
    check_presign_expires,
    client_and_bucket,
)
from ._s3 import encode_metadata, is_missing

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client
    from mypy_boto3_s3.service_resource import Bucket
    from mypy_boto3_s3.type_defs import ListObjectsV2OutputTypeDef

__all__ = ["R2Storage"]

_T = TypeVar("_T")

DEFAULT_CACHE_CONTROL = "public, max-age=31536000, immutable"
# A content-addressed key keeps the original key's extension when it looks like one.
_EXTENSION = re.compile(r"[A-Za-z0-9]{1,10}")


class R2Storage:
    """Images in an R2 bucket, or any S3-compatible bucket, through boto3.

    Pass a boto3 ``Bucket`` resource, or ``client=`` (a boto3 S3 client) and
    ``bucket_name=``. Only the client is used, also when a ``Bucket`` is given: boto3
    clients are thread-safe, resources are not.

    **Keys.** ``put(key, ...)`` stores under ``key_prefix + key`` and returns that
    *final* key in :class:`StoredObject` (the generator records it). ``get``,
    ``delete`` and ``url_for`` take final keys, exactly as ``put`` returned them,
    and refuse keys outside ``key_prefix``, so this storage never reads or deletes
    objects other prefixes (other applications, other environments) own. With
    ``key_prefix=""`` the key given to ``put`` is the final key.

    **Dedupe.** With ``dedupe=True`` the final key is content-addressed:
    ``key_prefix + "sha256/" + <hex digest> + <the original key's extension>``.
    Identical bytes are stored once; a put whose object already exists skips the
    upload (one ``head_object``), and the first upload's Content-Type and metadata
    stay. Deleting such a key removes it for every generation that shares it.

    **Metadata.** Names are lowercased; names that are not header tokens
    (``[a-z0-9][a-z0-9._-]*``) are dropped with a warning. Values are sent as they
    are when printable ASCII without ``%``; otherwise ``%``, control characters and
    non-ASCII characters are percent-encoded as UTF-8 (``unquote`` restores them),
    because S3 metadata travels in HTTP headers, which must be ASCII.

    **URLs.** ``url_for`` is sync and touches no network: ``public_base_url`` joined
    with the percent-escaped key when set (an R2 custom domain or r2.dev URL serves
    the bucket's root, so the key includes ``key_prefix``); else a presigned GET
    valid for ``presign_expires`` seconds when set (the record keeps the URL, so it
    expires with it); else the endpoint's path-style URL, which only works when the
    bucket is readable anonymously there (R2's S3 endpoint never is: use
    ``public_base_url`` or ``presign_expires`` with R2).

    Args:
        bucket: A boto3 ``s3.Bucket`` resource.
        client: A boto3 S3 client (see :func:`r2_client`), with ``bucket_name``.
        bucket_name: The bucket's name, with ``client``.
        public_base_url: ``http(s)`` URL that serves the bucket's root.
        key_prefix: Prepended to every key; ``""`` or ending in ``/``.
        cache_control: The ``Cache-Control`` of every object; None sends none.
            The default suits immutable, uniquely named images on a CDN.
        presign_expires: Seconds a presigned GET URL stays valid (1 to 604800).
        dedupe: Content-addressed keys: identical bytes stored once.
        max_workers: At most this many boto3 calls at once, per event loop. Keep the
            client's ``max_pool_connections`` at least this large.

    Raises:
        InvalidConfig: An argument broke a rule; ``field`` names it.
    """

    def __init__(
        self,
        bucket: Bucket | None = None,
        *,
        client: S3Client | None = None,
        bucket_name: str | None = None,
        public_base_url: str | None = None,
        key_prefix: str = "images/",
        cache_control: str | None = DEFAULT_CACHE_CONTROL,
        presign_expires: int | None = None,
        dedupe: bool = False,
        max_workers: int = 8,
    ) -> None:
        self.client, self.bucket_name = client_and_bucket(bucket, client, bucket_name)
        self.public_base_url = check_base_url(public_base_url)
        self.key_prefix = check_prefix(key_prefix)
        self.cache_control = check_cache_control(cache_control)
        self.presign_expires = check_presign_expires(presign_expires)
        if not isinstance(dedupe, bool):
            raise InvalidConfig("dedupe must be True or False", field="dedupe")
        self.dedupe = dedupe
        if isinstance(max_workers, bool) or not isinstance(max_workers, int) or max_workers < 1:
            raise InvalidConfig("max_workers must be an int >= 1", field="max_workers")
        self.max_workers = max_workers
        # One limiter per event loop: an anyio CapacityLimiter belongs to the backend
        # (asyncio or trio) it is first used on, and one storage may outlive a loop
        # (a CLI that calls anyio.run twice, a test suite running both backends).
        self._limiter: RunVar[anyio.CapacityLimiter] = RunVar(f"imagegen.R2Storage.{id(self)}")
        # list_objects_v2 page size for stats(); 1000 is S3's maximum. Tests lower it.
        self._page_size = 1000

    # -- the Storage protocol ----------------------------------------------------------

    async def put(
        self,
        key: str,
        data: bytes,
        *,
        content_type: str,
        metadata: Mapping[str, str],
    ) -> StoredObject:
        """Upload ``data`` under ``key_prefix + key`` (or its content address).

        S3 writes are atomic: the object holds all of the bytes or does not change.

        Returns:
            The final key (what ``get``/``delete``/``url_for`` take), its URL, the size.

        Raises:
            StorageError: A bad key, or the upload failed (no credentials in the message).
        """
        check_key(key)
        body = bytes(data)
        headers = encode_metadata(metadata)
        final = await self._call("put", key, self._put_sync, key, body, content_type, headers)
        return StoredObject(key=final, url=self.url_for(final), size=len(body))

    async def get(self, key: str) -> bytes | None:
        """The bytes under the final ``key``, or None when there is no such object."""
        self._check_final(key)
        return await self._call("get", key, self._get_sync, key)

    async def delete(self, key: str) -> None:
        """Remove the final ``key``; an absent key is fine (S3 deletes are idempotent)."""
        self._check_final(key)
        await self._call(
            "delete",
            key,
            lambda: self.client.delete_object(Bucket=self.bucket_name, Key=key),
        )

    def url_for(self, key: str) -> str:
        """The URL of the final ``key``: public, presigned or path-style (see the class)."""
        self._check_final(key)
        if self.public_base_url is not None:
            return self.public_base_url + quote(key)
        if self.presign_expires is not None:
            try:
                # Signing is local computation: no request leaves the process.
                return self.client.generate_presigned_url(
                    "get_object",
                    Params={"Bucket": self.bucket_name, "Key": key},
                    ExpiresIn=self.presign_expires,
                )
            except Exception as exc:
                error = self._storage_error("presign", key, exc)
                if error is None:
                    raise
                raise error from exc
        endpoint = self.client.meta.endpoint_url.rstrip("/")
        return f"{endpoint}/{quote(self.bucket_name, safe='')}/{quote(key)}"

    async def stats(self) -> StorageStats:
        """Count the objects and bytes under ``key_prefix``.

        One list_objects_v2 request (in a worker thread) per 1,000 keys: it costs a
        listing of the whole prefix, so call it for dashboards, not per request.
        """
        objects = size = 0
        token: str | None = None
        while True:
            page = await self._call("stats", self.key_prefix, self._list_page_sync, token)
            for item in page.get("Contents", ()):
                objects += 1
                size += int(item.get("Size", 0))
            token = page.get("NextContinuationToken")
            if not page.get("IsTruncated") or not token:
                return StorageStats(objects=objects, bytes=size)

    def __repr__(self) -> str:
        return f"R2Storage(bucket_name={self.bucket_name!r}, key_prefix={self.key_prefix!r})"

    # -- blocking halves, run in worker threads -------------------------------------------

    def _put_sync(self, key: str, body: bytes, content_type: str, metadata: dict[str, str]) -> str:
        if self.dedupe:
            # Hashing a large image takes milliseconds: done here, off the event loop.
            final = f"{self.key_prefix}sha256/{hashlib.sha256(body).hexdigest()}{_extension(key)}"
            if self._exists_sync(final):
                return final
        else:
            final = self.key_prefix + key
        extra: dict[str, Any] = {}
        if self.cache_control is not None:
            extra["CacheControl"] = self.cache_control
        # No ContentMD5/ChecksumSHA256 of our own: botocore's checksum setting applies
        # (r2_client() sets "when_required", see there), and TLS guards the transfer.
        self.client.put_object(
            Bucket=self.bucket_name,
            Key=final,
            Body=body,
            ContentType=content_type,
            Metadata=metadata,
            **extra,
        )
        return final

    def _exists_sync(self, key: str) -> bool:
        from botocore.exceptions import ClientError  # noqa: PLC0415 - boto3 is optional

        try:
            self.client.head_object(Bucket=self.bucket_name, Key=key)
        except ClientError as exc:
            if is_missing(exc):
                return False
            raise
        return True

    def _get_sync(self, key: str) -> bytes | None:
        from botocore.exceptions import ClientError  # noqa: PLC0415 - boto3 is optional

        try:
            response = self.client.get_object(Bucket=self.bucket_name, Key=key)
        except ClientError as exc:
            if is_missing(exc):
                return None
            raise
        with response["Body"] as body:
            return body.read()

    def _list_page_sync(self, token: str | None) -> ListObjectsV2OutputTypeDef:
        if token is None:
            return self.client.list_objects_v2(
                Bucket=self.bucket_name, Prefix=self.key_prefix, MaxKeys=self._page_size
            )
        return self.client.list_objects_v2(
            Bucket=self.bucket_name,
            Prefix=self.key_prefix,
            MaxKeys=self._page_size,
            ContinuationToken=token,
        )

    # -- helpers -------------------------------------------------------------------------

    def _check_final(self, key: str) -> None:
        check_key(key)
        if not key.startswith(self.key_prefix):
            raise StorageError(
                f"storage key {key!r} is outside key_prefix {self.key_prefix!r}: get, delete "
                "and url_for take the final keys put returned"
            )

    async def _call(self, op: str, key: str, func: Callable[..., _T], *args: Any) -> _T:
        """Run one blocking boto3 call in a bounded worker thread; map its errors."""
        limiter = self._limiter.get(None)
        if limiter is None:
            limiter = anyio.CapacityLimiter(self.max_workers)
            self._limiter.set(limiter)
        try:
            return await anyio.to_thread.run_sync(func, *args, limiter=limiter)
        except Exception as exc:
            error = self._storage_error(op, key, exc)
            if error is None:
                raise
            raise error from exc

    def _storage_error(self, op: str, key: str, exc: Exception) -> StorageError | None:
        """A StorageError for botocore's errors; None for anything else (a bug: re-raised).

        The message is built from structured fields (error code, HTTP status, the
        server's message, the exception type), never from the request or the client,
        so no credential can end up in it.
        """
        from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415

        where = f"R2Storage {op} {key!r} in bucket {self.bucket_name!r} failed"
        if isinstance(exc, ClientError):
            error = exc.response.get("Error", {})
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            code = error.get("Code", "unknown")
            message = error.get("Message", "")
            detail = f"{code} (HTTP {status})" + (f": {message}" if message else "")
            return StorageError(f"{where}: {detail}")
        if isinstance(exc, BotoCoreError):
            return StorageError(f"{where}: {type(exc).__name__}: {exc}")
        return None


def _extension(key: str) -> str:
    """The key's extension ('.png'), lowercased, or '' when it has none that looks sane."""
    name = key.rsplit("/", 1)[-1]
    stem, dot, ext = name.rpartition(".")
    return f".{ext.lower()}" if dot and stem and _EXTENSION.fullmatch(ext) else ""
