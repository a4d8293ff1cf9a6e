"""Google: Gemini image models on the Gemini API and Vertex AI, in their documented shapes."""

from __future__ import annotations

import base64
import logging
from typing import Any

import httpx
import pytest
from provider_support import body_of, session

from imagegen import (
    ContentRejected,
    Google,
    ImageRequest,
    InvalidConfig,
    ProviderAuthError,
    ProviderError,
    ProviderQuotaExceeded,
    ProviderRateLimited,
    ProviderUnavailable,
)
from imagegen.providers._google import vertex_base_url
from imagegen.providers._google_wire import rules_for
from imagegen.providers._prices import gemini_answer_cost, gemini_price
from imagegen.testing import FakeClock, tiny_png

pytestmark = pytest.mark.anyio

KEY = "AIza-test-key-123456"
GEMINI = "https://generativelanguage.googleapis.com/v1beta"
CREATE = f"{GEMINI}/models/gemini-3.1-flash-image:generateContent"
VERTEX_CREATE = (
    "https://us-central1-aiplatform.googleapis.com/v1/projects/acme/locations/us-central1/"
    "publishers/google/models/gemini-3.1-flash-image:generateContent"
)
PNG = tiny_png()
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01fake-jpeg-body"
USAGE = {
    "promptTokenCount": 10,
    "candidatesTokenCount": 1130,
    "totalTokenCount": 1140,
    "candidatesTokensDetails": [
        {"modality": "TEXT", "tokenCount": 10},
        {"modality": "IMAGE", "tokenCount": 1120},
    ],
}


def image(data: bytes, mime: str = "image/png", **extra: Any) -> dict[str, Any]:
    return {"inlineData": {"mimeType": mime, "data": base64.b64encode(data).decode()}, **extra}


def answer(*parts: dict[str, Any], finish: str = "STOP", **extra: Any) -> dict[str, Any]:
    candidate = {"content": {"role": "model", "parts": list(parts)}, "finishReason": finish}
    return {"candidates": [candidate], "usageMetadata": USAGE, "modelVersion": "m", **extra}


def google_error(status: int, name: str, message: str, *details: dict[str, Any]) -> httpx.Response:
    body = {"error": {"code": status, "message": message, "status": name, "details": list(details)}}
    return httpx.Response(status, json=body)


@pytest.fixture(autouse=True)
def _no_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("GEMINI_API_KEY", "GOOGLE_API_KEY", "GOOGLE_APPLICATION_CREDENTIALS"):
        monkeypatch.delenv(name, raising=False)


async def make(provider: Google, request: ImageRequest, reply: Any, url: str = CREATE) -> Any:
    """Run one generate against ``reply``; return (image or error, the request sent)."""
    async with session(FakeClock()) as (mock, ctx, _):
        route = mock.post(url).mock(return_value=reply)
        try:
            result: Any = await provider.generate(request, ctx)
        except ProviderError as exc:
            result = exc
        return result, route.calls.last.request if route.calls else None


