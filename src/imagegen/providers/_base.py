"""The provider contract: one remote API, nothing about racing or retrying."""

from __future__ import annotations

import abc
import logging
import math
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TypeVar, runtime_checkable

import anyio
import attrs

from .._clock import Clock, SystemClock
from .._errors import InvalidConfig
from .._models import RequestWarning

if TYPE_CHECKING:
    import httpx

    from .._models import ImageRequest

__all__ = [
    "Provider",
    "ProviderContext",
    "ProviderImage",
    "WebhookDelivery",
    "WebhookInbox",
    "WebhookReceiver",
]

logger = logging.getLogger("imagegen.providers")
_T = TypeVar("_T")
_UNDO_TIMEOUT = 5.0  # seconds an undo (a remote cancel) may take
# With a webhook, polling the vendor is only the safety net: the first poll comes this
# late, and later ones at most this often (shared by every provider that takes webhooks).
WEBHOOK_FIRST_POLL = 5.0
WEBHOOK_POLL_CAP = 15.0
#: How long a callback token outlives the deadline by default: the window in which the
#: vendor retries a delivery (fal retries a failed one 10 times within two hours).
WEBHOOK_RETRY_WINDOW = 2 * 3600.0


def is_price(value: object) -> bool:
    """A finite number of USD >= 0 (not a bool)."""
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value >= 0
    )


def _as_tuple(warnings: Iterable[RequestWarning]) -> tuple[RequestWarning, ...]:
    return tuple(warnings)


def _one_source(instance: ProviderImage, _: attrs.Attribute[Any], __: object) -> None:
    if (instance.data is None) == (instance.url is None):
        msg = "ProviderImage takes exactly one of data= and url="
        raise ValueError(msg)


@attrs.frozen(kw_only=True)
class ProviderImage:
    """What a provider hands back: the bytes, or a URL the generator downloads.

    Args:
        data: The image bytes (decoded from base64 if the vendor sent that).
        url: Where to fetch the image; fetched under the generator's DownloadPolicy.
        content_type: The vendor's claim; the generator trusts the magic bytes instead.
        width: Pixels, if the vendor says.
        height: Pixels, if the vendor says.
        seed: The seed the vendor used.
        attribution: Credit to show with the image (stock photos).
        raw: The vendor's response, for debugging; never stored.
        handle: The vendor's id for the work (prediction id...).
        hotlink: Serve ``url`` as is instead of copying it into storage
            (stock photos whose terms require hotlinking).
        headers: Sent when downloading ``url`` (an auth header the vendor's file
            host wants); dropped if a redirect leaves that host. Never shown in repr.
        cost: USD this image cost, when the vendor's answer says (usage it reports);
            None: :meth:`Provider.price` says.
        warnings: The request fields this vendor could not honour as asked (a seed
            it takes none of, a size it rounded), as :class:`~imagegen.RequestWarning`
            values; the generator adds the provider's name and its own checks of the
            image (pixel size, format), and they reach ``ImageResult.warnings``.
    """

    data: bytes | None = attrs.field(default=None, repr=False, validator=_one_source)
    url: str | None = None
    content_type: str | None = None
    width: int | None = None
    height: int | None = None
    seed: int | None = None
    attribution: str | None = None
    raw: Mapping[str, Any] | None = attrs.field(default=None, repr=False)
    handle: object = None
    hotlink: bool = False
    headers: Mapping[str, str] | None = attrs.field(default=None, repr=False)
    cost: float | None = None
    warnings: tuple[RequestWarning, ...] = attrs.field(default=(), converter=_as_tuple)


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


@attrs.frozen(kw_only=True)
class WebhookDelivery:
    """One verified webhook delivery, as a :class:`WebhookReceiver` reads it.

    Args:
        id: Unique per delivery; a second delivery with the same id is a replay.
        work_id: The vendor's id of the work it reports on (prediction or request id).
        payload: What the waiting attempt gets (:meth:`ProviderContext.webhook`).
        final: Whether the work has ended; only final deliveries complete an attempt.
    """

    id: str
    work_id: str
    payload: Mapping[str, Any] = attrs.field(repr=False)
    final: bool = True


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
    handle: object = attrs.field(default=None, init=False)
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

    def started(self, handle: object) -> None:
        """Report that billable remote work exists (a prediction id, a queue id).

        From then on the generator calls :meth:`Provider.cancel` with this handle if
        the attempt is abandoned: it lost a race, the deadline passed, or the caller
        was cancelled.
        """
        self.handle = handle
        if self._on_started is not None:
            self._on_started(handle)


