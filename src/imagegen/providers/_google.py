"""Google's Gemini image models, on the Gemini API (a key) or on Vertex AI (a project)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, ClassVar, Self
from urllib.parse import quote

import httpx

from .._errors import (
    ContentRejected,
    InvalidConfig,
    ProviderAuthError,
    ProviderError,
    ProviderQuotaExceeded,
    ProviderRateLimited,
    ProviderUnavailable,
)
from .._models import ImageRequest
from ._base import ProviderContext, ProviderImage
from ._google_auth import GoogleADC
from ._google_wire import (
    DEFAULT_MODEL,
    body_for,
    error_reasons,
    image_part,
    image_size,
    refusal,
    retry_delay,
    rules_for,
    why_no_image,
)
from ._http import HTTPProvider
from ._payloads import decode_base64
from ._prices import gemini_answer_cost, gemini_price
from ._tokens import AccessTokens, TokenSource

__all__ = ["Google"]

_GEMINI_API = "https://generativelanguage.googleapis.com/v1beta"
#: Vertex AI's multi-region locations, served from their own hosts.
_MULTI_REGIONS = frozenset({"us", "eu"})
_TRUE = frozenset({"1", "true", "yes", "on"})


def vertex_base_url(location: str) -> str:
    """Vertex AI's API root for ``location`` (``global``, ``us``/``eu``, or a region)."""
    if location == "global":
        return "https://aiplatform.googleapis.com/v1"
    if location in _MULTI_REGIONS:
        return f"https://aiplatform.{location}.rep.googleapis.com/v1"
    return f"https://{location}-aiplatform.googleapis.com/v1"


def _check_segment(value: object, field: str, provider: str) -> str:
    """A project, location or model: one URL path segment, nothing to escape."""
    if not isinstance(value, str) or not value or quote(value, safe=".-_") != value:
        raise InvalidConfig(
            f"{provider}: {field} must be a non-empty name of letters, digits, '.', '-' "
            f"and '_' (got {value!r})",
            field=field,
        )
    return value


