"""OpenAI Images' API: image generations and edits (URL or b64_json, or streamed as
server-sent events with partial images for GPT image models) and the models lookup."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import anyio

from ._errors import _error
from ._http import _done, _Handler, _json, _Outcome, _Reply, _Request
from ._instance import _Instance, _Job
from ._profiles import _REFUSALS, Fault
from ._routes import _answer, _Routes

Header = tuple[str, str]


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

    def _route_azure(
        self, inst: _Instance, request: _Request, rest: list[str]
    ) -> tuple[_Handler, bool] | None:
        """Azure OpenAI: the deployment routes (``?api-version=`` required) and v1."""
        deployment = rest[:2] == ["openai", "deployments"] and len(rest) == 5
        v1 = rest[:2] == ["openai", "v1"]
        action = rest[3:] if deployment else rest[2:] if v1 else []
        if deployment and "api-version" not in request.query:
            missing = _error("azure", 404, "Resource not found")
            return (lambda: _done(missing)), False
        if request.method == "POST" and action == ["images", "generations"]:
            return (lambda: self._openai_generate(inst, request.json(), api="azure")), True
        if request.method == "POST" and action == ["images", "edits"]:
            return (lambda: self._openai_edit(inst, request, api="azure")), True
        if request.method == "GET" and rest in (["openai", "models"], ["openai", "v1", "models"]):
            models = {"object": "list", "data": [{"id": "gpt-image-1", "object": "model"}]}
            return (lambda: _done(_json(200, models))), False
        return None

    async def _openai_edit(
        self, inst: _Instance, request: _Request, api: str = "openai"
    ) -> _Outcome:
        """``POST /images/edits``: multipart, the fields of a generation plus ``image``
        (``image[]`` for several) files and an optional ``mask``; each must be an image."""
        form = request.form()
        if form is None:
            return _error(api, 400, "Invalid Content-Type header: expected multipart.")
        images = [v for k, v in form if k in ("image", "image[]") and isinstance(v, bytes)]
        masks = [v for k, v in form if k == "mask" and isinstance(v, bytes)]
        if not images or not all(map(_is_image, [*images, *masks])):
            return _error(api, 400, "Invalid image file or mode for image.", code=None)
        inst.counts["edits"] += 1
        inst.edits.append({"images": len(images), "mask": bool(masks), "fields": form})
        fields = {k: v for k, v in form if isinstance(v, str)}
        return await self._openai_generate(inst, fields, kind="image_edit", api=api)

    async def _openai_generate(
        self, inst: _Instance, body: Any, kind: str = "image_generation", api: str = "openai"
    ) -> _Outcome:
        if not isinstance(body, dict) or not isinstance(body.get("prompt"), str):
            return _error(api, 400, "'prompt' is a required property", code=None)
        prompt = body["prompt"]
        model = str(body.get("model") or "dall-e-2")
        inst.counts["creates"] += 1
        draw = inst.draw(prompt)
        if draw.fault in _REFUSALS:
            assert draw.fault is not None
            return await self._refuse(inst, draw.fault)
        if draw.fault is Fault.CONTENT_REJECTED:
            await anyio.sleep(inst.profile.error_latency.sample(inst.rng("error")))
            if api == "azure":  # Azure's own content filter answers first
                said = "Your task failed as a result of our safety system."
                return _error(api, 400, said, code="contentFilter")
            return _error(
                api,
                400,
                "Your request was rejected as a result of our safety system.",
                code="content_policy_violation",
            )
        gpt = model.startswith("gpt-image")
        fmt = str(body.get("output_format") or "png") if gpt else "png"
        job = self._new_job(inst, draw, prompt, fmt, body, model)
        await self._accepted(job)
        request_id = ("x-request-id", f"req_{job.id}")
        if gpt and body.get("stream") in (True, "true"):
            inst.counts["streams"] += 1
            return self._openai_stream(inst, job, body, kind, request_id)
        await anyio.sleep(job.latency)
        if job.fault is Fault.FAILED:
            return _error(
                api,
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
                usage=_usage(prompt),
            )
        return _answer(200, answer, job.fault, (request_id,))

    def _openai_stream(
        self, inst: _Instance, job: _Job, body: dict[str, Any], kind: str, request_id: Header
    ) -> _Reply:
        """``partial_images`` (0 to 3) partial images, then the image, as server-sent
        events spread over the job's latency; a FAILED job ends with an error event."""
        try:
            previews = max(0, min(3, int(body.get("partial_images") or 0)))
        except ValueError:
            previews = 0
        image = base64.b64encode(self._payload(inst, job)).decode()
        common = {
            "created_at": int(time.time()),
            "size": body.get("size", "1024x1024"),
            "quality": body.get("quality") or "low",
            "background": "opaque",
            "output_format": job.fmt,
        }
        step = job.latency / (previews + 1)
        pieces = [
            (step, _event(f"{kind}.partial_image", {**common, "b64_json": image,
                                                      "partial_image_index": index}))
            for index in range(previews)
        ]  # fmt: skip
        if job.fault is Fault.FAILED:
            error = {"type": "server_error", "code": None, "message": "The server had an error."}
            pieces.append((step, _event("error", {"type": "error", "error": error})))
        else:
            final = {**common, "b64_json": image, "usage": _usage(job.prompt)}
            pieces.append((step, _event(f"{kind}.completed", final)))
        return _Reply(
            200, content_type="text/event-stream", headers=(request_id,), pieces=tuple(pieces)
        )


def _usage(prompt: str) -> dict[str, Any]:
    words = len(prompt.split())
    return {
        "input_tokens": words,
        "input_tokens_details": {"image_tokens": 0, "text_tokens": words},
        "output_tokens": 272,
        "total_tokens": 272 + words,
    }


def _event(kind: str, data: dict[str, Any]) -> bytes:
    """One server-sent event: its type, and its data (with the type in it) as JSON."""
    payload = json.dumps({"type": kind, **data}, separators=(",", ":"))
    return f"event: {kind}\ndata: {payload}\n\n".encode()


def _is_image(data: bytes) -> bool:
    """PNG, JPEG or WebP by its magic bytes: what the edits endpoint takes."""
    return data.startswith((b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff")) or (
        data[:4] == b"RIFF" and data[8:12] == b"WEBP"
    )
