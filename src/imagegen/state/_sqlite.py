"""State in one SQLite file: embedded, persistent, shared by processes on one machine."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TypeVar

import anyio.to_thread

from ._threads import WorkerThreads

__all__ = ["SQLiteState"]

_T = TypeVar("_T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS kv (
    key TEXT PRIMARY KEY,
    value BLOB NOT NULL,
    expires REAL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS kv_expires ON kv (expires) WHERE expires IS NOT NULL;
"""
# A row whose expiry has passed is treated as absent by every statement below.
_LIVE = "(expires IS NULL OR expires > ?)"


class SQLiteState:
    """A :class:`~imagegen.state.StateBackend` in a SQLite file, via the stdlib driver.

    Calls run in a worker thread (so they work on asyncio and trio alike) one at a
    time over a single connection in WAL mode. A caller may give up on a call (its
    deadline passed): the call finishes in its thread, and until it does the next
    call fails at once with a StorageError (a database locked by another process
    holds a call up to the ten-second busy timeout); several processes may share the
    file, SQLite's locking keeps ``incr`` and ``set_if_absent`` atomic. Expiry is
    on wall-clock time, which processes agree on.

    Args:
        path: The database file; its directory is created if missing.
        timer: Wall clock for expiry (Unix seconds).
    """

    def __init__(self, path: str | Path, *, timer: Callable[[], float] = time.time) -> None:
        self.path = Path(path)
        self._timer = timer
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()
        self._threads = WorkerThreads(1, f"SQLite state {self.path.name!r}")
        self._ops = 0

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(
            self.path, timeout=10.0, isolation_level=None, check_same_thread=False
        )
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.executescript(_SCHEMA)
        return conn

    def _run(self, fn: Callable[[sqlite3.Connection], _T]) -> _T:
        with self._lock:
            if self._conn is None:
                self._conn = self._connect()
            self._ops += 1
            if self._ops % 1000 == 0:
                self._conn.execute("DELETE FROM kv WHERE expires <= ?", (self._timer(),))
            return fn(self._conn)

    async def _call(self, fn: Callable[[sqlite3.Connection], _T]) -> _T:
        return await self._threads.run(self._run, fn)

    def _expiry(self, ttl: float | None) -> float | None:
        return None if ttl is None else self._timer() + ttl

    async def get(self, key: str) -> bytes | None:
        now = self._timer()

        def op(conn: sqlite3.Connection) -> bytes | None:
            row = conn.execute(
                f"SELECT value FROM kv WHERE key = ? AND {_LIVE}", (key, now)
            ).fetchone()
            return None if row is None else _as_bytes(row[0])

        return await self._call(op)

    async def set(self, key: str, value: bytes, *, ttl: float | None = None) -> None:
        expires = self._expiry(ttl)
        await self._call(
            lambda conn: conn.execute(
                "INSERT OR REPLACE INTO kv (key, value, expires) VALUES (?, ?, ?)",
                (key, bytes(value), expires),
            )
        )

    async def delete(self, key: str) -> None:
        await self._call(lambda conn: conn.execute("DELETE FROM kv WHERE key = ?", (key,)))

    async def incr(self, key: str, amount: int = 1, *, ttl: float | None = None) -> int:
        now, expires = self._timer(), self._expiry(ttl)
        return await self._call(lambda conn: _incr(conn, key, amount, expires, now))

    async def incr_many(self, amounts: Mapping[str, int], *, ttl: float | None = None) -> None:
        """``incr`` of each key by its amount, in one transaction and one thread hop."""
        await self._batch({}, amounts, ttl, None)

    async def write_batch(
        self,
        values: Mapping[str, tuple[bytes, float | None]],
        amounts: Mapping[str, int],
        *,
        ttl: float | None = None,
        once: tuple[str, float] | None = None,
    ) -> None:
        """``set`` of each value and ``incr`` of each counter (unless ``once``'s key is
        there already) in one transaction and one thread hop: all or nothing."""
        await self._batch(values, amounts, ttl, once)

    async def _batch(
        self,
        values: Mapping[str, tuple[bytes, float | None]],
        amounts: Mapping[str, int],
        ttl: float | None,
        once: tuple[str, float] | None,
    ) -> None:
        now, expires = self._timer(), self._expiry(ttl)
        rows = [(key, bytes(value), self._expiry(t)) for key, (value, t) in values.items()]
        items = list(amounts.items())
        marker = None if once is None else (once[0], self._expiry(once[1]))

        def op(conn: sqlite3.Connection) -> None:
            conn.execute("BEGIN")
            try:
                conn.executemany(
                    "INSERT OR REPLACE INTO kv (key, value, expires) VALUES (?, ?, ?)", rows
                )
                if marker is None or _claim(conn, *marker, now):
                    for key, amount in items:
                        _incr(conn, key, amount, expires, now)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

        await self._call(op)

    async def scan(self, prefix: str) -> list[str]:
        now = self._timer()
        # A range on the primary key: literal (no LIKE escaping to get wrong) and indexed.
        upper = _successor(prefix)

        def op(conn: sqlite3.Connection) -> list[str]:
            if upper is None:
                rows = conn.execute(
                    f"SELECT key FROM kv WHERE key >= ? AND {_LIVE} ORDER BY key", (prefix, now)
                ).fetchall()
            else:
                rows = conn.execute(
                    f"SELECT key FROM kv WHERE key >= ? AND key < ? AND {_LIVE} ORDER BY key",
                    (prefix, upper, now),
                ).fetchall()
            return [row[0] for row in rows]

        return await self._call(op)

    async def set_if_absent(self, key: str, value: bytes, *, ttl: float | None = None) -> bool:
        now, expires = self._timer(), self._expiry(ttl)

        return await self._call(lambda conn: _claim(conn, key, expires, now, bytes(value)))

    async def aclose(self) -> None:
        def close() -> None:
            with self._lock:
                if self._conn is not None:
                    self._conn.close()
                    self._conn = None

        await anyio.to_thread.run_sync(close)

    def __repr__(self) -> str:
        return f"SQLiteState({str(self.path)!r})"


