"""The HTTP API when the state backend fails: 503s with the documented shapes, never a 500."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Mapping
from typing import Any

import httpx
import pytest

from imagegen import ImageGenerator, MemoryStorage, StorageError
from imagegen.server import create_app
from imagegen.state import MemoryState
from imagegen.storage import StorageStats
from imagegen.testing import FakeClock, instant

pytestmark = pytest.mark.anyio

TOKEN = "s3cret-admin-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
PROBLEM = "application/problem+json"
STORAGE_DETAIL = "a backend this service depends on failed; try again later"

# Every route that reads or writes the state backend, with what it sends.
STATE_ROUTES = [
    ("GET", "/jobs/{job_id}", None),
    ("GET", "/jobs/unknown-id", None),
    ("POST", "/images/generate", {"prompt": "a red fox", "async": True}),
    ("GET", "/admin/stats", None),
    ("GET", "/admin/providers", None),
    ("POST", "/admin/circuit-breaker", {"provider": "a", "action": "open"}),
    ("PATCH", "/admin/config", {"timeout": 12}),
]
FAILURES = [
    pytest.param(ConnectionError("connection refused by 10.0.0.7:6379"), id="ConnectionError"),
    pytest.param(OSError("disk I/O error"), id="OSError"),
    pytest.param(StorageError("the state backend failed"), id="StorageError"),
]


class DownState(MemoryState):
    """A MemoryState that raises ``error`` from every call once ``down`` is set."""

    def __init__(self, error: Exception) -> None:
        super().__init__()
        self.error = error
        self.down = False

    def fail(self) -> None:
        """Raise the error when the backend is down."""
        if self.down:
            raise self.error

    async def get(self, key: str) -> bytes | None:
        """The stored value, unless down."""
        self.fail()
        return await super().get(key)

    async def set(self, key: str, value: bytes, *, ttl: float | None = None) -> None:
        """Store the value, unless down."""
        self.fail()
        await super().set(key, value, ttl=ttl)

    async def delete(self, key: str) -> None:
        """Delete the key, unless down."""
        self.fail()
        await super().delete(key)

    async def incr(self, key: str, amount: int = 1, *, ttl: float | None = None) -> int:
        """Increment, unless down."""
        self.fail()
        return await super().incr(key, amount, ttl=ttl)

    async def incr_many(self, amounts: Mapping[str, int], *, ttl: float | None = None) -> None:
        """Increment each, unless down."""
        self.fail()
        await super().incr_many(amounts, ttl=ttl)

    async def scan(self, prefix: str) -> list[str]:
        """The keys under the prefix, unless down."""
        self.fail()
        return await super().scan(prefix)

    async def set_if_absent(self, key: str, value: bytes, *, ttl: float | None = None) -> bool:
        """Store the value if absent, unless down."""
        self.fail()
        return await super().set_if_absent(key, value, ttl=ttl)


class UncountableStorage(MemoryStorage):
    """A storage whose stats() fails like a dropped connection."""

    async def stats(self) -> StorageStats:
        """Always fails."""
        raise ConnectionResetError("peer reset 10.0.0.9")


def client(app: Any) -> httpx.AsyncClient:
    """A client talking to the app in process, no network."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


def assert_503_problem(response: httpx.Response) -> dict[str, Any]:
    """A 503 problem details answer; returns its body."""
    assert response.status_code == 503, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = response.json()
    assert body["status"] == 503
    assert body["kind"] == "StorageError"
    return body


def assert_no_traceback(caplog: pytest.LogCaptureFixture) -> None:
    """Nothing was logged with a traceback or at ERROR level."""
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]


