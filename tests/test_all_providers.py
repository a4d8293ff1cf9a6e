"""All four hosted providers in one generator: AI fails in turn, then stock, then the default."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import respx

from imagegen import (
    Fal,
    Fallback,
    ImageGenerator,
    MemoryStorage,
    OpenAIImages,
    Placeholder,
    Replicate,
    Retry,
    Unsplash,
)
from imagegen.testing import EventRecorder, FakeClock

pytestmark = pytest.mark.anyio

REPLICATE = "https://api.replicate.com/v1/models/black-forest-labs/flux-schnell/predictions"
FAL = "https://fal.run/fal-ai/flux/schnell"
OPENAI = "https://api.openai.com/v1/images/generations"
UNSPLASH = "https://api.unsplash.com/photos/random"
TRACK = "https://api.unsplash.com/photos/Ab12Cd34Ef5/download"
PHOTO: dict[str, Any] = {
    "id": "Ab12Cd34Ef5",
    "width": 6000,
    "height": 4000,
    "urls": {"raw": "https://images.unsplash.com/photo-1?ixid=X"},
    "links": {
        "html": "https://unsplash.com/photos/Ab12Cd34Ef5",
        "download_location": f"{TRACK}?ixid=X",
    },
    "user": {"name": "Jane Doe", "links": {"html": "https://unsplash.com/@janedoe"}},
}


def generator(
    http: httpx.AsyncClient, clock: FakeClock, hooks: tuple[EventRecorder, ...] = ()
) -> ImageGenerator:
    return ImageGenerator(
        hooks=hooks,
        providers=[
            Replicate(api_token="r8_TEST"),
            Fal(key="id:secret"),
            OpenAIImages(api_key="sk-test"),
            Unsplash(access_key="unsplash-test"),
        ],
        strategy=Fallback(),
        retry=Retry(attempts=1),
        storage=MemoryStorage(),
        default_image=Placeholder(),
        http=http,
        clock=clock,
    )


def ai_down(mock: respx.MockRouter) -> list[respx.Route]:
    """Each AI provider fails its own way."""
    return [
        mock.post(REPLICATE).respond(402, json={"title": "Insufficient credit", "status": 402}),
        mock.post(FAL).respond(
            503, json={"detail": "no runner", "error_type": "runner_scheduling_failure"}
        ),
        mock.post(OPENAI).respond(
            429,
            json={
                "error": {
                    "message": "quota",
                    "type": "insufficient_quota",
                    "code": "insufficient_quota",
                }
            },
        ),
    ]


class TestEveryProviderTogether:
    async def test_ai_fails_in_turn_then_stock_then_default(self, clock: FakeClock) -> None:
        """AI providers fail in order and Unsplash serves; with Unsplash down too, the default."""
        rec = EventRecorder()
        async with httpx.AsyncClient() as http:
            with respx.mock(assert_all_called=False) as mock:
                routes = ai_down(mock)
                stock = mock.get(UNSPLASH).respond(
                    200, json=PHOTO, headers={"X-Ratelimit-Remaining": "49"}
                )
                mock.get(TRACK).respond(200, json={"url": "https://images.unsplash.com/x"})
                gen = generator(http, clock, (rec,))

                result = await gen.generate("a red fox in the snow", width=768, height=512)

                assert result.provider == "unsplash"
                assert result.url is not None
                assert result.url.startswith(
                    "https://images.unsplash.com/photo-1?ixid=X&w=768&h=512"
                )
                assert result.key is None  # hotlinked, as Unsplash's guidelines require
                assert "Jane Doe" in (result.attribution or "")
                started = [e.provider for e in rec.of("attempt_started")]
                assert started == ["replicate", "fal", "openai", "unsplash"]
                kinds = [a.error.kind for a in result.attempts if a.error]
                assert kinds == [
                    "ProviderQuotaExceeded",
                    "ProviderUnavailable",
                    "ProviderQuotaExceeded",
                ]
                assert all(route.call_count == 1 for route in routes)

                stock.respond(503, json={"errors": ["down"]})
                fallback = await gen.generate("a red fox in the snow", width=768, height=512)

        assert fallback.is_default
        assert (fallback.width, fallback.height) == (768, 512)
        assert fallback.key is not None
        assert [a.provider for a in fallback.attempts] == ["replicate", "fal", "openai", "unsplash"]
        assert all(a.outcome == "error" for a in fallback.attempts)
        rows = {row.provider: row for row in await gen.stats()}
        assert rows["unsplash"].successes == 1
        assert rows["unsplash"].failures == 1
        assert rows["default"].successes == 1
