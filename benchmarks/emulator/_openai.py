"""OpenAI Images' API: image generations (URL or b64_json) and the models lookup."""

from __future__ import annotations

import base64
import time
from typing import Any

import anyio

from ._errors import _error
from ._http import _done, _Handler, _json, _Outcome, _Request
from ._instance import _Instance
from ._profiles import _REFUSALS, Fault
from ._routes import _answer, _Routes


class _OpenAIRoutes(_Routes):
    """OpenAI Images' routes, under ``/{instance}/v1``."""

    def _route_openai(
        self, inst: _Instance, request: _Request, rest: list[str]
    ) -> tuple[_Handler, bool] | None:
        if rest[:1] != ["v1"]:
            return None
        path = rest[1:]
        if request.method == "POST" and path == ["images", "generations"]:
            return (lambda: self._openai_generate(inst, request.json())), True
        if request.method == "POST" and path == ["images", "edits"]:
            return (lambda: self._openai_edit(inst, request)), True
        if request.method == "GET" and len(path) >= 2 and path[0] == "models":
            model = {"id": "/".join(path[1:]), "object": "model", "created": 0,
                     "owned_by": "emulator"}  # fmt: skip
            return (lambda: _done(_json(200, model))), False
        return None

    async def _openai_edit(self, inst: _Instance, request: _Request) -> _Outcome:
        """``POST /images/edits``: multipart, the fields of a generation plus ``image``
        (``image[]`` for several) files and an optional ``mask``; each must be an image."""
        form = request.form()
        if form is None:
            return _error("openai", 400, "Invalid Content-Type header: expected multipart.")
        images = [v for k, v in form if k in ("image", "image[]") and isinstance(v, bytes)]
        masks = [v for k, v in form if k == "mask" and isinstance(v, bytes)]
        if not images or not all(map(_is_image, [*images, *masks])):
            return _error("openai", 400, "Invalid image file or mode for image.", code=None)
        inst.counts["edits"] += 1
        inst.edits.append({"images": len(images), "mask": bool(masks), "fields": form})
        return await self._openai_generate(inst, {k: v for k, v in form if isinstance(v, str)})

    async def _openai_generate(self, inst: _Instance, body: Any) -> _Outcome:
        if not isinstance(body, dict) or not isinstance(body.get("prompt"), str):
            return _error("openai", 400, "'prompt' is a required property", code=None)
        prompt = body["prompt"]
        model = str(body.get("model") or "dall-e-2")
        inst.counts["creates"] += 1
        draw = inst.draw(prompt)
        if draw.fault in _REFUSALS:
            assert draw.fault is not None
            return await self._refuse(inst, draw.fault)
        if draw.fault is Fault.CONTENT_REJECTED:
            await anyio.sleep(inst.profile.error_latency.sample(inst.rng("error")))
            return _error(
                "openai",
                400,
                "Your request was rejected as a result of our safety system.",
                code="content_policy_violation",
            )
        gpt = model.startswith("gpt-image")
        fmt = str(body.get("output_format") or "png") if gpt else "png"
        job = self._new_job(inst, draw, prompt, fmt, body, model)
        await self._accepted(job)
        await anyio.sleep(job.latency)
        request_id = ("x-request-id", f"req_{job.id}")
        if job.fault is Fault.FAILED:
            return _error(
                "openai",
                500,
                "The server had an error while processing your request. Sorry about that!",
                type="server_error",
            )
        response_format = body.get("response_format") or ("b64_json" if gpt else "url")
        item: dict[str, Any] = {}
        if response_format == "b64_json":
            item["b64_json"] = base64.b64encode(self._payload(inst, job)).decode()
        else:
            item["url"] = self._file_url(inst, job)
        if model.startswith("dall-e-3"):
            item["revised_prompt"] = prompt
        answer: dict[str, Any] = {"created": int(time.time()), "data": [item]}
        if gpt:
            answer.update(
                background="opaque",
                output_format=fmt,
                quality=body.get("quality", "auto") if body.get("quality") != "auto" else "low",
                size=body.get("size", "1024x1024"),
                usage={
                    "input_tokens": len(prompt.split()),
                    "input_tokens_details": {"image_tokens": 0, "text_tokens": len(prompt.split())},
                    "output_tokens": 272,
                    "total_tokens": 272 + len(prompt.split()),
                },
            )
        return _answer(200, answer, job.fault, (request_id,))


def _is_image(data: bytes) -> bool:
    """PNG, JPEG or WebP by its magic bytes: what the edits endpoint takes."""
    return data.startswith((b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff")) or (
        data[:4] == b"RIFF" and data[8:12] == b"WEBP"
    )
