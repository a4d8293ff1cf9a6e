"""A real imagegen service for the end-to-end test: uvicorn on 127.0.0.1, Replicate faked.

Run as ``python replicate_service.py PORT STATE_PATH``. The app serves imagegen's API at
``/`` and, under ``/fake``, a stand-in for Replicate whose predictions never finish by
polling: only a signed webhook can complete them. Several of these processes may share
one SQLite file as their state backend, as several machines would share one Redis.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import AsyncIterator

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

from imagegen import DownloadPolicy, ImageGenerator, Replicate, SQLiteState
from imagegen.server import create_app
from imagegen.testing import tiny_png

SECRET = "whsec_No+iZL/VrSq7QMlMxlzKipmkpSFqaI2VbNVyUrfAX8M="
PREDICTION_ID = "e2e0prediction0000000000001"


def main() -> None:
    port, state_path = int(sys.argv[1]), sys.argv[2]
    base = f"http://127.0.0.1:{port}/fake"
    created: list[dict[str, object]] = []

    def prediction(status: str) -> dict[str, object]:
        return {
            "id": PREDICTION_ID,
            "status": status,
            "output": None,
            "error": None,
            "urls": {"get": f"{base}/v1/predictions/{PREDICTION_ID}"},
        }

    async def create(request: Request) -> Response:
        created.append(await request.json())
        return JSONResponse(prediction("starting"), status_code=201)

    async def get(_: Request) -> Response:
        return JSONResponse(prediction("processing"))

    async def cancel(_: Request) -> Response:
        return JSONResponse(prediction("canceled"))

    async def image(_: Request) -> Response:
        return Response(tiny_png(), media_type="image/png")

    async def seen(_: Request) -> Response:
        return JSONResponse({"created": created})

    fake = Starlette(
        routes=[
            Route("/v1/models/{owner}/{name}/predictions", create, methods=["POST"]),
            Route("/v1/predictions/{id}", get),
            Route("/v1/predictions/{id}/cancel", cancel, methods=["POST"]),
            Route("/out.png", image),
            Route("/seen", seen),
        ]
    )
    gen = ImageGenerator(
        providers=[
            Replicate(
                api_token="r8_E2E",
                base_url=f"{base}/v1",
                webhook_url="https://imagegen.example/webhooks/replicate",
                webhook_secret=SECRET,
            )
        ],
        state=SQLiteState(state_path),
        download=DownloadPolicy(allow_http=True, allow_private_networks=True),
        default_image=None,
        timeout=60.0,
    )

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        async with gen:
            yield

    app = Starlette(
        routes=[Mount("/fake", app=fake), Mount("/", app=create_app(gen, admin_token="e2e"))],
        lifespan=lifespan,
    )
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


if __name__ == "__main__":
    main()