class TestRequest:
    async def test_the_documented_body(self) -> None:
        """The prompt and input images as parts, the nearest ratio and tier, the seed."""
        request = ImageRequest(
            prompt="a fox", width=2048, height=1152, seed=7, images=[PNG], safety="strict"
        )
        _, sent = await make(
            Google(api_key=KEY), request, httpx.Response(200, json=answer(image(PNG)))
        )
        assert sent.headers["x-goog-api-key"] == KEY
        assert "authorization" not in sent.headers
        body = body_of(sent)
        parts = body["contents"][0]["parts"]
        assert body["contents"][0]["role"] == "user"
        assert parts[0] == {"text": "a fox"}
        assert parts[1]["inlineData"]["mimeType"] == "image/png"
        assert base64.b64decode(parts[1]["inlineData"]["data"]) == PNG
        config = body["generationConfig"]
        assert config["responseModalities"] == ["IMAGE"]
        assert config["imageConfig"] == {"aspectRatio": "16:9", "imageSize": "2K"}
        assert config["seed"] == 7
        assert {s["threshold"] for s in body["safetySettings"]} == {"BLOCK_LOW_AND_ABOVE"}
        assert len(body["safetySettings"]) == 4

    @pytest.mark.parametrize(
        ("model", "size", "ratio", "tier"),
        [
            ("gemini-2.5-flash-image", (1024, 1024), "1:1", None),
            ("gemini-2.5-flash-image", (832, 1248), "2:3", None),
            ("gemini-3-pro-image-preview", (4096, 4096), "1:1", "4K"),
            ("gemini-3-pro-image", (1400, 1400), "1:1", "1K"),
            ("gemini-3-pro-image", (1536, 1536), "1:1", "2K"),
            ("gemini-3.1-flash-image", (2048, 512), "4:1", "1K"),
            ("gemini-3-pro-image", (2048, 512), "21:9", "1K"),
        ],
    )
    async def test_sizes_per_model(
        self, model: str, size: tuple[int, int], ratio: str, tier: str | None
    ) -> None:
        """Each model's own ratios; imageSize only for the models that take it."""
        request = ImageRequest(prompt="p", width=size[0], height=size[1])
        url = f"{GEMINI}/models/{model}:generateContent"
        provider = Google(api_key=KEY, model=model)
        _, sent = await make(provider, request, httpx.Response(200, json=answer(image(PNG))), url)
        image_config = body_of(sent)["generationConfig"]["imageConfig"]
        assert image_config.get("aspectRatio") == ratio
        assert image_config.get("imageSize") == tier

    async def test_a_big_seed_is_folded_and_said(self) -> None:
        """generationConfig.seed is an int32: a bigger seed is sent modulo 2**31, with a warning."""
        request = ImageRequest(prompt="p", seed=2**31 + 5)
        result, sent = await make(
            Google(api_key=KEY), request, httpx.Response(200, json=answer(image(PNG)))
        )
        assert body_of(sent)["generationConfig"]["seed"] == 5
        assert [w.field for w in result.warnings] == ["seed"]

    async def test_relaxed_safety_and_options_last(self) -> None:
        """Relaxed safety is BLOCK_NONE; provider_options replace top-level fields."""
        request = ImageRequest(
            prompt="p",
            safety="relaxed",
            provider_options={"google": {"systemInstruction": {"parts": [{"text": "x"}]}}},
        )
        _, sent = await make(
            Google(api_key=KEY), request, httpx.Response(200, json=answer(image(PNG)))
        )
        body = body_of(sent)
        assert {s["threshold"] for s in body["safetySettings"]} == {"BLOCK_NONE"}
        assert body["systemInstruction"] == {"parts": [{"text": "x"}]}

    async def test_no_negative_prompt(self) -> None:
        """A negative prompt is not sent; the class says so (a warning per request)."""
        request = ImageRequest(prompt="p", negative_prompt="blur")
        _, sent = await make(
            Google(api_key=KEY), request, httpx.Response(200, json=answer(image(PNG)))
        )
        assert "blur" not in sent.content.decode()
        assert "negative_prompt" in Google.unsupported

    def test_input_images_and_no_mask(self) -> None:
        """2.5 Flash Image takes three input images, the Gemini 3 models fourteen; none a mask."""
        assert Google(api_key=KEY, model="gemini-2.5-flash-image").input_images == 3
        assert Google(api_key=KEY).input_images == 14
        request = ImageRequest(prompt="p", images=[PNG], mask=PNG)
        assert Google(api_key=KEY).cannot_serve(request) == ("mask", "takes no mask")
        assert rules_for("some-future-image-model").tiers == ()


