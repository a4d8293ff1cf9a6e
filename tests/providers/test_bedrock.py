"""Bedrock: the InvokeModel bodies of Stability's and Amazon's models, their answers, the
botocore errors, and the whole call through boto3 against the emulator."""

from __future__ import annotations

import base64
import logging
import sys
import time
from typing import Any

import anyio
import pytest
from benchmarks.emulator import Emulator, Fault, ProviderProfile
from benchmarks.emulator._base import bedrock_session
from botocore.exceptions import (
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    ReadTimeoutError,
)

from imagegen import (
    AllProvidersFailed,
    Bedrock,
    ContentRejected,
    ImageGenerator,
    ImageRequest,
    InvalidConfig,
    MemoryStorage,
    ProviderAuthError,
    ProviderContext,
    ProviderError,
    ProviderQuotaExceeded,
    ProviderRateLimited,
    ProviderTimeout,
    ProviderUnavailable,
    Retry,
)
from imagegen.providers._bedrock_wire import (
    MODELS,
    body_for,
    image_of,
    model_for,
    nova_size,
    price_of,
    titan_size,
)
from imagegen.testing import tiny_png

pytestmark = pytest.mark.anyio

CORE = MODELS["stability.stable-image-core-v1:1"]
SD35 = MODELS["stability.sd3-5-large-v1:0"]
NOVA = MODELS["amazon.nova-canvas-v1:0"]
TITAN = MODELS["amazon.titan-image-generator-v2:0"]
PNG = tiny_png()


class TestBodies:
    def test_stability(self) -> None:
        request = ImageRequest(
            prompt="a fox", width=1920, height=1080, seed=3, negative_prompt="blur",
            output_format="jpeg",
        )  # fmt: skip
        body, warnings = body_for(request, CORE)
        assert body == {"prompt": "a fox", "mode": "text-to-image", "aspect_ratio": "16:9",
                        "negative_prompt": "blur", "seed": 3, "output_format": "jpeg"}  # fmt: skip
        assert warnings == ()
        webp, _ = body_for(ImageRequest(prompt="p", output_format="webp"), CORE)
        assert webp["output_format"] == "png"

    def test_stability_image_to_image(self) -> None:
        body, _ = body_for(ImageRequest(prompt="p", images=[PNG]), SD35)
        assert (body["mode"], body["strength"]) == ("image-to-image", 0.75)
        assert base64.b64decode(body["image"]) == PNG
        assert "aspect_ratio" not in body
        assert (SD35.input_images, CORE.input_images) == (1, 0)

    @pytest.mark.parametrize(
        ("size", "expected"),
        [((1024, 1024), (1024, 1024)), ((4096, 4096), (2048, 2048)),
         ((2048, 256), (1408, 352)), ((1000, 600), (976, 592)), ((600, 1000), (592, 976)),
         ((320, 320), (320, 320))],
    )  # fmt: skip
    def test_nova_sizes(self, size: tuple[int, int], expected: tuple[int, int]) -> None:
        """Multiples of 16, 1:4 to 4:1, at most 2048x2048's pixels, 320 to 4096 a side."""
        width, height = nova_size(*size)
        assert (width, height) == expected
        assert width * height <= 4_194_304
        assert 0.25 <= width / height <= 4

    def test_titan_sizes(self) -> None:
        assert titan_size(1920, 1080) == (1152, 640)
        assert titan_size(1024, 1024) == (1024, 1024)
        assert titan_size(300, 600) == (384, 704)

    def test_amazon_tasks(self) -> None:
        text, _ = body_for(ImageRequest(prompt="p", negative_prompt="n", seed=4), NOVA)
        assert text["taskType"] == "TEXT_IMAGE"
        assert text["textToImageParams"] == {"text": "p", "negativeText": "n"}
        assert text["imageGenerationConfig"] == {"numberOfImages": 1, "width": 1024,
                                                 "height": 1024, "seed": 4}  # fmt: skip
        variation, _ = body_for(ImageRequest(prompt="p", images=[PNG, PNG]), NOVA)
        assert variation["taskType"] == "IMAGE_VARIATION"
        assert len(variation["imageVariationParams"]["images"]) == 2
        inpaint, _ = body_for(ImageRequest(prompt="p", images=[PNG], mask=PNG), TITAN)
        assert inpaint["taskType"] == "INPAINTING"
        assert {"image", "maskImage", "text"} <= set(inpaint["inPaintingParams"])
        with pytest.raises(ProviderError, match="one input image"):
            body_for(ImageRequest(prompt="p", images=[PNG, PNG], mask=PNG), NOVA)

    def test_limits_before_sending(self) -> None:
        """A prompt longer than the model takes fails before the call; a big seed is folded."""
        with pytest.raises(ProviderError) as caught:
            body_for(ImageRequest(prompt="x" * 1025), NOVA)
        assert (caught.value.status, caught.value.retryable) == (400, False)
        body, warnings = body_for(ImageRequest(prompt="p", seed=858_993_460), NOVA)
        assert body["imageGenerationConfig"]["seed"] == 0
        assert [w.field for w in warnings] == ["seed"]

    @pytest.mark.parametrize(
        ("model", "family", "priced"),
        [("us.stability.stable-image-core-v1:1", "stability", True),
         ("arn:aws:bedrock:us-west-2::foundation-model/stability.sd3-5-large-v1:0",
          "stability", True),
         ("us.amazon.nova-canvas-v1:0", "amazon", True),
         ("amazon.nova-premier-image-v9:0", "amazon", False),
         ("stability.some-future-model-v1:0", "stability", False)],
    )  # fmt: skip
    def test_model_ids(self, model: str, family: str, priced: bool) -> None:
        rules = model_for(model)
        assert rules.family == family
        assert bool(rules.prices) is priced

    def test_prices(self) -> None:
        assert price_of(CORE, ImageRequest(prompt="p")) == 0.04
        small = ImageRequest(prompt="p")
        big = ImageRequest(prompt="p", width=2048, height=2048)
        assert (price_of(NOVA, small), price_of(NOVA, big)) == (0.04, 0.06)
        assert price_of(TITAN, small) is None


