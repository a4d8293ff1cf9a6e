"""The StateBackend contract, run against every backend, plus each backend's own promises.

Redis runs against a real ``redis-server`` that a session fixture starts on a free port of
127.0.0.1 (or the server ``IMAGEGEN_REDIS_URL`` names). Without ``redis-server`` on PATH the
Redis tests skip locally, and fail when ``CI=true``, so CI never passes by skipping them.
"""

from __future__ import annotations

import math
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import anyio
import pytest
import redis

import imagegen
from imagegen import InvalidConfig, MemoryState, SQLiteState, StateBackend
from imagegen.state._redis import RedisState, _px
from redis_support import RedisServer

pytestmark = pytest.mark.anyio


class FakeTimer:
    """A clock that only moves when told to; listeners move other clocks along with it."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now
        self.listeners: list[Callable[[float], None]] = []

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
        for listener in self.listeners:
            listener(seconds)


# --- Redis: a real server, and a way to move its clock ------------------------------------


async def _within(seconds: float, check: Callable[[], Awaitable[bool]]) -> bool:
    """Whether ``check`` comes true within ``seconds`` of polling (real time)."""
    for _ in range(math.ceil(seconds / 0.01)):
        if await check():
            return True
        await anyio.sleep(0.01)
    return await check()


async def _scan_is(state: StateBackend, prefix: str, expected: list[str]) -> bool:
    return sorted(await state.scan(prefix)) == expected


# --- The contract suite's backends ---------------------------------------------------------

Factory = Callable[[Path, FakeTimer], StateBackend]

FACTORIES: dict[str, Factory] = {
    "memory": lambda _path, timer: MemoryState(timer=timer),
    "sqlite": lambda path, timer: SQLiteState(path / "state.db", timer=timer),
}


@pytest.fixture
def timer() -> FakeTimer:
    """The fake clock every backend in a test shares."""
    return FakeTimer()


@pytest.fixture(params=[*FACTORIES, "redis"])
def make_backend(
    request: pytest.FixtureRequest, tmp_path: Path, timer: FakeTimer
) -> Callable[[], StateBackend]:
    """Builds the backend under test; only the Redis one needs (and starts) a server."""
    if request.param == "redis":
        server: RedisServer = request.getfixturevalue("redis_db")
        timer.listeners.append(server.advance)
        return lambda: RedisState(server.url)
    factory = FACTORIES[request.param]
    return lambda: factory(tmp_path, timer)


@pytest.fixture
async def backend(make_backend: Callable[[], StateBackend]) -> AsyncIterator[StateBackend]:
    """Each backend, fresh, closed after the test."""
    state = make_backend()
    try:
        yield state
    finally:
        await state.aclose()


class TestKeyValue:
    """get, set and delete round-trip bytes exactly."""

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
    """A ttl is honoured on the backend's clock; no ttl means never."""

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

    @pytest.mark.parametrize("ttl", [1e300, math.inf], ids=["1e300", "inf"])
    async def test_huge_ttl_is_never(
        self, backend: StateBackend, timer: FakeTimer, ttl: float
    ) -> None:
        """A ttl too large for any clock is accepted and simply never runs out."""
        await backend.set("k", b"v", ttl=ttl)
        assert await backend.set_if_absent("lock", b"v", ttl=ttl) is True
        assert await backend.incr("c", ttl=ttl) == 1
        timer.advance(10 * 365 * 86400)
        assert await backend.get("k") == b"v"
        assert await backend.get("lock") == b"v"
        assert await backend.get("c") == b"1"


@pytest.mark.parametrize("ttl", [0, -1.5], ids=["zero", "negative"])
class TestNonPositiveTtl:
    """A ttl <= 0 means "already expired": every backend treats it alike."""

    async def test_set_leaves_nothing(self, backend: StateBackend, ttl: float) -> None:
        """set with ttl <= 0 replaces the value with one that is gone at once."""
        await backend.set("k", b"old")
        await backend.set("k", b"new", ttl=ttl)
        assert await backend.get("k") is None
        assert await backend.scan("") == []

    async def test_set_if_absent(self, backend: StateBackend, ttl: float) -> None:
        """It wins when the key is free (storing nothing) and loses to a live value."""
        assert await backend.set_if_absent("free", b"v", ttl=ttl) is True
        assert await backend.get("free") is None
        await backend.set("held", b"mine")
        assert await backend.set_if_absent("held", b"theirs", ttl=ttl) is False
        assert await backend.get("held") == b"mine"

    async def test_incr(self, backend: StateBackend, ttl: float) -> None:
        """A new counter returns amount and is gone at once; an existing one just counts."""
        assert await backend.incr("new", 5, ttl=ttl) == 5
        assert await backend.get("new") is None
        await backend.set("old", b"3")
        assert await backend.incr("old", ttl=ttl) == 4
        assert await backend.get("old") == b"4"


