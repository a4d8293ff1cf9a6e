"""Cancellation: recognising it, and stopping the remote work of an abandoned call."""

from __future__ import annotations

import logging

import anyio
import attrs

from ._clock import Clock
from ._events import Events
from .providers import Provider, ProviderContext

__all__ = ["CANCEL_TIMEOUT", "cancel_remote_work", "is_cancellation"]

logger = logging.getLogger("imagegen")

CANCEL_TIMEOUT = 5.0  # seconds a remote cancel may take, shielded from the caller's cancel


def is_cancellation(exc: BaseException) -> bool:
    """A cancellation, bare or grouped: trio raises it as a group out of a nursery
    (httpx connecting through ``trio.open_tcp_stream``)."""
    cancelled = anyio.get_cancelled_exc_class()
    if isinstance(exc, cancelled):
        return True
    return isinstance(exc, BaseExceptionGroup) and exc.split(cancelled)[1] is None


async def cancel_remote_work(
    provider: Provider, ctx: ProviderContext, clock: Clock, events: Events
) -> None:
    """Call ``provider.cancel`` for ``ctx.handle``, shielded from cancellation and bounded.

    A failure or a cancel that runs past its bound is logged, never raised: the
    generation it belonged to is already decided.
    """
    # The attempt's own deadline may have passed (that may be why we cancel): the
    # cancel gets a fresh, short one.
    deadline = clock.monotonic() + CANCEL_TIMEOUT
    cancel_ctx = attrs.evolve(ctx, deadline=deadline)
    with anyio.CancelScope(shield=True), clock.deadline_scope(deadline) as bound:
        try:
            await provider.cancel(ctx.handle, cancel_ctx)
        except Exception:
            logger.warning(
                "cancelling %s's work %r failed", provider.name, ctx.handle, exc_info=True
            )
        else:
            await events.emit("remote_cancelled", ctx.generation_id, provider.name, {})
    if bound.cancelled_caught:
        logger.warning(
            "cancelling %s's work %r took over %.0fs; gave up (it may still run)",
            provider.name,
            ctx.handle,
            CANCEL_TIMEOUT,
        )
