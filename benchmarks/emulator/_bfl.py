"""Black Forest Labs' API: task creates (``POST /v1/{model}``), ``get_result`` polls, and
the credit balance; ``x-key`` auth, FastAPI-shaped errors."""

from __future__ import annotations

from typing import Any

import anyio

from ._http import _done, _Handler, _json, _Outcome, _Request
from ._instance import _Instance, _Job
from ._profiles import _REFUSALS, Fault
from ._routes import _answer, _Routes

#: Credits (of $0.01) a task costs, by model; others cost flux-2-pro's first megapixel.
_CREDITS = {"flux-pro-1.1": 4.0, "flux-dev": 2.5, "flux-pro-1.1-ultra": 6.0,
            "flux-kontext-pro": 4.0, "flux-kontext-max": 8.0, "flux-pro-1.0-fill": 5.0}  # fmt: skip


class _BflRoutes(_Routes):
    """BFL's routes, under ``/{instance}/v1``."""

    def _route_bfl(
        self, inst: _Instance, request: _Request, rest: list[str]
    ) -> tuple[_Handler, bool] | None:
        if rest[:1] != ["v1"] or len(rest) != 2:
            return None
        endpoint = rest[1]
        if request.method == "GET" and endpoint == "get_result":
            return (lambda: self._bfl_result(inst, request.query.get("id", ""))), True
        if request.method == "GET" and endpoint == "credits":
            return (lambda: _done(_json(200, {"credits": 1000.0}))), False
        if request.method == "POST" and endpoint.startswith("flux-"):
            return (lambda: self._bfl_create(inst, endpoint, request.json())), True
        return None

    async def _bfl_create(self, inst: _Instance, model: str, body: Any) -> _Outcome:
        if not isinstance(body, dict) or not isinstance(body.get("prompt"), str):
            detail = [{"loc": ["body", "prompt"], "msg": "Field required", "type": "missing"}]
            return _json(422, {"detail": detail})
        prompt = body["prompt"]
        inst.counts["creates"] += 1
        draw = inst.draw(prompt)
        if draw.fault in _REFUSALS:
            assert draw.fault is not None
            return await self._refuse(inst, draw.fault)
        job = self._new_job(
            inst, draw, prompt, str(body.get("output_format") or "jpeg"), body, model
        )
        await self._accepted(job)
        sides = [body.get(side) for side in ("width", "height")]
        width, height = (v if isinstance(v, int) and v > 0 else 1024 for v in sides)
        megapixels = round(width * height / 1e6, 2)
        cost = _CREDITS.get(model, 3.0 + max(0.0, megapixels - 1) * 1.5)
        created = {
            "id": job.id,
            "polling_url": f"{self.origin}/{inst.name}/v1/get_result?id={job.id}",
            "cost": cost,
            "input_mp": 0.0,
            "output_mp": megapixels,
        }
        return _answer(200, created, job.fault)

    async def _bfl_result(self, inst: _Instance, task_id: str) -> _Outcome:
        polled = await self._poll(inst, "polls", task_id, "bfl", "Task not found")
        if not isinstance(polled, tuple):
            return polled
        job, fault = polled
        return _answer(200, self._task(inst, job), fault)

    def _task(self, inst: _Instance, job: _Job) -> dict[str, Any]:
        now = anyio.current_time()
        task: dict[str, Any] = {"id": job.id, "status": "Pending", "result": None,
                                "progress": None, "details": None, "preview": None}  # fmt: skip
        if now < job.ready:
            task["progress"] = round(min(0.99, (now - job.created) / max(job.latency, 1e-9)), 2)
        elif job.fault is Fault.FAILED:
            task["status"] = "Error"
        elif job.fault is Fault.CONTENT_REJECTED:
            task["status"] = "Content Moderated"
            task["details"] = {"Moderation Reasons": ["Explicit content"]}
        else:
            task["status"] = "Ready"
            task["result"] = {
                "sample": self._file_url(inst, job),
                "prompt": job.prompt,
                "seed": job.seed,
                "start_time": job.created,
                "end_time": job.ready,
                "duration": job.latency,
            }
        return task
