"""fal's webhook deliveries: Ed25519 signatures checked against fal's JWKS, or a token.

fal signs each delivery with Ed25519 and publishes its public keys as a JWKS; the
keys are fetched without our key (they are public), kept a day, and fetched again
(rarely) when a signature matches none of them, in case fal rotated them. The
alternative, ``webhook_auth="token"``, puts a fresh secret per request in the
callback URL, binds it to the request id once the submit answers, and accepts it
once, from a delivery about that request.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Literal

import attrs
import httpx

from .._errors import (
    InvalidConfig,
    ProviderError,
    ProviderUnavailable,
    WebhookVerificationError,
)
from .._webhooks import (
    CALLBACK_TOKEN_PARAM,
    install_log_redaction,
    url_secrets,
    verify_fal_webhook,
)
from ._base import ProviderContext, WebhookDelivery
from ._payloads import checked_url, json_or_none, with_params

__all__ = ["JWKS_URL", "TOKEN_PARAM", "Callback", "FalWebhooks"]

JWKS_URL = "https://rest.alpha.fal.ai/.well-known/jwks.json"
TOKEN_PARAM = CALLBACK_TOKEN_PARAM
_DELIVERY_RETRIES = 2 * 3600.0  # fal retries a failed delivery 10 times within 2 hours
_JWKS_TTL = 24 * 3600.0  # fal's keys are kept a day, as public implementations do
_JWKS_REFRESH = 300.0  # an unknown signature refetches the keys at most this often


@attrs.frozen(kw_only=True)
class Callback:
    """Where fal calls back about one queued request (``url``: None for no webhook).

    Args:
        url: The ``fal_webhook`` value: the configured URL, with a token in token mode.
        configured: The URL as configured (its credentials are masked in logs).
        token: The request's callback token, in token mode.
    """

    url: str | None = attrs.field(default=None, repr=False)
    configured: str | None = attrs.field(default=None, repr=False)
    token: str | None = attrs.field(default=None, repr=False)

    @property
    def params(self) -> dict[str, str] | None:
        """The submit's query parameters: ``fal_webhook``, when there is a webhook."""
        return None if self.url is None else {"fal_webhook": self.url}

    @property
    def secrets(self) -> tuple[str, ...]:
        """What the submit's URL carries that must not be logged (the token is masked anyway)."""
        return url_secrets(self.configured)

    async def bind(self, ctx: ProviderContext, request_id: str) -> None:
        """Tie the token to the request fal made (the token went out before its id existed)."""
        if self.token is None:
            return
        if not await ctx.bind_webhook_token(self.token, request_id, retry_window=_DELIVERY_RETRIES):
            ctx.logger.warning(
                "fal request %s: its callback token could not be bound (expired?); its "
                "webhook will be refused, and the request is polled",
                request_id,
            )


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

    async def callback(self, url: str | None, ctx: ProviderContext) -> Callback:
        """Where fal should call back: ``url``, with a fresh token when ``auth`` is ``"token"``."""
        if not url:
            return Callback()
        if self.auth != "token":
            return Callback(url=url, configured=url)
        token = await ctx.webhook_token(retry_window=_DELIVERY_RETRIES)
        return Callback(url=with_params(url, {TOKEN_PARAM: token}), configured=url, token=token)

    async def receive(
        self,
        headers: Mapping[str, str],
        body: bytes,
        ctx: ProviderContext,
        *,
        now: float,
        params: Mapping[str, str],
    ) -> WebhookDelivery:
        """Verify a delivery and read it (see :meth:`Fal.receive_webhook`).

        In token mode the token must be bound to the body's ``request_id`` and
        unused; accepting it uses it up.
        """
        data = json_or_none(body)
        request_id = data.get("request_id") if isinstance(data, dict) else None
        if self.auth == "token":
            install_log_redaction()  # the access log shows the token this delivery brought
            token = params.get(TOKEN_PARAM, "")
            if not isinstance(request_id, str) or not await ctx.check_webhook_token(
                token, work_id=request_id
            ):
                raise WebhookVerificationError(
                    f"fal: the delivery's {TOKEN_PARAM} is missing, unknown, expired, "
                    "already used, or not the one of the request it reports on"
                )
        else:
            await self._verify_signature(headers, body, ctx, now=now)
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