class TestAnswers:
    def test_an_image_and_its_seed(self) -> None:
        answer = {
            "seeds": [7],
            "finish_reasons": [None],
            "images": [base64.b64encode(PNG).decode()],
        }
        assert image_of(answer, "bedrock") == (PNG, 7)
        assert image_of({"images": [base64.b64encode(PNG).decode()]}, "bedrock") == (PNG, None)

    @pytest.mark.parametrize(
        ("answer", "error", "reason"),
        [({"finish_reasons": ["Filter reason: prompt"], "images": []}, ContentRejected,
          "Filter reason: prompt"),
         ({"images": [], "error": "All of the generated images have been blocked by our "
           "content filters."}, ContentRejected, "content filters"),
         ({"finish_reasons": ["Inference error"], "images": []}, ProviderUnavailable, None),
         ({"images": ["%%%"]}, ProviderUnavailable, None),
         ({}, ProviderUnavailable, None)],
    )  # fmt: skip
    def test_no_image(
        self, answer: dict[str, Any], error: type[ProviderError], reason: Any
    ) -> None:
        with pytest.raises(error) as caught:
            image_of(answer, "bedrock")
        assert not caught.value.retryable
        if reason is not None:
            assert isinstance(caught.value, ContentRejected)
            assert caught.value.reason == reason


def client_error(code: str, status: int, message: str = "no") -> ClientError:
    response: Any = {"Error": {"Code": code, "Message": message},
                     "ResponseMetadata": {"HTTPStatusCode": status}}  # fmt: skip
    return ClientError(response, "InvokeModel")


class TestErrors:
    @pytest.mark.parametrize(
        ("exc", "error", "retryable"),
        [(client_error("ValidationException", 400, "This request has been blocked by our "
                       "content filters."), ContentRejected, False),
         (client_error("ValidationException", 400), ProviderError, False),
         (client_error("AccessDeniedException", 403), ProviderAuthError, False),
         (client_error("ThrottlingException", 429), ProviderRateLimited, True),
         (client_error("ServiceQuotaExceededException", 400), ProviderQuotaExceeded, False),
         (client_error("ModelTimeoutException", 408), ProviderTimeout, False),
         (client_error("ModelErrorException", 424), ProviderUnavailable, False),
         (client_error("ServiceUnavailableException", 503), ProviderUnavailable, False),
         (client_error("ResourceNotFoundException", 404), ProviderError, False),
         (NoCredentialsError(), ProviderAuthError, False),
         (EndpointConnectionError(endpoint_url="https://x"), ProviderUnavailable, True),
         (ReadTimeoutError(endpoint_url="https://x"), ProviderTimeout, False),
         (ValueError("bad json"), ProviderUnavailable, False)],
    )  # fmt: skip
    def test_botocore_errors(
        self, exc: Exception, error: type[ProviderError], retryable: bool
    ) -> None:
        """A call that may have made an image is never retryable; throttling and a
        refused connection prove nothing was made."""
        mapped = Bedrock().error_for(exc)
        assert type(mapped) is error
        assert mapped.retryable is retryable

    def test_anything_else_is_a_bug(self) -> None:
        assert Bedrock().error_for(RuntimeError("bug")) is None


