"""BlackForestLabs: FLUX on BFL's API, in its documented shapes: create, poll, webhooks."""

from __future__ import annotations

import json
import logging
from typing import Any

import anyio
import httpx
import pytest
import respx
from provider_support import body_of, session

from imagegen import (
    BlackForestLabs,
    ContentRejected,
    ImageGenerator,
    ImageRequest,
    InvalidConfig,
    ProviderAuthError,
    ProviderError,
    ProviderQuotaExceeded,
    ProviderRateLimited,
    ProviderUnavailable,
    WebhookVerificationError,
)
from imagegen.providers._bfl_wire import MODELS, price_of, size_for
from imagegen.testing import FakeClock, tiny_png

pytestmark = pytest.mark.anyio

KEY = "bfl_test-key-123456"
SECRET = "hook-secret-abcdef-123456"
BASE = "https://api.bfl.ai/v1"
TASK = "d5ba37dc-ba09-4658-852e-deea7e176439"
POLL = f"https://api.eu2.bfl.ai/v1/get_result?id={TASK}"
SAMPLE = "https://delivery.eu2.bfl.ai/results/abc/sample.jpeg?se=2026-12-07&sig=XYZ"
HOOK = "https://example.com/hooks/bfl"


def created(polling_url: str = POLL, cost: Any = 3.0) -> dict[str, Any]:
    return {"id": TASK, "polling_url": polling_url, "cost": cost, "input_mp": 0.0,
            "output_mp": 1.05}  # fmt: skip


def task(status: str, **extra: Any) -> dict[str, Any]:
    result = {"sample": SAMPLE, "prompt": "p", "seed": 42, "start_time": 1.0, "end_time": 7.0,
              "duration": 6.0} if status == "Ready" else None  # fmt: skip
    return {"id": TASK, "status": status, "result": result, "progress": None, "details": None,
            **extra}  # fmt: skip


@pytest.fixture(autouse=True)
def _no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("BFL_API_KEY", "BFL_WEBHOOK_SECRET"):
        monkeypatch.delenv(name, raising=False)


async def run(
    provider: BlackForestLabs,
    request: ImageRequest,
    *answers: httpx.Response,
    poll: str = POLL,
) -> tuple[Any, respx.Route, respx.Route]:
    """Create, then polls answered in order; the image or the error, and both routes."""
    async with FakeClock() as clock, session(clock) as (mock, ctx, started):
        create = mock.post(f"{BASE}/{provider.model}").mock(return_value=answers[0])
        polls = mock.get(poll).mock(side_effect=list(answers[1:]))
        try:
            result: Any = await provider.generate(request, ctx)
        except ProviderError as exc:
            result = exc
        if not isinstance(result, ProviderError):
            assert started == [(TASK, poll)]
        return result, create, polls


def ok(data: Any) -> httpx.Response:
    return httpx.Response(200, json=data)


