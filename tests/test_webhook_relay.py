"""Webhooks across processes, out of order, late and twice; fal's signed and token deliveries."""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import parse_qs, urlsplit

import anyio
import httpx
import pytest
import respx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from imagegen import (
    AllProvidersFailed,
    ContentRejected,
    Fal,
    ImageGenerator,
    InvalidConfig,
    MemoryState,
    ProviderError,
    ProviderUnavailable,
    Replicate,
    WebhookVerificationError,
)
from imagegen._relay import RELAY_INTERVAL
from imagegen._webhooks import sign_standard_webhook
from imagegen.providers import ProviderContext
from imagegen.testing import FakeClock, tiny_png

pytestmark = pytest.mark.anyio

EPOCH = 1_767_225_600  # FakeClock's time() at monotonic 0

# Replicate (its documented test vectors)
TOKEN = "r8_TESTTOKEN"
SECRET = "whsec_No+iZL/VrSq7QMlMxlzKipmkpSFqaI2VbNVyUrfAX8M="
PREDICTION_ID = "q7x3k9m2ydrj00cmz8ab1c2d3e"
BASE = "https://api.replicate.com/v1"
CREATE_URL = f"{BASE}/models/black-forest-labs/flux-schnell/predictions"
GET_URL = f"{BASE}/predictions/{PREDICTION_ID}"
OUTPUT_URL = "https://replicate.delivery/xezq/abc123/out-0.webp"
HOOK = "https://example.com/hooks/replicate"

# fal (its documented test vectors)
FAL_KEY = "1a2b3c4d:5e6f7a8b"
REQUEST_ID = "6f1d2c3b-4a5e-4f60-8a9b-0c1d2e3f4a5b"
REQUESTS = f"https://queue.fal.run/fal-ai/flux/requests/{REQUEST_ID}"
SUBMIT_URL = "https://queue.fal.run/fal-ai/flux/schnell"
FAL_HOOK = "https://example.com/hooks/fal"
JWKS_URL = "https://rest.alpha.fal.ai/.well-known/jwks.json"
FAL_IMAGE = "https://v3.fal.media/files/tiger/Xy12ab34.jpeg"
JWKS = {
    "keys": [{"kty": "OKP", "crv": "Ed25519", "x": "DTrDdcJOkuW54UHhpg3vz3Va27SIxm4EbTfjBHTRZ98"}]
}
FAL_SEED = bytes.fromhex("3ac61c05474f8d296ac957b07ca21b02d07dfef4b94a02b405bfdfa9202dbb8a")
FAL_BODY = (
    b'{"request_id":"6f1d2c3b-4a5e-4f60-8a9b-0c1d2e3f4a5b","gateway_request_id":'
    b'"6f1d2c3b-4a5e-4f60-8a9b-0c1d2e3f4a5b","status":"OK","payload":{"images":[{"url":'
    b'"https://v3.fal.media/files/tiger/Xy12ab34.jpeg","width":1024,"height":768,'
    b'"content_type":"image/jpeg"}],"timings":{"inference":0.41},"seed":1234567,'
    b'"has_nsfw_concepts":[false],"prompt":"a red bicycle leaning on a brick wall"}}'
)
FAL_SIGNED = {
    "X-Fal-Webhook-Request-Id": REQUEST_ID,
    "X-Fal-Webhook-User-Id": "user_test_42",
    "X-Fal-Webhook-Timestamp": str(EPOCH),
    "X-Fal-Webhook-Signature": (
        "21a16a19be893fa01f426f67e2a4d5bd02ae028bf2923f2a92494f9a87787ffe"
        "2894228a90aae9a30d686206a549dfc2250673f9d8418568a77e347547f84004"
    ),
}
SUBMITTED = {
    "request_id": REQUEST_ID,
    "status": "IN_QUEUE",
    "response_url": REQUESTS,
    "status_url": f"{REQUESTS}/status",
    "cancel_url": f"{REQUESTS}/cancel",
}


def prediction(status: str) -> dict[str, Any]:
    return {
        "id": PREDICTION_ID,
        "status": status,
        "output": [OUTPUT_URL] if status == "succeeded" else None,
        "error": "it broke" if status == "failed" else None,
        "urls": {"get": GET_URL, "cancel": f"{GET_URL}/cancel"},
    }


def signed(body: bytes, msg_id: str = "msg_1", at: int = EPOCH) -> dict[str, str]:
    return {
        "Webhook-Id": msg_id,
        "Webhook-Timestamp": str(at),
        "Webhook-Signature": sign_standard_webhook(SECRET, msg_id, at, body),
    }


