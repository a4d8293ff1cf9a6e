"""handle_webhook end to end: a Replicate prediction completed by its signed callback."""

from __future__ import annotations

import json
import logging
from typing import Any

import anyio
import httpx
import pytest
import respx

from imagegen import (
    ImageGenerator,
    InvalidConfig,
    Placeholder,
    ProviderError,
    Replicate,
    WebhookVerificationError,
)
from imagegen._webhooks import sign_standard_webhook
from imagegen.testing import FakeClock, tiny_png

pytestmark = pytest.mark.anyio

TOKEN = "r8_TESTTOKEN"
SECRET = "whsec_No+iZL/VrSq7QMlMxlzKipmkpSFqaI2VbNVyUrfAX8M="
PREDICTION_ID = "q7x3k9m2ydrj00cmz8ab1c2d3e"
BASE = "https://api.replicate.com/v1"
CREATE_URL = f"{BASE}/models/black-forest-labs/flux-schnell/predictions"
GET_URL = f"{BASE}/predictions/{PREDICTION_ID}"
OUTPUT_URL = "https://replicate.delivery/xezq/abc123/out-0.webp"
HOOK = "https://example.com/hooks/replicate"
EPOCH = 1_767_225_600  # FakeClock's time() at monotonic 0


def prediction(status: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": PREDICTION_ID,
        "status": status,
        "output": [OUTPUT_URL] if status == "succeeded" else None,
        "error": None,
        "urls": {"get": GET_URL, "cancel": f"{GET_URL}/cancel"},
        **extra,
    }


def signed(
    body: bytes, *, msg_id: str = "msg_1", at: int = EPOCH, secret: str = SECRET
) -> dict[str, str]:
    return {
        "Webhook-Id": msg_id,
        "Webhook-Timestamp": str(at),
        "Webhook-Signature": sign_standard_webhook(secret, msg_id, at, body),
    }


class TestCompletionByWebhook:
    async def test_webhook_completes_the_waiting_prediction(
        self, clock: FakeClock, public_dns: None
    ) -> None:
        """The signed completion arrives after 1 s and ends the wait; no poll is needed."""
        body = json.dumps(prediction("succeeded")).encode()
        async with httpx.AsyncClient() as http:
            with respx.mock(assert_all_called=False) as mock:
                create = mock.post(CREATE_URL).respond(201, json=prediction("starting"))
                poll = mock.get(GET_URL).respond(200, json=prediction("processing"))
                mock.get(OUTPUT_URL).respond(200, content=tiny_png())
                async with ImageGenerator(
                    providers=[Replicate(api_token=TOKEN, webhook_url=HOOK, webhook_secret=SECRET)],
                    http=http,
                    clock=clock,
                ) as gen:

                    async def callback() -> None:
                        await clock.sleep(1.0)
                        await gen.handle_webhook("replicate", signed(body), body)

                    async with anyio.create_task_group() as tg:
                        tg.start_soon(callback)
                        result = await gen.generate("a red bicycle")
        assert result.provider == "replicate"
        assert result.data == tiny_png()
        assert result.elapsed == pytest.approx(1.0)
        assert json.loads(create.calls.last.request.content)["webhook"] == HOOK
        assert poll.call_count == 0

    async def test_polling_is_the_safety_net(self, clock: FakeClock, public_dns: None) -> None:
        """Without a delivery the prediction is still found, by a late poll."""
        async with httpx.AsyncClient() as http:
            with respx.mock(assert_all_called=False) as mock:
                mock.post(CREATE_URL).respond(201, json=prediction("starting"))
                poll = mock.get(GET_URL).respond(200, json=prediction("succeeded"))
                mock.get(OUTPUT_URL).respond(200, content=tiny_png())
                gen = ImageGenerator(
                    providers=[Replicate(api_token=TOKEN, webhook_url=HOOK, webhook_secret=SECRET)],
                    http=http,
                    clock=clock,
                )
                result = await gen.generate("a red bicycle")
        assert result.provider == "replicate"
        assert poll.call_count == 1
        assert result.elapsed == pytest.approx(5.0)