class TestRequest:
    @pytest.mark.parametrize(
        ("model", "size", "expected"),
        [
            ("flux-2-pro", (1000, 984), {"width": 1008, "height": 992}),
            ("flux-2-pro", (4096, 4096), {"width": 2048, "height": 2048}),
            ("flux-pro-1.1", (1000, 704), {"width": 992, "height": 704}),
            ("flux-pro-1.1", (2048, 64), {"width": 1440, "height": 256}),
            ("flux-pro-1.1-ultra", (1920, 1080), {"aspect_ratio": "16:9"}),
            ("flux-kontext-pro", (800, 1000), {"aspect_ratio": "4:5"}),
        ],
    )
    async def test_sizes_per_model(
        self, model: str, size: tuple[int, int], expected: dict[str, Any]
    ) -> None:
        """Pixels in the model's steps and bounds, or the nearest aspect ratio."""
        request = ImageRequest(prompt="a fox", width=size[0], height=size[1])
        _, create, _ = await run(
            BlackForestLabs(api_key=KEY, model=model), request, ok(created()), ok(task("Ready"))
        )
        body = body_of(create.calls.last.request)
        assert {k: body[k] for k in expected} == expected
        assert not {"width", "aspect_ratio"} <= set(body)

    async def test_the_documented_body(self) -> None:
        """x-key, the prompt, seed, format, tolerance; provider_options last; no webhook."""
        request = ImageRequest(
            prompt="a fox", seed=9, output_format="webp", safety="relaxed",
            provider_options={"bfl": {"prompt_upsampling": True}},
        )  # fmt: skip
        _, create, _ = await run(
            BlackForestLabs(api_key=KEY), request, ok(created()), ok(task("Ready"))
        )
        sent = create.calls.last.request
        assert sent.headers["x-key"] == KEY
        assert "authorization" not in sent.headers
        body = body_of(sent)
        assert body["prompt"] == "a fox"
        assert (body["seed"], body["output_format"], body["safety_tolerance"]) == (9, "webp", 5)
        assert body["prompt_upsampling"] is True
        assert "webhook_url" not in body

    async def test_flux1_formats_and_strict_safety(self) -> None:
        request = ImageRequest(prompt="p", output_format="webp", safety="strict")
        _, create, _ = await run(
            BlackForestLabs(api_key=KEY, model="flux-dev"), request, ok(created()),
            ok(task("Ready")),
        )  # fmt: skip
        body = body_of(create.calls.last.request)
        assert (body["output_format"], body["safety_tolerance"]) == ("png", 0)

    async def test_input_images_and_masks(self) -> None:
        """Kontext takes input_image..input_image_4; fill takes image and mask."""
        png = tiny_png()
        kontext = BlackForestLabs(api_key=KEY, model="flux-kontext-pro")
        assert (kontext.input_images, kontext.masks) == (4, False)
        request = ImageRequest(prompt="p", images=[png, png])
        _, create, _ = await run(kontext, request, ok(created()), ok(task("Ready")))
        body = body_of(create.calls.last.request)
        assert {"input_image", "input_image_2"} <= set(body)
        assert "input_image_3" not in body
        fill = BlackForestLabs(api_key=KEY, model="flux-pro-1.0-fill")
        assert (fill.input_images, fill.masks) == (1, True)
        _, create, _ = await run(
            fill, ImageRequest(prompt="p", images=[png], mask=png), ok(created()), ok(task("Ready"))
        )
        body = body_of(create.calls.last.request)
        assert {"image", "mask"} <= set(body)
        assert "width" not in body
        assert BlackForestLabs(api_key=KEY).input_images == 8
        assert BlackForestLabs(api_key=KEY, model="flux-pro-1.1").input_images == 0


class TestFollowing:
    async def test_ready_gives_the_sample_and_the_reported_cost(self) -> None:
        """Pending, then Ready: the sample URL (downloaded without the key), seed, cost."""
        request = ImageRequest(prompt="p")
        result, _, polls = await run(
            BlackForestLabs(api_key=KEY), request, ok(created(cost=4.5)),
            ok(task("Pending", progress=0.4)), ok(task("Ready")),
        )  # fmt: skip
        assert result.url == SAMPLE
        assert result.headers is None
        assert result.seed == 42
        assert result.cost == pytest.approx(0.045)
        assert polls.call_count == 2
        assert polls.calls.last.request.headers["x-key"] == KEY

    async def test_a_foreign_polling_url_is_not_followed(self) -> None:
        """The key goes only to our host or BFL's domain over https: else get_result on ours."""
        own = f"{BASE}/get_result?id={TASK}"
        result, _, polls = await run(
            BlackForestLabs(api_key=KEY), ImageRequest(prompt="p"),
            ok(created(polling_url="https://evil.example/steal")), ok(task("Ready")), poll=own,
        )  # fmt: skip
        assert result.url == SAMPLE
        assert polls.call_count == 1

    @pytest.mark.parametrize(
        ("answer", "error", "words"),
        [
            (task("Content Moderated", details={"Moderation Reasons": ["Explicit"]}),
             ContentRejected, "Explicit"),
            (task("Request Moderated"), ContentRejected, "Request Moderated"),
            (task("Error"), ProviderError, "Error"),
            (task("Task not found"), ProviderError, "Task not found"),
            ({"id": TASK, "status": "Ready", "result": {}}, ProviderError, "without a sample"),
        ],
    )  # fmt: skip
    async def test_ends_without_an_image(
        self, answer: dict[str, Any], error: type[ProviderError], words: str
    ) -> None:
        result, _, _ = await run(
            BlackForestLabs(api_key=KEY), ImageRequest(prompt="p"), ok(created()), ok(answer)
        )
        assert type(result) is error
        assert words in str(result)
        assert not result.retryable
        if isinstance(result, ContentRejected):
            assert result.reason in ("Content Moderated", "Request Moderated")

    async def test_a_create_without_a_task_id(self) -> None:
        result, _, _ = await run(
            BlackForestLabs(api_key=KEY), ImageRequest(prompt="p"), ok({"polling_url": POLL})
        )
        assert isinstance(result, ProviderError)
        assert not result.retryable

    @pytest.mark.parametrize(
        ("status", "body", "error", "retryable"),
        [
            (402, {"detail": "Insufficient credits"}, ProviderQuotaExceeded, False),
            (429, {"detail": "You have exceeded the number of active tasks: 24"},
             ProviderRateLimited, True),
            (403, {"detail": "Not authenticated"}, ProviderAuthError, False),
            (422, {"detail": [{"loc": ["body", "width"], "msg": "Input should be a multiple of 32",
                               "type": "multiple_of"}]}, ProviderError, False),
            (500, {"detail": "Internal Server Error"}, ProviderUnavailable, False),
        ],
    )  # fmt: skip
    async def test_create_errors(
        self, status: int, body: Any, error: type[ProviderError], retryable: bool
    ) -> None:
        result, _, _ = await run(
            BlackForestLabs(api_key=KEY),
            ImageRequest(prompt="p"),
            httpx.Response(status, json=body),
        )
        assert type(result) is error
        assert result.retryable is retryable
        if status == 422:
            assert "body.width: Input should be a multiple of 32" in str(result)


