"""R2Storage through boto3 over real HTTP, against moto's S3 server on 127.0.0.1.

By default a session fixture starts moto's ThreadedMotoServer on 127.0.0.1 (a free
port) and stops it at the end. To run this module against another S3-compatible
endpoint (a Ceph RadosGW, which checks signatures where moto does not; see
../shared/tooling.md), set IMAGEGEN_S3_ENDPOINT, IMAGEGEN_S3_ACCESS_KEY and
IMAGEGEN_S3_SECRET_KEY; each test then makes (and removes) its own bucket there.

Buckets are created with a us-east-1 client (moto refuses region "auto" in
CreateBucket, RGW refuses LocationConstraint "auto"); everything else uses "auto",
as with R2.
"""

from __future__ import annotations

import functools
import hashlib
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

import anyio
import boto3
import httpx
import pytest
from botocore.config import Config

import imagegen
from imagegen import ImageGenerator, InvalidConfig, Retry, StorageError, StorageStats
from imagegen.storage._r2 import R2Storage, _extension
from imagegen.storage._r2_client import r2_client
from imagegen.testing import EventRecorder, instant, tiny_png

from . import test_storage as contract

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client

ACCOUNT_ID = "0123456789abcdef0123456789abcdef"
SECRET = "s3cr3t-never-in-messages-0123456789"
META = {"generation-id": "gen-1", "provider": "a", "prompt-sha256": "ab" * 32}
# Placeholders in parameters, replaced by the fixtures' client and a Bucket resource.
CLIENT = object()
BUCKET = object()


@functools.cache
def session() -> boto3.session.Session:
    """One boto3 session for the module: it loads the S3 model once, so clients come fast."""
    return boto3.session.Session()


@dataclass(frozen=True)
class Endpoint:
    """An S3 endpoint and the keys to use with it."""

    url: str
    access_key: str
    secret_key: str

    def client(self, region: str = "auto", **config: Any) -> S3Client:
        """A new client for this endpoint."""
        return session().client(
            "s3",
            endpoint_url=self.url,
            region_name=region,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            config=Config(signature_version="s3v4", **config),
        )


@pytest.fixture(scope="session")
def s3() -> Iterator[Endpoint]:
    """The S3 endpoint: IMAGEGEN_S3_ENDPOINT when set, else moto's server on 127.0.0.1."""
    url = os.environ.get("IMAGEGEN_S3_ENDPOINT")
    if url:
        yield Endpoint(
            url=url.rstrip("/"),
            access_key=os.environ["IMAGEGEN_S3_ACCESS_KEY"],
            secret_key=os.environ["IMAGEGEN_S3_SECRET_KEY"],
        )
        return
    from moto.server import ThreadedMotoServer  # noqa: PLC0415 - only without an endpoint

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        # moto checks no signatures, so any keys do.
        yield Endpoint(url=f"http://{host}:{port}", access_key="testing", secret_key="testing")
    finally:
        server.stop()


@pytest.fixture
def bucket(s3: Endpoint) -> Iterator[str]:
    """A new, empty bucket with a unique name; emptied and removed afterwards."""
    name = f"imagegen-test-{uuid.uuid4().hex[:16]}"
    admin = s3.client(region="us-east-1")
    admin.create_bucket(Bucket=name)
    yield name
    for page in admin.get_paginator("list_objects_v2").paginate(Bucket=name):
        for item in page.get("Contents", []):
            admin.delete_object(Bucket=name, Key=item["Key"])
    admin.delete_bucket(Bucket=name)


@pytest.fixture
def client(s3: Endpoint) -> S3Client:
    """An S3 client on the endpoint with region "auto", as an R2 user would have."""
    return s3.client()


@pytest.fixture
def storage(client: S3Client, bucket: str) -> R2Storage:
    """An R2Storage with key_prefix="" (what the shared contract suite expects)."""
    return R2Storage(client=client, bucket_name=bucket, key_prefix="")


@pytest.fixture
def images(client: S3Client, bucket: str) -> R2Storage:
    """An R2Storage with the default key_prefix, "images/"."""
    return R2Storage(client=client, bucket_name=bucket)


def keys_in(client: S3Client, bucket: str) -> list[str]:
    """Every key in the bucket, sorted."""
    response = client.list_objects_v2(Bucket=bucket)
    return sorted(item["Key"] for item in response.get("Contents", []))


def count_calls(client: S3Client, operation: str) -> list[str]:
    """A list that grows by one entry per ``operation`` call the client makes."""
    calls: list[str] = []
    client.meta.events.register(
        f"before-call.s3.{operation}", lambda **_kwargs: calls.append(operation)
    )
    return calls


