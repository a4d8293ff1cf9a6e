"""MemoryState on its own dict: per-key ttl on the injected timer, the size bound, the exact
eviction order its docstring gives, lazy expiry and sweeps, and incr's semantics.

Everything runs on a timer the test moves. The number of keys held (expired ones not yet
dropped included) is read from the repr, which shows it and nothing else.
"""

from __future__ import annotations

import random
import re
from collections import OrderedDict

import pytest

from imagegen import InvalidConfig, MemoryState
from timer_support import ManualTimer

pytestmark = pytest.mark.anyio


def held(state: MemoryState) -> int:
    """How many keys the store holds, expired ones not yet dropped included."""
    found = re.fullmatch(r"MemoryState\(keys=(\d+)\)", repr(state))
    assert found is not None, repr(state)
    return int(found[1])


async def fill(state: MemoryState, *keys: str) -> None:
    for key in keys:
        await state.set(key, key.encode())


async def live(state: MemoryState, *keys: str) -> list[str]:
    """Which of ``keys`` are still there (reading them, which refreshes them)."""
    return [key for key in keys if await state.get(key) is not None]


# --- construction -----------------------------------------------------------------------------


@pytest.mark.parametrize("maxsize", [0, -1, True, 2.5, "10", None])
def test_maxsize_must_be_a_positive_int(maxsize: object) -> None:
    """A maxsize that could hold nothing, or is not an int, is refused at construction."""
    with pytest.raises(InvalidConfig) as caught:
        MemoryState(maxsize=maxsize)  # type: ignore[arg-type]
    assert caught.value.field == "maxsize"


async def test_repr_counts_keys_and_shows_no_value() -> None:
    """The repr counts keys; values (and keys) stay out of it."""
    state = MemoryState()
    assert repr(state) == "MemoryState(keys=0)"
    await state.set("secret-key", b"hunter2")
    await state.incr("counter", 41)
    assert repr(state) == "MemoryState(keys=2)"
    assert "hunter2" not in repr(state)
    assert "secret" not in repr(state)
    assert "41" not in repr(state)


# --- the size bound and the eviction order ---------------------------------------------------


async def test_size_is_bounded() -> None:
    """However many keys are written, at most maxsize are held: the last ones written."""
    state = MemoryState(maxsize=5)
    for n in range(100):
        await state.set(f"k{n}", b"v")
        await state.incr(f"c{n}")
        assert held(state) <= 5
    # Written k97, c97, k98, c98, k99, c99: the five last ones are left.
    assert sorted(await state.scan("")) == sorted(["c97", "k98", "c98", "k99", "c99"])


async def test_a_full_store_evicts_the_oldest_write() -> None:
    """Without other access, keys go in the order they were written."""
    state = MemoryState(maxsize=3)
    await fill(state, "a", "b", "c")
    await state.set("d", b"d")
    assert sorted(await state.scan("")) == ["b", "c", "d"]
    await state.set("e", b"e")
    assert sorted(await state.scan("")) == ["c", "d", "e"]


@pytest.mark.parametrize(
    "touch",
    ["get", "set", "incr", "incr_many", "set_if_absent"],
)
async def test_every_access_makes_a_key_the_most_recent(touch: str) -> None:
    """get, set, incr, incr_many and a losing set_if_absent each move the key to the end."""
    state = MemoryState(maxsize=3)
    await state.set("a", b"1")
    await fill(state, "b", "c")
    if touch == "get":
        assert await state.get("a") == b"1"
    elif touch == "set":
        await state.set("a", b"2")
    elif touch == "incr":
        assert await state.incr("a") == 2
    elif touch == "incr_many":
        await state.incr_many({"a": 1})
    else:
        assert await state.set_if_absent("a", b"other") is False
    await state.set("d", b"d")  # evicts b, the least recently used now
    assert sorted(await state.scan("")) == ["a", "c", "d"]
    await state.set("e", b"e")
    assert sorted(await state.scan("")) == ["a", "d", "e"]
    await state.set("f", b"f")
    assert sorted(await state.scan("")) == ["d", "e", "f"]


async def test_scan_and_delete_change_no_order() -> None:
    """scan reads every key without refreshing any; delete only frees a place."""
    state = MemoryState(maxsize=3)
    await fill(state, "a", "b", "c")
    assert sorted(await state.scan("a")) == ["a"]
    await state.delete("b")
    await fill(state, "d")  # room was made by the delete: nothing evicted
    assert sorted(await state.scan("")) == ["a", "c", "d"]
    await fill(state, "e")  # a is still the oldest, scan or not
    assert sorted(await state.scan("")) == ["c", "d", "e"]


