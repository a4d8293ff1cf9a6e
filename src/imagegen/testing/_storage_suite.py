"""StorageSuite: the Storage contract as pytest tests, for any storage."""

# Test code: plain asserts, which pytest rewrites for their messages (imagegen.testing
# registers this module for rewriting before it is imported).
# ruff: noqa: S101

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from urllib.parse import urlsplit

import anyio
import pytest

from .._errors import StorageError
from ..storage import Storage, StorageStats, StoredObject
from ._fakes import tiny_png
from ._suite import Suite, call_hook

__all__ = ["StorageSuite"]

#: What the generator sends with every image (the documented metadata).
_METADATA = {"generation-id": "gen-1", "provider": "a", "prompt-sha256": "ab" * 32}

#: Keys a storage must keep apart and serve back: spaces, URL delimiters, percent signs,
#: non-ASCII letters and emoji, shell and glob characters.
_ODD_KEYS = [
    "odd/a space.png",
    "odd/100%.png",
    "odd/%41.png",
    "odd/A.png",
    "odd/hash#frag.png",
    "odd/quest?ion=1&x=2.png",
    "odd/plus+sign.png",
    "odd/é-ü-中文.png",
    "odd/fox-🦊.png",
    "odd/semi;colon,comma:at@.png",
    "odd/quote'paren()[b]{c}.png",
    "odd/star*dollar$tilde~.png",
    "odd/deep/er/still/x.png",
]

#: Keys that could escape a directory or a prefix: refused by every operation.
_UNSAFE_KEYS = [
    "../x.png",
    "a/../../x.png",
    "..",
    "/etc/passwd",
    "a//b.png",
    "a\\b.png",
    "..\\x.png",
    "",
    ".",
    "a/./b.png",
    "a/",
    ".hidden.png",
]

#: URL schemes a browser fetches, whose URLs must have the key escaped.
_FETCHED = frozenset({"http", "https", "file"})

InspectObject = Callable[[str], object]