class TestConfig:
    def test_from_env_needs_an_opt_in(self) -> None:
        """AWS credentials alone do not select Bedrock: a Bedrock key or a setting does."""
        assert Bedrock.from_env({"AWS_ACCESS_KEY_ID": "AKIA", "AWS_SECRET_ACCESS_KEY": "s"}) is None
        keyed = Bedrock.from_env({"AWS_BEARER_TOKEN_BEDROCK": "ABSK-secret"})
        assert isinstance(keyed, Bedrock)
        assert "ABSK-secret" not in repr(keyed)
        chosen = Bedrock.from_env({"IMAGEGEN_BEDROCK_MODEL": "us.amazon.nova-canvas-v1:0",
                                   "IMAGEGEN_BEDROCK_REGION": "us-east-1"})  # fmt: skip
        assert chosen is not None
        assert (chosen.model, chosen.region, chosen.rules.family) == (
            "us.amazon.nova-canvas-v1:0", "us-east-1", "amazon")  # fmt: skip
        with pytest.raises(InvalidConfig) as caught:
            Bedrock.from_env({"IMAGEGEN_BEDROCK_MODEL": " padded "})
        assert caught.value.field == "IMAGEGEN_BEDROCK_MODEL"

    def test_the_region(self, monkeypatch: pytest.MonkeyPatch) -> None:
        for name in ("AWS_REGION", "AWS_DEFAULT_REGION"):
            monkeypatch.delenv(name, raising=False)
        assert Bedrock().region == "us-west-2"
        monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
        assert Bedrock().region == "eu-west-1"
        monkeypatch.setenv("AWS_REGION", "us-east-1")
        assert Bedrock().region == "us-east-1"
        assert Bedrock(region="ap-northeast-1").region == "ap-northeast-1"

    def test_boto3_is_needed(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setitem(sys.modules, "boto3", None)
        with pytest.raises(InvalidConfig, match=r"imagegen-failover\[bedrock\]"):
            Bedrock()

    @pytest.mark.parametrize("kwargs", [{"model": ""}, {"max_workers": 0}])
    def test_bad_settings(self, kwargs: dict[str, Any]) -> None:
        with pytest.raises(InvalidConfig):
            Bedrock(**kwargs)


def generator(provider: Bedrock, attempts: int = 3) -> ImageGenerator:
    return ImageGenerator(
        providers=[provider], storage=MemoryStorage(), default_image=None,
        retry=Retry(attempts=attempts, initial=0.01),
    )  # fmt: skip


class TestOnTheEmulator:
    async def test_an_image_through_boto3(self) -> None:
        async with Emulator() as emu:
            provider = emu.provider("bedrock")
            async with generator(provider) as gen:
                result = await gen.generate("a red fox", seed=9)
            stats = emu.stats("bedrock")
        assert result.provider == "bedrock"
        assert result.cost == pytest.approx(0.04)
        assert (stats.creates, stats.billed) == (1, 1)

    @pytest.mark.parametrize("fault", [Fault.SERVER_ERROR, Fault.RESET, Fault.CUT_OFF])
    async def test_a_create_is_sent_once(self, fault: Fault) -> None:
        """boto3's own retries are off: a failure that may have made an image is neither
        retried by botocore nor by imagegen (one create on the emulator)."""
        async with Emulator() as emu:
            emu.force("bedrock", fault)
            async with generator(emu.provider("bedrock")) as gen:
                with pytest.raises(AllProvidersFailed) as caught:
                    await gen.generate("a red fox")
            stats = emu.stats("bedrock")
        assert stats.creates == 1
        assert isinstance(caught.value.attempts[0].error, ProviderUnavailable)

    async def test_throttling_is_retried(self) -> None:
        async with Emulator({"bedrock": ProviderProfile(api="bedrock")}) as emu:
            emu.force("bedrock", Fault.RATE_LIMITED)
            async with generator(emu.provider("bedrock")) as gen:
                result = await gen.generate("a red fox")
            stats = emu.stats("bedrock")
        assert result.attempts[0].tries == 2
        assert stats.creates == 2

    async def test_check_warns_of_a_legacy_model(self, caplog: pytest.LogCaptureFixture) -> None:
        async with Emulator() as emu:
            nova = emu.provider("bedrock", model="amazon.nova-canvas-v1:0")
            core = emu.provider("bedrock")
            with caplog.at_level(logging.WARNING, logger="imagegen"):
                async with generator(core) as gen:
                    assert await gen.check_providers() == {"bedrock": "ok"}
                assert "LEGACY" not in caplog.text
                async with generator(nova) as gen:
                    assert await gen.check_providers() == {"bedrock": "ok"}
        assert "amazon.nova-canvas-v1:0 is a LEGACY model" in caplog.text

    async def test_given_up_while_the_client_is_built_sends_nothing(self) -> None:
        """A call abandoned while its thread still builds the boto3 client never sends."""

        class SlowStart(Bedrock):
            def client(self) -> Any:
                time.sleep(0.3)  # in the worker thread: a slow credential lookup, say
                return super().client()

        async with Emulator() as emu:
            slow = SlowStart(session=bedrock_session(), endpoint_url=emu.base_url("bedrock"))
            ctx = ProviderContext(deadline=anyio.current_time() + 0.05)
            with pytest.raises(ProviderTimeout):
                await slow.generate(ImageRequest(prompt="a red fox"), ctx)
            assert ctx.create_sent
            await anyio.sleep(0.5)  # the thread has built the client by now, and stopped
            stats = emu.stats("bedrock")
        assert stats.creates == 0