class TestAnswer:
    async def test_the_last_final_image(self) -> None:
        """Draft images (thought) are skipped; the image's own type is kept; cost from usage."""
        reply = answer(
            {"text": "thinking", "thought": True},
            image(b"draft", thought=True),
            image(JPEG, "image/jpeg"),
        )
        result, _ = await make(
            Google(api_key=KEY), ImageRequest(prompt="p"), httpx.Response(200, json=reply)
        )
        assert result.data == JPEG
        assert result.content_type == "image/jpeg"
        # 10 prompt tokens at $0.50/M, 10 text tokens at $3/M, 1120 image tokens at $60/M.
        assert result.cost == pytest.approx(10 * 0.5e-6 + 10 * 3e-6 + 1120 * 60e-6)
        assert result.raw["usage"] == USAGE

    async def test_only_thought_images_fall_back_to_the_last(self) -> None:
        reply = answer(image(b"one", thought=True), image(PNG, thought=True))
        result, _ = await make(
            Google(api_key=KEY), ImageRequest(prompt="p"), httpx.Response(200, json=reply)
        )
        assert result.data == PNG

    @pytest.mark.parametrize(
        ("reply", "reason"),
        [
            ({"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"}}, "PROHIBITED_CONTENT"),
            ({"candidates": [], "promptFeedback": {"blockReasonMessage": "no"}}, "BLOCKED"),
            (answer(finish="IMAGE_SAFETY"), "IMAGE_SAFETY"),
            ({"candidates": [{"content": {"role": "model"}, "finishReason": "SAFETY"}]}, "SAFETY"),
        ],
    )
    async def test_refusals(self, reply: dict[str, Any], reason: str) -> None:
        """A blocked prompt or a refused image is ContentRejected with Google's reason."""
        result, _ = await make(
            Google(api_key=KEY), ImageRequest(prompt="p"), httpx.Response(200, json=reply)
        )
        assert isinstance(result, ContentRejected)
        assert result.reason == reason

    async def test_words_instead_of_an_image(self) -> None:
        """NO_IMAGE with text: not retried (the call was made), the words quoted."""
        reply = answer({"text": "I can only describe it."}, finish="NO_IMAGE")
        result, _ = await make(
            Google(api_key=KEY), ImageRequest(prompt="p"), httpx.Response(200, json=reply)
        )
        assert isinstance(result, ProviderUnavailable)
        assert not result.retryable
        assert "NO_IMAGE" in str(result)
        assert "I can only describe it." in str(result)

    @pytest.mark.parametrize(
        "reply",
        [
            httpx.Response(
                200, json=answer({"inlineData": {"mimeType": "image/png", "data": "%%"}})
            ),
            httpx.Response(200, content=b'{"candidates": [{"content"'),
            httpx.Response(200, json=["not", "an", "object"]),
        ],
    )
    async def test_unreadable_answers_are_not_retried(self, reply: httpx.Response) -> None:
        result, _ = await make(Google(api_key=KEY), ImageRequest(prompt="p"), reply)
        assert isinstance(result, ProviderUnavailable)
        assert not result.retryable


