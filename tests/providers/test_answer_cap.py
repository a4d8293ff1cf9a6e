"""HTTPProvider reads a vendor's answer with a size cap, as it streams in, before any parsing."""

from __future__ import annotations

import gzip
import json
from collections.abc import AsyncIterator
from typing import Any

import anyio
import anyio.lowlevel
import httpx
import pytest
from benchmarks.emulator import Emulator, Fault, ProviderProfile

from imagegen import (
    AllProvidersFailed,
    DownloadPolicy,
    ImageGenerator,
    ProviderContext,
    ProviderUnavailable,
    Retry,
)
from imagegen.providers._http import DEFAULT_MAX_RESPONSE_BYTES, HTTPProvider
from imagegen.testing import FakeClock

pytestmark = pytest.mark.anyio

KEY = "sk-cap-0123456789abcdef"
CHUNK = 64 * 1024


class Dummy(HTTPProvider):
    name = "dummy"
    default_base_url = "https://api.dummy.example/v1"

    async def generate(self, request: Any, ctx: ProviderContext) -> Any:
        raise NotImplementedError


class Endless(httpx.AsyncByteStream):
    """A body of ``total`` bytes, served in 64 KiB chunks; counts what was pulled.

    Each chunk waits for the "network" first (a checkpoint), as a socket read does.
    """

    def __init__(self, total: int, *, waits: bool = True) -> None:
        self.total = total
        self.pulled = 0
        self.waits = waits

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while self.pulled < self.total:
            if self.waits:
                await anyio.lowlevel.checkpoint()
            size = min(CHUNK, self.total - self.pulled)
            self.pulled += size
            yield b"x" * size


async def call(
    status: int, body: Endless, *, cap: int | None = None, headers: dict[str, str] | None = None
) -> httpx.Response:
    """One create answered with ``body``, on a provider capped at ``cap`` bytes."""

    async def handler(_: httpx.Request) -> httpx.Response:
        return httpx.Response(status, stream=body, headers=headers)

    clock = FakeClock()
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        ctx = ProviderContext(deadline=30.0, clock=clock, http_factory=lambda: http)
        provider = Dummy(api_key=KEY)
        if cap is not None:
            provider.max_response_bytes = cap
        return await provider.request(ctx, "POST", "/images", create=True)


class TestCap:
    def test_default_fits_the_largest_inline_image(self) -> None:
        """The default is the download policy's largest image in base64, plus 1 MiB of JSON."""
        largest = DownloadPolicy().max_bytes
        assert largest * 4 // 3 + 2**20 == DEFAULT_MAX_RESPONSE_BYTES
        assert Dummy(api_key=KEY).max_response_bytes == DEFAULT_MAX_RESPONSE_BYTES

    async def test_an_oversized_answer_stops_the_read(self) -> None:
        """A 150 MB answer is refused after the cap plus one chunk, not read to the end."""
        body = Endless(150_000_000)
        with pytest.raises(ProviderUnavailable) as info:
            await call(200, body)
        assert body.pulled <= DEFAULT_MAX_RESPONSE_BYTES + CHUNK
        assert body.pulled < 150_000_000 // 4
        assert not info.value.retryable
        assert str(DEFAULT_MAX_RESPONSE_BYTES) in str(info.value)
        assert "max_response_bytes" in str(info.value)
        assert info.value.status == 200

    async def test_a_declared_length_over_the_cap_reads_nothing(self) -> None:
        """A Content-Length over the cap is refused before the body is touched."""
        body = Endless(10 * CHUNK)
        with pytest.raises(ProviderUnavailable, match="longer than 100000 bytes"):
            await call(200, body, cap=100_000, headers={"Content-Length": str(10 * CHUNK)})
        assert body.pulled == 0

    async def test_an_answer_at_the_cap_is_read_whole(self) -> None:
        """Exactly the cap is fine, and the answer's bytes are all there."""
        response = await call(200, Endless(3 * CHUNK), cap=3 * CHUNK)
        assert response.content == b"x" * (3 * CHUNK)

    async def test_an_error_answer_keeps_its_status(self) -> None:
        """A huge error page is cut to 64 KiB and still maps by its status (a retryable 5xx)."""
        body = Endless(50_000_000)
        clock = FakeClock()

        async def handler(_: httpx.Request) -> httpx.Response:
            return httpx.Response(503, stream=body, headers={"Retry-After": "2"})

        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
            ctx = ProviderContext(deadline=30.0, clock=clock, http_factory=lambda: http)
            with pytest.raises(ProviderUnavailable) as info:
                await Dummy(api_key=KEY).request(ctx, "GET", "/status")
        assert info.value.retryable
        assert info.value.retry_after == 2.0
        assert body.pulled <= 64 * 1024 + CHUNK

    async def test_a_compressed_answer_is_decoded_once(self) -> None:
        """A gzip answer comes back decoded, parses, and no longer claims an encoding."""
        data = {"images": [{"url": "https://cdn.example/a.png"}]}
        packed = gzip.compress(json.dumps(data).encode())

        async def handler(_: httpx.Request) -> httpx.Response:
            return httpx.Response(200, content=packed, headers={"Content-Encoding": "gzip"})

        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
            ctx = ProviderContext(deadline=30.0, clock=FakeClock(), http_factory=lambda: http)
            provider = Dummy(api_key=KEY)
            response = await provider.request(ctx, "GET", "/result")
        assert provider.json_object(response) == data
        assert "content-encoding" not in response.headers
        assert response.request.url == "https://api.dummy.example/v1/result"

    async def test_a_compressed_bomb_is_cut_by_its_decoded_size(self) -> None:
        """The cap counts decoded bytes: a small gzip body that inflates past it is refused."""
        packed = gzip.compress(b"\0" * 5_000_000)

        async def handler(_: httpx.Request) -> httpx.Response:
            return httpx.Response(200, content=packed, headers={"Content-Encoding": "gzip"})

        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
            ctx = ProviderContext(deadline=30.0, clock=FakeClock(), http_factory=lambda: http)
            provider = Dummy(api_key=KEY)
            provider.max_response_bytes = 1_000_000
            with pytest.raises(ProviderUnavailable, match="max_response_bytes"):
                await provider.request(ctx, "GET", "/result")


async def test_an_inline_image_over_the_cap_fails_over() -> None:
    """On the emulator: OpenAI's oversized b64 answer is refused, billed once, not retried."""
    profiles = {"openai": ProviderProfile(oversize_bytes=300_000), "backup": ProviderProfile()}
    async with Emulator(profiles) as emu:
        emu.force("openai", Fault.OVERSIZED)
        capped = emu.provider("openai", model="gpt-image-1")
        capped.max_response_bytes = 200_000  # type: ignore[attr-defined]
        gen = ImageGenerator(
            providers=[capped],
            retry=Retry(attempts=3, initial=0.01),
            download=DownloadPolicy(allow_http=True, allow_private_networks=True),
            default_image=None,
        )
        async with gen:
            with pytest.raises(AllProvidersFailed) as info:
                await gen.generate("a red fox")
        stats = emu.stats("openai")
    error = info.value.attempts[0].error
    assert isinstance(error, ProviderUnavailable)
    assert "200000" in str(error)
    assert (stats.creates, stats.billed) == (1, 1)