class Provider(abc.ABC):
    """One image API. Subclass it and write :meth:`generate`.

    ``name``, ``tier`` and ``timeout`` may be class attributes; every provider also
    takes them as keyword overrides. ``tier`` 0 is tried first (AI providers), 1
    next (stock photos), and so on. ``timeout`` caps one call in seconds; the
    generator's deadline caps it too.

    Example::

        class Mine(Provider):
            name = "mine"

            async def generate(self, request, ctx):
                response = await ctx.http.post("https://example.com/draw", json={...})
                return ProviderImage(url=response.json()["url"])
    """

    name: str = ""
    _auto_name: ClassVar[bool] = True
    tier: int = 0
    timeout: float | None = None
    #: Whether a call costs money: telemetry counts a paid provider's calls that made
    #: an image or remote work as billed. Free providers (placeholder, stock) say False.
    paid: ClassVar[bool] = True
    #: USD one image costs, for :meth:`price`; None: not known. Set it on a subclass,
    #: an instance, or with the ``price_per_image=`` keyword.
    price_per_image: float | None = None
    #: Whether a create the vendor never answered (a timeout, a dropped connection, a
    #: call abandoned for a faster provider) is billed all the same: True for a vendor
    #: that finishes the work whatever the client does (a synchronous API such as
    #: OpenAI's images API). False: such a call's cost is unknown (None).
    bills_unanswered: ClassVar[bool] = False
    #: Whether only calls that made an image are billed (fal; Replicate's official
    #: models, priced per output): remote work cancelled or failed then costs nothing.
    #: False: remote work that existed is billed at :meth:`price`, image or not.
    bills_only_outputs: ClassVar[bool] = False
    #: Request fields this provider cannot honour, and what it does instead, e.g.
    #: ``{"seed": "OpenAI Images takes no seed"}``: a request that sets one of them
    #: (not None) gets that warning in ``ImageResult.warnings``.
    unsupported: ClassVar[Mapping[str, str]] = {}
    #: How many input images a call takes (``ImageRequest.images``); 0: none. A
    #: vendor whose models differ sets it per instance.
    input_images: int = 0
    #: Whether a call takes a mask with its input images.
    masks: bool = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("name"):
            cls._auto_name = False
        elif cls._auto_name:
            # Unnamed subclasses are known by their class name, lowercased; a subclass
            # of a named provider (say, of Replicate) keeps its parent's name.
            cls.name = cls.__name__.lower()

    def __init__(
        self,
        *,
        name: str | None = None,
        tier: int | None = None,
        timeout: float | None = None,
        price_per_image: float | None = None,
    ) -> None:
        if name is not None:
            self.name = name
        if tier is not None:
            self.tier = tier
        if timeout is not None:
            self.timeout = timeout
        if price_per_image is not None:
            if not is_price(price_per_image):
                raise InvalidConfig(
                    f"{self.name}: price_per_image must be a finite number of USD >= 0 "
                    f"(got {price_per_image!r})",
                    field="price_per_image",
                )
            self.price_per_image = float(price_per_image)

    def cannot_serve(self, request: ImageRequest) -> tuple[str, str] | None:
        """``(field, why)`` when this provider cannot make ``request`` at all (input
        images or a mask it does not take); None when it can. Selection skips such a
        provider without calling it or counting it against its breaker."""
        if request.images and not self.input_images:
            return "images", "takes no input images"
        if len(request.images) > self.input_images:
            return "images", f"takes at most {self.input_images} input image(s)"
        if request.mask is not None and not self.masks:
            return "mask", "takes no mask"
        return None

    def price(self, request: ImageRequest) -> float | None:
        """USD the vendor bills for one image made for ``request``; None when not known.

        :attr:`price_per_image` when set, else :meth:`table_price`. It is never a
        guess: unknown is None, and so is every cost it would be part of. Called
        for each call the vendor bills (see ``Attempt.cost``) unless the image
        itself says what it cost (:attr:`ProviderImage.cost`).
        """
        if self.price_per_image is not None:
            return self.price_per_image
        return self.table_price(request)

    def table_price(self, request: ImageRequest) -> float | None:
        """The vendor's listed price for ``request`` (by model, size, quality); None
        here. Built-in vendors read theirs from a dated price table."""
        return None

    @abc.abstractmethod
    async def generate(self, request: ImageRequest, ctx: ProviderContext) -> ProviderImage:
        """Make one image for ``request``, by ``ctx.deadline``.

        Raise a :class:`~imagegen.ProviderError` subclass on failure so the
        generator knows whether to retry; anything else is treated as a bug.
        """

    async def cancel(self, handle: object, ctx: ProviderContext) -> None:  # noqa: B027
        """Stop the remote work ``handle`` names. The default does nothing."""

    async def check(self, ctx: ProviderContext) -> None:  # noqa: B027
        """Verify the provider is usable (key valid...) without paying; raise if not."""

    async def aclose(self) -> None:  # noqa: B027
        """Release what the provider holds. The default holds nothing."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, tier={self.tier!r})"


@runtime_checkable
class WebhookReceiver(Protocol):
    """A provider whose vendor can call back when work completes (see ``handle_webhook``).

    The attempt waiting for the work reads the payload with
    :meth:`ProviderContext.webhook`; the generator does the routing, replay
    protection and relaying between processes.
    """

    async def receive_webhook(
        self,
        headers: Mapping[str, str],
        body: bytes,
        ctx: ProviderContext,
        *,
        now: float,
        params: Mapping[str, str],
    ) -> WebhookDelivery:
        """Verify one delivery and read it.

        ``params`` are the query parameters of the URL it was posted to (where a
        :meth:`ProviderContext.webhook_token` travels).

        Raises ``WebhookVerificationError`` when the delivery is not authentic.
        """
        ...
