"""HTTP/1.1 plumbing on h11: requests, replies, encoding, graceful close and resets."""

from __future__ import annotations

import contextlib
import datetime as dt
import email.parser
import email.policy
import enum
import http
import json
import socket
import struct
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import anyio.abc
import attrs
import h11


@attrs.frozen
class _Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        try:
            return json.loads(self.body) if self.body else {}
        except (json.JSONDecodeError, UnicodeDecodeError):
            return None

    def form(self) -> list[tuple[str, str | bytes]] | None:
        """A multipart/form-data body's parts, in order: (name, text or file bytes);
        None when the body is not one."""
        kind = self.headers.get("content-type", "")
        if not kind.startswith("multipart/form-data"):
            return None
        head = f"Content-Type: {kind}\r\nMIME-Version: 1.0\r\n\r\n".encode()
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + self.body)
        parts: list[tuple[str, str | bytes]] = []
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            payload = part.get_payload(decode=True)
            if not isinstance(name, str) or not isinstance(payload, bytes):
                return None
            is_file = part.get_param("filename", header="content-disposition") is not None
            parts.append((name, payload if is_file else payload.decode()))
        return parts


@attrs.frozen
class _Reply:
    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: tuple[tuple[str, str], ...] = ()
    cut: bool = False  # send the head and half the body, then reset the connection
    #: A streamed body instead (chunked): each piece sent after its pause, in seconds.
    pieces: tuple[tuple[float, bytes], ...] = ()


class _Action(enum.Enum):
    RESET = "reset"
    GONE = "gone"  # the client disconnected


_Outcome = _Reply | _Action
_Handler = Callable[[], Awaitable[_Outcome]]
_NETWORK_ERRORS = (
    anyio.BrokenResourceError,
    anyio.ClosedResourceError,
    anyio.EndOfStream,
    OSError,
    h11.ProtocolError,
)


def _json(status: int, data: Any, headers: tuple[tuple[str, str], ...] = ()) -> _Reply:
    return _Reply(status, json.dumps(data, separators=(",", ":")).encode(), headers=headers)


def _malformed(status: int, data: Any) -> _Reply:
    # The start of the real answer, cut off mid-way: what a broken proxy or a crashed
    # worker sends, with a JSON content type.
    text = json.dumps(data, separators=(",", ":")).encode()
    return _Reply(status, text[: max(1, len(text) // 2)])


def _now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _prefer_wait(value: str | None) -> float | None:
    """Seconds from ``Prefer: wait`` (60) or ``Prefer: wait=N``; None without it."""
    if not value:
        return None
    for part in value.split(","):
        name, _, number = part.strip().partition("=")
        if name.strip().lower() == "wait":
            try:
                return float(number) if number else 60.0
            except ValueError:
                return 60.0
    return None


async def _done(reply: _Reply) -> _Outcome:
    return reply


def _encode(conn: h11.Connection, reply: _Reply) -> bytes:
    """The reply as bytes to send; of a streamed one, only its head (see ``pieces``)."""
    length = () if reply.pieces else (("content-length", str(len(reply.body))),)
    headers = [
        ("content-type", reply.content_type),
        *length,
        ("server", "imagegen-emulator"),
        *reply.headers,
    ]
    try:
        reason = http.HTTPStatus(reply.status).phrase.encode()
    except ValueError:
        reason = b""
    out = conn.send(h11.Response(status_code=reply.status, headers=headers, reason=reason)) or b""
    if reply.pieces:
        return out  # h11 frames the pieces chunked: no length was given
    if reply.body:
        out += conn.send(h11.Data(data=reply.body)) or b""
    out += conn.send(h11.EndOfMessage()) or b""
    return out


async def _close_gracefully(stream: anyio.abc.SocketStream) -> None:
    """Flush and send FIN, then wait (briefly) for the client to close: anyio's close aborts."""
    with anyio.move_on_after(1.0), contextlib.suppress(*_NETWORK_ERRORS):
        await stream.send_eof()
        while await stream.receive():
            pass


def _set_reset(stream: anyio.abc.SocketStream) -> None:
    """Make closing ``stream`` send RST instead of FIN (SO_LINGER with a zero timeout)."""
    sock = stream.extra(anyio.abc.SocketAttribute.raw_socket, None)
    if sock is not None:
        # anyio closes a stream by aborting it (asyncio) or closing the socket (trio): no
        # FIN goes first, so with this option the peer sees only the RST.
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def closed_port_url(host: str = "127.0.0.1") -> str:
    """An http URL on a port where nothing listens: connections to it are refused."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port = sock.getsockname()[1]
    return f"http://{host}:{port}"
