"""provider_options through the HTTP API: refused unless the operator allows each key."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import pytest

from imagegen import ImageGenerator, InvalidConfig, OpenAIImages
from imagegen.server import create_app
from imagegen.testing import FakeClock, instant, tiny_png

pytestmark = pytest.mark.anyio

PROBLEM = "application/problem+json"
# What the issue saw reach the vendor from an unauthenticated request.
BILLING = {"model": "gpt-image-1", "n": 10, "quality": "high", "size": "1536x1024"}


class OpenAIStub:
    """An in-process OpenAI Images API: answers one b64 image, keeps each body sent."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        """Record the body and answer an image."""
        self.bodies.append(json.loads(request.content))
        image = base64.b64encode(tiny_png()).decode()
        return httpx.Response(200, json={"created": 1767225600, "data": [{"b64_json": image}]})

    def generator(self, clock: FakeClock) -> ImageGenerator:
        """A generator whose only provider is OpenAI on a cheap model, talking to the stub."""
        http = httpx.AsyncClient(transport=httpx.MockTransport(self))
        provider = OpenAIImages(api_key="sk-test", model="gpt-image-1-mini")
        return ImageGenerator(providers=[provider], http=http, clock=clock, default_image=None)


def client(app: Any) -> httpx.AsyncClient:
    """A client talking to the app in process, no network."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


def refused_fields(response: httpx.Response) -> list[str]:
    """The fields of a 422 problem."""
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    return [e["field"] for e in response.json()["errors"]]


class TestSetting:
    """create_app(allow_provider_options=...)."""

    @pytest.mark.parametrize(
        ("value", "field"),
        [
            (["openai"], "allow_provider_options"),
            ({"openai": "background"}, "allow_provider_options.openai"),
            ({"openai": b"background"}, "allow_provider_options.openai"),
            ({"openai": None}, "allow_provider_options.openai"),
            ({"openai": [1]}, "allow_provider_options.openai"),
            ({"openai": [""]}, "allow_provider_options.openai"),
            ({1: ["background"]}, "allow_provider_options"),
            ({"": ["background"]}, "allow_provider_options"),
        ],
    )
    def test_refuses_a_bad_allow_list(self, value: Any, field: str) -> None:
        """Not a mapping of names to option names (a bare string included): InvalidConfig."""
        gen = ImageGenerator(providers=[instant("a")])
        with pytest.raises(InvalidConfig) as info:
            create_app(gen, allow_provider_options=value)
        assert info.value.field == field

    @pytest.mark.parametrize(
        "keys", [["background"], ("background",), {"background"}, frozenset({"background"})]
    )
    async def test_takes_any_collection(self, keys: Any) -> None:
        """Lists, tuples, sets and frozensets of option names all work."""
        provider = instant("a")
        gen = ImageGenerator(providers=[provider])
        async with client(create_app(gen, allow_provider_options={"a": keys})) as http:
            response = await http.post(
                "/images/generate",
                json={"prompt": "fox", "provider_options": {"a": {"background": "white"}}},
            )
        assert response.status_code == 200, response.text
        assert dict(provider.requests[0].options_for("a")) == {"background": "white"}


class TestDefault:
    """Without an allow-list no option gets through."""

    @pytest.mark.parametrize("run_async", [False, True])
    async def test_billing_fields_refused_before_sending(
        self, run_async: bool, clock: FakeClock
    ) -> None:
        """model, n, quality and size: 422 naming each, and nothing reaches the vendor."""
        stub = OpenAIStub()
        async with stub.generator(clock) as gen, client(create_app(gen)) as http:
            response = await http.post(
                "/images/generate",
                json={"prompt": "fox", "async": run_async, "provider_options": {"openai": BILLING}},
            )
        assert sorted(refused_fields(response)) == [
            "provider_options.openai.model",
            "provider_options.openai.n",
            "provider_options.openai.quality",
            "provider_options.openai.size",
        ]
        assert "none" in response.json()["detail"]
        assert stub.bodies == []

    @pytest.mark.parametrize("options", [{}, {"openai": {}}])
    async def test_empty_options_pass(self, options: dict[str, Any], clock: FakeClock) -> None:
        """An empty provider_options (or an empty entry) sets nothing and is taken."""
        stub = OpenAIStub()
        async with stub.generator(clock) as gen, client(create_app(gen)) as http:
            response = await http.post(
                "/images/generate", json={"prompt": "fox", "provider_options": options}
            )
        assert response.status_code == 200, response.text
        assert stub.bodies[0]["model"] == "gpt-image-1-mini"

    @pytest.mark.parametrize("options", ["model=dall-e-3", {"openai": ["model"]}, None])
    async def test_malformed_options_are_422(self, options: object) -> None:
        """Options that are not a mapping of mappings are refused naming provider_options."""
        provider = instant("a")
        gen = ImageGenerator(providers=[provider])
        async with client(create_app(gen)) as http:
            response = await http.post(
                "/images/generate", json={"prompt": "fox", "provider_options": options}
            )
        assert refused_fields(response) == ["provider_options"]
        assert provider.calls == 0

    async def test_python_callers_keep_their_options(self) -> None:
        """Serving a generator changes nothing for its Python callers."""
        provider = instant("a")
        gen = ImageGenerator(providers=[provider])
        create_app(gen)
        await gen.generate("fox", provider_options={"a": {"n": 10}})
        assert dict(provider.requests[0].options_for("a")) == {"n": 10}


class TestAllowed:
    """The operator allows some keys for some providers."""

    async def test_allowed_key_reaches_the_vendor(self, clock: FakeClock) -> None:
        """An allowed key is sent as given; the provider's own fields stay."""
        stub = OpenAIStub()
        async with stub.generator(clock) as gen:
            app = create_app(gen, allow_provider_options={"openai": ["background"]})
            async with client(app) as http:
                response = await http.post(
                    "/images/generate",
                    json={
                        "prompt": "fox",
                        "provider_options": {"openai": {"background": "transparent"}},
                    },
                )
        assert response.status_code == 200, response.text
        [body] = stub.bodies
        assert body["background"] == "transparent"
        assert (body["model"], body["n"], body["size"]) == ("gpt-image-1-mini", 1, "1024x1024")

    async def test_one_key_too_many_refuses_all(self, clock: FakeClock) -> None:
        """An allowed key beside a refused one: 422 naming only the refused key, nothing sent."""
        stub = OpenAIStub()
        async with stub.generator(clock) as gen:
            app = create_app(gen, allow_provider_options={"openai": ["background"]})
            async with client(app) as http:
                response = await http.post(
                    "/images/generate",
                    json={
                        "prompt": "fox",
                        "provider_options": {"openai": {"background": "transparent", "n": 10}},
                    },
                )
        assert refused_fields(response) == ["provider_options.openai.n"]
        assert "only background" in response.json()["detail"]
        assert stub.bodies == []

    async def test_other_provider_is_refused(self) -> None:
        """Keys allowed for one provider are not allowed for another."""
        a, b = instant("a"), instant("b")
        gen = ImageGenerator(providers=[a, b])
        app = create_app(gen, allow_provider_options={"a": ["style"]})
        async with client(app) as http:
            response = await http.post(
                "/images/generate",
                json={"prompt": "fox", "provider_options": {"b": {"style": "x"}}},
            )
        assert refused_fields(response) == ["provider_options.b.style"]
        assert a.calls == b.calls == 0
