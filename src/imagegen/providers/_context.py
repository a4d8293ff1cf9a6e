"""What a provider's call gets besides the request: :class:`ProviderContext`."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import anyio
import attrs

from .._clock import Clock, SystemClock

if TYPE_CHECKING:
    import httpx

__all__ = ["WEBHOOK_RETRY_WINDOW", "ProviderContext", "WebhookInbox"]

logger = logging.getLogger("imagegen.providers")
_T = TypeVar("_T")
_UNDO_TIMEOUT = 5.0  # seconds an undo (a remote cancel) may take
#: How long a callback token outlives the deadline by default: the window in which the
#: vendor retries a delivery (fal retries a failed one 10 times within two hours).
WEBHOOK_RETRY_WINDOW = 2 * 3600.0


class WebhookInbox(Protocol):
    """The generator's side of webhooks, for one provider (see :class:`ProviderContext`)."""

    async def wait(self, work_id: str, within: float) -> Mapping[str, Any] | None:
        """A verified final delivery for ``work_id`` ``within`` seconds, or None."""
        ...

    async def issue_token(self, ttl: float) -> str:
        """A new secret for one callback URL, valid for ``ttl`` seconds, bound to nothing yet."""
        ...

    async def bind_token(self, token: str, work_id: str, ttl: float) -> bool:
        """Tie an unbound ``token`` to ``work_id`` for ``ttl`` seconds; False if it cannot be."""
        ...

    async def redeem_token(self, token: str, work_id: str) -> bool:
        """Use up ``token`` if it is bound to ``work_id``, unused and unexpired (any process)."""
        ...


