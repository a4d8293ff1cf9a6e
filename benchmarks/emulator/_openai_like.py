"""OpenAI-like dialects: Together AI's images API and xAI's (Grok Imagine).

Together: ``width``/``height``, ``response_format`` ``base64``, a 422 for NSFW.
xAI: ``aspect_ratio``/``resolution``, JSON edits at ``/v1/images/edits``, a refusal in
a 200 (``respect_moderation: false``), the cost in ``usage.cost_in_usd_ticks``.
"""

from __future__ import annotations

import base64
from typing import Any

import anyio

from ._errors import _error
from ._http import _done, _Handler, _json, _Outcome, _Request
from ._instance import _Instance
from ._profiles import _REFUSALS, Fault
from ._routes import _answer, _Routes

_XAI_TICKS = 200_000_000  # $0.02, grok-imagine-image's price, in xAI's ticks


class _OpenAILikeRoutes(_Routes):
    """Together's and xAI's routes, under ``/{instance}/v1``."""

    def _route_together(
        self, inst: _Instance, request: _Request, rest: list[str]
    ) -> tuple[_Handler, bool] | None:
        if request.method == "POST" and rest == ["v1", "images", "generations"]:
            return (lambda: self._dialect_generate(inst, request.json(), "together")), True
        if request.method == "GET" and rest == ["v1", "models"]:
            models = [{"id": "black-forest-labs/FLUX.1-schnell", "type": "image"}]
            return (lambda: _done(_json(200, models))), False
        return None

    def _route_xai(
        self, inst: _Instance, request: _Request, rest: list[str]
    ) -> tuple[_Handler, bool] | None:
        if request.method == "POST" and rest in (
            ["v1", "images", "generations"], ["v1", "images", "edits"],
        ):  # fmt: skip
            return (lambda: self._dialect_generate(inst, request.json(), "xai")), True
        if request.method == "GET" and rest == ["v1", "api-key"]:
            key = {"redacted_api_key": "xai-...ator", "api_key_blocked": False,
                   "api_key_disabled": False, "acls": ["api-key:endpoint:*"]}  # fmt: skip
            return (lambda: _done(_json(200, key))), False
        return None

    async def _dialect_generate(self, inst: _Instance, body: Any, api: str) -> _Outcome:
        if not isinstance(body, dict) or not isinstance(body.get("prompt"), str):
            return _error(api, 400, "prompt is required", code=None)
        if api == "xai" and "size" in body:
            return _error(api, 400, "Argument not supported: size", code=None)
        prompt = body["prompt"]
        inst.counts["creates"] += 1
        draw = inst.draw(prompt)
        if draw.fault in _REFUSALS:
            assert draw.fault is not None
            return await self._refuse(inst, draw.fault)
        if draw.fault is Fault.CONTENT_REJECTED and api == "together":  # refused, not made
            await anyio.sleep(inst.profile.error_latency.sample(inst.rng("error")))
            return _error(api, 422, "NSFW content detected in the image.", code=None)
        fmt = str(body.get("output_format") or "jpeg") if api == "together" else "jpg"
        job = self._new_job(inst, draw, prompt, fmt, body, str(body.get("model") or ""))
        await self._accepted(job)
        await anyio.sleep(job.latency)
        if job.fault is Fault.FAILED:
            return _error(api, 500, "The server had an error while processing your request.",
                          type="server_error")  # fmt: skip
        wants = body.get("response_format")
        inline = wants == ("base64" if api == "together" else "b64_json")
        item: dict[str, Any] = (
            {"b64_json": base64.b64encode(self._payload(inst, job)).decode()}
            if inline
            else {"url": self._file_url(inst, job)}
        )
        if api == "together":
            answer: dict[str, Any] = {"id": f"img-{job.id}", "model": job.model,
                                      "object": "list",
                                      "data": [{"index": 0, "type": "b64_json" if inline
                                                else "url", **item}]}  # fmt: skip
        else:
            if job.fault is Fault.CONTENT_REJECTED:  # xAI refuses in a 200
                item = {"url": None, "b64_json": None, "respect_moderation": False}
            item.update(mime_type="image/jpeg", revised_prompt="")
            answer = {"data": [item], "usage": {"cost_in_usd_ticks": _XAI_TICKS}}
        return _answer(200, answer, job.fault)
