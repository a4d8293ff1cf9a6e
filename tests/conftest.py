from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest

import imagegen._download
from imagegen.testing import FakeClock
from redis_support import redis_db, redis_server  # noqa: F401 - fixtures for every test


@pytest.fixture(
    params=[
        pytest.param("asyncio", id="asyncio"),
        pytest.param("trio", id="trio"),
    ]
)
def anyio_backend(request: pytest.FixtureRequest) -> str:
    """Every async test runs on asyncio and on trio, pinned here, not by the plugin."""
    return str(request.param)


@pytest.fixture
async def clock() -> AsyncIterator[FakeClock]:
    """Virtual time that jumps ahead whenever every task is blocked."""
    async with FakeClock() as fake:
        yield fake


@pytest.fixture
def public_dns(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every host resolves to a public address, so the download policy lets vendor file
    hosts through (respx answers the requests; nothing is contacted)."""

    async def getaddrinfo(host: str, port: int, **_: Any) -> list[tuple[Any, ...]]:
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.215.14", port))]

    monkeypatch.setattr(imagegen._download.anyio, "getaddrinfo", getaddrinfo)
