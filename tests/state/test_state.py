"""The StateBackend contract, run against every backend, plus each backend's own promises."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import anyio
import pytest

import imagegen
from imagegen import MemoryState, SQLiteState, StateBackend

pytestmark = pytest.mark.anyio


class FakeTimer:
    """A clock that only moves when told to."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


Factory = Callable[[Path, FakeTimer], StateBackend]

FACTORIES: dict[str, Factory] = {
    "memory": lambda _path, timer: MemoryState(timer=timer),
    "sqlite": lambda path, timer: SQLiteState(path / "state.db", timer=timer),
}


@pytest.fixture
def timer() -> FakeTimer:
    """The fake clock every backend in a test shares."""
    return FakeTimer()


@pytest.fixture(params=list(FACTORIES))
async def backend(
    request: pytest.FixtureRequest, tmp_path: Path, timer: FakeTimer
) -> AsyncIterator[StateBackend]:
    """Each backend, fresh, closed after the test."""
    state = FACTORIES[request.param](tmp_path, timer)
    try:
        yield state
    finally:
        await state.aclose()


class TestKeyValue:
    async def test_is_a_state_backend(self, backend: StateBackend) -> None:
        """Every backend satisfies the runtime-checkable StateBackend protocol."""
        assert isinstance(backend, imagegen.StateBackend)

    async def test_absent_key_is_none(self, backend: StateBackend) -> None:
        """get of a key never set returns None."""
        assert await backend.get("nope") is None

    @pytest.mark.parametrize(
        "value",
        [b"", b"hello", bytes(range(256)), b"\x00" * 10_000],
        ids=["empty", "ascii", "all-bytes", "10k-nul"],
    )
    async def test_round_trip(self, backend: StateBackend, value: bytes) -> None:
        """Bytes come back exactly as stored."""
        await backend.set("k", value)
        assert await backend.get("k") == value

    async def test_set_replaces(self, backend: StateBackend) -> None:
        """A second set replaces the first value."""
        await backend.set("k", b"one")
        await backend.set("k", b"two")
        assert await backend.get("k") == b"two"

    async def test_delete(self, backend: StateBackend) -> None:
        """delete removes the key and leaves others alone."""
        await backend.set("k", b"v")
        await backend.set("other", b"w")
        await backend.delete("k")
        assert await backend.get("k") is None
        assert await backend.get("other") == b"w"

    async def test_delete_absent_is_fine(self, backend: StateBackend) -> None:
        """Deleting a key that does not exist raises nothing and creates nothing."""
        await backend.delete("never-there")
        assert await backend.get("never-there") is None
        assert await backend.scan("") == []


class TestExpiry:
    async def test_value_expires_after_ttl(self, backend: StateBackend, timer: FakeTimer) -> None:
        """A value set with a ttl is live before it and gone after it."""
        await backend.set("k", b"v", ttl=10)
        timer.advance(9.5)
        assert await backend.get("k") == b"v"
        timer.advance(1)
        assert await backend.get("k") is None

    async def test_no_ttl_never_expires(self, backend: StateBackend, timer: FakeTimer) -> None:
        """Without a ttl a value survives any amount of time."""
        await backend.set("k", b"v")
        timer.advance(10 * 365 * 86400)
        assert await backend.get("k") == b"v"

    async def test_set_replaces_the_ttl(self, backend: StateBackend, timer: FakeTimer) -> None:
        """Setting again without a ttl drops the old expiry."""
        await backend.set("k", b"old", ttl=5)
        await backend.set("k", b"new")
        timer.advance(100)
        assert await backend.get("k") == b"new"


