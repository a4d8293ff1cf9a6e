"""imagegen.server.create_app through httpx.ASGITransport: every route and error code."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount

from imagegen import (
    AllProvidersFailed,
    CircuitBreaker,
    Fallback,
    Hedge,
    ImageGenerator,
    InvalidConfig,
    MemoryStorage,
    Placeholder,
    ProviderError,
    Replicate,
    Retry,
)
from imagegen._webhooks import sign_standard_webhook
from imagegen.server import create_app
from imagegen.storage import StoredObject
from imagegen.testing import FakeClock, failing, hanging, instant

pytestmark = pytest.mark.anyio

TOKEN = "s3cret-admin-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
PROBLEM = "application/problem+json"
REPLICATE_KEY = "r8_x"
SECRET = "whsec_No+iZL/VrSq7QMlMxlzKipmkpSFqaI2VbNVyUrfAX8M="
EPOCH = 1_767_225_600  # FakeClock's time() at monotonic 0

ADMIN_ROUTES = [
    ("GET", "/admin/status", None),
    ("GET", "/admin/stats", None),
    ("GET", "/admin/providers", None),
    ("GET", "/admin/storage", None),
    ("POST", "/admin/circuit-breaker", {"provider": "a", "action": "reset"}),
    ("PATCH", "/admin/config", {"timeout": 10}),
]


def client(app: Any) -> httpx.AsyncClient:
    """A client talking to the app in process, no network."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    """The response is an RFC 9457 problem with this status; returns its body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert {"type", "title", "detail"} <= body.keys()
    return body


def fields_of(body: Mapping[str, Any]) -> list[str]:
    """The field names a 422 problem lists."""
    return [e["field"] for e in body["errors"]]


class BrokenStorage(MemoryStorage):
    """A storage whose writes always fail."""

    async def put(
        self, key: str, data: bytes, *, content_type: str, metadata: Mapping[str, str]
    ) -> StoredObject:
        raise OSError("disk full")


class Chunked(httpx.AsyncByteStream):
    """A request body streamed from an async generator, sent without Content-Length."""

    def __init__(self, chunks: AsyncGenerator[bytes, None]) -> None:
        self.chunks = chunks

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self.chunks

    async def aclose(self) -> None:
        await self.chunks.aclose()


def signed(body: bytes, *, msg_id: str = "msg_1", secret: str = SECRET) -> dict[str, str]:
    """Standard Webhooks headers for ``body``, signed at FakeClock's epoch."""
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(EPOCH),
        "webhook-signature": sign_standard_webhook(secret, msg_id, EPOCH, body),
    }


class TestCreateApp:
    """Arguments and import hygiene."""

    def test_refuses_empty_token_and_bad_limit(self) -> None:
        """An empty admin token or a non-positive body limit is refused, naming the field."""
        gen = ImageGenerator(providers=[instant("a")])
        with pytest.raises(InvalidConfig) as info:
            create_app(gen, admin_token="")
        assert info.value.field == "admin_token"
        with pytest.raises(InvalidConfig) as info:
            create_app(gen, max_body_bytes=0)
        assert info.value.field == "max_body_bytes"

    def test_import_imagegen_does_not_import_server(self) -> None:
        """The server (and starlette) load only when imagegen.server is imported."""
        code = (
            "import imagegen, sys; "
            "print('imagegen.server' in sys.modules, 'starlette' in sys.modules)"
        )
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        )
        assert out.stdout.split() == ["False", "False"]


