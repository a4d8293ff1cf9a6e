"""fal's API: the sync run host, the queue (submit, status, result, cancel), and the
Platform API's pricing lookup (what ``Fal.check()`` asks)."""

from __future__ import annotations

from typing import Any

import anyio
import attrs

from ._errors import _error
from ._http import _done, _Handler, _json, _now_iso, _Outcome, _Reply, _Request
from ._images import _TYPES
from ._instance import _Instance, _Job
from ._profiles import _REFUSALS, Fault
from ._routes import _answer, _Routes


@attrs.frozen
class _Refused:
    fault: Fault


class _FalRoutes(_Routes):
    """fal's routes, under ``/{instance}/run``, ``/{instance}/queue`` and ``/{instance}/v1``."""

    def _route_fal(
        self, inst: _Instance, request: _Request, rest: list[str]
    ) -> tuple[_Handler, bool] | None:
        if rest == ["v1", "models", "pricing"] and request.method == "GET":
            return (lambda: _done(_fal_pricing(request))), False
        if len(rest) >= 3 and rest[0] == "run" and request.method == "POST":
            return (lambda: self._fal_sync(inst, request, "/".join(rest[1:]))), True
        if len(rest) < 3 or rest[0] != "queue":
            return None
        path = rest[1:]
        if "requests" in path:
            at = path.index("requests")
            tail = path[at + 1 :]
            if request.method == "GET" and len(tail) == 2 and tail[1] == "status":
                return (lambda: self._fal_status(inst, tail[0])), True
            if request.method == "GET" and len(tail) == 1:
                return (lambda: self._fal_result(inst, tail[0])), True
            if request.method == "PUT" and len(tail) == 2 and tail[1] == "cancel":
                return (lambda: self._fal_cancel(inst, tail[0])), False
            return None
        if request.method == "POST":
            return (lambda: self._fal_submit(inst, request, "/".join(path))), True
        return None

    def _fal_start(
        self, inst: _Instance, request: _Request, app: str
    ) -> _Outcome | _Job | _Refused:
        body = request.json()
        if not isinstance(body, dict) or not isinstance(body.get("prompt"), str):
            detail = [{"loc": ["body", "prompt"], "msg": "field required", "type": "value_error"}]
            return _json(422, {"detail": detail})
        inst.counts["creates"] += 1
        draw = inst.draw(body["prompt"])
        if draw.fault in _REFUSALS:
            assert draw.fault is not None
            return _Refused(draw.fault)
        return self._new_job(
            inst, draw, body["prompt"], body.get("output_format", "jpeg"), body, app
        )

    def _fal_output(self, inst: _Instance, job: _Job) -> dict[str, Any]:
        size = job.input.get("image_size", "landscape_4_3")
        presets = {
            "square_hd": (1024, 1024),
            "square": (512, 512),
            "portrait_4_3": (768, 1024),
            "portrait_16_9": (576, 1024),
            "landscape_4_3": (1024, 768),
            "landscape_16_9": (1024, 576),
        }
        if isinstance(size, dict):
            width, height = int(size.get("width", 1024)), int(size.get("height", 768))
        else:
            width, height = presets.get(str(size), (1024, 768))
        content_type = "image/jpeg" if job.fmt == "jpg" else _TYPES.get(job.fmt, "image/png")
        return {
            "images": [
                {
                    "url": self._file_url(inst, job),
                    "width": width,
                    "height": height,
                    "content_type": content_type,
                }
            ],
            "timings": {"inference": round(job.latency, 6)},
            "seed": job.seed,
            "has_nsfw_concepts": [False],
            "prompt": job.prompt,
        }

    @staticmethod
    def _fal_model_error(job: _Job) -> _Reply | None:
        if job.fault is Fault.FAILED:
            detail = [{"loc": ["body"], "msg": "The model failed to generate an image.",
                       "type": "generation_failed"}]  # fmt: skip
        elif job.fault is Fault.CONTENT_REJECTED:
            detail = [{"loc": ["body", "prompt"], "msg": "The content could not be processed "
                       "because it contained material flagged by a content checker.",
                       "type": "content_policy_violation"}]  # fmt: skip
        else:
            return None
        return _json(422, {"detail": detail}, (("x-fal-retryable", "false"),))

    async def _fal_begin(self, inst: _Instance, request: _Request, app: str) -> _Outcome | _Job:
        """A started fal request's job, or the answer to send instead (a refusal, an error)."""
        started = self._fal_start(inst, request, app)
        if isinstance(started, _Refused):
            return await self._refuse(inst, started.fault)
        if isinstance(started, _Job):
            await self._accepted(started)
        return started

    async def _fal_sync(self, inst: _Instance, request: _Request, app: str) -> _Outcome:
        job = await self._fal_begin(inst, request, app)
        if not isinstance(job, _Job):
            return job
        await anyio.sleep(job.latency)
        failure = self._fal_model_error(job)
        if failure is not None:
            return failure
        output = self._fal_output(inst, job)
        return _answer(200, output, job.fault, (("x-fal-request-id", job.id),))

    async def _fal_submit(self, inst: _Instance, request: _Request, app: str) -> _Outcome:
        job = await self._fal_begin(inst, request, app)
        if not isinstance(job, _Job):
            return job
        # Status, result and cancel URLs drop the app's subpath, as fal's do.
        parts = app.split("/")
        root = "/".join(parts[: 3 if parts[0] in ("workflows", "comfy") else 2])
        base = f"{self.origin}/{inst.name}/queue/{root}/requests/{job.id}"
        answer = {
            "request_id": job.id,
            "gateway_request_id": job.id,
            "status": "IN_QUEUE",
            "queue_position": 0,
            "response_url": base,
            "status_url": f"{base}/status",
            "cancel_url": f"{base}/cancel",
        }
        return _answer(200, answer, job.fault)

    async def _fal_status(self, inst: _Instance, request_id: str) -> _Outcome:
        polled = await self._poll(inst, "polls", request_id, "fal", "Request not found")
        if not isinstance(polled, tuple):
            return polled
        job, fault = polled
        if job.cancelled:
            status: dict[str, Any] = {
                "status": "COMPLETED",
                "logs": [],
                "error": "Request was cancelled",
            }
        elif anyio.current_time() < job.ready:
            log = {"message": "generating", "level": "INFO", "source": "USER",
                   "timestamp": _now_iso()}  # fmt: skip
            status = {"status": "IN_PROGRESS", "logs": [log]}
        else:
            status = {"status": "COMPLETED", "logs": [],
                      "metrics": {"inference_time": round(job.latency, 6)}}  # fmt: skip
            if job.fault in (Fault.FAILED, Fault.CONTENT_REJECTED):
                status["error"] = "Invalid status code: 422"
        return _answer(200, status, fault)

    async def _fal_result(self, inst: _Instance, request_id: str) -> _Outcome:
        polled = await self._poll(inst, "polls", request_id, "fal", "Request not found")
        if not isinstance(polled, tuple):
            return polled
        job, fault = polled
        if job.cancelled or anyio.current_time() < job.ready:
            return _error("fal", 400, "Request is still in progress")
        failure = self._fal_model_error(job)
        if failure is not None:
            return failure
        output = self._fal_output(inst, job)
        return _answer(200, output, fault)

    async def _fal_cancel(self, inst: _Instance, request_id: str) -> _Outcome:
        inst.counts["cancellations"] += 1
        job = inst.jobs.get(request_id)
        if job is None:
            return _json(404, {"status": "NOT_FOUND"})
        if job.cancelled or anyio.current_time() >= job.ready:
            return _json(400, {"status": "ALREADY_COMPLETED"})
        job.cancelled = True
        inst.counts["cancelled_running"] += 1
        return _json(202, {"status": "CANCELLATION_REQUESTED"})


def _fal_pricing(request: _Request) -> _Reply:
    """``GET /v1/models/pricing?endpoint_id=a,b``: one price per endpoint id, in fal's shape.

    Like every route it wants fal's ``Key`` scheme; it also checks the key's shape,
    ``id:secret`` (fal's keys all have it), and refuses any other with fal's 401, so
    ``Fal.check()`` can fail here. The price is a nominal one.
    """
    key = request.headers.get("authorization", "").removeprefix("Key ")
    key_id, colon, secret = key.partition(":")
    if not (key_id.strip() and colon and secret.strip()):
        return _error("fal", 401, "Invalid Key Authorization header format")
    ids = [i.strip() for i in request.query.get("endpoint_id", "").split(",") if i.strip()]
    if not ids:
        detail = [{"loc": ["query", "endpoint_id"], "msg": "field required",
                   "type": "value_error.missing"}]  # fmt: skip
        return _json(422, {"detail": detail})
    prices = [{"endpoint_id": i, "unit_price": 0.003, "unit": "megapixels", "currency": "USD"}
              for i in ids]  # fmt: skip
    return _json(200, {"prices": prices, "next_cursor": None, "has_more": False})
