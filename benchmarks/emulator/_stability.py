"""Stability AI's v2beta API: ``POST /v2beta/stable-image/generate/{core|ultra|sd3}``
(multipart, the image's bytes in the answer with ``finish-reason`` and ``seed`` headers,
or JSON), and ``GET /v1/user/balance``."""

from __future__ import annotations

import base64
import uuid
from typing import Any

import anyio
import attrs

from ._http import _done, _Handler, _json, _Outcome, _Reply, _Request
from ._images import _TYPES
from ._instance import _Instance
from ._profiles import _REFUSALS, Fault
from ._routes import _Routes


def _problem(status: int, name: str, message: str) -> _Reply:
    """An error in Stability's shape: ``{"id", "name", "errors"}``."""
    return _json(status, {"id": uuid.uuid4().hex, "name": name, "errors": [message]})


class _StabilityRoutes(_Routes):
    """Stability's routes, under ``/{instance}``."""

    def _route_stability(
        self, inst: _Instance, request: _Request, rest: list[str]
    ) -> tuple[_Handler, bool] | None:
        if request.method == "GET" and rest == ["v1", "user", "balance"]:
            return (lambda: _done(_json(200, {"credits": 1000.0}))), False
        if (
            request.method == "POST"
            and rest[:3] == ["v2beta", "stable-image", "generate"]
            and len(rest) == 4
            and rest[3] in ("core", "ultra", "sd3")
        ):
            return (lambda: self._stability_generate(inst, request)), True
        return None

    async def _stability_generate(self, inst: _Instance, request: _Request) -> _Outcome:
        form = request.form()
        if form is None:
            return _problem(400, "bad_request", "Content-Type must be multipart/form-data")
        fields = {k: v for k, v in form if isinstance(v, str)}
        if not fields.get("prompt"):
            return _problem(400, "bad_request", "prompt: cannot be empty")
        inst.counts["creates"] += 1
        draw = inst.draw(fields["prompt"])
        if draw.fault in _REFUSALS:
            assert draw.fault is not None
            return await self._refuse(inst, draw.fault)
        if draw.fault is Fault.CONTENT_REJECTED:  # the prompt is flagged: nothing made
            await anyio.sleep(inst.profile.error_latency.sample(inst.rng("error")))
            said = "Your request was flagged by our content moderation system."
            return _problem(403, "content_moderation", said)
        fmt = fields.get("output_format", "png")
        job = self._new_job(
            inst, draw, fields["prompt"], fmt, dict(fields), fields.get("model", "")
        )
        await self._accepted(job)
        await anyio.sleep(job.latency)
        if job.fault is Fault.FAILED:
            return _problem(500, "internal_error", "An unexpected server error occurred.")
        data = self._payload(inst, job)
        headers = (("finish-reason", "SUCCESS"), ("seed", str(job.seed)))
        if "application/json" in request.headers.get("accept", ""):
            answer: Any = {"image": base64.b64encode(data).decode(), "finish_reason": "SUCCESS",
                           "seed": job.seed}  # fmt: skip
            reply = _json(200, answer, headers)
        else:
            reply = _Reply(200, data, _TYPES.get(job.fmt, "image/png"), headers)
        if job.fault is Fault.MALFORMED_JSON:  # the bytes cut short
            return attrs.evolve(reply, body=reply.body[: max(1, len(reply.body) // 2)])
        return attrs.evolve(reply, cut=True) if job.fault is Fault.CUT_OFF else reply
