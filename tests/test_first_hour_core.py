"""What a first hour with the library runs into: the size an ImageResult reports, and a
provider's ``ctx.http`` once its generator is closed."""

from __future__ import annotations

import httpx
import pytest
import respx

from imagegen import (
    ImageGenerator,
    ImageRequest,
    NotRunning,
    Provider,
    ProviderContext,
    ProviderImage,
)
from imagegen._image import encode_png, read_header
from imagegen.testing import FakeClock, FakeProvider, tiny_png

pytestmark = pytest.mark.anyio

#: A 64x32 PNG: not square, so a swapped width and height would show.
REAL = encode_png(64, 32, [b"\x10\x20\x30" * 64] * 32)
PHOTO_URL = "https://files.vendor.example/out/1.png"


class Boastful(Provider):
    """Says 1536x1024 whatever it returns."""

    name = "boastful"

    def __init__(self, **image: object) -> None:
        super().__init__()
        self.image = image

    async def generate(self, request: ImageRequest, ctx: ProviderContext) -> ProviderImage:
        return ProviderImage(width=1536, height=1024, **self.image)  # type: ignore[arg-type]


class TestReportedSize:
    """ImageResult.width/height: the stored image's own header, not the vendor's claim."""

    def test_the_images_are_what_the_tests_assume(self) -> None:
        assert (read_header(tiny_png()).width, read_header(tiny_png()).height) == (8, 8)
        assert (read_header(REAL).width, read_header(REAL).height) == (64, 32)

    @pytest.mark.parametrize(
        ("data", "size"), [(tiny_png(), (8, 8)), (REAL, (64, 32))], ids=["8x8", "64x32"]
    )
    async def test_bytes_report_their_header_size(
        self, clock: FakeClock, data: bytes, size: tuple[int, int]
    ) -> None:
        gen = ImageGenerator(providers=[Boastful(data=data)], clock=clock, default_image=None)
        result = await gen.generate("x", width=1536, height=1024)
        assert result.provider == "boastful"
        assert (result.width, result.height) == size

    async def test_a_download_reports_its_header_size(
        self, clock: FakeClock, public_dns: None
    ) -> None:
        gen = ImageGenerator(providers=[Boastful(url=PHOTO_URL)], clock=clock, default_image=None)
        with respx.mock(assert_all_called=True) as router:
            router.get(PHOTO_URL).respond(200, content=REAL, headers={"Content-Type": "image/png"})
            result = await gen.generate("x", width=1536, height=1024)
        assert result.data == REAL
        assert (result.width, result.height) == (64, 32)

    async def test_a_hotlink_keeps_the_providers_size(self, clock: FakeClock) -> None:
        """No bytes are ever seen: the provider's word is all there is."""
        gen = ImageGenerator(
            providers=[Boastful(url=PHOTO_URL, hotlink=True)], clock=clock, default_image=None
        )
        result = await gen.generate("x", width=1536, height=1024)
        assert (result.url, result.data) == (PHOTO_URL, None)
        assert (result.width, result.height) == (1536, 1024)

    async def test_the_requested_size_is_not_reported_either(self, clock: FakeClock) -> None:
        """FakeProvider echoes the requested size as its claim; the 8x8 PNG wins."""
        gen = ImageGenerator(providers=[FakeProvider("a")], clock=clock, default_image=None)
        result = await gen.generate("x", width=512, height=256)
        assert (result.width, result.height) == (8, 8)


