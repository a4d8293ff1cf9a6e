"""The built-in vendors' prices and what they warn about: dated tables, never a guess."""

from __future__ import annotations

from typing import Any

import pytest
from benchmarks.emulator import Emulator, Fixed, ProviderProfile

from imagegen import (
    DownloadPolicy,
    Fal,
    ImageGenerator,
    ImageRequest,
    OpenAIImages,
    Race,
    Replicate,
    RequestWarning,
    Retry,
    Unsplash,
)
from imagegen.providers._prices import fal_price, openai_answer_cost, openai_price

pytestmark = pytest.mark.anyio

POLICY = DownloadPolicy(allow_http=True, allow_private_networks=True)


def request(**fields: Any) -> ImageRequest:
    return ImageRequest(prompt="a fox", **fields)


class TestTables:
    @pytest.mark.parametrize(
        ("model", "quality", "size", "usd"),
        [
            ("gpt-image-1", "low", "1024x1024", 0.011),
            ("gpt-image-1", "high", "1536x1024", 0.25),
            ("dall-e-3", None, "1024x1024", 0.04),  # standard unless asked
            ("dall-e-3", "hd", "1792x1024", 0.12),
            ("dall-e-2", None, "512x512", 0.018),
            ("gpt-image-1", None, "1024x1024", None),  # "auto": unknown until answered
            ("gpt-image-1", "auto", "1024x1024", None),
            ("gpt-image-1", "low", "640x480", None),  # no such size
            ("some-gateway-model", "low", "1024x1024", None),
        ],
    )
    def test_openai(self, model: str, quality: str | None, size: str, usd: float | None) -> None:
        assert openai_price(model, quality, size) == usd

    def test_an_openai_answer_costs_its_usage(self) -> None:
        """Tokens at gpt-image-1's prices; without usage, the quality and size it names."""
        usage = {
            "input_tokens": 50,
            "input_tokens_details": {"text_tokens": 40, "image_tokens": 10},
            "output_tokens": 4160,
        }
        cost = openai_answer_cost("gpt-image-1", {"usage": usage})
        assert cost == pytest.approx(40 * 5e-6 + 10 * 10e-6 + 4160 * 40e-6)
        named = {"quality": "medium", "size": "1024x1024"}
        assert openai_answer_cost("gpt-image-1", named) == 0.042
        assert openai_answer_cost("gpt-image-1", {"usage": {"output_tokens": True}}) is None
        assert openai_answer_cost("dall-e-3", {}) is None

    @pytest.mark.parametrize(
        ("app", "size", "usd"),
        [
            ("fal-ai/flux/schnell", (1024, 1024), 0.003),
            ("fal-ai/flux/schnell", (1024, 768), 0.003),
            ("fal-ai/flux/schnell", (1408, 792), 0.006),  # 1.06 MP: rounded up to 2
            ("fal-ai/flux/dev", (2048, 2048), 0.1),
            ("someone/private-app", (1024, 1024), None),
        ],
    )
    def test_fal_per_megapixel(self, app: str, size: tuple[int, int], usd: float | None) -> None:
        assert fal_price(app, *size) == (pytest.approx(usd) if usd is not None else None)

    def test_the_providers(self) -> None:
        assert Replicate(api_token="r8_x").price(request()) == 0.003
        assert Replicate(api_token="r8_x", model="someone/model").price(request()) is None
        assert Fal(key="a:b").price(request(width=2048, height=2048)) == pytest.approx(0.012)
        quality = OpenAIImages(api_key="sk-x", quality="high")
        assert quality.price(request(width=1536, height=1024)) == 0.25
        assert OpenAIImages(api_key="sk-x").price(request()) is None
        override = OpenAIImages(api_key="sk-x", price_per_image=0.5)
        assert override.price(request()) == 0.5
        assert Unsplash(access_key="k").paid is False


class TestAgainstTheEmulator:
    async def test_a_race_pays_for_the_openai_loser(self) -> None:
        """Replicate wins; OpenAI's request, abandoned in flight, is billed all the same
        (its API finishes the work): the generation costs both, as the emulator billed."""
        profiles = {
            "replicate": ProviderProfile(api="replicate"),
            "openai": ProviderProfile(api="openai", latency=Fixed(2.0)),
        }
        async with Emulator(profiles) as emu:
            providers = [
                emu.provider("replicate"),
                emu.provider("openai", model="gpt-image-1", quality="low"),
            ]
            gen = ImageGenerator(
                providers=providers,
                strategy=Race(),
                retry=Retry(attempts=1),
                download=POLICY,
                default_image=None,
            )
            async with gen:
                result = await gen.generate("a fox")
            assert result.provider == "replicate"
            costs = {a.provider: a.cost for a in result.attempts}
            assert costs == {"replicate": 0.003, "openai": 0.011}
            assert result.cost == pytest.approx(0.014)
            billed = {name: emu.stats(name).billed for name in profiles}
        assert billed == {"replicate": 1, "openai": 1}

    async def test_openai_usage_and_warnings(self) -> None:
        """A GPT image answer costs its usage; seed and negative prompt are warned about."""
        async with Emulator({"openai": ProviderProfile(api="openai")}) as emu:
            gen = ImageGenerator(
                providers=[emu.provider("openai", model="gpt-image-1")],
                download=POLICY,
                default_image=None,
            )
            async with gen:
                result = await gen.generate("a red fox", seed=7, negative_prompt="blur")
        # The emulator reports 3 text tokens in, 272 image tokens out.
        assert result.cost == pytest.approx(3 * 5e-6 + 272 * 40e-6)
        fields = {w.field: w for w in result.warnings}
        assert fields["seed"] == RequestWarning("seed", "OpenAI Images takes no seed", "openai")
        assert fields["negative_prompt"].provider == "openai"
