"""RedisState's round trips, counted by a TCP proxy between it and a real redis-server.

The proxy forwards bytes both ways on 127.0.0.1 and counts a round trip each time a
client sends after the server last spoke on that connection, so a pipeline's commands,
however the kernel splits them, count once, and a command that waits for an earlier
reply (redis-py's SCRIPT EXISTS before a pipeline with scripts) counts again. The
backend has one connection (``max_workers=1``), warmed up before anything is counted.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from urllib.parse import quote

import anyio
import anyio.abc
import anyio.to_thread
import pytest
import redis

from imagegen import ImageGenerator
from imagegen.state import RedisState
from imagegen.state._redis import _INCR
from imagegen.testing import instant
from redis_support import RedisServer

pytestmark = pytest.mark.anyio


class CountingProxy:
    """A TCP proxy to one Redis server that counts the round trips through it."""

    def __init__(self, host: str, port: int) -> None:
        self.upstream = (host, port)
        self.port = 0
        self.round_trips = 0
        self.connections = 0

    async def handle(self, client: anyio.abc.SocketStream) -> None:
        """Forward one client connection both ways until either side closes."""
        self.connections += 1
        server_spoke_last = [True]  # a connection's first bytes start a round trip

        async def pump(
            source: anyio.abc.SocketStream, sink: anyio.abc.SocketStream, *, from_client: bool
        ) -> None:
            async for data in source:
                # Counted before forwarding: the reply cannot reach the client, nor the
                # client's next request the proxy, before this line has run.
                if from_client and server_spoke_last[0]:
                    self.round_trips += 1
                server_spoke_last[0] = not from_client
                await sink.send(data)
            tg.cancel_scope.cancel()

        async with (
            client,
            await anyio.connect_tcp(*self.upstream) as server,
            anyio.create_task_group() as tg,
        ):
            tg.start_soon(lambda: pump(client, server, from_client=True))
            tg.start_soon(lambda: pump(server, client, from_client=False))

    async def count(self, action: Callable[[], Awaitable[object]]) -> int:
        """How many round trips ``action`` makes (run to completion, nothing else running)."""
        before = self.round_trips
        await action()
        return self.round_trips - before


@asynccontextmanager
async def counting_proxy(server: RedisServer) -> AsyncIterator[CountingProxy]:
    """A CountingProxy to ``server`` on a free port of 127.0.0.1, for the block's length."""
    kwargs = server.client.get_connection_kwargs()
    if "path" in kwargs:
        pytest.skip("the round-trip proxy speaks TCP; IMAGEGEN_REDIS_URL is a unix socket")
    proxy = CountingProxy(str(kwargs["host"]), int(kwargs["port"]))
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    proxy.port = int(listener.extra(anyio.abc.SocketAttribute.local_port))
    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, proxy.handle)
        try:
            yield proxy
        finally:
            tg.cancel_scope.cancel()


def proxied_url(server: RedisServer, proxy: CountingProxy) -> str:
    """``server``'s database (and credentials) reached through ``proxy``."""
    kwargs = server.client.get_connection_kwargs()
    user, password = kwargs.get("username"), kwargs.get("password")
    auth = ""
    if password is not None:
        auth = f"{quote(str(user or ''), safe='')}:{quote(str(password), safe='')}@"
    return f"redis://{auth}127.0.0.1:{proxy.port}/{kwargs.get('db', 0)}"


@asynccontextmanager
async def proxied_state(redis_db: RedisServer) -> AsyncIterator[tuple[RedisState, CountingProxy]]:
    """A one-connection RedisState through a CountingProxy, connected and its script loaded."""
    async with counting_proxy(redis_db) as proxy:
        state = RedisState(proxied_url(redis_db, proxy), max_workers=1)
        try:
            await state.get("warm-up")  # connects (and redis-py's handshake) before counting
            redis_db.client.script_load(_INCR)  # as after the first incr of a process
            yield state, proxy
        finally:
            await state.aclose()


async def test_every_call_is_one_round_trip(redis_db: RedisServer) -> None:
    """get, set, delete, incr, incr_many, set_if_absent and a small scan: one round trip each."""
    async with proxied_state(redis_db) as (state, proxy):
        assert await proxy.count(lambda: state.set("k", b"v")) == 1
        assert await proxy.count(lambda: state.set("t", b"v", ttl=30)) == 1
        assert await proxy.count(lambda: state.set("gone", b"v", ttl=0)) == 1
        assert await proxy.count(lambda: state.get("k")) == 1
        assert await proxy.count(lambda: state.get("absent")) == 1
        assert await proxy.count(lambda: state.incr("n")) == 1
        assert await proxy.count(lambda: state.incr("w", 2, ttl=30)) == 1
        assert await proxy.count(lambda: state.set_if_absent("lock", b"me", ttl=30)) == 1
        assert await proxy.count(lambda: state.set_if_absent("lock", b"you", ttl=30)) == 1
        assert await proxy.count(lambda: state.set_if_absent("free", b"v", ttl=0)) == 1
        assert await proxy.count(lambda: state.scan("")) == 1
        assert await proxy.count(lambda: state.delete("k")) == 1
        assert proxy.connections == 1
        # What they did, read past the proxy.
        client = redis_db.client
        assert client.mget("k", "t", "gone", "n", "w", "lock") == [
            None, b"v", None, b"1", b"2", b"me",
        ]  # fmt: skip
        assert 0 < client.pttl("w") <= 30_000


