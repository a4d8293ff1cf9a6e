"""The shapes of the HTTP API's answers: every bad field in one 422, one time format,
nested errors without empty members."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from imagegen import (
    CircuitBreaker,
    CircuitOpen,
    Fallback,
    ImageGenerator,
    Job,
    ProviderUnavailable,
    Retry,
)
from imagegen.server import create_app
from imagegen.testing import FakeClock, failing, instant

pytestmark = pytest.mark.anyio

TOKEN = "s3cret-admin-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
PROBLEM = "application/problem+json"
#: The one time format of the API: ISO 8601, UTC, with microseconds and the offset.
TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00$")


def client(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    return body


def errors_of(body: dict[str, Any]) -> dict[str, str]:
    """Field -> message of a 422's ``errors`` (each field listed once)."""
    fields = [e["field"] for e in body["errors"]]
    assert len(fields) == len(set(fields)), fields
    return {e["field"]: e["message"] for e in body["errors"]}


def nested_errors(data: object) -> Iterator[dict[str, Any]]:
    """Every error inside an ``attempts`` list, however deep."""
    if isinstance(data, dict):
        for attempt in data.get("attempts") or ():
            error = attempt.get("error")
            if error is not None:
                yield error
                yield from nested_errors(error)
        for name, value in data.items():
            if name != "attempts":
                yield from nested_errors(value)
    elif isinstance(data, list):
        for item in data:
            yield from nested_errors(item)


def assert_no_empty_members(data: object) -> None:
    errors = list(nested_errors(data))
    assert errors, "no nested error to check"
    for error in errors:
        empty = {k: v for k, v in error.items() if v is None or v in ([], {}, "")}
        assert not empty, error
        assert {"kind", "message"} <= error.keys()


def tripping_breaker() -> CircuitBreaker:
    """A breaker one failure opens (not forced: it has a next trial)."""
    return CircuitBreaker(failure_threshold=1, consecutive_failures=1, reset_timeout=30)


class TestEveryBadField:
    """One 422 lists every refused field, each with its rule."""

    async def test_lists_each_bad_field(self, clock: FakeClock) -> None:
        """The brief's example: prompt, width and seed, each with the library's rule."""
        gen = ImageGenerator(providers=[instant("a")], clock=clock)
        async with client(create_app(gen)) as http:
            response = await http.post(
                "/images/generate", json={"prompt": "", "width": 100, "seed": -1}
            )
        body = problem(response, 422)
        errors = errors_of(body)
        assert list(errors) == ["prompt", "width", "seed"]
        assert "empty" in errors["prompt"]
        assert "multiple of 8" in errors["width"]
        assert "between 0 and" in errors["seed"]
        assert body["detail"] == errors["prompt"]
        assert body["kind"] == "InvalidRequest"

    async def test_async_lists_each_bad_field_and_starts_nothing(self, clock: FakeClock) -> None:
        """``"async": true`` too, and no job is started."""
        provider = instant("a")
        async with (
            ImageGenerator(providers=[provider], clock=clock) as gen,
            client(create_app(gen)) as http,
        ):
            response = await http.post(
                "/images/generate",
                json={"prompt": "fox", "height": 65, "seed": "7", "async": True},
            )
        assert list(errors_of(problem(response, 422))) == ["height", "seed"]
        assert provider.calls == 0

    async def test_server_and_library_rules_together(self, clock: FakeClock) -> None:
        """The server's own rules (async, timeout cap, provider options) and the library's
        (experiment_key, timeout, unknown fields, request fields) in one answer."""
        gen = ImageGenerator(providers=[instant("a")], timeout=20, clock=clock)
        app = create_app(gen, allow_provider_options={"openai": ["background"]})
        async with client(app) as http:
            response = await http.post(
                "/images/generate",
                json={
                    "prompt": "fox",
                    "async": "yes",
                    "provider_options": {"openai": {"n": 10}},
                    "experiment_key": "",
                    "colour": "red",
                    "output_format": "gif",
                    "timeout": 600,
                },
            )
            bad_timeout = await http.post(
                "/images/generate", json={"prompt": " ", "timeout": "soon"}
            )
        errors = errors_of(problem(response, 422))
        assert set(errors) == {
            "async",
            "provider_options.openai.n",
            "timeout",
            "experiment_key",
            "colour",
            "output_format",
        }
        assert "at most 20" in errors["timeout"]
        assert list(errors_of(problem(bad_timeout, 422))) == ["prompt", "timeout"]

    async def test_missing_prompt_beside_other_bad_fields(self, clock: FakeClock) -> None:
        """A missing prompt is listed with the other refusals."""
        gen = ImageGenerator(providers=[instant("a")], clock=clock)
        async with client(create_app(gen)) as http:
            response = await http.post("/images/generate", json={"width": 100})
        errors = errors_of(problem(response, 422))
        assert list(errors) == ["prompt", "width"]
        assert errors["prompt"] == "prompt is required"

    async def test_good_request_still_generates(self, clock: FakeClock) -> None:
        """Checking each field alone changes nothing for a valid request."""
        provider = instant("a")
        gen = ImageGenerator(providers=[provider], clock=clock)
        async with client(create_app(gen)) as http:
            response = await http.post(
                "/images/generate",
                json={"prompt": "fox", "width": 512, "seed": 7, "experiment_key": "u1"},
            )
        assert response.status_code == 200, response.text
        assert provider.calls == 1