class TestIncr:
    """Counters: atomic, from 0, their ttl fixed when they are created."""

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

    async def test_ttl_not_given_to_an_existing_zero(
        self, backend: StateBackend, timer: FakeTimer
    ) -> None:
        """A counter that exists with value 0 and no ttl is bumped, not treated as new."""
        await backend.set("c", b"0")
        assert await backend.incr("c", ttl=10) == 1
        await backend.incr("back", 2)
        assert await backend.incr("back", -2, ttl=10) == 0
        assert await backend.incr("back", ttl=10) == 1
        timer.advance(100)
        assert await backend.get("c") == b"1"
        assert await backend.get("back") == b"1"

    async def test_zero_amount_creates_with_ttl(
        self, backend: StateBackend, timer: FakeTimer
    ) -> None:
        """incr by 0 on an absent key creates the counter at 0, with the ttl."""
        assert await backend.incr("c", 0, ttl=10) == 0
        assert await backend.get("c") == b"0"
        timer.advance(11)
        assert await backend.get("c") is None

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


class TestIncrMany:
    """incr_many: every built-in backend bumps many counters in one call."""

    async def test_bumps_each_key_by_its_amount(
        self, backend: StateBackend, timer: FakeTimer
    ) -> None:
        """New counters start from their amount with the ttl; existing ones keep theirs."""
        await backend.incr("old", 40)
        await backend.incr_many({"old": 2, "new": 5, "one": 1}, ttl=10)  # type: ignore[attr-defined]
        assert [await backend.get(k) for k in ("old", "new", "one")] == [b"42", b"5", b"1"]
        timer.advance(11)
        assert await backend.get("new") is None
        assert await backend.get("old") == b"42"  # created without a ttl, none given now

    async def test_a_non_integer_raises_and_is_left_alone(self, backend: StateBackend) -> None:
        """A counter holding text raises the same ValueError as incr and keeps its text."""
        await backend.set("text", b"abc")
        with pytest.raises(ValueError, match="not an integer"):
            await backend.incr_many({"text": 1})  # type: ignore[attr-defined]
        assert await backend.get("text") == b"abc"


class TestSetIfAbsent:
    """The atomic claim behind locks and replay protection."""

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
    """Prefix listing: literal prefixes, live keys only."""

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
    """SQLiteState's own promises: one file, shared and persistent."""

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
    """MemoryState's own promise: bounded size, least recently used out first."""

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


