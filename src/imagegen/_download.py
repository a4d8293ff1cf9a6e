"""Fetching and checking provider output, under a DownloadPolicy.

Every image, downloaded or inline, must be a well-formed image (its header checked by
:func:`imagegen._image.read_header`) within ``max_bytes`` and ``max_pixels``.

An output URL is parsed once, by httpx, so what is checked is what is sent. Its scheme
must be https (or http when allowed); its host is resolved and every address must be
globally routable (unless private networks are allowed) and never a cloud metadata
address. The connection then goes to an address that passed the check, never to a
second resolution of the name (a rebinding resolver could answer loopback the second
time): :class:`_PinnedBackend` is the only network a download has, and it knows only
the addresses checked for each host. Every redirect hop is checked and pinned alike.
"""

from __future__ import annotations

import contextlib
import functools
import ipaddress
import re
import socket
import ssl
from collections.abc import Iterable, Sequence
from typing import Any

import anyio
import attrs
import httpcore
import httpx

from ._errors import InvalidConfig, ProviderError, ProviderTimeout, ProviderUnavailable
from ._http_headers import user_agent
from ._image import ImageHeader, NotAnImage, read_header

__all__ = ["MAX_REDIRECTS", "DownloadPolicy", "check_image", "fetch_image", "inspect_image"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_METADATA_HOSTS = frozenset(
    {"metadata.google.internal", "metadata.goog", "metadata", "instance-data"}
)
_METADATA_NETWORKS = tuple(
    ipaddress.ip_network(n)
    for n in (
        "169.254.169.0/24",  # AWS, Azure, GCP, OCI, DigitalOcean, OpenStack (and AWS DNS, NTP)
        "169.254.170.0/24",  # AWS ECS task metadata, EKS pod identity
        "169.254.0.23/32",  # Tencent Cloud
        "100.100.100.200/32",  # Alibaba Cloud
        "192.0.0.192/32",  # Oracle Cloud
        "168.63.129.16/32",  # Azure WireServer: a public-looking address every VM reaches
        "fd00:ec2::/32",  # AWS over IPv6
    )
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
# Labels of 1-63 letters, digits, hyphens (and underscores, which real hosts use); 253 at most.
_HOST_NAME = re.compile(r"(?!.{254})[a-z0-9_-]{1,63}(\.[a-z0-9_-]{1,63})*\.?", re.IGNORECASE)
_DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=10.0)
MAX_REDIRECTS = 3


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
        max_pixels: Largest width x height an image may declare (50 megapixels: room
            for the 16-megapixel outputs some vendors give, far below what a
            decompression bomb declares).
        allow_http: Accept plain-http output URLs.
        allow_private_networks: Accept URLs resolving to loopback, private, link-local,
            shared (100.64.0.0/10) or other addresses that are not globally routable
            (a self-hosted gateway, tests). Cloud metadata addresses (169.254.169.254,
            fd00:ec2::254...) are refused regardless.
    """

    max_bytes: int = attrs.field(default=20_000_000, validator=_positive_int)
    max_pixels: int = attrs.field(default=50_000_000, validator=_positive_int)
    allow_http: bool = False
    allow_private_networks: bool = False


def inspect_image(data: bytes, policy: DownloadPolicy, provider: str) -> ImageHeader:
    """The image's checked header; raises when it is no image or over a limit.

    Raises:
        ProviderError: Over ``max_bytes``, not a well-formed image, or declaring more
            than ``max_pixels``; never retryable (the provider would be paid again).
    """
    if len(data) > policy.max_bytes:
        raise _refuse(
            f"image is {len(data)} bytes, over the {policy.max_bytes}-byte limit", provider
        )
    try:
        header = read_header(data)
    except NotAnImage as exc:
        raise _refuse(f"provider output is not an image ({exc})", provider) from None
    if header.pixels > policy.max_pixels:
        raise _refuse(
            f"image declares {header.width}x{header.height} pixels, over the "
            f"{policy.max_pixels}-pixel limit",
            provider,
        )
    return header


def check_image(data: bytes, policy: DownloadPolicy, provider: str) -> str:
    """The image's MIME type, once :func:`inspect_image` has passed it."""
    return inspect_image(data, policy, provider).content_type


def _embedded_ipv4(address: IPAddress) -> IPAddress:
    # IPv4-mapped (::ffff:a.b.c.d), NAT64 (64:ff9b::/96), 6to4 (2002::/16) and Teredo
    # addresses carry an IPv4 address that routes to the same place; judge that one.
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address in _NAT64:
            return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if address.sixtofour is not None:
            return address.sixtofour
        if address.teredo is not None:
            return address.teredo[1]
    return address


def _globally_routable(address: IPAddress) -> bool:
    # is_global alone is not enough on every Python 3.11 release: older ones call
    # fec0::/10 (site-local) and some special-purpose blocks global.
    special = address.is_private or address.is_loopback or address.is_link_local
    special = special or address.is_reserved
    if isinstance(address, ipaddress.IPv6Address):
        special = special or address.is_site_local
    return address.is_global and not special


def _refused(address: IPAddress, policy: DownloadPolicy) -> str | None:
    address = _embedded_ipv4(address)
    if any(address in network for network in _METADATA_NETWORKS):
        return "a cloud metadata address"
    if address.is_multicast or address.is_unspecified:
        return "not a unicast address"
    if policy.allow_private_networks or _globally_routable(address):
        return None
    return "an address that is not globally routable (private, loopback, shared or reserved)"


def _refuse(message: str, provider: str) -> ProviderError:
    return ProviderError(message, provider=provider, retryable=False)


def _malformed(reason: str, provider: str) -> ProviderError:
    # The vendor handed back something no client can fetch: its fault, and final.
    return _refuse(f"malformed output URL: {reason}", provider)


def _parse(url: str, provider: str, base: httpx.URL | None = None) -> httpx.URL:
    """``url`` (a redirect's Location when ``base`` is given) as httpx will send it."""
    if "\\" in url:  # browsers read it as "/", httpx as a path character: refuse both
        raise _malformed("it holds a backslash", provider)
    try:
        parsed = httpx.URL(url) if base is None else base.join(url)
        # httpx decodes an xn-- name only when it builds the Host header; do it now.
        _ = parsed.host
    except (httpx.InvalidURL, UnicodeError) as exc:  # bad IDNA, port, control characters
        raise _malformed(str(exc), provider) from None
    return parsed


async def _check_url(
    url: httpx.URL, policy: DownloadPolicy, provider: str
) -> tuple[str, list[IPAddress]]:
    """Refuse URLs the policy forbids; returns the host and the addresses to connect to."""
    allowed = ("https", "http") if policy.allow_http else ("https",)
    if url.scheme not in allowed:
        raise _refuse(
            f"output URL scheme {url.scheme!r} is not allowed (allowed: {', '.join(allowed)})",
            provider,
        )
    host = url.raw_host.decode("ascii")  # IDNA-encoded: what DNS, SNI and Host all see
    if not host:
        raise _malformed("no host", provider)
    if url.port is not None and not 0 < url.port < 65536:
        raise _malformed(f"port {url.port} is out of range", provider)
    if host.lower().rstrip(".") in _METADATA_HOSTS:
        raise _refuse("output URL points at a cloud metadata host", provider)
    try:
        addresses: list[IPAddress] = [ipaddress.ip_address(host)]
    except ValueError:
        if not _HOST_NAME.fullmatch(host):
            raise _malformed("the host is not a valid name", provider) from None
        addresses = await _resolve(
            host, url.port or (443 if url.scheme == "https" else 80), provider
        )
    for address in addresses:
        reason = _refused(address, policy)
        if reason is not None:
            raise _refuse(f"output URL resolves to {reason}", provider)
    return host, addresses


async def _resolve(host: str, port: int, provider: str) -> list[IPAddress]:
    try:
        infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise ProviderUnavailable(
            f"cannot resolve output host: {exc}", provider=provider, retryable=False
        ) from exc
    addresses = list(dict.fromkeys(ipaddress.ip_address(info[4][0]) for info in infos))
    if not addresses:
        raise ProviderUnavailable(
            "output host resolves to no address", provider=provider, retryable=False
        )
    return addresses


class _PinnedBackend(httpcore.AsyncNetworkBackend):
    """The network of one download: connects a host only to the addresses checked for it.

    httpcore still hands ``connect_tcp`` the URL's host name, and uses it for SNI, the
    certificate check and the Host header; only the address lookup is replaced.
    """

    def __init__(self) -> None:
        self._inner = httpcore.AnyIOBackend()  # anyio's sockets: asyncio and trio alike
        self._pins: dict[str, tuple[IPAddress, ...]] = {}

    def pin(self, host: str, addresses: Sequence[IPAddress]) -> None:
        """Connect ``host`` to ``addresses`` (tried in order) from now on."""
        self._pins[host] = tuple(addresses)

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's signature
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        """A connection to the first of ``host``'s checked addresses that answers."""
        *others, last = self._pins[host]  # a KeyError here would be a bug: never resolve
        for address in others:
            with contextlib.suppress(httpcore.ConnectError):
                return await self._inner.connect_tcp(
                    str(address), port, timeout, local_address, socket_options
                )
        return await self._inner.connect_tcp(
            str(last), port, timeout, local_address, socket_options
        )


class _PinnedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport over a :class:`_PinnedBackend`."""

    def __init__(self, backend: _PinnedBackend) -> None:
        super().__init__(verify=_ssl_context())
        # httpx takes no network backend, so its pool is replaced by one built as httpx
        # builds it, around ours (the pinning tests fail should httpx stop using _pool).
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=_ssl_context(), network_backend=backend
        )


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    """httpx's default TLS settings, made once: building them reads the CA bundle."""
    return httpx.create_ssl_context()


async def fetch_image(
    url: str,
    *,
    http: httpx.AsyncClient | None = None,
    policy: DownloadPolicy,
    provider: str,
    headers: dict[str, str] | None = None,
) -> tuple[bytes, str]:
    """Download ``url`` under ``policy``; returns (bytes, MIME type from the checked header).

    The download has a connection pool of its own, pinned to the checked addresses and
    closed when it ends; of ``http`` (the generator's client) it takes only the timeout
    and the User-Agent, never its connections, proxies, cookies or default headers.
    Follows at most ``MAX_REDIRECTS`` redirects, checking every hop's URL like the
    first; ``headers`` go only to the first URL's host.

    Not retryable when it fails: a retry would call the provider again and pay for
    a second image.
    """
    timeout = (http.timeout if http is not None else _DEFAULT_TIMEOUT).as_dict()
    agent = http.headers.get("User-Agent", user_agent()) if http is not None else user_agent()
    backend = _PinnedBackend()
    # The transport is used without a client: the client's redirect handling parses each
    # Location itself (raising on a malformed one), and its cookies and proxies have no
    # place here. Redirects are followed below, each hop checked and pinned.
    async with _PinnedTransport(backend) as transport:
        target = _parse(url, provider)
        first_host: str | None = None
        for _ in range(MAX_REDIRECTS + 1):
            host, addresses = await _check_url(target, policy, provider)
            backend.pin(host, addresses)
            first_host = first_host or host
            # identity: an image gains nothing from gzip, and a compressed body could
            # inflate far past what its Content-Length promised.
            sent = {"User-Agent": agent, "Accept-Encoding": "identity"}
            if headers and host == first_host:
                sent.update(headers)
            request = httpx.Request("GET", target, headers=sent, extensions={"timeout": timeout})
            try:
                result = await _get(request, transport, policy, provider)
            except httpx.TimeoutException as exc:
                raise ProviderTimeout(
                    "output download timed out", provider=provider, retryable=False
                ) from exc
            except httpx.HTTPError as exc:
                raise ProviderUnavailable(
                    f"output download failed: {type(exc).__name__}",
                    provider=provider,
                    retryable=False,
                ) from exc
            if isinstance(result, bytes):
                return result, check_image(result, policy, provider)
            target = result
    raise _refuse(f"output download redirected more than {MAX_REDIRECTS} times", provider)


async def _get(
    request: httpx.Request,
    transport: httpx.AsyncBaseTransport,
    policy: DownloadPolicy,
    provider: str,
) -> bytes | httpx.URL:
    """The body, or the URL a redirect points to."""
    response = await transport.handle_async_request(request)
    try:
        location = response.headers.get("location")
        if response.is_redirect and location:
            return _parse(location, provider, base=request.url)
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
    finally:
        await response.aclose()
    return b"".join(chunks)