class TestErrors:
    async def test_an_invalid_key_is_an_auth_error(self) -> None:
        """Google answers a bad key with 400 INVALID_ARGUMENT, reason API_KEY_INVALID."""
        info = {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"}
        reply = google_error(400, "INVALID_ARGUMENT", "API key not valid.", info)
        result, _ = await make(Google(api_key=KEY), ImageRequest(prompt="p"), reply)
        assert isinstance(result, ProviderAuthError)
        assert "API key not valid." in str(result)
        assert KEY not in str(result)

    async def test_a_rate_limit_waits_the_retry_delay(self) -> None:
        retry = {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "26.5s"}
        reply = google_error(429, "RESOURCE_EXHAUSTED", "slow down", retry)
        result, _ = await make(Google(api_key=KEY), ImageRequest(prompt="p"), reply)
        assert isinstance(result, ProviderRateLimited)
        assert result.retry_after == 26.5
        assert result.retryable

    async def test_a_daily_quota_is_spent(self) -> None:
        quota = {
            "@type": "type.googleapis.com/google.rpc.QuotaFailure",
            "violations": [{"quotaId": "GenerateRequestsPerDayPerProjectPerModel-FreeTier"}],
        }
        reply = google_error(429, "RESOURCE_EXHAUSTED", "quota", quota)
        result, _ = await make(Google(api_key=KEY), ImageRequest(prompt="p"), reply)
        assert isinstance(result, ProviderQuotaExceeded)
        assert not result.retryable

    async def test_a_5xx_create_is_not_retried(self) -> None:
        reply = google_error(503, "UNAVAILABLE", "The model is overloaded.")
        result, _ = await make(Google(api_key=KEY), ImageRequest(prompt="p"), reply)
        assert isinstance(result, ProviderUnavailable)
        assert not result.retryable

    async def test_a_bad_request(self) -> None:
        reply = google_error(400, "FAILED_PRECONDITION", "User location is not supported.")
        result, _ = await make(Google(api_key=KEY), ImageRequest(prompt="p"), reply)
        assert type(result) is ProviderError
        assert result.status == 400
        assert "User location is not supported." in str(result)


class TestKeys:
    def test_gemini_key_then_google_key(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("GOOGLE_API_KEY", "AIza-google")
        assert Google().auth_headers() == {"x-goog-api-key": "AIza-google"}
        monkeypatch.setenv("GEMINI_API_KEY", "AIza-gemini")
        assert Google().auth_headers() == {"x-goog-api-key": "AIza-gemini"}
        assert Google.from_env({"GOOGLE_API_KEY": "k2"}).auth_headers() == {"x-goog-api-key": "k2"}  # type: ignore[union-attr]
        assert Google.from_env({}) is None

    def test_from_env_vertex(self) -> None:
        """GOOGLE_GENAI_USE_VERTEXAI and GOOGLE_CLOUD_PROJECT: Vertex AI, as Google's SDKs say."""
        env = {
            "GOOGLE_GENAI_USE_VERTEXAI": "true",
            "GOOGLE_CLOUD_PROJECT": "acme",
            "GOOGLE_CLOUD_LOCATION": "europe-west4",
            "IMAGEGEN_GOOGLE_MODEL": "gemini-2.5-flash-image",
        }
        provider = Google.from_env(env)
        assert provider is not None
        assert provider.vertex
        assert provider.base_url == "https://europe-west4-aiplatform.googleapis.com/v1"
        assert provider.model == "gemini-2.5-flash-image"
        with pytest.raises(InvalidConfig) as caught:
            Google.from_env({**env, "GOOGLE_CLOUD_LOCATION": "eu west"})
        assert caught.value.field == "GOOGLE_CLOUD_LOCATION"

    def test_no_key_says_where_to_put_one(self) -> None:
        with pytest.raises(ProviderAuthError, match="GEMINI_API_KEY"):
            Google().require_key()

    @pytest.mark.parametrize("field", ["model", "project", "location"])
    def test_bad_names(self, field: str) -> None:
        kwargs: dict[str, Any] = {"project": "acme", "access_token": "t", field: "a/b"}
        with pytest.raises(InvalidConfig) as caught:
            Google(**kwargs)
        assert caught.value.field == field

    @pytest.mark.parametrize(
        ("location", "root"),
        [
            ("global", "https://aiplatform.googleapis.com/v1"),
            ("us", "https://aiplatform.us.rep.googleapis.com/v1"),
            ("us-central1", "https://us-central1-aiplatform.googleapis.com/v1"),
        ],
    )
    def test_vertex_hosts(self, location: str, root: str) -> None:
        assert vertex_base_url(location) == root
        assert Google(project="acme", location=location, access_token="t").base_url == root

    def test_adc_needs_google_auth(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setitem(__import__("sys").modules, "google.auth", None)
        with pytest.raises(InvalidConfig, match=r"imagegen-failover\[google\]") as caught:
            Google(project="acme")
        assert caught.value.field == "access_token"

    @pytest.mark.parametrize("token", ["", "  ", 42])
    def test_a_bad_token(self, token: object) -> None:
        with pytest.raises(InvalidConfig):
            Google(project="acme", access_token=token)  # type: ignore[arg-type]


class TestVertex:
    @pytest.mark.parametrize("kind", ["string", "sync", "async"])
    async def test_bearer_token_from_each_source(
        self, kind: str, caplog: pytest.LogCaptureFixture
    ) -> None:
        """The token goes as Authorization: Bearer; it never shows in repr or httpx's log."""
        token = "ya29.secret-token-abc"

        async def later() -> str:
            return token

        source: Any = {"string": token, "sync": lambda: token, "async": later}[kind]
        provider = Google(project="acme", location="us-central1", access_token=source)
        request = ImageRequest(prompt="p", output_format="jpeg")
        with caplog.at_level(logging.DEBUG):
            result, sent = await make(
                provider,
                request,
                httpx.Response(200, json=answer(image(JPEG, "image/jpeg"))),
                VERTEX_CREATE,
            )
        assert sent.headers["authorization"] == f"Bearer {token}"
        assert "x-goog-api-key" not in sent.headers
        image_config = body_of(sent)["generationConfig"]["imageConfig"]
        assert image_config["imageOutputOptions"] == {"mimeType": "image/jpeg"}
        assert result.data == JPEG
        assert token not in repr(provider)
        assert token not in caplog.text

    async def test_an_empty_token_is_an_auth_error(self) -> None:
        provider = Google(project="acme", location="us-central1", access_token=lambda: "")
        result, sent = await make(
            provider, ImageRequest(prompt="p"), httpx.Response(200), VERTEX_CREATE
        )
        assert isinstance(result, ProviderAuthError)
        assert sent is None

    async def test_a_refused_token_is_not_in_the_error(self) -> None:
        token = "ya29.refused-token-xyz"
        reply = google_error(401, "UNAUTHENTICATED", f"Request had invalid credentials {token}.")
        provider = Google(project="acme", location="us-central1", access_token=token)
        result, _ = await make(provider, ImageRequest(prompt="p"), reply, VERTEX_CREATE)
        assert isinstance(result, ProviderAuthError)
        assert token not in str(result)


class TestCheck:
    async def test_gemini_check_reads_the_model(self) -> None:
        async with session(FakeClock()) as (mock, ctx, _):
            route = mock.get(f"{GEMINI}/models/gemini-3.1-flash-image").respond(
                200, json={"name": "models/gemini-3.1-flash-image"}
            )
            await Google(api_key=KEY).check(ctx)
            assert route.calls.last.request.headers["x-goog-api-key"] == KEY

    async def test_an_unknown_model(self) -> None:
        async with session(FakeClock()) as (mock, ctx, _):
            mock.get(f"{GEMINI}/models/nope").mock(
                return_value=google_error(404, "NOT_FOUND", "models/nope is not found")
            )
            with pytest.raises(ProviderError, match="'nope' is unknown") as caught:
                await Google(api_key=KEY, model="nope").check(ctx)
            assert caught.value.status == 404

    async def test_vertex_check_reads_the_publisher_model(self) -> None:
        url = "https://aiplatform.googleapis.com/v1/publishers/google/models/gemini-3.1-flash-image"
        async with session(FakeClock()) as (mock, ctx, _):
            route = mock.get(url).respond(200, json={"name": "publishers/google/models/x"})
            await Google(project="acme", access_token="tok").check(ctx)
            assert route.calls.last.request.headers["authorization"] == "Bearer tok"


class TestPrices:
    def test_price_by_model_and_size(self) -> None:
        assert gemini_price("gemini-2.5-flash-image", None) == pytest.approx(0.0387)
        assert gemini_price("gemini-3-pro-image-preview", "4K") == pytest.approx(0.24)
        assert gemini_price("gemini-3-pro-image", "2K") == pytest.approx(0.1344)
        assert gemini_price("gemini-3.1-flash-image", "2K") == pytest.approx(0.1008)
        assert gemini_price("imagen-4.0-generate-001", None) is None
        provider = Google(api_key=KEY, model="gemini-3-pro-image")
        assert provider.price(ImageRequest(prompt="p", resolution="4K")) == pytest.approx(0.24)

    @pytest.mark.parametrize(
        "usage",
        [None, {"promptTokenCount": -1}, {"candidatesTokensDetails": [{"tokenCount": "x"}]}],
    )
    def test_usage_that_does_not_say(self, usage: Any) -> None:
        assert gemini_answer_cost("gemini-3-pro-image", usage) is None
        assert gemini_answer_cost("unknown-model", USAGE) is None

    async def test_a_price_of_your_own_wins(self) -> None:
        provider = Google(api_key=KEY, price_per_image=0.5)
        result, _ = await make(
            provider, ImageRequest(prompt="p"), httpx.Response(200, json=answer(image(PNG)))
        )
        assert result.cost is None
        assert provider.price(ImageRequest(prompt="p")) == 0.5