class TestConfig:
    @pytest.mark.parametrize(
        ("region", "host"), [("global", "api.bfl.ai"), ("eu", "api.eu.bfl.ai"),
                             ("us", "api.us.bfl.ai")],
    )  # fmt: skip
    def test_regions(self, region: str, host: str) -> None:
        assert BlackForestLabs(api_key=KEY, region=region).base_url == f"https://{host}/v1"

    @pytest.mark.parametrize(
        ("kwargs", "field"),
        [
            ({"region": "asia"}, "region"),
            ({"model": "black-forest-labs/flux"}, "model"),
            ({"webhook_url": "http://example.com/h", "webhook_secret": SECRET}, "webhook_url"),
            ({"webhook_url": HOOK}, "webhook_secret"),
            ({"webhook_secret": " "}, "webhook_secret"),
            ({"poll_interval": 0}, "poll_interval"),
        ],
    )
    def test_bad_settings(self, kwargs: dict[str, Any], field: str) -> None:
        with pytest.raises(InvalidConfig) as caught:
            BlackForestLabs(api_key=KEY, **kwargs)
        assert caught.value.field == field

    def test_from_env(self) -> None:
        provider = BlackForestLabs.from_env({
            "BFL_API_KEY": KEY, "IMAGEGEN_BFL_MODEL": "flux-kontext-max",
            "IMAGEGEN_BFL_REGION": "eu", "IMAGEGEN_BFL_WEBHOOK_URL": HOOK,
            "BFL_WEBHOOK_SECRET": SECRET,
        })  # fmt: skip
        assert provider is not None
        assert (provider.model, provider.base_url) == (
            "flux-kontext-max",
            "https://api.eu.bfl.ai/v1",
        )
        assert provider.webhook_url == HOOK
        assert KEY not in repr(provider)
        assert SECRET not in repr(provider)
        with pytest.raises(InvalidConfig) as caught:
            BlackForestLabs.from_env({"BFL_API_KEY": KEY, "IMAGEGEN_BFL_REGION": "mars"})
        assert caught.value.field == "IMAGEGEN_BFL_REGION"

    async def test_check_reads_the_credits(self) -> None:
        async with session(FakeClock()) as (mock, ctx, _):
            route = mock.get(f"{BASE}/credits").respond(200, json={"credits": 12.5})
            await BlackForestLabs(api_key=KEY).check(ctx)
            assert route.calls.last.request.headers["x-key"] == KEY
            mock.get(f"{BASE}/credits").respond(403, json={"detail": "Not authenticated"})
            with pytest.raises(ProviderAuthError):
                await BlackForestLabs(api_key=KEY).check(ctx)


class TestPrices:
    def test_per_image_and_per_megapixel(self) -> None:
        assert price_of(MODELS["flux-pro-1.1"], ImageRequest(prompt="p")) == 0.04
        assert price_of(MODELS["flux-kontext-max"], ImageRequest(prompt="p")) == 0.08
        # FLUX.2 pro: $0.03 for the first megapixel, $0.015 for each further one.
        big = ImageRequest(prompt="p", width=2048, height=1024)
        assert size_for(2048, 1024, MODELS["flux-2-pro"]) == (2048, 1024)
        assert price_of(MODELS["flux-2-pro"], big) == pytest.approx(0.03 + (2.097152 - 1) * 0.015)
        assert (
            price_of(MODELS["flux-2-pro"], ImageRequest(prompt="p", width=512, height=512)) == 0.03
        )
        # Input megapixels are priced too, at sizes unknown before the call: no guess.
        edit = ImageRequest(prompt="p", images=[tiny_png()])
        assert price_of(MODELS["flux-2-pro"], edit) is None
        assert (
            BlackForestLabs(api_key=KEY, model="flux-3-someday").price(ImageRequest(prompt="p"))
            is None
        )

    @pytest.mark.parametrize("cost", [None, "3", -1, True])
    async def test_a_cost_the_answer_does_not_say(self, cost: Any) -> None:
        result, _, _ = await run(
            BlackForestLabs(api_key=KEY), ImageRequest(prompt="p"), ok(created(cost=cost)),
            ok(task("Ready")),
        )  # fmt: skip
        assert result.cost is None


