"""Previews: generate(..., on_preview=...) gets the partial images a vendor streams while
it draws (OpenAI's GPT image models, against the emulator's event stream), and the
stream's own framing read chunk by chunk."""

from __future__ import annotations

import logging
from typing import Any

import anyio.lowlevel
import pytest
from benchmarks.emulator import Emulator, Fault, Fixed, ProviderProfile

from image_builders import png
from imagegen import (
    DownloadPolicy,
    Fallback,
    ImageGenerator,
    ImageRequest,
    InvalidRequest,
    MemoryStorage,
    Preview,
    ProviderUnavailable,
    Race,
    Retry,
)
from imagegen.providers import Provider, ProviderContext, ProviderImage
from imagegen.providers._sse import Event, EventReader
from imagegen.testing import FakeClock, instant

pytestmark = pytest.mark.anyio

POLICY = DownloadPolicy(allow_http=True, allow_private_networks=True)
PNG = png(8, 8)


class Streaming(Provider):
    """Sends ``ctx.previews`` previews (or ``send`` of them), then the image."""

    def __init__(self, name: str = "streaming", send: list[bytes] | None = None) -> None:
        super().__init__(name=name)
        self.send = send
        self.asked: list[int] = []

    async def generate(self, request: ImageRequest, ctx: ProviderContext) -> ProviderImage:
        self.asked.append(ctx.previews)
        for index, data in enumerate(self.send or [PNG] * ctx.previews):
            await ctx.preview(data, index)
        return ProviderImage(data=png(request.width, request.height))


def collector() -> tuple[list[Preview], Any]:
    seen: list[Preview] = []
    return seen, seen.append


class TestOnPreview:
    async def test_each_preview_comes_with_where_it_is_from(self, clock: FakeClock) -> None:
        provider = Streaming()
        gen = ImageGenerator(providers=[provider], storage=MemoryStorage(), clock=clock)
        seen, keep = collector()
        result = await gen.generate("a fox", width=64, height=64, on_preview=keep, previews=3)
        assert provider.asked == [3]
        assert [(p.provider, p.index, p.image, p.content_type) for p in seen] == [
            ("streaming", i, 0, "image/png") for i in range(3)
        ]
        assert {p.generation_id for p in seen} == {result.id}
        assert seen[0].data == PNG
        assert result.warnings == ()
        assert "data" not in repr(seen[0])

    async def test_none_asked_without_a_handler(self, clock: FakeClock) -> None:
        provider = Streaming()
        gen = ImageGenerator(providers=[provider], storage=MemoryStorage(), clock=clock)
        await gen.generate("a fox", width=64, height=64)
        assert provider.asked == [0]

    async def test_an_async_handler_is_awaited(self, clock: FakeClock) -> None:
        seen: list[int] = []

        async def slow(preview: Preview) -> None:
            await anyio.lowlevel.checkpoint()
            seen.append(preview.index)

        gen = ImageGenerator(providers=[Streaming()], storage=MemoryStorage(), clock=clock)
        await gen.generate("a fox", width=64, height=64, on_preview=slow)
        assert seen == [0, 1]  # the default: two

    async def test_a_failing_handler_is_logged_and_the_image_comes(
        self, clock: FakeClock, caplog: pytest.LogCaptureFixture
    ) -> None:
        def broken(preview: Preview) -> None:
            raise RuntimeError("the UI went away")

        gen = ImageGenerator(providers=[Streaming()], storage=MemoryStorage(), clock=clock)
        with caplog.at_level(logging.ERROR, logger="imagegen"):
            result = await gen.generate("a fox", width=64, height=64, on_preview=broken)
        assert result.provider == "streaming"
        assert caplog.text.count("on_preview failed") == 2

    async def test_bytes_that_are_no_image_are_dropped(self, clock: FakeClock) -> None:
        provider = Streaming(send=[b"not an image", PNG])
        gen = ImageGenerator(providers=[provider], storage=MemoryStorage(), clock=clock)
        seen, keep = collector()
        await gen.generate("a fox", width=64, height=64, on_preview=keep)
        assert [p.index for p in seen] == [1]

    async def test_a_provider_that_sends_none_says_so(self, clock: FakeClock) -> None:
        plain = instant("plain", image=png(64, 64))
        gen = ImageGenerator(providers=[plain], storage=MemoryStorage(), clock=clock)
        seen, keep = collector()
        result = await gen.generate("a fox", width=64, height=64, on_preview=keep)
        assert seen == []
        assert [(w.field, w.message) for w in result.warnings] == [
            ("previews", "plain sent no partial images")
        ]

    async def test_several_images_and_a_race(self, clock: FakeClock) -> None:
        """n=2 in a race of two streaming providers: each preview names its provider and
        its image."""
        providers: list[Provider] = [Streaming("a"), Streaming("b")]
        gen = ImageGenerator(
            providers=providers, strategy=Race(), storage=MemoryStorage(), clock=clock
        )
        seen, keep = collector()
        await gen.generate("a fox", width=64, height=64, n=2, on_preview=keep, previews=1)
        assert sorted((p.image, p.provider) for p in seen) == [
            (0, "a"),
            (0, "b"),
            (1, "a"),
            (1, "b"),
        ]

    @pytest.mark.parametrize(
        ("kwargs", "field"),
        [
            ({"on_preview": print, "previews": 0}, "previews"),
            ({"on_preview": print, "previews": 4}, "previews"),
            ({"on_preview": print, "previews": True}, "previews"),
            ({"on_preview": print, "previews": 2.0}, "previews"),
            ({"on_preview": "print"}, "on_preview"),
        ],
    )
    async def test_refused_before_anything_is_sent(
        self, kwargs: dict[str, Any], field: str
    ) -> None:
        provider = Streaming()
        gen = ImageGenerator(providers=[provider])
        with pytest.raises(InvalidRequest) as caught:
            await gen.generate("a fox", **kwargs)
        assert caught.value.field == field
        assert provider.asked == []


