"""Storage backends: the shared contract, and LocalStorage's atomic writes and URLs."""

from __future__ import annotations

import errno
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

import anyio
import pytest

import imagegen
from imagegen import LocalStorage, MemoryStorage, Storage, StorageError, StoredObject
from imagegen.storage import _local
from imagegen.testing import tiny_png

pytestmark = pytest.mark.anyio

META: dict[str, str] = {}

STORAGES: dict[str, Callable[[Path], Any]] = {
    "memory": lambda _path: MemoryStorage(),
    "local": lambda path: LocalStorage(path / "store"),
}

BAD_KEYS = [
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
    "a/.b.png.x1.tmp",
]


@pytest.fixture(params=list(STORAGES))
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    """Each storage, empty (LocalStorage's directory does not exist yet)."""
    return STORAGES[request.param](tmp_path)


def all_files(directory: Path) -> list[str]:
    """Every file under ``directory``, as sorted relative paths."""
    return sorted(str(p.relative_to(directory)) for p in directory.rglob("*") if p.is_file())


class TestContract:
    async def test_is_a_storage(self, storage: Any) -> None:
        """Every backend satisfies the runtime-checkable Storage protocol."""
        assert isinstance(storage, imagegen.Storage)
        assert isinstance(storage, Storage)

    async def test_put_returns_stored_object(self, storage: Any) -> None:
        """put answers with the key, the key's URL and the size in bytes."""
        data = tiny_png()
        stored = await storage.put("2026/a.png", data, content_type="image/png", metadata=META)
        assert stored == StoredObject(
            key="2026/a.png", url=storage.url_for("2026/a.png"), size=len(data)
        )

    async def test_round_trip(self, storage: Any) -> None:
        """get returns exactly the bytes put."""
        await storage.put(
            "x/y/z.png", b"\x89PNG bytes", content_type="image/png", metadata={"a": "b"}
        )
        assert await storage.get("x/y/z.png") == b"\x89PNG bytes"

    async def test_absent_key_is_none(self, storage: Any) -> None:
        """get of a key never put returns None."""
        assert await storage.get("missing.png") is None

    async def test_put_overwrites(self, storage: Any) -> None:
        """A second put under the same key replaces the bytes and counts once."""
        await storage.put("k.png", b"old content", content_type="image/png", metadata=META)
        await storage.put("k.png", b"new", content_type="image/png", metadata=META)
        assert await storage.get("k.png") == b"new"
        assert await storage.stats() == imagegen.StorageStats(objects=1, bytes=3)

    async def test_delete(self, storage: Any) -> None:
        """delete removes the key; deleting an absent key is fine."""
        await storage.put("k.png", b"abc", content_type="image/png", metadata=META)
        await storage.delete("k.png")
        await storage.delete("k.png")
        await storage.delete("never/there.png")
        assert await storage.get("k.png") is None

    async def test_stats(self, storage: Any) -> None:
        """stats counts objects and bytes, starting from zero on an empty storage."""
        assert await storage.stats() == imagegen.StorageStats(objects=0, bytes=0)
        await storage.put("a.png", b"12345", content_type="image/png", metadata=META)
        await storage.put("d/b.png", b"123", content_type="image/png", metadata=META)
        assert await storage.stats() == imagegen.StorageStats(objects=2, bytes=8)
        await storage.delete("a.png")
        assert await storage.stats() == imagegen.StorageStats(objects=1, bytes=3)

    @pytest.mark.parametrize("key", BAD_KEYS)
    async def test_put_refuses_escaping_keys(self, storage: Any, key: str) -> None:
        """Keys with '..', '.', a leading '/', '//' or backslashes are refused, nothing stored."""
        with pytest.raises(StorageError):
            await storage.put(key, b"data", content_type="image/png", metadata=META)
        assert await storage.stats() == imagegen.StorageStats(objects=0, bytes=0)

    async def test_concurrent_puts_leave_one_whole_value(self, storage: Any) -> None:
        """Racing puts to one key leave exactly one of the complete payloads."""
        payloads = [bytes([n]) * (1000 + n) for n in range(20)]
        async with anyio.create_task_group() as tg:
            for payload in payloads:
                tg.start_soon(
                    lambda p=payload: storage.put(
                        "k.png", p, content_type="image/png", metadata=META
                    )
                )
        assert await storage.get("k.png") in payloads
        assert (await storage.stats()).objects == 1

    @pytest.mark.parametrize("key", BAD_KEYS)
    async def test_reads_and_urls_refuse_escaping_keys(self, storage: Any, key: str) -> None:
        """get, delete and url_for refuse the same keys put refuses."""
        with pytest.raises(StorageError):
            await storage.get(key)
        with pytest.raises(StorageError):
            await storage.delete(key)
        with pytest.raises(StorageError):
            storage.url_for(key)