async def test_a_failed_set_if_absent_and_a_missing_key_take_no_place() -> None:
    """Reading an absent key or losing set_if_absent stores nothing."""
    state = MemoryState(maxsize=2)
    await fill(state, "a", "b")
    assert await state.get("nothing") is None
    await state.delete("nothing")
    assert await state.set_if_absent("a", b"x") is False
    assert held(state) == 2
    assert sorted(await state.scan("")) == ["a", "b"]


async def test_a_full_store_evicts_the_front_even_when_it_is_expired() -> None:
    """The least recently used key goes first, expired or not; live keys are spared then."""
    timer = ManualTimer()
    state = MemoryState(maxsize=3, timer=timer)
    await state.set("old", b"v", ttl=1)
    await fill(state, "b", "c")
    timer.advance(5)
    await fill(state, "d")
    assert held(state) == 3
    assert sorted(await state.scan("")) == ["b", "c", "d"]


async def test_matches_an_lru_model() -> None:
    """Random operations, no ttls: the store holds exactly what an LRU of maxsize would."""
    rng = random.Random(18)
    state = MemoryState(maxsize=8)
    model: OrderedDict[str, bytes] = OrderedDict()

    def touch(key: str) -> bytes | None:
        if key in model:
            model.move_to_end(key)
        return model.get(key)

    def put(key: str, value: bytes) -> None:
        if key not in model and len(model) >= 8:
            model.popitem(last=False)
        model[key] = value
        model.move_to_end(key)

    for _ in range(3000):
        key = f"k{rng.randrange(14)}"
        op = rng.choice(["get", "set", "incr", "delete", "set_if_absent", "scan"])
        if op == "get":
            assert await state.get(key) == touch(key)
        elif op == "set":
            value = str(rng.randrange(100)).encode()
            await state.set(key, value)
            put(key, value)
        elif op == "incr":
            amount = rng.randrange(-5, 6)
            old = touch(key)
            new = amount if old is None else int(old) + amount
            assert await state.incr(key, amount) == new
            put(key, str(new).encode())
        elif op == "delete":
            await state.delete(key)
            model.pop(key, None)
        elif op == "set_if_absent":
            won = touch(key) is None
            assert await state.set_if_absent(key, b"7") is won
            if won:
                put(key, b"7")
        else:
            assert sorted(await state.scan("")) == sorted(model)
        assert held(state) == len(model)


# --- expiry on the timer ---------------------------------------------------------------------


async def test_a_key_lives_while_the_timer_is_before_its_expiry() -> None:
    """Live while timer() < set time + ttl; gone at that instant exactly."""
    timer = ManualTimer(1000.0)
    state = MemoryState(timer=timer)
    await state.set("k", b"v", ttl=2)
    assert await state.set_if_absent("lock", b"v", ttl=2) is True
    assert await state.incr("c", ttl=2) == 1
    timer.advance(1.5)
    assert await live(state, "k", "lock", "c") == ["k", "lock", "c"]
    timer.advance(0.5)
    assert await live(state, "k", "lock", "c") == []


async def test_each_key_has_its_own_ttl() -> None:
    """Keys expire one by one, each on its own ttl, others (without ttl) stay."""
    timer = ManualTimer()
    state = MemoryState(timer=timer)
    await state.set("one", b"v", ttl=1)
    await state.set("three", b"v", ttl=3)
    await state.incr("two", ttl=2)
    await state.set("never", b"v")
    found = []
    for _ in range(4):
        timer.advance(1)
        found.append(await live(state, "one", "two", "three", "never"))
    assert found == [
        ["two", "three", "never"],
        ["three", "never"],
        ["never"],
        ["never"],
    ]


async def test_an_expired_key_is_dropped_when_found() -> None:
    """get, set_if_absent and incr that meet an expired key drop it (and never return it)."""
    timer = ManualTimer()
    state = MemoryState(timer=timer)
    for key in ("g", "s", "i"):
        await state.set(key, b"5", ttl=1)
    timer.advance(1)
    assert held(state) == 3
    assert await state.get("g") is None
    assert held(state) == 2
    assert await state.set_if_absent("s", b"new") is True
    assert await state.get("s") == b"new"
    assert await state.incr("i", 2) == 2  # restarted, not 5 + 2
    assert held(state) == 2


async def test_scan_drops_every_expired_key() -> None:
    """scan lists only live keys and forgets the expired ones."""
    timer = ManualTimer()
    state = MemoryState(timer=timer)
    for n in range(10):
        await state.set(f"e{n}", b"v", ttl=1)
    await state.set("kept", b"v")
    timer.advance(1)
    assert await state.scan("") == ["kept"]
    assert held(state) == 1


