"""Google's Gemini image models: ``generateContent`` on the Gemini API (``/v1beta``) and
on Vertex AI (``/v1/projects/{p}/locations/{l}/publishers/google/models/{m}``), the
model lookups, and an OAuth token endpoint for service-account credentials."""

from __future__ import annotations

import base64
import itertools
import uuid
from typing import Any

import anyio

from ._errors import _error
from ._http import _done, _Handler, _json, _Outcome, _Request
from ._instance import _Instance
from ._profiles import _REFUSALS, Fault
from ._routes import _answer, _Routes

#: Image tokens one output costs, by ``imageSize`` (what the vendors' model pages say).
_IMAGE_TOKENS = {"1K": 1120, "2K": 1120, "4K": 2000}
_TOKENS = itertools.count(1)


class _GoogleRoutes(_Routes):
    """Gemini API and Vertex AI routes, under ``/{instance}``."""

    def _public_google(
        self, inst: _Instance, request: _Request, rest: list[str]
    ) -> _Handler | None:
        """The token endpoint a service account's ``token_uri`` names: no auth header."""
        if request.method == "POST" and rest == ["token"]:
            return lambda: self._google_token(inst, request)
        return None

    def _route_google(
        self, inst: _Instance, request: _Request, rest: list[str]
    ) -> tuple[_Handler, bool] | None:
        if rest[:1] == ["v1beta"] and rest[1:2] == ["models"] and len(rest) == 3:
            model = rest[2]
        elif rest[:2] == ["v1", "projects"] and len(rest) == 9 and rest[5:8] == [
            "publishers", "google", "models",
        ]:  # fmt: skip
            model = rest[8]
        elif rest[:4] == ["v1", "publishers", "google", "models"] and len(rest) == 5:
            model = rest[4]
        else:
            return None
        name, _, method = model.partition(":")
        if request.method == "GET" and not method:
            info = {"name": f"models/{name}", "displayName": name,
                    "supportedGenerationMethods": ["generateContent", "countTokens"]}  # fmt: skip
            return (lambda: _done(_json(200, info))), False
        if request.method == "POST" and method == "generateContent":
            return (lambda: self._google_generate(inst, name, request.json())), True
        return None

    async def _google_token(self, inst: _Instance, request: _Request) -> _Outcome:
        """An OAuth 2.0 token for a JWT bearer grant (what a service account sends)."""
        inst.counts["tokens"] += 1
        form = dict(pair.split("=", 1) for pair in request.body.decode().split("&") if "=" in pair)
        if "assertion" not in form:
            return _json(400, {"error": "invalid_grant", "error_description": "no assertion"})
        token = {"access_token": f"ya29.emulator-{next(_TOKENS)}", "expires_in": 3600,
                 "token_type": "Bearer"}  # fmt: skip
        return _json(200, token)

    async def _google_generate(self, inst: _Instance, model: str, body: Any) -> _Outcome:
        prompt = _prompt(body)
        if prompt is None:
            return _error(
                "google", 400, "* GenerateContentRequest.contents: contents is not specified"
            )
        inst.counts["creates"] += 1
        draw = inst.draw(prompt)
        if draw.fault in _REFUSALS:
            assert draw.fault is not None
            return await self._refuse(inst, draw.fault)
        if draw.fault is Fault.CONTENT_REJECTED:  # the prompt is blocked: no work, not billed
            await anyio.sleep(inst.profile.error_latency.sample(inst.rng("error")))
            feedback = {"blockReason": "PROHIBITED_CONTENT"}
            return _json(200, {"promptFeedback": feedback, "usageMetadata": _usage(prompt, 0)})
        config = body.get("generationConfig") or {}
        image_config = config.get("imageConfig") or {}
        options = image_config.get("imageOutputOptions") or {}
        fmt = "jpg" if options.get("mimeType") == "image/jpeg" else "png"
        job = self._new_job(inst, draw, prompt, fmt, body, model)
        await self._accepted(job)
        await anyio.sleep(job.latency)
        if job.fault is Fault.FAILED:  # the model answered in words only
            candidate = {"content": {"role": "model", "parts": [{"text": "I can't draw that."}]},
                         "finishReason": "NO_IMAGE", "index": 0}  # fmt: skip
            return _answer(200, _generated(candidate, prompt, 0, model), None)
        tokens = _IMAGE_TOKENS.get(str(image_config.get("imageSize") or "1K"), 1120)
        image = {"mimeType": "image/jpeg" if fmt == "jpg" else "image/png",
                 "data": base64.b64encode(self._payload(inst, job)).decode()}  # fmt: skip
        candidate = {
            "content": {"role": "model", "parts": [{"text": "Here it is."}, {"inlineData": image}]},
            "finishReason": "STOP",
            "index": 0,
        }
        return _answer(200, _generated(candidate, prompt, tokens, model), job.fault)


def _prompt(body: Any) -> str | None:
    """The text of the request's first content, or None when it has none."""
    if not isinstance(body, dict) or not isinstance(body.get("contents"), list):
        return None
    for content in body["contents"]:
        for part in content.get("parts") or () if isinstance(content, dict) else ():
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                return str(part["text"])
    return None


def _usage(prompt: str, image_tokens: int) -> dict[str, Any]:
    words = len(prompt.split())
    usage: dict[str, Any] = {
        "promptTokenCount": words,
        "candidatesTokenCount": image_tokens + 3 if image_tokens else 0,
        "totalTokenCount": words + (image_tokens + 3 if image_tokens else 0),
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": words}],
    }
    if image_tokens:
        usage["candidatesTokensDetails"] = [
            {"modality": "TEXT", "tokenCount": 3},
            {"modality": "IMAGE", "tokenCount": image_tokens},
        ]
    return usage


def _generated(candidate: dict[str, Any], prompt: str, tokens: int, model: str) -> dict[str, Any]:
    return {
        "candidates": [candidate],
        "usageMetadata": _usage(prompt, tokens),
        "modelVersion": model,
        "responseId": uuid.uuid4().hex[:22],
    }