class TestR2Contract(contract.TestContract):
    """The shared Storage contract suite (tests/storage/test_storage.py) on R2Storage."""

    pytestmark = pytest.mark.anyio


class TestPutHeaders:
    @pytest.mark.anyio
    async def test_content_type_cache_control_and_metadata_are_set(
        self, images: R2Storage, client: S3Client, bucket: str
    ) -> None:
        """head_object shows the Content-Type, the default Cache-Control and the metadata."""
        stored = await images.put(
            "2026/01/01/x.webp", b"RIFF....WEBP", content_type="image/webp", metadata=META
        )
        head = client.head_object(Bucket=bucket, Key=stored.key)
        assert head["ContentType"] == "image/webp"
        assert head["CacheControl"] == "public, max-age=31536000, immutable"
        assert head["Metadata"] == META
        assert head["ContentLength"] == stored.size == 12

    @pytest.mark.anyio
    async def test_custom_and_absent_cache_control(self, client: S3Client, bucket: str) -> None:
        """cache_control= replaces the header; None sends none."""
        custom = R2Storage(client=client, bucket_name=bucket, cache_control="no-store")
        bare = R2Storage(client=client, bucket_name=bucket, cache_control=None)
        a = await custom.put("a.png", b"a", content_type="image/png", metadata={})
        b = await bare.put("b.png", b"b", content_type="image/png", metadata={})
        assert client.head_object(Bucket=bucket, Key=a.key)["CacheControl"] == "no-store"
        assert "CacheControl" not in client.head_object(Bucket=bucket, Key=b.key)

    @pytest.mark.anyio
    async def test_non_ascii_values_are_percent_encoded(
        self, images: R2Storage, client: S3Client, bucket: str
    ) -> None:
        """Non-ASCII, '%' and control characters are percent-encoded; unquote restores them."""
        metadata = {"title": "café 100%\tüber", "plain": "a-b_c.d e/f"}
        stored = await images.put("m.png", b"x", content_type="image/png", metadata=metadata)
        sent = client.head_object(Bucket=bucket, Key=stored.key)["Metadata"]
        assert sent == {"title": "caf%C3%A9 100%25%09%C3%BCber", "plain": "a-b_c.d e/f"}
        assert {k: unquote(v) for k, v in sent.items()} == metadata

    @pytest.mark.anyio
    async def test_names_are_lowercased_and_bad_names_dropped(
        self, images: R2Storage, client: S3Client, bucket: str, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Names are lowercased; a name that is no header token is dropped with a warning."""
        stored = await images.put(
            "n.png",
            b"x",
            content_type="image/png",
            metadata={"Mixed-Case": "y", "bad name": "x", "naïve": "z"},
        )
        assert client.head_object(Bucket=bucket, Key=stored.key)["Metadata"] == {"mixed-case": "y"}
        assert "'bad name'" in caplog.text
        assert "'naïve'" in caplog.text


class TestKeys:
    @pytest.mark.anyio
    async def test_final_key_is_under_key_prefix(
        self, images: R2Storage, client: S3Client, bucket: str
    ) -> None:
        """put stores under key_prefix + key and returns that final key."""
        stored = await images.put(
            "2026/01/01/abc.png", tiny_png(), content_type="image/png", metadata=META
        )
        assert stored.key == "images/2026/01/01/abc.png"
        assert keys_in(client, bucket) == ["images/2026/01/01/abc.png"]

    @pytest.mark.anyio
    async def test_get_delete_and_url_for_take_final_keys(self, images: R2Storage) -> None:
        """get/delete/url_for take the key put returned and refuse keys outside key_prefix."""
        stored = await images.put("d/k.png", b"bytes", content_type="image/png", metadata=META)
        assert await images.get(stored.key) == b"bytes"
        for outside in ("d/k.png", "other/d/k.png"):
            with pytest.raises(StorageError, match="outside key_prefix"):
                await images.get(outside)
            with pytest.raises(StorageError, match="outside key_prefix"):
                await images.delete(outside)
            with pytest.raises(StorageError, match="outside key_prefix"):
                images.url_for(outside)
        await images.delete(stored.key)
        assert await images.get(stored.key) is None

    @pytest.mark.anyio
    async def test_stats_counts_only_key_prefix(
        self, images: R2Storage, client: S3Client, bucket: str
    ) -> None:
        """Objects outside key_prefix (another app's, another environment's) are not counted."""
        client.put_object(Bucket=bucket, Key="other/x.png", Body=b"0123456789")
        client.put_object(Bucket=bucket, Key="imagesX/y.png", Body=b"0123456789")
        await images.put("a.png", b"abc", content_type="image/png", metadata=META)
        assert await images.stats() == StorageStats(objects=1, bytes=3)


class TestDedupe:
    @pytest.mark.anyio
    async def test_identical_bytes_are_stored_once(self, client: S3Client, bucket: str) -> None:
        """Two puts of the same bytes give one object, one key and one upload."""
        storage = R2Storage(client=client, bucket_name=bucket, dedupe=True)
        uploads = count_calls(client, "PutObject")
        data = tiny_png()
        first = await storage.put("2026/01/01/a.png", data, content_type="image/png", metadata=META)
        second = await storage.put("2026/01/02/b.png", data, content_type="image/png", metadata={})
        expected = f"images/sha256/{hashlib.sha256(data).hexdigest()}.png"
        assert first == second
        assert first.key == expected
        assert first.size == len(data)
        assert keys_in(client, bucket) == [expected]
        assert len(uploads) == 1
        # The first upload's metadata stays.
        assert client.head_object(Bucket=bucket, Key=expected)["Metadata"] == META
        assert await storage.get(first.key) == data

    @pytest.mark.anyio
    async def test_different_bytes_get_different_keys(self, client: S3Client, bucket: str) -> None:
        """Different bytes are different objects; stats counts each once."""
        storage = R2Storage(client=client, bucket_name=bucket, dedupe=True)
        a, b = tiny_png(1, 2, 3), tiny_png(4, 5, 6)
        for key, data in [("1.png", a), ("2.png", b), ("3.png", a), ("4.png", b)]:
            await storage.put(key, data, content_type="image/png", metadata=META)
        assert len(keys_in(client, bucket)) == 2
        assert await storage.stats() == StorageStats(objects=2, bytes=len(a) + len(b))

    @pytest.mark.anyio
    async def test_concurrent_identical_puts_leave_one_object(
        self, client: S3Client, bucket: str
    ) -> None:
        """Racing puts of the same bytes all return the same key, and one object exists."""
        storage = R2Storage(client=client, bucket_name=bucket, dedupe=True, max_workers=4)
        results: list[str] = []

        async def put(n: int) -> None:
            stored = await storage.put(
                f"k{n}.png", b"same bytes", content_type="image/png", metadata=META
            )
            results.append(stored.key)

        async with anyio.create_task_group() as tg:
            for n in range(10):
                tg.start_soon(put, n)
        assert len(set(results)) == 1
        assert keys_in(client, bucket) == results[:1]

    @pytest.mark.parametrize(
        ("key", "extension"),
        [
            ("2026/01/01/id.png", ".png"),
            ("x.JPEG", ".jpeg"),
            ("a.tar.gz", ".gz"),
            ("no-extension", ""),
            ("dir.d/no-extension", ""),
            ("odd.p?g", ""),
            ("x.abcdefghijk", ""),
        ],
    )
    def test_extension_kept_only_when_sane(self, key: str, extension: str) -> None:
        """The content address keeps a short alphanumeric extension, lowercased."""
        assert _extension(key) == extension


class TestUrls:
    @pytest.mark.parametrize(
        "base_url", ["https://cdn.example.com/img", "https://cdn.example.com/img/"]
    )
    @pytest.mark.parametrize(
        ("key", "expected"),
        [
            ("2026/a b.png", "2026/a%20b.png"),
            ("x#y?.png", "x%23y%3F.png"),
            ("100%.png", "100%25.png"),
            ("é.png", "%C3%A9.png"),
            ("a/b/c.png", "a/b/c.png"),
        ],
    )
    def test_public_base_url_joins_and_escapes(
        self, client: S3Client, bucket: str, base_url: str, key: str, expected: str
    ) -> None:
        """public_base_url is joined with one '/' and the percent-escaped key, slashes kept."""
        storage = R2Storage(
            client=client, bucket_name=bucket, public_base_url=base_url, key_prefix=""
        )
        assert storage.url_for(key) == f"https://cdn.example.com/img/{expected}"

    @pytest.mark.anyio
    async def test_public_url_includes_key_prefix(self, client: S3Client, bucket: str) -> None:
        """The public URL names the whole object key, key_prefix included (a domain serves the
        bucket's root)."""
        storage = R2Storage(
            client=client, bucket_name=bucket, public_base_url="https://img.example.com"
        )
        stored = await storage.put("2026/a b.png", b"x", content_type="image/png", metadata={})
        assert stored.url == "https://img.example.com/images/2026/a%20b.png"

    @pytest.mark.anyio
    async def test_presigned_url_fetches_the_bytes(self, client: S3Client, bucket: str) -> None:
        """With presign_expires the URL is a presigned GET that answers 200 with the bytes."""
        storage = R2Storage(client=client, bucket_name=bucket, presign_expires=120)
        data = tiny_png()
        stored = await storage.put("2026/a b.png", data, content_type="image/png", metadata=META)
        assert stored.url is not None
        assert "X-Amz-Signature=" in stored.url
        assert "X-Amz-Expires=120" in stored.url
        async with httpx.AsyncClient() as http:
            response = await http.get(stored.url)
        assert response.status_code == 200
        assert response.content == data
        assert response.headers["content-type"] == "image/png"

    @pytest.mark.anyio
    async def test_path_style_url_by_default(
        self, images: R2Storage, s3: Endpoint, bucket: str
    ) -> None:
        """Without public_base_url or presign_expires the URL is {endpoint}/{bucket}/{key}."""
        stored = await images.put("2026/a b.png", b"x", content_type="image/png", metadata={})
        assert stored.url == f"{s3.url}/{bucket}/images/2026/a%20b.png"
        assert images.url_for(stored.key) == stored.url

    def test_public_base_url_wins_over_presigning(self, client: S3Client, bucket: str) -> None:
        """public_base_url is preferred: a CDN URL never expires."""
        storage = R2Storage(
            client=client,
            bucket_name=bucket,
            public_base_url="https://img.example.com/",
            presign_expires=60,
        )
        assert storage.url_for("images/a.png") == "https://img.example.com/images/a.png"


class TestStats:
    @pytest.mark.anyio
    async def test_stats_pages_through_the_listing(
        self, images: R2Storage, client: S3Client
    ) -> None:
        """stats follows ContinuationToken across pages and counts every object and byte."""
        images._page_size = 2
        listings = count_calls(client, "ListObjectsV2")
        for n in range(5):
            await images.put(f"p/{n}.png", b"x" * (n + 1), content_type="image/png", metadata={})
        assert await images.stats() == StorageStats(objects=5, bytes=1 + 2 + 3 + 4 + 5)
        assert len(listings) == 3


class TestErrors:
    def unreachable(self, **kwargs: Any) -> R2Storage:
        """An R2Storage whose endpoint is a closed port on 127.0.0.1."""
        client = session().client(
            "s3",
            endpoint_url="http://127.0.0.1:1",
            region_name="auto",
            aws_access_key_id="AKIDEXAMPLE",
            aws_secret_access_key=SECRET,
            config=Config(
                signature_version="s3v4",
                retries={"max_attempts": 1, "mode": "standard"},
                connect_timeout=2,
                read_timeout=2,
            ),
        )
        return R2Storage(client=client, bucket_name="some-bucket", **kwargs)

    @pytest.mark.anyio
    async def test_failed_upload_is_a_storage_error_without_secrets(self) -> None:
        """An unreachable endpoint makes put raise StorageError; no secret in any message."""
        storage = self.unreachable()
        with pytest.raises(StorageError) as info:
            await storage.put("a.png", b"x", content_type="image/png", metadata=META)
        message = str(info.value)
        assert "put 'a.png'" in message
        assert "some-bucket" in message
        assert "EndpointConnectionError" in message
        assert SECRET not in message
        assert SECRET not in repr(info.value.__cause__)

    @pytest.mark.anyio
    async def test_every_operation_maps_connection_errors(self) -> None:
        """get, delete and stats raise StorageError too when the endpoint is unreachable."""
        storage = self.unreachable()
        with pytest.raises(StorageError, match="get"):
            await storage.get("images/a.png")
        with pytest.raises(StorageError, match="delete"):
            await storage.delete("images/a.png")
        with pytest.raises(StorageError, match="stats"):
            await storage.stats()

    @pytest.mark.anyio
    async def test_dedupe_head_failure_is_a_storage_error(self) -> None:
        """With dedupe the existence check fails first, also as StorageError."""
        with pytest.raises(StorageError, match="EndpointConnectionError"):
            await self.unreachable(dedupe=True).put(
                "a.png", b"x", content_type="image/png", metadata={}
            )

    @pytest.mark.anyio
    async def test_missing_bucket_is_an_error_not_a_missing_key(self, client: S3Client) -> None:
        """NoSuchBucket is a StorageError for put and for get (get returns None only for keys)."""
        storage = R2Storage(client=client, bucket_name=f"absent-{uuid.uuid4().hex[:12]}")
        with pytest.raises(StorageError, match="NoSuchBucket"):
            await storage.put("a.png", b"x", content_type="image/png", metadata={})
        with pytest.raises(StorageError, match="NoSuchBucket"):
            await storage.get("images/a.png")

    @pytest.mark.anyio
    async def test_get_of_a_missing_key_is_none(self, images: R2Storage) -> None:
        """get of a key never stored returns None."""
        assert await images.get("images/never/there.png") is None

    @pytest.mark.anyio
    async def test_other_exceptions_propagate_unchanged(self) -> None:
        """An exception that is not botocore's (a bug) is not disguised as StorageError."""

        class Broken:
            def put_object(self, **_kwargs: Any) -> None:
                raise RuntimeError("bug in a custom client")

        storage = R2Storage(client=Broken(), bucket_name="b")  # type: ignore[arg-type]
        with pytest.raises(RuntimeError, match="bug in a custom client") as info:
            await storage.put("a.png", b"x", content_type="image/png", metadata={})
        assert info.value.__cause__ is None

    @pytest.mark.anyio
    async def test_max_workers_bounds_concurrent_calls(self, bucket: str) -> None:
        """At most max_workers boto3 calls run at once."""
        running = peak = 0
        guard = threading.Lock()  # put_object runs in worker threads

        class Slow:
            def put_object(self, **_kwargs: Any) -> None:
                nonlocal running, peak
                with guard:
                    running += 1
                    peak = max(peak, running)
                time.sleep(0.02)
                with guard:
                    running -= 1

        storage = R2Storage(
            client=Slow(),  # type: ignore[arg-type]
            bucket_name=bucket,
            public_base_url="https://img.example.com",
            max_workers=3,
        )

        async def put(n: int) -> None:
            await storage.put(f"{n}.png", b"x", content_type="image/png", metadata={})

        async with anyio.create_task_group() as tg:
            for n in range(12):
                tg.start_soon(put, n)
        assert peak == 3


class TestR2Client:
    def test_client_is_configured_for_r2(self) -> None:
        """r2_client: R2 endpoint, region auto, SigV4, path style, retries, pool, checksums."""
        client = r2_client(ACCOUNT_ID, "AKID", SECRET, max_pool_connections=24)
        assert client.meta.endpoint_url == f"https://{ACCOUNT_ID}.r2.cloudflarestorage.com"
        assert client.meta.region_name == "auto"
        config: Any = client.meta.config  # botocore-stubs do not list Config's options
        assert config.signature_version == "s3v4"
        # Over TLS the body is not hashed to sign it.
        assert config.s3 == {"addressing_style": "path", "payload_signing_enabled": False}
        # botocore reads max_attempts=3 as three retries: four attempts in total.
        assert config.retries == {"mode": "standard", "total_max_attempts": 4}
        assert config.max_pool_connections == 24
        assert config.request_checksum_calculation == "when_required"
        assert config.response_checksum_validation == "when_required"

    def test_account_id_is_lowercased(self) -> None:
        """An upper-case account id still gives the (lower-case) R2 host."""
        client = r2_client(ACCOUNT_ID.upper(), "AKID", SECRET)
        assert client.meta.endpoint_url == f"https://{ACCOUNT_ID}.r2.cloudflarestorage.com"
        assert client.meta.config.max_pool_connections == 16  # type: ignore[attr-defined]

    @pytest.mark.anyio
    async def test_r2_config_sends_no_default_checksum(self, s3: Endpoint, bucket: str) -> None:
        """With r2_client's config a put carries no x-amz-checksum-*/trailer header (R2 rejects
        them); botocore's default config does add one."""
        r2_config = r2_client(ACCOUNT_ID, "AKID", SECRET).meta.config
        sent = {
            name: list(await _put_headers(s3, bucket, config, name, b"x"))
            for name, config in [("r2", r2_config), ("default", Config(signature_version="s3v4"))]
        }
        assert not [h for h in sent["r2"] if h.startswith(("x-amz-checksum", "x-amz-trailer"))]
        assert any(h.startswith(("x-amz-checksum", "x-amz-trailer")) for h in sent["default"])

    @pytest.mark.anyio
    async def test_the_body_is_hashed_to_sign_it_over_http_only(
        self, s3: Endpoint, bucket: str
    ) -> None:
        """With R2's (https) config a put says UNSIGNED-PAYLOAD, and the S3 server takes it;
        with a plain-http endpoint the body's SHA-256 is signed, as botocore does."""
        body = b"an image's bytes"
        https_config = r2_client(ACCOUNT_ID, "AKID", SECRET).meta.config
        http_config = r2_client(None, "AKID", SECRET, endpoint_url=s3.url).meta.config
        sent = {
            name: (await _put_headers(s3, bucket, config, name, body))["x-amz-content-sha256"]
            for name, config in [("https", https_config), ("http", http_config)]
        }
        assert sent == {
            "https": b"UNSIGNED-PAYLOAD",
            "http": hashlib.sha256(body).hexdigest().encode(),
        }

    @pytest.mark.parametrize(
        ("args", "field"),
        [
            (("xyz", "AKID", SECRET), "account_id"),
            (("0" * 31, "AKID", SECRET), "account_id"),
            (("g" * 32, "AKID", SECRET), "account_id"),
            ((ACCOUNT_ID + "0", "AKID", SECRET), "account_id"),
            ((ACCOUNT_ID, "", SECRET), "access_key_id"),
            ((ACCOUNT_ID, "AKID", ""), "secret_access_key"),
            ((ACCOUNT_ID, "AKID", "   "), "secret_access_key"),
        ],
    )
    def test_bad_arguments(self, args: tuple[str, str, str], field: str) -> None:
        """A malformed account id or an empty key is InvalidConfig naming the field."""
        with pytest.raises(InvalidConfig) as info:
            r2_client(*args)
        assert info.value.field == field
        assert SECRET not in str(info.value)

    def test_another_endpoint(self) -> None:
        """endpoint_url replaces R2's endpoint (no account id then); region us-east-1 there,
        or as given; the rest of the configuration is R2's."""
        client = r2_client(None, "AKID", SECRET, endpoint_url="http://127.0.0.1:9000/")
        assert client.meta.endpoint_url == "http://127.0.0.1:9000"
        assert client.meta.region_name == "us-east-1"
        assert client.meta.config.s3 == {"addressing_style": "path"}  # type: ignore[attr-defined]
        # An https endpoint elsewhere is sent unsigned bodies too.
        secure = r2_client(None, "AKID", SECRET, endpoint_url="https://s3.example")
        assert secure.meta.config.s3["payload_signing_enabled"] is False  # type: ignore[attr-defined]
        other = r2_client(None, "AKID", SECRET, endpoint_url="https://s3.example", region="eu-1")
        assert other.meta.region_name == "eu-1"
        assert r2_client(ACCOUNT_ID, "AKID", SECRET, region="wnam").meta.region_name == "wnam"

    @pytest.mark.parametrize(
        ("account_id", "kwargs", "field"),
        [
            (None, {}, "account_id"),
            (ACCOUNT_ID, {"endpoint_url": "https://s3.example"}, "endpoint_url"),
            (None, {"endpoint_url": "s3.example"}, "endpoint_url"),
            (None, {"endpoint_url": "ftp://s3.example"}, "endpoint_url"),
            (None, {"endpoint_url": "https://"}, "endpoint_url"),
            (None, {"endpoint_url": 9000}, "endpoint_url"),
            (ACCOUNT_ID, {"region": ""}, "region"),
            (ACCOUNT_ID, {"region": "eu central"}, "region"),
            (ACCOUNT_ID, {"region": 1}, "region"),
        ],
    )
    def test_bad_endpoints_and_regions(
        self, account_id: str | None, kwargs: dict[str, Any], field: str
    ) -> None:
        """Exactly one of account_id and endpoint_url (an http(s) URL); a region without spaces."""
        with pytest.raises(InvalidConfig) as info:
            r2_client(account_id, "AKID", SECRET, **kwargs)
        assert info.value.field == field
        assert SECRET not in str(info.value)

    @pytest.mark.anyio
    async def test_from_env_on_an_s3_endpoint(
        self, s3: Endpoint, bucket: str, tmp_path: Path
    ) -> None:
        """IMAGEGEN_S3_ENDPOINT_URL and the keys, with no account id, store a generation there."""
        environ = {
            "IMAGEGEN_DATA_DIR": str(tmp_path),
            "IMAGEGEN_R2_BUCKET": bucket,
            "IMAGEGEN_S3_ENDPOINT_URL": s3.url,
            "IMAGEGEN_R2_ACCESS_KEY_ID": s3.access_key,
            "IMAGEGEN_R2_SECRET_ACCESS_KEY": s3.secret_key,
        }
        async with ImageGenerator.from_env(environ) as gen:
            result = await gen.generate("a red fox", width=64, height=64)
        assert result.key is not None
        assert result.url == f"{s3.url}/{bucket}/{result.key}"
        assert result.key in keys_in(s3.client(region="us-east-1"), bucket)

    @pytest.mark.parametrize("size", [0, -1, True, 2.5])
    def test_bad_pool_size(self, size: Any) -> None:
        """max_pool_connections must be an int >= 1."""
        with pytest.raises(InvalidConfig) as info:
            r2_client(ACCOUNT_ID, "AKID", SECRET, max_pool_connections=size)
        assert info.value.field == "max_pool_connections"

    def test_without_boto3(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Without boto3, r2_client says which extra to install."""
        monkeypatch.setitem(sys.modules, "boto3", None)
        monkeypatch.setitem(sys.modules, "boto3.session", None)
        with pytest.raises(InvalidConfig, match=r"imagegen-failover\[r2\]") as info:
            r2_client(ACCOUNT_ID, "AKID", SECRET)
        assert info.value.field == "boto3"

    def test_import_imagegen_does_not_import_boto3(self) -> None:
        """boto3 is an optional extra: importing imagegen and the R2 module leaves it out."""
        code = (
            "import sys\n"
            "import imagegen, imagegen.storage._r2\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('boto3', 'botocore')))\n"
        )
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
        )
        assert done.stdout.strip() == "[]"


class TestConfig:
    @pytest.mark.parametrize(
        ("kwargs", "field"),
        [
            ({}, "client"),
            ({"bucket_name": "b"}, "client"),
            ({"client": CLIENT}, "bucket_name"),
            ({"client": CLIENT, "bucket_name": ""}, "bucket_name"),
            ({"client": CLIENT, "bucket_name": "a/b"}, "bucket_name"),
            ({"client": object(), "bucket_name": "b"}, "client"),
            ({"bucket": object()}, "bucket"),
            ({"bucket": BUCKET, "client": CLIENT}, "bucket"),
            ({"bucket": BUCKET, "bucket_name": "b"}, "bucket"),
        ],
    )
    def test_bucket_or_client_and_name(
        self, client: S3Client, bucket: str, kwargs: dict[str, Any], field: str
    ) -> None:
        """A Bucket, or client= with bucket_name=, is required, and not both."""
        resource = session().resource(
            "s3", endpoint_url=client.meta.endpoint_url, region_name="auto"
        )
        placeholders = {id(CLIENT): client, id(BUCKET): resource.Bucket(bucket)}
        resolved: dict[str, Any] = {
            name: placeholders.get(id(value), value) for name, value in kwargs.items()
        }
        with pytest.raises(InvalidConfig) as info:
            R2Storage(**resolved)
        assert info.value.field == field

    @pytest.mark.parametrize(
        ("kwargs", "field"),
        [
            ({"key_prefix": "images"}, "key_prefix"),
            ({"key_prefix": "/images/"}, "key_prefix"),
            ({"key_prefix": "../images/"}, "key_prefix"),
            ({"key_prefix": "a//"}, "key_prefix"),
            ({"key_prefix": "/"}, "key_prefix"),
            ({"key_prefix": None}, "key_prefix"),
            ({"presign_expires": 0}, "presign_expires"),
            ({"presign_expires": -5}, "presign_expires"),
            ({"presign_expires": True}, "presign_expires"),
            ({"presign_expires": 1.5}, "presign_expires"),
            ({"presign_expires": 604_801}, "presign_expires"),
            ({"public_base_url": "ftp://cdn.example.com"}, "public_base_url"),
            ({"public_base_url": "cdn.example.com"}, "public_base_url"),
            ({"public_base_url": "https://"}, "public_base_url"),
            ({"public_base_url": "https://cdn.example.com/?x=1"}, "public_base_url"),
            ({"public_base_url": 42}, "public_base_url"),
            ({"cache_control": ""}, "cache_control"),
            ({"cache_control": "public\r\nX-Evil: 1"}, "cache_control"),
            ({"dedupe": "yes"}, "dedupe"),
            ({"max_workers": 0}, "max_workers"),
            ({"max_workers": True}, "max_workers"),
        ],
    )
    def test_invalid_options(
        self, client: S3Client, bucket: str, kwargs: dict[str, Any], field: str
    ) -> None:
        """Each option's rule broken is an InvalidConfig naming the option."""
        with pytest.raises(InvalidConfig) as info:
            R2Storage(client=client, bucket_name=bucket, **kwargs)
        assert info.value.field == field

    @pytest.mark.anyio
    async def test_bucket_resource_is_accepted(self, s3: Endpoint, bucket: str) -> None:
        """A boto3 Bucket resource works like client= + bucket_name=."""
        resource = session().resource(
            "s3",
            endpoint_url=s3.url,
            region_name="auto",
            aws_access_key_id=s3.access_key,
            aws_secret_access_key=s3.secret_key,
        )
        storage = R2Storage(resource.Bucket(bucket), key_prefix="r/")
        stored = await storage.put("a.png", b"abc", content_type="image/png", metadata={})
        assert stored.key == "r/a.png"
        assert await storage.get("r/a.png") == b"abc"
        assert storage.bucket_name == bucket

    def test_valid_edges_are_accepted(self, client: S3Client, bucket: str) -> None:
        """key_prefix "" and nested prefixes, 7-day presigning and http URLs are fine."""
        for kwargs in [
            {"key_prefix": ""},
            {"key_prefix": "prod/images/"},
            {"presign_expires": 604_800},
            {"presign_expires": 1},
            {"public_base_url": "http://127.0.0.1:8080/img"},
            {"max_workers": 1},
        ]:
            R2Storage(client=client, bucket_name=bucket, **kwargs)  # type: ignore[arg-type]

    def test_is_a_storage(self, images: R2Storage) -> None:
        """R2Storage satisfies the runtime-checkable Storage protocol; repr names the bucket."""
        assert isinstance(images, imagegen.Storage)
        assert images.bucket_name in repr(images)


class TestThroughTheGenerator:
    @pytest.mark.anyio
    async def test_generated_image_is_in_the_bucket(self, client: S3Client, bucket: str) -> None:
        """generate() stores the object under result.key; the record points at it."""
        prompt = "a lighthouse at dusk, secret prompt wording"
        storage = R2Storage(client=client, bucket_name=bucket)
        gen = ImageGenerator(providers=[instant("a")], storage=storage)
        try:
            result = await gen.generate(prompt)
            record = await gen.record(result.id)
        finally:
            await gen.aclose()
        assert result.key is not None
        assert result.key.startswith("images/")
        assert result.key.endswith(f"/{result.id}.png")
        head = client.head_object(Bucket=bucket, Key=result.key)
        assert head["ContentType"] == "image/png"
        assert head["ContentLength"] == result.size
        assert head["Metadata"] == {
            "generation-id": result.id,
            "provider": "a",
            "prompt-sha256": hashlib.sha256(prompt.encode()).hexdigest(),
        }
        assert not any("lighthouse" in value for value in head["Metadata"].values())
        data = await storage.get(result.key)
        assert data is not None
        assert hashlib.sha256(data).hexdigest() == result.sha256
        assert result.url == storage.url_for(result.key)
        assert record is not None
        assert (record.status, record.key, record.url) == ("succeeded", result.key, result.url)

    @pytest.mark.anyio
    async def test_failed_upload_leaves_no_record_pointing_at_it(self) -> None:
        """An upload that fails raises StorageError and the record has no key."""
        recorder = EventRecorder()
        gen = ImageGenerator(
            providers=[instant("a")],
            storage=TestErrors().unreachable(),
            retry=Retry(attempts=1),
            hooks=[recorder],
        )
        try:
            with pytest.raises(StorageError) as info:
                await gen.generate("x")
            generation_id = recorder.events[0].generation_id
            assert generation_id is not None
            record = await gen.record(generation_id)
        finally:
            await gen.aclose()
        assert SECRET not in str(info.value)
        assert record is not None
        assert (record.status, record.key) == ("failed", None)


async def _put_headers(
    s3: Endpoint, bucket: str, config: Any, name: str, body: bytes
) -> dict[str, Any]:
    """The headers of one put through a client with ``config`` (checked stored), by their
    lower-case names."""
    client = session().client(
        "s3",
        endpoint_url=s3.url,
        region_name="auto",
        aws_access_key_id=s3.access_key,
        aws_secret_access_key=s3.secret_key,
        config=config,
    )
    headers: dict[str, Any] = {}
    client.meta.events.register(
        "before-send.s3.PutObject",
        lambda request, **_kw: headers.update((k.lower(), v) for k, v in request.headers.items()),
    )
    storage = R2Storage(client=client, bucket_name=bucket)
    stored = await storage.put(f"{name}.png", body, content_type="image/png", metadata={})
    assert await storage.get(stored.key) == body
    return headers
