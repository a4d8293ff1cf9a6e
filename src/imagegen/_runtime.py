"""What every step of a generation shares, wired once by the facade."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping

import anyio.abc
import attrs
import httpx

from ._cancel import cancel_remote_work
from ._clock import Clock
from ._default_image import DefaultRenderer
from ._download import DownloadPolicy
from ._errors import NotRunning
from ._events import Events
from ._records import Records
from ._relay import WebhookRelay
from ._slots import CallSlots
from ._spending import Spending
from .providers import Provider, ProviderContext
from .state import StateBackend
from .storage import Storage
from .strategies import HedgeBudget, LatencyWindow, ProviderBreaker

__all__ = ["Runtime"]


@attrs.define(kw_only=True, eq=False)
class Runtime:
    """The generator's services, one of each: time, state, storage, HTTP, bookkeeping.

    ``background`` is the generator's task group while it runs inside
    ``async with``; clean-up work (remote cancels, abandoned creates) goes there so
    a winner is returned without waiting for the losers.

    ``closed`` is set by the generator's ``aclose()`` once its background work is
    done: from then on a provider's ``ctx.http`` raises :class:`NotRunning` instead of
    opening an HTTP client that no one would close.
    """

    clock: Clock
    state: StateBackend
    storage: Storage | None
    download: DownloadPolicy
    events: Events
    records: Records
    slots: CallSlots
    #: Generations running at once (the same limit as the calls): the rest wait for their
    #: turn before doing any work, so a burst costs only its waiting.
    admission: CallSlots
    relay: WebhookRelay
    breakers: Mapping[str, ProviderBreaker]
    http: Callable[[], httpx.AsyncClient]
    #: Prefix of every state key ("imagegen:<namespace>:") and storage key ("<namespace>/").
    state_prefix: str
    key_prefix: str
    budget: HedgeBudget
    spending: Spending
    latency: defaultdict[str, LatencyWindow] = attrs.field(
        factory=lambda: defaultdict(LatencyWindow)
    )
    loggers: dict[str, logging.Logger] = attrs.field(factory=dict)
    default_images: DefaultRenderer = attrs.field(factory=DefaultRenderer)
    background: anyio.abc.TaskGroup | None = None
    closed: bool = False

    def logger_for(self, provider: str) -> logging.Logger:
        """The logger a provider's context gets: ``imagegen.providers.<name>``."""
        found = self.loggers.get(provider)
        if found is None:
            found = self.loggers[provider] = logging.getLogger(f"imagegen.providers.{provider}")
        return found

    def http_client(self) -> httpx.AsyncClient:
        """The generator's HTTP client, as a provider's ``ctx.http`` gets it.

        Raises:
            NotRunning: The generator is closed (a provider kept its context past the
                call), or its client is. Nothing is opened then: a client made after
                ``aclose()`` would never be closed.
        """
        if self.closed:
            raise NotRunning(
                "the generator is closed (aclose(), or the end of its `async with`): "
                "a provider cannot use ctx.http after that",
                field="generator",
            )
        client = self.http()
        if client.is_closed:
            raise NotRunning(
                "the generator's HTTP client is closed (by the generator's aclose(), or "
                "the client passed as http= by its owner): ctx.http cannot be used",
                field="http",
            )
        return client

    def context(
        self,
        provider: Provider,
        *,
        deadline: float,
        generation_id: str | None = None,
        job_id: str | None = None,
        spawn: bool = False,
        inbox: bool = False,
        previews: int = 0,
        on_preview: Callable[[bytes, int], Awaitable[None]] | None = None,
    ) -> ProviderContext:
        """A :class:`ProviderContext` for one call to ``provider`` ending by ``deadline``.

        ``spawn`` lends it the background (where an abandoned create is finished and
        undone), ``inbox`` the webhook relay (deliveries, callback tokens),
        ``on_preview`` where the ``previews`` partial images asked for go.
        """
        background = self.background if spawn else None
        return ProviderContext(
            deadline=deadline,
            clock=self.clock,
            generation_id=generation_id,
            job_id=job_id,
            logger=self.logger_for(provider.name),
            http_factory=self.http_client,
            spawn=background.start_soon if background is not None else None,
            inbox=self.relay.inbox(provider.name) if inbox else None,
            previews=previews if on_preview is not None else 0,
            on_preview=on_preview,
        )

    async def cancel_remote(self, provider: Provider, ctx: ProviderContext) -> None:
        """Stop billable work an abandoned call started; in the background if we can."""
        if ctx.handle is None:
            return
        if self.background is not None:
            self.background.start_soon(cancel_remote_work, provider, ctx, self.clock, self.events)
        else:
            await cancel_remote_work(provider, ctx, self.clock, self.events)