def fal_signed(body: bytes, *, at: int = EPOCH) -> dict[str, str]:
    """Sign a fal delivery with the documented test seed."""
    key = Ed25519PrivateKey.from_private_bytes(FAL_SEED)
    message = f"{REQUEST_ID}\nuser_test_42\n{at}\n{hashlib.sha256(body).hexdigest()}"
    return {
        **FAL_SIGNED,
        "X-Fal-Webhook-Timestamp": str(at),
        "X-Fal-Webhook-Signature": key.sign(message.encode()).hex(),
    }


def replicate() -> Replicate:
    return Replicate(api_token=TOKEN, webhook_url=HOOK, webhook_secret=SECRET)


@asynccontextmanager
async def two_processes(
    clock: FakeClock, make: Any
) -> AsyncIterator[tuple[ImageGenerator, ImageGenerator]]:
    """Two generators on one state backend, as two processes on one Redis would be."""
    state = MemoryState()
    async with (
        httpx.AsyncClient() as http,
        ImageGenerator(providers=[make()], http=http, clock=clock, state=state) as here,
        ImageGenerator(providers=[make()], http=http, clock=clock, state=state) as there,
    ):
        yield here, there


async def failure_of(gen: ImageGenerator, callback: Any) -> AllProvidersFailed:
    """Run ``callback`` beside a generation expected to fail; the error it raised."""
    failure: list[AllProvidersFailed] = []

    async def generate() -> None:
        try:
            await gen.generate("a red bicycle")
        except AllProvidersFailed as exc:
            failure.append(exc)

    async with anyio.create_task_group() as tg:
        tg.start_soon(callback)
        tg.start_soon(generate)
    (error,) = failure
    return error


class TestAcrossProcesses:
    """A delivery landing in another process completes the attempt waiting here."""

    async def test_parked_delivery_completes_the_generation(
        self, clock: FakeClock, public_dns: None
    ) -> None:
        """The other process parks it; this one picks it up within a second, with no poll."""
        body = json.dumps(prediction("succeeded")).encode()
        outcomes: list[str] = []
        with respx.mock(assert_all_called=False) as mock:
            mock.post(CREATE_URL).respond(201, json=prediction("starting"))
            poll = mock.get(GET_URL).respond(200, json=prediction("processing"))
            mock.get(OUTPUT_URL).respond(200, content=tiny_png())
            async with two_processes(clock, replicate) as (here, there):

                async def callback() -> None:
                    await clock.sleep(1.5)
                    outcomes.append(await there.handle_webhook("replicate", signed(body), body))

                async with anyio.create_task_group() as tg:
                    tg.start_soon(callback)
                    result = await here.generate("a red bicycle")
        assert outcomes == ["parked"]
        assert result.provider == "replicate"
        assert poll.call_count == 0
        assert 1.5 <= result.elapsed <= 1.5 + RELAY_INTERVAL

    async def test_job_submitted_here_completed_by_a_webhook_there(
        self, clock: FakeClock, public_dns: None
    ) -> None:
        """A job's outcome is readable from the process that took the webhook."""
        body = json.dumps(prediction("succeeded")).encode()
        with respx.mock(assert_all_called=False) as mock:
            mock.post(CREATE_URL).respond(201, json=prediction("starting"))
            mock.get(GET_URL).respond(200, json=prediction("processing"))
            mock.get(OUTPUT_URL).respond(200, content=tiny_png())
            async with two_processes(clock, replicate) as (here, there):
                job_id = await here.submit("a red bicycle")
                await clock.sleep(2.0)
                assert (await there.job(job_id)).status == "running"  # type: ignore[union-attr]
                assert await there.handle_webhook("replicate", signed(body), body) == "parked"
                result = await there.wait(job_id, timeout=10)
                job = await there.job(job_id)
        assert result.provider == "replicate"
        assert job is not None
        assert job.status == "succeeded"

    async def test_duplicate_final_deliveries_first_wins(
        self, clock: FakeClock, public_dns: None
    ) -> None:
        """Two final deliveries (different ids) for one prediction: the first is used."""
        good = json.dumps(prediction("succeeded")).encode()
        bad = json.dumps(prediction("failed")).encode()
        with respx.mock(assert_all_called=False) as mock:
            mock.post(CREATE_URL).respond(201, json=prediction("starting"))
            mock.get(GET_URL).respond(200, json=prediction("processing"))
            mock.get(OUTPUT_URL).respond(200, content=tiny_png())
            async with two_processes(clock, replicate) as (here, there):
                outcomes: list[str] = []

                async def callbacks() -> None:
                    await clock.sleep(0.5)
                    outcomes.append(await there.handle_webhook("replicate", signed(good), good))
                    outcomes.append(
                        await there.handle_webhook("replicate", signed(bad, "msg_2"), bad)
                    )

                async with anyio.create_task_group() as tg:
                    tg.start_soon(callbacks)
                    result = await here.generate("a red bicycle")
        assert outcomes == ["parked", "parked"]  # the second did not replace the first
        assert result.provider == "replicate"