class TestGenerate:
    """POST /images/generate."""

    async def test_returns_result_fields(self, clock: FakeClock) -> None:
        """200 with the ImageResult fields at top level, without data, times ISO 8601."""
        storage = MemoryStorage()
        gen = ImageGenerator(providers=[instant("a")], storage=storage, clock=clock)
        async with client(create_app(gen)) as http:
            response = await http.post(
                "/images/generate", json={"prompt": "a red fox", "width": 512, "height": 256}
            )
        assert response.status_code == 200
        body = response.json()
        assert body["provider"] == "a"
        assert body["url"].startswith("memory://")
        assert body["is_default"] is False
        assert "data" not in body
        assert body["created_at"].startswith("2026-01-01T00:00:00")
        assert body["attempts"][0]["outcome"] == "success"

    async def test_a_shape_and_a_tier(self, clock: FakeClock) -> None:
        gen = ImageGenerator(providers=[Placeholder()], storage=MemoryStorage(), clock=clock)
        payload = {"prompt": "a red fox", "aspect_ratio": "4:1", "resolution": "1k"}
        async with client(create_app(gen)) as http:
            response = await http.post("/images/generate", json=payload)
        assert response.status_code == 200
        body = response.json()
        assert (body["width"], body["height"], body["warnings"]) == (2048, 512, [])

    async def test_hanging_provider_gives_default_image(self, clock: FakeClock) -> None:
        """A provider that never answers: the default image by the deadline, still 200."""
        gen = ImageGenerator(providers=[hanging("a")], timeout=5.0, clock=clock)
        async with client(create_app(gen)) as http:
            response = await http.post("/images/generate", json={"prompt": "a red fox"})
        assert response.status_code == 200
        assert response.json()["is_default"] is True
        assert clock.monotonic() <= 5.0

    @pytest.mark.parametrize(
        ("payload", "field"),
        [
            ({"prompt": "fox", "width": 100}, "width"),
            ({"prompt": ""}, "prompt"),
            ({"width": 512}, "prompt"),
            ({"prompt": "fox", "colour": "red"}, "colour"),
            ({"prompt": "fox", "output_format": "gif"}, "output_format"),
            ({"prompt": "fox", "async": "yes"}, "async"),
            ({"prompt": "fox", "resolution": "8K"}, "resolution"),
            ({"prompt": "fox", "resolution": "2K", "width": 512}, "resolution"),
            ([1, 2], "body"),
        ],
    )
    async def test_invalid_request_names_field(self, payload: object, field: str) -> None:
        """422 with errors naming the offending field; nothing is generated."""
        provider = instant("a")
        gen = ImageGenerator(providers=[provider])
        async with client(create_app(gen)) as http:
            response = await http.post("/images/generate", json=payload)
        body = assert_problem(response, 422)
        assert fields_of(body) == [field]
        assert provider.calls == 0

    @pytest.mark.parametrize(
        ("raw", "field"),
        [
            (b'{"prompt": "a fox \\ud800"}', "prompt"),
            (b'{"prompt": "a fox", "negative_prompt": "\\udfff"}', "negative_prompt"),
            (b'{"prompt": "a fox", "metadata": {"k": "\\ud800"}}', "metadata"),
        ],
    )
    async def test_lone_surrogates_are_422(self, raw: bytes, field: str) -> None:
        """JSON can carry a lone surrogate that no encoder takes: refused up front, not a 500."""
        provider = instant("a")
        gen = ImageGenerator(providers=[provider])
        async with client(create_app(gen)) as http:
            response = await http.post(
                "/images/generate", content=raw, headers={"content-type": "application/json"}
            )
        body = assert_problem(response, 422)
        assert fields_of(body) == [field]
        assert "valid Unicode" in body["errors"][0]["message"]
        assert provider.calls == 0

    async def test_malformed_json_is_400(self) -> None:
        """A body that is not JSON answers 400."""
        gen = ImageGenerator(providers=[instant("a")])
        async with client(create_app(gen)) as http:
            response = await http.post(
                "/images/generate",
                content=b"{not json",
                headers={"content-type": "application/json"},
            )
        assert_problem(response, 400)

    async def test_all_providers_failed_is_502_with_attempts(self, clock: FakeClock) -> None:
        """Every provider failed, no default image: 502 with the attempts and generation id."""
        gen = ImageGenerator(
            providers=[failing("a"), failing("b")], default_image=None, clock=clock
        )
        async with client(create_app(gen)) as http:
            response = await http.post("/images/generate", json={"prompt": "a red fox"})
        body = assert_problem(response, 502)
        assert body["kind"] == "AllProvidersFailed"
        assert body["generation_id"]
        assert {a["provider"] for a in body["attempts"]} == {"a", "b"}
        assert all(a["outcome"] == "error" for a in body["attempts"])
        assert body["attempts"][0]["error"]["kind"] == "ProviderError"

    async def test_circuit_open_is_502(self, clock: FakeClock) -> None:
        """Every breaker open, no default image: 502 CircuitOpen with the skipped attempts."""
        gen = ImageGenerator(providers=[instant("a")], default_image=None, clock=clock)
        await gen.breaker_for("a").force_open()
        async with client(create_app(gen)) as http:
            response = await http.post("/images/generate", json={"prompt": "a red fox"})
        body = assert_problem(response, 502)
        assert body["kind"] == "CircuitOpen"
        assert body["attempts"][0]["outcome"] == "skipped"

    async def test_storage_error_is_503(self, clock: FakeClock) -> None:
        """The image could not be stored: 503."""
        gen = ImageGenerator(
            providers=[instant("a")],
            storage=BrokenStorage(),
            retry=Retry(attempts=1),
            clock=clock,
        )
        async with client(create_app(gen)) as http:
            response = await http.post("/images/generate", json={"prompt": "a red fox"})
        assert assert_problem(response, 503)["kind"] == "StorageError"


