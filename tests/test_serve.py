"""imagegen serve: the HTTP API under uvicorn, in a real process on 127.0.0.1."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class TestServe:
    def test_serves_generate_jobs_and_health(self, tmp_path: Path) -> None:
        """The served API answers health, a generation and an async job, then stops."""
        port = free_port()
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("IMAGEGEN_")
            and k not in ("REPLICATE_API_TOKEN", "FAL_KEY", "OPENAI_API_KEY", "UNSPLASH_ACCESS_KEY")
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