class TestIncr:
    async def test_starts_at_zero(self, backend: StateBackend) -> None:
        """An absent counter counts from 0; incr returns the new value; get reads it as bytes."""
        assert await backend.incr("c") == 1
        assert await backend.incr("c") == 2
        assert await backend.get("c") == b"2"

    async def test_amount_and_negatives(self, backend: StateBackend) -> None:
        """amount may be any int, negative included."""
        assert await backend.incr("c", 5) == 5
        assert await backend.incr("c", -7) == -2
        assert await backend.incr("c", amount=0) == -2
        assert await backend.get("c") == b"-2"

    async def test_counts_on_from_a_set_integer(self, backend: StateBackend) -> None:
        """incr adds to an integer previously stored with set."""
        await backend.set("c", b"41")
        assert await backend.incr("c") == 42

    async def test_ttl_is_kept_from_creation(self, backend: StateBackend, timer: FakeTimer) -> None:
        """Bumping a counter does not extend the ttl it was created with."""
        assert await backend.incr("c", ttl=10) == 1
        timer.advance(6)
        assert await backend.incr("c", ttl=10) == 2
        timer.advance(6)
        assert await backend.get("c") is None

    async def test_expired_counter_restarts(self, backend: StateBackend, timer: FakeTimer) -> None:
        """After expiry a counter restarts from amount, with a fresh ttl."""
        await backend.incr("c", 5, ttl=10)
        timer.advance(11)
        assert await backend.incr("c", 3, ttl=10) == 3
        timer.advance(9)
        assert await backend.get("c") == b"3"
        timer.advance(2)
        assert await backend.get("c") is None

    async def test_ttl_ignored_on_existing_counter(
        self, backend: StateBackend, timer: FakeTimer
    ) -> None:
        """A counter created without a ttl does not gain one when later bumped with a ttl."""
        await backend.incr("c")
        await backend.incr("c", ttl=1)
        timer.advance(100)
        assert await backend.get("c") == b"2"

    async def test_concurrent_increments_lose_nothing(self, backend: StateBackend) -> None:
        """1,000 concurrent incr on one key each get a distinct value and end at 1000."""
        seen: list[int] = []

        async def bump() -> None:
            seen.append(await backend.incr("hits"))

        async with anyio.create_task_group() as tg:
            for _ in range(1000):
                tg.start_soon(bump)
        assert await backend.get("hits") == b"1000"
        assert sorted(seen) == list(range(1, 1001))

    async def test_non_integer_value_is_refused(self, backend: StateBackend) -> None:
        """incr on a value that is not an integer raises ValueError and changes nothing."""
        await backend.set("k", b"abc")
        with pytest.raises(ValueError, match="integer"):
            await backend.incr("k")
        assert await backend.get("k") == b"abc"


class TestSetIfAbsent:
    async def test_first_wins(self, backend: StateBackend) -> None:
        """The first call stores and returns True; the next returns False and changes nothing."""
        assert await backend.set_if_absent("k", b"first") is True
        assert await backend.set_if_absent("k", b"second") is False
        assert await backend.get("k") == b"first"

    async def test_true_again_after_expiry(self, backend: StateBackend, timer: FakeTimer) -> None:
        """Once the held key expires, set_if_absent succeeds again and stores the new value."""
        assert await backend.set_if_absent("k", b"first", ttl=10) is True
        timer.advance(5)
        assert await backend.set_if_absent("k", b"second", ttl=10) is False
        timer.advance(6)
        assert await backend.set_if_absent("k", b"third", ttl=10) is True
        assert await backend.get("k") == b"third"
        timer.advance(9)
        assert await backend.get("k") == b"third"

    async def test_true_again_after_delete(self, backend: StateBackend) -> None:
        """Deleting the key releases it."""
        await backend.set_if_absent("k", b"a")
        await backend.delete("k")
        assert await backend.set_if_absent("k", b"b") is True

    async def test_concurrent_callers_one_winner(self, backend: StateBackend) -> None:
        """Of 100 concurrent set_if_absent on one key exactly one wins."""
        results: list[bool] = []

        async def claim(n: int) -> None:
            results.append(await backend.set_if_absent("lock", str(n).encode()))

        async with anyio.create_task_group() as tg:
            for n in range(100):
                tg.start_soon(claim, n)
        assert results.count(True) == 1
        assert len(results) == 100


KEYS = [
    "a:1",
    "a:2",
    "ab",
    "b:1",
    "100%:x",
    "100a:x",
    "1000:x",
    "x_y",
    "xay",
    "x",
    "s*t",
    "sat",
    "s*",
    "k[1]",
    "k1",
    "p?q",
    "pzq",
    "back\\slash",
    "backxslash",
    "é:1",
]


