"""The checks of :class:`~imagegen.storage.R2Storage`'s arguments.

Each returns the value it accepts (``public_base_url`` ending in ``/``) or raises
:class:`~imagegen.InvalidConfig` naming the argument.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from .._errors import InvalidConfig, StorageError
from ._base import check_key

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client
    from mypy_boto3_s3.service_resource import Bucket

__all__ = [
    "check_base_url",
    "check_cache_control",
    "check_prefix",
    "check_presign_expires",
    "client_and_bucket",
]

# SigV4 presigned URLs are valid for at most seven days.
_MAX_PRESIGN_EXPIRES = 7 * 24 * 3600
# Bucket names differ between S3 (3-63 of a-z 0-9 . -), R2 and older S3-compatible
# servers; refuse only what can never be a bucket name in a URL path.
_BUCKET_NAME = re.compile(r"[A-Za-z0-9._-]{1,255}")


def client_and_bucket(
    bucket: Bucket | None, client: S3Client | None, bucket_name: str | None
) -> tuple[S3Client, str]:
    if bucket is not None:
        if client is not None or bucket_name is not None:
            raise InvalidConfig(
                "pass either a boto3 Bucket or client= and bucket_name=, not both",
                field="bucket",
            )
        meta = getattr(bucket, "meta", None)
        client = getattr(meta, "client", None)
        bucket_name = getattr(bucket, "name", None)
        if client is None or not isinstance(bucket_name, str):
            raise InvalidConfig("bucket must be a boto3 s3.Bucket resource", field="bucket")
    elif client is None:
        raise InvalidConfig(
            "R2Storage needs a boto3 Bucket, or client= and bucket_name=", field="client"
        )
    if not callable(getattr(client, "put_object", None)):
        raise InvalidConfig("client must be a boto3 S3 client", field="client")
    if not isinstance(bucket_name, str) or not _BUCKET_NAME.fullmatch(bucket_name):
        raise InvalidConfig(
            "bucket_name must be the bucket's name (letters, digits, '.', '_', '-')",
            field="bucket_name",
        )
    return client, bucket_name


def check_base_url(url: str | None) -> str | None:
    if url is None:
        return None
    parts = urlsplit(url) if isinstance(url, str) else None
    if (
        parts is None
        or parts.scheme not in {"http", "https"}
        or not parts.hostname
        or parts.query
        or parts.fragment
    ):
        raise InvalidConfig(
            "public_base_url must be an http(s) URL without query or fragment, "
            "e.g. https://images.example.com",
            field="public_base_url",
        )
    return url.rstrip("/") + "/"


def check_prefix(prefix: str) -> str:
    if not isinstance(prefix, str):
        raise InvalidConfig("key_prefix must be a string", field="key_prefix")
    if prefix:
        try:
            ok = prefix.endswith("/") and bool(check_key(prefix[:-1]))
        except StorageError:
            ok = False
        if not ok:
            raise InvalidConfig(
                "key_prefix must be '' or relative names ending in '/', e.g. 'images/'",
                field="key_prefix",
            )
    return prefix


def check_cache_control(value: str | None) -> str | None:
    if value is not None and (
        not isinstance(value, str) or not value or not all(" " <= c <= "~" for c in value)
    ):
        raise InvalidConfig(
            "cache_control must be None or a non-empty printable ASCII header value",
            field="cache_control",
        )
    return value


def check_presign_expires(value: int | None) -> int | None:
    if value is not None and (
        isinstance(value, bool)
        or not isinstance(value, int)
        or not 1 <= value <= _MAX_PRESIGN_EXPIRES
    ):
        raise InvalidConfig(
            f"presign_expires must be None or whole seconds from 1 to {_MAX_PRESIGN_EXPIRES}",
            field="presign_expires",
        )
    return value
