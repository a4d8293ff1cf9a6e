"""ImageResult.warnings: every request field the image was not made exactly as asked for,
from the vendor's own word and from the image itself; and aspect_ratio requests."""

from __future__ import annotations

from typing import Any

import attrs
import httpx
import pytest

from image_builders import png
from imagegen import (
    Fal,
    ImageGenerator,
    ImageRequest,
    ImageResult,
    MemoryState,
    MemoryStorage,
    OpenAIImages,
    Placeholder,
    Record,
    Replicate,
    RequestWarning,
    Unsplash,
)
from imagegen.providers import Provider, ProviderContext, ProviderImage
from imagegen.server import create_app
from imagegen.testing import FakeClock, failing

pytestmark = pytest.mark.anyio


class Drawn(Provider):
    """Returns a PNG of a fixed size, claiming the size asked for, with given warnings."""

    def __init__(
        self, size: tuple[int, int], warnings: tuple[RequestWarning, ...] = (), **kw: Any
    ) -> None:
        super().__init__(name=kw.pop("name", "drawn"), **kw)
        self.size = size
        self.warnings = warnings

    async def generate(self, request: ImageRequest, ctx: ProviderContext) -> ProviderImage:
        return ProviderImage(
            data=png(*self.size),
            width=request.width,  # the claim: what was asked
            height=request.height,
            warnings=self.warnings,
        )


async def one(provider: Provider, clock: FakeClock, **fields: Any) -> ImageResult:
    gen = ImageGenerator(providers=[provider], storage=MemoryStorage(), clock=clock)
    return await gen.generate("a fox", **fields)


async def test_served_as_asked_has_none(clock: FakeClock) -> None:
    result = await one(Drawn((512, 256)), clock, width=512, height=256)
    assert result.warnings == ()


async def test_the_real_size_not_the_claim(clock: FakeClock) -> None:
    """The vendor claims 1000x512; the image is 1024x512: the result says 1024, and why."""
    result = await one(Drawn((1024, 512)), clock, width=1000, height=512)
    assert (result.width, result.height) == (1024, 512)
    assert result.warnings == (
        RequestWarning("width", "asked for 1000, the image is 1024 pixels wide", "drawn"),
    )


async def test_both_sides_and_the_format(clock: FakeClock) -> None:
    result = await one(Drawn((64, 64)), clock, width=128, height=256, output_format="jpeg")
    assert [w.field for w in result.warnings] == ["output_format", "width", "height"]
    assert result.warnings[0].message == (
        "asked for jpeg, the image is image/png (imagegen does not convert images)"
    )
    assert {w.provider for w in result.warnings} == {"drawn"}


async def test_the_vendors_word_comes_first_and_once_per_field(clock: FakeClock) -> None:
    """A vendor's own warning gets the provider's name, and stands for its field."""
    said = (
        RequestWarning("seed", "this model takes no seed"),
        RequestWarning("width", "rounded to a multiple of 64"),
    )
    result = await one(Drawn((1024, 512), said), clock, width=1000, height=512, seed=3)
    assert result.warnings == (
        RequestWarning("seed", "this model takes no seed", "drawn"),
        RequestWarning("width", "rounded to a multiple of 64", "drawn"),
    )


async def test_the_placeholder_says_why_it_draws_png(clock: FakeClock) -> None:
    result = await one(Placeholder(), clock, width=64, height=64, output_format="webp")
    assert result.warnings == (
        RequestWarning("output_format", "the offline placeholder draws PNG only", "placeholder"),
    )


async def test_the_default_image_has_them_too(clock: FakeClock) -> None:
    """Every provider failed: the default image (a PNG) says the format was not honoured."""
    gen = ImageGenerator(providers=[failing("a")], storage=MemoryStorage(), clock=clock)
    result = await gen.generate("a fox", width=64, height=64, output_format="jpeg")
    assert result.is_default
    assert [(w.field, w.provider) for w in result.warnings] == [("output_format", "default")]


class TestAspectRatio:
    async def test_the_placeholder_draws_the_shape(self, clock: FakeClock) -> None:
        """16:9 becomes 1408x792, exactly 16:9, and is served as asked."""
        result = await one(Placeholder(), clock, aspect_ratio="16:9")
        assert (result.width, result.height) == (1408, 792)
        assert result.warnings == ()

    async def test_another_shape_is_one_warning_on_the_ratio(self, clock: FakeClock) -> None:
        """A square for 16:9: the warning names aspect_ratio, not the derived sides."""
        result = await one(Drawn((1024, 1024)), clock, aspect_ratio="16:9")
        assert result.warnings == (
            RequestWarning(
                "aspect_ratio", "asked for 16:9 (1408x792), the image is 1024x1024", "drawn"
            ),
        )

    async def test_a_rounded_side_within_one_percent_is_the_shape(self, clock: FakeClock) -> None:
        result = await one(Drawn((1344, 756)), clock, aspect_ratio="16:9")  # 16:9 exactly
        assert result.warnings == ()
        result = await one(Drawn((1344, 768)), clock, aspect_ratio="16:9")  # 1.75: 1.6 % off
        assert [w.field for w in result.warnings] == ["aspect_ratio"]


