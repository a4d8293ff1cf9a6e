"""Azure OpenAI, Together and xAI: OpenAI's images machinery in each vendor's dialect."""

from __future__ import annotations

import base64
import logging
from typing import Any

import httpx
import pytest
from provider_support import body_of, session

from imagegen import (
    XAI,
    AzureOpenAI,
    ContentRejected,
    ImageRequest,
    InvalidConfig,
    ProviderAuthError,
    ProviderError,
    Together,
)
from imagegen.testing import FakeClock, tiny_png

pytestmark = pytest.mark.anyio

PNG = tiny_png()
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01fake-jpeg-body"
ENDPOINT = "https://acme.openai.azure.com"
DEPLOYMENT = "images-prod"
AZURE = (
    f"{ENDPOINT}/openai/deployments/{DEPLOYMENT}/images/generations?api-version=2025-04-01-preview"
)
TOGETHER = "https://api.together.xyz/v1/images/generations"
XAI_URL = "https://api.x.ai/v1/images"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


async def call(provider: Any, request: ImageRequest, url: str, reply: httpx.Response) -> Any:
    """One generate against ``reply``; the image or the error, and the request sent."""
    async with session(FakeClock()) as (mock, ctx, _):
        route = mock.post(url).mock(return_value=reply)
        try:
            result: Any = await provider.generate(request, ctx)
        except ProviderError as exc:
            result = exc
        return result, route.calls.last.request if route.calls else None


@pytest.fixture(autouse=True)
def _no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "AZURE_OPENAI_API_KEY",
        "AZURE_OPENAI_ENDPOINT",
        "AZURE_OPENAI_DEPLOYMENT",
        "AZURE_OPENAI_AD_TOKEN",
        "TOGETHER_API_KEY",
        "XAI_API_KEY",
    ):
        monkeypatch.delenv(name, raising=False)


class TestAzure:
    def azure(self, **kwargs: Any) -> AzureOpenAI:
        kwargs.setdefault("api_key", "azure-key-123456")
        return AzureOpenAI(endpoint=ENDPOINT, deployment=DEPLOYMENT, **kwargs)

    async def test_the_deployment_url_and_key(self) -> None:
        reply = httpx.Response(200, json={"data": [{"b64_json": b64(PNG)}], "size": "1024x1024"})
        request = ImageRequest(prompt="a fox", output_format="webp")
        result, sent = await call(self.azure(), request, AZURE, reply)
        assert result.data == PNG
        assert sent.headers["api-key"] == "azure-key-123456"
        assert "authorization" not in sent.headers
        assert body_of(sent)["output_format"] == "png"  # Azure makes no WebP

    async def test_v1_names_the_deployment_as_model(self) -> None:
        url = f"{ENDPOINT}/openai/v1/images/generations"
        reply = httpx.Response(200, json={"data": [{"b64_json": b64(PNG)}]})
        _, sent = await call(self.azure(api_version="v1"), ImageRequest(prompt="p"), url, reply)
        assert body_of(sent)["model"] == DEPLOYMENT
        assert "api-version" not in str(sent.url)

    async def test_edits_keep_the_api_version(self) -> None:
        url = AZURE.replace("generations", "edits")
        reply = httpx.Response(200, json={"data": [{"b64_json": b64(PNG)}]})
        request = ImageRequest(prompt="p", images=[PNG], mask=PNG)
        result, sent = await call(self.azure(), request, url, reply)
        assert result.data == PNG
        assert sent.headers["content-type"].startswith("multipart/form-data")

    @pytest.mark.parametrize("kind", ["string", "callable"])
    async def test_an_entra_token(self, kind: str, caplog: pytest.LogCaptureFixture) -> None:
        token = "eyJ0eXAi.entra-token.sig"
        source: Any = token if kind == "string" else (lambda: token)
        provider = AzureOpenAI(endpoint=ENDPOINT, deployment=DEPLOYMENT, access_token=source)
        reply = httpx.Response(200, json={"data": [{"b64_json": b64(PNG)}]})
        with caplog.at_level(logging.DEBUG):
            _, sent = await call(provider, ImageRequest(prompt="p"), AZURE, reply)
        assert sent.headers["authorization"] == f"Bearer {token}"
        assert "api-key" not in sent.headers
        assert token not in repr(provider)
        assert token not in caplog.text

    @pytest.mark.parametrize(
        ("code", "reason"),
        [
            ("contentFilter", "contentFilter"),
            ("content_policy_violation", "content_policy_violation"),
        ],
    )
    async def test_content_filters(self, code: str, reason: str) -> None:
        body = {
            "error": {"code": code, "message": "Your task failed as a result of our safety system."}
        }
        result, _ = await call(
            self.azure(), ImageRequest(prompt="p"), AZURE, httpx.Response(400, json=body)
        )
        assert isinstance(result, ContentRejected)
        assert result.reason == reason

    async def test_a_blocked_resource_is_not_a_prompt_problem(self) -> None:
        body = {
            "error": {
                "code": "Forbidden",
                "message": "Your resource has been temporarily "
                "blocked because we detected behavior that may violate our content policy.",
            }
        }
        result, _ = await call(
            self.azure(), ImageRequest(prompt="p"), AZURE, httpx.Response(403, json=body)
        )
        assert isinstance(result, ProviderAuthError)

    @pytest.mark.parametrize(
        ("kwargs", "field"),
        [
            ({"endpoint": None}, "endpoint"),
            ({"deployment": ""}, "deployment"),
            ({"access_token": "t"}, "access_token"),
            ({"endpoint": "acme"}, "endpoint"),
            ({"api_version": " "}, "api_version"),
        ],
    )
    def test_bad_settings(self, kwargs: dict[str, Any], field: str) -> None:
        settings = {"endpoint": ENDPOINT, "deployment": DEPLOYMENT, "api_key": "k", **kwargs}
        with pytest.raises(InvalidConfig) as caught:
            AzureOpenAI(**settings)
        assert caught.value.field == field

    def test_from_env(self) -> None:
        env = {"AZURE_OPENAI_ENDPOINT": ENDPOINT, "AZURE_OPENAI_DEPLOYMENT": DEPLOYMENT}
        keyed = AzureOpenAI.from_env({**env, "AZURE_OPENAI_API_KEY": "azure-key-123456"})
        assert keyed is not None
        assert keyed.auth_headers() == {"api-key": "azure-key-123456"}
        tokened = AzureOpenAI.from_env({**env, "AZURE_OPENAI_AD_TOKEN": "entra-token"})
        assert tokened is not None
        assert tokened.tokens is not None
        assert AzureOpenAI.from_env(env) is None
        with pytest.raises(InvalidConfig, match="AZURE_OPENAI_DEPLOYMENT"):
            AzureOpenAI.from_env({"AZURE_OPENAI_API_KEY": "k", "AZURE_OPENAI_ENDPOINT": ENDPOINT})

    async def test_check_lists_the_models(self) -> None:
        async with session(FakeClock()) as (mock, ctx, _):
            route = mock.get(f"{ENDPOINT}/openai/models?api-version=2024-10-21").respond(
                200, json={"data": []}
            )
            await self.azure().check(ctx)
            assert route.called


