"""imagegen.testing.StateBackendSuite, run against every built-in state backend.

Each backend runs the whole suite on asyncio and trio: MemoryState and SQLiteState on a
timer the test moves, RedisState against a real redis-server (its keys' remaining ttls
shifted to move time, see redis_support), and MemoryState once more on real time, as a
user without a movable clock runs it. A deliberately broken backend shows that the suite
fails where it should.
"""

from __future__ import annotations

import textwrap
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from imagegen import MemoryState, SQLiteState
from imagegen.state import RedisState
from imagegen.testing import StateBackendSuite
from redis_support import RedisServer
from timer_support import ManualTimer

pytest_plugins = ["pytester"]


class OnTimer(StateBackendSuite):
    """The suite with a ManualTimer each test shares with its backend."""

    @pytest.fixture
    def timer(self) -> ManualTimer:
        """The backend's clock."""
        return ManualTimer()

    @pytest.fixture
    def advance_time(self, timer: ManualTimer) -> Callable[[float], object]:
        """Moving time is moving the timer."""
        return timer.advance


class TestMemoryState(OnTimer):
    """MemoryState on a timer the test moves."""

    @pytest.fixture
    def state(self, timer: ManualTimer) -> MemoryState:
        """A fresh MemoryState."""
        return MemoryState(timer=timer)


class TestMemoryStateOnRealTime(StateBackendSuite):
    """MemoryState on its real clock: the suite sleeps through short ttls."""

    real_time_scale = 0.15

    @pytest.fixture
    def state(self) -> MemoryState:
        """A fresh MemoryState on time.monotonic."""
        return MemoryState()


class TestSQLiteState(OnTimer):
    """SQLiteState in a new file, on a timer the test moves."""

    @pytest.fixture
    async def state(self, tmp_path: Path, timer: ManualTimer) -> AsyncIterator[SQLiteState]:
        """A fresh SQLiteState, closed after the test."""
        backend = SQLiteState(tmp_path / "state.db", timer=timer)
        yield backend
        await backend.aclose()


class TestRedisState(StateBackendSuite):
    """RedisState on a real, emptied redis-server."""

    @pytest.fixture
    async def state(self, redis_db: RedisServer) -> AsyncIterator[RedisState]:
        """A RedisState on the test's empty database, closed after the test."""
        backend = RedisState(redis_db.url)
        yield backend
        await backend.aclose()

    @pytest.fixture
    def advance_time(self, redis_db: RedisServer) -> Callable[[float], object]:
        """The server's expiries, moved on (it cannot be told the time)."""
        return redis_db.advance


BROKEN = '''
import anyio.lowlevel
import pytest

from imagegen import MemoryState
from imagegen.testing import StateBackendSuite
from timer_support import ManualTimer


class Broken(MemoryState):
    """Loses concurrent counts, globs in scan, forgets ttls and shares set_if_absent."""

    async def incr(self, key, amount=1, *, ttl=None):
        value = int(await self.get(key) or b"0") + amount
        await anyio.lowlevel.checkpoint()  # another task reads the same value meanwhile
        await self.set(key, str(value).encode())
        return value

    async def set(self, key, value, *, ttl=None):
        await super().set(key, value)

    async def scan(self, prefix):
        import fnmatch

        return [k for k in await super().scan("") if fnmatch.fnmatchcase(k, prefix + "*")]

    async def set_if_absent(self, key, value, *, ttl=None):
        if await self.get(key) is not None:
            return False
        await anyio.lowlevel.checkpoint()
        await self.set(key, value)
        return True


class Timer:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def advance(self, seconds):
        self.now += seconds


class TestBroken(StateBackendSuite):
    @pytest.fixture
    def timer(self):
        return Timer()

    @pytest.fixture
    def state(self, timer):
        return Broken(timer=timer)

    @pytest.fixture
    def advance_time(self, timer):
        return timer.advance


class Unbatched(MemoryState):
    incr_many = None  # no batch increments: the suite skips their checks


class TestUnbatched(StateBackendSuite):
    @pytest.fixture
    def state(self):
        return Unbatched()

    @pytest.fixture
    async def advance_time(self):
        # A coroutine function will do too.
        async def advance(seconds):
            for _ in range(3):
                await anyio.lowlevel.checkpoint()

        return advance
'''


def failures(reports: list[pytest.TestReport], cls: str) -> set[str]:
    """The names of the tests of class ``cls`` that failed (on either event loop)."""
    return {
        r.nodeid.split("::")[-1].split("[")[0]
        for r in reports
        if r.failed and f"::{cls}::" in r.nodeid
    }


def test_the_suite_catches_a_broken_backend(pytester: pytest.Pytester) -> None:
    """Lost increments, glob scans, dropped ttls and racy claims each fail their checks.

    A backend without incr_many has those checks skipped, saying so; with a clock that
    never moves, exactly the checks that wait for an expiry fail.
    """
    pytester.makepyfile(test_broken=textwrap.dedent(BROKEN))
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-q", "-rs")
    reports = result.reprec.getreports("pytest_runtest_logreport")  # type: ignore[attr-defined]
    broken = failures(reports, "TestBroken")
    assert {
        "test_concurrent_incr_loses_nothing",
        "test_concurrent_set_if_absent_has_one_winner",
        "test_scan_prefix_is_literal",
        "test_value_expires_after_ttl",
        "test_incr_ttl_is_kept_from_creation",
        "test_scan_lists_only_live_keys",
        "test_non_positive_ttl_set",
    } <= broken
    # What the broken backend does right still passes.
    assert "test_bytes_round_trip" not in broken
    assert "test_incr_starts_at_zero" not in broken

    assert failures(reports, "TestUnbatched") == {
        "test_value_expires_after_ttl",
        "test_incr_ttl_is_kept_from_creation",
        "test_expired_counter_restarts",
        "test_incr_by_zero_creates_with_the_ttl",
        "test_set_if_absent_again_after_expiry",
        "test_scan_lists_only_live_keys",
    }
    skipped = {r.nodeid.split("::")[-1].split("[")[0] for r in reports if r.skipped}
    assert skipped == {
        "test_incr_many_bumps_each_key",
        "test_incr_many_of_nothing",
        "test_incr_many_refuses_a_non_integer",
        "test_concurrent_incr_many_loses_nothing",
        "test_write_batch_sets_and_counts",
        "test_write_batch_replaces_a_value",
        "test_write_batch_refuses_a_non_integer",
        "test_concurrent_write_batches_lose_nothing",
        "test_write_batch_once_counts_once",
        "test_concurrent_batches_with_one_once_key_count_once",
    }
    result.stdout.fnmatch_lines(["*Unbatched has no incr_many (it is optional)*"])
    result.stdout.fnmatch_lines(["*Unbatched's write_batch is not used*"])
