"""Downloads connect only to the address their check passed: real sockets on 127.0.0.1.

A rebinding resolver answers a public address when the host is checked and loopback
afterwards. Addresses beyond loopback are never contacted: ``Internet`` routes the
public addresses these tests use to local servers, the way the real network would
route them to a CDN, and looks names up with the same (rebinding) resolver, the way a
plain connection would.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
import ssl
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import httpcore
import httpx
import pytest
from anyio.streams.tls import TLSListener
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

import imagegen._download
from imagegen import DownloadPolicy, ProviderUnavailable
from imagegen._download import fetch_image
from imagegen.testing import tiny_png

pytestmark = pytest.mark.anyio

CDN, CDN2 = "93.184.215.14", "93.184.215.15"  # public addresses, routed by Internet
Answer = Callable[[str], tuple[int, dict[str, str], bytes]]


def image(_path: str) -> tuple[int, dict[str, str], bytes]:
    """Every path answers the tiny PNG."""
    return 200, {"Content-Type": "image/png"}, tiny_png()


class LocalServer:
    """A tiny HTTP/1.1 server on 127.0.0.1 that records what reaches it."""

    def __init__(self, answer: Answer, port: int) -> None:
        self.answer = answer
        self.port = port
        self.requests: list[tuple[str, dict[str, str]]] = []  # (path, lower-cased headers)
        self.server_names: list[str | None] = []  # SNI of each TLS handshake
        self.closed = anyio.Event()  # a client hung up

    async def handle(self, stream: anyio.abc.ByteStream) -> None:
        """Answer requests on one connection, keeping it open until the client closes it."""
        async with stream:
            buffer = b""
            try:
                while True:
                    while b"\r\n\r\n" not in buffer:
                        buffer += await stream.receive()
                    head, buffer = buffer.split(b"\r\n\r\n", 1)
                    await stream.send(self.respond(head.decode("latin-1")))
            except (anyio.EndOfStream, anyio.BrokenResourceError):
                self.closed.set()

    def respond(self, head: str) -> bytes:
        """Record a request head; the bytes of the answer."""
        line, *fields = head.split("\r\n")
        path = line.split(" ")[1]
        self.requests.append(
            (path, {k.lower(): v.strip() for k, v in (f.split(":", 1) for f in fields)})
        )
        status, headers, body = self.answer(path)
        lines = [f"HTTP/1.1 {status} X", f"Content-Length: {len(body)}"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        return "\r\n".join(lines).encode() + b"\r\n\r\n" + body


@asynccontextmanager
async def serve(answer: Answer = image, tls: ssl.SSLContext | None = None) -> AsyncIterator[Any]:
    """A LocalServer running until the block ends."""
    listener: anyio.abc.Listener[Any] = await anyio.create_tcp_listener(
        local_host="127.0.0.1", local_port=0
    )
    server = LocalServer(answer, listener.extra(anyio.abc.SocketAttribute.local_port))
    if tls is not None:
        tls.sni_callback = lambda _sock, name, _ctx: server.server_names.append(name)
        listener = TLSListener(listener, tls, standard_compatible=False)
    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, server.handle)
        yield server
        tg.cancel_scope.cancel()


def resolver(monkeypatch: pytest.MonkeyPatch, first: dict[str, list[str]]) -> list[str]:
    """A rebinding resolver: ``first[host]`` on the first lookup of a host, loopback after.

    Returns the hosts looked up, in order.
    """
    asked: list[str] = []

    async def getaddrinfo(host: str, port: int, **_: Any) -> list[tuple[Any, ...]]:
        answer = ["127.0.0.1"] if host in asked else first[host]
        asked.append(host)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port)) for a in answer]

    monkeypatch.setattr(imagegen._download.anyio, "getaddrinfo", getaddrinfo)
    return asked


class Internet:
    """Routes public addresses to local servers; looks names up as a plain connect would."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, routes: dict[str, LocalServer]) -> None:
        self.connects: list[str] = []  # the host every connection was asked for
        real = httpcore.AnyIOBackend.connect_tcp

        async def connect_tcp(
            backend: httpcore.AnyIOBackend, host: str, port: int, *args: Any, **kwargs: Any
        ) -> httpcore.AsyncNetworkStream:
            self.connects.append(host)
            try:
                ipaddress.ip_address(host)
            except ValueError:  # a name: what a second lookup answers now
                host = (await anyio.getaddrinfo(host, port))[0][4][0]
            if host in routes:
                host, port = "127.0.0.1", routes[host].port
            return await real(backend, host, port, *args, **kwargs)

        monkeypatch.setattr(httpcore.AnyIOBackend, "connect_tcp", connect_tcp)


