"""Storage in a local directory, written atomically."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import quote

import anyio.to_thread

from .._errors import StorageError
from ._base import StorageStats, StoredObject, check_key

__all__ = ["LocalStorage"]


class LocalStorage:
    """Images as files under ``directory``.

    Each write goes to a temporary file in the target directory, is flushed to
    disk, then renamed over the final name, so a crash never leaves half an image
    under a real key. File I/O runs in worker threads.

    Args:
        directory: The root; created on first write.
        base_url: Public URL prefix that serves ``directory`` (a CDN or a static
            file server); without it ``url_for`` gives a ``file://`` URL.
    """

    def __init__(self, directory: str | os.PathLike[str], base_url: str | None = None) -> None:
        self.directory = Path(directory).absolute()
        self.base_url = base_url.rstrip("/") + "/" if base_url else None

    def path_for(self, key: str) -> Path:
        """The file a key is stored in."""
        return self.directory / check_key(key)

    async def put(
        self,
        key: str,
        data: bytes,
        *,
        content_type: str,
        metadata: Mapping[str, str],
    ) -> StoredObject:
        path = self.path_for(key)
        try:
            await anyio.to_thread.run_sync(_write_atomically, path, bytes(data))
        except OSError as exc:
            raise StorageError(f"could not write {key!r}: {exc.strerror or exc}") from exc
        return StoredObject(key=key, url=self.url_for(key), size=len(data))

    async def get(self, key: str) -> bytes | None:
        path = self.path_for(key)
        try:
            return await anyio.to_thread.run_sync(path.read_bytes)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StorageError(f"could not read {key!r}: {exc.strerror or exc}") from exc

    async def delete(self, key: str) -> None:
        path = self.path_for(key)
        try:
            await anyio.to_thread.run_sync(lambda: path.unlink(missing_ok=True))
        except OSError as exc:
            raise StorageError(f"could not delete {key!r}: {exc.strerror or exc}") from exc

    def url_for(self, key: str) -> str:
        if self.base_url:
            return self.base_url + quote(check_key(key))
        return self.path_for(key).as_uri()

    async def stats(self) -> StorageStats:
        def count() -> StorageStats:
            files = [
                p for p in self.directory.rglob("*") if p.is_file() and not p.name.startswith(".")
            ]
            return StorageStats(objects=len(files), bytes=sum(p.stat().st_size for p in files))

        return await anyio.to_thread.run_sync(count)

    def __repr__(self) -> str:
        return f"LocalStorage({str(self.directory)!r})"


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # Dot-prefixed temp name in the same directory: same filesystem, so the rename is atomic.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
