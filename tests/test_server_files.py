"""GET /files/{key}: the app serves stored images itself when asked (serve_files=True)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from imagegen import ImageGenerator, LocalStorage, MemoryStorage, Placeholder, StorageError
from imagegen.server import create_app
from imagegen.storage import check_key
from imagegen.testing import FaultyStorage

pytestmark = pytest.mark.anyio

YEAR = "public, max-age=31536000, immutable"


def client(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


async def made(gen: ImageGenerator) -> str:
    result = await gen.generate("a fox", width=64, height=64)
    assert result.key is not None
    return result.key


async def test_a_stored_image_with_year_long_caching(tmp_path: Path) -> None:
    """The bytes of the stored object, its type, an ETag; a current copy gets 304."""
    storage = LocalStorage(tmp_path, base_url="http://test/files/")
    gen = ImageGenerator(providers=[Placeholder()], storage=storage)
    key = await made(gen)
    async with client(create_app(gen, serve_files=True)) as http:
        got = await http.get(f"/files/{key}")
        assert got.status_code == 200
        assert got.content == (tmp_path / key).read_bytes()
        assert got.headers["content-type"] == "image/png"
        assert got.headers["cache-control"] == YEAR
        assert got.headers["x-content-type-options"] == "nosniff"
        etag = got.headers["etag"]
        again = await http.get(f"/files/{key}", headers={"If-None-Match": etag})
        assert (again.status_code, again.content) == (304, b"")
        assert again.headers["etag"] == etag
        weak = await http.get(f"/files/{key}", headers={"If-None-Match": f'"x", W/{etag}'})
        assert weak.status_code == 304
        other = await http.get(f"/files/{key}", headers={"If-None-Match": '"other"'})
        assert other.status_code == 200
        head = await http.head(f"/files/{key}")
        assert head.status_code == 200
        assert head.content == b""


@pytest.mark.parametrize(
    "path",
    [
        "/files/2026/01/01/none.png",  # no such object
        "/files/..%2Fstate.sqlite3",  # out of the directory
        "/files/2026/.tmp-abc.png",  # a temporary file's name
        "/files/a//b.png",  # an empty part
    ],
)
async def test_no_object_is_404(tmp_path: Path, path: str) -> None:
    """A key that has no object, or that no object can have, answers 404 alike."""
    (tmp_path / "images" / "2026").mkdir(parents=True)
    (tmp_path / "state.sqlite3").write_bytes(b"secret")
    (tmp_path / "images" / "2026" / ".tmp-abc.png").write_bytes(b"half")
    gen = ImageGenerator(providers=[Placeholder()], storage=LocalStorage(tmp_path / "images"))
    async with client(create_app(gen, serve_files=True)) as http:
        got = await http.get(path)
    assert got.status_code == 404, got.text
    assert got.headers["content-type"] == "application/problem+json"
    assert b"secret" not in got.content


async def test_a_deleted_object_is_not_vouched_for() -> None:
    """An If-None-Match for an object since taken back gets 404, not 304."""
    storage = MemoryStorage()
    gen = ImageGenerator(providers=[Placeholder()], storage=storage)
    key = await made(gen)
    async with client(create_app(gen, serve_files=True)) as http:
        etag = (await http.get(f"/files/{key}")).headers["etag"]
        await storage.delete(key)
        got = await http.get(f"/files/{key}", headers={"If-None-Match": etag})
    assert got.status_code == 404


async def test_off_by_default_and_without_storage() -> None:
    """Without serve_files there is no such route; a generator without storage has none."""
    gen = ImageGenerator(providers=[Placeholder()], storage=MemoryStorage())
    key = await made(gen)
    async with client(create_app(gen)) as http:
        assert (await http.get(f"/files/{key}")).status_code == 404
    bare = ImageGenerator(providers=[Placeholder()], storage=None)
    async with client(create_app(bare, serve_files=True)) as http:
        assert (await http.get(f"/files/{key}")).status_code == 404


async def test_a_failing_storage_is_503() -> None:
    """A storage read that fails answers 503 without the storage's message."""
    storage = FaultyStorage(MemoryStorage(), methods={"get"})
    gen = ImageGenerator(providers=[Placeholder()], storage=storage)
    key = await made(gen)
    storage.fail_all = True
    async with client(create_app(gen, serve_files=True)) as http:
        got = await http.get(f"/files/{key}")
    assert got.status_code == 503
    assert "injected" not in got.text


@pytest.mark.parametrize("key", ["", "a/../b", ".hidden", "a\\b", "a//b", "a/"])
def test_check_key_refuses(key: str) -> None:
    with pytest.raises(StorageError, match="storage key"):
        check_key(key)


def test_check_key_passes_a_plain_key() -> None:
    assert check_key("2026/12/06/abc.png") == "2026/12/06/abc.png"