class Keeper(Provider):
    """Keeps every context it is given, as a careless provider would."""

    name = "keeper"

    def __init__(self, *, touch: bool, handle: str | None = None, hang: bool = False) -> None:
        super().__init__()
        self.touch = touch
        self.handle = handle
        self.hang = hang
        self.contexts: list[ProviderContext] = []
        self.cancel_clients: list[httpx.AsyncClient] = []

    async def generate(self, request: ImageRequest, ctx: ProviderContext) -> ProviderImage:
        self.contexts.append(ctx)
        if self.touch:
            assert not ctx.http.is_closed
        if self.handle is not None:
            ctx.started(self.handle)
        if self.hang:
            await ctx.clock.sleep(1000)
        return ProviderImage(data=tiny_png())

    async def cancel(self, handle: object, ctx: ProviderContext) -> None:
        # Background clean-up, possibly running while the generator closes: it may still
        # use the client.
        client = ctx.http
        assert not client.is_closed
        self.cancel_clients.append(client)


async def _generate_and_close(gen: ImageGenerator, how: str) -> None:
    if how == "async with":
        async with gen:
            await gen.generate("x")
    else:
        await gen.generate("x")
        await gen.aclose()


class TestHttpAfterClose:
    """A context kept past its call gets NotRunning from ctx.http once the generator is
    closed, never a fresh client that no one would close."""

    @pytest.mark.parametrize("how", ["async with", "aclose"])
    async def test_client_opened_during_the_call(self, clock: FakeClock, how: str) -> None:
        keeper = Keeper(touch=True)
        gen = ImageGenerator(providers=[keeper], clock=clock, default_image=None)
        await _generate_and_close(gen, how)
        (ctx,) = keeper.contexts
        with pytest.raises(NotRunning, match="closed"):
            _ = ctx.http

    @pytest.mark.parametrize("how", ["async with", "aclose"])
    async def test_client_never_opened(self, clock: FakeClock, how: str) -> None:
        keeper = Keeper(touch=False)
        gen = ImageGenerator(providers=[keeper], clock=clock, default_image=None)
        await _generate_and_close(gen, how)
        (ctx,) = keeper.contexts
        with pytest.raises(NotRunning, match="closed") as info:
            _ = ctx.http
        assert info.value.field == "generator"
        assert gen._http is None  # no client was made after aclose()

    async def test_a_closed_runtime_opens_nothing(self, clock: FakeClock) -> None:
        """Once the runtime is marked closed, the client factory is never called."""
        made: list[httpx.AsyncClient] = []

        def factory() -> httpx.AsyncClient:
            made.append(httpx.AsyncClient())
            return made[-1]

        keeper = Keeper(touch=False)
        gen = ImageGenerator(providers=[keeper], clock=clock)
        rt = gen._rt
        rt.http = factory
        ctx = rt.context(keeper, deadline=clock.monotonic() + 10)
        rt.closed = True
        with pytest.raises(NotRunning, match="closed") as info:
            _ = ctx.http
        assert info.value.field == "generator"
        assert made == []

    async def test_an_owners_client_closed_meanwhile_is_refused(self, clock: FakeClock) -> None:
        client = httpx.AsyncClient()
        keeper = Keeper(touch=True)
        gen = ImageGenerator(providers=[keeper], clock=clock, http=client)
        await gen.generate("x")
        await client.aclose()
        with pytest.raises(NotRunning) as info:
            _ = keeper.contexts[0].http
        assert info.value.field == "http"
        await gen.aclose()

    async def test_open_generator_shares_one_client(self, clock: FakeClock) -> None:
        keeper = Keeper(touch=True)
        async with ImageGenerator(providers=[keeper], clock=clock) as gen:
            await gen.generate("x")
            await gen.generate("y")
            first, second = keeper.contexts
            assert first.http is second.http
            assert not first.http.is_closed

    async def test_clean_up_while_closing_still_has_the_client(self, clock: FakeClock) -> None:
        """A race loser's remote cancel runs in the background as the generator closes:
        it gets the open client, and the client is closed after it."""
        loser = Keeper(touch=False, handle="work-1", hang=True)
        async with ImageGenerator(
            providers=[FakeProvider("winner", delay=1.0), loser], clock=clock
        ) as gen:
            result = await gen.generate("x")
            assert result.provider == "winner"
        assert len(loser.cancel_clients) == 1
        assert loser.cancel_clients[0].is_closed