class TestStateBackendDown:
    """A state backend whose every call fails, through the real generator."""

    @pytest.mark.parametrize("error", FAILURES)
    async def test_health_is_503_degraded(
        self, error: Exception, clock: FakeClock, caplog: pytest.LogCaptureFixture
    ) -> None:
        """/health answers 503 with the report's shape and the state's error kind."""
        state = DownState(error)
        gen = ImageGenerator(providers=[instant("a")], state=state, clock=clock)
        state.down = True
        async with client(create_app(gen)) as http:
            for params in ({}, {"deep": "true"}):
                response = await http.get("/health", params=params)
                assert response.status_code == 503, response.text
                body = response.json()
                assert body["status"] == "degraded"
                assert body["state"].startswith("error: ")
                assert body["providers"] == {"a": "closed"}
        assert_no_traceback(caplog)

    @pytest.mark.parametrize("error", FAILURES)
    @pytest.mark.parametrize(("method", "path", "payload"), STATE_ROUTES)
    async def test_state_routes_are_503_problems(
        self,
        error: Exception,
        method: str,
        path: str,
        payload: object,
        clock: FakeClock,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        """Jobs, async generation and admin routes answer a 503 problem, no traceback."""
        state = DownState(error)
        async with (
            ImageGenerator(providers=[instant("a")], state=state, clock=clock) as other,
            ImageGenerator(providers=[instant("a")], state=state, clock=clock) as gen,
        ):
            job_id = await other.submit("a red fox")  # known to gen only through the state
            await other.wait(job_id, timeout=10)
            state.down = True
            async with client(create_app(gen, admin_token=TOKEN)) as http:
                url = path.format(job_id=job_id)
                response = await http.request(method, url, json=payload, headers=AUTH)
            state.down = False
        assert_503_problem(response)
        assert "10.0.0.7" not in response.text  # the backend's message stays in the log
        assert_no_traceback(caplog)
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert any(type(error).__name__ in r.getMessage() for r in warnings)

    @pytest.mark.parametrize("error", FAILURES)
    async def test_admin_status_reports_the_failure(
        self, error: Exception, clock: FakeClock, caplog: pytest.LogCaptureFixture
    ) -> None:
        """/admin/status shows the degraded report, or a 503 problem without one; no 500."""
        state = DownState(error)
        gen = ImageGenerator(providers=[instant("a")], state=state, clock=clock)
        state.down = True
        async with client(create_app(gen, admin_token=TOKEN)) as http:
            response = await http.get("/admin/status", headers=AUTH)
        if response.status_code == 200:
            body = response.json()
            assert body["status"] == "degraded"
            assert body["health"]["state"].startswith("error: ")
        else:
            assert_503_problem(response)
        assert_no_traceback(caplog)

    async def test_back_up_answers_again(self, clock: FakeClock) -> None:
        """Once the backend answers again, so do the routes."""
        state = DownState(ConnectionError("refused"))
        gen = ImageGenerator(providers=[instant("a")], state=state, clock=clock)
        async with client(create_app(gen, admin_token=TOKEN)) as http:
            state.down = True
            down = await http.get("/admin/providers", headers=AUTH)
            state.down = False
            up = await http.get("/admin/providers", headers=AUTH)
        assert down.status_code == 503
        assert up.status_code == 200


class TestForeignErrorsFromTheGenerator:
    """A backend's own exception escaping a generator method (no library wrapping)."""

    async def test_health_raising_is_503_report(self, caplog: pytest.LogCaptureFixture) -> None:
        """health() raising answers 503 degraded, naming the error kind, one warning."""
        gen = ImageGenerator(providers=[instant("a"), instant("b")])

        async def health(*, deep: bool = False) -> dict[str, Any]:
            raise sqlite3.OperationalError("database is locked")

        gen.health = health  # type: ignore[method-assign]
        async with client(create_app(gen)) as http:
            response = await http.get("/health")
        assert response.status_code == 503
        assert response.json() == {
            "status": "degraded",
            "providers": {"a": "closed", "b": "closed"},
            "state": "error: OperationalError",
        }
        assert_no_traceback(caplog)
        [warning] = [r for r in caplog.records if r.name == "imagegen.server"]
        assert "OperationalError" in warning.getMessage()

    async def test_health_raising_storage_error(self) -> None:
        """A StorageError from health() is the state's kind, still the report's shape."""
        gen = ImageGenerator(providers=[instant("a")])

        async def health(*, deep: bool = False) -> dict[str, Any]:
            raise StorageError("the state backend did not answer")

        gen.health = health  # type: ignore[method-assign]
        async with client(create_app(gen)) as http:
            response = await http.get("/health")
        assert response.status_code == 503
        assert response.json()["state"] == "error: StorageError"

    async def test_job_raising_is_503_problem(self, caplog: pytest.LogCaptureFixture) -> None:
        """job() raising a raw ConnectionError answers a 503 problem naming only its kind."""
        gen = ImageGenerator(providers=[instant("a")])

        async def job(job_id: str) -> None:
            raise ConnectionError("Error 111 connecting to 10.0.0.7:6379")

        gen.job = job  # type: ignore[method-assign]
        async with client(create_app(gen)) as http:
            response = await http.get("/jobs/some-id")
        body = assert_503_problem(response)
        assert "10.0.0.7" not in response.text
        assert_no_traceback(caplog)
        [warning] = [r for r in caplog.records if r.name == "imagegen.server"]
        assert "ConnectionError: Error 111 connecting to 10.0.0.7" in warning.getMessage()
        assert body["detail"] == STORAGE_DETAIL

    async def test_storage_stats_failing_is_503(self, caplog: pytest.LogCaptureFixture) -> None:
        """/admin/storage answers 503 when the storage cannot count."""
        gen = ImageGenerator(providers=[instant("a")], storage=UncountableStorage())
        async with client(create_app(gen, admin_token=TOKEN)) as http:
            response = await http.get("/admin/storage", headers=AUTH)
        assert_503_problem(response)
        assert_no_traceback(caplog)
        [warning] = [r for r in caplog.records if r.name == "imagegen.server"]
        assert "the storage failed (ConnectionResetError: peer reset" in warning.getMessage()
