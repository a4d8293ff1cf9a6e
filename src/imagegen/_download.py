"""Fetching and checking provider output, under a DownloadPolicy.

Every image, downloaded or inline, must be a real image (magic bytes) within
``max_bytes``. URLs must be https (unless allowed) and must not lead to
loopback, private or link-local addresses (unless allowed); cloud metadata
addresses are refused always. The host is resolved before connecting and each
address it resolves to is checked.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urljoin, urlsplit

import anyio
import attrs
import httpx

from ._errors import InvalidConfig, ProviderError, ProviderTimeout, ProviderUnavailable
from ._image import sniff

__all__ = ["DownloadPolicy", "check_image", "fetch_image"]

_METADATA_HOSTS = frozenset({"metadata.google.internal", "metadata", "instance-data"})
_METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in ("169.254.169.254", "169.254.170.2", "fd00:ec2::254", "100.100.100.200", "192.0.0.192")
)
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def _positive_int(_: object, attribute: attrs.Attribute[int], value: object) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise InvalidConfig(
            f"{attribute.name} must be a positive integer (got {value!r})", field=attribute.name
        )


@attrs.frozen(kw_only=True)
class DownloadPolicy:
    """Limits on the images the generator accepts from providers.

    Args:
        max_bytes: Largest image accepted, inline or downloaded.
        allow_http: Accept plain-http output URLs.
        allow_private_networks: Accept URLs resolving to loopback, private or
            link-local addresses (a self-hosted gateway, tests). Metadata
            addresses (169.254.169.254...) are refused regardless.
    """

    max_bytes: int = attrs.field(default=20_000_000, validator=_positive_int)
    allow_http: bool = False
    allow_private_networks: bool = False


def check_image(data: bytes, policy: DownloadPolicy, provider: str) -> str:
    """The image's MIME type from its magic bytes; raises when it is no image or too big."""
    if len(data) > policy.max_bytes:
        raise ProviderError(
            f"image is {len(data)} bytes, over the {policy.max_bytes}-byte limit",
            provider=provider,
            retryable=False,
        )
    content_type = sniff(data)
    if content_type is None:
        raise ProviderError(
            "provider output is not an image (magic bytes match no known format)",
            provider=provider,
            retryable=False,
        )
    return content_type


def _embedded_ipv4(address: IPAddress) -> IPAddress:
    # IPv4-mapped (::ffff:a.b.c.d), 6to4 (2002::/16) and Teredo addresses carry an IPv4
    # address that routes to the same place; judge that one.
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address.sixtofour is not None:
            return address.sixtofour
        if address.teredo is not None:
            return address.teredo[1]
    return address


def _refused(address: IPAddress, policy: DownloadPolicy) -> str | None:
    address = _embedded_ipv4(address)
    if address in _METADATA_ADDRESSES:
        return "a cloud metadata address"
    if address.is_multicast or address.is_unspecified:
        return "not a unicast address"
    if policy.allow_private_networks:
        return None
    if address.is_loopback or address.is_private or address.is_link_local or address.is_reserved:
        return "a private, loopback or link-local address"
    return None


def _refuse(message: str, provider: str) -> ProviderError:
    return ProviderError(message, provider=provider, retryable=False)


async def _check_url(url: str, policy: DownloadPolicy, provider: str) -> str:
    """Refuse URLs the policy forbids; returns the host."""
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError as exc:  # bad IPv6 brackets, a port out of range or not a number
        raise _refuse(f"output URL is malformed: {exc}", provider) from None
    allowed = ("https", "http") if policy.allow_http else ("https",)
    if parts.scheme not in allowed or not host:
        raise _refuse(
            f"output URL scheme {parts.scheme!r} is not allowed (allowed: {', '.join(allowed)})",
            provider,
        )
    if host.lower().rstrip(".") in _METADATA_HOSTS:
        raise _refuse("output URL points at a cloud metadata host", provider)
    try:
        addresses: list[IPAddress] = [ipaddress.ip_address(host)]
    except ValueError:
        default_port = 443 if parts.scheme == "https" else 80
        try:
            infos = await anyio.getaddrinfo(host, port or default_port, type=socket.SOCK_STREAM)
        except OSError as exc:
            raise ProviderUnavailable(
                f"cannot resolve output host: {exc}", provider=provider
            ) from exc
        addresses = [ipaddress.ip_address(info[4][0]) for info in infos]
    for address in addresses:
        reason = _refused(address, policy)
        if reason is not None:
            raise _refuse(f"output URL resolves to {reason}", provider)
    return host


MAX_REDIRECTS = 3


async def fetch_image(
    url: str,
    *,
    http: httpx.AsyncClient,
    policy: DownloadPolicy,
    provider: str,
    headers: dict[str, str] | None = None,
) -> tuple[bytes, str]:
    """Download ``url`` under ``policy``; returns (bytes, MIME type from magic bytes).

    Follows at most ``MAX_REDIRECTS`` redirects, checking every hop's URL like the
    first; ``headers`` go only to the first URL's host.

    Not retryable when it fails: a retry would call the provider again and pay for
    a second image.
    """
    host: str | None = None
    for _ in range(MAX_REDIRECTS + 1):
        hop_host = await _check_url(url, policy, provider)
        host = host or hop_host
        same_host = hop_host == host
        try:
            result = await _get(url, http, policy, provider, headers if same_host else None)
        except httpx.TimeoutException as exc:
            raise ProviderTimeout(
                "output download timed out", provider=provider, retryable=False
            ) from exc
        except httpx.HTTPError as exc:
            raise ProviderUnavailable(
                f"output download failed: {type(exc).__name__}", provider=provider, retryable=False
            ) from exc
        if isinstance(result, bytes):
            return result, check_image(result, policy, provider)
        url = result
    raise _refuse(f"output download redirected more than {MAX_REDIRECTS} times", provider)


async def _get(
    url: str,
    http: httpx.AsyncClient,
    policy: DownloadPolicy,
    provider: str,
    headers: dict[str, str] | None,
) -> bytes | str:
    """The body, or the URL a redirect points to."""
    async with http.stream("GET", url, headers=headers, follow_redirects=False) as response:
        location = response.headers.get("location")
        if response.is_redirect and location:
            return urljoin(url, str(location))
        if response.status_code != 200:
            raise ProviderError(
                f"output download answered HTTP {response.status_code}",
                provider=provider,
                status=response.status_code,
                retryable=False,
            )
        declared = response.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > policy.max_bytes:
            raise _refuse(
                f"output is {declared} bytes, over the {policy.max_bytes}-byte limit", provider
            )
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > policy.max_bytes:
                raise _refuse(f"output exceeds the {policy.max_bytes}-byte limit", provider)
            chunks.append(chunk)
    return b"".join(chunks)
