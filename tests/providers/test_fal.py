"""Fal: body and size mapping, sync and queue flows, fal's error shapes, cancel, check()."""

from __future__ import annotations

import base64
import logging
from typing import Any

import httpx
import pytest
import respx
from provider_support import body_of, session, stamped

from imagegen import (
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
from imagegen.providers._fal import Fal, FalRequest, image_size
from imagegen.testing import FakeClock, slow, tiny_png

# fal's documented test vectors.
KEY = "1a2b3c4d:5e6f7a8b"
PROMPT = "a red bicycle leaning on a brick wall"
REQUEST_ID = "6f1d2c3b-4a5e-4f60-8a9b-0c1d2e3f4a5b"
REQUESTS = f"https://queue.fal.run/fal-ai/flux/requests/{REQUEST_ID}"
SUBMIT_URL = "https://queue.fal.run/fal-ai/flux/schnell"
SYNC_URL = "https://fal.run/fal-ai/flux/schnell"
WEBHOOK = "https://example.com/hooks/fal"
SUBMITTED = {
    "request_id": REQUEST_ID,
    "gateway_request_id": REQUEST_ID,
    "status": "IN_QUEUE",
    "queue_position": 0,
    "response_url": REQUESTS,
    "status_url": f"{REQUESTS}/status",
    "cancel_url": f"{REQUESTS}/cancel",
}
IN_PROGRESS = {
    "status": "IN_PROGRESS",
    "logs": [
        {
            "message": "step 2/4",
            "level": "INFO",
            "source": "USER",
            "timestamp": "2026-01-01T00:00:00.300Z",
        }
    ],
}
COMPLETED = {"status": "COMPLETED", "logs": [], "metrics": {"inference_time": 0.41}}
OUTPUT = {
    "images": [
        {
            "url": "https://v3.fal.media/files/tiger/Xy12ab34.jpeg",
            "width": 1024,
            "height": 768,
            "content_type": "image/jpeg",
        }
    ],
    "timings": {"inference": 0.41},
    "seed": 1234567,
    "has_nsfw_concepts": [False],
    "prompt": PROMPT,
}
VECTOR_BODY = {
    "prompt": PROMPT,
    "image_size": "landscape_4_3",
    "num_images": 1,
    "num_inference_steps": 4,
    "seed": 1234567,
}
VALIDATION = {
    "detail": [{"loc": ["body", "prompt"], "msg": "field required", "type": "value_error.missing"}]
}
PRICING_URL = "https://api.fal.ai/v1/models/pricing"
CDN_URL = "https://images.example-cdn.net/files/out.png"


def vector_request() -> ImageRequest:
    """The request behind the queue test vector."""
    return ImageRequest(
        prompt=PROMPT,
        width=1024,
        height=768,
        seed=1234567,
        output_format="jpeg",
        provider_options={"fal": {"num_inference_steps": 4}},
    )


class TestConstruction:
    def test_defaults(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Named "fal", tier 0, flux/schnell on fal's public hosts, sync by default."""
        monkeypatch.delenv("FAL_KEY", raising=False)
        fal = Fal(key=KEY)
        assert (fal.name, fal.tier, fal.app) == ("fal", 0, "fal-ai/flux/schnell")
        assert (fal.base_url, fal.queue_url) == ("https://fal.run", "https://queue.fal.run")
        assert (fal.queue, fal.queue_threshold, fal.poll_interval) == (False, 20.0, 0.5)
        assert fal.auth_headers() == {"Authorization": f"Key {KEY}"}

    def test_key_from_fal_key(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Without key= the provider reads FAL_KEY, which wins over the id/secret pair."""
        monkeypatch.setenv("FAL_KEY", KEY)
        monkeypatch.setenv("FAL_KEY_ID", "other")
        monkeypatch.setenv("FAL_KEY_SECRET", "pair")
        assert Fal().auth_headers() == {"Authorization": f"Key {KEY}"}

    def test_key_from_id_and_secret(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Without FAL_KEY, FAL_KEY_ID and FAL_KEY_SECRET are joined as id:secret."""
        monkeypatch.delenv("FAL_KEY", raising=False)
        monkeypatch.setenv("FAL_KEY_ID", "1a2b3c4d")
        monkeypatch.setenv("FAL_KEY_SECRET", "5e6f7a8b")
        assert Fal().auth_headers() == {"Authorization": f"Key {KEY}"}
        monkeypatch.delenv("FAL_KEY_SECRET")
        assert not Fal().has_key

    def test_repr_hides_the_key(self) -> None:
        """Neither the key nor its secret half appears in repr."""
        fal = Fal(key="keyid:supersecretvalue")
        assert "supersecretvalue" not in repr(fal)
        assert "keyid" not in repr(fal)
        assert "key=set" in repr(fal)
        assert (
            repr(FalRequest(REQUEST_ID, "s", "r", "c")) == f"FalRequest(request_id='{REQUEST_ID}')"
        )

    def test_webhook_settings_read_back(self) -> None:
        """webhook_auth and jwks_url are kept as given (the URL without its trailing slash)."""
        fal = Fal(key=KEY, webhook_auth="token", jwks_url="https://keys.example/jwks/")
        assert (fal.webhook_auth, fal.jwks_url) == ("token", "https://keys.example/jwks")
        assert Fal(key=KEY).jwks_url == "https://rest.alpha.fal.ai/.well-known/jwks.json"

    def test_overrides(self) -> None:
        """name, tier, timeout and the app can be set per instance."""
        fal = Fal(key=KEY, app="fal-ai/flux/dev", name="fal-dev", tier=1, timeout=9.0)
        assert (fal.name, fal.tier, fal.timeout, fal.app) == ("fal-dev", 1, 9.0, "fal-ai/flux/dev")

    @pytest.mark.parametrize(
        ("kwargs", "field"),
        [
            ({"key": ""}, "key"),
            ({"key": 42}, "key"),
            ({"app": "flux"}, "app"),
            ({"app": "fal-ai/../x"}, "app"),
            ({"app": "fal-ai/flux?x=1"}, "app"),
            ({"app": None}, "app"),
            ({"base_url": "ftp://fal.run"}, "base_url"),
            ({"queue_url": "queue.fal.run"}, "queue_url"),
            ({"queue_url": ""}, "queue_url"),
            ({"platform_url": "api.fal.ai/v1"}, "platform_url"),
            ({"platform_url": ""}, "platform_url"),
            ({"webhook_url": "example.com/hook"}, "webhook_url"),
            ({"queue": "yes"}, "queue"),
            ({"queue_threshold": -1}, "queue_threshold"),
            ({"queue_threshold": True}, "queue_threshold"),
            ({"queue_threshold": float("nan")}, "queue_threshold"),
            ({"poll_interval": 0}, "poll_interval"),
            ({"poll_interval": "1"}, "poll_interval"),
            ({"webhook_auth": "none"}, "webhook_auth"),
            ({"jwks_url": "keys.example/jwks"}, "jwks_url"),
        ],
    )
    def test_bad_arguments(self, kwargs: dict[str, Any], field: str) -> None:
        """Each bad argument is an InvalidConfig naming it."""
        with pytest.raises(InvalidConfig) as info:
            Fal(**{"key": KEY, **kwargs})
        assert info.value.field == field


class TestBody:
    @pytest.mark.parametrize(
        ("width", "height", "expected"),
        [
            (1024, 1024, "square_hd"),
            (512, 512, "square"),
            (768, 1024, "portrait_4_3"),
            (576, 1024, "portrait_16_9"),
            (1024, 768, "landscape_4_3"),
            (1024, 576, "landscape_16_9"),
            (768, 768, {"width": 768, "height": 768}),
            (1024, 512, {"width": 1024, "height": 512}),
            (1536, 640, {"width": 1536, "height": 640}),
        ],
    )
    def test_size_mapping(self, width: int, height: int, expected: object) -> None:
        """An exact preset size gets fal's name; any other size is sent as pixels."""
        assert image_size(width, height) == expected
        body = Fal(key=KEY).body(ImageRequest(prompt="x", width=width, height=height))
        assert body["image_size"] == expected

    def test_defaults(self) -> None:
        """No seed when unset; one image; png; the safety checker on."""
        assert Fal(key=KEY).body(ImageRequest(prompt="a fox")) == {
            "prompt": "a fox",
            "image_size": "square_hd",
            "num_images": 1,
            "output_format": "png",
            "enable_safety_checker": True,
        }

    @pytest.mark.parametrize(("fmt", "sent"), [("png", "png"), ("jpg", "jpeg"), ("webp", "png")])
    def test_output_format(self, fmt: str, sent: str) -> None:
        """png and jpeg pass through; fal has no WebP, so webp is sent as png."""
        body = Fal(key=KEY).body(ImageRequest(prompt="x", output_format=fmt))
        assert body["output_format"] == sent

    def test_provider_options_merge_last(self) -> None:
        """Options for this provider's name override the built fields; others are ignored."""
        request = ImageRequest(
            prompt="x",
            provider_options={
                "fal-eu": {"enable_safety_checker": False, "image_size": {"width": 8, "height": 8}},
                "fal": {"num_inference_steps": 2},
            },
        )
        eu = Fal(key=KEY, name="fal-eu").body(request)
        assert eu["enable_safety_checker"] is False
        assert eu["image_size"] == {"width": 8, "height": 8}
        assert "num_inference_steps" not in eu
        assert Fal(key=KEY).body(request)["num_inference_steps"] == 2


@pytest.mark.anyio
class TestSync:
    async def test_happy_path(self, clock: FakeClock) -> None:
        """POST fal.run/{app} with key, User-Agent and body; the output becomes the image."""
        async with session(clock, seconds=15) as (mock, ctx, started):
            route = mock.post(SYNC_URL).respond(200, json=OUTPUT)
            image = await Fal(key=KEY).generate(vector_request(), ctx)
        sent = route.calls.last.request
        assert sent.headers["authorization"] == f"Key {KEY}"
        assert sent.headers["user-agent"].startswith("imagegen")
        assert sent.headers["content-type"] == "application/json"
        assert body_of(sent) == {
            **VECTOR_BODY,
            "output_format": "jpeg",
            "enable_safety_checker": True,
        }
        assert image.url == OUTPUT["images"][0]["url"]  # type: ignore[index]
        assert (image.width, image.height, image.seed) == (1024, 768, 1234567)
        assert image.content_type == "image/jpeg"
        assert image.handle is None
        assert started == []  # nothing to cancel on the direct endpoint

    async def test_nsfw_output_is_rejected(self, clock: FakeClock) -> None:
        """has_nsfw_concepts[0] true is a ContentRejected, never retried."""
        async with session(clock, seconds=15) as (mock, ctx, _):
            mock.post(SYNC_URL).respond(200, json={**OUTPUT, "has_nsfw_concepts": [True]})
            with pytest.raises(ContentRejected) as info:
                await Fal(key=KEY).generate(vector_request(), ctx)
        assert not info.value.retryable
        assert info.value.reason == "nsfw"

    async def test_data_uri_output(self, clock: FakeClock) -> None:
        """With sync_mode, fal inlines the image as a data URI: it comes back as bytes."""
        uri = "data:image/png;base64," + base64.b64encode(tiny_png()).decode()
        output = {"images": [{"url": uri, "content_type": "image/png"}], "seed": 5}
        async with session(clock, seconds=15) as (mock, ctx, _):
            mock.post(SYNC_URL).respond(200, json=output)
            image = await Fal(key=KEY).generate(ImageRequest(prompt="x"), ctx)
        assert image.data == tiny_png()
        assert image.url is None
        assert image.seed == 5

    @pytest.mark.parametrize(
        "output",
        [
            {"images": []},
            {"images": [{"width": 5}]},
            {"images": "nope"},
            {"images": [{"url": "data:image/png,notbase64"}]},
            {"images": [{"url": "data:image/png;base64,@@@"}]},
        ],
    )
    async def test_unusable_output(self, clock: FakeClock, output: dict[str, Any]) -> None:
        """An output without a usable image is a ProviderError, not retried (it was billed)."""
        async with session(clock, seconds=15) as (mock, ctx, _):
            mock.post(SYNC_URL).respond(200, json=output)
            with pytest.raises(ProviderError) as info:
                await Fal(key=KEY).generate(ImageRequest(prompt="x"), ctx)
        assert not info.value.retryable

    @pytest.mark.parametrize("content", [b"<html>oops", b"[1, 2]"])
    async def test_malformed_answer(self, clock: FakeClock, content: bytes) -> None:
        """A 200 that is not a JSON object is ProviderUnavailable, not retried after a create."""
        async with session(clock, seconds=15) as (mock, ctx, _):
            mock.post(SYNC_URL).respond(200, content=content)
            with pytest.raises(ProviderUnavailable) as info:
                await Fal(key=KEY).generate(ImageRequest(prompt="x"), ctx)
        assert not info.value.retryable

    async def test_missing_key_sends_nothing(
        self, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Without any key the call fails with ProviderAuthError before any request."""
        for name in ("FAL_KEY", "FAL_KEY_ID", "FAL_KEY_SECRET"):
            monkeypatch.delenv(name, raising=False)
        async with session(clock, seconds=15) as (mock, ctx, _):
            route = mock.route()
            with pytest.raises(ProviderAuthError, match="FAL_KEY"):
                await Fal().generate(ImageRequest(prompt="x"), ctx)
            with pytest.raises(ProviderAuthError):
                await Fal().check(ctx)
        assert not route.called

    async def test_connection_refused_is_retryable(self, clock: FakeClock) -> None:
        """A refused connection proves nothing was created: retryable even for the create."""
        async with session(clock, seconds=15) as (mock, ctx, _):
            mock.post(SYNC_URL).mock(side_effect=httpx.ConnectError("refused"))
            with pytest.raises(ProviderUnavailable) as info:
                await Fal(key=KEY).generate(ImageRequest(prompt="x"), ctx)
        assert info.value.retryable

    @pytest.mark.parametrize(
        ("status", "body", "headers", "cls", "retryable"),
        [
            pytest.param(
                504,
                {"detail": "Request timed out", "error_type": "request_timeout"},
                {"X-Fal-Error-Type": "request_timeout"},
                ProviderTimeout,
                True,
                id="504-request_timeout",
            ),
            pytest.param(
                504,
                {"detail": "Runner did not start", "error_type": "startup_timeout"},
                {"X-Fal-Error-Type": "startup_timeout"},
                ProviderTimeout,
                True,
                id="504-startup_timeout",
            ),
            pytest.param(
                503,
                {"detail": "No runner", "error_type": "runner_scheduling_failure"},
                {"X-Fal-Error-Type": "runner_scheduling_failure"},
                ProviderUnavailable,
                True,
                id="503-runner_scheduling_failure",
            ),
            pytest.param(
                503,
                {"detail": "Timeout", "error_type": "runner_connection_timeout"},
                {"X-Fal-Error-Type": "runner_connection_timeout"},
                ProviderUnavailable,
                True,
                id="503-runner_connection_timeout",
            ),
            pytest.param(
                503,
                {"detail": "Runner gone", "error_type": "runner_disconnected"},
                {"X-Fal-Error-Type": "runner_disconnected"},
                ProviderUnavailable,
                True,
                id="503-runner_disconnected",
            ),
            pytest.param(
                503,
                {"detail": "Runner gone", "error_type": "runner_disconnected"},
                {},
                ProviderUnavailable,
                True,
                id="error_type-in-body-only",
            ),
            pytest.param(
                503,
                {"detail": "Runner gone", "error_type": "runner_disconnected"},
                {"X-Fal-Error-Type": "runner_disconnected", "X-Fal-Retryable": "false"},
                ProviderUnavailable,
                False,
                id="x-fal-retryable-false-wins",
            ),
            pytest.param(500, {"detail": "boom"}, {}, ProviderUnavailable, False, id="500-bare"),
            pytest.param(
                500,
                {"detail": "boom"},
                {"X-Fal-Retryable": "true"},
                ProviderUnavailable,
                True,
                id="500-x-fal-retryable",
            ),
            pytest.param(
                502,
                None,
                {"X-Fal-Needs-Retry": "true"},
                ProviderUnavailable,
                True,
                id="502-x-fal-needs-retry",
            ),
            pytest.param(
                503,
                {"detail": "busy"},
                {"Retry-After": "3"},
                ProviderUnavailable,
                True,
                id="503-retry-after",
            ),
            pytest.param(422, VALIDATION, {}, ProviderError, False, id="422-validation"),
            pytest.param(
                422, None, {"X-Fal-Retryable": "maybe"}, ProviderError, False, id="422-no-body"
            ),
            pytest.param(
                422,
                {
                    "detail": [
                        {
                            "loc": ["body", "prompt"],
                            "msg": "The content could not be processed",
                            "type": "content_policy_violation",
                            "ctx": {"categories": ["sexual"]},
                        }
                    ]
                },
                {},
                ContentRejected,
                False,
                id="422-content_policy_violation",
            ),
            pytest.param(
                422,
                VALIDATION,
                {"X-Fal-Retryable": "true"},
                ProviderError,
                True,
                id="422-x-fal-retryable",
            ),
            pytest.param(
                400,
                {"detail": "Content policy violation detected"},
                {},
                ContentRejected,
                False,
                id="400-string-detail-policy",
            ),
            pytest.param(
                400, {"detail": "Invalid image_size"}, {}, ProviderError, False, id="400-string"
            ),
            pytest.param(
                408, {}, {"X-Fal-Retryable": "false"}, ProviderTimeout, False, id="408-hint"
            ),
            pytest.param(401, {"detail": "Unauthorized"}, {}, ProviderAuthError, False, id="401"),
            pytest.param(403, {"detail": "Forbidden"}, {}, ProviderAuthError, False, id="403"),
            pytest.param(
                403,
                {
                    "detail": "User is locked. Reason: Exhausted balance. "
                    "Top up your balance at fal.ai/dashboard/billing."
                },
                {},
                ProviderQuotaExceeded,
                False,
                id="403-exhausted-balance",
            ),
            pytest.param(
                403,
                {"detail": "User is locked. Reason: TOP_UP."},
                {},
                ProviderQuotaExceeded,
                False,
                id="403-top-up",
            ),
            pytest.param(
                429,
                {"detail": "Too many requests"},
                {"Retry-After": "4", "X-Fal-Retryable": "false"},
                ProviderRateLimited,
                True,
                id="429",
            ),
        ],
    )
    async def test_error_shapes(
        self,
        clock: FakeClock,
        status: int,
        body: Any,
        headers: dict[str, str],
        cls: type[ProviderError],
        retryable: bool,
    ) -> None:
        """Each fal error shape on the sync create maps to its class and retry verdict."""
        kwargs: dict[str, Any] = {"headers": headers}
        if body is not None:
            kwargs["json"] = body
        async with session(clock, seconds=15) as (mock, ctx, _):
            mock.post(SYNC_URL).respond(status, **kwargs)
            with pytest.raises(ProviderError) as info:
                await Fal(key=KEY).generate(ImageRequest(prompt="x"), ctx)
        error = info.value
        assert type(error) is cls
        assert error.retryable is retryable
        assert (error.status, error.provider) == (status, "fal")
        if "Retry-After" in headers:
            assert error.retry_after == float(headers["Retry-After"])
        if body is VALIDATION:
            assert "body.prompt: field required" in str(error)

    async def test_errors_never_echo_the_key(self, clock: FakeClock) -> None:
        """A body quoting the key (or its secret) does not leak it into the error."""
        async with session(clock, seconds=15) as (mock, ctx, _):
            mock.post(SYNC_URL).respond(401, json={"detail": f"bad key {KEY}"})
            with pytest.raises(ProviderAuthError) as info:
                await Fal(key=KEY).generate(ImageRequest(prompt="x"), ctx)
        assert "5e6f7a8b" not in str(info.value)


def queue_routes(
    mock: respx.MockRouter, clock: FakeClock, *statuses: httpx.Response
) -> tuple[respx.Route, respx.Route, respx.Route, list[float]]:
    """Submit, status (answering ``statuses`` in order) and result routes of the vector."""
    submit = mock.post(url__startswith=SUBMIT_URL).respond(200, json=SUBMITTED)
    times, answer = stamped(clock, *statuses)
    status = mock.get(url__startswith=f"{REQUESTS}/status").mock(side_effect=answer)
    result = mock.get(REQUESTS).respond(200, json=OUTPUT)
    return submit, status, result, times


@pytest.mark.anyio
class TestQueue:
    async def test_vector_flow(self, clock: FakeClock) -> None:
        """Submit with the webhook, report the request, poll IN_PROGRESS then COMPLETED, fetch."""
        async with session(clock) as (mock, ctx, started):
            submit, status, result, times = queue_routes(
                mock,
                clock,
                httpx.Response(202, json=IN_PROGRESS),
                httpx.Response(200, json=COMPLETED),
            )
            fal = Fal(key=KEY, queue=True, webhook_url=WEBHOOK)
            image = await fal.generate(vector_request(), ctx)
        sent = submit.calls.last.request
        assert str(sent.url) == f"{SUBMIT_URL}?fal_webhook=https%3A%2F%2Fexample.com%2Fhooks%2Ffal"
        assert sent.headers["authorization"] == f"Key {KEY}"
        assert sent.headers["content-type"] == "application/json"
        assert body_of(sent) == {
            **VECTOR_BODY,
            "output_format": "jpeg",
            "enable_safety_checker": True,
        }
        handle = FalRequest(REQUEST_ID, f"{REQUESTS}/status", REQUESTS, f"{REQUESTS}/cancel")
        assert started == [handle]
        assert [str(c.request.url) for c in status.calls] == [f"{REQUESTS}/status?logs=1"] * 2
        assert all(c.request.headers["authorization"] == f"Key {KEY}" for c in status.calls)
        assert result.call_count == 1
        # With a webhook, polls are the safety net: after 5 s, then x1.5 (capped at 15 s).
        assert times == [5.0, 12.5]
        assert image.url == OUTPUT["images"][0]["url"]  # type: ignore[index]
        assert (image.width, image.height, image.seed, image.handle) == (1024, 768, 1234567, handle)

    async def test_long_deadline_uses_the_queue(self, clock: FakeClock) -> None:
        """With more than queue_threshold seconds left, queue=False still goes through the queue."""
        async with session(clock, seconds=21) as (mock, ctx, started):
            submit, _, _, _ = queue_routes(mock, clock, httpx.Response(200, json=COMPLETED))
            sync = mock.post(SYNC_URL).respond(200, json=OUTPUT)
            await Fal(key=KEY).generate(ImageRequest(prompt="x"), ctx)
        assert submit.called
        assert not sync.called
        assert "fal_webhook" not in str(submit.calls.last.request.url)
        assert len(started) == 1

    async def test_short_deadline_goes_direct(self, clock: FakeClock) -> None:
        """With queue_threshold seconds or fewer left, the call goes to the sync host."""
        async with session(clock, seconds=20) as (mock, ctx, _):
            submit, _, _, _ = queue_routes(mock, clock, httpx.Response(200, json=COMPLETED))
            sync = mock.post(SYNC_URL).respond(200, json=OUTPUT)
            await Fal(key=KEY).generate(ImageRequest(prompt="x"), ctx)
        assert sync.called
        assert not submit.called

    async def test_context_webhook(self, clock: FakeClock) -> None:
        """Without webhook_url, the generator's ctx.webhook_url is passed as fal_webhook."""
        async with session(clock, webhook_url="https://hooks.example/fal") as (mock, ctx, _):
            submit, _, _, _ = queue_routes(mock, clock, httpx.Response(200, json=COMPLETED))
            await Fal(key=KEY, queue=True).generate(ImageRequest(prompt="x"), ctx)
        assert submit.calls.last.request.url.params["fal_webhook"] == "https://hooks.example/fal"

    async def test_in_queue_then_done(
        self, clock: FakeClock, caplog: pytest.LogCaptureFixture
    ) -> None:
        """IN_QUEUE (with its position) and unknown states are polled again."""
        caplog.set_level(logging.DEBUG, logger="imagegen.providers")
        async with session(clock) as (mock, ctx, _):
            _, status, _, _ = queue_routes(
                mock,
                clock,
                httpx.Response(202, json={"status": "IN_QUEUE", "queue_position": 3}),
                httpx.Response(202, json={"status": "SOMETHING_NEW"}),
                httpx.Response(200, json=COMPLETED),
            )
            await Fal(key=KEY, queue=True).generate(ImageRequest(prompt="x"), ctx)
        assert status.call_count == 3
        assert "queued at position 3" in caplog.text

    async def test_backoff_grows_and_caps(self, clock: FakeClock) -> None:
        """Polls wait poll_interval, then 1.5x more each time, capped at 5 seconds."""
        queued = httpx.Response(202, json={"status": "IN_QUEUE", "queue_position": 0})
        async with session(clock, seconds=120) as (mock, ctx, _):
            _, _, _, times = queue_routes(
                mock, clock, *[queued] * 8, httpx.Response(200, json=COMPLETED)
            )
            await Fal(key=KEY, queue=True, poll_interval=1.0).generate(
                ImageRequest(prompt="x"), ctx
            )
        gaps = [round(b - a, 4) for a, b in zip([0.0, *times], times, strict=False)]
        assert gaps == [1.0, 1.5, 2.25, 3.375, 5.0, 5.0, 5.0, 5.0, 5.0]

    async def test_never_polls_past_the_deadline(self, clock: FakeClock) -> None:
        """A request still queued at the deadline is a ProviderTimeout raised before it."""
        queued = httpx.Response(202, json={"status": "IN_QUEUE", "queue_position": 9})
        async with session(clock, seconds=10) as (mock, ctx, started):
            _, _, _, times = queue_routes(mock, clock, queued)
            with pytest.raises(ProviderTimeout) as info:
                await Fal(key=KEY, queue=True).generate(ImageRequest(prompt="x"), ctx)
        assert not info.value.retryable
        assert started  # the generator will cancel it
        assert times
        assert max(times) < 10
        assert clock.monotonic() < 10

    async def test_foreign_or_missing_urls_are_rebuilt(self, clock: FakeClock) -> None:
        """URLs on another host, or missing, are rebuilt on queue_url without the subpath."""
        submitted = {
            "request_id": "r1",
            "status_url": "https://evil.example/steal/status",
            "cancel_url": "http://queue.fal.run/workflows/me/pipe/requests/r1/cancel",
        }
        async with session(clock) as (mock, ctx, started):
            mock.post("https://gw.example/workflows/me/pipe/step").respond(200, json=submitted)
            base = "https://gw.example/workflows/me/pipe/requests/r1"
            status = mock.get(f"{base}/status").respond(200, json=COMPLETED)
            evil = mock.get(url__startswith="https://evil.example").respond(200, json=COMPLETED)
            mock.get(base).respond(200, json=OUTPUT)
            fal = Fal(
                key=KEY, app="workflows/me/pipe/step", queue_url="https://gw.example/", queue=True
            )
            await fal.generate(ImageRequest(prompt="x"), ctx)
        assert started == [FalRequest("r1", f"{base}/status", base, f"{base}/cancel")]
        assert status.called
        assert not evil.called

    @pytest.mark.parametrize("answer", [{"status": "IN_QUEUE"}, {"request_id": 7}, ["x"]])
    async def test_submit_without_request_id(self, clock: FakeClock, answer: Any) -> None:
        """A submit answer without a request id fails unretried, with nothing to cancel."""
        async with session(clock) as (mock, ctx, started):
            mock.post(url__startswith=SUBMIT_URL).respond(200, json=answer)
            with pytest.raises(ProviderError) as info:
                await Fal(key=KEY, queue=True).generate(ImageRequest(prompt="x"), ctx)
        assert not info.value.retryable
        assert started == []

    @pytest.mark.parametrize(
        ("completed", "cls"),
        [
            (
                {"error": "Runner disconnected", "error_type": "runner_disconnected"},
                ProviderUnavailable,
            ),
            ({"error": "Request timed out", "error_type": "request_timeout"}, ProviderTimeout),
            ({"error": "Content policy violation", "error_type": "whatever"}, ContentRejected),
            ({"error_type": "content_policy_violation"}, ContentRejected),
        ],
    )
    async def test_completed_with_error(
        self, clock: FakeClock, completed: dict[str, str], cls: type[ProviderError]
    ) -> None:
        """COMPLETED carrying error/error_type fails unretried, without fetching an output."""
        async with session(clock) as (mock, ctx, _):
            _, _, result, _ = queue_routes(
                mock, clock, httpx.Response(200, json={**COMPLETED, **completed})
            )
            with pytest.raises(ProviderError) as info:
                await Fal(key=KEY, queue=True).generate(ImageRequest(prompt="x"), ctx)
        assert type(info.value) is cls
        assert not info.value.retryable
        assert not result.called

    @pytest.mark.parametrize(
        ("status", "body", "cls"),
        [
            (
                422,
                {"detail": [{"msg": "unsafe", "type": "content_policy_violation"}]},
                ContentRejected,
            ),
            (422, VALIDATION, ProviderError),
            (500, {"detail": "stored failure"}, ProviderUnavailable),
            (200, OUTPUT, ProviderError),
        ],
    )
    async def test_model_error_reads_the_result(
        self, clock: FakeClock, status: int, body: Any, cls: type[ProviderError]
    ) -> None:
        """A model error is classified from the result URL's answer, fetched once."""
        failed = {**COMPLETED, "error": "Invalid status code: 422"}
        async with session(clock) as (mock, ctx, _):
            _, _, result, _ = queue_routes(mock, clock, httpx.Response(200, json=failed))
            result.respond(status, json=body)
            with pytest.raises(ProviderError) as info:
                await Fal(key=KEY, queue=True).generate(ImageRequest(prompt="x"), ctx)
        assert type(info.value) is cls
        assert result.call_count == 1

    async def test_transient_poll_errors_are_retried(self, clock: FakeClock) -> None:
        """Three transient failures in a row (5xx, bad JSON, timeout) are ridden out."""
        async with session(clock) as (mock, ctx, _):
            _, status, result, _ = queue_routes(
                mock,
                clock,
                httpx.Response(503, json={"detail": "busy"}),
                httpx.Response(200, content=b"<html>"),
                httpx.Response(502),
                httpx.Response(202, json=IN_PROGRESS),
                httpx.Response(500),
                httpx.Response(200, json=COMPLETED),
            )
            result.side_effect = [httpx.ReadTimeout("slow"), httpx.Response(200, json=OUTPUT)]
            image = await Fal(key=KEY, queue=True).generate(ImageRequest(prompt="x"), ctx)
        assert status.call_count == 6
        assert result.call_count == 2
        assert image.seed == 1234567

    async def test_fourth_transient_failure_raises(self, clock: FakeClock) -> None:
        """A fourth consecutive transient failure ends the attempt."""
        async with session(clock) as (mock, ctx, _):
            _, status, _, _ = queue_routes(
                mock, clock, httpx.Response(503, json={"detail": "busy"})
            )
            with pytest.raises(ProviderUnavailable):
                await Fal(key=KEY, queue=True).generate(ImageRequest(prompt="x"), ctx)
        assert status.call_count == 4

    async def test_poll_retries_stop_at_the_deadline(self, clock: FakeClock) -> None:
        """A transient failure with no time left for another try is a ProviderTimeout."""
        async with session(clock, seconds=1.0) as (mock, ctx, _):
            _, status, _, _ = queue_routes(mock, clock, httpx.Response(503))
            with pytest.raises(ProviderTimeout):
                await Fal(key=KEY, queue=True).generate(ImageRequest(prompt="x"), ctx)
        assert status.call_count == 2  # at 0.5 s, and at 0.75 s, the last chance
        assert clock.monotonic() == 0.75

    async def test_fatal_poll_error_raises_at_once(self, clock: FakeClock) -> None:
        """A 401 while polling is not retried."""
        async with session(clock) as (mock, ctx, _):
            _, status, _, _ = queue_routes(mock, clock, httpx.Response(401, json={"detail": "no"}))
            with pytest.raises(ProviderAuthError):
                await Fal(key=KEY, queue=True).generate(ImageRequest(prompt="x"), ctx)
        assert status.call_count == 1


HANDLE = FalRequest(REQUEST_ID, f"{REQUESTS}/status", REQUESTS, f"{REQUESTS}/cancel")


@pytest.mark.anyio
class TestCancel:
    async def test_put_cancel_url(self, clock: FakeClock) -> None:
        """cancel() PUTs the cancel URL with the key."""
        async with session(clock) as (mock, ctx, _):
            route = mock.put(f"{REQUESTS}/cancel").respond(
                202, json={"status": "CANCELLATION_REQUESTED"}
            )
            await Fal(key=KEY).cancel(HANDLE, ctx)
        assert route.calls.last.request.headers["authorization"] == f"Key {KEY}"

    @pytest.mark.parametrize("status", [400, 404])
    async def test_finished_requests_are_left_be(self, clock: FakeClock, status: int) -> None:
        """ALREADY_COMPLETED (400) and NOT_FOUND (404) answers are not errors."""
        async with session(clock) as (mock, ctx, _):
            mock.put(f"{REQUESTS}/cancel").respond(status, json={"status": "ALREADY_COMPLETED"})
            await Fal(key=KEY).cancel(HANDLE, ctx)

    async def test_other_failures_raise(self, clock: FakeClock) -> None:
        """A 5xx on cancel is raised (the generator logs it)."""
        async with session(clock) as (mock, ctx, _):
            mock.put(f"{REQUESTS}/cancel").respond(500)
            with pytest.raises(ProviderUnavailable):
                await Fal(key=KEY).cancel(HANDLE, ctx)

    async def test_foreign_handles_are_ignored(self, clock: FakeClock) -> None:
        """A handle that is not a FalRequest sends nothing."""
        async with session(clock) as (mock, ctx, _):
            route = mock.route()
            await Fal(key=KEY).cancel("not-ours", ctx)
        assert not route.called


@pytest.mark.anyio
class TestCheck:
    async def test_key_accepted(self, clock: FakeClock) -> None:
        """check() GETs fal's pricing for the app with the key, and passes on 200."""
        pricing = {
            "prices": [
                {
                    "endpoint_id": "fal-ai/flux/schnell",
                    "unit_price": 0.003,
                    "unit": "megapixels",
                    "currency": "USD",
                }
            ],
            "next_cursor": None,
            "has_more": False,
        }
        async with session(clock) as (mock, ctx, _):
            route = mock.get(url__startswith=PRICING_URL).respond(200, json=pricing)
            await Fal(key=KEY).check(ctx)
        sent = route.calls.last.request
        assert str(sent.url) == f"{PRICING_URL}?endpoint_id=fal-ai%2Fflux%2Fschnell"
        assert sent.headers["authorization"] == f"Key {KEY}"
        assert sent.headers["user-agent"].startswith("imagegen")

    @pytest.mark.parametrize(
        ("status", "body", "cls"),
        [
            (401, {"detail": "Invalid API key"}, ProviderAuthError),
            (403, {"detail": "Forbidden"}, ProviderAuthError),
            (403, {"detail": "User is locked. Reason: Exhausted balance."}, ProviderQuotaExceeded),
            (429, {"detail": "slow down"}, ProviderRateLimited),
            (503, {"detail": "down"}, ProviderUnavailable),
        ],
    )
    async def test_failures(
        self, clock: FakeClock, status: int, body: Any, cls: type[ProviderError]
    ) -> None:
        """Refused keys, locks, throttling and outages raise their mapped error."""
        async with session(clock) as (mock, ctx, _):
            mock.get(url__startswith=PRICING_URL).respond(status, json=body)
            with pytest.raises(cls):
                await Fal(key=KEY).check(ctx)

    async def test_unknown_app_only_logs(
        self, clock: FakeClock, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A key that passed auth but an app the pricing list lacks is logged, not raised."""
        async with session(clock) as (mock, ctx, _):
            mock.get(url__startswith=PRICING_URL).respond(404, json={"detail": "Not found"})
            await Fal(key=KEY, app="me/private-app").check(ctx)
        assert "pricing lookup" in caplog.text

    async def test_platform_url_can_be_moved(self, clock: FakeClock) -> None:
        """Gateways set platform_url; check() then asks there."""
        fal = Fal(key=KEY)
        fal.platform_url = "https://gw.example/fal-platform/"
        async with session(clock) as (mock, ctx, _):
            route = mock.get(
                url__startswith="https://gw.example/fal-platform/models/pricing"
            ).respond(200, json={})
            await fal.check(ctx)
        assert route.called


GATEWAY = "https://gw.example/fal"


@pytest.mark.anyio
class TestGateways:
    """A base_url of one's own moves the queue and the Platform API beside it."""

    @pytest.mark.parametrize(
        ("base_url", "queue_url", "platform_url"),
        [
            ("https://fal.run", "https://queue.fal.run", "https://api.fal.ai/v1"),
            ("https://FAL.run/", "https://queue.fal.run", "https://api.fal.ai/v1"),
            (f"{GATEWAY}/run", f"{GATEWAY}/queue", f"{GATEWAY}/v1"),
            (f"{GATEWAY}/run/", f"{GATEWAY}/queue", f"{GATEWAY}/v1"),
            (GATEWAY, f"{GATEWAY}/queue", f"{GATEWAY}/v1"),
            ("http://127.0.0.1:8765", "http://127.0.0.1:8765/queue", "http://127.0.0.1:8765/v1"),
            ("https://gw.example/rerun", "https://gw.example/rerun/queue", "https://gw.example/rerun/v1"),
        ],
    )  # fmt: skip
    def test_hosts_follow_base_url(self, base_url: str, queue_url: str, platform_url: str) -> None:
        """fal's own base_url keeps fal's hosts; any other puts them beside it."""
        fal = Fal(key=KEY, base_url=base_url)
        assert (fal.queue_url, fal.platform_url) == (queue_url, platform_url)

    def test_given_hosts_win(self) -> None:
        """queue_url and platform_url, when given, are used as they are."""
        fal = Fal(
            key=KEY,
            base_url=f"{GATEWAY}/run",
            queue_url="https://q.example/",
            platform_url="https://p.example/v1/",
        )
        assert (fal.queue_url, fal.platform_url) == ("https://q.example", "https://p.example/v1")

    async def test_check_asks_the_gateway(self, clock: FakeClock) -> None:
        """With a gateway's base_url, check() never asks api.fal.ai (unmocked: it would raise)."""
        async with session(clock) as (mock, ctx, _):
            route = mock.get(f"{GATEWAY}/v1/models/pricing").respond(200, json={"prices": []})
            await Fal(key=KEY, base_url=f"{GATEWAY}/run").check(ctx)
        assert route.calls.last.request.url.params["endpoint_id"] == "fal-ai/flux/schnell"
        assert route.calls.last.request.headers["authorization"] == f"Key {KEY}"

    async def test_check_refused_by_the_gateway(self, clock: FakeClock) -> None:
        """The gateway's 401 is a ProviderAuthError, as fal's would be."""
        async with session(clock) as (mock, ctx, _):
            mock.get(f"{GATEWAY}/v1/models/pricing").respond(401, json={"detail": "bad key"})
            with pytest.raises(ProviderAuthError):
                await Fal(key=KEY, base_url=f"{GATEWAY}/run").check(ctx)

    async def test_queue_goes_to_the_gateway(self, clock: FakeClock) -> None:
        """A queued request is submitted to, polled on and fetched from the gateway only."""
        requests = f"{GATEWAY}/queue/fal-ai/flux/requests/{REQUEST_ID}"
        submitted = {**SUBMITTED, "status_url": f"{requests}/status", "response_url": requests}
        async with session(clock) as (mock, ctx, _):
            submit = mock.post(f"{GATEWAY}/queue/fal-ai/flux/schnell").respond(200, json=submitted)
            mock.get(f"{requests}/status").respond(200, json=COMPLETED)
            mock.get(requests).respond(200, json=OUTPUT)
            fal = Fal(key=KEY, base_url=f"{GATEWAY}/run", queue=True)
            image = await fal.generate(ImageRequest(prompt="x"), ctx)
        assert submit.called
        assert image.url == OUTPUT["images"][0]["url"]

    def test_credentials_in_the_hosts_are_hidden_in_logs(self) -> None:
        """Passwords and query values of queue_url and platform_url are masked like the key."""
        fal = Fal(
            key=KEY,
            queue_url="https://u:queue-secret@q.example",
            platform_url="https://p.example/v1?token=platform-secret",
        )
        assert {"queue-secret", "platform-secret", KEY} <= set(fal.log_secrets())


def cdn_output(url: str = CDN_URL) -> dict[str, Any]:
    return {
        **OUTPUT,
        "images": [{"url": url, "width": 8, "height": 8, "content_type": "image/png"}],
    }


@pytest.mark.anyio
@pytest.mark.usefixtures("public_dns")
class TestThroughGenerator:
    async def test_sync_image_arrives(self, clock: FakeClock) -> None:
        """A direct fal call's output URL is downloaded into the result."""
        async with httpx.AsyncClient() as http:
            with respx.mock(assert_all_called=False) as mock:
                mock.post(SYNC_URL).respond(200, json=cdn_output())
                cdn = mock.get(CDN_URL).respond(
                    200, content=tiny_png(), headers={"Content-Type": "image/png"}
                )
                gen = ImageGenerator(
                    providers=[Fal(key=KEY)],
                    http=http,
                    storage=None,
                    download=DownloadPolicy(),
                    clock=clock,
                    timeout=15.0,
                )
                result = await gen.generate("a red fox", width=512, height=512)
        assert result.provider == "fal"
        assert result.data == tiny_png()
        assert (result.width, result.height) == (8, 8)
        assert result.source_url == CDN_URL
        assert "authorization" not in cdn.calls.last.request.headers

    async def test_queued_image_arrives(self, clock: FakeClock) -> None:
        """A queued fal call polls through to the image with a long deadline."""
        async with httpx.AsyncClient() as http:
            with respx.mock(assert_all_called=False) as mock:
                submit, _, result_route, _ = queue_routes(
                    mock,
                    clock,
                    httpx.Response(202, json=IN_PROGRESS),
                    httpx.Response(200, json=COMPLETED),
                )
                result_route.respond(200, json=cdn_output())
                mock.get(CDN_URL).respond(
                    200, content=tiny_png(), headers={"Content-Type": "image/png"}
                )
                gen = ImageGenerator(
                    providers=[Fal(key=KEY)], http=http, storage=None, clock=clock, timeout=60.0
                )
                result = await gen.generate(PROMPT, width=1024, height=768, seed=1234567)
        assert submit.called
        assert result.provider == "fal"
        assert result.data == tiny_png()

    async def test_lost_race_cancels_the_queued_request(self, clock: FakeClock) -> None:
        """When another provider wins the race, fal's queued request is cancelled with PUT."""
        async with httpx.AsyncClient() as http:
            with respx.mock(assert_all_called=False) as mock:
                queue_routes(
                    mock,
                    clock,
                    httpx.Response(202, json={"status": "IN_QUEUE", "queue_position": 5}),
                )
                cancel = mock.put(f"{REQUESTS}/cancel").respond(
                    202, json={"status": "CANCELLATION_REQUESTED"}
                )
                gen = ImageGenerator(
                    providers=[Fal(key=KEY, queue=True), slow("fast", 2.0)],
                    strategy=Race(),
                    http=http,
                    storage=None,
                    clock=clock,
                )
                result = await gen.generate("a red fox")
        assert result.provider == "fast"
        assert cancel.call_count == 1
        assert cancel.calls.last.request.headers["authorization"] == f"Key {KEY}"
        fal_attempt = next(a for a in result.attempts if a.provider == "fal")
        assert fal_attempt.outcome == "cancelled"

    async def test_race_lost_during_the_submit_still_cancels(self, clock: FakeClock) -> None:
        """A submit in flight when the race is lost finishes in the background, then is undone."""

        async def slow_submit(_: httpx.Request) -> httpx.Response:
            await clock.sleep(3.0)
            return httpx.Response(200, json=SUBMITTED)

        async with httpx.AsyncClient() as http:
            with respx.mock(assert_all_called=False) as mock:
                submit = mock.post(SUBMIT_URL).mock(side_effect=slow_submit)
                cancel = mock.put(f"{REQUESTS}/cancel").respond(
                    202, json={"status": "CANCELLATION_REQUESTED"}
                )
                async with ImageGenerator(
                    providers=[Fal(key=KEY, queue=True), slow("fast", 1.0)],
                    strategy=Race(),
                    http=http,
                    clock=clock,
                ) as gen:
                    result = await gen.generate("a red fox")
                    assert (result.provider, clock.monotonic()) == ("fast", 1.0)
        assert submit.call_count == 1
        assert cancel.call_count == 1

    async def test_failed_queued_request_is_not_retried(self, clock: FakeClock) -> None:
        """A failed queued request is cancelled, not submitted again; the next tier serves."""
        async with httpx.AsyncClient() as http:
            with respx.mock(assert_all_called=False) as mock:
                submit, _, _, _ = queue_routes(
                    mock, clock, *[httpx.Response(503, json={"detail": "busy"})] * 4
                )
                cancel = mock.put(f"{REQUESTS}/cancel").respond(
                    202, json={"status": "CANCELLATION_REQUESTED"}
                )
                gen = ImageGenerator(
                    providers=[Fal(key=KEY, queue=True), slow("backup", 0.1, tier=1)],
                    retry=Retry(attempts=3, jitter=False),
                    http=http,
                    storage=None,
                    clock=clock,
                )
                result = await gen.generate("a red fox")
        assert result.provider == "backup"
        assert submit.call_count == 1
        assert cancel.call_count == 1
