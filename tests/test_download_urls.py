"""The URL policy of downloads: schemes, addresses (the SSRF guard), malformed URLs."""

from __future__ import annotations

import socket

import pytest

from download_support import PRIVATE, Server, assert_refused, fetch, resolver
from imagegen import DownloadPolicy, ProviderError, ProviderUnavailable
from imagegen.testing import tiny_png


@pytest.mark.anyio
class TestUrlPolicy:
    async def test_http_refused_by_default(self) -> None:
        """Plain http is refused unless allow_http is set."""
        server = Server()
        with pytest.raises(ProviderError) as info:
            await fetch("http://93.184.215.14/x.png", server)
        assert_refused(info, server)

    @pytest.mark.parametrize(
        "url",
        [
            "ftp://93.184.215.14/x.png",
            "file:///etc/passwd",
            "data:image/png;base64,AAAA",
            "https:///x.png",
        ],
    )
    async def test_other_schemes_refused(self, url: str) -> None:
        """Only http(s) URLs with a host are ever fetched, even with allow_http."""
        server = Server()
        with pytest.raises(ProviderError) as info:
            await fetch(url, server, DownloadPolicy(allow_http=True, allow_private_networks=True))
        assert_refused(info, server)

    @pytest.mark.parametrize(
        "host",
        [
            "127.0.0.1",
            "10.0.0.1",
            "172.16.5.4",
            "192.168.1.1",
            "169.254.1.1",
            "[::1]",
            "[fe80::1]",
            "[fc00::1]",
            "[::ffff:127.0.0.1]",
            "[::ffff:10.0.0.1]",
            "[::ffff:192.168.1.1]",
            "100.64.0.1",
            "100.127.255.254",
            "198.18.0.1",
            "240.0.0.1",
            "[fec0::1]",
            "[2001:db8::1]",
            "[::7f00:1]",
            "[64:ff9b::7f00:1]",
            "[64:ff9b::a00:1]",
        ],
    )
    async def test_private_addresses(self, host: str) -> None:
        """Every address that is not globally routable is refused unless private networks are
        allowed: private, loopback, link-local, shared (100.64/10), benchmarking, reserved,
        site-local, documentation, IPv4-compatible and NAT64-wrapped private addresses."""
        url = f"https://{host}/x.png"
        server = Server()
        with pytest.raises(ProviderError) as info:
            await fetch(url, server)
        assert_refused(info, server)
        assert await fetch(url, policy=DownloadPolicy(**PRIVATE)) == (tiny_png(), "image/png")

    @pytest.mark.parametrize(
        "url",
        [
            "https://169.254.169.254/latest/meta-data/",
            "https://[::ffff:169.254.169.254]/latest/meta-data/",
            "https://[fd00:ec2::254]/latest/meta-data/",
            "https://[fd00:ec2::23]/v1/credentials",
            "https://169.254.170.2/v2/credentials",
            "https://169.254.170.23/v1/credentials",
            "https://168.63.129.16/machine/?comp=goalstate",
            "https://100.100.100.200/latest/meta-data/",
            "https://[64:ff9b::a9fe:a9fe]/latest/meta-data/",
            "http://metadata.google.internal/computeMetadata/v1/",
            "http://metadata.goog/computeMetadata/v1/",
            "https://METADATA.GOOGLE.INTERNAL./computeMetadata/v1/",
        ],
    )
    async def test_metadata_refused_always(self, url: str, monkeypatch: pytest.MonkeyPatch) -> None:
        """Cloud metadata addresses and hosts are refused even with every allowance."""
        asked = resolver(monkeypatch, "93.184.215.14")
        server = Server()
        with pytest.raises(ProviderError) as info:
            await fetch(url, server, DownloadPolicy(allow_http=True, **PRIVATE))
        assert_refused(info, server)
        assert asked == []

    @pytest.mark.parametrize(
        ("addresses", "policy"),
        [
            (["10.0.0.5"], {}),
            (["127.0.0.1"], {}),
            (["::1"], {}),
            (["93.184.215.14", "192.168.0.7"], {}),
            (["169.254.169.254"], PRIVATE),
        ],
    )
    async def test_hostname_resolving_to_refused_address(
        self, monkeypatch: pytest.MonkeyPatch, addresses: list[str], policy: dict[str, bool]
    ) -> None:
        """A hostname is refused when any address it resolves to is refused."""
        asked = resolver(monkeypatch, *addresses)
        server = Server()
        with pytest.raises(ProviderError) as info:
            await fetch("https://images.example.com/x.png", server, DownloadPolicy(**policy))
        assert_refused(info, server)
        assert asked == ["images.example.com"]

    @pytest.mark.parametrize(
        "url",
        [
            "https://224.0.0.1/x.png",
            "https://0.0.0.0/x.png",
            "https://[ff02::1]/x.png",
            "https://[2002:a9fe:a9fe::]/x.png",
        ],
    )
    async def test_never_allowed(self, url: str) -> None:
        """Multicast, unspecified and 6to4-wrapped metadata addresses are refused always."""
        server = Server()
        with pytest.raises(ProviderError) as info:
            await fetch(url, server, DownloadPolicy(**PRIVATE))
        assert_refused(info, server)

    @pytest.mark.parametrize(
        "host",
        ["[2002:7f00:1::]", "[2002:c0a8:101::]", "[2001:0:4136:e378:8000:63bf:f5ff:fffe]"],
    )
    async def test_embedded_private_ipv4_refused(self, host: str) -> None:
        """6to4 and Teredo addresses are judged by the IPv4 address they carry."""
        server = Server()
        with pytest.raises(ProviderError) as info:
            await fetch(f"https://{host}/x.png", server)
        assert_refused(info, server)

    @pytest.mark.parametrize(
        "url",
        [
            "https://example.com:99999/x.png",
            "https://example.com:0/x.png",
            "https://example.com:abc/x.png",
            "https://[::1/x.png",
            "https://\u2603.example/x.png",
            "https://xn--.example/x.png",
            "https://exa mple.com/x.png",
            "https://a..b.example/x.png",
            f"https://{'a' * 64}.example/x.png",
            "https://" + "abcdefghi." * 25 + "example/x.png",
            "https://cdn.example.com/out\\x.png",
            "https:\\\\127.0.0.1\\x.png",
            "https://cdn.example.com/x.png\n",
            "https://cdn.example.com\x00/x.png",
        ],
        ids=[
            "port-too-big",
            "port-zero",
            "port-not-a-number",
            "ipv6-unclosed",
            "idna-symbol",
            "idna-empty-label",
            "space-in-host",
            "empty-label",
            "label-too-long",
            "name-too-long",
            "backslash-in-path",
            "backslash-authority",
            "newline",
            "nul-in-host",
        ],
    )
    async def test_malformed_urls_are_refused(
        self, url: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A URL httpx cannot parse or send is a permanent "malformed output URL", nothing
        resolved or sent."""
        asked = resolver(monkeypatch, "93.184.215.14")
        server = Server()
        with pytest.raises(ProviderError) as info:
            await fetch(url, server)
        assert_refused(info, server)
        assert str(info.value).startswith("malformed output URL")
        assert asked == []

    async def test_resolution_failure_is_unavailable(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """A host that does not resolve raises a permanent ProviderUnavailable, sends nothing."""
        resolver(monkeypatch, error=socket.gaierror(socket.EAI_NONAME, "Name or service not known"))
        server = Server()
        with pytest.raises(ProviderUnavailable) as info:
            await fetch("https://nowhere.invalid/x.png", server)
        assert info.value.provider == "prov"
        assert info.value.retryable is False
        assert server.requests == []

    async def test_no_address_is_unavailable(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """A host whose lookup answers no address at all is a permanent ProviderUnavailable."""
        resolver(monkeypatch)
        server = Server()
        with pytest.raises(ProviderUnavailable, match="no address") as info:
            await fetch("https://empty.example/x.png", server)
        assert info.value.retryable is False
        assert server.requests == []
