"""The offline Placeholder provider and the Provider contract it is built on."""

from __future__ import annotations

import io

import anyio
import pytest
from PIL import Image

from imagegen import ImageRequest, Placeholder, Provider, ProviderContext, ProviderImage
from imagegen.providers._placeholder import render_placeholder
from imagegen.testing import FakeClock

PROMPT = "a lighthouse at dusk"


def decode(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def colours(image: Image.Image) -> int:
    found = image.convert("RGB").getcolors(maxcolors=1 << 24)
    assert found is not None
    return len(found)


class Drawn(Provider):
    """A minimal provider for the naming rules."""

    async def generate(self, request: ImageRequest, ctx: ProviderContext) -> ProviderImage:
        return ProviderImage(url="https://example.test/x.png")


class TestRenderPlaceholder:
    def test_deterministic(self) -> None:
        """The same prompt, size and seed give the same bytes."""
        assert render_placeholder(PROMPT, 256, 128, 7) == render_placeholder(PROMPT, 256, 128, 7)

    @pytest.mark.parametrize(
        ("prompt", "seed"),
        [("a lighthouse at dawn", 7), (PROMPT, 8), (PROMPT, None)],
        ids=["prompt", "seed", "no-seed"],
    )
    def test_inputs_change_the_image(self, prompt: str, seed: int | None) -> None:
        """A different prompt or seed gives different bytes."""
        assert render_placeholder(prompt, 256, 128, seed) != render_placeholder(PROMPT, 256, 128, 7)

    def test_muted_differs(self) -> None:
        """muted=True gives a different, still valid, image of the same size."""
        plain = render_placeholder(PROMPT, 256, 128, 7)
        muted = render_placeholder(PROMPT, 256, 128, 7, muted=True)
        assert muted != plain
        assert decode(muted).size == (256, 128)
        assert render_placeholder(PROMPT, 256, 128, 7, muted=True) == muted

    @pytest.mark.parametrize(
        "size", [(64, 64), (64, 4096), (4096, 64), (1024, 768), (768, 1024), (200, 120)]
    )
    def test_exact_size_and_fully_decodable(self, size: tuple[int, int]) -> None:
        """The PNG is exactly the requested size, decodes fully and is not a flat colour."""
        width, height = size
        image = decode(render_placeholder(PROMPT, width, height, 1))
        assert image.format == "PNG"
        assert image.size == size
        assert colours(image) >= 5

    @pytest.mark.parametrize("prompt", ["x", "🦊", "a\nb", "z" * 4000])
    def test_any_prompt_renders(self, prompt: str) -> None:
        """Short, non-ASCII, multi-line and maximal prompts all render valid images."""
        assert decode(render_placeholder(prompt, 64, 64)).size == (64, 64)


class TestPlaceholderProvider:
    def test_defaults(self) -> None:
        """Placeholder is named "placeholder", tier 0, with no timeout of its own."""
        provider = Placeholder()
        assert (provider.name, provider.tier, provider.timeout) == ("placeholder", 0, None)

    def test_overrides(self) -> None:
        """name, tier and timeout can be overridden per instance without touching the class."""
        provider = Placeholder(name="p2", tier=1, timeout=3.0)
        assert (provider.name, provider.tier, provider.timeout) == ("p2", 1, 3.0)
        assert (Placeholder.name, Placeholder.tier, Placeholder.timeout) == ("placeholder", 0, None)
        assert repr(provider) == "Placeholder(name='p2', tier=1)"

    @pytest.mark.anyio
    @pytest.mark.parametrize(("width", "height", "seed"), [(64, 64, None), (320, 128, 42)])
    async def test_generate(self, width: int, height: int, seed: int | None) -> None:
        """generate() returns the request's size as PNG bytes with the matching metadata."""
        request = ImageRequest(
            prompt=PROMPT, width=width, height=height, seed=seed, output_format="jpeg"
        )
        ctx = ProviderContext(deadline=1e9, clock=FakeClock())
        image = await Placeholder().generate(request, ctx)
        assert image.data == render_placeholder(PROMPT, width, height, seed)
        assert image.url is None
        assert image.content_type == "image/png"
        assert (image.width, image.height, image.seed) == (width, height, seed)
        assert decode(image.data).size == (width, height)
        assert ctx.handle is None


class TestProviderNaming:
    def test_unnamed_subclass_uses_class_name(self) -> None:
        """A subclass without ``name`` is named after its class, lowercased."""
        assert Drawn.name == "drawn"
        assert Drawn().name == "drawn"

    def test_subclass_of_named_keeps_parent_name(self) -> None:
        """A subclass of a named provider keeps the parent's name."""

        class FancyPlaceholder(Placeholder):
            pass

        assert FancyPlaceholder().name == "placeholder"

    def test_subclass_of_unnamed_gets_its_own_name(self) -> None:
        """A subclass of an auto-named provider is named after its own class."""

        class MoreDrawn(Drawn):
            pass

        assert MoreDrawn().name == "moredrawn"
        assert Drawn.name == "drawn"

    def test_class_attributes_without_init(self) -> None:
        """name, tier and timeout may be class attributes, with keyword overrides on top."""

        class Stock(Provider):
            name = "stock"
            tier = 1
            timeout = 4.5

            async def generate(self, request: ImageRequest, ctx: ProviderContext) -> ProviderImage:
                return ProviderImage(url="https://example.test/x.jpg")

        class MoreStock(Stock):
            pass

        assert (Stock().name, Stock().tier, Stock().timeout) == ("stock", 1, 4.5)
        assert MoreStock().name == "stock"
        assert Stock(tier=2).tier == 2
        assert Stock(name="other").name == "other"
        assert Stock.name == "stock"

    def test_abstract_generate(self) -> None:
        """A provider without generate() cannot be instantiated."""

        class Incomplete(Provider):
            pass

        with pytest.raises(TypeError):
            Incomplete()  # type: ignore[abstract]


class TestProviderImage:
    @pytest.mark.parametrize(
        "fields",
        [{"data": b"png"}, {"url": "https://example.test/x.png"}, {"data": b""}],
        ids=["data", "url", "empty-data"],
    )
    def test_exactly_one_source(self, fields: dict[str, object]) -> None:
        """Either data or url alone is accepted and kept."""
        image = ProviderImage(**fields)  # type: ignore[arg-type]
        for key, value in fields.items():
            assert getattr(image, key) == value

    @pytest.mark.parametrize(
        "fields", [{}, {"data": b"png", "url": "https://example.test/x.png"}], ids=["none", "both"]
    )
    def test_neither_or_both_refused(self, fields: dict[str, object]) -> None:
        """Neither or both of data and url raise ValueError."""
        with pytest.raises(ValueError, match="exactly one of data= and url="):
            ProviderImage(**fields)  # type: ignore[arg-type]

    def test_repr_hides_data(self) -> None:
        """The repr does not include the image bytes."""
        assert "SECRETBYTES" not in repr(ProviderImage(data=b"SECRETBYTES" * 100))


class TestProviderContext:
    @pytest.mark.parametrize(
        ("elapsed", "remaining"), [(0.0, 5.0), (3.5, 1.5), (5.0, 0.0), (9.0, 0.0)]
    )
    def test_remaining_never_negative(self, elapsed: float, remaining: float) -> None:
        """remaining() counts down to the deadline and stays at 0 after it."""
        clock = FakeClock(start=100.0)
        ctx = ProviderContext(deadline=105.0, clock=clock)
        clock.advance(elapsed)
        assert ctx.remaining() == pytest.approx(remaining)
        assert ctx.remaining() >= 0.0

    def test_started_records_and_calls_back(self) -> None:
        """started(handle) stores the handle and passes it to the callback."""
        seen: list[object] = []
        ctx = ProviderContext(deadline=10.0, clock=FakeClock(), on_started=seen.append)
        assert ctx.handle is None
        ctx.started("prediction-1")
        assert ctx.handle == "prediction-1"
        assert seen == ["prediction-1"]

    def test_started_without_callback(self) -> None:
        """started(handle) works without a callback and just stores the handle."""
        ctx = ProviderContext(deadline=10.0, clock=FakeClock())
        ctx.started({"id": "q-1"})
        assert ctx.handle == {"id": "q-1"}

    def test_http_without_factory(self) -> None:
        """ctx.http raises RuntimeError when no HTTP client factory was given."""
        ctx = ProviderContext(deadline=10.0, clock=FakeClock())
        with pytest.raises(RuntimeError, match="no HTTP client"):
            _ = ctx.http

    def test_http_uses_factory(self) -> None:
        """ctx.http returns the client the factory gives."""
        client = object()
        ctx = ProviderContext(
            deadline=10.0,
            clock=FakeClock(),
            http_factory=lambda: client,  # type: ignore[arg-type,return-value]
        )
        assert ctx.http is client

    @pytest.mark.anyio
    async def test_default_clock_is_event_loop_time(self) -> None:
        """With the default clock, remaining() reads anyio's loop time."""
        ctx = ProviderContext(deadline=anyio.current_time() + 30.0)
        assert 29.0 < ctx.remaining() <= 30.0
