"""ProviderContext.create_sent: set once a create may have reached the vendor, and only then."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx
import pytest
import respx
from benchmarks.emulator import Emulator, Fault, ProviderProfile, closed_port_url

from imagegen import (
    Fal,
    ImageRequest,
    OpenAIImages,
    ProviderContext,
    ProviderError,
    ProviderTimeout,
    ProviderUnavailable,
    Replicate,
)
from imagegen.providers._http import HTTPProvider
from imagegen.testing import FakeClock

pytestmark = pytest.mark.anyio

KEY = "sk-create-sent-0123456789"
Handler = Callable[[httpx.Request], Awaitable[httpx.Response]]


class Dummy(HTTPProvider):
    name = "dummy"
    default_base_url = "https://api.dummy.example/v1"

    async def generate(self, request: Any, ctx: ProviderContext) -> Any:
        raise NotImplementedError


@asynccontextmanager
async def mocked(clock: FakeClock, handler: Handler) -> AsyncIterator[ProviderContext]:
    """A context whose HTTP client answers with ``handler``, 30 virtual seconds left."""
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        yield ProviderContext(
            deadline=clock.monotonic() + 30, clock=clock, http_factory=lambda: http
        )


async def answer(_: httpx.Request) -> httpx.Response:
    return httpx.Response(201, json={"id": "work-1"})


def failing(exc: type[httpx.RequestError]) -> Handler:
    async def handler(request: httpx.Request) -> httpx.Response:
        raise exc("simulated", request=request)

    return handler


def traced_then_hang(*events: str) -> Handler:
    """A transport that reports ``events`` through httpcore's trace extension, then hangs."""

    async def handler(request: httpx.Request) -> httpx.Response:
        trace = request.extensions["trace"]
        for event in events:
            await trace(event, {})
        await anyio.sleep_forever()
        raise AssertionError("unreachable")

    return handler


class TestProtectCreate:
    @pytest.mark.parametrize("spawn", [False, True])
    async def test_set_before_the_create_runs(self, clock: FakeClock, spawn: bool) -> None:
        """protect_create sets the flag before the create starts, with or without a background."""
        seen: list[bool] = []
        async with anyio.create_task_group() as tg:
            ctx = ProviderContext(
                deadline=10.0, clock=clock, spawn=tg.start_soon if spawn else None
            )
            assert not ctx.create_sent

            async def create() -> str:
                seen.append(ctx.create_sent)
                return "work-1"

            async def undo(_: str, __: ProviderContext) -> None:
                return None

            assert await ctx.protect_create(create, undo) == "work-1"
        assert seen == [True]
        assert ctx.create_sent

    def test_read_only(self) -> None:
        """Nobody outside the machinery can set or clear the flag."""
        ctx = ProviderContext(deadline=1.0)
        with pytest.raises(AttributeError):
            ctx.create_sent = True  # type: ignore[misc]


class TestRequest:
    async def test_answered_create_sets_it(self, clock: FakeClock) -> None:
        """A create that got an answer reached the vendor."""
        async with mocked(clock, answer) as ctx:
            await Dummy(api_key=KEY).request(ctx, "POST", "/x", create=True)
        assert ctx.create_sent

    async def test_other_requests_never_set_it(self, clock: FakeClock) -> None:
        """Requests that create nothing (polls, checks) leave the flag alone, whatever happens."""
        async with mocked(clock, answer) as ctx:
            await Dummy(api_key=KEY).request(ctx, "GET", "/x")
        async with mocked(clock, failing(httpx.ReadTimeout)) as late:
            with pytest.raises(ProviderTimeout):
                await Dummy(api_key=KEY).request(late, "POST", "/x")
        assert not ctx.create_sent
        assert not late.create_sent

    async def test_error_answers_set_it(self, clock: FakeClock) -> None:
        """A 5xx to a create came from the vendor: the create reached it."""

        async def broken(_: httpx.Request) -> httpx.Response:
            return httpx.Response(500, json={"detail": "boom"})

        async with mocked(clock, broken) as ctx:
            with pytest.raises(ProviderUnavailable):
                await Dummy(api_key=KEY).request(ctx, "POST", "/x", create=True)
        assert ctx.create_sent

    @pytest.mark.parametrize("exc", [httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout])
    async def test_unsent_creates_leave_it(
        self, clock: FakeClock, exc: type[httpx.RequestError]
    ) -> None:
        """A create that never got a connection cannot have reached the vendor."""
        async with mocked(clock, failing(exc)) as ctx:
            with pytest.raises(ProviderError):
                await Dummy(api_key=KEY).request(ctx, "POST", "/x", create=True)
        assert not ctx.create_sent

    @pytest.mark.parametrize("exc", [httpx.ReadTimeout, httpx.ReadError, httpx.WriteError])
    async def test_lost_answers_set_it(
        self, clock: FakeClock, exc: type[httpx.RequestError]
    ) -> None:
        """A timeout or a dropped connection after connecting: the create may exist."""
        async with mocked(clock, failing(exc)) as ctx:
            with pytest.raises(ProviderError) as info:
                await Dummy(api_key=KEY).request(ctx, "POST", "/x", create=True)
        assert ctx.create_sent
        assert not info.value.retryable

    @pytest.mark.parametrize(
        ("events", "sent"),
        [
            pytest.param((), True, id="transport-reports-nothing"),
            pytest.param(
                ("connection.connect_tcp.started", "connection.connect_tcp.complete"),
                False,
                id="still-connecting",
            ),
            pytest.param(
                ("connection.connect_tcp.complete", "http11.send_request_headers.started"),
                True,
                id="sending",
            ),
        ],
    )
    async def test_cut_off(self, clock: FakeClock, events: tuple[str, ...], sent: bool) -> None:
        """Cut off mid-request: sent unless httpcore said it was still connecting."""
        async with mocked(clock, traced_then_hang(*events)) as ctx:
            with clock.deadline_scope(clock.monotonic() + 1):
                await Dummy(api_key=KEY).request(ctx, "POST", "/x", create=True)
        assert ctx.create_sent is sent