def _successor(prefix: str) -> str | None:
    """The smallest string greater than every string starting with ``prefix`` (None: none)."""
    # SQLite compares TEXT as UTF-8 bytes, which order like code points.
    while prefix and prefix[-1] == "\U0010ffff":
        prefix = prefix[:-1]
    if not prefix:
        return None
    following = ord(prefix[-1]) + 1
    if 0xD800 <= following <= 0xDFFF:  # surrogates cannot be encoded: skip past them
        following = 0xE000
    return prefix[:-1] + chr(following)


def _as_bytes(value: object) -> bytes:
    # Counters come back as INTEGER after an incr; everything else as BLOB.
    if isinstance(value, bytes):
        return value
    return str(value).encode()


def _incr(
    conn: sqlite3.Connection, key: str, amount: int, expires: float | None, now: float
) -> int:
    # A live value that is not an integer becomes NULL, which the NOT NULL constraint
    # refuses: the same ValueError MemoryState raises, atomically.
    try:
        row = conn.execute(
            "INSERT INTO kv (key, value, expires) VALUES (?1, ?2, ?3) "
            "ON CONFLICT (key) DO UPDATE SET "
            "value = CASE WHEN kv.expires IS NOT NULL AND kv.expires <= ?4 THEN ?2 "
            "WHEN CAST(CAST(kv.value AS INTEGER) AS TEXT) = CAST(kv.value AS TEXT) "
            "THEN CAST(kv.value AS INTEGER) + ?2 ELSE NULL END, "
            "expires = CASE WHEN kv.expires IS NOT NULL AND kv.expires <= ?4 THEN ?3 "
            "ELSE kv.expires END "
            "RETURNING value",
            (key, amount, expires, now),
        ).fetchone()
    except sqlite3.IntegrityError:
        msg = f"the value at {key!r} is not an integer"
        raise ValueError(msg) from None
    return int(row[0])


def _claim(
    conn: sqlite3.Connection, key: str, expires: float | None, now: float, value: bytes = b"1"
) -> bool:
    """Store ``value`` at ``key`` unless a live value is there; whether it was stored."""
    cursor = conn.execute(
        "INSERT INTO kv (key, value, expires) VALUES (?, ?, ?) "
        "ON CONFLICT (key) DO UPDATE SET "
        "value = excluded.value, expires = excluded.expires "
        "WHERE kv.expires IS NOT NULL AND kv.expires <= ?",
        (key, value, expires, now),
    )
    return cursor.rowcount == 1
