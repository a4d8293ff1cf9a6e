"""imagegen serve: the HTTP API under uvicorn, in a real process on 127.0.0.1."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from imagegen._cli import main

VENDOR_KEYS = ("REPLICATE_API_TOKEN", "FAL_KEY", "OPENAI_API_KEY", "UNSPLASH_ACCESS_KEY")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[Any]:
    """The apps ``imagegen serve`` hands to uvicorn (none run), offline, data in tmp."""
    for name in list(os.environ):
        if name.startswith("IMAGEGEN_") or name in VENDOR_KEYS:
            monkeypatch.delenv(name)
    monkeypatch.setenv("IMAGEGEN_DATA_DIR", str(tmp_path))
    apps: list[Any] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **_: apps.append(app))
    return apps


class TestServe:
    def test_serves_generate_jobs_and_health(self, tmp_path: Path) -> None:
        """The served API answers health, a generation and an async job, then stops."""
        port = free_port()
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("IMAGEGEN_") and k not in VENDOR_KEYS
        }
        env["IMAGEGEN_DATA_DIR"] = str(tmp_path)
        proc = subprocess.Popen(
            [sys.executable, "-m", "imagegen", "serve", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            with httpx.Client(base_url=base, timeout=10) as client:
                for _ in range(100):  # up to 10 s for uvicorn to start
                    try:
                        health = client.get("/health")
                        break
                    except httpx.TransportError:
                        time.sleep(0.1)
                else:
                    raise AssertionError("imagegen serve did not start")
                assert health.status_code == 200
                made = client.post(
                    "/images/generate", json={"prompt": "x", "width": 64, "height": 64}
                )
                assert made.status_code == 200
                assert made.json()["provider"] == "placeholder"
                # Not a file:// URL: the server serves its data directory itself.
                url = made.json()["url"]
                assert url.startswith(f"{base}/files/"), url
                image = client.get(url)
                assert image.status_code == 200
                assert image.headers["content-type"] == "image/png"
                assert image.headers["cache-control"] == "public, max-age=31536000, immutable"
                assert image.content == (tmp_path / "images" / made.json()["key"]).read_bytes()
                cached = client.get(url, headers={"If-None-Match": image.headers["etag"]})
                assert cached.status_code == 304
                queued = client.post(
                    "/images/generate",
                    json={"prompt": "y", "width": 64, "height": 64, "async": True},
                )
                assert queued.status_code == 202
                job_id = queued.json()["job_id"]
                for _ in range(50):
                    job = client.get(f"/jobs/{job_id}").json()
                    if job["status"] == "succeeded":
                        break
                    time.sleep(0.1)
                assert job["status"] == "succeeded"
                assert client.get("/admin/status").status_code == 403  # no admin token set
        finally:
            proc.terminate()
            proc.wait(timeout=10)


class TestServeOptions:
    """What ``imagegen serve`` reads from the environment, with uvicorn.run stubbed out."""

    @pytest.mark.anyio
    async def test_allow_provider_options_from_env(
        self, served: list[Any], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """IMAGEGEN_ALLOW_PROVIDER_OPTIONS lets exactly the listed keys through."""
        monkeypatch.setenv("IMAGEGEN_ALLOW_PROVIDER_OPTIONS", '{"placeholder": ["style"]}')
        assert main(["serve"]) == 0
        [app] = served
        transport = httpx.ASGITransport(app=app)
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=transport, base_url="http://test") as http,
        ):
            allowed = await http.post(
                "/images/generate",
                json={
                    "prompt": "x",
                    "width": 64,
                    "height": 64,
                    "provider_options": {"placeholder": {"style": "flat"}},
                },
            )
            refused = await http.post(
                "/images/generate",
                json={"prompt": "x", "provider_options": {"placeholder": {"model": "big"}}},
            )
        assert allowed.status_code == 200, allowed.text
        assert refused.status_code == 422
        assert refused.json()["errors"][0]["field"] == "provider_options.placeholder.model"

    @pytest.mark.anyio
    async def test_no_options_by_default(self, served: list[Any]) -> None:
        """Without the variable no provider option is taken."""
        assert main(["serve"]) == 0
        [app] = served
        transport = httpx.ASGITransport(app=app)
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=transport, base_url="http://test") as http,
        ):
            refused = await http.post(
                "/images/generate",
                json={"prompt": "x", "provider_options": {"placeholder": {"style": "flat"}}},
            )
        assert refused.status_code == 422

    @pytest.mark.parametrize(
        ("value", "named"),
        [
            ("openai=background", "IMAGEGEN_ALLOW_PROVIDER_OPTIONS"),
            ('{"openai": "background"}', "allow_provider_options"),
        ],
    )
    def test_bad_value_exits_2(
        self,
        served: list[Any],
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
        value: str,
        named: str,
    ) -> None:
        """Not JSON, or not names to lists of keys: exit 2 with one line, nothing served."""
        monkeypatch.setenv("IMAGEGEN_ALLOW_PROVIDER_OPTIONS", value)
        assert main(["serve"]) == 2
        assert served == []
        err = capsys.readouterr().err
        assert err.startswith("imagegen: error: ")
        assert named in err


class TestServeImageURLs:
    """Where the images' URLs point, with uvicorn.run stubbed out."""

    async def url_of_one(self, app: Any) -> str:
        transport = httpx.ASGITransport(app=app)
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=transport, base_url="http://test") as http,
        ):
            made = await http.post("/images/generate", json={"prompt": "x", "width": 64})
            assert made.status_code == 200, made.text
            url = str(made.json()["url"])
            path = "/files/" + made.json()["key"]
            assert (await http.get(path)).status_code == 200
        return url

    @pytest.mark.anyio
    @pytest.mark.parametrize(
        ("host", "prefix"),
        [("127.0.0.1", "http://127.0.0.1:8123/files/"), ("::1", "http://[::1]:8123/files/")],
    )
    async def test_urls_name_the_server(self, served: list[Any], host: str, prefix: str) -> None:
        """On a given address the URLs are that address's /files/ route."""
        assert main(["serve", "--host", host, "--port", "8123"]) == 0
        [app] = served
        assert (await self.url_of_one(app)).startswith(prefix)

    @pytest.mark.anyio
    async def test_a_public_base_url_wins(
        self, served: list[Any], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """IMAGEGEN_PUBLIC_BASE_URL (a CDN or proxy in front) names the images; the
        server still serves them at /files/ for that front to fetch."""
        monkeypatch.setenv("IMAGEGEN_PUBLIC_BASE_URL", "https://cdn.example/img/")
        assert main(["serve", "--host", "0.0.0.0"]) == 0
        [app] = served
        assert (await self.url_of_one(app)).startswith("https://cdn.example/img/")

    @pytest.mark.parametrize("host", ["0.0.0.0", "::"])
    def test_every_address_needs_a_public_base_url(
        self, served: list[Any], capsys: pytest.CaptureFixture[str], host: str
    ) -> None:
        """Listening on every address, no URL can name the server: one line, exit 2."""
        assert main(["serve", "--host", host]) == 2
        assert served == []
        err = capsys.readouterr().err
        assert err.startswith("imagegen: error: ")
        assert err.count("\n") == 1
        assert "IMAGEGEN_PUBLIC_BASE_URL" in err
