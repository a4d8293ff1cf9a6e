"""OpenAIImages: the documented wire shapes, sizes, errors, check()."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import respx

from imagegen import (
    AllProvidersFailed,
    ContentRejected,
    DownloadPolicy,
    ImageGenerator,
    ImageRequest,
    InvalidConfig,
    Placeholder,
    ProviderAuthError,
    ProviderContext,
    ProviderError,
    ProviderQuotaExceeded,
    ProviderRateLimited,
    ProviderTimeout,
    ProviderUnavailable,
)
from imagegen.providers._openai import OpenAIImages, nearest_size, prompt_limit
from imagegen.testing import FakeClock, tiny_png

KEY = "sk-test"
BASE = "https://api.openai.com/v1"
GATEWAY = "https://gateway.example.com/openai/v1"
PROMPT = "a red bicycle leaning on a brick wall"
CDN_URL = "https://images.example-cdn.net/img-abc.png?sig=XYZ"
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01fake-jpeg-body"

DALLE3_RESPONSE = {
    "created": 1767225600,
    "data": [{"url": CDN_URL, "revised_prompt": "A bright red bicycle..."}],
}
GPT_RESPONSE = {
    "created": 1767225600,
    "data": [{"b64_json": base64.b64encode(JPEG).decode()}],
    "background": "opaque",
    "output_format": "jpeg",
    "quality": "low",
    "size": "1024x1024",
    "usage": {
        "input_tokens": 12,
        "input_tokens_details": {"image_tokens": 0, "text_tokens": 12},
        "output_tokens": 272,
        "total_tokens": 284,
    },
}


def envelope(message: str, type_: str | None, code: str | None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": None, "code": code}}


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


def make_ctx(clock: FakeClock, http: httpx.AsyncClient) -> ProviderContext:
    return ProviderContext(deadline=clock.monotonic() + 30, clock=clock, http_factory=lambda: http)


def sent_json(route: respx.Route) -> Any:
    return json.loads(route.calls.last.request.content)


class TestConstruction:
    """Keys, options and repr."""

    def test_defaults(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Name openai, tier 0, gpt-image-1 at api.openai.com, key from OPENAI_API_KEY."""
        monkeypatch.setenv("OPENAI_API_KEY", KEY)
        provider = OpenAIImages()
        assert (provider.name, provider.tier, provider.model) == ("openai", 0, "gpt-image-1")
        assert provider.base_url == BASE
        assert provider.has_key
        monkeypatch.delenv("OPENAI_API_KEY")
        assert not OpenAIImages().has_key

    def test_overrides(self) -> None:
        """name, tier, timeout and base_url are taken as given (trailing slash dropped)."""
        provider = OpenAIImages(
            api_key=KEY, base_url=GATEWAY + "/", name="gw", tier=2, timeout=90.0
        )
        assert (provider.name, provider.tier, provider.timeout) == ("gw", 2, 90.0)
        assert provider.base_url == GATEWAY

    def test_repr_hides_the_key(self) -> None:
        """The key is in neither repr nor str."""
        provider = OpenAIImages(api_key="sk-secret-0123456789")
        assert "sk-secret" not in repr(provider)
        assert "key=set" in repr(provider)

    @pytest.mark.parametrize(
        ("kwargs", "field"),
        [
            ({"model": ""}, "model"),
            ({"model": "gpt image"}, "model"),
            ({"model": 3}, "model"),
            ({"quality": "hd"}, "quality"),
            ({"model": "dall-e-3", "quality": "low"}, "quality"),
            ({"model": "dall-e-2", "quality": "hd"}, "quality"),
            ({"quality": ""}, "quality"),
            ({"organization": ""}, "organization"),
            ({"project": " "}, "project"),
            ({"api_key": ""}, "api_key"),
            ({"base_url": "gateway.example.com"}, "base_url"),
        ],
    )
    def test_bad_options(self, kwargs: dict[str, Any], field: str) -> None:
        """A bad option is an InvalidConfig naming it."""
        with pytest.raises(InvalidConfig) as info:
            OpenAIImages(**{"api_key": KEY, **kwargs})
        assert info.value.field == field

    @pytest.mark.parametrize(
        ("model", "quality"),
        [
            ("gpt-image-1", "high"),
            ("gpt-image-1-mini", "auto"),
            ("dall-e-3", "hd"),
            ("dall-e-2", "standard"),
            ("flux-schnell", "ultra"),
        ],
    )
    def test_good_qualities(self, model: str, quality: str) -> None:
        """Each family takes its own quality words; unknown models take any."""
        assert OpenAIImages(api_key=KEY, model=model, quality=quality).quality == quality


