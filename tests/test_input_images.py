"""Input images and masks: checked before anything is sent, fetched once, given to the
providers that take them (in their documented form), others skipped without blame."""

from __future__ import annotations

import base64
from typing import Any

import pytest
import respx
from benchmarks.emulator import Emulator, ProviderProfile

from imagegen import (
    AllProvidersFailed,
    DownloadPolicy,
    Fal,
    ImageGenerator,
    ImageRequest,
    InputImage,
    InvalidRequest,
    MemoryStorage,
    OpenAIImages,
    Placeholder,
    Replicate,
)
from imagegen.providers import ProviderContext, ProviderImage
from imagegen.testing import FakeClock, FakeProvider, tiny_png

pytestmark = pytest.mark.anyio

PNG = tiny_png()
DATA_URI = "data:image/png;base64," + base64.b64encode(PNG).decode()
PUBLIC_URL = "https://93.184.215.14/photo.png"


class Editor(FakeProvider):
    """A fake that takes one input image and a mask, and keeps what it was given."""

    input_images = 1
    masks = True
    given: list[ImageRequest]

    async def generate(self, request: ImageRequest, ctx: ProviderContext) -> ProviderImage:
        self.given = [*getattr(self, "given", []), request]
        return await super().generate(request, ctx)


class TestChecked:
    @pytest.mark.parametrize(
        ("fields", "field", "rule"),
        [
            ({"mask": PNG}, "mask", "mask needs an image to edit"),
            ({"images": [b"not an image"]}, "images[0]", "not a well-formed image"),
            ({"images": [PNG, "http://x.example/a.png"]}, "images[1]", "https URL"),
            ({"images": ["https://u:p@x.example/a.png"]}, "images[0]", "credentials"),
            ({"images": [7]}, "images[0]", "must be bytes, an https URL"),
            ({"images": ["data:text/plain;base64,aGk="]}, "images[0]", "data:image/"),
            ({"images": ["data:image/png;base64,@@"]}, "images[0]", "invalid base64"),
            ({"images": [PNG] * 17}, "images", "at most 16"),
            ({"images": [PNG], "mask": b"x"}, "mask", "not a well-formed image"),
        ],
    )
    def test_refused_naming_the_field(self, fields: dict[str, Any], field: str, rule: str) -> None:
        with pytest.raises(InvalidRequest, match=rule) as caught:
            ImageRequest(prompt="x", **fields)
        assert caught.value.field == field

    def test_too_big(self) -> None:
        with pytest.raises(InvalidRequest, match="over the 20000000-byte limit"):
            ImageRequest(prompt="x", images=[PNG + b"\0" * 20_000_000])

    def test_every_form_is_one_input_image(self) -> None:
        request = ImageRequest(
            prompt="x", images=[PNG, DATA_URI, PUBLIC_URL, InputImage(data=PNG)], mask=PNG
        )
        assert [i.data is not None for i in request.images] == [True, True, False, True]
        assert request.images[1].data == PNG
        assert request.images[2].url == PUBLIC_URL
        assert request.summary()["images"] == 4
        assert request.summary()["mask"] is True
        assert "bytes" in repr(request.images[0])  # never the bytes themselves
        with pytest.raises(InvalidRequest, match="exactly one"):
            InputImage()


class TestWhoIsCalled:
    async def test_providers_without_input_images_are_skipped(self, clock: FakeClock) -> None:
        """The placeholder cannot edit: skipped, with the reason; the editor is called;
        the placeholder's breaker never hears of it."""
        editor = Editor("editor")
        gen = ImageGenerator(providers=[Placeholder(), editor], clock=clock)
        result = await gen.generate("x", images=[PNG], mask=PNG)
        assert result.provider == "editor"
        skipped = result.attempts[0]
        assert (skipped.provider, skipped.outcome) == ("placeholder", "skipped")
        assert isinstance(skipped.error, InvalidRequest)
        assert skipped.error.field == "images"
        snapshot = await gen.breaker_for("placeholder").snapshot()
        assert snapshot.state == "closed"
        assert editor.given[0].mask is not None

    async def test_none_that_can_is_said(self, clock: FakeClock) -> None:
        gen = ImageGenerator(providers=[Placeholder()], default_image=None, clock=clock)
        with pytest.raises(AllProvidersFailed) as caught:
            await gen.generate("x", images=[PNG])
        [attempt] = caught.value.attempts
        assert "takes no input images" in str(attempt.error)
        assert str(caught.value).startswith("no provider could be called (placeholder: ")

    async def test_a_mask_needs_a_provider_that_takes_one(self, clock: FakeClock) -> None:
        no_mask = Editor("plain")
        no_mask.masks = False
        gen = ImageGenerator(providers=[no_mask], default_image=None, clock=clock)
        with pytest.raises(AllProvidersFailed) as caught:
            await gen.generate("x", images=[PNG], mask=PNG)
        assert caught.value.attempts[0].error.field == "mask"  # type: ignore[union-attr]

    async def test_a_url_is_fetched_once_before_any_provider(self, clock: FakeClock) -> None:
        """Two images asked: the URL is fetched once; both calls get its bytes."""
        editor = Editor("editor")
        gen = ImageGenerator(providers=[editor], storage=MemoryStorage(), clock=clock)
        with respx.mock() as mock:
            route = mock.get(PUBLIC_URL).respond(200, content=PNG)
            result = await gen.generate("x", images=[PUBLIC_URL], n=2)
        assert route.call_count == 1
        assert len(result.images) == 2
        assert [r.images[0].data for r in editor.given] == [PNG, PNG]

    async def test_a_url_that_cannot_be_fetched_is_the_callers_error(
        self, clock: FakeClock
    ) -> None:
        editor = Editor("editor")
        gen = ImageGenerator(providers=[editor], clock=clock)
        with respx.mock() as mock:
            mock.get(PUBLIC_URL).respond(200, content=b"<html>no image</html>")
            with pytest.raises(InvalidRequest) as caught:
                await gen.generate("x", images=[PUBLIC_URL])
        assert caught.value.field == "images[0]"
        assert not getattr(editor, "given", [])  # nothing sent, nothing paid


