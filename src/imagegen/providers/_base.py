"""The provider contract: one remote API, nothing about racing or retrying."""

from __future__ import annotations

import abc
import logging
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

import attrs

from .._errors import InvalidConfig
from .._models import RequestWarning
from .._request import is_price
from ._context import ProviderContext, WebhookInbox

if TYPE_CHECKING:
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
# With a webhook, polling the vendor is only the safety net: the first poll comes this
# late, and later ones at most this often (shared by every provider that takes webhooks).
WEBHOOK_FIRST_POLL = 5.0
WEBHOOK_POLL_CAP = 15.0


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
    #: (not None) gets that warning in ``ImageResult.warnings``. Set it on a subclass,
    #: or on an instance when it depends on the model.
    unsupported: Mapping[str, str] = {}
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
