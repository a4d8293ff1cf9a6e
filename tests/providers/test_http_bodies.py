"""HTTPProvider bodies (JSON, multipart, raw bytes), JSON objects, and from_env()."""

from __future__ import annotations

from collections.abc import Mapping
from email.message import Message
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any, ClassVar

import httpx
import pytest
from provider_support import session

from imagegen import (
    InvalidConfig,
    ProviderAuthError,
    ProviderContext,
    ProviderImage,
    ProviderRateLimited,
    ProviderUnavailable,
)
from imagegen.providers import FormFile, HTTPProvider
from imagegen.testing import FakeClock

KEY = "sk-test-0123456789abcdef"
BASE = "https://api.dummy.example/v1"
PNG = b"\x89PNG\r\n\x1a\nfake"


class Dummy(HTTPProvider):
    name = "dummy"
    default_base_url = BASE
    env_var = "DUMMY_API_KEY"
    key_argument = "token"
    env_settings: ClassVar[Mapping[str, str]] = {
        "base_url": "DUMMY_BASE_URL",
        "name": "DUMMY_NAME",
    }

    def __init__(self, *, token: str | None = None, **kwargs: Any) -> None:
        super().__init__(api_key=token, **kwargs)

    async def generate(self, request: Any, ctx: ProviderContext) -> ProviderImage:
        raise NotImplementedError


def parts(request: httpx.Request) -> list[Message]:
    """The parts of a multipart/form-data request, parsed by the standard library."""
    head = f"Content-Type: {request.headers['content-type']}\r\n\r\n".encode()
    message = BytesParser(policy=HTTP).parsebytes(head + request.read())
    assert message.is_multipart()
    return list(message.iter_parts())  # type: ignore[attr-defined]


def described(part: Message) -> tuple[str | None, str | None, str | None, bytes]:
    """A part's name, file name, Content-Type (None when not sent) and bytes."""
    payload = part.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return (
        part.get_param("name", header="content-disposition"),  # type: ignore[return-value]
        part.get_filename(),
        part.get("content-type"),
        payload,
    )


@pytest.mark.anyio
class TestMultipart:
    async def test_fields_and_files(self, clock: FakeClock) -> None:
        """form= sends multipart/form-data: str values are fields, FormFile values are files."""
        async with session(clock) as (mock, ctx, _):
            route = mock.post(f"{BASE}/edits").respond(200, json={"ok": True})
            form = {
                "prompt": "a red bicycle",
                "image": FormFile(PNG, filename="in.png", content_type="image/png"),
            }
            await Dummy(token=KEY).request(ctx, "POST", "edits", form=form, create=True)
        sent = route.calls.last.request
        assert sent.headers["content-type"].startswith("multipart/form-data; boundary=")
        assert sent.headers["authorization"] == f"Bearer {KEY}"
        assert sent.headers["accept"] == "application/json"
        assert [described(p) for p in parts(sent)] == [
            ("prompt", None, None, b"a red bicycle"),
            ("image", "in.png", "image/png", PNG),
        ]

    async def test_fields_alone_are_still_multipart(self, clock: FakeClock) -> None:
        """A form without files is multipart too (vendors that want form-data refuse urlencoded)."""
        async with session(clock) as (mock, ctx, _):
            route = mock.post(f"{BASE}/generate").respond(200, json={})
            await Dummy(token=KEY).request(ctx, "POST", "generate", form={"prompt": "x"})
        sent = route.calls.last.request
        assert sent.headers["content-type"].startswith("multipart/form-data")
        assert [described(p) for p in parts(sent)] == [("prompt", None, None, b"x")]

    async def test_a_sequence_repeats_names(self, clock: FakeClock) -> None:
        """Pairs in a sequence keep their order and may repeat a name (several images)."""
        form = [
            ("image[]", FormFile(b"one")),
            ("image[]", FormFile(b"two", filename="b.webp", content_type="image/webp")),
            ("n", "2"),
        ]
        async with session(clock) as (mock, ctx, _):
            route = mock.post(f"{BASE}/edits").respond(200, json={})
            await Dummy(token=KEY).request(ctx, "POST", "edits", form=form)
        assert [described(p) for p in parts(route.calls.last.request)] == [
            ("image[]", "file", "application/octet-stream", b"one"),
            ("image[]", "b.webp", "image/webp", b"two"),
            ("n", None, None, b"2"),
        ]

    async def test_errors_are_mapped_as_for_json(self, clock: FakeClock) -> None:
        """A 429 with Retry-After to a multipart request is a ProviderRateLimited honouring it."""
        async with session(clock) as (mock, ctx, _):
            mock.post(f"{BASE}/edits").respond(429, headers={"Retry-After": "7"}, json={})
            with pytest.raises(ProviderRateLimited) as info:
                await Dummy(token=KEY).request(ctx, "POST", "edits", form={"a": "b"}, create=True)
        assert info.value.retry_after == 7.0
        assert info.value.provider == "dummy"

    async def test_a_create_failing_with_5xx_is_final(self, clock: FakeClock) -> None:
        """The create rule applies to multipart bodies: a 500 may have made the work."""
        async with session(clock) as (mock, ctx, _):
            mock.post(f"{BASE}/edits").respond(500, json={"detail": "boom"})
            with pytest.raises(ProviderUnavailable) as info:
                await Dummy(token=KEY).request(ctx, "POST", "edits", form={"a": "b"}, create=True)
        assert not info.value.retryable

    def test_file_bytes_stay_out_of_repr(self) -> None:
        """FormFile's repr names the file, not its bytes."""
        text = repr(FormFile(b"secret-bytes", filename="x.png"))
        assert "secret-bytes" not in text
        assert "x.png" in text


