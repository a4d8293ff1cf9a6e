"""Write your own provider: subclass Provider and implement generate().

A provider knows one remote API and nothing about racing, retrying or storing.
It raises the imagegen error that fits, so the generator knows whether a retry
can help, and reports billable work with ctx.started() so a losing call can be
cancelled remotely.

This one talks to an imaginary JSON API; main() runs it against an in-process
fake of that API (httpx.MockTransport), so the example works offline.

Run: python examples/custom_provider.py
"""

from __future__ import annotations

import base64

import anyio
import httpx

from imagegen import (
    ContentRejected,
    ImageGenerator,
    ImageRequest,
    Placeholder,
    Provider,
    ProviderAuthError,
    ProviderContext,
    ProviderImage,
    ProviderRateLimited,
    ProviderUnavailable,
)
from imagegen.testing import tiny_png


class PaintBot(Provider):
    """An imaginary API: POST /paint returns {"id", "image_b64"}."""

    name = "paintbot"
    timeout = 20.0

    def __init__(self, *, base_url: str = "https://paintbot.example", **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.base_url = base_url

    async def generate(self, request: ImageRequest, ctx: ProviderContext) -> ProviderImage:
        try:
            response = await ctx.http.post(
                f"{self.base_url}/paint",
                json={"prompt": request.prompt, "w": request.width, "h": request.height},
                timeout=ctx.remaining(),
            )
        except httpx.TransportError as exc:
            raise ProviderUnavailable(f"connection failed: {type(exc).__name__}") from exc
        if response.status_code in (401, 403):
            raise ProviderAuthError("key refused", status=response.status_code)
        if response.status_code == 429:
            retry_after = float(response.headers.get("retry-after", "1"))
            raise ProviderRateLimited("slow down", status=429, retry_after=retry_after)
        if response.status_code == 451:
            raise ContentRejected("prompt refused by the safety filter", status=451)
        if response.status_code >= 500:
            raise ProviderUnavailable(f"HTTP {response.status_code}", status=response.status_code)
        body = response.json()
        ctx.started(body["id"])  # billable work exists from here on
        return ProviderImage(
            data=base64.b64decode(body["image_b64"]),
            width=request.width,
            height=request.height,
        )

    async def cancel(self, handle: object, ctx: ProviderContext) -> None:
        await ctx.http.post(f"{self.base_url}/paint/{handle}/cancel")


def fake_api(request: httpx.Request) -> httpx.Response:
    """Stands in for the real service."""
    if request.url.path.endswith("/cancel"):
        return httpx.Response(200)
    image = base64.b64encode(tiny_png()).decode()
    return httpx.Response(200, json={"id": "job-1", "image_b64": image})


async def main() -> None:
    async with (
        httpx.AsyncClient(transport=httpx.MockTransport(fake_api)) as http,
        ImageGenerator(providers=[PaintBot(), Placeholder(tier=1)], http=http) as gen,
    ):
        result = await gen.generate("a watercolour harbour", width=256, height=256)
        print(f"{result.provider}: {result.size} bytes, {result.content_type}")


if __name__ == "__main__":
    anyio.run(main)
