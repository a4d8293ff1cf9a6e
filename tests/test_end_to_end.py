"""Over real HTTP: a job submitted to one uvicorn process, completed by a signed webhook
that lands on another process sharing its state backend."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from imagegen._webhooks import sign_standard_webhook

SERVICE = Path(__file__).parent / "e2e" / "replicate_service.py"
SECRET = "whsec_No+iZL/VrSq7QMlMxlzKipmkpSFqaI2VbNVyUrfAX8M="
PREDICTION_ID = "e2e0prediction0000000000001"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_up(client: httpx.Client) -> None:
    for _ in range(150):  # up to 15 s for uvicorn to start
        try:
            client.get("/health")
        except httpx.TransportError:
            time.sleep(0.1)
        else:
            return
    raise AssertionError("the service did not start")


def poll(client: httpx.Client, path: str, done: Any, *, seconds: float = 15.0) -> Any:
    """GET ``path`` until ``done(json)`` holds; bounded."""
    end = time.monotonic() + seconds
    while True:
        body = client.get(path).json()
        if done(body) or time.monotonic() > end:
            return body
        time.sleep(0.05)


@pytest.fixture
def services(tmp_path: Path) -> Iterator[tuple[httpx.Client, httpx.Client]]:
    """Two service processes on 127.0.0.1 sharing one SQLite state file."""
    state = tmp_path / "state.sqlite3"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IMAGEGEN_", "REPLICATE_"))}
    ports = [free_port(), free_port()]
    procs = [
        subprocess.Popen(
            [sys.executable, str(SERVICE), str(port), str(state)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for port in ports
    ]
    clients = [httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) for port in ports]
    try:
        for client in clients:
            wait_until_up(client)
        yield clients[0], clients[1]
    finally:
        for client in clients:
            client.close()
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=10)


def delivery(base_url: str, msg_id: str, *, at: int | None = None) -> tuple[dict[str, str], bytes]:
    body = json.dumps(
        {
            "id": PREDICTION_ID,
            "status": "succeeded",
            "output": [f"{base_url}/fake/out.png"],
            "error": None,
        }
    ).encode()
    stamp = int(time.time()) if at is None else at
    headers = {
        "webhook-id": msg_id,
        "webhook-timestamp": str(stamp),
        "webhook-signature": sign_standard_webhook(SECRET, msg_id, stamp, body),
        "content-type": "application/json",
    }
    return headers, body


class TestSignedWebhookCompletesAJob:
    """The issue's end-to-end check, across two real processes."""

    def test_job_completed_by_webhook_on_another_process(
        self, services: tuple[httpx.Client, httpx.Client]
    ) -> None:
        """Submit on A; forged, stale and real deliveries on B; the job succeeds once."""
        api, other = services
        queued = api.post("/images/generate", json={"prompt": "a lighthouse", "async": True})
        assert queued.status_code == 202
        job_id = queued.json()["job_id"]
        seen = poll(api, "/fake/seen", lambda body: body["created"])
        webhook = seen["created"][0]["webhook"]
        assert webhook == "https://imagegen.example/webhooks/replicate"
        assert poll(api, f"/jobs/{job_id}", lambda j: j["status"] == "running")["status"] == (
            "running"
        )

        headers, body = delivery(str(api.base_url), "msg_e2e")
        forged = other.post(
            "/webhooks/replicate", headers=headers, content=body.replace(b"succeeded", b"failed")
        )
        assert forged.status_code == 401
        stale_headers, stale_body = delivery(
            str(api.base_url), "msg_old", at=int(time.time()) - 600
        )
        stale = other.post("/webhooks/replicate", headers=stale_headers, content=stale_body)
        assert stale.status_code == 401
        assert other.get(f"/jobs/{job_id}").json()["status"] == "running"

        accepted = other.post("/webhooks/replicate", headers=headers, content=body)
        assert accepted.status_code == 204
        job = poll(other, f"/jobs/{job_id}", lambda j: j["status"] != "running")
        assert job["status"] == "succeeded", job
        assert job["result"]["provider"] == "replicate"

        replay = other.post("/webhooks/replicate", headers=headers, content=body)
        assert replay.status_code == 204
        assert api.get(f"/jobs/{job_id}").json() == job


class TestSharedSettings:
    """A settings change made on one process is served by the other."""

    def test_patch_on_one_process_reaches_the_other(
        self, services: tuple[httpx.Client, httpx.Client]
    ) -> None:
        """PATCH /admin/config on A; B's /config shows it; a bad PATCH changes nothing."""
        api, other = services
        auth = {"Authorization": "Bearer e2e"}
        assert other.get("/config").json()["timeout"] == 60.0
        changed = api.patch("/admin/config", json={"timeout": 42.0}, headers=auth)
        assert changed.status_code == 200
        seen = poll(other, "/config", lambda c: c["timeout"] == 42.0)
        assert seen["timeout"] == 42.0
        bad = api.patch("/admin/config", json={"timeout": 42.0, "retry": {"x": 1}}, headers=auth)
        assert bad.status_code == 422
        assert other.get("/config").json()["timeout"] == 42.0
