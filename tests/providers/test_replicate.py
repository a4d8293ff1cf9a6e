"""Replicate: input and size mapping, sync create, polling, endings, errors, cancel, check()."""

from __future__ import annotations

import base64
import hashlib
import json
import runpy
import socket
import sys
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import respx
from provider_support import body_of, session, stamped

import imagegen._download
from imagegen import (
    AllProvidersFailed,
    ContentRejected,
    DownloadPolicy,
    ImageGenerator,
    ImageRequest,
    InvalidConfig,
    ProviderAuthError,
    ProviderError,
    ProviderQuotaExceeded,
    ProviderRateLimited,
    ProviderTimeout,
    ProviderUnavailable,
    Race,
    Retry,
)
from imagegen.providers._replicate import ASPECT_RATIOS, Replicate, aspect_ratio, is_delivery_url
from imagegen.testing import FakeClock, instant, slow, tiny_png

# Replicate's documented test vectors.
TOKEN = "r8_TESTTOKEN"
PROMPT = "a red bicycle leaning on a brick wall"
PREDICTION_ID = "q7x3k9m2ydrj00cmz8ab1c2d3e"
BASE = "https://api.replicate.com/v1"
CREATE_URL = f"{BASE}/models/black-forest-labs/flux-schnell/predictions"
VERSION_URL = f"{BASE}/predictions"
GET_URL = f"{BASE}/predictions/{PREDICTION_ID}"
CANCEL_URL = f"{GET_URL}/cancel"
WEBHOOK = "https://example.com/hooks/replicate"
OUTPUT_URL = "https://replicate.delivery/xezq/abc123/out-0.webp"
VERSION = "5c7d5dc6dd8bf75c1acaa8565735e7986bc5b66206b55cca93cb72c9bf15ccaa"
# The webhook body of the vectors; the sync create's 201 answer is exactly this.
RAW = (
    b'{"id":"q7x3k9m2ydrj00cmz8ab1c2d3e","model":"black-forest-labs/flux-schnell","version":'
    b'"hidden","input":{"prompt":"a red bicycle leaning on a brick wall","num_outputs":1,'
    b'"output_format":"webp"},"logs":"","output":["https://replicate.delivery/xezq/abc123/ou'
    b't-0.webp"],"data_removed":false,"error":null,"status":"succeeded","created_at":"2026-0'
    b'1-01T00:00:00.000Z","started_at":"2026-01-01T00:00:00.120Z","completed_at":"2026-01-01'
    b'T00:00:00.910Z","metrics":{"predict_time":0.79,"total_time":0.91},"urls":{"get":"https:'
    b'//api.replicate.com/v1/predictions/q7x3k9m2ydrj00cmz8ab1c2d3e","cancel":"https://api.re'
    b'plicate.com/v1/predictions/q7x3k9m2ydrj00cmz8ab1c2d3e/cancel","web":"https://replicate.'
    b'com/p/q7x3k9m2ydrj00cmz8ab1c2d3e"}}'
)
SUCCEEDED: dict[str, Any] = json.loads(RAW)
# "Wait expired": the same shape, starting, no output, no completed_at or metrics.
STARTING: dict[str, Any] = {
    **{k: v for k, v in SUCCEEDED.items() if k not in ("completed_at", "metrics")},
    "status": "starting",
    "output": None,
}
PROCESSING: dict[str, Any] = {**STARTING, "status": "processing"}
VECTOR_INPUT = {"prompt": PROMPT, "num_outputs": 1, "output_format": "webp"}
CDN_URL = "https://images.example-cdn.net/replicate/out-0.png"
PROBLEM = {"Content-Type": "application/problem+json"}
EXAMPLE = Path(__file__).parent.parent.parent / "examples" / "replicate_provider.py"


def vector_request() -> ImageRequest:
    """The request behind the sync create vector."""
    return ImageRequest(prompt=PROMPT, output_format="webp")


def prediction(**changes: Any) -> dict[str, Any]:
    """The succeeded vector prediction with ``changes``."""
    return {**SUCCEEDED, **changes}


def created(body: dict[str, Any] | None = None) -> httpx.Response:
    return httpx.Response(201, json=STARTING if body is None else body)