class TestTogether:
    async def test_the_dialect(self) -> None:
        reply = httpx.Response(
            200,
            json={
                "id": "img-1",
                "model": "m",
                "object": "list",
                "data": [{"index": 0, "type": "b64_json", "b64_json": b64(PNG)}],
            },
        )
        request = ImageRequest(
            prompt="a fox",
            width=2048,
            height=128,
            seed=3,
            negative_prompt="blur",
            safety="relaxed",
            output_format="webp",
        )
        result, sent = await call(Together(api_key="tg-key"), request, TOGETHER, reply)
        assert result.data == PNG
        body = body_of(sent)
        assert (body["width"], body["height"]) == (1920, 256)
        assert (body["seed"], body["negative_prompt"]) == (3, "blur")
        assert (body["response_format"], body["output_format"]) == ("base64", "png")
        assert body["disable_safety_checker"] is True
        assert "size" not in body

    async def test_kontext_takes_an_image_in_the_body(self) -> None:
        kontext = Together(api_key="k", model="black-forest-labs/FLUX.1-kontext-pro")
        assert (kontext.input_images, Together(api_key="k").input_images) == (1, 0)
        assert "negative_prompt" in kontext.unsupported
        reply = httpx.Response(200, json={"data": [{"b64_json": b64(PNG)}]})
        request = ImageRequest(prompt="p", images=[PNG], negative_prompt="n")
        _, sent = await call(kontext, request, TOGETHER, reply)
        body = body_of(sent)
        assert body["image_url"].startswith("data:image/png;base64,")
        assert "negative_prompt" not in body

    async def test_nsfw_is_a_rejection(self) -> None:
        body = {
            "error": {
                "message": "NSFW content detected in the image.",
                "type": "invalid_request_error",
            }
        }
        result, _ = await call(
            Together(api_key="k"),
            ImageRequest(prompt="p"),
            TOGETHER,
            httpx.Response(422, json=body),
        )
        assert isinstance(result, ContentRejected)


class TestXAI:
    async def test_the_dialect_and_its_cost(self) -> None:
        reply = httpx.Response(
            200,
            json={
                "data": [{"b64_json": b64(JPEG), "mime_type": "image/jpeg"}],
                "usage": {"cost_in_usd_ticks": 200_000_000},
            },
        )
        request = ImageRequest(prompt="a fox", width=2048, height=1152)
        result, sent = await call(XAI(api_key="xai-key"), request, f"{XAI_URL}/generations", reply)
        assert result.data == JPEG
        assert result.cost == pytest.approx(0.02)
        body = body_of(sent)
        assert (body["aspect_ratio"], body["resolution"]) == ("16:9", "2k")
        assert body["response_format"] == "b64_json"
        assert not {"size", "quality", "seed"} & set(body)

    async def test_an_edit_is_json_at_edits(self) -> None:
        reply = httpx.Response(200, json={"data": [{"b64_json": b64(JPEG)}]})
        request = ImageRequest(prompt="add a hat", images=[PNG])
        result, sent = await call(XAI(api_key="k"), request, f"{XAI_URL}/edits", reply)
        assert result.data == JPEG
        assert result.cost is None
        body = body_of(sent)
        assert body["image"]["url"].startswith("data:image/png;base64,")
        assert "aspect_ratio" not in body

    @pytest.mark.parametrize(
        "answer", [{"data": [{"url": None, "respect_moderation": False}]}, {"data": []}, {}]
    )
    async def test_a_refusal_in_a_200(self, answer: dict[str, Any]) -> None:
        result, _ = await call(
            XAI(api_key="k"),
            ImageRequest(prompt="p"),
            f"{XAI_URL}/generations",
            httpx.Response(200, json=answer),
        )
        assert isinstance(result, ContentRejected)
        assert result.reason == "moderation"

    @pytest.mark.parametrize("ticks", [None, "1", -5, True])
    def test_a_cost_it_does_not_say(self, ticks: Any) -> None:
        assert XAI(api_key="k").answer_cost({"usage": {"cost_in_usd_ticks": ticks}}) is None
        assert XAI(api_key="k").price(ImageRequest(prompt="p")) == 0.02
        assert (
            XAI(api_key="k", model="grok-imagine-image-quality").price(ImageRequest(prompt="p"))
            is None
        )
