"""Replicate's API: predictions (create, ``Prefer: wait``, get, cancel), account, secret."""

from __future__ import annotations

from typing import Any

import anyio

from ._errors import _error
from ._http import _done, _Handler, _json, _now_iso, _Outcome, _prefer_wait, _Request
from ._instance import _Instance, _Job
from ._profiles import _REFUSALS, Fault
from ._routes import _answer, _Routes

_NOT_FOUND = "The requested resource could not be found."


class _ReplicateRoutes(_Routes):
    """Replicate's routes, under ``/{instance}/v1``."""

    def _route_replicate(
        self, inst: _Instance, request: _Request, rest: list[str]
    ) -> tuple[_Handler, bool] | None:
        if not rest or rest[0] != "v1":
            return None
        path, method = rest[1:], request.method
        if method == "POST" and len(path) == 4 and path[0] == "models" and path[3] == "predictions":
            model = f"{path[1]}/{path[2]}"
            return (lambda: self._replicate_create(inst, request, model)), True
        if method == "POST" and path == ["predictions"]:
            return (lambda: self._replicate_create(inst, request, None)), True
        if method == "GET" and len(path) == 2 and path[0] == "predictions":
            return (lambda: self._replicate_get(inst, path[1])), True
        if method == "POST" and len(path) == 3 and path[0] == "predictions" and path[2] == "cancel":
            return (lambda: self._replicate_cancel(inst, path[1])), False
        if method == "GET" and path == ["account"]:
            account = {"type": "user", "username": "emulator", "name": "Emulator"}
            return (lambda: _done(_json(200, account))), False
        if method == "GET" and path == ["webhooks", "default", "secret"]:
            secret = {"key": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}
            return (lambda: _done(_json(200, secret))), False
        return None

    async def _replicate_create(
        self, inst: _Instance, request: _Request, model: str | None
    ) -> _Outcome:
        body = request.json()
        if not isinstance(body, dict) or not isinstance(body.get("input"), dict):
            return _error("replicate", 422, "input: Invalid type. Expected: object")
        if model is None:
            version = body.get("version")
            if not isinstance(version, str) or not version:
                return _error("replicate", 422, "version is required")
            model = version
        data = body["input"]
        prompt = str(data.get("prompt", ""))
        inst.counts["creates"] += 1
        draw = inst.draw(prompt)
        if draw.fault in _REFUSALS:
            assert draw.fault is not None
            return await self._refuse(inst, draw.fault)
        job = self._new_job(inst, draw, prompt, data.get("output_format", "webp"), data, model)
        await self._accepted(job)
        wait = _prefer_wait(request.headers.get("prefer"))
        headers: tuple[tuple[str, str], ...] = ()
        if wait is not None:
            headers = (("preference-applied", f"wait={wait:g}"),)
            now = anyio.current_time()
            await anyio.sleep(max(0.0, min(job.ready, now + wait) - now))
        prediction = self._prediction(inst, job)
        return _answer(201, prediction, job.fault, headers)

    def _prediction(self, inst: _Instance, job: _Job) -> dict[str, Any]:
        now = anyio.current_time()
        api = f"{self.origin}/{inst.name}/v1/predictions/{job.id}"
        done = now >= job.ready
        status = "processing"
        output: list[str] | None = None
        error: str | None = None
        if job.cancelled:
            status = "canceled"
        elif done and job.fault is Fault.FAILED:
            status, error = "failed", "CUDA error: out of memory"
        elif done and job.fault is Fault.CONTENT_REJECTED:
            status = "failed"
            error = "NSFW content detected. Try running it again, or try a different prompt."
        elif done:
            status, output = "succeeded", [self._file_url(inst, job)]
        prediction: dict[str, Any] = {
            "id": job.id,
            "model": job.model,
            "version": "hidden",
            "input": job.input,
            "logs": "",
            "output": output,
            "data_removed": False,
            "error": error,
            "status": status,
            "source": "api",
            "created_at": job.created_at,
            "started_at": job.created_at,
            "urls": {
                "get": api,
                "cancel": f"{api}/cancel",
                "web": f"https://replicate.com/p/{job.id}",
            },
        }
        if status not in ("processing", "starting"):
            prediction["completed_at"] = _now_iso()
            prediction["metrics"] = {"predict_time": job.latency, "total_time": job.latency}
        return prediction

    async def _replicate_get(self, inst: _Instance, prediction_id: str) -> _Outcome:
        polled = await self._poll(inst, "polls", prediction_id, "replicate", _NOT_FOUND)
        if not isinstance(polled, tuple):
            return polled
        job, fault = polled
        prediction = self._prediction(inst, job)
        return _answer(200, prediction, fault)

    async def _replicate_cancel(self, inst: _Instance, prediction_id: str) -> _Outcome:
        inst.counts["cancellations"] += 1
        job = inst.jobs.get(prediction_id)
        if job is None:
            return _error("replicate", 404, _NOT_FOUND)
        if not job.cancelled and anyio.current_time() < job.ready:
            job.cancelled = True
            inst.counts["cancelled_running"] += 1
        return _json(200, self._prediction(inst, job))
