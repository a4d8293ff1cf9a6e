"""Hugging Face: the Hub's model lookup (``inferenceProviderMapping``) and ``whoami-v2``,
and the router's text-to-image routes for ``hf-inference`` (the image's bytes),
``together`` and ``nscale`` (base64 in OpenAI's shape) and ``fal-ai`` (a URL); one
instance serves both hosts."""

from __future__ import annotations

import base64
from typing import Any

import anyio

from ._errors import _error
from ._http import _done, _Handler, _json, _Outcome, _Reply, _Request
from ._images import _TYPES
from ._instance import _Instance
from ._profiles import _REFUSALS, Fault
from ._routes import _answer, _Routes

#: The providers the Hub lists for every model, in the order an account prefers them:
#: replicate first, which the client does not speak, so ``auto`` moves on to together.
_MAPPING = ("replicate", "together", "fal-ai", "hf-inference", "nscale")


class _HuggingFaceRoutes(_Routes):
    """The Hub's and the router's routes, under ``/{instance}``."""

    def _route_huggingface(
        self, inst: _Instance, request: _Request, rest: list[str]
    ) -> tuple[_Handler, bool] | None:
        method = request.method
        if method == "GET" and rest == ["api", "whoami-v2"]:
            return (lambda: _done(_json(200, {"type": "user", "name": "emulator"}))), False
        if method == "GET" and len(rest) == 4 and rest[:2] == ["api", "models"]:
            return (lambda: _done(_json(200, _model_info("/".join(rest[2:]))))), False
        if method != "POST":
            return None
        if rest[:2] == ["hf-inference", "models"] and len(rest) == 4:
            return (lambda: self._hf_generate(inst, request.json(), "hf-inference")), True
        if rest[1:] == ["v1", "images", "generations"] and rest[0] in ("together", "nscale"):
            return (lambda: self._hf_generate(inst, request.json(), rest[0])), True
        if rest[:1] == ["fal-ai"] and len(rest) > 1:
            return (lambda: self._hf_generate(inst, request.json(), "fal-ai")), True
        return None

    async def _hf_generate(self, inst: _Instance, body: Any, provider: str) -> _Outcome:
        field = "inputs" if provider == "hf-inference" else "prompt"
        prompt = body.get(field) if isinstance(body, dict) else None
        if not isinstance(prompt, str):
            return _error("huggingface", 400, "prompt is required")
        inst.counts["creates"] += 1
        draw = inst.draw(prompt)
        if draw.fault in _REFUSALS:
            assert draw.fault is not None
            return await self._refuse(inst, draw.fault)
        if draw.fault is Fault.CONTENT_REJECTED:  # the provider's safety checker
            await anyio.sleep(inst.profile.error_latency.sample(inst.rng("error")))
            return _error("huggingface", 422, "NSFW content detected in the output image.")
        job = self._new_job(inst, draw, prompt, "png", body, provider)
        await self._accepted(job)
        await anyio.sleep(job.latency)
        if job.fault is Fault.FAILED:
            return _error("huggingface", 500, "Inference failed on the provider.")
        if provider == "hf-inference":
            data = self._payload(inst, job)
            if job.fault is Fault.MALFORMED_JSON:
                data = data[: max(1, len(data) // 2)]
            return _Reply(200, data, _TYPES["png"], cut=job.fault is Fault.CUT_OFF)
        if provider == "fal-ai":
            image = {"url": self._file_url(inst, job), "content_type": "image/png"}
            answer: dict[str, Any] = {"images": [image], "seed": job.seed}
        else:
            answer = {"data": [{"b64_json": base64.b64encode(self._payload(inst, job)).decode()}]}
        return _answer(200, answer, job.fault)


def _model_info(model: str) -> dict[str, Any]:
    """The Hub's answer to ``?expand[]=inferenceProviderMapping`` for ``model``."""
    ids = {"fal-ai": "fal-ai/flux/schnell", "replicate": "black-forest-labs/flux-schnell"}
    mapping = {
        provider: {
            "status": "live",
            "providerId": ids.get(provider, model),
            "task": "text-to-image",
        }
        for provider in _MAPPING
    }
    return {"id": model, "inferenceProviderMapping": mapping}