class TestVendorForms:
    async def test_openai_edits_is_multipart_with_every_image_and_the_mask(
        self, clock: FakeClock
    ) -> None:
        """gpt-image-1: POST /images/edits, image[] per input image, mask, the fields."""
        answer = {"data": [{"b64_json": base64.b64encode(PNG).decode()}]}
        provider = OpenAIImages(api_key="sk-test", model="gpt-image-1", quality="low")
        gen = ImageGenerator(providers=[provider], clock=clock)
        with respx.mock() as mock:
            route = mock.post("https://api.openai.com/v1/images/edits").respond(200, json=answer)
            result = await gen.generate("x", images=[PNG, PNG], mask=PNG)
        assert result.provider == "openai"
        sent = route.calls.last.request
        assert sent.headers["content-type"].startswith("multipart/form-data")
        body = sent.content
        assert body.count(b'name="image[]"') == 2
        assert body.count(b'name="mask"') == 1
        assert b'name="model"\r\n\r\ngpt-image-1' in body
        assert b'name="quality"\r\n\r\nlow' in body
        assert body.count(PNG) == 3

    def test_dall_e_2_takes_one_image_dall_e_3_none(self) -> None:
        one = ImageRequest(prompt="x", images=[PNG])
        two = ImageRequest(prompt="x", images=[PNG, PNG])
        dalle2 = OpenAIImages(api_key="sk-test", model="dall-e-2")
        assert dalle2.cannot_serve(one) is None
        assert dalle2.cannot_serve(two) == ("images", "takes at most 1 input image(s)")
        assert OpenAIImages(api_key="sk-test", model="dall-e-3").cannot_serve(one) == (
            "images",
            "takes no input images",
        )
        assert dalle2.edit_form(one)[-1][0] == "image"

    def test_replicate_and_fal_get_data_uris_in_their_fields(self) -> None:
        request = ImageRequest(prompt="x", images=[PNG], mask=PNG)
        fill = Replicate(api_token="r8_x", model="black-forest-labs/flux-fill-pro")
        data = fill.input(request)
        assert (data["image"], data["mask"]) == (DATA_URI, DATA_URI)
        kontext = Fal(key="a:b", app="fal-ai/flux-pro/kontext")
        assert kontext.body(ImageRequest(prompt="x", images=[PNG]))["image_url"] == DATA_URI
        assert kontext.cannot_serve(request) == ("mask", "takes no mask")
        assert Replicate(api_token="r8_x").cannot_serve(request) == (
            "images",
            "takes no input images",
        )


async def test_an_edit_reaches_the_emulator_in_openais_form() -> None:
    """Against the emulator's /images/edits: two images as image[] and the mask, as
    multipart; the emulator takes them as images and answers with the edit."""
    async with Emulator({"openai": ProviderProfile(api="openai")}) as emu:
        gen = ImageGenerator(
            providers=[emu.provider("openai", model="gpt-image-1")],
            download=DownloadPolicy(allow_http=True, allow_private_networks=True),
            default_image=None,
        )
        async with gen:
            result = await gen.generate("make it night", images=[PNG, PNG], mask=PNG)
        [edit] = emu.edits("openai")
    assert result.provider == "openai"
    assert (edit["images"], edit["mask"]) == (2, True)
    fields = {k: v for k, v in edit["fields"] if isinstance(v, str)}
    assert (fields["model"], fields["prompt"]) == ("gpt-image-1", "make it night")
