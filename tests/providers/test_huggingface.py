"""HuggingFace: the Hub's provider lookup and each routed provider's own request."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest
from provider_support import body_of, session

from imagegen import (
    HuggingFace,
    ImageRequest,
    InvalidConfig,
    ProviderError,
    ProviderQuotaExceeded,
)
from imagegen.testing import FakeClock, tiny_png

pytestmark = pytest.mark.anyio

ROUTER = "https://router.huggingface.co"
MODEL = "black-forest-labs/FLUX.1-dev"
LOOKUP = f"https://huggingface.co/api/models/{MODEL}"
PNG = tiny_png()
ENCODED = base64.b64encode(PNG).decode()


def mapping(*providers: str, **extra: Any) -> dict[str, Any]:
    ids = {"fal-ai": "fal-ai/flux/dev", "replicate": "black-forest-labs/flux-dev"}
    entries = {
        p: {"status": "live", "task": "text-to-image", "providerId": ids.get(p, MODEL), **extra}
        for p in providers
    }
    return {"id": MODEL, "inferenceProviderMapping": entries}


async def run(provider: HuggingFace, request: ImageRequest, routes: dict[str, Any]) -> Any:
    """``generate`` against ``routes`` (method and URL -> answer); the image or the error,
    and each route, to read what it was sent."""
    async with session(FakeClock()) as (mock, ctx, _):
        made = {
            key: mock.route(method=key[0], url__startswith=key[1]).mock(return_value=reply)
            for key, reply in routes.items()
        }
        try:
            result: Any = await provider.generate(request, ctx)
        except ProviderError as exc:
            result = exc
        return result, made


@pytest.fixture(autouse=True)
def _no_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HF_TOKEN", raising=False)


async def test_auto_takes_the_first_provider_it_speaks() -> None:
    """replicate comes first on the Hub but is not spoken: fal-ai is taken, with its id."""
    provider = HuggingFace(api_key="hf_test", model=MODEL)
    fal = {"images": [{"url": "https://v3.fal.media/files/x.png"}]}
    routes = {
        ("GET", LOOKUP): httpx.Response(200, json=mapping("replicate", "fal-ai", "together")),
        ("POST", f"{ROUTER}/fal-ai/fal-ai/flux/dev"): httpx.Response(200, json=fal),
    }
    request = ImageRequest(prompt="a fox", width=768, height=512, seed=4, negative_prompt="n")
    result, made = await run(provider, request, routes)
    assert result.url == "https://v3.fal.media/files/x.png"
    lookup = made[("GET", LOOKUP)].calls.last.request
    assert lookup.url.params["expand[]"] == "inferenceProviderMapping"
    assert lookup.headers["authorization"] == "Bearer hf_test"
    body = body_of(made[("POST", f"{ROUTER}/fal-ai/fal-ai/flux/dev")].calls.last.request)
    assert body == {"prompt": "a fox", "image_size": {"width": 768, "height": 512}, "seed": 4}
    assert [w.field for w in result.warnings] == ["negative_prompt"]
    # The route is kept: a second image asks the Hub nothing.
    _, again = await run(provider, request, routes)
    assert not again[("GET", LOOKUP)].called


async def test_hf_inference_answers_with_bytes() -> None:
    provider = HuggingFace(api_key="hf_test", model=MODEL, provider="hf-inference")
    url = f"{ROUTER}/hf-inference/models/{MODEL}"
    routes = {
        ("POST", url): httpx.Response(200, content=PNG, headers={"content-type": "image/png"})
    }
    request = ImageRequest(prompt="a fox", seed=2, negative_prompt="blur")
    result, made = await run(provider, request, routes)
    assert result.data == PNG
    sent = made[("POST", url)].calls.last.request
    assert sent.headers["accept"] == "image/png"
    assert body_of(sent) == {
        "inputs": "a fox",
        "parameters": {"width": 1024, "height": 1024, "seed": 2, "negative_prompt": "blur"},
    }


@pytest.mark.parametrize("name", ["together", "nscale"])
async def test_openai_shaped_providers(name: str) -> None:
    provider = HuggingFace(api_key="hf_test", model=MODEL, provider=name)
    url = f"{ROUTER}/{name}/v1/images/generations"
    routes = {
        ("GET", LOOKUP): httpx.Response(200, json=mapping("fal-ai", name)),
        ("POST", url): httpx.Response(
            200, json={"data": [{"b64_json": base64.b64encode(PNG).decode()}]}
        ),
    }
    result, made = await run(provider, ImageRequest(prompt="p", seed=1), routes)
    assert result.data == PNG
    body = body_of(made[("POST", url)].calls.last.request)
    assert body["model"] == MODEL
    if name == "together":
        assert (body["width"], body["response_format"], body["seed"]) == (1024, "base64", 1)
    else:
        assert (body["size"], body["response_format"]) == ("1024x1024", "b64_json")
        assert "seed" not in body
        assert [w.field for w in result.warnings] == ["seed"]


@pytest.mark.parametrize(
    "answer",
    [
        mapping("replicate"),
        mapping("fal-ai", task="image-to-image"),
        mapping("fal-ai", status="error"),
        {"id": MODEL},
    ],
)
async def test_no_provider_it_speaks(answer: dict[str, Any]) -> None:
    routes = {("GET", LOOKUP): httpx.Response(200, json=answer)}
    result, _ = await run(HuggingFace(api_key="k", model=MODEL), ImageRequest(prompt="p"), routes)
    assert type(result) is ProviderError
    assert not result.retryable
    assert "serves" in str(result)


async def test_out_of_credits() -> None:
    url = f"{ROUTER}/hf-inference/models/{MODEL}"
    said = {"error": "You have exceeded your monthly included credits for Inference Providers."}
    routes = {("POST", url): httpx.Response(402, json=said)}
    provider = HuggingFace(api_key="k", model=MODEL, provider="hf-inference")
    result, _ = await run(provider, ImageRequest(prompt="p"), routes)
    assert isinstance(result, ProviderQuotaExceeded)
    assert "monthly included credits" in str(result)


@pytest.mark.parametrize(
    ("kwargs", "field"), [({"model": "flux"}, "model"), ({"provider": "replicate"}, "provider")]
)
def test_bad_settings(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidConfig) as caught:
        HuggingFace(api_key="k", **kwargs)
    assert caught.value.field == field


async def test_check_asks_whoami() -> None:
    async with session(FakeClock()) as (mock, ctx, _):
        route = mock.get("https://huggingface.co/api/whoami-v2").respond(200, json={"name": "me"})
        await HuggingFace(api_key="hf_test").check(ctx)
        assert route.calls.last.request.headers["authorization"] == "Bearer hf_test"