class TestRedisState:
    """RedisState's own promises: configuration, ownership, literal scans, the server's clock."""

    def test_needs_exactly_one_of_url_and_client(self) -> None:
        """Neither, or both, of url= and client= is an InvalidConfig naming the field."""
        with pytest.raises(InvalidConfig) as neither:
            RedisState()
        assert neither.value.field == "url"
        client = redis.Redis()
        try:
            with pytest.raises(InvalidConfig) as both:
                RedisState("redis://127.0.0.1:6379/0", client=client)
            assert both.value.field == "client"
        finally:
            client.close()

    @pytest.mark.parametrize(
        "url",
        ["", "http://127.0.0.1:6379", "redis://127.0.0.1:port", "redis://h/0?socket_timeout=x", 42],
        ids=["empty", "http", "bad-port", "bad-option", "not-a-str"],
    )
    def test_bad_url(self, url: object) -> None:
        """A URL redis-py cannot use is refused at construction, as field "url"."""
        with pytest.raises(InvalidConfig) as caught:
            RedisState(url)  # type: ignore[arg-type]
        assert caught.value.field == "url"

    def test_bad_url_message_hides_the_password(self) -> None:
        """The error for a bad URL does not repeat the URL, which may hold a password."""
        with pytest.raises(InvalidConfig) as caught:
            RedisState("redis://:hunter2@127.0.0.1:6379/0?socket_timeout=x")
        assert "hunter2" not in str(caught.value)

    @pytest.mark.parametrize("max_workers", [0, -1, True, 2.0, "4"])
    def test_bad_max_workers(self, max_workers: object) -> None:
        """max_workers must be an int >= 1 (a bool is not one)."""
        with pytest.raises(InvalidConfig) as caught:
            RedisState("redis://127.0.0.1:6379/0", max_workers=max_workers)  # type: ignore[arg-type]
        assert caught.value.field == "max_workers"

    @pytest.mark.parametrize(
        "client", ["redis://127.0.0.1:6379/0", object()], ids=["str", "object"]
    )
    def test_client_of_the_wrong_kind(self, client: object) -> None:
        """client= must be a sync redis.Redis."""
        with pytest.raises(InvalidConfig, match=r"redis\.Redis") as caught:
            RedisState(client=client)  # type: ignore[arg-type]
        assert caught.value.field == "client"

    def test_client_decoding_responses_is_refused(self) -> None:
        """A client made with decode_responses=True would turn values into str: refused."""
        client = redis.Redis(decode_responses=True)
        try:
            with pytest.raises(InvalidConfig, match="decode_responses") as caught:
                RedisState(client=client)
            assert caught.value.field == "client"
        finally:
            client.close()

    @pytest.mark.parametrize("field", ["url", "client"])
    def test_without_the_redis_package(self, monkeypatch: pytest.MonkeyPatch, field: str) -> None:
        """Without redis-py, building a RedisState says which extra to install."""
        monkeypatch.setitem(sys.modules, "redis", None)
        kwargs = {field: "redis://127.0.0.1:6379/0" if field == "url" else object()}
        with pytest.raises(InvalidConfig, match=r"imagegen-failover\[redis\]") as caught:
            RedisState(**kwargs)  # type: ignore[arg-type]
        assert caught.value.field == field

    def test_import_imagegen_does_not_import_redis(self) -> None:
        """redis is an optional extra: importing the library, even this module, leaves it out."""
        code = (
            "import sys, imagegen, imagegen.state._redis\n"
            "loaded = sorted(m for m in sys.modules if m == 'redis' or m.startswith('redis.'))\n"
            "print(loaded)\n"
        )
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
        )
        assert done.stdout.strip() == "[]"

    def test_repr_names_the_server_not_the_password(self) -> None:
        """repr shows host, port and db (or the socket path), never the URL's password."""
        state = RedisState("redis://:hunter2@127.0.0.1:6399/3")
        assert repr(state) == "RedisState(host='127.0.0.1', port=6399, db=3)"
        unix = RedisState("unix:///tmp/imagegen-redis.sock?db=2")
        assert repr(unix) == "RedisState(path='/tmp/imagegen-redis.sock', db=2)"

    @pytest.mark.parametrize(
        ("ttl", "px"),
        [
            (None, None),
            (math.inf, None),
            (0, 0),
            (-3, 0),
            (math.nan, 0),
            (1e-9, 1),
            (0.0011, 2),
            (1.2345, 1235),
            (10, 10_000),
            (1e300, 2**62),
        ],
    )
    def test_ttl_to_milliseconds(self, ttl: float | None, px: int | None) -> None:
        """Seconds become PX milliseconds rounded up (at least 1); <= 0 means expired."""
        assert _px(ttl) == px

    async def test_px_reaches_the_server(self, redis_db: RedisServer) -> None:
        """A fractional ttl arrives on the server rounded up to whole milliseconds."""
        state = RedisState(redis_db.url)
        try:
            await state.set("k", b"v", ttl=1.2345)
            assert 1000 < redis_db.client.pttl("k") <= 1235
            assert await state.set_if_absent("lock", b"v", ttl=2.0001) is True
            assert 1000 < redis_db.client.pttl("lock") <= 2001
            await state.incr("c", ttl=3)
            assert 2000 < redis_db.client.pttl("c") <= 3000
        finally:
            await state.aclose()

    async def test_real_expiry_on_the_servers_clock(self, redis_db: RedisServer) -> None:
        """With no shifting at all, keys written with a 50 ms ttl vanish on the server's clock."""
        state = RedisState(redis_db.url)
        try:
            await state.set("e:set", b"v", ttl=0.05)
            await state.incr("e:incr", ttl=0.05)
            assert await state.set_if_absent("e:lock", b"v", ttl=0.05) is True
            await state.set("e:kept", b"v")
            # Bounded: normally done after ~50 ms.
            assert await _within(2.0, lambda: _scan_is(state, "e:", ["e:kept"]))
            assert await state.get("e:set") is None
            assert await state.incr("e:incr") == 1
            assert await state.set_if_absent("e:lock", b"again") is True
        finally:
            await state.aclose()

    async def test_scan_escapes_every_glob_character(self, redis_db: RedisServer) -> None:
        """A prefix made of SCAN's glob characters matches only itself, literally."""
        keys = ["*", "?", "[", "]", "\\", "[ab]", "a", "b", "x\\*y", "x\\zy", "xy", "h[^e]llo",
                "hallo", "h[e]llo", "r[a-c]", "rb", "^!-"]  # fmt: skip
        state = RedisState(redis_db.url)
        try:
            for key in keys:
                await state.set(key, b"v")
            for prefix, expected in [
                ("*", ["*"]),
                ("?", ["?"]),
                ("[", ["[", "[ab]"]),
                ("]", ["]"]),
                ("\\", ["\\"]),
                ("[ab]", ["[ab]"]),
                ("x\\*", ["x\\*y"]),
                ("h[^e]", ["h[^e]llo"]),
                ("h[e]", ["h[e]llo"]),
                ("r[a-c]", ["r[a-c]"]),
                ("^!-", ["^!-"]),
            ]:
                assert sorted(await state.scan(prefix)) == sorted(expected), prefix
        finally:
            await state.aclose()

    async def test_scan_walks_every_cursor_page(self, redis_db: RedisServer) -> None:
        """Thousands of matches, among other keys, all come back once each."""
        redis_db.client.mset({f"p:{n}": b"v" for n in range(2500)})
        redis_db.client.mset({f"q:{n}": b"v" for n in range(500)})
        state = RedisState(redis_db.url)
        try:
            found = await state.scan("p:")
            assert len(found) == 2500
            assert set(found) == {f"p:{n}" for n in range(2500)}
        finally:
            await state.aclose()

    async def test_aclose_disconnects_its_own_pool(self, redis_db: RedisServer) -> None:
        """Built from url=, aclose closes the backend's connections; it may be called again."""
        state = RedisState(f"{redis_db.url}?client_name=imagegen-own")
        await state.set("k", b"v")
        assert redis_db.connections("imagegen-own")
        await state.aclose()
        await state.aclose()

        async def closed() -> bool:
            return not redis_db.connections("imagegen-own")

        # The server notices the closed sockets a moment later.
        assert await _within(2.0, closed)

    async def test_aclose_leaves_the_callers_client_open(self, redis_db: RedisServer) -> None:
        """Built from client=, aclose leaves the caller's connection open and usable."""
        client = redis.Redis.from_url(f"{redis_db.url}?client_name=imagegen-caller")
        try:
            state = RedisState(client=client)
            await state.set("k", b"v")
            before = client.client_id()
            await state.aclose()
            # The same server connection still serves the caller: nothing was reconnected.
            assert client.client_id() == before
            assert client.get("k") == b"v"
            assert redis_db.connections("imagegen-caller") == [before]
        finally:
            client.close()

    async def test_two_instances_share_one_server(self, redis_db: RedisServer) -> None:
        """Two RedisState on one server see each other's writes, counters and locks."""
        one, two = RedisState(redis_db.url), RedisState(redis_db.url)
        try:
            await one.set("k", b"from one")
            assert await two.get("k") == b"from one"
            assert await one.incr("n") == 1
            assert await two.incr("n") == 2
            assert await two.set_if_absent("lock", b"two") is True
            assert await one.set_if_absent("lock", b"one") is False
            await two.delete("k")
            assert await one.get("k") is None
            assert sorted(await one.scan("")) == ["lock", "n"]
        finally:
            await one.aclose()
            await two.aclose()

    async def test_a_small_pool_serves_many_tasks(self, redis_db: RedisServer) -> None:
        """With max_workers=2, 300 concurrent incr all count, over at most 2 connections."""
        state = RedisState(f"{redis_db.url}?client_name=imagegen-small", max_workers=2)
        try:
            async with anyio.create_task_group() as tg:
                for _ in range(300):
                    tg.start_soon(state.incr, "n")
            assert await state.get("n") == b"300"
            assert 1 <= len(redis_db.connections("imagegen-small")) <= 2
        finally:
            await state.aclose()

    async def test_other_redis_errors_pass_through(self, redis_db: RedisServer) -> None:
        """incr on a key of another Redis type raises redis' own error, not a ValueError."""
        redis_db.client.rpush("list", b"x")
        state = RedisState(redis_db.url)
        try:
            with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
                await state.incr("list")
        finally:
            await state.aclose()