class TestSizes:
    """Nearest allowed size by aspect ratio, then area."""

    @pytest.mark.parametrize(
        ("model", "asked", "used"),
        [
            ("gpt-image-1", (1024, 1024), (1024, 1024)),
            ("gpt-image-1", (512, 512), (1024, 1024)),
            ("gpt-image-1", (1024, 768), (1536, 1024)),
            ("gpt-image-1", (1920, 1080), (1536, 1024)),
            ("gpt-image-1", (768, 1024), (1024, 1536)),
            ("gpt-image-1", (1104, 1000), (1024, 1024)),
            ("gpt-image-1-mini", (4096, 1024), (1536, 1024)),
            ("dall-e-3", (1024, 1024), (1024, 1024)),
            ("dall-e-3", (1920, 1080), (1792, 1024)),
            ("dall-e-3", (1024, 768), (1792, 1024)),
            ("dall-e-3", (1080, 1920), (1024, 1792)),
            ("dall-e-3", (64, 64), (1024, 1024)),
            ("dall-e-2", (256, 256), (256, 256)),
            ("dall-e-2", (296, 296), (256, 256)),
            ("dall-e-2", (512, 512), (512, 512)),
            ("dall-e-2", (800, 600), (512, 512)),
            ("dall-e-2", (2048, 2048), (1024, 1024)),
            ("dall-e-2", (64, 4096), (512, 512)),
            ("flux-schnell", (1000, 600), (1000, 600)),
            ("black-forest-labs/FLUX.1", (64, 4096), (64, 4096)),
        ],
    )
    def test_table(self, model: str, asked: tuple[int, int], used: tuple[int, int]) -> None:
        """Each model family maps the asked size to its nearest allowed one."""
        assert nearest_size(model, *asked) == used

    def test_exact_ties_go_to_the_larger_size(self) -> None:
        """512x256 is as far (by area ratio, 2x) from 256x256 as from 512x512: the larger wins."""
        assert nearest_size("dall-e-2", 512, 256) == (512, 512)
        assert nearest_size("dall-e-2", 256, 512) == (512, 512)

    def test_aspect_ratio_before_area(self) -> None:
        """A small wide ask gets the wide size, even though the square one is nearer in area."""
        assert nearest_size("gpt-image-1", 768, 512) == (1536, 1024)
        assert nearest_size("gpt-image-1", 1224, 1000) == (1024, 1024)

    @pytest.mark.anyio
    async def test_size_used_is_reported(self, clock: FakeClock, http: httpx.AsyncClient) -> None:
        """A 1024x768 ask to gpt-image-1 sends 1536x1024 and reports that size."""
        answer = {"created": 1, "data": [{"b64_json": base64.b64encode(JPEG).decode()}]}
        with respx.mock(assert_all_called=False) as mock:
            route = mock.post(f"{BASE}/images/generations").respond(200, json=answer)
            image = await OpenAIImages(api_key=KEY).generate(
                ImageRequest(prompt=PROMPT, width=1024, height=768), make_ctx(clock, http)
            )
        assert sent_json(route)["size"] == "1536x1024"
        assert (image.width, image.height) == (1536, 1024)
        assert image.raw is not None
        assert image.raw["size"] == "1536x1024"

    @pytest.mark.anyio
    async def test_gateway_gets_the_size_asked(
        self, clock: FakeClock, http: httpx.AsyncClient
    ) -> None:
        """An unknown model behind a gateway gets "{W}x{H}" and no format fields."""
        answer = {"created": 1, "data": [{"url": CDN_URL}]}
        provider = OpenAIImages(api_key=KEY, base_url=GATEWAY, model="flux-schnell")
        with respx.mock(assert_all_called=False) as mock:
            route = mock.post(f"{GATEWAY}/images/generations").respond(200, json=answer)
            image = await provider.generate(
                ImageRequest(prompt=PROMPT, width=1000, height=600, output_format="webp"),
                make_ctx(clock, http),
            )
        assert sent_json(route) == {
            "model": "flux-schnell",
            "prompt": PROMPT,
            "n": 1,
            "size": "1000x600",
        }
        assert (image.url, image.width, image.height) == (CDN_URL, 1000, 600)
        assert image.raw is not None
        assert image.raw["size"] == "1000x600"

    @pytest.mark.anyio
    async def test_vendor_size_wins(self, clock: FakeClock, http: httpx.AsyncClient) -> None:
        """size "auto" from provider_options: the size in the answer is the one reported."""
        answer = {**GPT_RESPONSE, "size": "1536x1024"}
        request = ImageRequest(prompt=PROMPT, provider_options={"openai": {"size": "auto"}})
        with respx.mock(assert_all_called=False) as mock:
            route = mock.post(f"{BASE}/images/generations").respond(200, json=answer)
            image = await OpenAIImages(api_key=KEY).generate(request, make_ctx(clock, http))
        assert sent_json(route)["size"] == "auto"
        assert (image.width, image.height) == (1536, 1024)

    @pytest.mark.anyio
    async def test_unknown_size_leaves_dimensions_open(
        self, clock: FakeClock, http: httpx.AsyncClient
    ) -> None:
        """size "auto" and no size in the answer: width and height stay None."""
        answer = {"created": 1, "data": [{"b64_json": base64.b64encode(JPEG).decode()}]}
        request = ImageRequest(prompt=PROMPT, provider_options={"openai": {"size": "auto"}})
        with respx.mock(assert_all_called=False) as mock:
            mock.post(f"{BASE}/images/generations").respond(200, json=answer)
            image = await OpenAIImages(api_key=KEY).generate(request, make_ctx(clock, http))
        assert (image.width, image.height) == (None, None)
        assert image.raw is not None
        assert "size" not in image.raw