@pytest.mark.anyio
class TestRawBytes:
    async def test_bytes_with_their_content_type(self, clock: FakeClock) -> None:
        """content= sends the bytes as they are, under content_type, within the deadline."""
        async with session(clock, seconds=12.0) as (mock, ctx, _):
            route = mock.put(f"{BASE}/upload").respond(200, json={})
            await Dummy(token=KEY).request(
                ctx, "PUT", "upload", content=PNG, content_type="image/png"
            )
        sent = route.calls.last.request
        assert sent.read() == PNG
        assert sent.headers["content-type"] == "image/png"
        assert sent.headers["authorization"] == f"Bearer {KEY}"
        assert sent.extensions["timeout"]["read"] == 12.0

    async def test_default_content_type(self, clock: FakeClock) -> None:
        """Bytes without a content_type go as application/octet-stream."""
        async with session(clock) as (mock, ctx, _):
            route = mock.post(f"{BASE}/raw").respond(200, json={})
            await Dummy(token=KEY).request(ctx, "POST", "raw", content=b"\x00\x01")
        assert route.calls.last.request.headers["content-type"] == "application/octet-stream"

    async def test_headers_come_last(self, clock: FakeClock) -> None:
        """headers= can replace Accept, for vendors that answer with image bytes."""
        async with session(clock) as (mock, ctx, _):
            route = mock.post(f"{BASE}/raw").respond(200, content=PNG)
            response = await Dummy(token=KEY).request(
                ctx, "POST", "raw", content=b"x", headers={"Accept": "image/*"}
            )
        assert route.calls.last.request.headers["accept"] == "image/*"
        assert response.content == PNG

    async def test_errors_are_mapped_as_for_json(self, clock: FakeClock) -> None:
        """A 401 to a bytes request is a ProviderAuthError that never echoes the key."""
        async with session(clock) as (mock, ctx, _):
            mock.post(f"{BASE}/raw").respond(401, json={"detail": f"bad key {KEY}"})
            with pytest.raises(ProviderAuthError) as info:
                await Dummy(token=KEY).request(ctx, "POST", "raw", content=b"x")
        assert KEY not in str(info.value)

    async def test_missing_key_sends_nothing(self, clock: FakeClock) -> None:
        """Without a key a bytes request fails before anything is sent."""
        async with session(clock) as (mock, ctx, _):
            route = mock.post(f"{BASE}/raw").respond(200)
            with pytest.raises(ProviderAuthError):
                await Dummy().request(ctx, "POST", "raw", content=b"x")
        assert not route.called


