"""State in Redis: shared by every process and machine that talks to the same server.

redis-py's asyncio client fails under trio, so this backend drives the *sync* client
from a bounded pool of anyio worker threads: one code path that serves asyncio and trio
alike. ``benchmarks/state.py`` measures what the thread hop costs.

redis-py is the optional extra ``imagegen-failover[redis]``; it is imported only when a
``RedisState`` is built, so ``import imagegen`` works without it.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import re
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from .._distribution import install_hint
from .._errors import InvalidConfig
from ._threads import WorkerThreads

if TYPE_CHECKING:
    import redis

__all__ = ["RedisState"]

_T = TypeVar("_T")

# Redis refuses an expiry that overflows its 64-bit millisecond clock; anything this far
# out (146 million years) is "never" for every practical purpose.
_MAX_PX = 2**62

# incr's ttl applies only when the counter is created. A script runs atomically on the
# server, so no other client can slip in between the existence check and the INCRBY or
# see the new counter before its expiry is set. The check is EXISTS *before* INCRBY, not
# "the result equals amount" afterwards: a counter that already held 0 (or reached 0
# through negative amounts), or an amount of 0, would fool that test and gain or
# refresh a ttl it must not have. A counter born with ttl <= 0 is expired at once, as in
# the other backends: nothing is stored and the caller just gets `amount` back (nil here).
# The new value goes back as the stored string, not INCRBY's reply: Lua keeps numbers
# as doubles, which round past 2**53.
#   KEYS[1] the counter; ARGV[1] amount; ARGV[2] ttl in ms, "" for none, "0" for expired.
# It runs by EVALSHA alone (one round trip, in a pipeline too), loaded only when the
# server answers NOSCRIPT (first use, a restart, SCRIPT FLUSH): redis-py's Script objects
# would send SCRIPT EXISTS before every pipeline.
_INCR = """
if redis.call('EXISTS', KEYS[1]) == 0 then
    if ARGV[2] == '0' then
        return false
    end
    redis.call('INCRBY', KEYS[1], ARGV[1])
    if ARGV[2] ~= '' then
        redis.call('PEXPIRE', KEYS[1], ARGV[2])
    end
    return redis.call('GET', KEYS[1])
end
redis.call('INCRBY', KEYS[1], ARGV[1])
return redis.call('GET', KEYS[1])
"""
_INCR_SHA = hashlib.sha1(_INCR.encode(), usedforsecurity=False).hexdigest()
# A batch's counters, each as _INCR does it, added only if the marker (when there is
# one) could be set: a batch sent again after a cut-off try counts once.
#   KEYS: the counters, then the marker when ARGV[1] is not "";
#   ARGV[1] the marker's ttl in ms ("" for no marker); ARGV[2] the counters' ttl in ms
#   ("" for none, "0" for expired); ARGV[3...] the amounts, in the counters' order.
_COUNT_ONCE = """
local n = #ARGV - 2
if ARGV[1] ~= '' then
    if not redis.call('SET', KEYS[n + 1], '1', 'NX', 'PX', ARGV[1]) then
        return 0
    end
end
for i = 1, n do
    if redis.call('EXISTS', KEYS[i]) == 0 then
        if ARGV[2] ~= '0' then
            redis.call('INCRBY', KEYS[i], ARGV[i + 2])
            if ARGV[2] ~= '' then
                redis.call('PEXPIRE', KEYS[i], ARGV[2])
            end
        end
    else
        redis.call('INCRBY', KEYS[i], ARGV[i + 2])
    end
