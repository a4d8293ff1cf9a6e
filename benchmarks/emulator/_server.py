"""The emulator served from this process: lifecycle, connections, routing, control API.

It is a small HTTP/1.1 server of its own (h11 on anyio) so that it owns its sockets:
it can hang a request or reset a connection, notices a client that gives up, and runs
on asyncio and trio. Each vendor's routes live in their own module (``_replicate``,
``_fal``, ``_openai`` (with Azure), ``_openai_like`` (Together, xAI), ``_unsplash``,
``_google``, ``_bfl``, ``_bedrock``, ``_stability``, ``_huggingface``) as a class
:class:`Emulator` inherits.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import anyio
import anyio.abc
import h11

from ._base import _check_name
from ._bedrock import _BedrockRoutes
from ._bfl import _BflRoutes
from ._errors import _AUTH, _authorized, _error
from ._fal import _FalRoutes
from ._google import _GoogleRoutes
from ._http import (
    _NETWORK_ERRORS,
    _Action,
    _close_gracefully,
    _encode,
    _Handler,
    _json,
    _Outcome,
    _Reply,
    _Request,
    _set_reset,
)
from ._huggingface import _HuggingFaceRoutes
from ._instance import _Instance
from ._openai import _OpenAIRoutes
from ._openai_like import _OpenAILikeRoutes
from ._profiles import Fault, ProviderProfile
from ._replicate import _ReplicateRoutes
from ._stability import _StabilityRoutes
from ._stats import ProviderStats
from ._unsplash import _UnsplashRoutes

_CUT_PAUSE = 0.02  # seconds between the half-sent answer of CUT_OFF and its reset


class Emulator(
    _ReplicateRoutes,
    _FalRoutes,
    _OpenAIRoutes,
    _UnsplashRoutes,
    _GoogleRoutes,
    _BflRoutes,
    _BedrockRoutes,
    _OpenAILikeRoutes,
    _StabilityRoutes,
    _HuggingFaceRoutes,
):
    """The emulator, served from this process on 127.0.0.1 (a free port by default).

    Use as ``async with Emulator(profiles) as emu:``; leaving the block stops the
    server, cancels every hanging request and closes every socket.

    Args:
        profiles: Instance name -> profile; default: one instance per API, named after it.
        host: Where to listen.
        port: 0 picks a free port.
    """

    def __init__(
        self,
        profiles: Mapping[str, ProviderProfile] | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(profiles)
        self._instances = {name: _Instance(name, p) for name, p in self._profiles.items()}
        self._host, self._port = host, port
        self._listener: anyio.abc.Listener[anyio.abc.SocketStream] | None = None
        self._group: anyio.abc.TaskGroup | None = None
        self.connections = 0  # open now
        self.connections_total = 0

    # -- lifecycle -------------------------------------------------------------

    async def __aenter__(self) -> Emulator:
        listener = await anyio.create_tcp_listener(local_host=self._host, local_port=self._port)
        self._listener = listener
        port = listener.extra(anyio.abc.SocketAttribute.local_port)
        self.origin = f"http://{self._host}:{port}"
        self._group = anyio.create_task_group()
        await self._group.__aenter__()
        self._group.start_soon(listener.serve, self._connection)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._group is not None
        assert self._listener is not None
        self._group.cancel_scope.cancel()
        await self._group.__aexit__(None, None, None)
        await self._listener.aclose()
        self._group = self._listener = None

    async def serve_forever(self) -> None:
        """Run until cancelled (the command line uses this)."""
        async with self:
            await anyio.sleep_forever()

    # -- control ---------------------------------------------------------------

    def stats(self, name: str) -> ProviderStats:
        """Instance ``name``'s counters."""
        return self._instances[name].stats()

    def edits(self, name: str) -> list[dict[str, Any]]:
        """What each OpenAI ``/images/edits`` call to ``name`` carried: the number of
        images, whether a mask came, and the form's parts (in process only)."""
        return list(self._instances[name].edits)

    def all_stats(self) -> dict[str, ProviderStats]:
        """Every instance's counters."""
        return {name: inst.stats() for name, inst in self._instances.items()}

    def force(self, name: str, fault: Fault | None, count: int = 1) -> None:
        """The next ``count`` creates on ``name`` meet ``fault`` (None: succeed).

        Forced faults queue up after any already forced, and take precedence over
        the profile's odds; latencies are still drawn.
        """
        self._instances[name].forced.extend([fault] * count)

    def set_profile(self, name: str, profile: ProviderProfile) -> None:
        """Replace instance ``name``'s profile (or add a new instance); counters stay."""
        _check_name(name)
        self._profiles[name] = profile
        if name in self._instances:
            self._instances[name].profile = profile
        else:
            self._instances[name] = _Instance(name, profile)

    def reset(self, name: str | None = None) -> None:
        """Zero the counters, forget jobs, draws and forced faults (of one instance or all)."""
        for inst in self._instances.values() if name is None else [self._instances[name]]:
            inst.reset()

    # -- connections -----------------------------------------------------------

    async def _connection(self, stream: anyio.abc.SocketStream) -> None:
        self.connections += 1
        self.connections_total += 1
        try:
            async with stream:
                conn = h11.Connection(h11.SERVER)
                while True:
                    request = await self._read(stream, conn)
                    if request is None:
                        return
                    outcome = await self._answer(stream, conn, request)
                    if outcome is _Action.GONE:
                        return
                    if outcome is _Action.RESET:
                        _set_reset(stream)
                        return
                    assert isinstance(outcome, _Reply)
                    data = _encode(conn, outcome)
                    if outcome.cut:  # the head and half the body, then an RST
                        await stream.send(data[: len(data) - (len(outcome.body) + 1) // 2])
                        await anyio.sleep(_CUT_PAUSE)  # the client reads them first
                        _set_reset(stream)
                        return
                    await stream.send(data)
                    for pause, piece in outcome.pieces:
                        await anyio.sleep(pause)
                        await stream.send(conn.send(h11.Data(data=piece)) or b"")
                    if outcome.pieces:
                        await stream.send(conn.send(h11.EndOfMessage()) or b"")
                    if conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                        await _close_gracefully(stream)
                        return
                    conn.start_next_cycle()
        except _NETWORK_ERRORS:
            return
        finally:
            self.connections -= 1

    async def _read(self, stream: anyio.abc.SocketStream, conn: h11.Connection) -> _Request | None:
        head: h11.Request | None = None
        chunks: list[bytes] = []
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                try:
                    data = await stream.receive(65536)
                except (anyio.EndOfStream, anyio.BrokenResourceError, OSError):
                    data = b""
                conn.receive_data(data)
                continue
            if isinstance(event, h11.Request):
                head = event
            elif isinstance(event, h11.Data):
                chunks.append(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage):
                break
            else:  # ConnectionClosed, or PAUSED by a protocol we do not speak
                return None
        assert head is not None
        parts = urlsplit(head.target.decode("ascii", "replace"))
        return _Request(
            method=head.method.decode("ascii"),
            path=parts.path,
            query=dict(parse_qsl(parts.query, keep_blank_values=True)),
            headers={k.decode("latin-1"): v.decode("latin-1") for k, v in head.headers},
            body=b"".join(chunks),
        )

    async def _answer(
        self, stream: anyio.abc.SocketStream, conn: h11.Connection, request: _Request
    ) -> _Outcome:
        handler, inst, slow = self._route(request)
        if not slow:
            return await handler()
        # The handler may wait (latency, a hang): meanwhile, watch the socket so a client
        # that gives up is noticed at once, counted, and its request dropped.
        outcome: list[_Outcome] = []
        async with anyio.create_task_group() as group:

            async def run() -> None:
                outcome.append(await handler())
                group.cancel_scope.cancel()

            async def watch() -> None:
                while True:
                    try:
                        data = await stream.receive(65536)
                    except (anyio.EndOfStream, anyio.BrokenResourceError, OSError):
                        data = b""
                    if not data:
                        outcome.append(_Action.GONE)
                        group.cancel_scope.cancel()
                        return
                    conn.receive_data(data)  # pipelined: h11 keeps it for the next cycle

            group.start_soon(run)
            group.start_soon(watch)
        if outcome[0] is _Action.GONE and inst is not None:
            inst.counts["disconnects"] += 1
        return outcome[0]

    # -- routing ---------------------------------------------------------------

    def _route(self, request: _Request) -> tuple[_Handler, _Instance | None, bool]:
        parts = [p for p in request.path.split("/") if p]

        async def not_found() -> _Outcome:
            return _json(404, {"detail": f"no route for {request.method} {request.path}"})

        if not parts:
            return not_found, None, False
        if parts[0] == "_emulator":
            return (lambda: self._control(request, parts[1:])), None, False
        inst = self._instances.get(parts[0])
        if inst is None:
            return not_found, None, False
        rest = parts[1:]
        if len(rest) == 3 and rest[0] == "files" and request.method == "GET":
            inst.counts["downloads"] += 1
            return (lambda: self._file(inst, rest[1], rest[2])), inst, True
        inst.counts["requests"] += 1
        api = inst.profile.api
        public = getattr(self, f"_public_{api}", None)
        open_route = public(inst, request, rest) if public is not None else None
        if open_route is not None:
            return open_route, inst, False
        scheme = _AUTH[api]
        if not _authorized(api, request.headers):
            missing = _error(api, 401, f"missing or malformed Authorization ({scheme.strip()})")

            async def unauthorized() -> _Outcome:
                return missing

            return unauthorized, inst, False
        route = getattr(self, f"_route_{api}")(inst, request, rest)
        if route is None:
            vendor_404 = _error(api, 404, f"not found: {request.method} {request.path}")

            async def missing_route() -> _Outcome:
                return vendor_404

            return missing_route, inst, False
        handler, slow = route
        return handler, inst, slow

    # -- control API -----------------------------------------------------------

    async def _control(self, request: _Request, parts: list[str]) -> _Outcome:
        method = request.method
        body = request.json() or {}
        try:
            if method == "GET" and parts == ["health"]:
                return _json(
                    200,
                    {
                        "ok": True,
                        "instances": list(self._instances),
                        "connections": self.connections,
                        "connections_total": self.connections_total,
                    },
                )
            if method == "GET" and parts == ["stats"]:
                return _json(200, {n: s.to_dict() for n, s in self.all_stats().items()})
            if method == "GET" and len(parts) == 2 and parts[0] == "stats":
                return _json(200, self.stats(parts[1]).to_dict())
            if method == "GET" and parts == ["profiles"]:
                return _json(200, {n: p.to_dict() for n, p in self._profiles.items()})
            if method == "PUT" and len(parts) == 2 and parts[0] == "profiles":
                self.set_profile(parts[1], ProviderProfile.from_dict(body))
                return _json(200, {"ok": True})
            if method == "POST" and parts == ["force"]:
                fault = None if body.get("fault") is None else Fault(body["fault"])
                self.force(str(body["provider"]), fault, int(body.get("count", 1)))
                return _json(200, {"ok": True})
            if method == "POST" and parts == ["reset"]:
                self.reset(body.get("provider"))
                return _json(200, {"ok": True})
        except (KeyError, ValueError, TypeError) as exc:
            return _json(400, {"detail": f"{type(exc).__name__}: {exc}"})
        return _json(404, {"detail": "unknown control route"})