class StorageSuite(Suite):
    """The :class:`~imagegen.storage.Storage` contract, as tests for your storage.

    Subclass it in a test module (the subclass's name must start with ``Test``) and give
    it a ``storage`` fixture: a fresh, empty storage::

        import pytest
        from imagegen.testing import StorageSuite


        class TestMyStorage(StorageSuite):
            @pytest.fixture
            def storage(self, tmp_path):
                return MyStorage(tmp_path)

    Every check runs on asyncio and on trio (when installed). ``get``, ``delete`` and
    ``url_for`` are given the final key ``put`` returned (a storage may put a prefix in
    front, or address content by its hash). The checks cover ``put``'s
    :class:`~imagegen.storage.StoredObject`; bytes round trips (empty, binary, large);
    overwriting; absent keys; keys with spaces, URL delimiters, ``%`` and non-ASCII
    characters (kept apart, served back, and escaped in ``http``, ``https`` and
    ``file`` URLs); keys that could escape a directory (``..``, a leading ``/``, ``\\``,
    dot-names), which every operation refuses with
    :class:`~imagegen.StorageError`; ``stats``; and concurrent ``put`` of one key
    leaving one whole payload.

    The Content-Type and metadata are checked as stored when you give an
    ``inspect_object`` fixture: a function (or coroutine function) taking a final key
    and returning ``(content_type, metadata)`` as the storage holds them. Without one,
    the suite only checks that ``put`` accepts them.
    """

    @pytest.fixture
    def inspect_object(self) -> InspectObject | None:
        """Reads ``(content_type, metadata)`` of a stored key; None (the default): no check."""
        return None

    async def test_is_a_storage(self, storage: Storage) -> None:
        """The storage satisfies the runtime-checkable Storage protocol."""
        assert isinstance(storage, Storage)

    async def test_put_returns_a_stored_object(self, storage: Storage) -> None:
        """put answers with the final key, its URL (url_for's) and the size in bytes."""
        data = tiny_png()
        stored = await storage.put("2026/a.png", data, content_type="image/png", metadata=_METADATA)
        assert isinstance(stored, StoredObject)
        assert isinstance(stored.key, str)
        assert stored.key
        assert stored.size == len(data)
        url = storage.url_for(stored.key)
        assert not inspect.isawaitable(url), "url_for must be a plain (sync) method"
        assert (stored.url is None) == (url is None)
        assert stored.url is None or isinstance(stored.url, str)

    @pytest.mark.parametrize(
        "data",
        [b"", b"\x89PNG bytes", bytes(range(256)) * 4, bytes(range(251)) * 4001],
        ids=["empty", "short", "all-bytes", "1MB"],
    )
    async def test_bytes_round_trip(self, storage: Storage, data: bytes) -> None:
        """get returns exactly the bytes put, as bytes."""
        stored = await storage.put("x/y/z.png", data, content_type="image/png", metadata=_METADATA)
        got = await storage.get(stored.key)
        assert type(got) is bytes
        assert got == data

    async def test_put_overwrites(self, storage: Storage) -> None:
        """A second put of a key replaces its bytes and counts once."""
        first = await storage.put("k.png", b"old content", content_type="image/png", metadata={})
        second = await storage.put("k.png", b"new", content_type="image/png", metadata={})
        assert await storage.get(second.key) == b"new"
        if second.key == first.key:  # a content-addressed storage gives new bytes a new key
            assert await storage.stats() == StorageStats(objects=1, bytes=3)

    async def test_delete(self, storage: Storage) -> None:
        """delete removes the key and leaves the others alone; deleting it again is fine."""
        gone = await storage.put("d/gone.png", b"abc", content_type="image/png", metadata={})
        kept = await storage.put("d/kept.png", b"defg", content_type="image/png", metadata={})
        await storage.delete(gone.key)
        assert await storage.get(gone.key) is None
        await storage.delete(gone.key)
        assert await storage.get(kept.key) == b"defg"
        assert await storage.stats() == StorageStats(objects=1, bytes=4)

    async def test_absent_keys(self, storage: Storage) -> None:
        """get of a key never put is None and deleting it is fine."""
        stored = await storage.put("m/present.png", b"x", content_type="image/png", metadata={})
        # A storage that keeps the key as given takes any key; one with a prefix or
        # content addresses only takes keys of its own making, which put+delete gives.
        absent = "m/absent.png" if stored.key == "m/present.png" else stored.key
        if absent == stored.key:
            await storage.delete(stored.key)
        assert await storage.get(absent) is None
        await storage.delete(absent)
        assert await storage.get(absent) is None

    async def test_stats(self, storage: Storage) -> None:
        """stats counts objects and bytes, from zero on an empty storage."""
        assert await storage.stats() == StorageStats(objects=0, bytes=0)
        first = await storage.put("a.png", b"12345", content_type="image/png", metadata={})
        await storage.put("d/b.png", b"123", content_type="image/png", metadata={})
        assert await storage.stats() == StorageStats(objects=2, bytes=8)
        await storage.delete(first.key)
        assert await storage.stats() == StorageStats(objects=1, bytes=3)

    @pytest.mark.parametrize(
        "content_type", ["image/png", "image/jpeg", "image/webp", "image/avif", "image/gif"]
    )
    async def test_content_type_and_metadata(
        self, storage: Storage, inspect_object: InspectObject | None, content_type: str
    ) -> None:
        """put keeps the Content-Type and the metadata it is given (when they can be read)."""
        stored = await storage.put(
            "meta/x.img", b"bytes", content_type=content_type, metadata=_METADATA
        )
        assert await storage.get(stored.key) == b"bytes"
        if inspect_object is not None:
            kept = await call_hook(inspect_object, stored.key)
            assert isinstance(kept, tuple)
            assert kept[0] == content_type
            assert dict(kept[1]) == _METADATA

    @pytest.mark.parametrize(
        "metadata",
        [{}, {"title": "café 100%\tüber", "Mixed-Case": "v"}],
        ids=["none", "non-ascii"],
    )
    async def test_any_metadata_is_accepted(
        self, storage: Storage, metadata: Mapping[str, str]
    ) -> None:
        """Empty metadata, and names and values beyond plain ASCII, do not fail a put."""
        stored = await storage.put("meta/y.png", b"y", content_type="image/png", metadata=metadata)
        assert await storage.get(stored.key) == b"y"

    async def test_odd_keys(self, storage: Storage) -> None:
        """Keys with spaces, delimiters, % and non-ASCII are kept apart, served and escaped."""
        stored = [
            await storage.put(key, key.encode(), content_type="image/png", metadata={})
            for key in _ODD_KEYS
        ]
        for key, obj in zip(_ODD_KEYS, stored, strict=True):
            assert await storage.get(obj.key) == key.encode(), key
        assert len({obj.key for obj in stored}) == len(_ODD_KEYS)
        assert await storage.stats() == StorageStats(
            objects=len(_ODD_KEYS), bytes=sum(len(k.encode()) for k in _ODD_KEYS)
        )
        urls = [storage.url_for(obj.key) for obj in stored]
        if any(url is not None for url in urls):
            assert len(set(urls)) == len(urls), "two keys share a URL"
        for obj, url in zip(stored, urls, strict=True):
            _check_url(obj.key, url)
        for obj in stored:
            await storage.delete(obj.key)
            assert await storage.get(obj.key) is None
        assert await storage.stats() == StorageStats(objects=0, bytes=0)

    async def test_unsafe_keys_are_refused(self, storage: Storage) -> None:
        """Keys that could escape a directory or prefix are a StorageError everywhere."""
        for key in _UNSAFE_KEYS:
            with pytest.raises(StorageError):
                await storage.put(key, b"data", content_type="image/png", metadata={})
            with pytest.raises(StorageError):
                await storage.get(key)
            with pytest.raises(StorageError):
                await storage.delete(key)
            with pytest.raises(StorageError):
                storage.url_for(key)
        assert await storage.stats() == StorageStats(objects=0, bytes=0)

    async def test_concurrent_puts_leave_whole_values(self, storage: Storage) -> None:
        """Racing puts of one key leave, under each final key, one complete payload."""
        payloads = [bytes([n]) * (100_000 + n) for n in range(10)]
        stored: list[StoredObject] = []

        async def put(payload: bytes) -> None:
            stored.append(
                await storage.put("race.png", payload, content_type="image/png", metadata={})
            )

        async with anyio.create_task_group() as tg:
            for payload in payloads:
                tg.start_soon(put, payload)
        keys = {obj.key for obj in stored}
        for key in keys:
            assert await storage.get(key) in payloads
        assert (await storage.stats()).objects == len(keys)


def _check_url(key: str, url: str | None) -> None:
    """A URL a browser fetches has the key escaped: printable ASCII, no fragment."""
    if url is None or urlsplit(url).scheme not in _FETCHED:
        return
    assert all(33 <= ord(c) < 127 for c in url), f"{key!r}: unescaped characters in {url!r}"
    assert not urlsplit(url).fragment, f"{key!r}: '#' not escaped in {url!r}"