class TestScan:
    @pytest.mark.parametrize(
        ("prefix", "expected"),
        [
            ("a:", ["a:1", "a:2"]),
            ("a", ["a:1", "a:2", "ab"]),
            ("100%", ["100%:x"]),
            ("x_", ["x_y"]),
            ("s*", ["s*", "s*t"]),
            ("k[", ["k[1]"]),
            ("p?", ["p?q"]),
            ("back\\", ["back\\slash"]),
            ("é", ["é:1"]),
            ("%", []),
            ("_", []),
            ("*", []),
            ("zzz", []),
        ],
    )
    async def test_prefix_is_literal(
        self, backend: StateBackend, prefix: str, expected: list[str]
    ) -> None:
        """scan returns exactly the keys starting with the literal prefix: no wildcards."""
        for key in KEYS:
            await backend.set(key, b"v")
        assert sorted(await backend.scan(prefix)) == sorted(expected)

    @pytest.mark.parametrize(
        ("prefix", "keys", "expected"),
        [
            ("ab", ["ab\U0010ffffz", "ac"], ["ab\U0010ffffz"]),
            ("ab\U0010ffff", ["ab\U0010ffffz", "ab", "ac"], ["ab\U0010ffffz"]),
            ("\U0010ffff", ["\U0010ffffa", "a"], ["\U0010ffffa"]),
            ("a\ud7ff", ["a\ud7ffx", "a\ue000"], ["a\ud7ffx"]),
        ],
    )
    async def test_prefix_at_the_end_of_unicode(
        self, backend: StateBackend, prefix: str, keys: list[str], expected: list[str]
    ) -> None:
        """Prefixes ending in the last code point, or just before the surrogates, still match."""
        for key in keys:
            await backend.set(key, b"v")
        assert sorted(await backend.scan(prefix)) == expected

    async def test_empty_prefix_lists_every_key(self, backend: StateBackend) -> None:
        """An empty prefix matches every live key."""
        for key in KEYS:
            await backend.set(key, b"v")
        assert sorted(await backend.scan("")) == sorted(KEYS)

    async def test_only_live_keys(self, backend: StateBackend, timer: FakeTimer) -> None:
        """Expired and deleted keys are not listed."""
        await backend.set("j:live", b"v")
        await backend.set("j:short", b"v", ttl=1)
        await backend.incr("j:count", ttl=1)
        await backend.set("j:gone", b"v")
        await backend.delete("j:gone")
        timer.advance(2)
        assert await backend.scan("j:") == ["j:live"]


class TestSQLiteState:
    async def test_two_instances_share_one_file(self, tmp_path: Path, timer: FakeTimer) -> None:
        """Two SQLiteState on the same file see each other's writes, counters and locks."""
        one = SQLiteState(tmp_path / "shared.db", timer=timer)
        two = SQLiteState(tmp_path / "shared.db", timer=timer)
        try:
            await one.set("k", b"from one")
            assert await two.get("k") == b"from one"
            assert await one.incr("n") == 1
            assert await two.incr("n") == 2
            assert await two.set_if_absent("lock", b"two") is True
            assert await one.set_if_absent("lock", b"one") is False
            await two.delete("k")
            assert await one.get("k") is None
            assert await one.scan("") == ["lock", "n"]
        finally:
            await one.aclose()
            await two.aclose()

    async def test_persists_after_reopen(self, tmp_path: Path, timer: FakeTimer) -> None:
        """Values, counters and expiries survive aclose and reopening the file."""
        path = tmp_path / "nested" / "dir" / "state.db"
        first = SQLiteState(path, timer=timer)
        await first.set("k", b"kept")
        await first.set("short", b"v", ttl=10)
        await first.incr("n", 7)
        await first.aclose()
        assert path.is_file()

        second = SQLiteState(path, timer=timer)
        try:
            assert await second.get("k") == b"kept"
            assert await second.get("short") == b"v"
            assert await second.incr("n") == 8
            timer.advance(11)
            assert await second.get("short") is None
        finally:
            await second.aclose()


class TestMemoryState:
    async def test_evicts_least_recently_used_when_full(self) -> None:
        """With maxsize=2 a third key evicts the least recently used one."""
        state = MemoryState(maxsize=2)
        await state.set("a", b"1")
        await state.set("b", b"2")
        assert await state.get("a") == b"1"  # a is now more recent than b
        await state.set("c", b"3")
        assert await state.get("b") is None
        assert await state.get("a") == b"1"
        assert await state.get("c") == b"3"
        assert sorted(await state.scan("")) == ["a", "c"]