class TestGenerate:
    """The two test vectors and the request shape."""

    @pytest.mark.anyio
    async def test_dalle3_vector(self, clock: FakeClock, http: httpx.AsyncClient) -> None:
        """dall-e-3 with quality standard and response_format url: exact body, URL output."""
        provider = OpenAIImages(api_key=KEY, model="dall-e-3", quality="standard")
        request = ImageRequest(
            prompt=PROMPT, provider_options={"openai": {"response_format": "url"}}
        )
        with respx.mock(assert_all_called=False) as mock:
            route = mock.post(f"{BASE}/images/generations").respond(
                200, json=DALLE3_RESPONSE, headers={"x-request-id": "req_123"}
            )
            image = await provider.generate(request, make_ctx(clock, http))
        sent = route.calls.last.request
        assert sent.headers["Authorization"] == "Bearer sk-test"
        assert sent.headers["Content-Type"] == "application/json"
        assert sent.headers["User-Agent"].startswith("imagegen")
        assert "OpenAI-Organization" not in sent.headers
        assert json.loads(sent.content) == {
            "model": "dall-e-3",
            "prompt": PROMPT,
            "n": 1,
            "size": "1024x1024",
            "quality": "standard",
            "response_format": "url",
        }
        assert image.url == CDN_URL
        assert image.data is None
        assert (image.width, image.height) == (1024, 1024)
        assert image.raw is not None
        assert image.raw["revised_prompt"] == "A bright red bicycle..."
        assert image.raw["request_id"] == "req_123"
        assert image.raw["size"] == "1024x1024"

    @pytest.mark.anyio
    async def test_gpt_image_vector(self, clock: FakeClock, http: httpx.AsyncClient) -> None:
        """gpt-image-1, quality low, jpeg: output_format sent, no response_format, bytes back."""
        provider = OpenAIImages(api_key=KEY, quality="low")
        request = ImageRequest(prompt=PROMPT, output_format="jpeg")
        with respx.mock(assert_all_called=False) as mock:
            route = mock.post(f"{BASE}/images/generations").respond(200, json=GPT_RESPONSE)
            image = await provider.generate(request, make_ctx(clock, http))
        # The vector leaves n out; n=1 is the API's default and is always sent here.
        assert sent_json(route) == {
            "model": "gpt-image-1",
            "prompt": PROMPT,
            "n": 1,
            "size": "1024x1024",
            "quality": "low",
            "output_format": "jpeg",
        }
        assert image.data == JPEG
        assert image.url is None
        assert image.content_type == "image/jpeg"
        assert (image.width, image.height) == (1024, 1024)
        assert image.raw is not None
        assert image.raw["usage"]["total_tokens"] == 284
        assert "data" not in image.raw

    @pytest.mark.anyio
    async def test_dalle_asks_for_base64_by_default(
        self, clock: FakeClock, http: httpx.AsyncClient
    ) -> None:
        """dall-e-2 without options: response_format b64_json, no quality, no output_format."""
        answer = {"created": 1, "data": [{"b64_json": base64.b64encode(tiny_png()).decode()}]}
        provider = OpenAIImages(api_key=KEY, model="dall-e-2")
        with respx.mock(assert_all_called=False) as mock:
            route = mock.post(f"{BASE}/images/generations").respond(200, json=answer)
            image = await provider.generate(
                ImageRequest(prompt=PROMPT, width=512, height=512, output_format="webp"),
                make_ctx(clock, http),
            )
        assert sent_json(route) == {
            "model": "dall-e-2",
            "prompt": PROMPT,
            "n": 1,
            "size": "512x512",
            "response_format": "b64_json",
        }
        assert image.data == tiny_png()

    @pytest.mark.anyio
    async def test_organization_and_project_headers(
        self, clock: FakeClock, http: httpx.AsyncClient
    ) -> None:
        """organization and project become OpenAI-Organization and OpenAI-Project."""
        provider = OpenAIImages(api_key=KEY, organization="org-abc", project="proj_xyz")
        with respx.mock(assert_all_called=False) as mock:
            route = mock.post(f"{BASE}/images/generations").respond(200, json=GPT_RESPONSE)
            await provider.generate(ImageRequest(prompt=PROMPT), make_ctx(clock, http))
        headers = route.calls.last.request.headers
        assert headers["OpenAI-Organization"] == "org-abc"
        assert headers["OpenAI-Project"] == "proj_xyz"
        assert headers["Authorization"] == "Bearer sk-test"

    @pytest.mark.anyio
    async def test_provider_options_merge_last(
        self, clock: FakeClock, http: httpx.AsyncClient
    ) -> None:
        """Options under the provider's name override and extend the body; others are ignored."""
        provider = OpenAIImages(api_key=KEY, name="oai", quality="low")
        request = ImageRequest(
            prompt=PROMPT,
            provider_options={
                "oai": {"quality": "high", "background": "transparent", "moderation": "low"},
                "openai": {"quality": "medium"},
            },
        )
        with respx.mock(assert_all_called=False) as mock:
            route = mock.post(f"{BASE}/images/generations").respond(200, json=GPT_RESPONSE)
            await provider.generate(request, make_ctx(clock, http))
        body = sent_json(route)
        assert body["quality"] == "high"
        assert body["background"] == "transparent"
        assert body["moderation"] == "low"

    @pytest.mark.anyio
    async def test_gateway_base_url(self, clock: FakeClock, http: httpx.AsyncClient) -> None:
        """A compatible gateway under a path prefix gets the same request there."""
        provider = OpenAIImages(api_key=KEY, base_url=GATEWAY, model="dall-e-3")
        with respx.mock(assert_all_called=False) as mock:
            route = mock.post(f"{GATEWAY}/images/generations").respond(200, json=DALLE3_RESPONSE)
            image = await provider.generate(ImageRequest(prompt=PROMPT), make_ctx(clock, http))
        assert route.called
        assert route.calls.last.request.headers["Authorization"] == "Bearer sk-test"
        assert image.url == CDN_URL

    @pytest.mark.anyio
    async def test_data_url_from_a_gateway(self, clock: FakeClock, http: httpx.AsyncClient) -> None:
        """b64_json sent as a data: URL is decoded too."""
        b64 = "data:image/png;base64," + base64.b64encode(tiny_png()).decode()
        answer = {"created": 1, "data": [{"b64_json": b64}]}
        provider = OpenAIImages(api_key=KEY, base_url=GATEWAY, model="sdxl")
        with respx.mock(assert_all_called=False) as mock:
            mock.post(f"{GATEWAY}/images/generations").respond(200, json=answer)
            image = await provider.generate(ImageRequest(prompt=PROMPT), make_ctx(clock, http))
        assert image.data == tiny_png()

    @pytest.mark.anyio
    async def test_no_started_call(self, clock: FakeClock, http: httpx.AsyncClient) -> None:
        """A synchronous call leaves nothing to cancel: ctx.started() is never called."""
        handles: list[object] = []
        ctx = ProviderContext(
            deadline=clock.monotonic() + 30,
            clock=clock,
            http_factory=lambda: http,
            on_started=handles.append,
        )
        with respx.mock(assert_all_called=False) as mock:
            mock.post(f"{BASE}/images/generations").respond(200, json=GPT_RESPONSE)
            image = await OpenAIImages(api_key=KEY).generate(ImageRequest(prompt=PROMPT), ctx)
        assert handles == []
        assert ctx.handle is None
        assert image.handle is None

    @pytest.mark.anyio
    async def test_cancel_does_nothing(self, clock: FakeClock, http: httpx.AsyncClient) -> None:
        """cancel() sends no request (there is no remote job)."""
        with respx.mock(assert_all_called=False) as mock:
            await OpenAIImages(api_key=KEY).cancel("anything", make_ctx(clock, http))
            assert not mock.calls

    @pytest.mark.anyio
    async def test_missing_key(
        self, clock: FakeClock, http: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """No key: ProviderAuthError naming OPENAI_API_KEY, and no request is sent."""
        monkeypatch.delenv("OPENAI_API_KEY", raising=False)
        with respx.mock(assert_all_called=False) as mock:
            with pytest.raises(ProviderAuthError) as info:
                await OpenAIImages().generate(ImageRequest(prompt=PROMPT), make_ctx(clock, http))
            with pytest.raises(ProviderAuthError):
                await OpenAIImages().check(make_ctx(clock, http))
            assert not mock.calls
        assert "OPENAI_API_KEY" in str(info.value)
        assert not info.value.retryable


class TestPromptLimits:
    """Prompt lengths are checked before sending."""

    @pytest.mark.parametrize(
        ("model", "limit"),
        [
            ("gpt-image-1", 32000),
            ("gpt-image-1-mini", 32000),
            ("dall-e-3", 4000),
            ("dall-e-2", 1000),
            ("flux-schnell", None),
        ],
    )
    def test_limit_table(self, model: str, limit: int | None) -> None:
        """Each family's limit; unknown models are left to the gateway."""
        assert prompt_limit(model) == limit

    @pytest.mark.anyio
    async def test_dalle2_over_limit(self, clock: FakeClock, http: httpx.AsyncClient) -> None:
        """1001 characters to dall-e-2: a non-retryable 400 naming the limit, nothing sent."""
        provider = OpenAIImages(api_key=KEY, model="dall-e-2")
        with respx.mock(assert_all_called=False) as mock:
            with pytest.raises(ProviderError) as info:
                await provider.generate(ImageRequest(prompt="x" * 1001), make_ctx(clock, http))
            assert not mock.calls
        assert type(info.value) is ProviderError
        assert info.value.status == 400
        assert not info.value.retryable
        assert "1000" in str(info.value)
        assert "dall-e-2" in str(info.value)

    @pytest.mark.anyio
    async def test_at_the_limit_is_sent(self, clock: FakeClock, http: httpx.AsyncClient) -> None:
        """Exactly 1000 characters to dall-e-2 and 4000 to dall-e-3 are sent."""
        answer = {"created": 1, "data": [{"url": CDN_URL}]}
        with respx.mock(assert_all_called=False) as mock:
            route = mock.post(f"{BASE}/images/generations").respond(200, json=answer)
            for model, size in (("dall-e-2", 1000), ("dall-e-3", 4000)):
                provider = OpenAIImages(api_key=KEY, model=model)
                request = ImageRequest(prompt="y" * size)
                await provider.generate(request, make_ctx(clock, http))
                assert len(sent_json(route)["prompt"]) == size

    def test_body_checks_dalle3_limit(self) -> None:
        """body_for refuses 4001 characters for dall-e-3 (ImageRequest itself stops at 4000)."""
        request = ImageRequest(prompt="z" * 4000)
        object.__setattr__(request, "prompt", "z" * 4001)
        with pytest.raises(ProviderError) as info:
            OpenAIImages(api_key=KEY, model="dall-e-3").body_for(request)
        assert info.value.status == 400
        assert "4000" in str(info.value)
        assert OpenAIImages(api_key=KEY).body_for(request)["prompt"] == "z" * 4001


ERRORS = [
    # status, body, headers, class, retryable, retry_after
    (
        400,
        envelope(
            "Your request was rejected by the safety system.",
            "invalid_request_error",
            "content_policy_violation",
        ),
        {},
        ContentRejected,
        False,
        None,
    ),
    (
        400,
        envelope("Blocked by moderation.", "image_generation_user_error", "moderation_blocked"),
        {},
        ContentRejected,
        False,
        None,
    ),
    (
        400,
        envelope("Invalid value for 'size'.", "invalid_request_error", "invalid_value"),
        {},
        ProviderError,
        False,
        None,
    ),
    (
        400,
        envelope(
            "Billing hard limit has been reached",
            "invalid_request_error",
            "billing_hard_limit_reached",
        ),
        {},
        ProviderQuotaExceeded,
        False,
        None,
    ),
    (
        401,
        envelope("Incorrect API key provided.", "invalid_request_error", "invalid_api_key"),
        {},
        ProviderAuthError,
        False,
        None,
    ),
    (
        403,
        envelope(
            "Country, region, or territory not supported",
            "request_forbidden",
            "unsupported_country_region_territory",
        ),
        {},
        ProviderAuthError,
        False,
        None,
    ),
    (
        404,
        envelope("The model does not exist", "invalid_request_error", "model_not_found"),
        {},
        ProviderError,
        False,
        None,
    ),
    (409, envelope("Conflict", "invalid_request_error", None), {}, ProviderError, False, None),
    (422, envelope("Unprocessable", "invalid_request_error", None), {}, ProviderError, False, None),
    (
        429,
        envelope("You exceeded your current quota...", "insufficient_quota", "insufficient_quota"),
        {"retry-after": "20"},
        ProviderQuotaExceeded,
        False,
        20.0,
    ),
    (
        429,
        envelope("Quota", "insufficient_quota", None),
        {},
        ProviderQuotaExceeded,
        False,
        None,
    ),
    (
        429,
        envelope("Rate limit reached for images per minute.", "requests", "rate_limit_exceeded"),
        {"retry-after-ms": "1500", "retry-after": "2"},
        ProviderRateLimited,
        True,
        1.5,
    ),
    (
        429,
        envelope("Rate limit reached.", "requests", "rate_limit_exceeded"),
        {"retry-after": "7"},
        ProviderRateLimited,
        True,
        7.0,
    ),
    (429, envelope("Slow down.", "requests", None), {}, ProviderRateLimited, True, None),
    (
        500,
        envelope("The server had an error.", "server_error", None),
        {},
        ProviderUnavailable,
        False,
        None,
    ),
    (502, None, {}, ProviderUnavailable, False, None),
    (
        503,
        envelope("Overloaded.", "server_error", None),
        {"retry-after": "3"},
        ProviderUnavailable,
        True,
        3.0,
    ),
]


class TestErrors:
    """Every status and error body of section 4, mapped."""

    @pytest.mark.anyio
    @pytest.mark.parametrize(
        ("status", "body", "headers", "kind", "retryable", "retry_after"), ERRORS
    )
    async def test_mapping(
        self,
        clock: FakeClock,
        http: httpx.AsyncClient,
        status: int,
        body: Any,
        headers: dict[str, str],
        kind: type[ProviderError],
        retryable: bool,
        retry_after: float | None,
    ) -> None:
        """The status and error.code/type pick the class, retryable and retry_after."""
        with respx.mock(assert_all_called=False) as mock:
            if body is None:
                response = httpx.Response(status, text="<html>Bad gateway</html>", headers=headers)
            else:
                response = httpx.Response(status, json=body, headers=headers)
            mock.post(f"{BASE}/images/generations").mock(return_value=response)
            with pytest.raises(ProviderError) as info:
                await OpenAIImages(api_key=KEY).generate(
                    ImageRequest(prompt=PROMPT), make_ctx(clock, http)
                )
        error = info.value
        assert type(error) is kind
        assert error.status == status
        assert error.retryable is retryable
        assert error.retry_after == retry_after
        assert error.provider == "openai"
        if isinstance(error, ContentRejected):  # the vendor's own code, not a guess
            assert error.reason == body["error"]["code"]
        if body is not None:
            assert body["error"]["message"] in str(error)

    @pytest.mark.anyio
    async def test_vector_quota_error(self, clock: FakeClock, http: httpx.AsyncClient) -> None:
        """The section's 429 insufficient_quota vector: quota exceeded, never retried."""
        vector = envelope(
            "You exceeded your current quota...", "insufficient_quota", "insufficient_quota"
        )
        with respx.mock(assert_all_called=False) as mock:
            mock.post(f"{BASE}/images/generations").respond(429, json=vector)
            with pytest.raises(ProviderQuotaExceeded) as info:
                await OpenAIImages(api_key=KEY).generate(
                    ImageRequest(prompt=PROMPT), make_ctx(clock, http)
                )
        assert not info.value.retryable
        assert not isinstance(info.value, ProviderRateLimited)

    @pytest.mark.anyio
    async def test_request_id_in_message(self, clock: FakeClock, http: httpx.AsyncClient) -> None:
        """x-request-id is quoted in the error; the key is not."""
        body = envelope(
            f"Incorrect API key provided: {KEY}.", "invalid_request_error", "invalid_api_key"
        )
        with respx.mock(assert_all_called=False) as mock:
            mock.post(f"{BASE}/images/generations").respond(
                401, json=body, headers={"x-request-id": "req_abc123"}
            )
            with pytest.raises(ProviderAuthError) as info:
                await OpenAIImages(api_key=KEY).generate(
                    ImageRequest(prompt=PROMPT), make_ctx(clock, http)
                )
        assert "req_abc123" in str(info.value)
        assert KEY not in str(info.value)
        assert KEY not in repr(info.value)

    @pytest.mark.anyio
    async def test_connection_refused_is_retryable(
        self, clock: FakeClock, http: httpx.AsyncClient
    ) -> None:
        """A refused connection created nothing, so it may be retried."""
        with respx.mock(assert_all_called=False) as mock:
            mock.post(f"{BASE}/images/generations").mock(side_effect=httpx.ConnectError("no"))
            with pytest.raises(ProviderUnavailable) as info:
                await OpenAIImages(api_key=KEY).generate(
                    ImageRequest(prompt=PROMPT), make_ctx(clock, http)
                )
        assert info.value.retryable

    @pytest.mark.anyio
    async def test_read_timeout_is_not_retryable(
        self, clock: FakeClock, http: httpx.AsyncClient
    ) -> None:
        """A create that timed out may have made an image: not retried."""
        with respx.mock(assert_all_called=False) as mock:
            mock.post(f"{BASE}/images/generations").mock(side_effect=httpx.ReadTimeout("slow"))
            with pytest.raises(ProviderTimeout) as info:
                await OpenAIImages(api_key=KEY).generate(
                    ImageRequest(prompt=PROMPT), make_ctx(clock, http)
                )
        assert not info.value.retryable

    @pytest.mark.anyio
    @pytest.mark.parametrize(
        "answer",
        [
            {"created": 1},
            {"created": 1, "data": []},
            {"created": 1, "data": None},
            {"created": 1, "data": ["not an object"]},
            {"created": 1, "data": [{"revised_prompt": "no image"}]},
            {"created": 1, "data": [{"b64_json": "", "url": ""}]},
            ["not", "an", "object"],
        ],
    )
    async def test_missing_image(
        self, clock: FakeClock, http: httpx.AsyncClient, answer: Any
    ) -> None:
        """A 200 without an image: ProviderUnavailable, not retried (an image was billed)."""
        with respx.mock(assert_all_called=False) as mock:
            mock.post(f"{BASE}/images/generations").respond(
                200, json=answer, headers={"x-request-id": "req_empty"}
            )
            with pytest.raises(ProviderUnavailable) as info:
                await OpenAIImages(api_key=KEY).generate(
                    ImageRequest(prompt=PROMPT), make_ctx(clock, http)
                )
        assert not info.value.retryable
        assert "req_empty" in str(info.value)

    @pytest.mark.anyio
    async def test_malformed_json(self, clock: FakeClock, http: httpx.AsyncClient) -> None:
        """A 200 whose body is not JSON: ProviderUnavailable, not retried."""
        with respx.mock(assert_all_called=False) as mock:
            mock.post(f"{BASE}/images/generations").respond(200, text='{"created": 1, "data": [')
            with pytest.raises(ProviderUnavailable) as info:
                await OpenAIImages(api_key=KEY).generate(
                    ImageRequest(prompt=PROMPT), make_ctx(clock, http)
                )
        assert not info.value.retryable
        assert "malformed JSON" in str(info.value)

    @pytest.mark.anyio
    async def test_malformed_error_body(self, clock: FakeClock, http: httpx.AsyncClient) -> None:
        """A 429 whose body is not JSON is still a rate limit."""
        with respx.mock(assert_all_called=False) as mock:
            mock.post(f"{BASE}/images/generations").respond(429, text="{oops")
            with pytest.raises(ProviderRateLimited) as info:
                await OpenAIImages(api_key=KEY).generate(
                    ImageRequest(prompt=PROMPT), make_ctx(clock, http)
                )
        assert info.value.retryable

    @pytest.mark.anyio
    async def test_bad_base64(self, clock: FakeClock, http: httpx.AsyncClient) -> None:
        """b64_json that is not base64: ProviderUnavailable, not retried."""
        answer = {"created": 1, "data": [{"b64_json": "!!not base64!!"}]}
        with respx.mock(assert_all_called=False) as mock:
            mock.post(f"{BASE}/images/generations").respond(200, json=answer)
            with pytest.raises(ProviderUnavailable) as info:
                await OpenAIImages(api_key=KEY).generate(
                    ImageRequest(prompt=PROMPT), make_ctx(clock, http)
                )
        assert not info.value.retryable
        assert "base64" in str(info.value)


class TestCheck:
    """check(): GET {base}/models/{model}."""

    @pytest.mark.anyio
    async def test_ok(self, clock: FakeClock, http: httpx.AsyncClient) -> None:
        """A 200 from the model endpoint passes, with auth and project headers sent."""
        provider = OpenAIImages(api_key=KEY, project="proj_xyz")
        with respx.mock(assert_all_called=False) as mock:
            route = mock.get(f"{BASE}/models/gpt-image-1").respond(
                200, json={"id": "gpt-image-1", "object": "model", "owned_by": "system"}
            )
            await provider.check(make_ctx(clock, http))
            assert len(mock.calls) == 1
        sent = route.calls.last.request
        assert sent.headers["Authorization"] == "Bearer sk-test"
        assert sent.headers["OpenAI-Project"] == "proj_xyz"
        assert sent.headers["User-Agent"].startswith("imagegen")

    @pytest.mark.anyio
    async def test_gateway_model_path(self, clock: FakeClock, http: httpx.AsyncClient) -> None:
        """A gateway model id with a slash stays one path."""
        provider = OpenAIImages(api_key=KEY, base_url=GATEWAY, model="black-forest-labs/FLUX.1")
        with respx.mock(assert_all_called=False) as mock:
            route = mock.get(f"{GATEWAY}/models/black-forest-labs/FLUX.1").respond(200, json={})
            await provider.check(make_ctx(clock, http))
        assert route.called

    @pytest.mark.anyio
    async def test_unknown_model(self, clock: FakeClock, http: httpx.AsyncClient) -> None:
        """404: a non-retryable ProviderError(status=404) naming the model."""
        body = envelope(
            "The model 'gpt-image-9' does not exist", "invalid_request_error", "model_not_found"
        )
        provider = OpenAIImages(api_key=KEY, model="gpt-image-9")
        with respx.mock(assert_all_called=False) as mock:
            mock.get(f"{BASE}/models/gpt-image-9").respond(
                404, json=body, headers={"x-request-id": "req_404"}
            )
            with pytest.raises(ProviderError) as info:
                await provider.check(make_ctx(clock, http))
        assert type(info.value) is ProviderError
        assert info.value.status == 404
        assert not info.value.retryable
        assert "gpt-image-9" in str(info.value)
        assert "req_404" in str(info.value)

    @pytest.mark.anyio
    async def test_bad_key(self, clock: FakeClock, http: httpx.AsyncClient) -> None:
        """401 on check: ProviderAuthError."""
        body = envelope("Incorrect API key provided.", "invalid_request_error", "invalid_api_key")
        with respx.mock(assert_all_called=False) as mock:
            mock.get(f"{BASE}/models/gpt-image-1").respond(401, json=body)
            with pytest.raises(ProviderAuthError):
                await OpenAIImages(api_key=KEY).check(make_ctx(clock, http))

    @pytest.mark.anyio
    async def test_server_error_is_retryable(
        self, clock: FakeClock, http: httpx.AsyncClient
    ) -> None:
        """A 500 on the free GET creates nothing, so it is retryable."""
        with respx.mock(assert_all_called=False) as mock:
            mock.get(f"{BASE}/models/gpt-image-1").respond(500, json={})
            with pytest.raises(ProviderUnavailable) as info:
                await OpenAIImages(api_key=KEY).check(make_ctx(clock, http))
        assert info.value.retryable


class TestThroughGenerator:
    """OpenAIImages inside ImageGenerator."""

    @pytest.mark.anyio
    @pytest.mark.usefixtures("public_dns")
    async def test_url_output_is_downloaded(
        self, clock: FakeClock, http: httpx.AsyncClient
    ) -> None:
        """dall-e-3 URL output: the generator fetches it and the PNG arrives."""
        provider = OpenAIImages(api_key=KEY, base_url=GATEWAY, model="dall-e-3")
        request = ImageRequest(
            prompt=PROMPT,
            width=1920,
            height=1080,
            provider_options={"openai": {"response_format": "url"}},
        )
        with respx.mock(assert_all_called=False) as mock:
            create = mock.post(f"{GATEWAY}/images/generations").respond(200, json=DALLE3_RESPONSE)
            image = mock.get(CDN_URL).respond(
                200, content=tiny_png(), headers={"Content-Type": "image/png"}
            )
            async with ImageGenerator(
                providers=[provider],
                http=http,
                storage=None,
                download=DownloadPolicy(),
                clock=clock,
                default_image=None,
            ) as gen:
                result = await gen.generate(request)
        assert result.provider == "openai"
        assert result.data == tiny_png()
        assert result.content_type == "image/png"
        assert (result.width, result.height) == (8, 8)  # what was stored, not what was asked
        assert not result.is_default
        assert sent_json(create)["size"] == "1792x1024"
        assert "Authorization" not in image.calls.last.request.headers

    @pytest.mark.anyio
    async def test_b64_output_arrives(self, clock: FakeClock, http: httpx.AsyncClient) -> None:
        """gpt-image-1 base64 output becomes the result's bytes."""
        answer = {
            "created": 1,
            "data": [{"b64_json": base64.b64encode(tiny_png()).decode()}],
            "output_format": "png",
            "size": "1024x1024",
        }
        with respx.mock(assert_all_called=False) as mock:
            mock.post(f"{BASE}/images/generations").respond(200, json=answer)
            async with ImageGenerator(
                providers=[OpenAIImages(api_key=KEY)],
                http=http,
                storage=None,
                clock=clock,
                default_image=None,
            ) as gen:
                result = await gen.generate(PROMPT)
        assert result.data == tiny_png()
        assert result.content_type == "image/png"

    @pytest.mark.anyio
    async def test_b64_that_is_not_an_image_is_refused(
        self, clock: FakeClock, http: httpx.AsyncClient
    ) -> None:
        """Valid base64 of an HTML page: the generator refuses it and does not retry."""
        page = base64.b64encode(b"<html><body>error</body></html>").decode()
        answer = {"created": 1, "data": [{"b64_json": page}]}
        with respx.mock(assert_all_called=False) as mock:
            route = mock.post(f"{BASE}/images/generations").respond(200, json=answer)
            async with ImageGenerator(
                providers=[OpenAIImages(api_key=KEY)],
                http=http,
                storage=None,
                clock=clock,
                default_image=None,
            ) as gen:
                with pytest.raises(AllProvidersFailed) as info:
                    await gen.generate(PROMPT)
        (attempt,) = info.value.attempts
        assert attempt.provider == "openai"
        assert isinstance(attempt.error, ProviderError)
        assert "not an image" in str(attempt.error)
        assert not attempt.error.retryable
        assert route.call_count == 1

    @pytest.mark.anyio
    async def test_rate_limit_is_retried(self, clock: FakeClock, http: httpx.AsyncClient) -> None:
        """A plain 429 with retry-after-ms is retried and the second try succeeds."""
        answer = {"created": 1, "data": [{"b64_json": base64.b64encode(tiny_png()).decode()}]}
        limited = envelope("Rate limit reached.", "requests", "rate_limit_exceeded")
        with respx.mock(assert_all_called=False) as mock:
            route = mock.post(f"{BASE}/images/generations").mock(
                side_effect=[
                    httpx.Response(429, json=limited, headers={"retry-after-ms": "800"}),
                    httpx.Response(200, json=answer),
                ]
            )
            async with ImageGenerator(
                providers=[OpenAIImages(api_key=KEY)],
                http=http,
                storage=None,
                clock=clock,
                default_image=None,
            ) as gen:
                result = await gen.generate(PROMPT)
        assert route.call_count == 2
        assert result.data == tiny_png()
        assert result.attempts[0].tries == 2

    @pytest.mark.anyio
    async def test_quota_is_not_retried(self, clock: FakeClock, http: httpx.AsyncClient) -> None:
        """insufficient_quota fails at once and the fallback provider answers."""
        vector = envelope(
            "You exceeded your current quota...", "insufficient_quota", "insufficient_quota"
        )
        with respx.mock(assert_all_called=False) as mock:
            route = mock.post(f"{BASE}/images/generations").respond(429, json=vector)
            async with ImageGenerator(
                providers=[OpenAIImages(api_key=KEY), Placeholder(tier=1)],
                http=http,
                storage=None,
                clock=clock,
                default_image=None,
            ) as gen:
                result = await gen.generate(PROMPT)
        assert route.call_count == 1
        assert result.provider == "placeholder"
        failed = result.attempts[0]
        assert failed.provider == "openai"
        assert failed.error is not None
        assert failed.error.kind == "ProviderQuotaExceeded"