class TestBodyLimit:
    """Bodies over max_body_bytes get 413."""

    async def test_content_length_over_limit(self) -> None:
        """A declared length over the limit is refused before reading."""
        provider = instant("a")
        gen = ImageGenerator(providers=[provider])
        app = create_app(gen, max_body_bytes=100)
        async with client(app) as http:
            response = await http.post("/images/generate", json={"prompt": "x" * 200})
        assert_problem(response, 413)
        assert provider.calls == 0

    async def test_content_length_not_a_number(self) -> None:
        """A Content-Length that is not a number answers 400."""
        gen = ImageGenerator(providers=[instant("a")])
        async with client(create_app(gen)) as http:
            response = await http.post(
                "/images/generate", content=b"{}", headers={"content-length": "two"}
            )
        assert_problem(response, 400)

    async def test_chunked_over_limit(self) -> None:
        """Without Content-Length the stream is read until the limit, then refused."""
        sent: list[int] = []

        async def body() -> AsyncGenerator[bytes, None]:
            for n in range(1000):
                sent.append(n)
                yield b'{"prompt": "' if n == 0 else b"x" * 64

        gen = ImageGenerator(providers=[instant("a")])
        app = create_app(gen, max_body_bytes=1000)
        chunks = body()
        request = httpx.Request("POST", "http://test/images/generate", stream=Chunked(chunks))
        assert "content-length" not in request.headers
        async with client(app) as http:
            try:
                response = await http.send(request)
            finally:
                # httpx's ASGITransport leaves a body the app stopped reading open.
                await chunks.aclose()
        assert_problem(response, 413)
        assert len(sent) < 1000  # reading stopped early

    async def test_chunked_under_limit_is_read(self) -> None:
        """A chunked body under the limit is taken."""

        async def body() -> AsyncIterator[bytes]:
            yield b'{"prompt": '
            yield b'"a red fox"}'

        gen = ImageGenerator(providers=[instant("a")])
        async with client(create_app(gen, max_body_bytes=1000)) as http:
            response = await http.post("/images/generate", content=body())
        assert response.status_code == 200

    async def test_limit_applies_to_webhooks_and_admin(self) -> None:
        """Webhook and admin bodies are limited too."""
        gen = ImageGenerator(providers=[instant("a")])
        app = create_app(gen, admin_token=TOKEN, max_body_bytes=10)
        async with client(app) as http:
            hook = await http.post("/webhooks/a", content=b"x" * 11)
            admin = await http.patch("/admin/config", json={"timeout": 12345}, headers=AUTH)
        assert_problem(hook, 413)
        assert_problem(admin, 413)