class TestOrderAndLateness:
    """Out-of-order, late and replayed deliveries change nothing."""

    async def test_non_final_delivery_does_not_complete(
        self, clock: FakeClock, public_dns: None
    ) -> None:
        """A 'processing' delivery is acknowledged; the final one, later, completes."""
        early = json.dumps(prediction("processing")).encode()
        final = json.dumps(prediction("succeeded")).encode()
        outcomes: list[str] = []
        async with httpx.AsyncClient() as http:
            with respx.mock(assert_all_called=False) as mock:
                mock.post(CREATE_URL).respond(201, json=prediction("starting"))
                mock.get(GET_URL).respond(200, json=prediction("processing"))
                mock.get(OUTPUT_URL).respond(200, content=tiny_png())
                async with ImageGenerator(providers=[replicate()], http=http, clock=clock) as gen:

                    async def callbacks() -> None:
                        await clock.sleep(0.5)
                        outcomes.append(
                            await gen.handle_webhook("replicate", signed(early, "a"), early)
                        )
                        await clock.sleep(2.0)
                        outcomes.append(
                            await gen.handle_webhook("replicate", signed(final, "b"), final)
                        )

                    async with anyio.create_task_group() as tg:
                        tg.start_soon(callbacks)
                        result = await gen.generate("a red bicycle")
        assert outcomes == ["not final", "local"]
        assert result.elapsed == pytest.approx(2.5)

    async def test_late_and_out_of_order_after_the_end(
        self, clock: FakeClock, public_dns: None
    ) -> None:
        """After the attempt ended, a final, a stale-status and a replayed delivery are no-ops."""
        final = json.dumps(prediction("succeeded")).encode()
        older = json.dumps(prediction("processing")).encode()
        async with httpx.AsyncClient() as http:
            with respx.mock(assert_all_called=False) as mock:
                mock.post(CREATE_URL).respond(201, json=prediction("succeeded"))
                mock.get(OUTPUT_URL).respond(200, content=tiny_png())
                async with ImageGenerator(providers=[replicate()], http=http, clock=clock) as gen:
                    job_id = await gen.submit("a red bicycle")
                    result = await gen.wait(job_id, timeout=10)
                    late = await gen.handle_webhook("replicate", signed(final, "x"), final)
                    stale = await gen.handle_webhook("replicate", signed(older, "y"), older)
                    again = await gen.handle_webhook("replicate", signed(final, "x"), final)
                    job = await gen.job(job_id)
        assert (late, stale, again) == ("late", "not final", "replay")
        assert job is not None
        assert job.status == "succeeded"
        assert job.result is not None
        assert job.result.id == result.id

    async def test_failed_prediction_by_webhook(self, clock: FakeClock) -> None:
        """A final 'failed' delivery ends the attempt with Replicate's error, no poll."""
        body = json.dumps(prediction("failed")).encode()
        async with httpx.AsyncClient() as http:
            with respx.mock(assert_all_called=False) as mock:
                mock.post(CREATE_URL).respond(201, json=prediction("starting"))
                poll = mock.get(GET_URL).respond(200, json=prediction("processing"))
                async with ImageGenerator(
                    providers=[replicate()], http=http, clock=clock, default_image=None
                ) as gen:

                    async def callback() -> None:
                        await clock.sleep(1.0)
                        await gen.handle_webhook("replicate", signed(body), body)

                    error = await failure_of(gen, callback)
        assert "it broke" in str(error.attempts[0].error)
        assert poll.call_count == 0


def fal(**kwargs: Any) -> Fal:
    return Fal(key=FAL_KEY, queue=True, webhook_url=FAL_HOOK, **kwargs)


def fal_routes(mock: respx.MockRouter) -> tuple[respx.Route, respx.Route]:
    submit = mock.post(url__startswith=SUBMIT_URL).respond(200, json=SUBMITTED)
    status = mock.get(url__startswith=f"{REQUESTS}/status").respond(
        200, json={"status": "IN_PROGRESS"}
    )
    mock.get(FAL_IMAGE).respond(200, content=tiny_png())
    return submit, status


