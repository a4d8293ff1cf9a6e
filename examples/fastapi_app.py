"""Your own FastAPI app, with imagegen's HTTP API mounted at /imagegen.

Your routes call the generator directly (here ``POST /posts/{post_id}/cover``); the mounted
app serves imagegen's JSON API, webhooks and admin routes beside them. One generator serves
both, and FastAPI's lifespan opens and closes it.

Run: python examples/fastapi_app.py   (calls the app in-process, offline)
Serve it for real: uvicorn --app-dir examples fastapi_app:app
(needs pip install "imagegen-failover[server]" fastapi; uvicorn runs the lifespan itself)
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

import anyio
import httpx

try:
    from fastapi import Depends, FastAPI

    from imagegen.server import create_app
except ImportError as missing:
    raise SystemExit(
        f"this example needs FastAPI and the server extra ({missing.name} is missing): "
        "pip install 'imagegen-failover[server]' fastapi"
    ) from None

from imagegen import ImageGenerator, MemoryStorage, Placeholder

ADMIN_TOKEN = "change-me"  # in production: os.environ["IMAGEGEN_ADMIN_TOKEN"]

# In production: ImageGenerator.from_env() (provider keys, R2, Redis from the environment).
gen = ImageGenerator(providers=[Placeholder()], storage=MemoryStorage())


@asynccontextmanager
async def lifespan(_: FastAPI) -> AsyncIterator[None]:
    # Entering the generator gives background jobs ("async": true) and the remote cancels
    # of race losers a task group; leaving it ends them and closes the HTTP client.
    async with gen:
        yield


app = FastAPI(title="My blog", lifespan=lifespan)
# A mounted app is not part of FastAPI's OpenAPI schema: /docs lists your routes only.
app.mount("/imagegen", create_app(gen, admin_token=ADMIN_TOKEN))


def generator() -> ImageGenerator:
    """The app's generator, as a dependency (tests can override it)."""
    return gen


Generator = Annotated[ImageGenerator, Depends(generator)]


@app.get("/")
async def index() -> dict[str, str]:
    """Your own route."""
    return {"service": "my blog", "images": "/imagegen"}


@app.post("/posts/{post_id}/cover")
async def post_cover(post_id: int, images: Generator) -> dict[str, Any]:
    """Your own route that makes an image: it calls the generator, not the HTTP API."""
    result = await images.generate(
        f"a cover illustration for post {post_id}", width=640, height=320
    )
    return {
        "post_id": post_id,
        "url": result.url,
        "provider": result.provider,
        "is_default": result.is_default,
    }


async def main() -> None:
    # httpx's ASGITransport sends no lifespan events, so enter the app's lifespan here,
    # as uvicorn does at startup and shutdown.
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://blog") as client:
            cover = await client.post("/posts/42/cover")
            print("cover:", cover.status_code, cover.json()["provider"], cover.json()["url"])

            made = await client.post(
                "/imagegen/images/generate",
                json={"prompt": "a harbour", "width": 128, "height": 128},
            )
            print("mounted:", made.status_code, made.json()["provider"], made.json()["url"])

            submitted = await client.post(
                "/imagegen/images/generate",
                json={"prompt": "a lighthouse", "width": 128, "height": 128, "async": True},
            )
            job_id = submitted.json()["job_id"]
            await gen.wait(job_id, timeout=30)
            job = await client.get(f"/imagegen/jobs/{job_id}")
            print("job:", submitted.status_code, job.json()["status"])

            for headers in ({}, {"Authorization": f"Bearer {ADMIN_TOKEN}"}):
                status = await client.get("/imagegen/admin/status", headers=headers)
                print("admin:", status.status_code, "with token" if headers else "without token")

            schema = await client.get("/openapi.json")
            print("openapi:", schema.status_code, ", ".join(sorted(schema.json()["paths"])))


if __name__ == "__main__":
    anyio.run(main)