class TestJobs:
    """Asynchronous generation ("async": true) and GET /jobs/{id}."""

    async def test_async_generate_then_job(self, clock: FakeClock) -> None:
        """202 with a job id at once; the job reads succeeded with its result once done."""
        async with (
            ImageGenerator(providers=[instant("a")], clock=clock) as gen,
            client(create_app(gen)) as http,
        ):
            response = await http.post(
                "/images/generate", json={"prompt": "a red fox", "async": True}
            )
            assert response.status_code == 202
            body = response.json()
            assert set(body) == {"job_id", "status"}
            assert body["status"] in ("pending", "running", "succeeded")
            await gen.wait(body["job_id"], timeout=10)
            job = await http.get(f"/jobs/{body['job_id']}")
        assert job.status_code == 200
        data = job.json()
        assert data["id"] == body["job_id"]
        assert data["status"] == "succeeded"
        assert data["result"]["provider"] == "a"
        assert data["error"] is None

    async def test_failed_job_carries_error(self, clock: FakeClock) -> None:
        """A failed job reads as failed with the error's fields."""
        async with (
            ImageGenerator(providers=[failing("a")], default_image=None, clock=clock) as gen,
            client(create_app(gen)) as http,
        ):
            response = await http.post(
                "/images/generate", json={"prompt": "a red fox", "async": True}
            )
            job_id = response.json()["job_id"]
            with pytest.raises(AllProvidersFailed):
                await gen.wait(job_id, timeout=10)
            job = await http.get(f"/jobs/{job_id}")
        assert job.json()["status"] == "failed"
        assert job.json()["error"]["kind"] == "AllProvidersFailed"

    async def test_async_invalid_request_is_422(self, clock: FakeClock) -> None:
        """An async request is validated before a job starts."""
        async with (
            ImageGenerator(providers=[instant("a")], clock=clock) as gen,
            client(create_app(gen)) as http,
        ):
            response = await http.post(
                "/images/generate", json={"prompt": "fox", "seed": -1, "async": True}
            )
        assert fields_of(assert_problem(response, 422)) == ["seed"]

    async def test_async_without_running_generator_is_503(self) -> None:
        """A generator not entered with async with cannot run jobs: 503."""
        gen = ImageGenerator(providers=[instant("a")])
        async with client(create_app(gen)) as http:
            response = await http.post("/images/generate", json={"prompt": "fox", "async": True})
        assert_problem(response, 503)

    async def test_unknown_job_is_404(self) -> None:
        """An unknown job id answers 404."""
        gen = ImageGenerator(providers=[instant("a")])
        async with client(create_app(gen)) as http:
            response = await http.get("/jobs/nope")
        assert_problem(response, 404)


class TestHealth:
    """GET /health."""

    async def test_ok_is_200(self) -> None:
        """Healthy: 200 with breaker states and backend reachability."""
        gen = ImageGenerator(providers=[instant("a")])
        async with client(create_app(gen)) as http:
            response = await http.get("/health")
        assert response.status_code == 200
        body = response.json()
        assert body == {"status": "ok", "providers": {"a": "closed"}, "state": "ok"}

    async def test_degraded_is_503(self) -> None:
        """Every breaker open: 503 degraded."""
        gen = ImageGenerator(providers=[instant("a")])
        await gen.breaker_for("a").force_open()
        async with client(create_app(gen)) as http:
            response = await http.get("/health")
        assert response.status_code == 503
        assert response.json()["status"] == "degraded"

    async def test_deep_runs_checks(self) -> None:
        """?deep=true adds each provider's check ("unchecked" for one without a check())."""
        gen = ImageGenerator(providers=[instant("a"), Placeholder()])
        async with client(create_app(gen)) as http:
            response = await http.get("/health", params={"deep": "true"})
        assert response.status_code == 200
        assert response.json()["checks"] == {"a": "unchecked", "placeholder": "ok"}


