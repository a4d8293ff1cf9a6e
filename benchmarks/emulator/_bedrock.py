"""Amazon Bedrock: ``InvokeModel`` (``POST /model/{modelId}/invoke``, the id percent-encoded
as botocore sends it) for Stability's and Amazon's image bodies, and the control plane's
``GetFoundationModel``; SigV4 auth, errors named in ``x-amzn-ErrorType``."""

from __future__ import annotations

import base64
import uuid
from typing import Any
from urllib.parse import unquote

import anyio

from ._errors import _error
from ._http import _done, _Handler, _json, _Outcome, _Request
from ._instance import _Instance
from ._profiles import _REFUSALS, Fault
from ._routes import _answer, _Routes

_BLOCKED = (
    "This request has been blocked by our content filters. Please adjust your text prompt "
    "to submit a new request."
)


class _BedrockRoutes(_Routes):
    """Bedrock's routes, under ``/{instance}`` (the client's ``endpoint_url``)."""

    def _route_bedrock(
        self, inst: _Instance, request: _Request, rest: list[str]
    ) -> tuple[_Handler, bool] | None:
        if request.method == "POST" and len(rest) == 3 and rest[::2] == ["model", "invoke"]:
            model = unquote(rest[1])
            return (lambda: self._bedrock_invoke(inst, model, request.json())), True
        if request.method == "GET" and len(rest) == 2 and rest[0] == "foundation-models":
            return (lambda: _done(_json(200, _foundation_model(unquote(rest[1]))))), False
        return None

    async def _bedrock_invoke(self, inst: _Instance, model: str, body: Any) -> _Outcome:
        stability = isinstance(body, dict) and isinstance(body.get("prompt"), str)
        amazon = isinstance(body, dict) and isinstance(body.get("taskType"), str)
        if not (stability or amazon):
            return _error("bedrock", 400, "Malformed input request, please reformat your input "
                          "and try again.", code="ValidationException")  # fmt: skip
        prompt = body["prompt"] if stability else _amazon_text(body)
        inst.counts["creates"] += 1
        draw = inst.draw(prompt)
        if draw.fault in _REFUSALS:
            assert draw.fault is not None
            return await self._refuse(inst, draw.fault)
        if draw.fault is Fault.CONTENT_REJECTED:  # the prompt is filtered: nothing made
            await anyio.sleep(inst.profile.error_latency.sample(inst.rng("error")))
            if stability:
                filtered = {"seeds": [0], "finish_reasons": ["Filter reason: prompt"], "images": []}
                return _json(200, filtered, _request_headers())
            return _error("bedrock", 400, _BLOCKED, code="ValidationException")
        fmt = "jpg" if stability and body.get("output_format") == "jpeg" else "png"
        job = self._new_job(inst, draw, prompt, fmt, body, model)
        await self._accepted(job)
        await anyio.sleep(job.latency)
        if job.fault is Fault.FAILED:
            if stability:
                failed = {"seeds": [job.seed], "finish_reasons": ["Inference error"], "images": []}
                return _json(200, failed, _request_headers())
            return _error("bedrock", 424, "Received failed response from the model.",
                          code="ModelErrorException")  # fmt: skip
        image = base64.b64encode(self._payload(inst, job)).decode()
        answer: dict[str, Any] = {"images": [image]}
        if stability:
            answer.update(seeds=[job.seed], finish_reasons=[None])
        headers = (
            *_request_headers(),
            ("x-amzn-bedrock-invocation-latency", f"{job.latency * 1000:.0f}"),
        )
        return _answer(200, answer, job.fault, headers)


def _amazon_text(body: dict[str, Any]) -> str:
    for key in ("textToImageParams", "imageVariationParams", "inPaintingParams"):
        params = body.get(key)
        if isinstance(params, dict) and isinstance(params.get("text"), str):
            return str(params["text"])
    return ""


def _request_headers() -> tuple[tuple[str, str], ...]:
    return (("x-amzn-requestid", str(uuid.uuid4())),)


def _foundation_model(model: str) -> dict[str, Any]:
    """``GetFoundationModel``'s answer: Amazon's image models are LEGACY by late 2026."""
    legacy = model.startswith(("amazon.nova-canvas", "amazon.titan-image"))
    return {
        "modelDetails": {
            "modelArn": f"arn:aws:bedrock:us-west-2::foundation-model/{model}",
            "modelId": model,
            "modelName": model,
            "providerName": "Amazon" if model.startswith("amazon.") else "Stability AI",
            "inputModalities": ["TEXT", "IMAGE"],
            "outputModalities": ["IMAGE"],
            "responseStreamingSupported": False,
            "customizationsSupported": [],
            "inferenceTypesSupported": ["ON_DEMAND"],
            "modelLifecycle": {"status": "LEGACY" if legacy else "ACTIVE"},
        }
    }