class TestWebhooks:
    def provider(self) -> BlackForestLabs:
        return BlackForestLabs(api_key=KEY, webhook_url=HOOK, webhook_secret=SECRET)

    async def test_the_delivery_ends_the_wait(self, clock: FakeClock, public_dns: None) -> None:
        """The webhook (secret checked) makes the task be read at once, not at the next poll."""
        delivery = json.dumps({"task_id": TASK, "status": "SUCCESS", "result": {}}).encode()
        async with httpx.AsyncClient() as http:
            with respx.mock(assert_all_called=False) as mock:
                create = mock.post(f"{BASE}/flux-2-pro").respond(200, json=created())
                polls = mock.get(POLL).respond(200, json=task("Ready"))
                mock.get(SAMPLE).respond(200, content=tiny_png())
                async with ImageGenerator(
                    providers=[self.provider()], http=http, clock=clock
                ) as gen:

                    async def callback() -> None:
                        await clock.sleep(1.0)
                        headers = {"X-Webhook-Secret": SECRET}
                        assert await gen.handle_webhook("bfl", headers, delivery) == "local"

                    async with anyio.create_task_group() as tg:
                        tg.start_soon(callback)
                        result = await gen.generate("a red bicycle")
        assert result.provider == "bfl"
        assert result.elapsed == pytest.approx(1.0)
        body = body_of(create.calls.last.request)
        assert (body["webhook_url"], body["webhook_secret"]) == (HOOK, SECRET)
        assert polls.call_count == 1  # the one read the delivery asked for

    @pytest.mark.parametrize(
        "headers", [{}, {"X-Webhook-Secret": "wrong"}, {"x-webhook-secret": SECRET[:-1]}]
    )
    async def test_a_wrong_secret_is_refused(self, headers: dict[str, str]) -> None:
        body = json.dumps({"task_id": TASK, "status": "SUCCESS"}).encode()
        async with session(FakeClock()) as (_, ctx, _):
            with pytest.raises(WebhookVerificationError):
                await self.provider().receive_webhook(headers, body, ctx, now=0.0)
            unconfigured = BlackForestLabs(api_key=KEY)
            with pytest.raises(WebhookVerificationError):
                await unconfigured.receive_webhook({"X-Webhook-Secret": SECRET}, body, ctx, now=0.0)

    @pytest.mark.parametrize(
        ("payload", "final"),
        [({"task_id": TASK, "status": "SUCCESS"}, True), ({"id": TASK, "status": "Ready"}, True),
         ({"id": TASK, "status": "Pending"}, False)],
    )  # fmt: skip
    async def test_deliveries_are_read_loosely(self, payload: dict[str, Any], final: bool) -> None:
        async with session(FakeClock()) as (_, ctx, _):
            delivery = await self.provider().receive_webhook(
                {"x-webhook-secret": SECRET}, json.dumps(payload).encode(), ctx, now=0.0
            )
        assert (delivery.work_id, delivery.final) == (TASK, final)

    @pytest.mark.parametrize("body", [b"not json", b'{"status": "SUCCESS"}', b"[1]"])
    async def test_a_delivery_naming_no_task(self, body: bytes) -> None:
        async with session(FakeClock()) as (_, ctx, _):
            with pytest.raises(ProviderError):
                await self.provider().receive_webhook(
                    {"X-Webhook-Secret": SECRET}, body, ctx, now=0.0
                )

    async def test_the_generators_url_needs_a_secret(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        """ctx.webhook_url alone (no secret to prove deliveries): polling only."""
        async with FakeClock() as clock, session(clock, webhook_url=HOOK) as (mock, ctx, _):
            create = mock.post(f"{BASE}/flux-2-pro").respond(200, json=created())
            mock.get(POLL).respond(200, json=task("Ready"))
            with caplog.at_level(logging.DEBUG):
                await BlackForestLabs(api_key=KEY).generate(ImageRequest(prompt="p"), ctx)
                with_secret = BlackForestLabs(api_key=KEY, webhook_secret=SECRET)
                await with_secret.generate(ImageRequest(prompt="p"), ctx)
        first, second = (body_of(call.request) for call in create.calls)
        assert "webhook_url" not in first
        assert (second["webhook_url"], second["webhook_secret"]) == (HOOK, SECRET)
        assert SECRET not in caplog.text
