"""Stability: the v2beta multipart requests, the image in the answer, its refusals."""

from __future__ import annotations

import email.parser
import email.policy
from typing import Any

import httpx
import pytest
from provider_support import session

from imagegen import (
    ContentRejected,
    ImageRequest,
    InvalidConfig,
    ProviderError,
    ProviderQuotaExceeded,
    ProviderRateLimited,
    Stability,
)
from imagegen.testing import FakeClock, tiny_png

pytestmark = pytest.mark.anyio

BASE = "https://api.stability.ai/v2beta/stable-image/generate"
PNG = tiny_png()


def parts(request: httpx.Request) -> dict[str, Any]:
    """A multipart request's fields (text) and files (bytes), by name."""
    head = f"Content-Type: {request.headers['content-type']}\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + request.content)
    found: dict[str, Any] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        is_file = part.get_param("filename", header="content-disposition") is not None
        found[str(name)] = payload if is_file else payload.decode()
    return found


def image(data: bytes = PNG, **headers: str) -> httpx.Response:
    return httpx.Response(
        200, content=data, headers={"content-type": "image/png", "finish-reason": "SUCCESS",
                                    "seed": "1234", **headers},
    )  # fmt: skip


async def call(provider: Stability, request: ImageRequest, url: str, reply: httpx.Response) -> Any:
    async with session(FakeClock()) as (mock, ctx, _):
        route = mock.post(url).mock(return_value=reply)
        try:
            result: Any = await provider.generate(request, ctx)
        except ProviderError as exc:
            result = exc
        return result, route.calls.last.request if route.calls else None


@pytest.fixture(autouse=True)
def _no_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STABILITY_API_KEY", raising=False)


async def test_core_in_multipart_answered_with_bytes() -> None:
    request = ImageRequest(prompt="a fox", width=1920, height=1080, seed=7,
                           negative_prompt="blur", output_format="webp")  # fmt: skip
    result, sent = await call(Stability(api_key="sk-test"), request, f"{BASE}/core", image())
    assert (result.data, result.seed) == (PNG, 1234)
    assert sent.headers["authorization"] == "Bearer sk-test"
    assert sent.headers["accept"] == "image/*"
    fields = parts(sent)
    assert fields == {"prompt": "a fox", "negative_prompt": "blur", "seed": "7",
                      "output_format": "webp", "aspect_ratio": "16:9"}  # fmt: skip


async def test_sd35_image_to_image() -> None:
    provider = Stability(api_key="k", model="sd3.5-large")
    assert provider.input_images == 1
    assert Stability(api_key="k").input_images == 0
    request = ImageRequest(prompt="p", images=[PNG], output_format="webp",
                           provider_options={"stability": {"strength": 0.4}})  # fmt: skip
    _, sent = await call(provider, request, f"{BASE}/sd3", image())
    fields = parts(sent)
    assert (fields["model"], fields["mode"], fields["strength"]) == (
        "sd3.5-large", "image-to-image", "0.4")  # fmt: skip
    assert fields["image"] == PNG
    assert fields["output_format"] == "png"  # SD3.5 makes no WebP
    assert "aspect_ratio" not in fields


@pytest.mark.parametrize(
    ("reply", "error", "reason"),
    [(image(**{"finish-reason": "CONTENT_FILTERED"}), ContentRejected, "CONTENT_FILTERED"),
     (httpx.Response(403, json={"id": "x", "name": "content_moderation",
                                "errors": ["Your request was flagged."]}),
      ContentRejected, "content_moderation"),
     (httpx.Response(402, json={"id": "x", "name": "payment_required",
                                "errors": ["You lack sufficient credits."]}),
      ProviderQuotaExceeded, None),
     (image(**{"finish-reason": "ERROR"}), ProviderError, None)],
)  # fmt: skip
async def test_refusals_and_errors(
    reply: httpx.Response, error: type[ProviderError], reason: str | None
) -> None:
    result, _ = await call(Stability(api_key="k"), ImageRequest(prompt="p"), f"{BASE}/core", reply)
    assert type(result) is error
    assert not result.retryable
    if reason is not None:
        assert isinstance(result, ContentRejected)
        assert result.reason == reason


async def test_a_429_waits_out_the_lockout() -> None:
    reply = httpx.Response(429, json={"id": "x", "name": "rate_limit_exceeded", "errors": ["slow"]})
    result, _ = await call(Stability(api_key="k"), ImageRequest(prompt="p"), f"{BASE}/core", reply)
    assert isinstance(result, ProviderRateLimited)
    assert result.retry_after == 60.0
    assert "slow" in str(result)


def test_models_and_prices() -> None:
    assert Stability(api_key="k", model="ultra").price(ImageRequest(prompt="p")) == 0.08
    assert Stability(api_key="k", model="sd3.5-flash").price(ImageRequest(prompt="p")) == 0.025
    with pytest.raises(InvalidConfig) as caught:
        Stability(api_key="k", model="sdxl")
    assert caught.value.field == "model"


async def test_check_reads_the_balance() -> None:
    async with session(FakeClock()) as (mock, ctx, _):
        route = mock.get("https://api.stability.ai/v1/user/balance").respond(
            200, json={"credits": 12.5}
        )
        await Stability(api_key="k").check(ctx)
        assert route.called
