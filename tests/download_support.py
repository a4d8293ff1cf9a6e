"""Helpers for the download tests: a respx-served fake CDN and a fake resolver."""

from __future__ import annotations

import io
import socket
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
import respx
from PIL import Image

import imagegen._download
from imagegen import DownloadPolicy, ProviderError
from imagegen._download import fetch_image
from imagegen.testing import tiny_png

PUBLIC_URL = "https://93.184.215.14/x.png"
PRIVATE = {"allow_private_networks": True}


def pillow_bytes(fmt: str, size: tuple[int, int] = (16, 16)) -> bytes:
    """A ``size`` image saved by Pillow in ``fmt``."""
    buffer = io.BytesIO()
    Image.new("RGB", size, (30, 120, 200)).save(buffer, fmt)
    return buffer.getvalue()


class Server:
    """A respx side effect answering every download, recording the requests it gets."""

    def __init__(self, answer: Callable[[httpx.Request], httpx.Response] | None = None) -> None:
        self.requests: list[httpx.Request] = []
        self._answer = answer or (lambda _request: httpx.Response(200, content=tiny_png()))

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self._answer(request)


async def fetch(
    url: str,
    server: Server | None = None,
    policy: DownloadPolicy | None = None,
    *,
    headers: dict[str, str] | None = None,
    http: httpx.AsyncClient | None = None,
) -> tuple[bytes, str]:
    """fetch_image as provider "prov", every request answered by ``server``."""
    with respx.mock() as mock:
        mock.route().mock(side_effect=server or Server())
        return await fetch_image(
            url, http=http, policy=policy or DownloadPolicy(), provider="prov", headers=headers
        )


def resolver(
    monkeypatch: pytest.MonkeyPatch, *addresses: str, error: OSError | None = None
) -> list[str]:
    """Make imagegen._download resolve to ``addresses`` (or raise); returns the hosts asked."""
    asked: list[str] = []

    async def getaddrinfo(host: str, port: int, **_kwargs: Any) -> list[tuple[Any, ...]]:
        asked.append(host)
        if error is not None:
            raise error
        return [
            (socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port))
            for a in addresses
        ]

    monkeypatch.setattr(imagegen._download.anyio, "getaddrinfo", getaddrinfo)
    return asked


async def chunks(parts: list[bytes], pulled: list[int]) -> AsyncIterator[bytes]:
    """An async body that counts how many chunks were read."""
    for part in parts:
        pulled.append(1)
        yield part


def assert_refused(info: pytest.ExceptionInfo[ProviderError], server: Server) -> None:
    """A refusal is a plain, permanent ProviderError, and nothing was sent."""
    assert type(info.value) is ProviderError
    assert info.value.retryable is False
    assert info.value.provider == "prov"
    assert server.requests == []