end
return 1
"""
_COUNT_ONCE_SHA = hashlib.sha1(_COUNT_ONCE.encode(), usedforsecurity=False).hexdigest()

# SCAN's MATCH is a glob; these are its special characters outside brackets (inside
# brackets ^ and - matter too, but an escaped [ never opens a bracket).
_GLOB_SPECIAL = re.compile(r"([\\*?\[\]])")


class RedisState:
    """A :class:`~imagegen.state.StateBackend` on a Redis server, via redis-py's sync client.

    Every call runs in an anyio worker thread, at most ``max_workers`` at once, so it
    works on asyncio and trio. ``incr`` (a Lua script) and ``set_if_absent``
    (``SET NX``) are atomic on the server, so processes sharing the server never lose
    a count or both win a lock. Expiry is the server's clock (millisecond ``PX``
    expiries, rounded up), which every client agrees on; there is no ``timer=``.

    Keys are stored as given (UTF-8): put ``namespace`` (the generator's) in front to
    keep environments sharing one server apart. ``scan`` walks the whole database with
    ``SCAN``, so its cost grows with the database, not with the number of matches.

    Args:
        url: ``redis://[[user]:[password]@]host[:port][/db]`` (also ``rediss://``,
            ``unix://``); query options such as ``?socket_timeout=5`` are honoured.
            The backend then owns a pool of ``max_workers`` connections and
            :meth:`aclose` disconnects it.
        client: A sync ``redis.Redis`` the caller built and owns (its pool, TLS, auth,
            Sentinel...). It must return bytes (no ``decode_responses=True``);
            :meth:`aclose` leaves it open. Size its pool to at least ``max_workers``
            (redis-py's default pool holds far more).
        max_workers: How many calls may be in flight at once (worker threads and
            pooled connections).

    Raises:
        InvalidConfig: Not exactly one of ``url`` and ``client``, a malformed URL,
            a client of the wrong kind, a bad ``max_workers``, or redis-py missing.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        client: redis.Redis | None = None,
        max_workers: int = 16,
    ) -> None:
        if url is None and client is None:
            raise InvalidConfig("RedisState needs url= or client=", field="url")
        if url is not None and client is not None:
            raise InvalidConfig("RedisState takes url= or client=, not both", field="client")
        field = "url" if client is None else "client"
        if isinstance(max_workers, bool) or not isinstance(max_workers, int) or max_workers < 1:
            raise InvalidConfig(
                f"max_workers must be an int >= 1 (got {max_workers!r})", field="max_workers"
            )
        try:
            # Here, not at module level: redis is an optional extra.
            import redis  # noqa: PLC0415
        except ImportError as exc:
            raise InvalidConfig(
                f"RedisState needs the 'redis' package: {install_hint('redis')}",
                field=field,
            ) from exc

        if client is None:
            if not isinstance(url, str) or not url:
                raise InvalidConfig(f"url must be a redis:// URL (got {url!r})", field="url")
            try:
                # A blocking pool: a call waits for a free connection instead of failing.
                # The limiter below never lets more than max_workers calls run, so the
                # wait is only a safety net. Timeouts keep a dead server from pinning a
                # worker thread forever; options in the URL's query win over these.
                pool = redis.BlockingConnectionPool.from_url(
                    url,
                    max_connections=max_workers,
                    socket_connect_timeout=10.0,
                    socket_timeout=30.0,
                )
            except ValueError as exc:  # the message never echoes the URL (or its password)
                raise InvalidConfig(f"url is not a usable Redis URL: {exc}", field="url") from exc
            self._client: redis.Redis = redis.Redis.from_pool(pool)  # closing it closes the pool
            self._owns_client = True
        else:
            if not isinstance(client, redis.Redis):
                raise InvalidConfig(
                    "client must be a sync redis.Redis (redis.asyncio clients fail under "
                    f"trio; this backend runs the sync client in worker threads), "
                    f"got {type(client).__name__}",
                    field="client",
                )
            if client.get_connection_kwargs().get("decode_responses"):
                raise InvalidConfig(
                    "client must return bytes: build it without decode_responses=True",
                    field="client",
                )
            self._client = client
            self._owns_client = False
        self._threads = WorkerThreads(max_workers, "Redis state")
        self._response_error: type[redis.ResponseError] = redis.ResponseError
        self._no_script: type[redis.exceptions.NoScriptError] = redis.exceptions.NoScriptError

    async def _call(self, fn: Callable[..., _T], *args: Any) -> _T:
        # A caller that gives up (its deadline) does not wait for a server that does not
        # answer: the call finishes in its thread (the socket timeout bounds it) and its
        # connection goes back to the pool; calls given up on hold their slots till then.
        return await self._threads.run(fn, *args)

    async def get(self, key: str) -> bytes | None:
        value = await self._call(self._client.get, key)
        # decode_responses is off (checked in __init__), so redis-py returns bytes or None.
        return cast("bytes | None", value)

    async def set(self, key: str, value: bytes, *, ttl: float | None = None) -> None:
        px = _px(ttl)
        if px == 0:
            # Stored already expired, as in the other backends: whatever was there is gone.
            await self._call(self._client.delete, key)
        else:
            await self._call(lambda: self._client.set(key, bytes(value), px=px))

    async def delete(self, key: str) -> None:
        await self._call(self._client.delete, key)

    async def incr(self, key: str, amount: int = 1, *, ttl: float | None = None) -> int:
        """One round trip: EVALSHA of the incr script (once loaded)."""
        px = _px_arg(ttl)

        def op() -> int | None:
            with self._integers(key):
                result = self._scripted(
                    lambda: self._client.evalsha(_INCR_SHA, 1, key, str(amount), px)
                )
            return None if result is None else int(cast("bytes", result))

        value = await self._call(op)
        return amount if value is None else value

    async def incr_many(self, amounts: Mapping[str, int], *, ttl: float | None = None) -> None:
        """``incr`` of each key by its amount, in one round trip (MULTI, one EVALSHA per
        key, EXEC): each is atomic and no other client's command runs between them."""
        px = _px_arg(ttl)
        items = [(key, str(amount)) for key, amount in amounts.items()]
        if not items:
            return

        def send() -> object:
            pipe = self._client.pipeline(transaction=True)
            for key, amount in items:
                pipe.evalsha(_INCR_SHA, 1, key, amount, px)
            return pipe.execute()

        def op() -> None:
            with self._integers(", ".join(amounts)):
                self._scripted(send)

        await self._call(op)

    async def write_batch(
        self,
        values: Mapping[str, tuple[bytes, float | None]],
        amounts: Mapping[str, int],
        *,
        ttl: float | None = None,
        once: tuple[str, float] | None = None,
    ) -> None:
        """``set`` of each value and ``incr`` of each counter (unless ``once``'s key is
        there already) in one round trip: MULTI, a SET (or a DEL, for an expired value)
        per value, one EVALSHA for the counters, EXEC."""
        stores = [(key, bytes(value), _px(t)) for key, (value, t) in values.items()]
        keys = list(amounts)
        marker = ""
        if once is not None:
            keys.append(once[0])
            marker = str(max(1, _px(once[1]) or 1))
        args = [marker, _px_arg(ttl), *(str(amount) for amount in amounts.values())]

        def send() -> object:
            pipe = self._client.pipeline(transaction=True)
            for key, value, value_px in stores:
                if value_px == 0:
                    pipe.delete(key)
                else:
                    pipe.set(key, value, px=value_px)
            if amounts:
                pipe.evalsha(_COUNT_ONCE_SHA, len(keys), *keys, *args)
            return pipe.execute()

        def op() -> None:
            with self._integers(", ".join(amounts)):
                # On NOSCRIPT the batch goes again: its SETs are the same values again,
                # and its counters were not touched (the script did not run).
                self._scripted(send, _COUNT_ONCE)

        await self._call(op)

    def _scripted(self, send: Callable[[], _T], script: str = _INCR) -> _T:
        """``send()``, which EVALSHAs the incr script; again after loading it on NOSCRIPT.

        A server without the script runs none of a MULTI's EVALSHAs (they all name the
        same script, and nothing can load it in the middle of the transaction), so
        sending the whole batch again counts each increment once.
        """
        try:
            return send()
        except self._no_script:
            self._client.script_load(script)
            return send()

    @contextlib.contextmanager
    def _integers(self, keys: str) -> Iterator[None]:
        """Turn Redis's "not an integer" into the ValueError the other backends raise."""
        try:
            yield
        except self._response_error as exc:
            # "value is not an integer or out of range": INCRBY stops the script, so that
            # counter did not change.
            if "not an integer" in str(exc):
                msg = f"the value at {keys!r} is not an integer (or the sum leaves 64 bits)"
                raise ValueError(msg) from None
            raise

    async def scan(self, prefix: str) -> list[str]:
        pattern = _GLOB_SPECIAL.sub(r"\\\1", prefix) + "*"

        def op() -> list[str]:
            # SCAN may return a key twice while the server resizes its table; a dict
            # drops repeats and keeps the order. COUNT 1000 cuts round trips.
            found = dict.fromkeys(self._client.scan_iter(match=pattern, count=1000))
            return [key.decode() for key in found]

        return await self._call(op)

    async def set_if_absent(self, key: str, value: bytes, *, ttl: float | None = None) -> bool:
        px = _px(ttl)
        if px == 0:
            # Would be stored already expired: it "wins" exactly when nothing live holds
            # the key, and leaves nothing behind, like the other backends.
            return not await self._call(self._client.exists, key)
        stored = await self._call(lambda: self._client.set(key, bytes(value), px=px, nx=True))
        return bool(stored)

    async def aclose(self) -> None:
        """Disconnect the pool this backend made from ``url``; a caller's ``client`` stays open.

        Idempotent. A later call reconnects, as SQLiteState reopens its file.
        """
        if self._owns_client:
            await self._call(self._client.close)

    def __repr__(self) -> str:
        # From the parsed options, never the URL: it may carry a password.
        kwargs = self._client.get_connection_kwargs()
        if "path" in kwargs:
            where = f"path={kwargs['path']!r}"
        else:
            where = f"host={kwargs.get('host')!r}, port={kwargs.get('port')!r}"
        return f"RedisState({where}, db={kwargs.get('db', 0)!r})"


def _px_arg(ttl: float | None) -> str:
    """``ttl`` as the incr script's ARGV[2]: "" for no expiry, "0" for already expired."""
    px = _px(ttl)
    return "" if px is None else str(px)


def _px(ttl: float | None) -> int | None:
    """``ttl`` seconds as a ``PX`` argument: None for no expiry, 0 for already expired."""
    if ttl is None or ttl == math.inf:
        return None
    if not ttl > 0:  # also NaN
        return 0
    ms = ttl * 1000
    if ms >= _MAX_PX:  # also keeps ceil() away from a float that overflowed to inf
        return _MAX_PX
    # Rounded up, at least 1 ms, so a key never expires before its ttl has passed.
    return max(math.ceil(ms), 1)