class TestConfig:
    """GET /config."""

    async def test_settings_without_secrets(self) -> None:
        """Strategy, timeout, retry, breaker and providers; never a key."""
        gen = ImageGenerator(
            providers=[
                Replicate(api_token="r8_TOPSECRET", webhook_secret=SECRET),
                instant("b", tier=1),
            ],
            strategy=Hedge(delay=1.5),
            timeout=12.0,
        )
        async with client(create_app(gen)) as http:
            response = await http.get("/config")
        assert response.status_code == 200
        assert "TOPSECRET" not in response.text
        assert "whsec_" not in response.text
        body = response.json()
        assert body["strategy"]["kind"] == "hedge"
        assert body["strategy"]["delay"] == 1.5
        assert body["timeout"] == 12.0
        assert body["retry"]["attempts"] == 3
        assert body["breaker"]["failure_threshold"] == 5
        assert body["default_image"] == "placeholder"
        assert body["providers"] == [
            {"name": "replicate", "tier": 0, "enabled": True, "timeout": None},
            {"name": "b", "tier": 1, "enabled": True, "timeout": None},
        ]


class TestWebhooks:
    """POST /webhooks/{provider}."""

    def generator(self, clock: FakeClock) -> ImageGenerator:
        """A generator whose Replicate provider verifies with SECRET."""
        return ImageGenerator(
            providers=[Replicate(api_token=REPLICATE_KEY, webhook_secret=SECRET), instant("b")],
            clock=clock,
        )

    async def test_valid_signature_is_204(self, clock: FakeClock) -> None:
        """A correctly signed delivery is taken: 204, and a replay is acknowledged too."""
        body = json.dumps({"id": "pred_1", "status": "succeeded", "output": None}).encode()
        async with client(create_app(self.generator(clock))) as http:
            first = await http.post("/webhooks/replicate", content=body, headers=signed(body))
            again = await http.post("/webhooks/replicate", content=body, headers=signed(body))
        assert first.status_code == 204
        assert first.content == b""
        assert again.status_code == 204

    async def test_forged_signature_is_401(self, clock: FakeClock) -> None:
        """A delivery signed with another secret is refused with 401."""
        body = json.dumps({"id": "pred_1", "status": "succeeded"}).encode()
        forged = signed(body, secret="whsec_" + "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB")
        async with client(create_app(self.generator(clock))) as http:
            response = await http.post("/webhooks/replicate", content=body, headers=forged)
            unsigned = await http.post("/webhooks/replicate", content=body)
        assert assert_problem(response, 401)["kind"] == "WebhookVerificationError"
        assert_problem(unsigned, 401)

    async def test_provider_error_is_502_naming_it(
        self, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The provider could not verify (its keys unreachable): 502 naming the provider."""
        gen = self.generator(clock)

        async def handle_webhook(provider: str, *_: Any, **__: Any) -> str:
            raise ProviderError("could not fetch the signing keys", provider=provider)

        monkeypatch.setattr(gen, "handle_webhook", handle_webhook)
        async with client(create_app(gen)) as http:
            response = await http.post("/webhooks/replicate", content=b"{}")
        body = assert_problem(response, 502)
        assert (body["kind"], body["provider"]) == ("ProviderError", "replicate")

    async def test_unknown_provider_is_404(self, clock: FakeClock) -> None:
        """No such provider, or one that takes no webhooks: 404."""
        async with client(create_app(self.generator(clock))) as http:
            unknown = await http.post("/webhooks/nobody", content=b"{}")
            no_hooks = await http.post("/webhooks/b", content=b"{}")
        assert_problem(unknown, 404)
        assert_problem(no_hooks, 404)


class TestAdminAuth:
    """Bearer token on the admin routes."""

    @pytest.mark.parametrize(("method", "path", "payload"), ADMIN_ROUTES)
    async def test_no_token_configured_is_403(
        self, method: str, path: str, payload: object
    ) -> None:
        """Without an admin token every admin route answers 403, whatever is sent."""
        gen = ImageGenerator(providers=[instant("a")])
        async with client(create_app(gen)) as http:
            response = await http.request(method, path, json=payload, headers=AUTH)
        assert_problem(response, 403)

    @pytest.mark.parametrize(("method", "path", "payload"), ADMIN_ROUTES)
    async def test_missing_or_wrong_token_is_401(
        self, method: str, path: str, payload: object
    ) -> None:
        """A missing, wrong or non-bearer credential answers 401 with WWW-Authenticate."""
        gen = ImageGenerator(providers=[instant("a")])
        async with client(create_app(gen, admin_token=TOKEN)) as http:
            for headers in (
                {},
                {"Authorization": "Bearer wrong"},
                {"Authorization": f"Basic {TOKEN}"},
                {"Authorization": f"Bearer {TOKEN}x"},
            ):
                response = await http.request(method, path, json=payload, headers=headers)
                assert_problem(response, 401)
                assert response.headers["www-authenticate"].startswith("Bearer")
        assert gen.timeout == 30.0  # the PATCH never went through

    @pytest.mark.parametrize(("method", "path", "payload"), ADMIN_ROUTES)
    async def test_right_token_is_200(self, method: str, path: str, payload: object) -> None:
        """The right token opens every admin route."""
        gen = ImageGenerator(providers=[instant("a")])
        async with client(create_app(gen, admin_token=TOKEN)) as http:
            response = await http.request(method, path, json=payload, headers=AUTH)
        assert response.status_code == 200, response.text


class TestAdminRoutes:
    """What the admin routes answer."""

    async def test_status(self) -> None:
        """Health, providers and config together."""
        gen = ImageGenerator(providers=[instant("a")])
        async with client(create_app(gen, admin_token=TOKEN)) as http:
            body = (await http.get("/admin/status", headers=AUTH)).json()
        assert body["status"] == "ok"
        assert body["health"]["providers"] == {"a": "closed"}
        assert body["providers"][0]["name"] == "a"
        assert body["config"]["strategy"]["kind"] == "race"

    async def test_stats_with_filters(self, clock: FakeClock) -> None:
        """Counts per day and provider, filtered by provider and dates."""
        gen = ImageGenerator(
            providers=[instant("a"), instant("b", tier=1)], strategy=Fallback(), clock=clock
        )
        await gen.generate("a red fox")
        async with client(create_app(gen, admin_token=TOKEN)) as http:
            everything = await http.get("/admin/stats", headers=AUTH)
            only_a = await http.get(
                "/admin/stats",
                params={
                    "since": "2026-01-01",
                    "until": "2026-01-01T23:00:00+00:00",
                    "provider": "a",
                },
                headers=AUTH,
            )
            later = await http.get("/admin/stats", params={"since": "2026-02-01"}, headers=AUTH)
        rows = everything.json()["stats"]
        assert [(r["provider"], r["day"], r["successes"]) for r in rows] == [("a", "2026-01-01", 1)]
        assert only_a.json()["stats"] == rows
        assert later.json()["stats"] == []

    @pytest.mark.parametrize("param", ["since", "until"])
    async def test_stats_bad_date_is_422(self, param: str) -> None:
        """A date that is not ISO 8601: 422 naming the parameter."""
        gen = ImageGenerator(providers=[instant("a")])
        async with client(create_app(gen, admin_token=TOKEN)) as http:
            response = await http.get("/admin/stats", params={param: "yesterday"}, headers=AUTH)
        assert fields_of(assert_problem(response, 422)) == [param]

    async def test_providers_with_breaker_snapshots(self) -> None:
        """Each provider's status with its breaker snapshot."""
        gen = ImageGenerator(providers=[instant("a"), instant("b")])
        await gen.breaker_for("b").force_open("maintenance")
        async with client(create_app(gen, admin_token=TOKEN)) as http:
            body = (await http.get("/admin/providers", headers=AUTH)).json()
        by_name = {p["name"]: p for p in body["providers"]}
        assert by_name["a"]["breaker"]["state"] == "closed"
        assert by_name["b"]["breaker"]["state"] == "open"
        assert by_name["b"]["breaker"]["reason"] == "maintenance"
        assert by_name["b"]["breaker"]["forced"] is True
        assert by_name["b"]["enabled"] is True

    async def test_storage_stats(self, clock: FakeClock) -> None:
        """The storage's counts; null without storage."""
        storage = MemoryStorage()
        gen = ImageGenerator(providers=[instant("a")], storage=storage, clock=clock)
        await gen.generate("a red fox")
        bare = ImageGenerator(providers=[instant("a")])
        async with client(create_app(gen, admin_token=TOKEN)) as http:
            body = (await http.get("/admin/storage", headers=AUTH)).json()
        async with client(create_app(bare, admin_token=TOKEN)) as http:
            none = (await http.get("/admin/storage", headers=AUTH)).json()
        assert body["backend"] == "MemoryStorage"
        assert body["stats"]["objects"] == 1
        assert body["stats"]["bytes"] > 0
        assert none == {"backend": None, "stats": None}

    async def test_circuit_breaker_actions(self) -> None:
        """open, close and reset act on the named breaker and answer its snapshot."""
        gen = ImageGenerator(providers=[instant("a")])
        app = create_app(gen, admin_token=TOKEN)
        async with client(app) as http:
            opened = await http.post(
                "/admin/circuit-breaker", json={"provider": "a", "action": "open"}, headers=AUTH
            )
            assert opened.json()["state"] == "open"
            assert await gen.breaker_for("a").state() == "open"
            closed = await http.post(
                "/admin/circuit-breaker", json={"provider": "a", "action": "close"}, headers=AUTH
            )
            assert closed.json()["state"] == "closed"
            assert closed.json()["forced"] is True
            reset = await http.post(
                "/admin/circuit-breaker", json={"provider": "a", "action": "reset"}, headers=AUTH
            )
        assert reset.json()["state"] == "closed"
        assert reset.json()["forced"] is False

    @pytest.mark.parametrize(
        ("payload", "status", "field"),
        [
            ({"provider": "zz", "action": "open"}, 404, None),
            ({"provider": "a", "action": "explode"}, 422, "action"),
            ({"action": "open"}, 422, "provider"),
            ({"provider": "a", "action": "open", "reason": 5}, 422, "reason"),
        ],
    )
    async def test_circuit_breaker_errors(
        self, payload: dict[str, Any], status: int, field: str | None
    ) -> None:
        """Unknown provider 404; a bad action or missing provider 422 naming it."""
        gen = ImageGenerator(providers=[instant("a")])
        async with client(create_app(gen, admin_token=TOKEN)) as http:
            response = await http.post("/admin/circuit-breaker", json=payload, headers=AUTH)
        body = assert_problem(response, status)
        if field is not None:
            assert fields_of(body) == [field]

    async def test_patch_config(self) -> None:
        """Every JSON-expressible setting changes, and the answer is the new config."""
        gen = ImageGenerator(providers=[instant("a"), instant("b")])
        async with client(create_app(gen, admin_token=TOKEN)) as http:
            response = await http.patch(
                "/admin/config",
                json={
                    "timeout": 9,
                    "enabled": {"a": False},
                    "priority": ["b"],
                    "strategy": {"kind": "hedge", "delay": 0.5},
                    "retry": {"attempts": 2, "initial": 0.1},
                    "breaker": {"failure_threshold": 3},
                },
                headers=AUTH,
            )
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["timeout"] == 9
        assert body["strategy"] == {**body["strategy"], "kind": "hedge", "delay": 0.5}
        assert [(p["name"], p["enabled"]) for p in body["providers"]] == [
            ("b", True),
            ("a", False),
        ]
        assert gen.timeout == 9
        assert gen.strategy == Hedge(delay=0.5)
        assert gen.retry == Retry(attempts=2, initial=0.1)
        assert gen.breaker == CircuitBreaker(failure_threshold=3)
        assert gen.settings()["enabled"] == {"a": False, "b": True}

    @pytest.mark.parametrize(
        ("payload", "field"),
        [
            ({"timeout": -1}, "timeout"),
            ({"timeout": "soon"}, "timeout"),
            ({"enabled": {"zz": True}}, "enabled"),
            ({"priority": ["zz"]}, "priority"),
            ({"strategy": {"kind": "chaos"}}, "strategy.kind"),
            ({"strategy": "race"}, "strategy"),
            ({"strategy": {"kind": "hedge", "budget": 5}}, "strategy.budget"),
            ({"strategy": {"kind": "race", "delay": 1}}, "strategy.delay"),
            ({"retry": {"attempts": 0}}, "retry.attempts"),
            ({"retry": {"tries": 2}}, "retry.tries"),
            ({"breaker": {"window": -5}}, "breaker.window"),
            ({"breaker": 3}, "breaker"),
            ({"default_image": None}, "default_image"),
            ({"timeout": 5, "retry": {"attempts": 0}}, "retry.attempts"),
        ],
    )
    async def test_patch_config_refused_whole(self, payload: dict[str, Any], field: str) -> None:
        """A bad change answers 422 naming the field, and nothing changes."""
        gen = ImageGenerator(providers=[instant("a")])
        before = gen.settings()
        async with client(create_app(gen, admin_token=TOKEN)) as http:
            response = await http.patch("/admin/config", json=payload, headers=AUTH)
        assert fields_of(assert_problem(response, 422)) == [field]
        assert gen.settings() == before

    async def test_patch_config_bad_json_is_400(self) -> None:
        """A body that is not JSON answers 400."""
        gen = ImageGenerator(providers=[instant("a")])
        async with client(create_app(gen, admin_token=TOKEN)) as http:
            response = await http.patch("/admin/config", content=b"timeout=5", headers=AUTH)
        assert_problem(response, 400)


class TestRouting:
    """Unknown routes and methods, and mounting."""

    async def test_unknown_route_is_404_problem(self) -> None:
        """An unknown path answers a 404 problem."""
        gen = ImageGenerator(providers=[instant("a")])
        async with client(create_app(gen)) as http:
            response = await http.get("/nothing/here")
        assert_problem(response, 404)

    async def test_wrong_method_is_405_problem(self) -> None:
        """A known path with the wrong method answers a 405 problem with Allow."""
        gen = ImageGenerator(providers=[instant("a")])
        async with client(create_app(gen)) as http:
            response = await http.get("/images/generate")
        assert_problem(response, 405)
        assert "POST" in response.headers["allow"]

    async def test_mounted_under_prefix(self, clock: FakeClock) -> None:
        """Inside another Starlette app under /imagegen, every route works with the prefix."""
        gen = ImageGenerator(providers=[instant("a")], clock=clock)
        outer = Starlette(routes=[Mount("/imagegen", app=create_app(gen, admin_token=TOKEN))])
        async with client(outer) as http:
            generated = await http.post("/imagegen/images/generate", json={"prompt": "a fox"})
            health = await http.get("/imagegen/health")
            admin = await http.get("/imagegen/admin/providers", headers=AUTH)
            refused = await http.get("/imagegen/admin/providers")
            missing = await http.get("/imagegen/jobs/nope")
            unknown = await http.get("/imagegen/nothing")
        assert generated.status_code == 200
        assert generated.json()["provider"] == "a"
        assert health.status_code == 200
        assert admin.status_code == 200
        assert_problem(refused, 401)
        assert_problem(missing, 404)
        assert_problem(unknown, 404)

    async def test_unexpected_error_is_500_problem(
        self, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A bug below a route answers a 500 problem, without the exception's text."""
        gen = ImageGenerator(providers=[instant("a")])

        def broken() -> dict[str, Any]:
            raise RuntimeError("internal detail")

        monkeypatch.setattr(gen, "settings", broken)
        async with client(create_app(gen)) as http:
            response = await http.get("/config")
        assert "internal detail" not in assert_problem(response, 500)["detail"]
        assert any(r.exc_info for r in caplog.records)  # a bug keeps its traceback