async def test_new_keys_sweep_out_expired_ones() -> None:
    """Once as many keys have been added as the store held after its last sweep (at least
    64), the next new key sweeps every expired one out; keys replaced do not count."""
    timer = ManualTimer()
    state = MemoryState(timer=timer)
    for n in range(10):
        await state.set(f"old{n}", b"v", ttl=1)
    await state.set("kept", b"v", ttl=100)
    timer.advance(1)
    for _ in range(20):
        await state.set("kept", b"again", ttl=100)  # a replacement, not a new key
        await state.incr("kept-count")  # new once, then bumped
    assert held(state) == 12
    for n in range(51):  # 11 + 1 + 51 = 63 new keys so far: no sweep yet
        await state.set(f"new{n}", b"v")
    assert held(state) == 63
    await state.set("the-64th", b"v")
    assert held(state) == 54  # the 10 expired ones are gone
    assert sorted(await state.scan("old")) == []


async def test_sweeps_keep_expired_keys_in_proportion() -> None:
    """Churning keys with a short ttl never piles them up to maxsize (sweeps amortised)."""
    timer = ManualTimer()
    state = MemoryState(maxsize=100_000, timer=timer)
    for n in range(20_000):
        await state.set(f"k{n}", b"v", ttl=1)
        timer.advance(0.01)  # 100 keys live at any time
    assert held(state) <= 2 * 64 + 200


async def test_non_positive_and_nan_ttls_store_nothing() -> None:
    """ttl <= 0 (or NaN) writes something already expired: nothing is kept."""
    state = MemoryState(timer=ManualTimer())
    await state.set("k", b"old")
    await state.set("k", b"new", ttl=0)
    assert await state.get("k") is None
    assert await state.set_if_absent("lock", b"v", ttl=-1) is True
    assert await state.incr("c", 5, ttl=float("nan")) == 5
    await state.set("n", b"v", ttl=float("nan"))
    assert held(state) == 0


async def test_huge_ttls_never_run_out() -> None:
    """ttl=inf and ttl=1e300 keep the key for any time."""
    timer = ManualTimer()
    state = MemoryState(timer=timer)
    await state.set("inf", b"v", ttl=float("inf"))
    await state.incr("big", ttl=1e300)
    timer.advance(1e15)
    assert await live(state, "inf", "big") == ["inf", "big"]


# --- incr ------------------------------------------------------------------------------------


async def test_incr_reads_and_writes_bytes() -> None:
    """A set value is returned as given until incr counts on it; then canonical digits."""
    state = MemoryState()
    await state.set("c", b" 41\n")
    assert await state.get("c") == b" 41\n"
    assert await state.incr("c") == 42
    assert await state.get("c") == b"42"
    assert await state.incr("big", 2**70) == 2**70
    assert await state.get("big") == str(2**70).encode()
    await state.set("c", b"7")
    assert await state.incr("c", -10) == -3
    assert await state.get("c") == b"-3"


@pytest.mark.parametrize("value", [b"abc", b"1.5", b"", b"\xff"])
async def test_incr_of_a_non_integer_leaves_it(value: bytes) -> None:
    """ValueError names the key; the value stays, and so does its ttl."""
    timer = ManualTimer()
    state = MemoryState(timer=timer)
    await state.set("k", value, ttl=10)
    with pytest.raises(ValueError, match="'k' is not an integer"):
        await state.incr("k")
    with pytest.raises(ValueError, match="'k' is not an integer"):
        await state.incr_many({"k": 1})
    assert await state.get("k") == value
    timer.advance(10)
    assert await state.get("k") is None


async def test_incr_keeps_the_ttl_it_was_created_with() -> None:
    """The ttl applies at creation; bumps (incr or incr_many) keep it, set replaces it."""
    timer = ManualTimer()
    state = MemoryState(timer=timer)
    await state.incr_many({"a": 1, "b": 2}, ttl=5)
    timer.advance(4)
    await state.incr_many({"a": 1, "b": 1}, ttl=100)
    assert await state.incr("a", ttl=100) == 3
    timer.advance(1)
    assert await live(state, "a", "b") == []
    await state.incr("c", ttl=5)
    await state.set("c", b"10")  # no ttl now
    timer.advance(50)
    assert await state.incr("c") == 11


async def test_incr_many_reads_the_timer_once() -> None:
    """The counters of one incr_many are all created at the same instant."""
    reads = 0

    def timer() -> float:
        nonlocal reads
        reads += 1
        return 100.0 + reads  # moves on every read

    state = MemoryState(timer=timer)
    await state.incr_many({"a": 1, "b": 1, "c": 1}, ttl=1)
    assert reads == 1
    # Read at 102: expiry 102 for all three, so all three are gone together.
    assert await state.scan("") == []
