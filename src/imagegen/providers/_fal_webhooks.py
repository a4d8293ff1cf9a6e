"""fal's webhook deliveries: Ed25519 signatures checked against fal's JWKS, or a token.

fal signs each delivery with Ed25519 and publishes its public keys as a JWKS; the
keys are fetched without our key (they are public), kept a day, and fetched again
(rarely) when a signature matches none of them, in case fal rotated them. The
alternative, ``webhook_auth="token"``, puts a fresh secret per request in the
callback URL and accepts only deliveries that bring it back.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Literal

import httpx

from .._errors import (
    InvalidConfig,
    ProviderError,
    ProviderUnavailable,
    WebhookVerificationError,
)
from .._webhooks import verify_fal_webhook
from ._base import ProviderContext, WebhookDelivery
from ._payloads import checked_url, json_or_none, with_params

__all__ = ["JWKS_URL", "TOKEN_PARAM", "FalWebhooks"]

JWKS_URL = "https://rest.alpha.fal.ai/.well-known/jwks.json"
TOKEN_PARAM = "imagegen_token"  # noqa: S105 - a query parameter's name
_JWKS_TTL = 24 * 3600.0  # fal's keys are kept a day, as public implementations do
_JWKS_REFRESH = 300.0  # an unknown signature refetches the keys at most this often


class FalWebhooks:
    """One fal provider's side of webhooks: the callback URL, and checking deliveries.

    It holds the fetched JWKS, so it is state, not a value; one per provider.

    Args:
        provider: The provider's name, for errors.
        auth: ``"signature"`` (fal's Ed25519 signature) or ``"token"``.
        jwks_url: Where fal publishes its signing keys.

    Raises:
        InvalidConfig: A bad ``auth`` or ``jwks_url`` (named as Fal's arguments).
    """

    def __init__(
        self, *, provider: str, auth: Literal["signature", "token"], jwks_url: str
    ) -> None:
        if auth not in ("signature", "token"):
            raise InvalidConfig(
                "fal: webhook_auth must be 'signature' or 'token'", field="webhook_auth"
            )
        self.provider = provider
        self.auth = auth
        self.jwks_url = checked_url(jwks_url, "jwks_url", "fal")
        self._jwks: Mapping[str, Any] | None = None
        self._fetched = -math.inf  # monotonic time of the last fetch

    async def callback(self, url: str, ctx: ProviderContext) -> str:
        """``url`` as fal should call it: with a fresh token when ``auth`` is ``"token"``."""
        if self.auth != "token":
            return url
        return with_params(url, {TOKEN_PARAM: await ctx.webhook_token()})

    async def receive(
        self,
        headers: Mapping[str, str],
        body: bytes,
        ctx: ProviderContext,
        *,
        now: float,
        params: Mapping[str, str],
    ) -> WebhookDelivery:
        """Verify a delivery and read it (see :meth:`Fal.receive_webhook`)."""
        if self.auth == "token":
            if not await ctx.check_webhook_token(params.get(TOKEN_PARAM, "")):
                raise WebhookVerificationError(
                    f"fal: the delivery's {TOKEN_PARAM} is missing, unknown or expired"
                )
        else:
            await self._verify_signature(headers, body, ctx, now=now)
        data = json_or_none(body)
        request_id = data.get("request_id") if isinstance(data, dict) else None
        if not isinstance(request_id, str) or not request_id:
            raise ProviderError(
                "fal webhook body has no request_id", provider=self.provider, retryable=False
            )
        assert isinstance(data, dict)  # noqa: S101 - narrowing for the type checker
        return WebhookDelivery(id=request_id, work_id=request_id, payload=data)

    async def _verify_signature(
        self, headers: Mapping[str, str], body: bytes, ctx: ProviderContext, *, now: float
    ) -> None:
        jwks = await self._keys(ctx, refresh=False)
        try:
            verify_fal_webhook(headers, body, jwks=jwks, now=now)
        except WebhookVerificationError:
            # fal may have rotated its keys since we fetched them: look again, rarely.
            if ctx.clock.monotonic() - self._fetched < _JWKS_REFRESH:
                raise
            verify_fal_webhook(headers, body, jwks=await self._keys(ctx, refresh=True), now=now)

    async def _keys(self, ctx: ProviderContext, *, refresh: bool) -> Mapping[str, Any]:
        """fal's JWKS, fetched without our key (it is public) and kept a day."""
        fresh = ctx.clock.monotonic() - self._fetched < _JWKS_TTL
        if self._jwks is not None and fresh and not refresh:
            return self._jwks
        try:
            response = await ctx.http.get(self.jwks_url, timeout=ctx.remaining() or None)
            response.raise_for_status()
            jwks = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise ProviderUnavailable(
                f"fal: could not fetch the webhook keys from {self.jwks_url}: {type(exc).__name__}",
                provider=self.provider,
            ) from None
        if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list):
            raise ProviderUnavailable(
                f"fal: {self.jwks_url} did not answer with a JWKS", provider=self.provider
            )
        self._jwks, self._fetched = jwks, ctx.clock.monotonic()
        return jwks