class TestConstruction:
    def test_defaults(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Named "replicate", tier 0, flux-schnell on api.replicate.com/v1, Bearer auth."""
        monkeypatch.delenv("REPLICATE_WEBHOOK_SECRET", raising=False)
        replicate = Replicate(api_token=TOKEN)
        assert (replicate.name, replicate.tier, replicate.timeout) == ("replicate", 0, None)
        assert (replicate.model, replicate.version) == ("black-forest-labs/flux-schnell", None)
        assert replicate.base_url == BASE
        assert (replicate.poll_interval, replicate.max_wait) == (0.5, 60.0)
        assert replicate.webhook_url is None
        assert replicate.auth_headers() == {"Authorization": f"Bearer {TOKEN}"}

    def test_token_from_environment(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Without api_token= the provider reads REPLICATE_API_TOKEN."""
        monkeypatch.setenv("REPLICATE_API_TOKEN", TOKEN)
        assert Replicate().auth_headers() == {"Authorization": f"Bearer {TOKEN}"}
        monkeypatch.delenv("REPLICATE_API_TOKEN")
        assert not Replicate().has_key

    def test_repr_hides_secrets(self) -> None:
        """Neither the token nor the webhook secret appears in repr."""
        replicate = Replicate(api_token="r8_supersecrettoken", webhook_secret="whsec_hushhush")
        text = repr(replicate)
        assert "supersecret" not in text
        assert "hushhush" not in text
        assert text == (
            "Replicate(name='replicate', model='black-forest-labs/flux-schnell', key=set)"
        )

    def test_overrides(self) -> None:
        """name, tier, timeout, model, base_url and the polling knobs can be set."""
        replicate = Replicate(
            api_token=TOKEN,
            model="black-forest-labs/flux-dev",
            base_url="https://gw.example/replicate/v1/",
            name="replicate-dev",
            tier=1,
            timeout=9.0,
            poll_interval=0.25,
            max_wait=10,
        )
        assert (replicate.name, replicate.tier, replicate.timeout) == ("replicate-dev", 1, 9.0)
        assert replicate.model == "black-forest-labs/flux-dev"
        assert replicate.base_url == "https://gw.example/replicate/v1"
        assert (replicate.poll_interval, replicate.max_wait) == (0.25, 10.0)

    @pytest.mark.parametrize(
        ("version", "model"),
        [
            (VERSION, "black-forest-labs/flux-schnell"),
            (VERSION.upper(), "black-forest-labs/flux-schnell"),
            (f"stability-ai/sdxl:{VERSION}", "stability-ai/sdxl"),
        ],
    )
    def test_version_forms(self, version: str, model: str) -> None:
        """A bare 64-hex id, or owner/name:id, of which the id is kept (and the model)."""
        replicate = Replicate(api_token=TOKEN, version=version)
        assert replicate.version == VERSION
        assert replicate.model == model
        assert f"version='{VERSION}'" in repr(replicate)

    def test_webhook_secret_from_environment(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Without webhook_secret= the provider reads REPLICATE_WEBHOOK_SECRET."""
        monkeypatch.setenv("REPLICATE_WEBHOOK_SECRET", "whsec_fromenv")
        assert Replicate(api_token=TOKEN)._webhook_secret == "whsec_fromenv"
        assert Replicate(api_token=TOKEN, webhook_secret="whsec_arg")._webhook_secret == (
            "whsec_arg"
        )

    @pytest.mark.parametrize(
        ("kwargs", "field"),
        [
            ({"api_token": ""}, "api_token"),
            ({"api_token": "   "}, "api_token"),
            ({"api_token": 42}, "api_token"),
            ({"model": "flux-schnell"}, "model"),
            ({"model": "black-forest-labs/flux/schnell"}, "model"),
            ({"model": "owner/../x"}, "model"),
            ({"model": None}, "model"),
            ({"version": "abc123"}, "version"),
            ({"version": VERSION + "0"}, "version"),
            ({"version": "z" * 64}, "version"),
            ({"version": f"sdxl:{VERSION}"}, "version"),
            ({"version": f"stability-ai/sdxl:{VERSION[:10]}"}, "version"),
            ({"version": 42}, "version"),
            ({"webhook_url": "http://example.com/hooks/replicate"}, "webhook_url"),
            ({"webhook_url": "example.com/hook"}, "webhook_url"),
            ({"webhook_url": 42}, "webhook_url"),
            ({"webhook_secret": ""}, "webhook_secret"),
            ({"webhook_secret": 42}, "webhook_secret"),
            ({"poll_interval": 0}, "poll_interval"),
            ({"poll_interval": True}, "poll_interval"),
            ({"poll_interval": float("inf")}, "poll_interval"),
            ({"max_wait": 0.5}, "max_wait"),
            ({"max_wait": "60"}, "max_wait"),
            ({"base_url": "ftp://api.replicate.com"}, "base_url"),
        ],
    )
    def test_bad_arguments(self, kwargs: dict[str, Any], field: str) -> None:
        """Each bad argument is an InvalidConfig naming it."""
        with pytest.raises(InvalidConfig) as info:
            Replicate(**{"api_token": TOKEN, **kwargs})
        assert info.value.field == field


class TestInput:
    @pytest.mark.parametrize(
        ("width", "height", "expected"),
        [
            (1024, 1024, "1:1"),
            (1920, 1080, "16:9"),
            (2560, 1080, "21:9"),
            (1536, 1024, "3:2"),
            (1024, 1536, "2:3"),
            (896, 1120, "4:5"),
            (1120, 896, "5:4"),
            (768, 1024, "3:4"),
            (1024, 768, "4:3"),
            (1080, 1920, "9:16"),
            (1080, 2520, "9:21"),
            (1104, 1000, "1:1"),  # 1.104 is nearer 1:1 than 5:4 in log-ratio
            (1152, 1000, "5:4"),
            (4096, 256, "21:9"),  # beyond the widest: the widest
            (256, 4096, "9:21"),
            (1000, 704, "3:2"),  # 1.42: log-distance 0.055 to 3:2, 0.063 to 4:3
        ],
    )
    def test_aspect_ratio(self, width: int, height: int, expected: str) -> None:
        """The nearest allowed ratio by log-ratio distance."""
        assert aspect_ratio(width, height) == expected
        inputs = Replicate(api_token=TOKEN).input(
            ImageRequest(prompt="x", width=width, height=height)
        )
        assert inputs["aspect_ratio"] == expected

    def test_every_ratio_maps_to_itself(self) -> None:
        """Each allowed ratio, scaled to pixels, comes back as itself."""
        for label in ASPECT_RATIOS:
            w, h = (int(part) for part in label.split(":"))
            assert aspect_ratio(w * 64, h * 64) == label

    def test_defaults(self) -> None:
        """prompt, 1:1, one output, png; no seed when unset; negative_prompt is not sent."""
        request = ImageRequest(prompt="a fox", negative_prompt="blurry")
        assert Replicate(api_token=TOKEN).input(request) == {
            "prompt": "a fox",
            "aspect_ratio": "1:1",
            "num_outputs": 1,
            "output_format": "png",
        }

    def test_seed(self) -> None:
        """A set seed is passed on."""
        inputs = Replicate(api_token=TOKEN).input(ImageRequest(prompt="x", seed=1234567))
        assert inputs["seed"] == 1234567

    @pytest.mark.parametrize(
        ("fmt", "sent"), [("png", "png"), ("jpeg", "jpg"), ("jpg", "jpg"), ("webp", "webp")]
    )
    def test_output_format(self, fmt: str, sent: str) -> None:
        """jpeg is Replicate's "jpg"; png and webp pass through."""
        inputs = Replicate(api_token=TOKEN).input(ImageRequest(prompt="x", output_format=fmt))
        assert inputs["output_format"] == sent

    def test_provider_options_merge_last(self) -> None:
        """Options under this provider's name override built fields; others are ignored."""
        request = ImageRequest(
            prompt="x",
            seed=7,
            provider_options={
                "replicate": {"aspect_ratio": "21:9", "seed": 8, "megapixels": "0.25"},
                "fal": {"num_images": 4},
            },
        )
        inputs = Replicate(api_token=TOKEN).input(request)
        assert inputs == {
            "prompt": "x",
            "aspect_ratio": "21:9",
            "num_outputs": 1,
            "output_format": "png",
            "seed": 8,
            "megapixels": "0.25",
        }
        eu = Replicate(api_token=TOKEN, name="replicate-eu").input(request)
        assert "megapixels" not in eu

    def test_body_shapes(self) -> None:
        """The body wraps the input; version and webhook fields are added when set."""
        request = ImageRequest(prompt="x")
        plain = Replicate(api_token=TOKEN)
        assert plain.body(request) == {"input": plain.input(request)}
        assert plain.create_path() == "models/black-forest-labs/flux-schnell/predictions"
        pinned = Replicate(api_token=TOKEN, version=VERSION)
        assert pinned.body(request, WEBHOOK) == {
            "version": VERSION,
            "input": pinned.input(request),
            "webhook": WEBHOOK,
            "webhook_events_filter": ["completed"],
        }
        assert pinned.create_path() == "predictions"


@pytest.mark.anyio
class TestCreate:
    async def test_vector_sync_success(self, clock: FakeClock) -> None:
        """The sync vector: one POST, exact headers and body, the image from the 201."""
        replicate = Replicate(api_token=TOKEN, webhook_url=WEBHOOK)
        async with session(clock, seconds=31) as (mock, ctx, started):
            route = mock.post(CREATE_URL).respond(
                201,
                content=RAW,
                headers={"Content-Type": "application/json", "Preference-Applied": "wait=30"},
            )
            image = await replicate.generate(vector_request(), ctx)
            assert len(mock.calls) == 1
        sent = route.calls.last.request
        assert sent.method == "POST"
        assert str(sent.url) == CREATE_URL
        assert sent.headers["authorization"] == f"Bearer {TOKEN}"
        assert sent.headers["content-type"] == "application/json"
        assert sent.headers["prefer"] == "wait=30"
        assert sent.headers["cancel-after"] == "31s"
        assert sent.headers["user-agent"].startswith("imagegen")
        assert body_of(sent) == {
            "input": {**VECTOR_INPUT, "aspect_ratio": "1:1"},
            "webhook": WEBHOOK,
            "webhook_events_filter": ["completed"],
        }
        assert started == [PREDICTION_ID]
        assert image.url == OUTPUT_URL
        assert image.headers == {"Authorization": f"Bearer {TOKEN}"}
        assert image.handle == PREDICTION_ID
        assert image.raw == SUCCEEDED
        assert image.seed is None
        assert image.data is None

    async def test_seed_is_reported(self, clock: FakeClock) -> None:
        """The requested seed comes back on the image."""
        async with session(clock) as (mock, ctx, _):
            mock.post(CREATE_URL).respond(201, content=RAW)
            image = await Replicate(api_token=TOKEN).generate(
                ImageRequest(prompt="x", seed=42), ctx
            )
        assert image.seed == 42

    @pytest.mark.parametrize(
        ("seconds", "max_wait", "prefer", "cancel_after"),
        [
            (30.0, 60, "wait=29", "30s"),
            (31.0, 60, "wait=30", "31s"),
            (12.3, 60, "wait=11", "13s"),
            (120.0, 60, "wait=60", "120s"),
            (120.0, 90, "wait=60", "120s"),
            (120.0, 10, "wait=10", "120s"),
            (30.0, 1, "wait=1", "30s"),
            (1.5, 60, "wait=1", "2s"),
            (0.2, 60, "wait=1", "1s"),
        ],
    )
    async def test_headers_follow_the_deadline(
        self, clock: FakeClock, seconds: float, max_wait: int, prefer: str, cancel_after: str
    ) -> None:
        """Prefer: wait=N leaves a second to spare; Cancel-After is the time left, rounded up."""
        async with session(clock, seconds=seconds) as (mock, ctx, _):
            route = mock.post(CREATE_URL).respond(201, content=RAW)
            await Replicate(api_token=TOKEN, max_wait=max_wait).generate(
                ImageRequest(prompt="x"), ctx
            )
        sent = route.calls.last.request
        assert sent.headers["prefer"] == prefer
        assert sent.headers["cancel-after"] == cancel_after

    @pytest.mark.parametrize("version", [VERSION, f"black-forest-labs/flux-schnell:{VERSION}"])
    async def test_version_endpoint(self, clock: FakeClock, version: str) -> None:
        """With a version, POST /v1/predictions with "version" added to the body."""
        async with session(clock) as (mock, ctx, started):
            model_route = mock.post(CREATE_URL).respond(201, content=RAW)
            route = mock.post(VERSION_URL).respond(201, content=RAW)
            image = await Replicate(api_token=TOKEN, version=version).generate(
                vector_request(), ctx
            )
        assert not model_route.called
        assert body_of(route.calls.last.request) == {
            "version": VERSION,
            "input": {**VECTOR_INPUT, "aspect_ratio": "1:1"},
        }
        assert route.calls.last.request.headers["prefer"] == "wait=29"
        assert started == [PREDICTION_ID]
        assert image.url == OUTPUT_URL

    async def test_no_webhook_fields_without_a_url(self, clock: FakeClock) -> None:
        """Without a webhook URL the body has no webhook fields."""
        async with session(clock) as (mock, ctx, _):
            route = mock.post(CREATE_URL).respond(201, content=RAW)
            await Replicate(api_token=TOKEN).generate(vector_request(), ctx)
        assert set(body_of(route.calls.last.request)) == {"input"}

    async def test_context_webhook(self, clock: FakeClock) -> None:
        """The generator's ctx.webhook_url is used when the provider has none."""
        async with session(clock, webhook_url=WEBHOOK) as (mock, ctx, _):
            route = mock.post(CREATE_URL).respond(201, content=RAW)
            await Replicate(api_token=TOKEN).generate(vector_request(), ctx)
        body = body_of(route.calls.last.request)
        assert body["webhook"] == WEBHOOK
        assert body["webhook_events_filter"] == ["completed"]

    async def test_provider_webhook_wins(self, clock: FakeClock) -> None:
        """The provider's own webhook_url wins over the context's."""
        mine = "https://hooks.example.net/replicate"
        async with session(clock, webhook_url=WEBHOOK) as (mock, ctx, _):
            route = mock.post(CREATE_URL).respond(201, content=RAW)
            await Replicate(api_token=TOKEN, webhook_url=mine).generate(vector_request(), ctx)
        assert body_of(route.calls.last.request)["webhook"] == mine

    async def test_plain_http_context_webhook_is_not_sent(
        self, clock: FakeClock, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Replicate takes only https webhooks: an http one is left out, with a warning."""
        async with session(clock, webhook_url="http://localhost:8000/hook") as (mock, ctx, _):
            route = mock.post(CREATE_URL).respond(201, content=RAW)
            await Replicate(api_token=TOKEN).generate(vector_request(), ctx)
        assert "webhook" not in body_of(route.calls.last.request)
        assert "non-https webhook" in caplog.text

    async def test_string_output(self, clock: FakeClock) -> None:
        """An output that is one string instead of a list is that URL."""
        async with session(clock) as (mock, ctx, _):
            mock.post(CREATE_URL).respond(201, json=prediction(output=OUTPUT_URL))
            image = await Replicate(api_token=TOKEN).generate(ImageRequest(prompt="x"), ctx)
        assert image.url == OUTPUT_URL

    async def test_data_uri_output(self, clock: FakeClock) -> None:
        """A data: URI output is decoded into the image bytes."""
        uri = "data:image/png;base64," + base64.b64encode(tiny_png()).decode()
        async with session(clock) as (mock, ctx, _):
            mock.post(CREATE_URL).respond(201, json=prediction(output=[uri]))
            image = await Replicate(api_token=TOKEN).generate(ImageRequest(prompt="x"), ctx)
        assert image.data == tiny_png()
        assert image.url is None
        assert image.handle == PREDICTION_ID

    @pytest.mark.parametrize(
        "uri", ["data:image/png,plain", "data:image/png;base64,@@not-base64@@"]
    )
    async def test_bad_data_uri(self, clock: FakeClock, uri: str) -> None:
        """A data: URI that is not valid base64 is a non-retryable ProviderError."""
        async with session(clock) as (mock, ctx, _):
            mock.post(CREATE_URL).respond(201, json=prediction(output=[uri]))
            with pytest.raises(ProviderError, match="data URI") as info:
                await Replicate(api_token=TOKEN).generate(ImageRequest(prompt="x"), ctx)
        assert not info.value.retryable

    @pytest.mark.parametrize(
        ("url", "authorized"),
        [
            (OUTPUT_URL, True),
            ("https://pbxt.replicate.delivery/abc/out-0.png", True),
            ("https://REPLICATE.DELIVERY/abc/out-0.png", True),
            (CDN_URL, False),
            ("https://evilreplicate.delivery/x.png", False),
            ("https://replicate.delivery.evil.example/x.png", False),
            ("https://replicate.delivery@evil.example/x.png", False),
            ("http://replicate.delivery/x.png", False),
        ],
    )
    async def test_delivery_host_gets_the_token(
        self, clock: FakeClock, url: str, authorized: bool
    ) -> None:
        """Only https replicate.delivery (and its subdomains) is sent the Authorization header."""
        assert is_delivery_url(url) is authorized
        async with session(clock) as (mock, ctx, _):
            mock.post(CREATE_URL).respond(201, json=prediction(output=[url]))
            image = await Replicate(api_token=TOKEN).generate(ImageRequest(prompt="x"), ctx)
        assert image.url == url
        expected = {"Authorization": f"Bearer {TOKEN}"} if authorized else None
        assert image.headers == expected

    async def test_missing_token_sends_nothing(
        self, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Without a token, generate() and check() fail with ProviderAuthError, sending nothing."""
        monkeypatch.delenv("REPLICATE_API_TOKEN", raising=False)
        async with session(clock) as (mock, ctx, started):
            route = mock.route()
            with pytest.raises(ProviderAuthError, match="REPLICATE_API_TOKEN"):
                await Replicate().generate(ImageRequest(prompt="x"), ctx)
            with pytest.raises(ProviderAuthError, match="api_token="):
                await Replicate().check(ctx)
        assert not route.called
        assert started == []

    @pytest.mark.parametrize(
        "content", [b"<html>oops</html>", b"[1, 2]", b'"succeeded"'], ids=["html", "list", "str"]
    )
    async def test_malformed_create_answer(self, clock: FakeClock, content: bytes) -> None:
        """An unreadable 201 is a ProviderUnavailable that is not retried (work may exist)."""
        async with session(clock) as (mock, ctx, started):
            mock.post(CREATE_URL).respond(201, content=content)
            with pytest.raises(ProviderUnavailable) as info:
                await Replicate(api_token=TOKEN).generate(ImageRequest(prompt="x"), ctx)
        assert not info.value.retryable
        assert started == []

    @pytest.mark.parametrize("answer", [{"status": "starting"}, {"id": "", "status": "starting"}])
    async def test_create_without_id(self, clock: FakeClock, answer: dict[str, Any]) -> None:
        """A create answer without a prediction id is a non-retryable ProviderError."""
        async with session(clock) as (mock, ctx, started):
            mock.post(CREATE_URL).respond(201, json=answer)
            with pytest.raises(ProviderError, match="without a prediction id") as info:
                await Replicate(api_token=TOKEN).generate(ImageRequest(prompt="x"), ctx)
        assert not info.value.retryable
        assert started == []

    async def test_connection_refused_is_retryable(self, clock: FakeClock) -> None:
        """A refused connection proves nothing was created: retryable even for the create."""
        async with session(clock) as (mock, ctx, _):
            mock.post(CREATE_URL).mock(side_effect=httpx.ConnectError("refused"))
            with pytest.raises(ProviderUnavailable) as info:
                await Replicate(api_token=TOKEN).generate(ImageRequest(prompt="x"), ctx)
        assert info.value.retryable

    @pytest.mark.parametrize(
        "exc", [httpx.ReadTimeout("slow"), httpx.RemoteProtocolError("cut")], ids=repr
    )
    async def test_create_cut_short_is_not_retryable(
        self, clock: FakeClock, exc: Exception
    ) -> None:
        """A create that timed out or broke after sending may have made a prediction."""
        async with session(clock) as (mock, ctx, _):
            mock.post(CREATE_URL).mock(side_effect=exc)
            with pytest.raises(ProviderError) as info:
                await Replicate(api_token=TOKEN).generate(ImageRequest(prompt="x"), ctx)
        assert not info.value.retryable


@pytest.mark.anyio
class TestErrors:
    @pytest.mark.parametrize(
        ("status", "body", "headers", "cls", "retryable", "retry_after"),
        [
            pytest.param(
                401,
                {
                    "title": "Unauthenticated",
                    "detail": "You did not pass a valid authentication token",
                    "status": 401,
                },
                {},
                ProviderAuthError,
                False,
                None,
                id="401",
            ),
            pytest.param(
                403,
                {"title": "Forbidden", "detail": "no", "status": 403},
                {},
                ProviderAuthError,
                False,
                None,
                id="403",
            ),
            pytest.param(
                402,
                {
                    "title": "Insufficient credit",
                    "detail": "You have insufficient credit to run this model. Go to "
                    "https://replicate.com/account/billing#billing to purchase credit.",
                    "status": 402,
                },
                {},
                ProviderQuotaExceeded,
                False,
                None,
                id="402",
            ),
            pytest.param(
                404,
                {"detail": "Not found.", "status": 404},
                {},
                ProviderError,
                False,
                None,
                id="404",
            ),
            pytest.param(
                422,
                {
                    "title": "Invalid version or not permitted",
                    "detail": "The specified version does not exist (or perhaps you don't "
                    "have permission to use it?)",
                    "status": 422,
                },
                {},
                ProviderError,
                False,
                None,
                id="422-version",
            ),
            pytest.param(
                422,
                {
                    "title": "Input validation failed",
                    "detail": "- input.aspect_ratio: aspect_ratio must be one of ...",
                    "status": 422,
                },
                {},
                ProviderError,
                False,
                None,
                id="422-input",
            ),
            pytest.param(
                422,
                {"title": "Input rejected", "detail": "flagged by the safety checker"},
                {},
                ContentRejected,
                False,
                None,
                id="422-safety",
            ),
            pytest.param(
                429,
                {"detail": "Request was throttled. Your rate limit resets in ~30s."},
                {},
                ProviderRateLimited,
                True,
                30.0,
                id="429-detail",
            ),
            pytest.param(
                429,
                {"detail": "Request was throttled. Your rate limit resets in ~30s."},
                {"Retry-After": "7"},
                ProviderRateLimited,
                True,
                7.0,
                id="429-header-wins",
            ),
            pytest.param(
                429,
                {"detail": "Request was throttled."},
                {},
                ProviderRateLimited,
                True,
                None,
                id="429-no-hint",
            ),
            pytest.param(
                500,
                {"detail": "Internal server error"},
                {},
                ProviderUnavailable,
                False,
                None,
                id="500",
            ),
            pytest.param(
                503,
                {"detail": "Service unavailable"},
                {},
                ProviderUnavailable,
                False,
                None,
                id="503",
            ),
            pytest.param(
                503,
                {"detail": "Service unavailable"},
                {"Retry-After": "5"},
                ProviderUnavailable,
                True,
                5.0,
                id="503-retry-after",
            ),
        ],
    )
    async def test_create_errors(
        self,
        clock: FakeClock,
        status: int,
        body: dict[str, Any],
        headers: dict[str, str],
        cls: type[ProviderError],
        retryable: bool,
        retry_after: float | None,
    ) -> None:
        """Each problem-JSON answer to the create maps to its class, retryability and wait."""
        async with session(clock) as (mock, ctx, started):
            mock.post(CREATE_URL).respond(
                status, content=json.dumps(body).encode(), headers=PROBLEM | headers
            )
            with pytest.raises(ProviderError) as info:
                await Replicate(api_token=TOKEN).generate(ImageRequest(prompt="x"), ctx)
        error = info.value
        assert type(error) is cls
        assert (error.status, error.retryable, error.retry_after) == (
            status,
            retryable,
            retry_after,
        )
        assert error.provider == "replicate"
        assert str(body["detail"]) in str(error)
        assert started == []

    async def test_errors_never_echo_the_token(self, clock: FakeClock) -> None:
        """A vendor body quoting the token is redacted in the error."""
        async with session(clock) as (mock, ctx, _):
            mock.post(CREATE_URL).respond(
                401, json={"title": "Unauthenticated", "detail": f"bad token {TOKEN}"}
            )
            with pytest.raises(ProviderAuthError) as info:
                await Replicate(api_token=TOKEN).generate(ImageRequest(prompt="x"), ctx)
        assert TOKEN not in str(info.value)
        assert TOKEN not in repr(info.value)


@pytest.mark.anyio
class TestPolling:
    async def test_wait_expired_then_polled_to_success(self, clock: FakeClock) -> None:
        """starting (wait ran out) -> processing -> succeeded, polled at urls.get."""
        async with session(clock) as (mock, ctx, started):
            mock.post(CREATE_URL).mock(return_value=created())
            times, answer = stamped(
                clock,
                httpx.Response(200, json=PROCESSING),
                httpx.Response(200, content=RAW),
            )
            poll = mock.get(GET_URL).mock(side_effect=answer)
            image = await Replicate(api_token=TOKEN).generate(vector_request(), ctx)
        assert started == [PREDICTION_ID]
        assert times == [0.5, 1.25]
        assert poll.calls.last.request.headers["authorization"] == f"Bearer {TOKEN}"
        assert image.url == OUTPUT_URL
        assert image.headers == {"Authorization": f"Bearer {TOKEN}"}
        assert image.handle == PREDICTION_ID
        assert image.raw == SUCCEEDED

    async def test_started_before_the_first_poll(self, clock: FakeClock) -> None:
        """The prediction id is reported before any waiting or polling."""
        async with session(clock) as (mock, ctx, started):
            mock.post(CREATE_URL).mock(return_value=created())
            seen: list[list[object]] = []

            def answer(_: httpx.Request) -> httpx.Response:
                seen.append(list(started))
                return httpx.Response(200, content=RAW)

            mock.get(GET_URL).mock(side_effect=answer)
            await Replicate(api_token=TOKEN).generate(ImageRequest(prompt="x"), ctx)
        assert seen == [[PREDICTION_ID]]

    async def test_unknown_status_is_still_running(self, clock: FakeClock) -> None:
        """A status Replicate may add later is polled again, not taken as an ending."""
        async with session(clock) as (mock, ctx, _):
            mock.post(CREATE_URL).mock(return_value=created())
            _, answer = stamped(
                clock,
                httpx.Response(200, json={**PROCESSING, "status": "queued"}),
                httpx.Response(200, json={**PROCESSING, "status": None}),
                httpx.Response(200, content=RAW),
            )
            poll = mock.get(GET_URL).mock(side_effect=answer)
            image = await Replicate(api_token=TOKEN).generate(ImageRequest(prompt="x"), ctx)
        assert poll.call_count == 3
        assert image.url == OUTPUT_URL

    async def test_partial_output_is_not_taken(self, clock: FakeClock) -> None:
        """Output that appears while processing is not taken until the status is succeeded."""
        async with session(clock) as (mock, ctx, _):
            mock.post(CREATE_URL).mock(
                return_value=created({**PROCESSING, "output": ["https://x.example/partial.webp"]})
            )
            poll = mock.get(GET_URL).respond(200, content=RAW)
            image = await Replicate(api_token=TOKEN).generate(ImageRequest(prompt="x"), ctx)
        assert poll.call_count == 1
        assert image.url == OUTPUT_URL

    async def test_backoff_grows_and_caps(self, clock: FakeClock) -> None:
        """Polls start at poll_interval and grow 1.5x up to 5 s."""
        async with session(clock, seconds=60) as (mock, ctx, _):
            mock.post(CREATE_URL).mock(return_value=created())
            answers = [httpx.Response(200, json=PROCESSING)] * 8
            times, answer = stamped(clock, *answers, httpx.Response(200, content=RAW))
            mock.get(GET_URL).mock(side_effect=answer)
            await Replicate(api_token=TOKEN).generate(ImageRequest(prompt="x"), ctx)
        gaps = [round(b - a, 4) for a, b in zip([0.0, *times], times, strict=False)]
        assert gaps == [0.5, 0.75, 1.125, 1.6875, 2.5312, 3.7969, 5.0, 5.0, 5.0]

    async def test_poll_interval_is_configurable(self, clock: FakeClock) -> None:
        """poll_interval sets the first wait."""
        async with session(clock) as (mock, ctx, _):
            mock.post(CREATE_URL).mock(return_value=created())
            times, answer = stamped(clock, httpx.Response(200, content=RAW))
            mock.get(GET_URL).mock(side_effect=answer)
            await Replicate(api_token=TOKEN, poll_interval=2.0).generate(
                ImageRequest(prompt="x"), ctx
            )
        assert times == [2.0]

    async def test_never_polls_past_the_deadline(self, clock: FakeClock) -> None:
        """A prediction still running at the deadline is a non-retryable ProviderTimeout."""
        async with session(clock, seconds=10) as (mock, ctx, started):
            mock.post(CREATE_URL).mock(return_value=created())
            times, answer = stamped(clock, httpx.Response(200, json=PROCESSING))
            mock.get(GET_URL).mock(side_effect=answer)
            with pytest.raises(ProviderTimeout, match="not done by the deadline") as info:
                await Replicate(api_token=TOKEN).generate(ImageRequest(prompt="x"), ctx)
        assert not info.value.retryable
        assert started == [PREDICTION_ID]
        assert times[-1] < 10
        assert clock.monotonic() < 10

    async def test_failed(self, clock: FakeClock) -> None:
        """failed is a non-retryable ProviderError carrying the prediction's error text."""
        async with session(clock) as (mock, ctx, _):
            mock.post(CREATE_URL).mock(return_value=created())
            mock.get(GET_URL).respond(
                200, json=prediction(status="failed", output=None, error="OOM")
            )
            with pytest.raises(ProviderError) as info:
                await Replicate(api_token=TOKEN).generate(ImageRequest(prompt="x"), ctx)
        assert type(info.value) is ProviderError
        assert not info.value.retryable
        assert "OOM" in str(info.value)
        assert PREDICTION_ID in str(info.value)

    async def test_failed_without_error_text(self, clock: FakeClock) -> None:
        """failed with a null error still says what happened."""
        async with session(clock) as (mock, ctx, _):
            mock.post(CREATE_URL).mock(
                return_value=created(prediction(status="failed", output=None))
            )
            with pytest.raises(ProviderError, match="failed: no error given"):
                await Replicate(api_token=TOKEN).generate(ImageRequest(prompt="x"), ctx)

    @pytest.mark.parametrize(
        "error",
        [
            "NSFW content detected. Try running it again, or try a different prompt.",
            "The safety checker flagged the output",
        ],
    )
    async def test_failed_on_safety(self, clock: FakeClock, error: str) -> None:
        """A failure that mentions NSFW or safety is ContentRejected."""
        async with session(clock) as (mock, ctx, _):
            mock.post(CREATE_URL).mock(return_value=created())
            mock.get(GET_URL).respond(
                200, json=prediction(status="failed", output=None, error=error)
            )
            with pytest.raises(ContentRejected) as info:
                await Replicate(api_token=TOKEN).generate(ImageRequest(prompt="x"), ctx)
        assert not info.value.retryable

    @pytest.mark.parametrize("status", ["canceled", "aborted"])
    async def test_canceled_and_aborted(self, clock: FakeClock, status: str) -> None:
        """canceled and aborted end the attempt with a non-retryable ProviderError."""
        async with session(clock) as (mock, ctx, _):
            mock.post(CREATE_URL).mock(return_value=created())
            mock.get(GET_URL).respond(200, json=prediction(status=status, output=None))
            with pytest.raises(ProviderError, match=f"was {status}") as info:
                await Replicate(api_token=TOKEN).generate(ImageRequest(prompt="x"), ctx)
        assert type(info.value) is ProviderError
        assert not info.value.retryable

    async def test_ending_in_the_create_answer(self, clock: FakeClock) -> None:
        """A create that answers already failed raises at once, after reporting the id."""
        async with session(clock) as (mock, ctx, started):
            mock.post(CREATE_URL).mock(
                return_value=created(prediction(status="failed", error="OOM", output=None))
            )
            poll = mock.get(GET_URL).respond(200, content=RAW)
            with pytest.raises(ProviderError, match="OOM"):
                await Replicate(api_token=TOKEN).generate(ImageRequest(prompt="x"), ctx)
        assert started == [PREDICTION_ID]
        assert not poll.called

    @pytest.mark.parametrize(
        "changes",
        [{"output": None}, {"output": []}, {"output": None, "data_removed": True}],
        ids=["null", "empty", "data_removed"],
    )
    async def test_succeeded_without_output(
        self, clock: FakeClock, changes: dict[str, Any]
    ) -> None:
        """A success whose output is gone is a non-retryable ProviderUnavailable."""
        async with session(clock) as (mock, ctx, _):
            mock.post(CREATE_URL).mock(return_value=created())
            mock.get(GET_URL).respond(200, json=prediction(**changes))
            with pytest.raises(ProviderUnavailable) as info:
                await Replicate(api_token=TOKEN).generate(ImageRequest(prompt="x"), ctx)
        assert not info.value.retryable

    @pytest.mark.parametrize("output", [[{"url": OUTPUT_URL}], 42, [""]])
    async def test_succeeded_with_unusable_output(self, clock: FakeClock, output: Any) -> None:
        """Output that is not a URL string is a non-retryable ProviderError."""
        async with session(clock) as (mock, ctx, _):
            mock.post(CREATE_URL).mock(return_value=created(prediction(output=output)))
            with pytest.raises(ProviderError, match="not an image URL") as info:
                await Replicate(api_token=TOKEN).generate(ImageRequest(prompt="x"), ctx)
        assert not info.value.retryable

    async def test_transient_poll_errors_are_retried(self, clock: FakeClock) -> None:
        """Three transient failures in a row (5xx, 429, connection, bad JSON) are ridden out."""
        async with session(clock, seconds=60) as (mock, ctx, _):
            mock.post(CREATE_URL).mock(return_value=created())
            times, answer = stamped(
                clock,
                httpx.Response(503, json={"detail": "busy"}),
                httpx.ConnectError("refused"),
                httpx.Response(200, content=b"<html>"),
                httpx.Response(200, json=PROCESSING),
                httpx.Response(429, json={"detail": "Your rate limit resets in ~8s."}),
                httpx.ReadTimeout("slow"),
                httpx.Response(502),
                httpx.Response(200, content=RAW),
            )
            poll = mock.get(GET_URL).mock(side_effect=answer)
            image = await Replicate(api_token=TOKEN).generate(ImageRequest(prompt="x"), ctx)
        assert poll.call_count == 8
        assert image.url == OUTPUT_URL
        # The 429's "~8s" stretches the wait after it.
        assert times[5] - times[4] == 8.0

    async def test_fourth_transient_failure_raises(self, clock: FakeClock) -> None:
        """A fourth consecutive transient failure ends the attempt."""
        async with session(clock, seconds=60) as (mock, ctx, _):
            mock.post(CREATE_URL).mock(return_value=created())
            poll = mock.get(GET_URL).respond(503, json={"detail": "busy"})
            with pytest.raises(ProviderUnavailable) as info:
                await Replicate(api_token=TOKEN).generate(ImageRequest(prompt="x"), ctx)
        assert poll.call_count == 4
        assert info.value.status == 503

    async def test_poll_retries_stop_at_the_deadline(self, clock: FakeClock) -> None:
        """A transient failure with no time left for another poll is a ProviderTimeout."""
        async with session(clock, seconds=1.0) as (mock, ctx, _):
            mock.post(CREATE_URL).mock(return_value=created())
            poll = mock.get(GET_URL).respond(503)
            with pytest.raises(ProviderTimeout):
                await Replicate(api_token=TOKEN).generate(ImageRequest(prompt="x"), ctx)
        assert poll.call_count == 2  # at 0.5 s, and at 0.75 s, the last chance
        assert clock.monotonic() == 0.75

    @pytest.mark.parametrize(("status", "cls"), [(401, ProviderAuthError), (404, ProviderError)])
    async def test_fatal_poll_error_raises_at_once(
        self, clock: FakeClock, status: int, cls: type[ProviderError]
    ) -> None:
        """A 401 or 404 while polling is not retried."""
        async with session(clock) as (mock, ctx, _):
            mock.post(CREATE_URL).mock(return_value=created())
            poll = mock.get(GET_URL).respond(status, json={"detail": "no", "status": status})
            with pytest.raises(cls) as info:
                await Replicate(api_token=TOKEN).generate(ImageRequest(prompt="x"), ctx)
        assert type(info.value) is cls
        assert poll.call_count == 1

    async def test_foreign_get_url_is_not_followed(self, clock: FakeClock) -> None:
        """urls.get on another host is ignored: the token only goes to base_url's host."""
        foreign = {**STARTING, "urls": {"get": "https://evil.example/v1/predictions/x"}}
        async with session(clock) as (mock, ctx, _):
            mock.post(CREATE_URL).mock(return_value=created(foreign))
            evil = mock.get(url__startswith="https://evil.example").respond(200, content=RAW)
            poll = mock.get(GET_URL).respond(200, content=RAW)
            await Replicate(api_token=TOKEN).generate(ImageRequest(prompt="x"), ctx)
        assert not evil.called
        assert poll.called

    async def test_missing_urls_fall_back_to_base_url(self, clock: FakeClock) -> None:
        """Without urls.get the prediction is polled at {base_url}/predictions/{id}."""
        bare = {k: v for k, v in STARTING.items() if k != "urls"}
        async with session(clock) as (mock, ctx, _):
            mock.post(CREATE_URL).mock(return_value=created(bare))
            poll = mock.get(GET_URL).respond(200, content=RAW)
            await Replicate(api_token=TOKEN).generate(ImageRequest(prompt="x"), ctx)
        assert poll.called

    async def test_gateway_base_url(self, clock: FakeClock) -> None:
        """Behind a gateway, creates and polls go to base_url, not to api.replicate.com."""
        gateway = "https://gw.example/replicate/v1"
        async with session(clock) as (mock, ctx, _):
            create = mock.post(f"{gateway}/models/black-forest-labs/flux-schnell/predictions").mock(
                return_value=created()
            )
            poll = mock.get(f"{gateway}/predictions/{PREDICTION_ID}").respond(200, content=RAW)
            upstream = mock.get(GET_URL).respond(200, content=RAW)
            await Replicate(api_token=TOKEN, base_url=gateway).generate(
                ImageRequest(prompt="x"), ctx
            )
        assert create.called
        assert poll.called
        assert not upstream.called


@pytest.mark.anyio
class TestCancel:
    async def test_posts_the_cancel_endpoint(self, clock: FakeClock) -> None:
        """cancel() POSTs /predictions/{id}/cancel with the token."""
        async with session(clock) as (mock, ctx, _):
            route = mock.post(CANCEL_URL).respond(
                200, json=prediction(status="canceled", output=None)
            )
            await Replicate(api_token=TOKEN).cancel(PREDICTION_ID, ctx)
        sent = route.calls.last.request
        assert sent.headers["authorization"] == f"Bearer {TOKEN}"
        assert sent.headers["user-agent"].startswith("imagegen")

    async def test_any_success_answer_will_do(self, clock: FakeClock) -> None:
        """A 2xx cancel answer without a JSON prediction is fine too."""
        async with session(clock) as (mock, ctx, _):
            route = mock.post(CANCEL_URL).respond(204)
            await Replicate(api_token=TOKEN).cancel(PREDICTION_ID, ctx)
        assert route.called

    async def test_failures_raise(self, clock: FakeClock) -> None:
        """A failed cancel raises; the generator logs it."""
        async with session(clock) as (mock, ctx, _):
            mock.post(CANCEL_URL).respond(500, json={"detail": "boom"})
            with pytest.raises(ProviderUnavailable):
                await Replicate(api_token=TOKEN).cancel(PREDICTION_ID, ctx)

    @pytest.mark.parametrize("handle", [None, 42, ""])
    async def test_foreign_handles_are_ignored(self, clock: FakeClock, handle: object) -> None:
        """Something that is not a prediction id is not sent anywhere."""
        async with session(clock) as (mock, ctx, _):
            route = mock.route()
            await Replicate(api_token=TOKEN).cancel(handle, ctx)
        assert not route.called

    async def test_ids_are_escaped(self, clock: FakeClock) -> None:
        """An id is one path segment, whatever it holds."""
        async with session(clock) as (mock, ctx, _):
            route = mock.post(f"{BASE}/predictions/a%2Fb/cancel").respond(200, json={})
            await Replicate(api_token=TOKEN).cancel("a/b", ctx)
        assert route.called


@pytest.mark.anyio
class TestCheck:
    async def test_token_accepted(self, clock: FakeClock) -> None:
        """check() is GET /v1/account with the token."""
        async with session(clock) as (mock, ctx, _):
            route = mock.get(f"{BASE}/account").respond(
                200, json={"type": "user", "username": "alice", "name": "Alice"}
            )
            await Replicate(api_token=TOKEN).check(ctx)
            assert len(mock.calls) == 1
        sent = route.calls.last.request
        assert sent.headers["authorization"] == f"Bearer {TOKEN}"

    @pytest.mark.parametrize(
        ("status", "cls"),
        [(401, ProviderAuthError), (429, ProviderRateLimited), (500, ProviderUnavailable)],
    )
    async def test_failures(self, clock: FakeClock, status: int, cls: type[ProviderError]) -> None:
        """A refused token, throttling or an outage raise the mapped error."""
        async with session(clock) as (mock, ctx, _):
            mock.get(f"{BASE}/account").respond(status, json={"detail": "no"})
            with pytest.raises(cls):
                await Replicate(api_token=TOKEN).check(ctx)


@pytest.mark.anyio
class TestWebhook:
    async def test_vector_body(self) -> None:
        """The vector body (723 bytes, known sha256) parses into the succeeded prediction."""
        assert len(RAW) == 723
        assert hashlib.sha256(RAW).hexdigest() == (
            "f66af3030c0eede9f09354e09fadf9fae688d988c4136ac476b2d6bd95b3de8a"
        )
        replicate = Replicate(api_token=TOKEN)
        parsed = replicate.parse_webhook(RAW)
        assert parsed == SUCCEEDED
        image = replicate.image_from(parsed, seed=5)
        assert image is not None
        assert (image.url, image.handle, image.seed) == (OUTPUT_URL, PREDICTION_ID, 5)

    async def test_running_prediction_has_no_image(self) -> None:
        """image_from() is None while the prediction runs."""
        replicate = Replicate(api_token=TOKEN)
        assert replicate.image_from(STARTING) is None
        assert replicate.image_from(PROCESSING) is None

    @pytest.mark.parametrize(
        "body", [b"not json", b"\xff\xfe", b"[1]", b'{"status":"succeeded"}', b'{"id":""}']
    )
    async def test_bad_bodies(self, body: bytes) -> None:
        """A body that is not a JSON prediction with an id is a ProviderError."""
        with pytest.raises(ProviderError) as info:
            Replicate(api_token=TOKEN).parse_webhook(body)
        assert not info.value.retryable

    async def test_configured_secret(
        self, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A configured secret is returned without asking Replicate."""
        monkeypatch.delenv("REPLICATE_WEBHOOK_SECRET", raising=False)
        async with session(clock) as (mock, ctx, _):
            route = mock.route()
            secret = await Replicate(api_token=TOKEN, webhook_secret="whsec_abc").signing_secret(
                ctx
            )
        assert secret == "whsec_abc"
        assert not route.called

    async def test_secret_fetched_once(
        self, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Without one, GET /v1/webhooks/default/secret, once."""
        monkeypatch.delenv("REPLICATE_WEBHOOK_SECRET", raising=False)
        replicate = Replicate(api_token=TOKEN)
        async with session(clock) as (mock, ctx, _):
            route = mock.get(f"{BASE}/webhooks/default/secret").respond(
                200, json={"key": "whsec_fetched"}
            )
            assert await replicate.signing_secret(ctx) == "whsec_fetched"
            assert await replicate.signing_secret(ctx) == "whsec_fetched"
        assert route.call_count == 1
        assert route.calls.last.request.headers["authorization"] == f"Bearer {TOKEN}"
        assert "whsec_fetched" not in repr(replicate)

    @pytest.mark.parametrize("answer", [{}, {"key": ""}, [1]])
    async def test_secret_answer_without_key(
        self, clock: FakeClock, monkeypatch: pytest.MonkeyPatch, answer: Any
    ) -> None:
        """An answer without a key is a ProviderError."""
        monkeypatch.delenv("REPLICATE_WEBHOOK_SECRET", raising=False)
        async with session(clock) as (mock, ctx, _):
            mock.get(f"{BASE}/webhooks/default/secret").respond(200, json=answer)
            with pytest.raises(ProviderError, match="no key"):
                await Replicate(api_token=TOKEN).signing_secret(ctx)


@pytest.fixture
def public_dns(monkeypatch: pytest.MonkeyPatch) -> None:
    """Output hosts resolve to a public address, so the download policy lets them through."""

    async def getaddrinfo(host: str, port: int, **_: Any) -> list[tuple[Any, ...]]:
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.215.14", port))]

    monkeypatch.setattr(imagegen._download.anyio, "getaddrinfo", getaddrinfo)


def png_response() -> httpx.Response:
    return httpx.Response(200, content=tiny_png(), headers={"Content-Type": "image/png"})


class Hang:
    """A respx side effect that never answers; respx records no call, so this does."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        await anyio.Event().wait()  # nobody sets it
        return httpx.Response(504)


@pytest.mark.anyio
@pytest.mark.usefixtures("public_dns")
class TestThroughGenerator:
    async def test_sync_image_arrives(self, clock: FakeClock) -> None:
        """A sync success's output URL is downloaded into the result, without the token."""
        async with httpx.AsyncClient() as http:
            with respx.mock(assert_all_called=False) as mock:
                mock.post(CREATE_URL).respond(201, json=prediction(output=[CDN_URL]))
                cdn = mock.get(CDN_URL).mock(return_value=png_response())
                gen = ImageGenerator(
                    providers=[Replicate(api_token=TOKEN)],
                    http=http,
                    storage=None,
                    download=DownloadPolicy(),
                    clock=clock,
                    timeout=15.0,
                )
                result = await gen.generate("a red fox", width=1920, height=1080)
        assert result.provider == "replicate"
        assert result.data == tiny_png()
        assert result.source_url == CDN_URL
        assert "authorization" not in cdn.calls.last.request.headers

    async def test_delivery_download_carries_the_token(self, clock: FakeClock) -> None:
        """A replicate.delivery file is fetched with the token, after polling."""
        async with httpx.AsyncClient() as http:
            with respx.mock(assert_all_called=False) as mock:
                mock.post(CREATE_URL).mock(return_value=created())
                mock.get(GET_URL).respond(200, content=RAW)
                delivery = mock.get(OUTPUT_URL).mock(return_value=png_response())
                gen = ImageGenerator(
                    providers=[Replicate(api_token=TOKEN)],
                    http=http,
                    storage=None,
                    clock=clock,
                    timeout=15.0,
                )
                result = await gen.generate(PROMPT, output_format="webp")
        assert result.data == tiny_png()
        assert result.source_url == OUTPUT_URL
        assert delivery.calls.last.request.headers["authorization"] == f"Bearer {TOKEN}"

    @pytest.mark.parametrize(
        ("delay", "polls"),
        [(0.0, 0), (2.0, 1)],
        ids=["instant-winner-while-waiting", "winner-at-2s-while-polling"],
    )
    async def test_lost_race_cancels_the_prediction(
        self, clock: FakeClock, delay: float, polls: int
    ) -> None:
        """When another provider wins the race, the prediction is cancelled by its id.

        The instant winner answers while Replicate waits before its first poll; the
        2-second one while Replicate's poll (a route that never answers) is in flight.
        """
        async with httpx.AsyncClient() as http:
            with respx.mock(assert_all_called=False) as mock:
                create = mock.post(CREATE_URL).mock(return_value=created())
                hang = Hang()
                mock.get(GET_URL).mock(side_effect=hang)
                cancel = mock.post(CANCEL_URL).respond(
                    200, json=prediction(status="canceled", output=None)
                )
                gen = ImageGenerator(
                    providers=[Replicate(api_token=TOKEN), instant("fast", delay=delay)],
                    strategy=Race(),
                    http=http,
                    storage=None,
                    clock=clock,
                )
                result = await gen.generate("a red fox")
        assert result.provider == "fast"
        assert create.call_count == 1
        assert len(hang.requests) == polls
        assert cancel.call_count == 1
        sent = cancel.calls.last.request
        assert sent.url.path == f"/v1/predictions/{PREDICTION_ID}/cancel"
        assert sent.headers["authorization"] == f"Bearer {TOKEN}"
        attempt = next(a for a in result.attempts if a.provider == "replicate")
        assert attempt.outcome == "cancelled"

    async def test_race_lost_during_the_create_still_cancels(self, clock: FakeClock) -> None:
        """A create still waiting (Prefer: wait) when the race is lost is finished, then cancelled.

        Inside ``async with`` the create runs in the generator's background, so the
        winner is not held up, and the prediction it makes is cancelled once its id
        is known: nobody pays for an image no one will see.
        """

        async def slow_create(_: httpx.Request) -> httpx.Response:
            await clock.sleep(3.0)  # the vendor holds the request open
            return created()

        async with httpx.AsyncClient() as http:
            with respx.mock(assert_all_called=False) as mock:
                create = mock.post(CREATE_URL).mock(side_effect=slow_create)
                cancel = mock.post(CANCEL_URL).respond(
                    200, json=prediction(status="canceled", output=None)
                )
                async with ImageGenerator(
                    providers=[Replicate(api_token=TOKEN), instant("fast", delay=1.0)],
                    strategy=Race(),
                    http=http,
                    clock=clock,
                ) as gen:
                    result = await gen.generate("a red fox")
                    assert result.provider == "fast"
                    assert clock.monotonic() == 1.0
                    assert cancel.call_count == 0
        assert create.call_count == 1
        assert cancel.call_count == 1
        assert cancel.calls.last.request.url.path == f"/v1/predictions/{PREDICTION_ID}/cancel"

    async def test_deadline_cancels_the_prediction(self, clock: FakeClock) -> None:
        """A prediction still running at the deadline is cancelled, and not created again."""
        async with httpx.AsyncClient() as http:
            with respx.mock(assert_all_called=False) as mock:
                create = mock.post(CREATE_URL).mock(return_value=created())
                mock.get(GET_URL).respond(200, json=PROCESSING)
                cancel = mock.post(CANCEL_URL).respond(
                    200, json=prediction(status="canceled", output=None)
                )
                gen = ImageGenerator(
                    providers=[Replicate(api_token=TOKEN)],
                    retry=Retry(attempts=3, jitter=False),
                    http=http,
                    storage=None,
                    default_image=None,
                    clock=clock,
                    timeout=10.0,
                )
                with pytest.raises(AllProvidersFailed) as info:
                    await gen.generate("a red fox")
        assert create.call_count == 1
        assert cancel.call_count == 1
        assert cancel.calls.last.request.url.path == f"/v1/predictions/{PREDICTION_ID}/cancel"
        (attempt,) = info.value.attempts
        assert attempt.outcome == "error"
        assert isinstance(attempt.error, ProviderTimeout)
        assert clock.monotonic() <= 10.0

    async def test_failed_poll_is_not_retried(self, clock: FakeClock) -> None:
        """Polling that keeps failing cancels the prediction; the next tier serves."""
        async with httpx.AsyncClient() as http:
            with respx.mock(assert_all_called=False) as mock:
                create = mock.post(CREATE_URL).mock(return_value=created())
                mock.get(GET_URL).respond(503, json={"detail": "busy"})
                cancel = mock.post(CANCEL_URL).respond(200, json={})
                gen = ImageGenerator(
                    providers=[Replicate(api_token=TOKEN), slow("backup", 0.1, tier=1)],
                    retry=Retry(attempts=3, jitter=False),
                    http=http,
                    storage=None,
                    clock=clock,
                )
                result = await gen.generate("a red fox")
        assert result.provider == "backup"
        assert create.call_count == 1
        assert cancel.call_count == 1


class TestExample:
    def test_without_a_token_it_explains_and_exits(
        self,
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """With no token the example prints one line and exits 0, sending nothing."""
        monkeypatch.delenv("REPLICATE_API_TOKEN", raising=False)
        monkeypatch.chdir(tmp_path)
        monkeypatch.setattr(sys, "argv", [EXAMPLE.name])
        with respx.mock(assert_all_called=False) as mock:
            route = mock.route()
            with pytest.raises(SystemExit) as info:
                runpy.run_path(str(EXAMPLE), run_name="__main__")
        assert info.value.code == 0
        assert not route.called
        out = capsys.readouterr().out
        assert "REPLICATE_API_TOKEN" in out
        assert out.count("\n") == 1