async def test_incr_many_is_one_round_trip(redis_db: RedisServer) -> None:
    """A call's three counters, with a ttl, go in one round trip, created or bumped."""
    counters = {"s:calls": 1, "s:ok": 1, "s:ms": 250}
    async with proxied_state(redis_db) as (state, proxy):
        assert await proxy.count(lambda: state.incr_many(counters, ttl=60)) == 1
        assert await proxy.count(lambda: state.incr_many(counters, ttl=60)) == 1
        assert await proxy.count(lambda: state.incr_many({"s:ok": -1})) == 1
        assert await proxy.count(lambda: state.incr_many({})) == 0
        client = redis_db.client
        assert client.mget(*counters) == [b"2", b"1", b"500"]
        assert all(0 < client.pttl(key) <= 60_000 for key in counters)


async def test_incr_many_refusing_a_non_integer_is_one_round_trip(
    redis_db: RedisServer,
) -> None:
    """The ValueError comes from the same single round trip; the value is left alone."""
    redis_db.client.set("text", b"abc")
    async with proxied_state(redis_db) as (state, proxy):

        async def refused() -> None:
            with pytest.raises(ValueError, match="integer"):
                await state.incr_many({"a": 1, "text": 1, "b": 2})

        assert await proxy.count(refused) == 1
    # Each increment is atomic on its own, as documented: the others still counted.
    assert redis_db.client.mget("a", "text", "b") == [b"1", b"abc", b"2"]


async def test_a_server_without_the_script_loads_it_once(redis_db: RedisServer) -> None:
    """After SCRIPT FLUSH (or a restart) the batch is refused whole, the script is loaded,
    and the batch sent again: each counter counts once; the next batch is one trip again."""
    async with proxied_state(redis_db) as (state, proxy):
        await state.incr_many({"a": 1, "b": 1})
        redis_db.client.script_flush()
        assert await proxy.count(lambda: state.incr_many({"a": 1, "b": 1})) == 3
        assert redis_db.client.mget("a", "b") == [b"2", b"2"]
        assert await proxy.count(lambda: state.incr_many({"a": 1, "b": 1})) == 1
        redis_db.client.script_flush()
        assert await proxy.count(lambda: state.incr("a")) == 3
        assert await proxy.count(lambda: state.incr("a")) == 1
        assert redis_db.client.mget("a", "b") == [b"5", b"3"]


async def test_the_proxy_sees_a_second_round_trip(redis_db: RedisServer) -> None:
    """The check can fail: redis-py's Script in a pipeline (the old incr_many) costs two."""
    async with counting_proxy(redis_db) as proxy:
        client = redis.Redis.from_url(proxied_url(redis_db, proxy))
        try:
            await anyio.to_thread.run_sync(client.ping)
            script = client.register_script(_INCR)

            def scripted_pipeline() -> None:
                pipe = client.pipeline(transaction=True)
                script(keys=["a"], args=[1, ""], client=pipe)
                pipe.execute()

            await anyio.to_thread.run_sync(scripted_pipeline)  # loads the script
            assert await proxy.count(lambda: anyio.to_thread.run_sync(scripted_pipeline)) == 2
        finally:
            await anyio.to_thread.run_sync(client.close)


async def test_write_batch_is_one_round_trip(redis_db: RedisServer) -> None:
    """A record and its counters: one round trip, a value expiring as its own ttl says."""
    async with proxied_state(redis_db) as (state, proxy):

        async def batch() -> None:
            await state.write_batch(
                {"record": (b"{}", 60.0), "gone": (b"x", 0.0)},
                {"a": 1, "b": 2},
                ttl=60.0,
                once=("counted:r", 60.0),
            )

        redis_db.client.script_flush()
        assert await proxy.count(batch) == 3  # the batch script loaded on its NOSCRIPT
        redis_db.client.delete("counted:r", "a", "b")
        assert await proxy.count(batch) == 1
        assert redis_db.client.mget("record", "gone", "a", "b") == [b"{}", None, b"1", b"2"]
        assert 0 < redis_db.client.pttl("record") <= 60_000


async def test_a_generation_makes_two_round_trips(redis_db: RedisServer) -> None:
    """One provider, one image: the running record, then the final record with the call's
    counters (they were three: the counters went apart); the breaker and the shared
    settings are read once, then trusted."""
    async with proxied_state(redis_db) as (state, proxy):
        gen = ImageGenerator(providers=[instant("a")], state=state, config_ttl=60.0)
        async with gen:
            await gen.generate("warm up")  # the first breaker read and settings look
            trips = [await proxy.count(lambda: gen.generate("a fox")) for _ in range(5)]
        [row] = await gen.stats()
        assert row.requests == 6
    # A breaker is trusted closed for a second: on a machine slow enough that five
    # generations pass it, one of them reads it again (a third trip), never more.
    assert min(trips) == 2
    assert max(trips) <= 3