class Google(HTTPProvider):
    """Google's Gemini image models (``generateContent``): on the Gemini API with an
    API key, or on Vertex AI with a Google Cloud project and an access token.

    One synchronous request makes one image: there is no remote job to poll or
    cancel, and a call abandoned after its request went out is billed all the
    same. Imagen (``:predict``) is not spoken: Google shut every Imagen model down
    in August 2026, on both APIs.

    **Request.** The prompt, then the input images inline (2.5 Flash Image takes 3,
    the Gemini 3 models 14; no mask); ``imageConfig.aspectRatio`` is the model's
    ratio nearest the request's width and height, and ``imageSize`` (``1K``/``2K``/
    ``4K``, Gemini 3 models only) the tier nearest its pixel count: the image is
    the model's size for them, which ``ImageResult.warnings`` reports when it differs
    from the request's. The seed goes as ``generationConfig.seed`` (Gemini does not
    promise it reproduces an image); there is no negative prompt. ``safety`` sets
    the four ``safetySettings`` categories to ``BLOCK_LOW_AND_ABOVE`` (strict) or
    ``BLOCK_NONE`` (relaxed). The output format is the model's (PNG or JPEG) on the
    Gemini API; Vertex AI is asked for PNG or JPEG. Everything in
    ``request.provider_options["google"]`` (or this provider's ``name``) is merged
    into the body last.

    **Answer.** The last image part that is not a draft (``thought``); a blocked
    prompt (``promptFeedback.blockReason``) or a refused image (``finishReason``
    ``IMAGE_SAFETY``, ``PROHIBITED_CONTENT``...) is a :class:`ContentRejected` with
    that reason; an answer in words alone (``NO_IMAGE``) is a non-retryable
    :class:`ProviderUnavailable` quoting them. The cost is read from the answer's
    ``usageMetadata``.

    **Errors.** A key Google refuses (a 400 ``API_KEY_INVALID``) is a
    :class:`ProviderAuthError`; a 429 waits the ``RetryInfo`` delay it names, unless
    its quota is a daily one (a :class:`ProviderQuotaExceeded`).

    Args:
        api_key: A Gemini API key; default: ``GEMINI_API_KEY`` or ``GOOGLE_API_KEY``.
        model: ``gemini-3.1-flash-image`` (default), ``gemini-3-pro-image``,
            ``gemini-2.5-flash-image``, or another image model's id.
        base_url: The API root; default: the Gemini API's, or Vertex AI's for
            ``location``.
        project: A Google Cloud project: use Vertex AI instead of the Gemini API.
        location: Vertex AI's location: ``global`` (default; the Gemini 3 image
            models are served only there), ``us``, ``eu`` or a region.
        access_token: Vertex AI's OAuth token, or a callable (sync or async) that
            returns one; default: Application Default Credentials (a service
            account's key file in ``GOOGLE_APPLICATION_CREDENTIALS``, gcloud's login,
            the metadata server), which needs ``pip install 'imagegen-failover[google]'``.

    Raises:
        InvalidConfig: A bad model, project or location, a token source that is
            neither a string nor a callable, or ADC without google-auth.
    """

    name = "google"
    default_base_url: ClassVar[str] = _GEMINI_API
    env_var: ClassVar[str | None] = "GEMINI_API_KEY"
    env_hint: ClassVar[str | None] = "GEMINI_API_KEY (or GOOGLE_API_KEY)"
    env_settings: ClassVar[Mapping[str, str]] = {
        "model": "IMAGEGEN_GOOGLE_MODEL",
        "base_url": "IMAGEGEN_GOOGLE_BASE_URL",
    }
    # A request sent is an image made and billed, whatever becomes of the answer.
    bills_unanswered: ClassVar[bool] = True
    unsupported: Mapping[str, str] = {
        "negative_prompt": "Gemini image models take no negative prompt",
    }

    def __init__(
        self,
        *,
        api_key: str | None = None,
        model: str = DEFAULT_MODEL,
        base_url: str | None = None,
        project: str | None = None,
        location: str = "global",
        access_token: TokenSource | None = None,
        name: str | None = None,
        tier: int | None = None,
        timeout: float | None = None,
        price_per_image: float | None = None,
    ) -> None:
        vertex = project is not None
        if not vertex and api_key is None:
            api_key = _key_from(os.environ)
        if vertex:
            _check_segment(location, "location", name or self.name)
            base_url = base_url or vertex_base_url(location)
        super().__init__(
            api_key=None if vertex else api_key,
            base_url=base_url,
            name=name,
            tier=tier,
            timeout=timeout,
            price_per_image=price_per_image,
        )
        self.model = _check_segment(model, "model", self.name)
        self.rules = rules_for(model)
        self.input_images = self.rules.input_images
        self.project = None if project is None else _check_segment(project, "project", self.name)
        self.location = location
        self.tokens = (
            AccessTokens(
                access_token,
                self.name,
                default=GoogleADC(self.name) if access_token is None else None,
            )
            if vertex
            else None
        )

    @classmethod
    def key_from_env(cls, environ: Mapping[str, str]) -> str | None:
        """``GEMINI_API_KEY``, else ``GOOGLE_API_KEY`` (the names Google's SDKs read)."""
        return _key_from(environ)

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Self | None:
        """The Gemini API with the key ``environ`` holds; or, when
        ``GOOGLE_GENAI_USE_VERTEXAI`` is true and ``GOOGLE_CLOUD_PROJECT`` is set (as
        Google's SDKs read them), Vertex AI in ``GOOGLE_CLOUD_LOCATION`` (default
        ``global``) with Application Default Credentials. None when neither is set."""
        use_vertex = environ.get("GOOGLE_GENAI_USE_VERTEXAI", "").strip().lower() in _TRUE
        project = environ.get("GOOGLE_CLOUD_PROJECT")
        if not (use_vertex and project):
            return super().from_env(environ)
        settings: dict[str, Any] = {
            arg: environ[var] for arg, var in cls.env_settings.items() if environ.get(var)
        }
        location = environ.get("GOOGLE_CLOUD_LOCATION") or "global"
        try:
            return cls(project=project, location=location, **settings)
        except InvalidConfig as exc:
            variables = {
                "project": "GOOGLE_CLOUD_PROJECT",
                "location": "GOOGLE_CLOUD_LOCATION",
                "access_token": "GOOGLE_GENAI_USE_VERTEXAI",
                **cls.env_settings,
            }
            variable = variables.get(exc.field or "", exc.field or "")
            raise InvalidConfig(f"{variable}: {exc}", field=variable) from None

    @property
    def vertex(self) -> bool:
        """Whether calls go to Vertex AI (a ``project`` was given)."""
        return self.tokens is not None

    def auth_headers(self) -> dict[str, str]:
        """``x-goog-api-key`` on the Gemini API (on Vertex AI, ``tokens`` give a bearer
        token per request instead)."""
        return {"x-goog-api-key": self._key} if self._key is not None else {}

    def model_path(self, method: str = "") -> str:
        """The model's path below ``base_url``, with ``:method`` when given."""
        suffix = f":{method}" if method else ""
        if self.project is None:
            return f"models/{self.model}{suffix}"
        return (
            f"projects/{self.project}/locations/{self.location}/publishers/google/models/"
            f"{self.model}{suffix}"
        )

    def table_price(self, request: ImageRequest) -> float | None:
        """The output tokens of one image at the size sent (see ``_prices``)."""
        return gemini_price(self.model, image_size(request, self.rules))

    async def generate(self, request: ImageRequest, ctx: ProviderContext) -> ProviderImage:
        """Make one image with one ``POST .../models/{model}:generateContent``."""
        body, warnings = body_for(request, self.rules, vertex=self.vertex)
        body.update(request.options_for(self.name))
        response = await self.request(
            ctx, "POST", self.model_path("generateContent"), json=body, create=True
        )
        # The image was made (and billed) even if we cannot read the answer.
        answer = self.json_object(response, create=True, what="a GenerateContentResponse")
        usage = answer.get("usageMetadata")
        cost = None if self.price_per_image is not None else gemini_answer_cost(self.model, usage)
        part = image_part(answer)
        if part is None:
            raise self._no_image(answer, response.status_code)
        data = decode_base64(str(part.get("data") or ""))
        if not data:
            raise ProviderUnavailable(
                "the answer's image is not valid base64",
                provider=self.name,
                status=response.status_code,
                retryable=False,
            )
        config = body.get("generationConfig")
        raw: dict[str, Any] = {
            "model": answer.get("modelVersion") or self.model,
            "response_id": answer.get("responseId"),
            "usage": usage,
            "image_config": config.get("imageConfig") if isinstance(config, dict) else None,
        }
        return ProviderImage(
            data=data,
            content_type=str(part.get("mimeType") or "") or None,
            raw=raw,
            cost=cost,
            warnings=warnings,
        )

    def _no_image(self, answer: Mapping[str, Any], status: int) -> ProviderError:
        """Why an answer holds no image: a refusal, or words instead of a picture."""
        reason = refusal(answer)
        if reason is not None:
            return ContentRejected(
                f"Gemini refused the request ({reason})",
                provider=self.name,
                status=status,
                reason=reason,
            )
        return ProviderUnavailable(
            self.redact(f"the answer holds no image: {why_no_image(answer)}"),
            provider=self.name,
            status=status,
            retryable=False,
        )

    async def check(self, ctx: ProviderContext) -> None:
        """``GET models/{model}`` on the Gemini API (proves the key and the model),
        ``GET publishers/google/models/{model}`` on Vertex AI (proves the token and the
        model; not the project's permissions). Both are free.

        Raises:
            ProviderAuthError: The key or token was refused.
            ProviderError: Status 404 when the model is unknown.
        """
        path = f"publishers/google/models/{self.model}" if self.vertex else self.model_path()
        await self.check_model(ctx, path, self.model)

    def classify(
        self, response: httpx.Response, body: Any, message: str, retry_after: float | None
    ) -> ProviderError | None:
        """A refused key (400 ``API_KEY_INVALID``) and the 429s: a daily quota spent is
        a :class:`ProviderQuotaExceeded`, any other a rate limit waiting ``RetryInfo``."""
        status = response.status_code
        reasons = error_reasons(body)
        if status == 400 and "API_KEY_INVALID" in reasons:
            return ProviderAuthError(message, provider=self.name, status=status)
        if status == 429:
            wait = retry_after if retry_after is not None else retry_delay(body)
            if any("PerDay" in reason for reason in reasons):
                return ProviderQuotaExceeded(
                    message, provider=self.name, status=status, retry_after=wait
                )
            return ProviderRateLimited(message, provider=self.name, status=status, retry_after=wait)
        return super().classify(response, body, message, retry_after)

    def __repr__(self) -> str:
        if self.tokens is None:
            return super().__repr__()
        return (
            f"Google(name={self.name!r}, project={self.project!r}, location={self.location!r}, "
            f"token={self.tokens.kind})"
        )


def _key_from(environ: Mapping[str, str]) -> str | None:
    return environ.get("GEMINI_API_KEY") or environ.get("GOOGLE_API_KEY") or None