class TestOnRealSockets:
    """On the emulator, with httpcore's own trace events."""

    async def test_a_stalled_create_sets_it_before_the_cut(self) -> None:
        """The vendor accepts the create and never answers: the flag is already set."""
        async with Emulator({"openai": ProviderProfile()}) as emu, httpx.AsyncClient() as http:
            emu.force("openai", Fault.STALL)
            ctx = ProviderContext(deadline=anyio.current_time() + 5, http_factory=lambda: http)
            provider = emu.provider("openai", model="flux-schnell")
            with anyio.move_on_after(0.3):
                await provider.generate(ImageRequest(prompt="a red fox"), ctx)
            assert emu.stats("openai").billed == 1
        assert ctx.create_sent

    async def test_a_refused_connection_leaves_it(self) -> None:
        """Nothing listens: the create never left, and the error says to retry."""
        async with httpx.AsyncClient() as http:
            ctx = ProviderContext(deadline=anyio.current_time() + 5, http_factory=lambda: http)
            dead = OpenAIImages(api_key=KEY, base_url=f"{closed_port_url()}/v1")
            with pytest.raises(ProviderUnavailable) as info:
                await dead.generate(ImageRequest(prompt="a red fox"), ctx)
        assert info.value.retryable
        assert not ctx.create_sent


REPLICATE = "https://api.replicate.com/v1"
REPLICATE_CREATE = f"{REPLICATE}/models/black-forest-labs/flux-schnell/predictions"
FAL_RUN = "https://fal.run/fal-ai/flux/schnell"
FAL_QUEUE = "https://queue.fal.run/fal-ai/flux/schnell"


class TestVendors:
    """Every built-in vendor's create sets the flag; its free calls do not."""

    @pytest.mark.parametrize(
        ("provider", "method", "url"),
        [
            (Replicate(api_token=KEY), "POST", REPLICATE_CREATE),
            (Fal(key=KEY, queue=False, queue_threshold=1e6), "POST", FAL_RUN),
            (Fal(key=KEY, queue=True), "POST", FAL_QUEUE),
            (OpenAIImages(api_key=KEY), "POST", "https://api.openai.com/v1/images/generations"),
        ],
        ids=["replicate", "fal-sync", "fal-queue", "openai"],
    )
    async def test_generate_sets_it(
        self, clock: FakeClock, provider: Any, method: str, url: str
    ) -> None:
        """A create cut off with no answer has the flag set (the attempt will not retry it)."""
        async with httpx.AsyncClient() as http:
            with respx.mock(assert_all_called=True) as mock:
                mock.route(method=method, url=url).mock(side_effect=httpx.ReadTimeout("stalled"))
                ctx = ProviderContext(
                    deadline=clock.monotonic() + 10, clock=clock, http_factory=lambda: http
                )
                with pytest.raises(ProviderTimeout) as info:
                    await provider.generate(ImageRequest(prompt="a red fox"), ctx)
        assert ctx.create_sent
        assert not info.value.retryable

    async def test_checks_do_not(self, clock: FakeClock) -> None:
        """check() bills nothing, so it never sets the flag."""
        async with httpx.AsyncClient() as http:
            with respx.mock(assert_all_called=True) as mock:
                mock.get(f"{REPLICATE}/account").respond(200, json={"username": "x"})
                ctx = ProviderContext(
                    deadline=clock.monotonic() + 10, clock=clock, http_factory=lambda: http
                )
                await Replicate(api_token=KEY).check(ctx)
        assert not ctx.create_sent