class TestFalSigned:
    """fal's Ed25519-signed deliveries, checked against its JWKS."""

    async def test_vector_delivery_completes_the_request(
        self, clock: FakeClock, public_dns: None
    ) -> None:
        """The documented signed delivery ends the wait; keys fetched once, without our key."""
        async with httpx.AsyncClient() as http:
            with respx.mock(assert_all_called=False) as mock:
                submit, status = fal_routes(mock)
                keys = mock.get(JWKS_URL).respond(200, json=JWKS)
                async with ImageGenerator(providers=[fal()], http=http, clock=clock) as gen:

                    async def callback() -> None:
                        await clock.sleep(1.0)
                        await gen.handle_webhook("fal", FAL_SIGNED, FAL_BODY)

                    async with anyio.create_task_group() as tg:
                        tg.start_soon(callback)
                        result = await gen.generate("a red bicycle")
                    again = await gen.handle_webhook("fal", FAL_SIGNED, FAL_BODY)
        assert result.provider == "fal"
        assert result.elapsed == pytest.approx(1.0)
        assert status.call_count == 0
        assert again == "replay"
        assert keys.call_count == 1
        assert "authorization" not in keys.calls.last.request.headers
        sent = parse_qs(urlsplit(str(submit.calls.last.request.url)).query)
        assert sent["fal_webhook"] == [FAL_HOOK]

    async def test_forged_and_stale_deliveries_are_refused(self, clock: FakeClock) -> None:
        """A changed body, or a timestamp over five minutes old, is refused."""
        async with httpx.AsyncClient() as http:
            with respx.mock(assert_all_called=False) as mock:
                mock.get(JWKS_URL).respond(200, json=JWKS)
                gen = ImageGenerator(providers=[fal()], http=http, clock=clock)
                with pytest.raises(WebhookVerificationError):
                    await gen.handle_webhook("fal", FAL_SIGNED, FAL_BODY.replace(b"OK", b"ER"))
                stale = fal_signed(FAL_BODY, at=EPOCH - 301)
                with pytest.raises(WebhookVerificationError):
                    await gen.handle_webhook("fal", stale, FAL_BODY)

    async def test_rotated_keys_are_refetched_rarely(self, clock: FakeClock) -> None:
        """An unknown signature refetches the JWKS, but at most once per five minutes."""
        other = {"keys": [{"kty": "OKP", "crv": "Ed25519", "x": "A" * 43}]}
        async with httpx.AsyncClient() as http:
            with respx.mock(assert_all_called=False) as mock:
                keys = mock.get(JWKS_URL)
                keys.side_effect = [
                    httpx.Response(200, json=other),
                    httpx.Response(200, json=JWKS),
                ]
                gen = ImageGenerator(providers=[fal()], http=http, clock=clock)
                with pytest.raises(WebhookVerificationError):
                    await gen.handle_webhook("fal", FAL_SIGNED, FAL_BODY)
                assert keys.call_count == 1  # just fetched: no second look
                await clock.sleep(301)
                fresh = fal_signed(FAL_BODY, at=EPOCH + 301)
                assert await gen.handle_webhook("fal", fresh, FAL_BODY) == "late"
        assert keys.call_count == 2

    async def test_unreachable_keys_are_a_provider_error(self, clock: FakeClock) -> None:
        """If fal's JWKS cannot be fetched, the delivery is not accepted."""
        async with httpx.AsyncClient() as http:
            with respx.mock(assert_all_called=False) as mock:
                mock.get(JWKS_URL).respond(503)
                gen = ImageGenerator(providers=[fal()], http=http, clock=clock)
                with pytest.raises(ProviderUnavailable, match="webhook keys"):
                    await gen.handle_webhook("fal", FAL_SIGNED, FAL_BODY)
                mock.get(JWKS_URL).respond(200, json={"not": "a jwks"})
                with pytest.raises(ProviderUnavailable, match="did not answer with a JWKS"):
                    await gen.handle_webhook("fal", FAL_SIGNED, FAL_BODY)

    async def test_signed_body_without_request_id(self, clock: FakeClock) -> None:
        """An authentic delivery that is not a fal webhook body is refused as such."""
        body = b'{"status": "OK"}'
        async with httpx.AsyncClient() as http:
            with respx.mock(assert_all_called=False) as mock:
                mock.get(JWKS_URL).respond(200, json=JWKS)
                gen = ImageGenerator(providers=[fal()], http=http, clock=clock)
                with pytest.raises(ProviderError, match="no request_id"):
                    await gen.handle_webhook("fal", fal_signed(body), body)