class TestMemoryStorage:
    def test_url_is_memory_scheme(self) -> None:
        """MemoryStorage URLs are memory://key."""
        assert MemoryStorage().url_for("2026/a.png") == "memory://2026/a.png"


class TestLocalUrls:
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
    def test_base_url_joins_and_escapes(
        self, tmp_path: Path, base_url: str, key: str, expected: str
    ) -> None:
        """With base_url the key is joined with one '/' and percent-escaped, slashes kept."""
        assert (
            LocalStorage(tmp_path, base_url=base_url).url_for(key)
            == f"https://cdn.example.com/img/{expected}"
        )

    def test_without_base_url_is_a_file_uri(self, tmp_path: Path) -> None:
        """Without base_url url_for is the file:// URI of the file the key is stored in."""
        url = LocalStorage(tmp_path).url_for("2026/a b.png")
        assert url.startswith("file:///")
        assert url == (tmp_path.absolute() / "2026" / "a b.png").as_uri()
        assert url.endswith("/2026/a%20b.png")

    async def test_put_url_uses_base_url(self, tmp_path: Path) -> None:
        """The StoredObject's url is the base_url-joined URL."""
        storage = LocalStorage(tmp_path, base_url="https://cdn.example.com/img")
        stored = await storage.put("2026/a b.png", b"x", content_type="image/png", metadata=META)
        assert stored.url == "https://cdn.example.com/img/2026/a%20b.png"

    @pytest.mark.parametrize("key", BAD_KEYS)
    async def test_every_operation_refuses_escaping_keys(self, tmp_path: Path, key: str) -> None:
        """get, delete and url_for refuse the same keys put refuses, touching nothing outside."""
        outside = tmp_path / "x.png"
        outside.write_bytes(b"secret")
        storage = LocalStorage(tmp_path / "store" / "inner")
        with pytest.raises(StorageError):
            await storage.get(key)
        with pytest.raises(StorageError):
            await storage.delete(key)
        with pytest.raises(StorageError):
            storage.url_for(key)
        assert outside.read_bytes() == b"secret"