async def openai_with_previews(
    fault: Fault | None = None, **generate: Any
) -> tuple[Any, list[Preview], Emulator]:
    """One generation on the emulator's gpt-image-1 (then a placeholder-free backup)."""
    profiles = {
        "openai": ProviderProfile(api="openai", latency=Fixed(0.3)),
        "backup": ProviderProfile(api="openai"),
    }
    seen, keep = collector()
    async with Emulator(profiles) as emu:
        if fault is not None:
            emu.force("openai", fault)
        gen = ImageGenerator(
            providers=[
                emu.provider("openai", model="gpt-image-1"),
                emu.provider("backup", model="flux-schnell"),
            ],
            strategy=Fallback(),
            retry=Retry(attempts=1),
            download=POLICY,
            storage=MemoryStorage(),
            default_image=None,
        )
        async with gen:
            result = await gen.generate("a red fox", on_preview=keep, **generate)
    return result, seen, emu


class TestOpenAIStreams:
    async def test_partial_images_then_the_image(self) -> None:
        result, seen, emu = await openai_with_previews(previews=3)
        assert result.provider == "openai"
        assert [(p.provider, p.index) for p in seen] == [
            ("openai", 0),
            ("openai", 1),
            ("openai", 2),
        ]
        assert all(p.content_type == "image/png" for p in seen)
        stats = emu.stats("openai")
        assert (stats.creates, stats.streams) == (1, 1)
        assert "previews" not in {w.field for w in result.warnings}
        # The cost comes from the completed event's usage, as from an unstreamed answer.
        assert result.cost is not None
        assert result.cost > 0

    async def test_an_edit_streams_too(self) -> None:
        result, seen, emu = await openai_with_previews(images=[PNG], previews=1)
        assert result.provider == "openai"
        assert [p.index for p in seen] == [0]
        [edit] = emu.edits("openai")
        fields = dict(f for f in edit["fields"] if isinstance(f[1], str))
        assert (fields["stream"], fields["partial_images"]) == ("true", "1")

    async def test_an_error_event_fails_over_and_is_never_sent_again(self) -> None:
        """The stream ends with an error event: the attempt failed (not retryable: the
        create was billed), and the next provider serves."""
        result, seen, emu = await openai_with_previews(Fault.FAILED, previews=2)
        assert result.provider == "backup"
        assert len(seen) == 2  # the previews came before the error
        first = result.attempts[0]
        assert isinstance(first.error, ProviderUnavailable)
        assert not first.error.retryable
        assert "the stream failed" in str(first.error)
        assert emu.stats("openai").creates == 1

    async def test_a_model_that_cannot_stream_is_asked_as_before(self) -> None:
        profiles = {"openai": ProviderProfile(api="openai")}
        seen, keep = collector()
        async with Emulator(profiles) as emu:
            gen = ImageGenerator(
                providers=[emu.provider("openai", model="dall-e-3")],
                download=POLICY,
                storage=MemoryStorage(),
            )
            async with gen:
                result = await gen.generate("a red fox", on_preview=keep)
            assert emu.stats("openai").streams == 0
        assert seen == []
        assert "previews" in {w.field for w in result.warnings}


class TestEventReader:
    def test_events_across_any_chunking(self) -> None:
        raw = (
            b': a comment\r\nevent: one\r\ndata: {"a":\r\ndata: 1}\r\n\r\n'
            b"data: plain\n\nevent: big\ndata: " + b"Q" * 5000 + b"\n\n"
        )
        expected = [Event("one", '{"a":\n1}'), Event("message", "plain"), Event("big", "Q" * 5000)]
        for size in (1, 2, 7, 64, len(raw)):
            reader = EventReader()
            events: list[Event] = []
            for start in range(0, len(raw), size):
                events += reader.feed(raw[start : start + size])
            assert events == expected, size

    def test_an_unfinished_event_is_not_given(self) -> None:
        reader = EventReader()
        assert reader.feed(b"event: x\ndata: 1\n") == []
        assert reader.feed(b"\n") == [Event("x", "1")]
        assert reader.feed(b"\n\n") == []  # blank lines alone make no event