class TestVerification:
    def generator(self, http: httpx.AsyncClient, clock: FakeClock, **kwargs: Any) -> ImageGenerator:
        return ImageGenerator(
            providers=[Replicate(api_token=TOKEN, **kwargs), Placeholder(tier=1)],
            http=http,
            clock=clock,
        )

    async def test_forgery_is_refused(self, clock: FakeClock) -> None:
        """A body that does not match its signature raises WebhookVerificationError."""
        body = json.dumps(prediction("succeeded")).encode()
        async with httpx.AsyncClient() as http:
            gen = self.generator(http, clock, webhook_secret=SECRET)
            headers = signed(body)
            with pytest.raises(WebhookVerificationError):
                await gen.handle_webhook(
                    "replicate", headers, body.replace(b"succeeded", b"failed")
                )
            wrong = signed(body, secret="whsec_" + "A" * 43 + "=")
            with pytest.raises(WebhookVerificationError):
                await gen.handle_webhook("replicate", wrong, body)

    async def test_stale_delivery_is_refused(self, clock: FakeClock) -> None:
        """A delivery signed more than five minutes ago is refused."""
        body = json.dumps(prediction("succeeded")).encode()
        async with httpx.AsyncClient() as http:
            gen = self.generator(http, clock, webhook_secret=SECRET)
            with pytest.raises(WebhookVerificationError):
                await gen.handle_webhook("replicate", signed(body, at=EPOCH - 301), body)

    async def test_replay_and_unknown_predictions_return_quietly(
        self, clock: FakeClock, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A verified delivery nobody waits for, and its replay, return quietly."""
        body = json.dumps(prediction("succeeded")).encode()
        async with httpx.AsyncClient() as http:
            gen = self.generator(http, clock, webhook_secret=SECRET)
            with caplog.at_level(logging.INFO, logger="imagegen"):
                first = await gen.handle_webhook("replicate", signed(body), body)
                second = await gen.handle_webhook("replicate", signed(body), body)
        assert (first, second) == ("late", "replay")
        assert "webhook msg_1 from replicate: late" in caplog.text
        assert "webhook msg_1 from replicate: replay" in caplog.text

    async def test_secret_is_fetched_once_when_not_given(self, clock: FakeClock) -> None:
        """Without webhook_secret the account's secret is fetched, then kept."""
        body = json.dumps(prediction("succeeded")).encode()
        async with httpx.AsyncClient() as http:
            with respx.mock() as mock:
                secret = mock.get(f"{BASE}/webhooks/default/secret").respond(
                    200, json={"key": SECRET}
                )
                gen = self.generator(http, clock)
                await gen.handle_webhook("replicate", signed(body, msg_id="a"), body)
                await gen.handle_webhook("replicate", signed(body, msg_id="b"), body)
        assert secret.call_count == 1
        assert secret.calls.last.request.headers["authorization"] == f"Bearer {TOKEN}"

    @pytest.mark.parametrize("name", ["nope", "placeholder"])
    async def test_providers_without_webhooks(self, clock: FakeClock, name: str) -> None:
        """Unknown providers, and providers that take no webhooks, raise InvalidConfig."""
        async with httpx.AsyncClient() as http:
            gen = self.generator(http, clock, webhook_secret=SECRET)
            with pytest.raises(InvalidConfig) as info:
                await gen.handle_webhook(name, {}, b"{}")
        assert info.value.field == "provider"

    async def test_verified_garbage_is_a_provider_error(self, clock: FakeClock) -> None:
        """An authentic delivery whose body is not a prediction is refused as such."""
        body = b'{"not": "a prediction"}'
        async with httpx.AsyncClient() as http:
            gen = self.generator(http, clock, webhook_secret=SECRET)
            with pytest.raises(ProviderError, match="not a prediction"):
                await gen.handle_webhook("replicate", signed(body), body)
