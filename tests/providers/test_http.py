"""HTTPProvider: keys, headers, the status table, httpx exceptions, error bodies, redaction."""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import inspect
from typing import Any

import httpx
import pytest

from imagegen import (
    ContentRejected,
    InvalidConfig,
    ProviderAuthError,
    ProviderContext,
    ProviderError,
    ProviderImage,
    ProviderQuotaExceeded,
    ProviderRateLimited,
    ProviderTimeout,
    ProviderUnavailable,
)
from imagegen._http_headers import parse_retry_after, user_agent
from imagegen.providers._http import HTTPProvider, error_message
from imagegen.testing import FakeClock

KEY = "sk-test-0123456789abcdef"


class Dummy(HTTPProvider):
    name = "dummy"
    default_base_url = "https://api.dummy.example/v1"
    env_var = "DUMMY_API_KEY"

    async def generate(self, request: Any, ctx: ProviderContext) -> ProviderImage:
        raise NotImplementedError


def make_ctx(
    handler: Any, clock: FakeClock | None = None
) -> tuple[ProviderContext, httpx.AsyncClient]:
    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    clock = clock or FakeClock()
    ctx = ProviderContext(deadline=clock.monotonic() + 30, clock=clock, http_factory=lambda: client)
    return ctx, client


class TestConstruction:
    def test_key_from_environment(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Without api_key the provider reads its environment variable."""
        monkeypatch.setenv("DUMMY_API_KEY", KEY)
        assert Dummy().has_key
        monkeypatch.delenv("DUMMY_API_KEY")
        assert not Dummy().has_key

    @pytest.mark.parametrize("key", ["", "   ", 42])
    def test_bad_keys_are_refused(self, key: object) -> None:
        """An empty or non-string key is an InvalidConfig naming api_key."""
        with pytest.raises(InvalidConfig) as info:
            Dummy(api_key=key)  # type: ignore[arg-type]
        assert info.value.field == "api_key"

    @pytest.mark.parametrize("url", ["ftp://x.example", "api.example.com", "https://"])
    def test_bad_base_url(self, url: str) -> None:
        """base_url must be an absolute http(s) URL."""
        with pytest.raises(InvalidConfig) as info:
            Dummy(api_key=KEY, base_url=url)
        assert info.value.field == "base_url"

    def test_repr_and_redaction_hide_the_key(self) -> None:
        """The key appears in neither repr nor redacted text; id:secret keys lose the secret."""
        provider = Dummy(api_key=KEY, base_url="https://gw.example/v1/")
        assert KEY not in repr(provider)
        assert "key=set" in repr(provider)
        assert provider.base_url == "https://gw.example/v1"
        assert provider.redact(f"echo {KEY}!") == "echo ***!"
        split = Dummy(api_key="keyid:supersecretvalue")
        assert "supersecretvalue" not in split.redact("bad secret supersecretvalue")

    def test_overrides(self) -> None:
        """name, tier and timeout can be overridden per instance."""
        provider = Dummy(api_key=KEY, name="dummy-eu", tier=2, timeout=5.0)
        assert (provider.name, provider.tier, provider.timeout) == ("dummy-eu", 2, 5.0)


@pytest.mark.anyio
class TestRequest:
    async def test_headers_and_url(self) -> None:
        """Requests carry the auth header, a User-Agent naming imagegen, and join base_url."""
        seen: list[httpx.Request] = []

        def handler(request: httpx.Request) -> httpx.Response:
            seen.append(request)
            return httpx.Response(200, json={"ok": True})

        ctx, client = make_ctx(handler)
        async with client:
            provider = Dummy(api_key=KEY)
            response = await provider.request(ctx, "POST", "/things", json={"a": 1})
            await provider.request(ctx, "GET", "https://elsewhere.example/abs")
        assert provider.json(response) == {"ok": True}
        assert str(seen[0].url) == "https://api.dummy.example/v1/things"
        assert seen[0].headers["authorization"] == f"Bearer {KEY}"
        assert seen[0].headers["user-agent"].startswith("imagegen")
        assert seen[0].read() == b'{"a":1}'
        assert str(seen[1].url) == "https://elsewhere.example/abs"

    async def test_missing_key_sends_nothing(self) -> None:
        """Without a key the call fails with ProviderAuthError before any request."""
        seen: list[httpx.Request] = []
        ctx, client = make_ctx(lambda r: seen.append(r) or httpx.Response(200))
        async with client:
            with pytest.raises(ProviderAuthError, match="DUMMY_API_KEY"):
                await Dummy().request(ctx, "GET", "/x")
        assert seen == []

    async def test_unauthenticated_requests_skip_the_header(self) -> None:
        """authenticate=False sends no Authorization (e.g. public file hosts)."""
        seen: list[httpx.Request] = []

        def handler(request: httpx.Request) -> httpx.Response:
            seen.append(request)
            return httpx.Response(200)

        ctx, client = make_ctx(handler)
        async with client:
            await Dummy().request(ctx, "GET", "/public", authenticate=False)
        assert "authorization" not in seen[0].headers

    async def test_malformed_json_is_unavailable(self) -> None:
        """A 200 whose body is not JSON is a retryable ProviderUnavailable."""
        ctx, client = make_ctx(lambda r: httpx.Response(200, content=b"<html>oops"))
        async with client:
            provider = Dummy(api_key=KEY)
            response = await provider.request(ctx, "GET", "/x")
            with pytest.raises(ProviderUnavailable) as info:
                provider.json(response)
        assert info.value.retryable

    async def test_malformed_json_after_a_create_is_final(self) -> None:
        """json(create=True) marks an unreadable answer to a create as not retryable."""
        ctx, client = make_ctx(lambda r: httpx.Response(201, content=b"{broken"))
        async with client:
            provider = Dummy(api_key=KEY)
            response = await provider.request(ctx, "POST", "/x", create=True)
            with pytest.raises(ProviderUnavailable) as info:
                provider.json(response, create=True)
        assert not info.value.retryable

    async def test_request_id_is_quoted(self) -> None:
        """With request_id_header set, error messages quote the vendor's request id."""

        class Traced(Dummy):
            request_id_header = "x-request-id"
            key_argument = "token"

        ctx, client = make_ctx(
            lambda r: httpx.Response(
                500, json={"detail": "boom"}, headers={"x-request-id": "req_42"}
            )
        )
        async with client:
            with pytest.raises(ProviderUnavailable, match=r"request id req_42"):
                await Traced(api_key=KEY).request(ctx, "GET", "/x")
            with pytest.raises(ProviderAuthError, match="pass token="):
                await Traced().request(ctx, "GET", "/x")

    @pytest.mark.parametrize(
        ("status", "body", "headers", "create", "cls", "retryable"),
        [
            (401, {"detail": "bad token"}, {}, False, ProviderAuthError, False),
            (403, {"detail": "forbidden"}, {}, False, ProviderAuthError, False),
            (402, {"title": "Insufficient credit"}, {}, True, ProviderQuotaExceeded, False),
            (429, {"detail": "slow"}, {"Retry-After": "7"}, True, ProviderRateLimited, True),
            (408, {}, {}, False, ProviderTimeout, True),
            (408, {}, {}, True, ProviderTimeout, False),
            (400, {"detail": "bad"}, {}, False, ProviderError, False),
            (404, {"detail": "gone"}, {}, False, ProviderError, False),
            (422, {"detail": "invalid"}, {}, True, ProviderError, False),
            (500, {"detail": "boom"}, {}, False, ProviderUnavailable, True),
            (500, {"detail": "boom"}, {}, True, ProviderUnavailable, False),
            (502, None, {}, True, ProviderUnavailable, False),
            (503, {"detail": "busy"}, {"Retry-After": "3"}, True, ProviderUnavailable, True),
            (
                400,
                {"error": {"code": "content_policy_violation"}},
                {},
                True,
                ContentRejected,
                False,
            ),
            (422, {"detail": [{"type": "nsfw_content"}]}, {}, True, ContentRejected, False),
        ],
    )
    async def test_status_table(
        self,
        status: int,
        body: Any,
        headers: dict[str, str],
        create: bool,
        cls: type[ProviderError],
        retryable: bool,
    ) -> None:
        """Each status maps to its error class; creates are retried only when provably safe."""
        kwargs: dict[str, Any] = {"headers": headers}
        if body is not None:
            kwargs["json"] = body
        ctx, client = make_ctx(lambda r: httpx.Response(status, **kwargs))
        async with client:
            with pytest.raises(ProviderError) as info:
                await Dummy(api_key=KEY).request(ctx, "POST", "/x", create=create)
        assert type(info.value) is cls
        assert info.value.retryable is retryable
        assert info.value.status == status
        assert info.value.provider == "dummy"
        if "Retry-After" in headers:
            assert info.value.retry_after == float(headers["Retry-After"])
        if isinstance(info.value, ContentRejected):  # the safety word the body used
            assert info.value.reason in ("content_policy", "nsfw")

    async def test_error_bodies_never_echo_the_key(self) -> None:
        """A vendor echoing the key in its error body does not leak it into the error."""
        ctx, client = make_ctx(lambda r: httpx.Response(401, json={"detail": f"bad key {KEY}"}))
        async with client:
            with pytest.raises(ProviderAuthError) as info:
                await Dummy(api_key=KEY).request(ctx, "GET", "/x")
        assert KEY not in str(info.value)
        assert "***" in str(info.value)


def _request_errors() -> list[type[httpx.RequestError]]:
    """Every concrete httpx exception a request can raise."""
    found: list[type[httpx.RequestError]] = []
    stack: list[type[httpx.RequestError]] = [httpx.RequestError]
    while stack:
        cls = stack.pop()
        stack.extend(cls.__subclasses__())
        if not inspect.isabstract(cls) and cls.__module__.startswith("httpx"):
            found.append(cls)
    return sorted(found, key=lambda c: c.__name__)


@pytest.mark.anyio
class TestHttpxExceptions:
    @pytest.mark.parametrize("exc", _request_errors(), ids=lambda c: c.__name__)
    @pytest.mark.parametrize("create", [False, True])
    async def test_every_httpx_error_is_mapped(
        self, exc: type[httpx.RequestError], create: bool
    ) -> None:
        """No httpx exception escapes request(): each becomes a ProviderError subclass."""

        def handler(request: httpx.Request) -> httpx.Response:
            raise exc("simulated", request=request)

        ctx, client = make_ctx(handler)
        async with client:
            with pytest.raises(ProviderError) as info:
                await Dummy(api_key=KEY).request(ctx, "POST", "/x", create=create)
        error = info.value
        if issubclass(exc, httpx.ConnectError | httpx.ConnectTimeout):
            assert error.retryable  # never reached the vendor: safe even for a create
        elif issubclass(exc, httpx.TimeoutException):
            assert isinstance(error, ProviderTimeout)
            assert error.retryable is not create
        elif issubclass(exc, httpx.TransportError):
            assert isinstance(error, ProviderUnavailable)
            assert error.retryable is not create
        else:
            assert not error.retryable


class TestParsing:
    @pytest.mark.parametrize(
        ("headers", "expected"),
        [
            ({"Retry-After": "12"}, 12.0),
            ({"Retry-After": "1.5"}, 1.5),
            ({"Retry-After": "-3"}, 0.0),
            ({"retry-after-ms": "250"}, 0.25),
            ({"retry-after-ms": "x", "Retry-After": "2"}, 2.0),
            ({"Retry-After": "Thu, 01 Jan 2026 00:00:30 GMT"}, 30.0),
            ({"Retry-After": "soon"}, None),
            ({}, None),
        ],
    )
    def test_retry_after(self, headers: dict[str, str], expected: float | None) -> None:
        """Retry-After as seconds, milliseconds or an HTTP date; garbage is None."""
        now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
        assert parse_retry_after(httpx.Headers(headers), now=now) == expected

    @pytest.mark.parametrize(
        ("body", "text", "expected"),
        [
            ({"error": {"message": "quota", "code": "x"}}, "", "quota"),
            (
                {"detail": [{"loc": ["body", "prompt"], "msg": "field required"}]},
                "",
                "body.prompt: field required",
            ),
            ({"detail": ["plain"]}, "", "plain"),
            ({"title": "Unauthenticated", "detail": "no token"}, "", "Unauthenticated: no token"),
            ({"detail": "just detail"}, "", "just detail"),
            ({"errors": ["OAuth error", "again"]}, "", "OAuth error; again"),
            ({"error": "a string"}, "", "a string"),
            ({"title": "Only a title"}, "", "Only a title"),
            (None, "Rate Limit Exceeded", "Rate Limit Exceeded"),
            (None, "", "Bad Request"),
        ],
    )
    def test_error_message_shapes(self, body: Any, text: str, expected: str) -> None:
        """The useful text is found in each vendor's error body shape."""
        response = httpx.Response(400, text=text)
        assert error_message(body, response) == expected

    def test_user_agent_names_the_version(self) -> None:
        """The User-Agent is imagegen/<version>."""
        assert user_agent() == f"imagegen/{importlib.metadata.version('imagegen-failover')}"