class _HalfWriter:
    """A file handle that writes half of what it is given, then runs out of disk."""

    def __init__(self, handle: Any) -> None:
        self._handle = handle

    def __enter__(self) -> _HalfWriter:
        return self

    def __exit__(self, *exc: object | TracebackType) -> None:
        self._handle.close()

    def write(self, data: bytes) -> int:
        self._handle.write(data[: len(data) // 2])
        self._handle.flush()
        raise OSError(errno.ENOSPC, "No space left on device")

    def flush(self) -> None:
        self._handle.flush()

    def fileno(self) -> int:
        return int(self._handle.fileno())


class _OsProxy:
    """``os`` with a few functions replaced, for the _local module only."""

    def __init__(self, **overrides: Any) -> None:
        self._overrides = overrides

    def __getattr__(self, name: str) -> Any:
        return self._overrides.get(name) or getattr(os, name)


def _fail_write(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        _local, "os", _OsProxy(fdopen=lambda fd, mode: _HalfWriter(os.fdopen(fd, mode)))
    )


def _fail_fsync(monkeypatch: pytest.MonkeyPatch) -> None:
    def fsync(_fd: int) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(_local, "os", _OsProxy(fsync=fsync))


def _fail_replace(monkeypatch: pytest.MonkeyPatch) -> None:
    class FailingPath(type(Path())):  # type: ignore[misc]
        def replace(self, target: Any) -> Any:
            raise OSError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(_local, "Path", FailingPath)


FAILURES = {"write": _fail_write, "fsync": _fail_fsync, "replace": _fail_replace}


class TestLocalAtomicWrites:
    async def test_creates_nested_directories(self, tmp_path: Path) -> None:
        """put creates the root and every intermediate directory, and the file holds the bytes."""
        root = tmp_path / "does" / "not" / "exist"
        storage = LocalStorage(root)
        await storage.put("2026/05/01/cat.png", tiny_png(), content_type="image/png", metadata=META)
        assert (root / "2026" / "05" / "01" / "cat.png").read_bytes() == tiny_png()

    async def test_no_temp_files_after_success(self, tmp_path: Path) -> None:
        """After successful puts (new and overwrite) only the final files exist."""
        storage = LocalStorage(tmp_path)
        await storage.put("d/a.png", b"one", content_type="image/png", metadata=META)
        await storage.put("d/a.png", b"two", content_type="image/png", metadata=META)
        await storage.put("b.png", b"three", content_type="image/png", metadata=META)
        assert all_files(tmp_path) == ["b.png", "d/a.png"]

    @pytest.mark.parametrize("failure", list(FAILURES))
    async def test_failed_write_leaves_nothing(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failure: str
    ) -> None:
        """A write failing midway raises StorageError, leaves no final file and no temp file."""
        storage = LocalStorage(tmp_path)
        FAILURES[failure](monkeypatch)
        with pytest.raises(StorageError) as info:
            await storage.put("d/new.png", tiny_png(), content_type="image/png", metadata=META)
        assert isinstance(info.value.__cause__, OSError)
        assert not (tmp_path / "d" / "new.png").exists()
        assert all_files(tmp_path) == []

    @pytest.mark.parametrize("failure", list(FAILURES))
    async def test_failed_overwrite_keeps_old_file(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failure: str
    ) -> None:
        """A failed overwrite never exposes partial content: the old file is intact."""
        storage = LocalStorage(tmp_path)
        old = tiny_png(1, 2, 3)
        await storage.put("d/k.png", old, content_type="image/png", metadata=META)
        FAILURES[failure](monkeypatch)
        with pytest.raises(StorageError):
            await storage.put("d/k.png", b"N" * 50_000, content_type="image/png", metadata=META)
        monkeypatch.undo()
        assert await storage.get("d/k.png") == old
        assert all_files(tmp_path) == ["d/k.png"]

    async def test_delete_failure_is_a_storage_error(self, tmp_path: Path) -> None:
        """An OSError while deleting (here: the key names a directory) is a StorageError."""
        storage = LocalStorage(tmp_path)
        await storage.put("a/b.png", b"x", content_type="image/png", metadata=META)
        with pytest.raises(StorageError, match="could not delete"):
            await storage.delete("a")
        assert await storage.get("a/b.png") == b"x"

    async def test_stats_ignores_dot_prefixed_temp_files(self, tmp_path: Path) -> None:
        """Dot-prefixed files (in-flight temp files) are not counted by stats."""
        storage = LocalStorage(tmp_path)
        await storage.put("d/a.png", b"12345", content_type="image/png", metadata=META)
        (tmp_path / ".a.png.x1y2.tmp").write_bytes(b"partial" * 100)
        (tmp_path / "d" / ".a.png.z3.tmp").write_bytes(b"partial" * 100)
        assert await storage.stats() == imagegen.StorageStats(objects=1, bytes=5)


class TestLocalStaleTempFiles:
    """Temporary files a killed process left behind are swept; fresh ones are not."""

    @staticmethod
    def leftover(path: Path, age: float) -> Path:
        """A temp file as a killed write leaves it, last written ``age`` seconds ago."""
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"partial")
        then = path.stat().st_mtime - age
        os.utime(path, (then, then))
        return path

    async def test_first_write_into_a_directory_sweeps_it(self, tmp_path: Path) -> None:
        """Stale temp files beside the first write go; fresh ones, other dirs and images stay."""
        stale = self.leftover(tmp_path / "d" / ".a.png.k1.tmp", 120)
        fresh = self.leftover(tmp_path / "d" / ".b.png.k2.tmp", 5)
        elsewhere = self.leftover(tmp_path / "e" / ".c.png.k3.tmp", 120)
        dotted = self.leftover(tmp_path / "d" / ".keep", 120)
        storage = LocalStorage(tmp_path)
        await storage.put("d/x.png", b"1", content_type="image/png", metadata=META)
        assert not stale.exists()
        assert all(p.exists() for p in (fresh, elsewhere, dotted))
        # Swept once per directory: a later leftover waits for sweep().
        again = self.leftover(tmp_path / "d" / ".y.png.k4.tmp", 120)
        await storage.put("d/y.png", b"2", content_type="image/png", metadata=META)
        assert again.exists()
        assert await storage.get("d/x.png") == b"1"

    async def test_sweep_walks_the_tree(self, tmp_path: Path) -> None:
        """sweep() deletes every stale temp file under the root and says how many."""
        storage = LocalStorage(tmp_path, temp_age=30)
        assert await storage.sweep() == 0  # no directory yet
        old = [self.leftover(tmp_path / p, 60) for p in (".r.tmp", "a/.s.tmp", "a/b/.t.tmp")]
        young = self.leftover(tmp_path / "a" / ".u.tmp", 1)
        await storage.put("a/b/img.png", b"x", content_type="image/png", metadata=META)
        assert await storage.sweep() == 2  # the put swept a/b already
        assert not any(p.exists() for p in old)
        assert young.exists()
        assert await storage.get("a/b/img.png") == b"x"

    async def test_a_failing_sweep_does_not_fail_the_write(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The image is stored even when its directory cannot be swept."""

        def broken(*_: object) -> int:
            raise PermissionError(errno.EACCES, "Permission denied")

        monkeypatch.setattr(_local, "_sweep_dir", broken)
        storage = LocalStorage(tmp_path)
        await storage.put("d/x.png", b"1", content_type="image/png", metadata=META)
        assert await storage.get("d/x.png") == b"1"
        with pytest.raises(StorageError, match="could not sweep"):
            await storage.sweep()

    @pytest.mark.parametrize("age", [0, -1.0, float("nan"), True, "60"])
    def test_bad_temp_age_is_refused(self, tmp_path: Path, age: object) -> None:
        """temp_age must be a positive number of seconds."""
        with pytest.raises(imagegen.InvalidConfig) as info:
            LocalStorage(tmp_path, temp_age=age)  # type: ignore[arg-type]
        assert info.value.field == "temp_age"


@pytest.fixture
def umask() -> Iterator[Callable[[int], int]]:
    """``os.umask``, for one test: the process umask is restored after it."""
    saved = os.umask(0o022)
    yield os.umask
    os.umask(saved)


def file_mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


@pytest.mark.skipif(os.name == "nt", reason="POSIX permission bits")
class TestLocalFileModes:
    """Files get 0o666 less the umask, as open() would make them, or exactly ``mode``."""

    @pytest.mark.parametrize(("mask", "expected"), [(0o022, 0o644), (0o027, 0o640), (0o002, 0o664)])
    async def test_files_follow_the_umask(
        self, tmp_path: Path, umask: Callable[[int], int], mask: int, expected: int
    ) -> None:
        """New files and overwrites alike: readable by a web server under another user."""
        umask(mask)
        storage = LocalStorage(tmp_path)
        await storage.put("d/a.png", b"one", content_type="image/png", metadata=META)
        assert file_mode(tmp_path / "d" / "a.png") == expected
        await storage.put("d/a.png", b"two", content_type="image/png", metadata=META)
        assert file_mode(tmp_path / "d" / "a.png") == expected

    async def test_umask_is_read_when_writing(
        self, tmp_path: Path, umask: Callable[[int], int]
    ) -> None:
        """The umask in force at the write counts, not the one at construction."""
        umask(0o077)
        storage = LocalStorage(tmp_path)
        umask(0o022)
        await storage.put("a.png", b"x", content_type="image/png", metadata=META)
        assert file_mode(tmp_path / "a.png") == 0o644

    @pytest.mark.parametrize("mode", [0o644, 0o640, 0o600, 0o666])
    async def test_explicit_mode_ignores_the_umask(
        self, tmp_path: Path, umask: Callable[[int], int], mode: int
    ) -> None:
        umask(0o077)
        storage = LocalStorage(tmp_path, mode=mode)
        assert storage.mode == mode
        await storage.put("d/a.png", b"one", content_type="image/png", metadata=META)
        assert file_mode(tmp_path / "d" / "a.png") == mode
        await storage.put("d/a.png", b"two", content_type="image/png", metadata=META)
        assert file_mode(tmp_path / "d" / "a.png") == mode
        assert await storage.get("d/a.png") == b"two"
        assert all_files(tmp_path) == ["d/a.png"]

    def test_extreme_modes_are_accepted(self, tmp_path: Path) -> None:
        assert LocalStorage(tmp_path, mode=0).mode == 0
        assert LocalStorage(tmp_path, mode=0o777).mode == 0o777
        assert LocalStorage(tmp_path).mode is None

    @pytest.mark.parametrize("mode", [-1, 0o1000, 0o4755, True, "644", 0.5, 420.0])
    def test_bad_mode_is_refused(self, tmp_path: Path, mode: object) -> None:
        """mode must be None or an int from 0 to 0o777; the error names it."""
        with pytest.raises(imagegen.InvalidConfig, match="mode") as info:
            LocalStorage(tmp_path, mode=mode)  # type: ignore[arg-type]
        assert info.value.field == "mode"


class TestLocalTempNames:
    async def test_a_taken_temporary_name_is_never_opened(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A file already under the temporary name (a planted link, a collision) is never
        written through: another name is drawn, and after 100 taken names the write fails
        as a StorageError, the planted file untouched."""
        monkeypatch.setattr(_local.secrets, "token_hex", lambda _: "0" * 16)
        planted = tmp_path / "d" / ".x.png.0000000000000000.tmp"
        planted.parent.mkdir()
        planted.write_bytes(b"someone else's")
        storage = LocalStorage(tmp_path)
        with pytest.raises(StorageError, match="no free temporary name"):
            await storage.put("d/x.png", b"image", content_type="image/png", metadata=META)
        assert planted.read_bytes() == b"someone else's"
        assert not (tmp_path / "d" / "x.png").exists()
