"""Azure OpenAI: OpenAI's image models on an Azure resource, by deployment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, ClassVar, Self
from urllib.parse import quote

import httpx

from .._errors import ContentRejected, InvalidConfig, ProviderError
from .._models import ImageRequest
from ._base import ProviderContext
from ._openai import OpenAIImages
from ._payloads import checked_url
from ._tokens import AccessTokens, TokenSource

__all__ = ["AzureOpenAI"]

#: The first api-version with the GPT image models and ``/images/edits``.
DEFAULT_API_VERSION = "2025-04-01-preview"
#: The data plane's model list, for check(): the latest dated GA version.
_MODELS_API_VERSION = "2024-10-21"
#: Azure's content filter names its refusals so (besides OpenAI's own codes).
_FILTERED = frozenset({"contentFilter", "content_filter"})


class AzureOpenAI(OpenAIImages):
    """OpenAI's image models deployed on Azure OpenAI (Azure AI Foundry).

    Everything :class:`OpenAIImages` does (sizes, quality, edits as multipart with
    input images and a mask, previews, errors, usage-based cost) on the deployment's
    URL: ``{endpoint}/openai/deployments/{deployment}/images/generations?api-version=``
    (``api_version="v1"``: ``{endpoint}/openai/v1/images/generations`` with the
    deployment as ``model``). ``model`` names the model behind the deployment, for
    its size and price rules. Azure makes no WebP: a WebP request is asked for PNG,
    and the result says so.

    Auth is the ``api-key`` header, or an Entra ID token (``access_token=``: a string
    or a callable, sync or async, giving a token for the scope
    ``https://cognitiveservices.azure.com/.default``) as ``Authorization: Bearer``.
    A refusal of Azure's content filter (``contentFilter``) is a
    :class:`ContentRejected`, like OpenAI's own ``moderation_blocked``.

    Args:
        endpoint: The resource's endpoint, ``https://{resource}.openai.azure.com``;
            default: ``AZURE_OPENAI_ENDPOINT``.
        deployment: The deployment's name; default: ``AZURE_OPENAI_DEPLOYMENT``.
        api_key: The key; default: ``AZURE_OPENAI_API_KEY``.
        api_version: A dated version (default ``2025-04-01-preview``) or ``v1``.
        access_token: An Entra ID token, or a callable returning one (instead of a key).
        model: The deployment's model: ``gpt-image-1`` (default), ``gpt-image-1-mini``...

    Raises:
        InvalidConfig: No endpoint or deployment, both a key and a token, or a bad value.
    """

    name = "azure"
    env_var: ClassVar[str | None] = "AZURE_OPENAI_API_KEY"
    env_hint: ClassVar[str | None] = "AZURE_OPENAI_API_KEY (or pass access_token=)"
    env_settings: ClassVar[Mapping[str, str]] = {
        "endpoint": "AZURE_OPENAI_ENDPOINT",
        "deployment": "AZURE_OPENAI_DEPLOYMENT",
        "api_version": "OPENAI_API_VERSION",
        "model": "IMAGEGEN_AZURE_MODEL",
    }
    request_id_header: ClassVar[str | None] = "apim-request-id"

    def __init__(
        self,
        *,
        endpoint: str | None = None,
        deployment: str | None = None,
        api_key: str | None = None,
        api_version: str = DEFAULT_API_VERSION,
        access_token: TokenSource | None = None,
        model: str = "gpt-image-1",
        quality: str | None = None,
        name: str | None = None,
        tier: int | None = None,
        timeout: float | None = None,
        price_per_image: float | None = None,
    ) -> None:
        who = name or self.name
        endpoint = endpoint or os.environ.get("AZURE_OPENAI_ENDPOINT") or None
        deployment = deployment or os.environ.get("AZURE_OPENAI_DEPLOYMENT") or None
        if api_key is not None and access_token is not None:
            raise InvalidConfig(
                f"{who}: pass api_key= or access_token=, not both", field="access_token"
            )
        if not endpoint:
            raise InvalidConfig(
                f"{who}: endpoint is needed: pass endpoint= or set AZURE_OPENAI_ENDPOINT",
                field="endpoint",
            )
        root = checked_url(endpoint, "endpoint", who)
        if not isinstance(deployment, str) or not deployment.strip() or "/" in deployment:
            raise InvalidConfig(
                f"{who}: deployment is needed (the deployment's name): pass deployment= or "
                "set AZURE_OPENAI_DEPLOYMENT",
                field="deployment",
            )
        if not isinstance(api_version, str) or not api_version.strip():
            raise InvalidConfig(f"{who}: api_version must be a version", field="api_version")
        self.deployment = deployment
        self.api_version = api_version
        self.v1 = api_version == "v1"
        base = f"{root}/openai/v1" if self.v1 else f"{root}/openai/deployments/{quote(deployment)}"
        # An Entra token stands in for the key: the environment's key is not read then.
        key = api_key if access_token is None else None
        super().__init__(
            api_key=key,
            model=model,
            base_url=base,
            quality=quality,
            name=name,
            tier=tier,
            timeout=timeout,
            price_per_image=price_per_image,
        )
        if access_token is not None:
            self._key = None
            self.tokens = AccessTokens(access_token, self.name)
        self.endpoint = root

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Self | None:
        """With ``AZURE_OPENAI_API_KEY`` (or ``AZURE_OPENAI_AD_TOKEN``, an Entra ID
        token, as OpenAI's SDK reads it), ``AZURE_OPENAI_ENDPOINT`` and
        ``AZURE_OPENAI_DEPLOYMENT``; None without a key or token."""
        token = environ.get("AZURE_OPENAI_AD_TOKEN")
        if cls.key_from_env(environ) is not None or not token:
            return super().from_env(environ)
        settings: dict[str, Any] = {
            arg: environ[var] for arg, var in cls.env_settings.items() if environ.get(var)
        }
        try:
            return cls(access_token=token, **settings)
        except InvalidConfig as exc:
            variable = cls.env_settings.get(exc.field or "", exc.field or "")
            raise InvalidConfig(f"{variable}: {exc}", field=variable) from None

    def auth_headers(self) -> dict[str, str]:
        """``api-key: <key>`` (an Entra token goes as a bearer token instead)."""
        return {"api-key": self._key} if self._key is not None else {}

    def url(self, path: str) -> str:
        """``path`` below the deployment, with the ``api-version`` query (none on v1)."""
        if path.startswith(("https://", "http://")):
            return path
        url = f"{self.base_url}/{path.lstrip('/')}"
        return url if self.v1 else f"{url}?api-version={quote(self.api_version)}"

    def body_for(self, request: ImageRequest) -> dict[str, Any]:
        """OpenAI's body; on v1 ``model`` is the deployment, and WebP is asked as PNG."""
        body = super().body_for(request)
        if self.v1:
            body["model"] = self.deployment
        if body.get("output_format") == "webp":
            body["output_format"] = "png"
        return body

    async def check(self, ctx: ProviderContext) -> None:
        """The resource's model list (free): proves the endpoint and the key or token,
        not the deployment's name."""
        if self.v1:
            await self.request(ctx, "GET", f"{self.endpoint}/openai/v1/models")
        else:
            models = f"{self.endpoint}/openai/models?api-version={_MODELS_API_VERSION}"
            await self.request(ctx, "GET", models)

    def classify(
        self, response: httpx.Response, body: Any, message: str, retry_after: float | None
    ) -> ProviderError | None:
        """Azure's content filter (``contentFilter``), then OpenAI's own codes."""
        error = body.get("error") if isinstance(body, dict) else None
        code = error.get("code") if isinstance(error, dict) else None
        if response.status_code == 400 and code in _FILTERED:
            return ContentRejected(message, provider=self.name, status=400, reason=str(code))
        return super().classify(response, body, message, retry_after)

    def __repr__(self) -> str:
        auth = self.tokens.kind if self.tokens is not None else ("key" if self._key else "none")
        return (
            f"AzureOpenAI(name={self.name!r}, endpoint={self.endpoint!r}, "
            f"deployment={self.deployment!r}, auth={auth})"
        )
