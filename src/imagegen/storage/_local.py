"""Storage in a local directory, written atomically."""

from __future__ import annotations

import logging
import os
import secrets
import time
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import quote

import anyio.to_thread

from .._errors import InvalidConfig, StorageError
from ._base import StorageStats, StoredObject, check_key

__all__ = ["LocalStorage"]

logger = logging.getLogger("imagegen")


class LocalStorage:
    """Images as files under ``directory``.

    Each write goes to a temporary file in the target directory, is flushed to
    disk, then renamed over the final name, so a crash never leaves half an image
    under a real key. A process killed mid-write leaves its temporary file
    (``.name.*.tmp``) behind: the first write into a directory sweeps the ones
    older than ``temp_age`` seconds there, and :meth:`sweep` does it for the whole
    tree. File I/O runs in worker threads.

    Args:
        directory: The root; created on first write.
        base_url: Public URL prefix that serves ``directory`` (a CDN or a static
            file server); without it ``url_for`` gives a ``file://`` URL.
        temp_age: Seconds after which a temporary file is stale (no write takes
            that long): a minute by default.
        mode: Permission bits of the files written (``0o644``: readable by a web
            server running as another user). None (the default) creates them as
            ``open()`` would: ``0o666`` less the process umask (``0o644`` under the
            usual ``022``). Directories made on the way always follow the umask.

    Raises:
        InvalidConfig: ``temp_age`` is not a positive number, or ``mode`` not an
            int from 0 to ``0o777``.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        base_url: str | None = None,
        *,
        temp_age: float = 60.0,
        mode: int | None = None,
    ) -> None:
        if isinstance(temp_age, bool) or not isinstance(temp_age, int | float) or not temp_age > 0:
            raise InvalidConfig(
                f"temp_age must be a positive number of seconds, not {temp_age!r}", field="temp_age"
            )
        if mode is not None and (
            isinstance(mode, bool) or not isinstance(mode, int) or not 0 <= mode <= 0o777
        ):
            raise InvalidConfig(
                f"mode must be None or permission bits from 0 to 0o777, not {mode!r}", field="mode"
            )
        self.directory = Path(directory).absolute()
        self.base_url = base_url.rstrip("/") + "/" if base_url else None
        self.temp_age = temp_age
        self.mode = mode
        self._swept: set[Path] = set()  # directories this instance has swept already

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
        sweep = path.parent not in self._swept
        try:
            await anyio.to_thread.run_sync(_write_atomically, path, bytes(data), self.mode)
        except OSError as exc:
            raise StorageError(f"could not write {key!r}: {exc.strerror or exc}") from exc
        if sweep:
            self._swept.add(path.parent)
            try:
                await anyio.to_thread.run_sync(_sweep_dir, path.parent, time.time() - self.temp_age)
            except OSError as exc:  # the image is stored; leftovers wait for sweep()
                logger.warning("could not sweep %s for stale temporary files: %s", path.parent, exc)
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

    async def sweep(self) -> int:
        """Delete the temporary files older than ``temp_age`` under the whole tree.

        Returns how many were deleted. Worth running after a crash on a tree with
        many directories (writes sweep only the directories they write to).

        Raises:
            StorageError: The tree could not be walked.
        """
        cutoff = time.time() - self.temp_age

        def walk() -> int:
            if not self.directory.exists():
                return 0
            dirs = [self.directory, *(p for p in self.directory.rglob("*") if p.is_dir())]
            return sum(_sweep_dir(d, cutoff) for d in dirs)

        try:
            return await anyio.to_thread.run_sync(walk)
        except OSError as exc:
            raise StorageError(f"could not sweep {self.directory}: {exc.strerror or exc}") from exc

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


def _sweep_dir(directory: Path, cutoff: float) -> int:
    """Delete ``directory``'s temporary files last written before ``cutoff``; how many.

    A file that vanishes meanwhile (a write finishing, another sweeper) is skipped.
    """
    deleted = 0
    with os.scandir(directory) as entries:
        for entry in entries:
            if not (entry.name.startswith(".") and entry.name.endswith(".tmp")):
                continue
            try:
                if entry.is_file(follow_symlinks=False) and entry.stat().st_mtime < cutoff:
                    Path(entry.path).unlink()
                    deleted += 1
            except FileNotFoundError:
                continue
    return deleted


#: How the temporary file is opened: created here or not at all (never through a link
#: someone left under its name), binary on Windows, not inherited by child processes.
_TEMP_FLAGS = (
    os.O_WRONLY
    | os.O_CREAT
    | os.O_EXCL
    | getattr(os, "O_NOFOLLOW", 0)
    | getattr(os, "O_CLOEXEC", 0)
    | getattr(os, "O_BINARY", 0)
)


def _create_temp(path: Path, mode: int) -> tuple[int, Path]:
    """A new temporary file beside ``path`` (``.name.<random>.tmp``) created with ``mode``."""
    for _ in range(100):
        # Dot-prefixed, in the same directory: same filesystem, so the rename is atomic.
        tmp = Path(path.parent, f".{path.name}.{secrets.token_hex(8)}.tmp")
        try:
            return os.open(tmp, _TEMP_FLAGS, mode), tmp
        except FileExistsError:  # 64 random bits taken already (or a planted file)
            continue
    raise FileExistsError(f"no free temporary name beside {path}")


def _write_atomically(path: Path, data: bytes, mode: int | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # The umask is never read here: os.umask() reads it only by setting it, a process-wide
    # change that races with every other thread creating files meanwhile. Without
    # ``mode`` the file is created 0o666 and the kernel takes the process umask off (and
    # applies a directory's default ACL) at that moment, exactly as open() would, so a
    # umask changed later is honoured too (tempfile.mkstemp made it 0o600 whatever the
    # umask: unreadable to a web server running as another user). With ``mode`` it is
    # created private (0o600) while its bytes go in, then set to exactly ``mode`` (chmod
    # ignores the umask) before the rename publishes it.
    fd, tmp = _create_temp(path, 0o666 if mode is None else 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
            if mode is not None:
                if hasattr(os, "fchmod"):  # on the file itself, wherever its name points
                    os.fchmod(handle.fileno(), mode)
                else:  # Windows (only the read-only bit means anything there)
                    tmp.chmod(mode)
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
