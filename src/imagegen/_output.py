"""A provider's image in hand: call the provider, then check or fetch its bytes."""

from __future__ import annotations

from collections.abc import Mapping

import attrs

from ._download import DownloadPolicy, fetch_image, inspect_image
from ._image import dimensions
from ._models import RequestWarning
from ._request import ImageRequest
from .providers import Provider, ProviderContext, ProviderImage

__all__ = ["Output", "call_provider"]


@attrs.frozen(kw_only=True)
class Output:
    """A provider's image, checked and in hand (or a hotlink to serve as is)."""

    provider: str
    data: bytes | None = attrs.field(repr=False)
    content_type: str
    width: int | None
    height: int | None
    source_url: str | None = None
    attribution: str | None = None
    hotlink: str | None = None
    warnings: tuple[RequestWarning, ...] = ()  # the provider's own, as it gave them
    cost: float | None = None  # USD, when the vendor's answer says
    unsupported: Mapping[str, str] = attrs.field(factory=dict)  # the provider's


async def call_provider(
    provider: Provider, request: ImageRequest, ctx: ProviderContext, policy: DownloadPolicy
) -> Output:
    """``provider.generate`` and the checks every image passes: magic bytes, size, SSRF.

    Raises:
        ImageGenError: The provider's own error, or the download's.
        TypeError: The provider returned something else than a ProviderImage (a bug).
    """
    image: object = await provider.generate(request, ctx)
    if not isinstance(image, ProviderImage):
        msg = f"generate() returned {type(image).__name__}, not a ProviderImage"
        raise TypeError(msg)
    name = provider.name
    # The size reported is the one the image's own header declares (read from a few
    # bytes, never decoded): a vendor's claim may be the size asked for, not the size it
    # made. Only a hotlink, whose bytes we never see, keeps what the provider said.
    width, height = image.width, image.height
    if image.data is not None:
        data: bytes | None = image.data
        header = inspect_image(image.data, policy, name)
        content_type, width, height = header.content_type, header.width, header.height
    elif image.hotlink:
        data, content_type = None, image.content_type or "image/jpeg"
    else:
        assert image.url is not None  # noqa: S101 - ProviderImage holds exactly one
        data, content_type = await fetch_image(
            image.url,
            http=ctx.http,
            policy=policy,
            provider=name,
            headers=dict(image.headers) if image.headers else None,
        )
        # fetch_image checked this header already; this only reads its size again.
        width, height = dimensions(data) or (width, height)
    warnings = image.warnings
    if ctx.previews and not ctx.previews_sent:
        said = f"{name} sent no partial images"
        warnings = (*warnings, RequestWarning("previews", said))
    return Output(
        provider=name,
        data=data,
        content_type=content_type,
        width=width,
        height=height,
        source_url=image.url,
        attribution=image.attribution,
        hotlink=image.url if image.hotlink else None,
        warnings=warnings,
        cost=image.cost,
        unsupported=provider.unsupported,
    )
