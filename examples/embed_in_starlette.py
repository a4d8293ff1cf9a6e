"""Mount imagegen's HTTP API inside your own Starlette (or FastAPI) app.

Run: python examples/embed_in_starlette.py   (calls the mounted API in-process, offline)
Serve it for real with: uvicorn examples.embed_in_starlette:app
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import httpx

try:
    from starlette.applications import Starlette
    from starlette.routing import Mount

    from imagegen.server import create_app
except ImportError as missing:
    raise SystemExit(
        f"this example needs the server extra ({missing.name} is missing): "
        "pip install 'imagegen-failover[server]'"
    ) from None

from imagegen import ImageGenerator, MemoryStorage, Placeholder

gen = ImageGenerator(providers=[Placeholder()], storage=MemoryStorage())


@asynccontextmanager
async def lifespan(_: Starlette) -> AsyncIterator[None]:
    async with gen:  # jobs and background cancels run in the generator's task group
        yield


app = Starlette(
    routes=[Mount("/imagegen", app=create_app(gen, admin_token="change-me"))], lifespan=lifespan
)


async def main() -> None:
    async with gen:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
            made = await client.post(
                "/imagegen/images/generate",
                json={"prompt": "a harbour", "width": 128, "height": 128},
            )
            print(made.status_code, made.json()["provider"], made.json()["url"])
            status = await client.get(
                "/imagegen/admin/status", headers={"Authorization": "Bearer change-me"}
            )
            print("admin:", status.status_code)


if __name__ == "__main__":
    anyio.run(main)
