"""imagegen.testing.StorageSuite, run against every built-in storage.

MemoryStorage and LocalStorage (with file:// URLs and with a base URL) in-process;
R2Storage through boto3 over HTTP against moto's S3 server on 127.0.0.1 (the fixtures of
test_r2), once with keys as given and path-style URLs, once with a key prefix, content
addresses and presigned URLs. A deliberately broken storage shows that the suite fails
where it should.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from imagegen import LocalStorage, MemoryStorage
from imagegen.storage import R2Storage
from imagegen.testing import StorageSuite

from .test_r2 import bucket, client, s3  # noqa: F401 - moto's server and a bucket per test

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client

pytest_plugins = ["pytester"]


class TestMemoryStorage(StorageSuite):
    """MemoryStorage, whose objects keep their Content-Type and metadata."""

    @pytest.fixture
    def storage(self) -> MemoryStorage:
        """A fresh MemoryStorage."""
        return MemoryStorage()

    @pytest.fixture
    def inspect_object(self, storage: MemoryStorage) -> object:
        """Content-Type and metadata straight from its dict."""
        return lambda key: storage.objects[key][1:]


class TestLocalStorage(StorageSuite):
    """LocalStorage in a directory that does not exist yet, with file:// URLs."""

    @pytest.fixture
    def storage(self, tmp_path: Path) -> LocalStorage:
        """A LocalStorage whose directory is created on first write."""
        return LocalStorage(tmp_path / "store")


class TestLocalStorageBehindACDN(StorageSuite):
    """LocalStorage served under a base URL: keys are escaped into https URLs."""

    @pytest.fixture
    def storage(self, tmp_path: Path) -> LocalStorage:
        """A LocalStorage with base_url."""
        return LocalStorage(tmp_path, base_url="https://cdn.example.com/img")


class R2Suite(StorageSuite):
    """The suite on an R2Storage in a fresh moto bucket; Content-Type and metadata by HEAD."""

    @pytest.fixture
    def inspect_object(self, client: S3Client, bucket: str) -> object:  # noqa: F811 - fixtures
        """Content-Type and metadata from head_object."""

        def head(key: str) -> tuple[str, Mapping[str, str]]:
            answer = client.head_object(Bucket=bucket, Key=key)
            return answer["ContentType"], answer["Metadata"]

        return head


class TestR2Storage(R2Suite):
    """Keys as given, path-style URLs."""

    @pytest.fixture
    def storage(self, client: S3Client, bucket: str) -> R2Storage:  # noqa: F811 - fixtures
        """key_prefix="", no public URL."""
        return R2Storage(client=client, bucket_name=bucket, key_prefix="")


class TestR2StorageDeduped(R2Suite):
    """Final keys under images/, content-addressed, with presigned URLs."""

    @pytest.fixture
    def storage(self, client: S3Client, bucket: str) -> R2Storage:  # noqa: F811 - fixtures
        """The default key_prefix, dedupe=True, presign_expires=600."""
        return R2Storage(client=client, bucket_name=bucket, dedupe=True, presign_expires=600)


BROKEN = '''
import pytest

from imagegen import MemoryStorage, StoredObject
from imagegen.testing import StorageSuite


class Broken(MemoryStorage):
    """Takes any key, drops Content-Type and metadata, and puts raw keys in URLs."""

    async def put(self, key, data, *, content_type, metadata):
        self.objects[key] = (bytes(data), "application/octet-stream", {})
        return StoredObject(key=key, url=self.url_for(key), size=len(data))

    def url_for(self, key):
        return "https://cdn.example.com/" + key


class TestBroken(StorageSuite):
    @pytest.fixture
    def storage(self):
        return Broken()

    @pytest.fixture
    def inspect_object(self, storage):
        return lambda key: storage.objects[key][1:]


class Unpublished(MemoryStorage):
    """Keeps every promise; has no URLs to give."""

    def url_for(self, key):
        super().url_for(key)  # refuses what the others refuse
        return None

    async def put(self, key, data, *, content_type, metadata):
        stored = await super().put(key, data, content_type=content_type, metadata=metadata)
        return StoredObject(key=stored.key, url=None, size=stored.size)


class TestUnpublished(StorageSuite):
    @pytest.fixture
    def storage(self):
        return Unpublished()

    @pytest.fixture
    async def inspect_object(self, storage):
        async def inspect(key):  # a coroutine function will do too
            return storage.objects[key][1:]

        return inspect
'''


def test_the_suite_catches_a_broken_storage(pytester: pytest.Pytester) -> None:
    """Unsafe keys, unescaped URLs and lost Content-Types each fail their checks.

    A storage without URLs, which keeps every other promise, passes.
    """
    pytester.makepyfile(test_broken=textwrap.dedent(BROKEN))
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-q")
    failed = {
        report.nodeid.split("::", 1)[1].split("[")[0]
        for report in result.reprec.getreports("pytest_runtest_logreport")  # type: ignore[attr-defined]
        if report.failed
    }
    assert failed == {
        f"TestBroken::{name}"
        for name in (
            "test_unsafe_keys_are_refused",
            "test_odd_keys",
            "test_content_type_and_metadata",
        )
    }
    assert result.parseoutcomes()["passed"] > 40