class Certificates:
    """A test CA and server certificates it signs, for TLS on 127.0.0.1."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "imagegen test CA")])
        self.ca = (
            self._builder(self.name, self.key)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(self._usage(cert_sign=True), critical=True)
            .sign(self.key, hashes.SHA256())
        )

    def _builder(
        self, subject: x509.Name, key: ec.EllipticCurvePrivateKey
    ) -> x509.CertificateBuilder:
        now = dt.datetime.now(dt.UTC)
        return (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self.name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                critical=False,
            )
        )

    @staticmethod
    def _usage(*, cert_sign: bool) -> x509.KeyUsage:
        return x509.KeyUsage(
            digital_signature=not cert_sign,
            content_commitment=False,
            key_encipherment=False,
            data_encipherment=False,
            key_agreement=False,
            key_cert_sign=cert_sign,
            crl_sign=cert_sign,
            encipher_only=False,
            decipher_only=False,
        )

    def server(self, host: str) -> ssl.SSLContext:
        """A server context whose certificate (signed by the CA) names ``host`` only."""
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            self._builder(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]), key)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(self._usage(cert_sign=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(self.key, hashes.SHA256())
        )
        cert_file, key_file = self.tmp_path / f"{host}.pem", self.tmp_path / f"{host}.key"
        cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_file.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert_file, key_file)
        return context

    def client(self) -> ssl.SSLContext:
        """A client context that trusts this CA only, checking host names."""
        return ssl.create_default_context(
            cadata=self.ca.public_bytes(serialization.Encoding.PEM).decode()
        )


@pytest.fixture
def certificates(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Certificates:
    """A test CA that downloads trust (in place of the public roots)."""
    made = Certificates(tmp_path)
    monkeypatch.setattr(imagegen._download, "_ssl_context", made.client)
    return made


async def download(url: str, policy: DownloadPolicy) -> bytes:
    """fetch_image as the pipeline calls it, with a plain client for ``http``."""
    async with httpx.AsyncClient() as http:
        with anyio.fail_after(10):
            data, _ = await fetch_image(url, http=http, policy=policy, provider="prov")
    return data


PUBLIC_HTTP = DownloadPolicy(allow_http=True)
PRIVATE_HTTP = DownloadPolicy(allow_http=True, allow_private_networks=True)


class TestPinning:
    async def test_a_rebinding_resolver_cannot_reach_loopback(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The connection goes to the checked public address, not to the loopback address
        a second lookup would give."""
        async with serve() as internal, serve() as cdn:
            asked = resolver(monkeypatch, {"rebind.example": [CDN]})
            internet = Internet(monkeypatch, {CDN: cdn})
            url = f"http://rebind.example:{internal.port}/x.png"
            assert await download(url, PUBLIC_HTTP) == tiny_png()
        assert internet.connects == [CDN]
        assert asked == ["rebind.example"]
        assert internal.requests == []
        assert [(path, h["host"]) for path, h in cdn.requests] == [
            ("/x.png", f"rebind.example:{internal.port}")
        ]

    async def test_every_redirect_hop_is_pinned(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Each hop connects to the address its own check passed."""
        async with serve() as internal, serve() as second:
            hop = f"http://second.example:{internal.port}/y.png"
            async with serve(lambda _path: (302, {"Location": hop}, b"")) as first:
                resolver(monkeypatch, {"first.example": [CDN], "second.example": [CDN2]})
                internet = Internet(monkeypatch, {CDN: first, CDN2: second})
                url = f"http://first.example:{internal.port}/x.png"
                assert await download(url, PUBLIC_HTTP) == tiny_png()
        assert internet.connects == [CDN, CDN2]
        assert internal.requests == []
        assert [path for path, _ in first.requests + second.requests] == ["/x.png", "/y.png"]

    async def test_no_second_lookup_at_all(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """A name nothing else can resolve is fetched: the connection uses the checked address."""
        async with serve() as server:
            asked = resolver(monkeypatch, {"pinned.invalid": ["127.0.0.1"]})
            url = f"http://pinned.invalid:{server.port}/x.png"
            assert await download(url, PRIVATE_HTTP) == tiny_png()
        assert asked == ["pinned.invalid"]
        assert server.requests[0][1]["host"] == f"pinned.invalid:{server.port}"

    async def test_the_next_checked_address_when_one_refuses(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """When the first checked address refuses the connection, the next one is tried."""
        async with serve() as server:
            resolver(monkeypatch, {"two.example": ["127.0.0.2", "127.0.0.1"]})
            url = f"http://two.example:{server.port}/x.png"
            assert await download(url, PRIVATE_HTTP) == tiny_png()
        assert len(server.requests) == 1

    async def test_the_pool_is_closed_with_the_download(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The download's own connection is closed once it returns."""
        async with serve() as server:
            resolver(monkeypatch, {"close.example": ["127.0.0.1"]})
            await download(f"http://close.example:{server.port}/x.png", PRIVATE_HTTP)
            with anyio.fail_after(5):
                await server.closed.wait()


class TestTls:
    async def test_sni_host_and_certificate_use_the_name(
        self, monkeypatch: pytest.MonkeyPatch, certificates: Certificates
    ) -> None:
        """Over https the pinned connection sends the name as SNI and Host, and the
        certificate is checked against that name."""
        async with serve(tls=certificates.server("images.example")) as server:
            resolver(monkeypatch, {"images.example": ["127.0.0.1"]})
            url = f"https://images.example:{server.port}/x.png"
            assert await download(url, DownloadPolicy(allow_private_networks=True)) == tiny_png()
        assert server.server_names == ["images.example"]
        assert server.requests[0][1]["host"] == f"images.example:{server.port}"

    async def test_a_certificate_for_another_name_is_refused(
        self, monkeypatch: pytest.MonkeyPatch, certificates: Certificates
    ) -> None:
        """A server whose certificate does not name the URL's host gets no request."""
        async with serve(tls=certificates.server("other.example")) as server:
            resolver(monkeypatch, {"images.example": ["127.0.0.1"]})
            url = f"https://images.example:{server.port}/x.png"
            with pytest.raises(ProviderUnavailable) as info:
                await download(url, DownloadPolicy(allow_private_networks=True))
        assert info.value.retryable is False
        assert server.server_names == ["images.example"]
        assert server.requests == []
