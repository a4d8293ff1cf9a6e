"""A big image is hashed in a worker thread, a small one on the event loop; the digest is
the same either way."""

from __future__ import annotations

import hashlib
import threading
from typing import Any

import pytest

from imagegen import _store
from imagegen._store import HASH_IN_THREAD, sha256_hex

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("size", [0, 1000, HASH_IN_THREAD, HASH_IN_THREAD + 1, 3 * 2**20])
async def test_where_and_what(size: int, monkeypatch: pytest.MonkeyPatch) -> None:
    data = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    threads: list[threading.Thread] = []
    real = hashlib.sha256

    def watched(*args: Any) -> Any:
        threads.append(threading.current_thread())
        return real(*args)

    monkeypatch.setattr(_store.hashlib, "sha256", watched)
    digest = await sha256_hex(data)
    assert digest == real(data).hexdigest()
    [thread] = threads
    assert (thread is threading.main_thread()) == (size <= HASH_IN_THREAD)