@attrs.define(kw_only=True, eq=False)
class ProviderContext:
    """What a provider gets besides the request: time, HTTP, and a way to report work.

    Args:
        deadline: Absolute, on ``clock.monotonic()``; the provider must be done by then.
        clock: The generator's clock; poll and back off with ``clock.sleep``.
        generation_id: The generation this call belongs to.
        job_id: The background job, when the generation was submitted.
        webhook_url: Where the vendor should call back, when webhooks are configured.
        logger: A logger for the provider's own messages.
        previews: How many partial images the caller wants to see while the image is
            drawn (0: none), for vendors that stream them: ask the vendor for that
            many and hand each to :meth:`preview`.
    """

    deadline: float
    clock: Clock = attrs.field(factory=SystemClock)
    generation_id: str | None = None
    job_id: str | None = None
    webhook_url: str | None = None
    logger: logging.Logger = attrs.field(default=logger)
    _http_factory: Callable[[], httpx.AsyncClient] | None = attrs.field(
        default=None, alias="http_factory"
    )
    _on_started: Callable[[object], None] | None = attrs.field(default=None, alias="on_started")
    _spawn: Callable[[Callable[[], Coroutine[Any, Any, None]]], object] | None = attrs.field(
        default=None, alias="spawn"
    )
    _inbox: WebhookInbox | None = attrs.field(default=None, alias="inbox")
    previews: int = 0
    _on_preview: Callable[[bytes, int], Awaitable[None]] | None = attrs.field(
        default=None, alias="on_preview"
    )
    handle: object = attrs.field(default=None, init=False)
    _previews_sent: int = attrs.field(default=0, init=False)
    _create_sent: bool = attrs.field(default=False, init=False)

    @property
    def http(self) -> httpx.AsyncClient:
        """The generator's shared ``httpx.AsyncClient``, opened on first use.

        Only during the call, and the clean-up the generator runs for it: keep no
        client past them.

        Raises:
            NotRunning: The generator was closed (``aclose()``, or the end of its
                ``async with``), or its client was; no new client is opened.
            RuntimeError: This context was made without a generator behind it.
        """
        if self._http_factory is None:
            msg = "this ProviderContext has no HTTP client"
            raise RuntimeError(msg)
        return self._http_factory()

    def remaining(self) -> float:
        """Seconds left before ``deadline`` (never negative)."""
        return max(0.0, self.deadline - self.clock.monotonic())

    @property
    def create_sent(self) -> bool:
        """Whether a request that creates billable work may have reached the vendor.

        False until then, and it never goes back. It turns True when
        :meth:`protect_create` starts its create, and when
        ``HTTPProvider.request(create=True)`` may have sent its request: as its
        bytes start going out, or, when the transport cannot tell, as soon as the
        request ended any way but a refused connection (an answer, a timeout
        waiting for it, a dropped connection, the call being cut off).

        The generator reads it when it cuts a call off at its deadline: a call cut
        off after a create may have been sent is not retried against the same
        provider (the work may exist, billed, under an id we never learned); the
        next provider is tried instead. It is read-only: a provider of your own
        that creates billable work gets it set by sending the create through
        :meth:`protect_create` or ``HTTPProvider.request(create=True)``.

        .. versionadded:: 0.1
        """
        return self._create_sent

    def _note_create_sent(self) -> None:
        """Set :attr:`create_sent` (the providers' HTTP machinery calls this)."""
        self._create_sent = True

    async def protect_create(
        self,
        create: Callable[[], Awaitable[_T]],
        undo: Callable[[_T, ProviderContext], Awaitable[object]],
    ) -> _T:
        """Run a request that creates billable work so that its result is never lost.

        If this attempt is abandoned (lost a race, deadline, caller cancelled) while
        ``create`` is in flight, the request is not cut off: it finishes in the
        generator's background (bounded by its own timeout), and ``undo`` is called
        with its result and a context with a fresh, short deadline (e.g. to cancel
        the prediction it made). Without a background
        group (a generator used without ``async with``) the create is simply awaited,
        and cut off with the attempt.

        It sets :attr:`create_sent` before ``create`` starts.
        """
        self._create_sent = True
        if self._spawn is None:
            return await create()
        done = anyio.Event()
        box: dict[str, Any] = {}
        abandoned = False

        async def run() -> None:
            try:
                value = await create()
            except Exception as exc:  # noqa: BLE001 - the waiting attempt raises it
                box["error"] = exc
                done.set()
                return
            if abandoned:
                await self._undo(undo, value)
            else:
                box["value"] = value
                done.set()

        self._spawn(run)
        try:
            await done.wait()
        except anyio.get_cancelled_exc_class():
            abandoned = True
            if "value" in box:  # finished just as we were cancelled: undo it here
                value = box["value"]
                self._spawn(lambda: self._undo(undo, value))
            raise
        if "error" in box:
            raise box["error"]
        result: _T = box["value"]
        return result

    async def _undo(
        self, undo: Callable[[_T, ProviderContext], Awaitable[object]], value: _T
    ) -> None:
        deadline = self.clock.monotonic() + _UNDO_TIMEOUT
        fresh = attrs.evolve(self, deadline=deadline)
        with anyio.CancelScope(shield=True), self.clock.deadline_scope(deadline):
            try:
                await undo(value, fresh)
            except Exception:
                self.logger.warning("undoing an abandoned create failed", exc_info=True)

    async def webhook(self, work_id: str, *, within: float) -> Mapping[str, Any] | None:
        """Wait up to ``within`` seconds for the vendor's final callback about ``work_id``.

        Returns the payload of a verified delivery (:meth:`WebhookReceiver.receive_webhook`)
        that landed in this process or in any other sharing the generator's state
        backend; None when none came in time, so the provider polls the vendor as its
        safety net. Without a generator behind the context it just sleeps ``within``.
        """
        if self._inbox is None:
            await self.clock.sleep(within)
            return None
        return await self._inbox.wait(work_id, within)

    async def webhook_token(self, *, retry_window: float = WEBHOOK_RETRY_WINDOW) -> str:
        """A fresh secret to put in a callback URL, for vendors that do not sign deliveries.

        It authenticates nothing until :meth:`bind_webhook_token` ties it to the work
        the vendor then names; after that, :meth:`check_webhook_token` in any process
        on the same backend accepts it once, for that work only. It lives until the
        deadline plus ``retry_window`` (how long the vendor retries a delivery;
        fal's two hours by default). Only its hash is stored.

        Raises:
            RuntimeError: No generator is behind this context.
        """
        if self._inbox is None:
            msg = "webhook tokens need a generator (its state backend keeps them)"
            raise RuntimeError(msg)
        return await self._inbox.issue_token(self.remaining() + retry_window)

    async def bind_webhook_token(
        self, token: str, work_id: str, *, retry_window: float = WEBHOOK_RETRY_WINDOW
    ) -> bool:
        """Tie ``token`` to ``work_id``, the vendor's id of the work its callback reports on.

        Call it as soon as the submit answers with the id (the token went out in the
        submit's callback URL, before the id existed). A token is bound once;
        False when it was bound already, expired or never issued (deliveries
        bringing it are then refused, and the work is polled).
        """
        if self._inbox is None:
            return False
        return await self._inbox.bind_token(token, work_id, self.remaining() + retry_window)

    async def check_webhook_token(self, token: str, *, work_id: str) -> bool:
        """Whether ``token`` authenticates a delivery about ``work_id``, using it up if so.

        True only for a token from :meth:`webhook_token`, bound to ``work_id`` by
        :meth:`bind_webhook_token`, unexpired and never accepted before: the first
        check that passes uses it, atomically across every process on the backend.
        """
        return self._inbox is not None and await self._inbox.redeem_token(token, work_id)

    async def preview(self, data: bytes, index: int) -> None:
        """Hand the caller partial image ``index`` (0 first: an early, rough render) as it
        comes. Returns at once when no one asked for previews; never raises (a failing
        handler is logged by the generator, and the call goes on)."""
        if self._on_preview is not None:
            self._previews_sent += 1
            await self._on_preview(data, index)

    @property
    def previews_sent(self) -> int:
        """How many previews :meth:`preview` has handed over."""
        return self._previews_sent

    def started(self, handle: object) -> None:
        """Report that billable remote work exists (a prediction id, a queue id).

        From then on the generator calls :meth:`Provider.cancel` with this handle if
        the attempt is abandoned: it lost a race, the deadline passed, or the caller
        was cancelled.
        """
        self.handle = handle
        if self._on_started is not None:
            self._on_started(handle)
