"""Where verified webhook deliveries meet the attempts waiting for them, in any process.

A delivery may land in a process other than the one whose attempt waits for it (a
load balancer picks any). The waiting attempt announces itself in the state backend
(``webhook-wait:<provider>:<work id>``); a delivery with no local waiter but an
announced one is parked there (``webhook-payload:...``), and the waiter looks for it
every second besides listening locally. Deliveries nobody waits for anywhere are late
(the attempt ended, polling got there first) or unknown: they change nothing.

Callback tokens (for vendors that do not sign deliveries) are kept here too, by hash:
issued unbound, bound to the vendor's work id once the submit names it, and used up
by the first delivery about that work that brings them back.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
from collections.abc import Mapping
from typing import Any, Final

import anyio

from ._clock import Clock
from .providers import ProviderContext, WebhookDelivery, WebhookReceiver
from .state import StateBackend

__all__ = ["WebhookRelay"]

logger = logging.getLogger("imagegen")

RELAY_INTERVAL: Final = 1.0  # seconds between looks at the backend for a parked delivery
_ANNOUNCE_MARGIN: Final = 60.0  # an announcement outlives one wait by this much
_PARKED_TTL: Final = 3600.0  # a parked delivery is kept this long at most
WEBHOOK_TOLERANCE: Final = 300.0  # seconds a webhook's timestamp may be off (Standard Webhooks)
_UNBOUND: Final = b"unbound"  # a callback token's record before the vendor named the work
# A used token's record is deleted at once; the mark only has to outlast the moment
# between a concurrent redeemer's read and its set_if_absent.
_USED_TOKEN_TTL: Final = 3600.0


class _Waiter:
    def __init__(self) -> None:
        self.arrived = anyio.Event()
        self.payload: Mapping[str, Any] | None = None


class WebhookRelay:
    """The generator's webhook routing, shared by its providers' contexts."""

    def __init__(self, state: StateBackend, prefix: str, clock: Clock) -> None:
        self._state = state
        self._prefix = prefix
        self._clock = clock
        self._waiters: dict[tuple[str, str], _Waiter] = {}

    def inbox(self, provider: str) -> _ProviderInbox:
        """The view a provider's context gets (a :class:`~imagegen.providers.WebhookInbox`)."""
        return _ProviderInbox(self, provider)

    def _key(self, kind: str, provider: str, work_id: str) -> str:
        return f"{self._prefix}webhook-{kind}:{provider}:{work_id}"

    async def wait(self, provider: str, work_id: str, within: float) -> Mapping[str, Any] | None:
        """A final delivery for the work ``within`` seconds, else None."""
        clock = self._clock
        end = clock.monotonic() + within
        await self._state.set(
            self._key("wait", provider, work_id), b"1", ttl=within + _ANNOUNCE_MARGIN
        )
        waiter = self._waiters[provider, work_id] = _Waiter()
        try:
            while True:
                parked = await self._take_parked(provider, work_id)
                if parked is not None:
                    await self._state.delete(self._key("wait", provider, work_id))
                    return parked
                left = end - clock.monotonic()
                if left <= 0:
                    return None
                with clock.deadline_scope(clock.monotonic() + min(left, RELAY_INTERVAL)):
                    await waiter.arrived.wait()
                if waiter.payload is not None:
                    await self._state.delete(self._key("wait", provider, work_id))
                    return waiter.payload
        finally:
            if self._waiters.get((provider, work_id)) is waiter:
                del self._waiters[provider, work_id]

    async def _take_parked(self, provider: str, work_id: str) -> Mapping[str, Any] | None:
        key = self._key("payload", provider, work_id)
        raw = await self._state.get(key)
        if raw is None:
            return None
        await self._state.delete(key)
        payload: Mapping[str, Any] = json.loads(raw)
        return payload

    async def receive(
        self,
        provider: str,
        receiver: WebhookReceiver,
        headers: Mapping[str, str],
        body: bytes,
        ctx: ProviderContext,
        params: Mapping[str, str],
    ) -> str:
        """Verify one delivery with its provider, drop replays, route it; what became of it.

        Raises:
            WebhookVerificationError: Missing, wrong or stale signature or token.
        """
        delivery = await receiver.receive_webhook(
            headers, body, ctx, now=self._clock.time(), params=dict(params)
        )
        # Remember each delivery for twice the signature tolerance: a replay inside the
        # window is caught here, and one outside it fails the timestamp check.
        fresh = await self._state.set_if_absent(
            f"{self._prefix}webhook:{provider}:{delivery.id}", b"1", ttl=2 * WEBHOOK_TOLERANCE
        )
        outcome = await self.route(provider, delivery) if fresh else "replay"
        level = logging.DEBUG if outcome in ("local", "parked") else logging.INFO
        logger.log(level, "webhook %s from %s: %s", delivery.id, provider, outcome)
        return outcome

    async def route(self, provider: str, delivery: WebhookDelivery) -> str:
        """Hand a verified, fresh delivery on; says where it went (for the log).

        ``"local"``: an attempt in this process had it; ``"parked"``: one in another
        process will pick it up; ``"not final"``, ``"late"``: nothing changed.
        """
        if not delivery.final:
            return "not final"
        waiter = self._waiters.get((provider, delivery.work_id))
        if waiter is not None and waiter.payload is None:
            waiter.payload = delivery.payload
            waiter.arrived.set()
            return "local"
        if await self._state.get(self._key("wait", provider, delivery.work_id)) is None:
            return "late"
        # The first final delivery wins; a duplicate never replaces it.
        await self._state.set_if_absent(
            self._key("payload", provider, delivery.work_id),
            json.dumps(dict(delivery.payload)).encode(),
            ttl=_PARKED_TTL,
        )
        return "parked"

    async def issue_token(self, provider: str, ttl: float) -> str:
        """A random callback secret, bound to no work yet.

        Only its hash is kept (the backend cannot leak it), as the key of a record
        that says what work it is bound to.
        """
        token = secrets.token_urlsafe(24)
        await self._state.set(self._token_key(provider, token), _UNBOUND, ttl=ttl)
        return token

    async def bind_token(self, provider: str, token: str, work_id: str, ttl: float) -> bool:
        """Tie an issued, unbound ``token`` to ``work_id``; False when it is not that."""
        key = self._token_key(provider, token)
        if not work_id or await self._state.get(key) != _UNBOUND:
            return False
        await self._state.set(key, _bound(work_id), ttl=ttl)
        return True

    async def redeem_token(self, provider: str, token: str, work_id: str) -> bool:
        """Use up ``token`` if it was issued for ``provider``, bound to ``work_id`` and unused.

        Single use across processes: of concurrent redeemers only the one whose
        ``set_if_absent`` lands first succeeds; the token's record is then deleted,
        so any later one finds nothing.
        """
        if not token or len(token) > 256 or not work_id:
            return False
        key = self._token_key(provider, token)
        if await self._state.get(key) != _bound(work_id):
            return False
        if not await self._state.set_if_absent(f"{key}:used", b"1", ttl=_USED_TOKEN_TTL):
            return False
        await self._state.delete(key)
        return True

    def _token_key(self, provider: str, token: str) -> str:
        digest = hashlib.sha256(token.encode()).hexdigest()
        return f"{self._prefix}webhook-token:{provider}:{digest}"


def _bound(work_id: str) -> bytes:
    """A token record's value once it is bound to ``work_id``."""
    return b"for:" + work_id.encode()


class _ProviderInbox:
    """One provider's :class:`~imagegen.providers.WebhookInbox` onto the relay."""

    def __init__(self, relay: WebhookRelay, provider: str) -> None:
        self._relay = relay
        self._provider = provider

    async def wait(self, work_id: str, within: float) -> Mapping[str, Any] | None:
        return await self._relay.wait(self._provider, work_id, within)

    async def issue_token(self, ttl: float) -> str:
        return await self._relay.issue_token(self._provider, ttl)

    async def bind_token(self, token: str, work_id: str, ttl: float) -> bool:
        return await self._relay.bind_token(self._provider, token, work_id, ttl)

    async def redeem_token(self, token: str, work_id: str) -> bool:
        return await self._relay.redeem_token(self._provider, token, work_id)