class TestTimes:
    """Every time in the API's JSON: ISO 8601, UTC, with its offset, one format."""

    async def test_job_deadline_is_a_time(self, clock: FakeClock) -> None:
        """A job's deadline (Unix seconds in the library) is shown as a time; the
        library's own form, the one the state backend stores, is unchanged."""
        async with (
            ImageGenerator(providers=[instant("a")], clock=clock) as gen,
            client(create_app(gen)) as http,
        ):
            response = await http.post("/images/generate", json={"prompt": "fox", "async": True})
            job_id = response.json()["job_id"]
            await gen.wait(job_id, timeout=10)
            body = (await http.get(f"/jobs/{job_id}")).json()
            job = await gen.job(job_id)
        assert job is not None
        assert job.deadline is not None
        assert TIME.match(body["deadline"]), body["deadline"]
        shown = dt.datetime.fromisoformat(body["deadline"])
        assert shown == dt.datetime.fromtimestamp(job.deadline, tz=dt.UTC)
        assert TIME.match(body["result"]["created_at"]), body["result"]["created_at"]
        assert isinstance(job.to_dict()["deadline"], float)
        assert Job.from_dict(job.to_dict()).deadline == job.deadline

    async def test_result_and_breaker_times(self, clock: FakeClock) -> None:
        """created_at, a breaker's since and next_trial (/admin/providers and
        /admin/circuit-breaker) share the format; stats days stay dates."""
        gen = ImageGenerator(
            providers=[failing("a", error=ProviderUnavailable), instant("b")],
            strategy=Fallback(),  # a fails first, then b answers
            breaker=tripping_breaker(),
            retry=Retry(attempts=1),
            clock=clock,
        )
        async with client(create_app(gen, admin_token=TOKEN)) as http:
            result = (await http.post("/images/generate", json={"prompt": "fox"})).json()
            providers = (await http.get("/admin/providers", headers=AUTH)).json()
            forced = await http.post(
                "/admin/circuit-breaker", json={"provider": "b", "action": "open"}, headers=AUTH
            )
            stats = (await http.get("/admin/stats", headers=AUTH)).json()
        assert result["provider"] == "b"
        assert TIME.match(result["created_at"]), result["created_at"]
        by_name = {p["name"]: p["breaker"] for p in providers["providers"]}
        assert by_name["a"]["state"] == "open"
        assert TIME.match(by_name["a"]["since"]), by_name["a"]
        assert TIME.match(by_name["a"]["next_trial"]), by_name["a"]
        assert by_name["b"]["since"] is None  # never changed state: no time to show
        assert TIME.match(forced.json()["since"]), forced.json()
        days = {row["day"] for row in stats["stats"]}
        assert days == {"2026-01-01"}


class TestNestedErrors:
    """An error inside an attempt lists only the members it has."""

    async def test_circuit_open_problem(self, clock: FakeClock) -> None:
        """502 CircuitOpen: each skipped attempt's error is kind and message only."""
        gen = ImageGenerator(providers=[instant("a")], default_image=None, clock=clock)
        await gen.breaker_for("a").force_open()
        async with client(create_app(gen)) as http:
            response = await http.post("/images/generate", json={"prompt": "fox"})
        body = problem(response, 502)
        assert body["generation_id"]  # the problem's own members stay
        assert body["attempts"][0]["outcome"] == "skipped"
        assert body["attempts"][0]["error"] == {
            "kind": "CircuitOpen",
            "message": "circuit open for a",
        }
        assert_no_empty_members(body)

    async def test_default_image_result(self, clock: FakeClock) -> None:
        """200 with the default image: skipped and failed attempts alike."""
        gen = ImageGenerator(
            providers=[failing("a"), instant("b")], retry=Retry(attempts=1), clock=clock
        )
        await gen.breaker_for("b").force_open()
        async with client(create_app(gen)) as http:
            response = await http.post("/images/generate", json={"prompt": "fox"})
        body = response.json()
        assert response.status_code == 200, body
        assert body["is_default"] is True
        by_provider = {a["provider"]: a for a in body["attempts"]}
        assert by_provider["b"]["error"] == {"kind": "CircuitOpen", "message": "circuit open for b"}
        failed = by_provider["a"]["error"]
        assert failed["kind"] == "ProviderError"
        assert failed["provider"] == "a"
        assert failed["retryable"] is False  # False says something: it stays
        assert_no_empty_members(body)

    async def test_failed_job(self, clock: FakeClock) -> None:
        """A job that failed with CircuitOpen: its error keeps its members, the
        attempts' errors lose their empty ones."""
        async with (
            ImageGenerator(providers=[instant("a")], default_image=None, clock=clock) as gen,
            client(create_app(gen)) as http,
        ):
            await gen.breaker_for("a").force_open()
            response = await http.post("/images/generate", json={"prompt": "fox", "async": True})
            job_id = response.json()["job_id"]
            with pytest.raises(CircuitOpen):
                await gen.wait(job_id, timeout=10)
            body = (await http.get(f"/jobs/{job_id}")).json()
        assert body["error"]["kind"] == "CircuitOpen"
        assert body["error"]["generation_id"]
        assert body["error"]["attempts"][0]["error"] == {
            "kind": "CircuitOpen",
            "message": "circuit open for a",
        }
        assert_no_empty_members(body)