@pytest.mark.anyio
class TestBodyMistakes:
    @pytest.mark.parametrize(
        ("kwargs", "message"),
        [
            ({"json": {}, "content": b"x"}, "not json and content"),
            ({"json": {}, "form": {"a": "b"}}, "not json and form"),
            ({"form": {"a": "b"}, "content": b"x"}, "not form and content"),
            ({"content_type": "image/png"}, "goes with content"),
            ({"form": {}}, "at least one"),
        ],
    )
    async def test_refused_before_sending(
        self, clock: FakeClock, kwargs: dict[str, Any], message: str
    ) -> None:
        """Two bodies, a content type without bytes, or an empty form are a TypeError."""
        async with session(clock) as (mock, ctx, _):
            route = mock.post(f"{BASE}/x").respond(200)
            with pytest.raises(TypeError, match=message):
                await Dummy(token=KEY).request(ctx, "POST", "x", **kwargs)
        assert not route.called


@pytest.mark.anyio
class TestJsonObject:
    @pytest.mark.parametrize("create", [False, True])
    async def test_an_object_is_returned(self, clock: FakeClock, create: bool) -> None:
        """A JSON object comes back as a dict."""
        async with session(clock) as (mock, ctx, _):
            mock.get(f"{BASE}/x").respond(200, json={"id": "1"})
            provider = Dummy(token=KEY)
            response = await provider.request(ctx, "GET", "x")
        assert provider.json_object(response, create=create) == {"id": "1"}

    @pytest.mark.parametrize("create", [False, True])
    async def test_anything_else_is_unavailable(self, clock: FakeClock, create: bool) -> None:
        """A list is a ProviderUnavailable naming what was expected, final after a create."""
        async with session(clock) as (mock, ctx, _):
            mock.get(f"{BASE}/x").respond(200, json=["x"])
            provider = Dummy(token=KEY)
            response = await provider.request(ctx, "GET", "x")
        with pytest.raises(ProviderUnavailable, match="answered list, not a job") as info:
            provider.json_object(response, create=create, what="a job")
        assert info.value.retryable is not create
        assert info.value.status == 200

    async def test_unreadable_json_after_a_create_is_final(self, clock: FakeClock) -> None:
        """Bad JSON in the answer to a create is not retried (a retry would pay twice)."""
        async with session(clock) as (mock, ctx, _):
            mock.post(f"{BASE}/x").respond(201, content=b"<html>")
            provider = Dummy(token=KEY)
            response = await provider.request(ctx, "POST", "x", create=True)
        with pytest.raises(ProviderUnavailable) as info:
            provider.json_object(response, create=True)
        assert not info.value.retryable


class TestFromEnv:
    def test_no_key_no_provider(self) -> None:
        """Without its key variable (or with it empty) from_env gives None."""
        assert Dummy.from_env({}) is None
        assert Dummy.from_env({"DUMMY_API_KEY": "", "DUMMY_NAME": "x"}) is None

    def test_key_and_settings(self) -> None:
        """The key goes in as key_argument; set env_settings variables become keywords."""
        provider = Dummy.from_env(
            {"DUMMY_API_KEY": KEY, "DUMMY_BASE_URL": "https://gw.example/v2", "DUMMY_NAME": ""}
        )
        assert isinstance(provider, Dummy)
        assert provider.has_key
        assert provider.base_url == "https://gw.example/v2"
        assert provider.name == "dummy"  # an empty variable is not set

    def test_bad_values_are_refused(self) -> None:
        """A variable the constructor refuses raises InvalidConfig naming the variable."""
        with pytest.raises(InvalidConfig, match=r"^DUMMY_BASE_URL: .*base_url must be") as info:
            Dummy.from_env({"DUMMY_API_KEY": KEY, "DUMMY_BASE_URL": "ftp://x"})
        assert info.value.field == "DUMMY_BASE_URL"

    def test_other_refusals_pass_unchanged(self) -> None:
        """An error about a keyword no variable set (here the key) is raised as it was."""
        with pytest.raises(InvalidConfig) as info:
            Dummy.from_env({"DUMMY_API_KEY": "   ", "DUMMY_BASE_URL": "https://gw.example"})
        assert info.value.field == "token"

    def test_no_env_var_means_no_key(self) -> None:
        """A provider class without env_var is never built from the environment."""

        class Keyless(Dummy):
            env_var = None

        assert Keyless.from_env({"DUMMY_API_KEY": KEY}) is None
