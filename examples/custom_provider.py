"""Write your own provider on HTTPProvider: only the request and the response mapping.

HTTPProvider brings the auth header, the User-Agent, the status -> error mapping
(401/403 auth, 402 quota, 429 rate limit with Retry-After, 5xx, timeouts,
connection errors, malformed JSON), the rule that a create is retried only when
nothing can have been created, and key redaction. A provider adds what is
particular to its vendor: the URL, the body, and where the image is in the answer.
It reports billable work with ctx.started() so a losing call can be cancelled.

This one talks to an imaginary JSON API; main() runs it against an in-process
fake of that API (httpx.MockTransport), so the example works offline.

Run: python examples/custom_provider.py
"""

from __future__ import annotations

import base64
from typing import Any, ClassVar

import anyio
import httpx

from imagegen import (
    HTTPProvider,
    ImageGenerator,
    ImageRequest,
    Placeholder,
    ProviderContext,
    ProviderImage,
)
from imagegen.testing import tiny_png


class PaintBot(HTTPProvider):
    """An imaginary API: POST /paint returns {"id", "image_b64"}."""

    name = "paintbot"
    timeout = 20.0
    default_base_url: ClassVar[str] = "https://paintbot.example/v1"
    env_var: ClassVar[str | None] = "PAINTBOT_API_KEY"  # read when api_key= is not given

    async def generate(self, request: ImageRequest, ctx: ProviderContext) -> ProviderImage:
        body: dict[str, Any] = {"prompt": request.prompt, "w": request.width, "h": request.height}
        body.update(request.options_for(self.name))  # callers' extra vendor fields
        response = await self.request(ctx, "POST", "paint", json=body, create=True)
        answer = self.json(response, create=True)
        ctx.started(answer["id"])  # billable work exists from here on
        return ProviderImage(
            data=base64.b64decode(answer["image_b64"]),
            width=request.width,
            height=request.height,
        )

    async def cancel(self, handle: object, ctx: ProviderContext) -> None:
        await self.request(ctx, "POST", f"paint/{handle}/cancel")

    async def check(self, ctx: ProviderContext) -> None:
        await self.request(ctx, "GET", "me")  # an authenticated call that bills nothing


def fake_api(request: httpx.Request) -> httpx.Response:
    """Stands in for the real service."""
    if request.headers.get("authorization") != "Bearer pb-demo-key":
        return httpx.Response(401, json={"detail": "bad key"})
    if request.url.path.endswith(("/cancel", "/me")):
        return httpx.Response(200, json={})
    image = base64.b64encode(tiny_png()).decode()
    return httpx.Response(200, json={"id": "job-1", "image_b64": image})


async def main() -> None:
    async with (
        httpx.AsyncClient(transport=httpx.MockTransport(fake_api)) as http,
        ImageGenerator(
            providers=[PaintBot(api_key="pb-demo-key"), Placeholder(tier=1)], http=http
        ) as gen,
    ):
        result = await gen.generate("a watercolour harbour", width=256, height=256)
        print(f"{result.provider}: {result.size} bytes, {result.content_type}")
        print(f"checks: {(await gen.health(deep=True))['checks']}")


if __name__ == "__main__":
    anyio.run(main)