class TestResolution:
    async def test_the_placeholder_draws_the_tier(self, clock: FakeClock) -> None:
        result = await one(Placeholder(), clock, resolution="2K", aspect_ratio="3:2")
        assert (result.width, result.height) == (2520, 1680)
        assert result.warnings == ()

    async def test_a_smaller_image_is_one_warning_on_the_tier(self, clock: FakeClock) -> None:
        """A megapixel for 2K: the shape is right, the tier is not."""
        result = await one(Drawn((1408, 792)), clock, resolution="2K", aspect_ratio="16:9")
        assert result.warnings == (
            RequestWarning(
                "resolution", "asked for 2K (2688x1512), the image is 1408x792", "drawn"
            ),
        )

    async def test_a_vendors_own_sizing_of_the_tier_is_the_tier(self, clock: FakeClock) -> None:
        """Gemini's 2K at 16:9 is 2752x1536: within the tier, and 16:9 within 1 %."""
        result = await one(Drawn((2752, 1536)), clock, resolution="2K", aspect_ratio="16:9")
        assert result.warnings == ()

    async def test_a_tier_alone_asks_for_a_square(self, clock: FakeClock) -> None:
        """One warning for the field asked, never two, and none on the derived sides."""
        result = await one(Drawn((1536, 1024)), clock, resolution="1K")
        assert [(w.field, w.message) for w in result.warnings] == [
            ("resolution", "asked for 1K (1024x1024), the image is 1536x1024")
        ]
        result = await one(Drawn((4096, 4096)), clock, resolution="1K")
        assert [w.field for w in result.warnings] == ["resolution"]

    async def test_shape_and_tier_both_off(self, clock: FakeClock) -> None:
        result = await one(Drawn((1024, 1024)), clock, resolution="4K", aspect_ratio="16:9")
        assert [w.field for w in result.warnings] == ["aspect_ratio", "resolution"]


class TestKeptAndShown:
    async def test_in_the_record_and_its_json(self, clock: FakeClock) -> None:
        state = MemoryState()
        gen = ImageGenerator(
            providers=[Drawn((64, 64))], storage=MemoryStorage(), state=state, clock=clock
        )
        result = await gen.generate("a fox", width=128, height=64)
        record = await gen.record(result.id)
        assert record is not None
        assert record.warnings == result.warnings
        assert Record.from_dict(record.to_dict()) == record
        assert ImageResult.from_dict(result.to_dict()).warnings == result.warnings

    async def test_in_the_http_answer(self, clock: FakeClock) -> None:
        gen = ImageGenerator(providers=[Drawn((64, 64))], storage=MemoryStorage(), clock=clock)
        transport = httpx.ASGITransport(app=create_app(gen))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            answer = await http.post(
                "/images/generate", json={"prompt": "x", "width": 128, "height": 64}
            )
        assert answer.status_code == 200, answer.text
        assert answer.json()["warnings"] == [
            {
                "field": "width",
                "message": "asked for 128, the image is 64 pixels wide",
                "provider": "drawn",
            }
        ]


def test_str_names_field_and_provider() -> None:
    assert str(RequestWarning("seed", "not taken", "openai")) == "seed: not taken (openai)"
    assert str(RequestWarning("seed", "not taken")) == "seed: not taken"


class TestHTTP:
    async def test_ratio_and_size_together_is_one_422(self) -> None:
        gen = ImageGenerator(providers=[Placeholder()], storage=MemoryStorage())
        transport = httpx.ASGITransport(app=create_app(gen))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            both = await http.post(
                "/images/generate", json={"prompt": "x", "aspect_ratio": "16:9", "width": 512}
            )
            bad = await http.post(
                "/images/generate", json={"prompt": "x", "aspect_ratio": "wide", "width": 7}
            )
        assert both.status_code == 422
        assert [e["field"] for e in both.json()["errors"]] == ["aspect_ratio"]
        assert bad.status_code == 422
        assert [e["field"] for e in bad.json()["errors"]] == ["aspect_ratio", "width"]


async def test_the_placeholder_ignores_a_negative_prompt_and_says_so(clock: FakeClock) -> None:
    result = await one(Placeholder(), clock, width=64, height=64, negative_prompt="blur")
    assert result.warnings == (
        RequestWarning("negative_prompt", "the offline placeholder ignores it", "placeholder"),
    )


@pytest.mark.parametrize(
    "cls", [OpenAIImages, Replicate, Fal, Unsplash, Placeholder], ids=lambda c: c.__name__
)
def test_unsupported_names_request_fields(cls: type[Provider]) -> None:
    """Every field a built-in declares it cannot honour is a request field (no typo that
    would silently never warn)."""
    fields = {a.name for a in attrs.fields(ImageRequest)}
    assert cls.unsupported
    assert set(cls.unsupported) <= fields


async def test_a_declared_field_left_unset_is_not_warned(clock: FakeClock) -> None:
    result = await one(Placeholder(), clock, width=64, height=64)
    assert result.warnings == ()
