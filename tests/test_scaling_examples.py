"""The scaling examples run as documented, and create_app mounts inside FastAPI."""

from __future__ import annotations

import datetime as dt
import json
import pickle
import re
import runpy
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from imagegen import (
    ImageGenerator,
    MemoryStorage,
    Placeholder,
    ProviderUnavailable,
    Retry,
)
from imagegen.server import create_app
from imagegen.testing import failing
from redis_support import RedisServer

EXAMPLES = Path(__file__).parent.parent / "examples"
TOKEN = "mount-admin-token"


def run(path: Path) -> object:
    """Run a script as __main__; its exit code (None when it just ends)."""
    try:
        runpy.run_path(str(path), run_name="__main__")
    except SystemExit as exit_:  # the keyless path exits early
        return exit_.code
    return None


class TestFastAPIExample:
    """examples/fastapi_app.py: your routes and the mounted API, offline."""

    def test_runs_offline(
        self,
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """Its own route, the mounted routes, a job, admin auth and OpenAPI all answer."""
        monkeypatch.chdir(tmp_path)
        monkeypatch.setattr(sys, "argv", ["fastapi_app.py"])
        assert run(EXAMPLES / "fastapi_app.py") is None
        lines = capsys.readouterr().out.splitlines()
        assert len(lines) == 6, lines
        assert re.fullmatch(r"cover: 200 placeholder memory://\S+\.png", lines[0])
        assert re.fullmatch(r"mounted: 200 placeholder memory://\S+\.png", lines[1])
        # 202 then "succeeded": the job ran, so FastAPI's lifespan entered the generator
        # (without it the mounted app answers 503 to "async": true).
        assert lines[2] == "job: 202 succeeded"
        assert lines[3] == "admin: 401 without token"
        assert lines[4] == "admin: 200 with token"
        # The user's routes are documented; the mounted app is not part of the schema.
        assert lines[5] == "openapi: 200 /, /posts/{post_id}/cover"


class TestArqExample:
    """examples/arq_worker.py: jobs on an arq worker over the Redis imagegen shares."""

    def test_without_redis_url_it_explains(
        self, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Without IMAGEGEN_REDIS_URL it says what to set and exits 0, touching nothing."""
        monkeypatch.delenv("IMAGEGEN_REDIS_URL", raising=False)
        monkeypatch.setattr(sys, "argv", ["arq_worker.py"])
        assert run(EXAMPLES / "arq_worker.py") == 0
        out = capsys.readouterr().out
        assert "Set IMAGEGEN_REDIS_URL" in out
        assert "nothing was sent" in out

    # arq (0.26-0.28) closes its pool with redis-py's deprecated close(), in Worker.close().
    @pytest.mark.filterwarnings("ignore:Call to deprecated close:DeprecationWarning")
    def test_runs_jobs_on_a_worker(
        self,
        redis_db: RedisServer,
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """Three jobs run on a burst worker; another generator reads the shared state."""
        monkeypatch.setenv("IMAGEGEN_REDIS_URL", redis_db.url)
        monkeypatch.chdir(tmp_path)
        monkeypatch.setattr(sys, "argv", ["arq_worker.py"])
        assert run(EXAMPLES / "arq_worker.py") is None
        lines = capsys.readouterr().out.splitlines()

        assert lines[0] == "refused before queueing: width must be a multiple of 8 (got 100)"
        assert lines[1] == "enqueued 3 jobs on arq:imagegen"
        assert lines[2] == "worker done: 3 complete, 0 failed"
        for line in lines[3:6]:
            assert re.fullmatch(
                r"[0-9a-f]{8}: succeeded placeholder "
                r"file://\S+/arq-example/\d{4}/\d\d/\d\d/[0-9a-f]{32}\.png",
                line,
            ), line
        assert re.fullmatch(r"record [0-9a-f]{8}: succeeded by placeholder", lines[6])
        # A run that straddles midnight UTC splits the counts over two days' rows.
        pattern = r"shared stats (\S+) (\S+): (\d+) requests, (\d+) successes"
        rows = [re.fullmatch(pattern, line) for line in lines[7:]]
        assert rows, lines
        assert all(row is not None for row in rows), lines
        assert {row[2] for row in rows if row} == {"placeholder"}
        assert sum(int(row[3]) for row in rows if row) == 3
        assert sum(int(row[4]) for row in rows if row) == 3
        today = dt.datetime.now(dt.UTC).date()
        assert {dt.date.fromisoformat(row[1]) for row in rows if row} <= {
            today - dt.timedelta(days=1),
            today,
        }

        # What the worker left in Redis: imagegen's keys all under the namespace, one
        # succeeded record per job, and arq's queue drained.
        client = redis_db.client
        keys = sorted(key.decode() for key in client.scan_iter(match="imagegen:*"))
        assert keys
        assert all(key.startswith("imagegen:arq-example:") for key in keys), keys
        records = []
        for key in keys:
            raw = client.get(key)
            if ":record:" in key and isinstance(raw, bytes):
                records.append(json.loads(raw))
        assert len(records) == 3
        assert {(r["status"], r["provider"]) for r in records} == {("succeeded", "placeholder")}
        # The record the example printed is one of them, read back by id prefix.
        printed = lines[6].split()[1].rstrip(":")
        assert [r for r in records if r["id"].startswith(printed)]
        assert client.zcard("arq:imagegen") == 0


@pytest.mark.anyio
class TestArqTask:
    """examples/arq_worker.py's task function, called as arq calls it."""

    async def test_a_failed_generation_comes_back_as_picklable_data(self) -> None:
        """An imagegen error is returned as data that survives arq's pickle round trip."""
        example = runpy.run_path(str(EXAMPLES / "arq_worker.py"))
        gen = ImageGenerator(
            providers=[failing("down", error=ProviderUnavailable)],
            retry=Retry(attempts=1),
            default_image=None,
        )
        async with gen:
            answer = await example["generate_image"]({"gen": gen}, "a fox", width=64, height=64)
        back = pickle.loads(pickle.dumps(answer))
        assert back["status"] == "failed"
        assert back["error"]["kind"] == "AllProvidersFailed"
        assert "down" in back["error"]["message"]
        record = await gen.record(back["generation_id"])
        assert record is not None
        assert record.status == "failed"

    async def test_a_success_comes_back_with_its_url(self) -> None:
        """A generated image comes back with its provider, key and URL."""
        example = runpy.run_path(str(EXAMPLES / "arq_worker.py"))
        gen = ImageGenerator(providers=[Placeholder()], storage=MemoryStorage())
        async with gen:
            answer = await example["generate_image"]({"gen": gen}, "a fox", width=64, height=64)
        assert answer["status"] == "succeeded"
        assert answer["provider"] == "placeholder"
        assert answer["url"] == f"memory://{answer['key']}"
        assert answer["is_default"] is False


@pytest.mark.anyio
class TestMountInFastAPI:
    """create_app mounted at /imagegen in a FastAPI app of the user's own."""

    @pytest.fixture
    async def client(self) -> AsyncIterator[tuple[httpx.AsyncClient, FastAPI]]:
        """A FastAPI app with one route of its own and the imagegen app mounted."""
        gen = ImageGenerator(providers=[Placeholder()], storage=MemoryStorage())
        app = FastAPI(title="host app")

        @app.get("/hello")
        async def hello() -> dict[str, str]:
            return {"hello": "world"}

        app.mount("/imagegen", create_app(gen, admin_token=TOKEN))
        transport = httpx.ASGITransport(app=app)
        async with gen, httpx.AsyncClient(transport=transport, base_url="http://host") as http:
            yield http, app

    async def test_public_routes_through_the_mount(
        self, client: tuple[httpx.AsyncClient, FastAPI]
    ) -> None:
        """The host's route and imagegen's public routes answer side by side."""
        http, _ = client
        assert (await http.get("/hello")).json() == {"hello": "world"}
        made = await http.post(
            "/imagegen/images/generate", json={"prompt": "a harbour", "width": 64, "height": 64}
        )
        assert made.status_code == 200, made.text
        assert made.json()["provider"] == "placeholder"
        assert made.json()["url"].startswith("memory://")
        health = await http.get("/imagegen/health")
        assert health.status_code == 200
        assert health.json()["status"] == "ok"
        # Unknown paths under the mount get imagegen's problem details, not FastAPI's.
        missing = await http.get("/imagegen/nope")
        assert missing.status_code == 404
        assert missing.headers["content-type"].startswith("application/problem+json")

    async def test_admin_route_needs_the_token_through_the_mount(
        self, client: tuple[httpx.AsyncClient, FastAPI]
    ) -> None:
        """/imagegen/admin/stats: 401 without or with a wrong token, 200 with the right one."""
        http, _ = client
        await http.post(
            "/imagegen/images/generate", json={"prompt": "x", "width": 64, "height": 64}
        )
        missing = await http.get("/imagegen/admin/stats")
        assert missing.status_code == 401
        assert missing.headers["www-authenticate"].startswith("Bearer")
        wrong = await http.get("/imagegen/admin/stats", headers={"Authorization": "Bearer no"})
        assert wrong.status_code == 401
        right = await http.get(
            "/imagegen/admin/stats", headers={"Authorization": f"Bearer {TOKEN}"}
        )
        assert right.status_code == 200
        stats = right.json()["stats"]
        assert [(s["provider"], s["requests"]) for s in stats] == [("placeholder", 1)]

    async def test_openapi_still_builds(self, client: tuple[httpx.AsyncClient, FastAPI]) -> None:
        """The host's OpenAPI schema and docs page build with the mount present."""
        http, app = client
        schema = app.openapi()
        assert set(schema["paths"]) == {"/hello"}
        served = await http.get("/openapi.json")
        assert served.status_code == 200
        assert served.json()["paths"].keys() == {"/hello"}
        docs = await http.get("/docs")
        assert docs.status_code == 200
        assert "/openapi.json" in docs.text
