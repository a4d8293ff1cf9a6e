"""A real redis-server on 127.0.0.1 for the tests, started and stopped by a fixture.

Set IMAGEGEN_REDIS_URL to use an existing (empty) database instead. Without
redis-server the Redis tests skip locally and fail under CI=true.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator

import pytest
import redis

# Redis expires keys on its own clock, which a test cannot set. Moving time forward by N
# seconds is the same as taking N seconds off every key's remaining ttl, and that a script
# can do exactly and atomically: PEXPIRE with a remaining time <= 0 deletes the key, just
# as the server's own expiry would. So the contract's expiry tests run unchanged and fast
# on Redis, with the backend's real PX expiries on the server. Only the few milliseconds
# of real time a test takes also pass (the tightest margin in the suite is 500 ms).
# TestRedisState.test_real_expiry_on_the_servers_clock checks real expiry, unshifted.
_ADVANCE = """
local ms = tonumber(ARGV[1])
for _, key in ipairs(redis.call('KEYS', '*')) do
    local left = redis.call('PTTL', key)
    if left > 0 then
        if left <= ms then
            redis.call('DEL', key)
        else
            -- %d: a bare Lua number would print as 4.6e+18, which PEXPIRE refuses
            redis.call('PEXPIRE', key, string.format('%d', left - ms))
        end
    end
end
"""


class RedisServer:
    """A Redis database the tests may empty at will, and a sync client to inspect it."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.client = redis.Redis.from_url(url, socket_connect_timeout=1.0, socket_timeout=5.0)
        self._advance = self.client.register_script(_ADVANCE)

    def __repr__(self) -> str:
        kwargs = self.client.get_connection_kwargs()  # not the URL: it may hold a password
        return f"db {kwargs.get('db', 0)} at {kwargs.get('host')}:{kwargs.get('port')}"

    def advance(self, seconds: float) -> None:
        """Move the server's clock forward, as far as expiry is concerned."""
        self._advance(args=[round(seconds * 1000)])

    def connections(self, name: str) -> list[int]:
        """The ids of the server's connections whose client name is ``name``."""
        return [int(c["id"]) for c in self.client.client_list() if c.get("name") == name]


def _free_port() -> int:
    # redis-server cannot pick a free port itself: ask the OS for one and hand it over.
    # Another process may take it in between; _start_redis_server then tries again.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _answers_ping(proc: subprocess.Popen[bytes], url: str, deadline: float) -> bool:
    probe = redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5)
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                return bool(probe.ping())
            except redis.ConnectionError:
                time.sleep(0.02)
        return False
    finally:
        probe.close()


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A Redis database for the whole session: ``IMAGEGEN_REDIS_URL``'s, or our own server."""
    url = os.environ.get("IMAGEGEN_REDIS_URL")
    if url:
        server = RedisServer(url)
        # The tests empty the database between tests: refuse to wipe someone's data.
        if server.client.dbsize():
            server.client.close()
            pytest.fail(
                f"IMAGEGEN_REDIS_URL points at a database that is not empty ({server!r}); "
                "the Redis tests flush it between tests, so give them an empty one (e.g. /15)",
                pytrace=False,
            )
        try:
            yield server
        finally:
            server.client.flushdb()
            server.client.close()
        return

    exe = shutil.which("redis-server")
    if exe is None:
        reason = (
            "redis-server is not on PATH (Debian: apt-get install redis-server), and "
            "IMAGEGEN_REDIS_URL is not set"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}: CI=true, so the Redis tests must run", pytrace=False)
        pytest.skip(reason)

    workdir = tmp_path_factory.mktemp("redis")
    log = workdir / "redis.log"
    for _attempt in range(3):
        port = _free_port()
        url = f"redis://127.0.0.1:{port}/0"
        proc = subprocess.Popen(
            [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly",
             "no", "--dir", str(workdir), "--logfile", str(log)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        if _answers_ping(proc, url, time.monotonic() + 5.0):
            break
        _stop(proc)  # most likely the port was taken in between: try another
    else:
        tail = log.read_text(errors="replace")[-2000:] if log.exists() else "(no log)"
        pytest.fail(f"redis-server did not answer PING within 5 s:\n{tail}", pytrace=False)

    server = RedisServer(url)
    try:
        yield server
    finally:
        server.client.close()
        _stop(proc)


@pytest.fixture
def redis_db(redis_server: RedisServer) -> Iterator[RedisServer]:
    """The session's Redis database, empty at the start of the test and after it."""
    redis_server.client.flushdb()
    yield redis_server
    redis_server.client.flushdb()