class TestFalToken:
    """webhook_auth="token": a per-request secret in the callback URL."""

    async def test_token_round_trip(self, clock: FakeClock, public_dns: None) -> None:
        """The URL fal gets carries a fresh token; the delivery bringing it back completes."""
        async with httpx.AsyncClient() as http:
            with respx.mock(assert_all_called=False) as mock:
                submit, status = fal_routes(mock)
                async with two_processes(clock, lambda: fal(webhook_auth="token")) as (
                    here,
                    there,
                ):
                    outcomes: list[str] = []

                    async def callback() -> None:
                        await clock.sleep(1.0)
                        hook = parse_qs(urlsplit(str(submit.calls.last.request.url)).query)
                        url = urlsplit(hook["fal_webhook"][0])
                        params = {k: v[0] for k, v in parse_qs(url.query).items()}
                        with pytest.raises(WebhookVerificationError, match="imagegen_token"):
                            await there.handle_webhook("fal", {}, FAL_BODY, params={})
                        wrong = {"imagegen_token": params["imagegen_token"] + "x"}
                        with pytest.raises(WebhookVerificationError):
                            await there.handle_webhook("fal", {}, FAL_BODY, params=wrong)
                        outcomes.append(
                            await there.handle_webhook("fal", {}, FAL_BODY, params=params)
                        )

                    async with anyio.create_task_group() as tg:
                        tg.start_soon(callback)
                        result = await here.generate("a red bicycle")
        assert outcomes == ["parked"]
        assert result.provider == "fal"
        assert status.call_count == 0
        assert "http" in str(http)  # the client was shared and still alive above

    async def test_error_deliveries(self, clock: FakeClock) -> None:
        """An ERROR delivery naming content policy is ContentRejected; others ProviderError."""
        policy = {
            "request_id": REQUEST_ID,
            "status": "ERROR",
            "error": "Invalid status code: 422",
            "payload": {"detail": [{"type": "content_policy_violation", "msg": "nope"}]},
        }
        broken = {"request_id": REQUEST_ID, "status": "ERROR", "error": "Worker crashed"}
        for body, expected in ((policy, ContentRejected), (broken, ProviderError)):
            async with httpx.AsyncClient() as http:
                with respx.mock(assert_all_called=False) as mock:
                    fal_routes(mock)
                    mock.get(REQUESTS).respond(500, json={"detail": "gone"})
                    cancel = mock.put(f"{REQUESTS}/cancel").respond(
                        400, json={"status": "ALREADY_COMPLETED"}
                    )
                    async with ImageGenerator(
                        providers=[fal(webhook_auth="token")],
                        http=http,
                        clock=clock,
                        default_image=None,
                    ) as gen:
                        raw = json.dumps(body).encode()

                        async def callback(raw: bytes = raw) -> None:
                            await clock.sleep(1.0)
                            params = _token_params(mock)
                            await gen.handle_webhook("fal", {}, raw, params=params)

                        failure = await failure_of(gen, callback)
            assert isinstance(failure.attempts[0].error, expected)
            assert cancel.call_count == 1  # a finished request's cancel is refused, harmlessly

    async def test_token_needs_a_generator(self, clock: FakeClock) -> None:
        """A bare context cannot make or bind tokens, and accepts none."""
        ctx = ProviderContext(deadline=clock.monotonic() + 5, clock=clock)
        with pytest.raises(RuntimeError, match="need a generator"):
            await ctx.webhook_token()
        assert not await ctx.bind_webhook_token("anything", "req-1")
        assert not await ctx.check_webhook_token("anything", work_id="req-1")
        assert await ctx.webhook("work", within=1.0) is None
        assert clock.monotonic() == pytest.approx(1.0)

    def test_webhook_auth_is_validated(self) -> None:
        """Only 'signature' and 'token' are accepted."""
        with pytest.raises(InvalidConfig) as info:
            Fal(key=FAL_KEY, webhook_auth="none")  # type: ignore[arg-type]
        assert info.value.field == "webhook_auth"


def _token_params(mock: respx.MockRouter) -> dict[str, str]:
    """The query parameters of the callback URL the last fal submit carried."""
    submitted = next(c for c in reversed(mock.calls) if c.request.method == "POST")
    hook = parse_qs(urlsplit(str(submitted.request.url)).query)["fal_webhook"][0]
    return {k: v[0] for k, v in parse_qs(urlsplit(hook).query).items()}
