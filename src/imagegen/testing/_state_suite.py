"""StateBackendSuite: the StateBackend contract as pytest tests, for any backend."""

# Test code: plain asserts, which pytest rewrites for their messages (imagegen.testing
# registers this module for rewriting before it is imported).
# ruff: noqa: S101

from __future__ import annotations

import math
from collections.abc import Callable
from typing import ClassVar

import anyio
import pytest

from ..state import StateBackend
from ._state_batches import BatchChecks, SuiteTime
from ._suite import Suite

__all__ = ["StateBackendSuite"]

#: Keys for the scan checks: SQL LIKE (``%``, ``_``), glob (``*``, ``?``, ``[``) and
#: escape (``\``) characters must all be taken literally.
_SCAN_KEYS = [
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


class StateBackendSuite(BatchChecks, Suite):
    """The :class:`~imagegen.state.StateBackend` contract, as tests for your backend.

    Subclass it in a test module (the subclass's name must start with ``Test``) and give
    it a ``state`` fixture: a fresh, empty backend, closed after the test::

        import pytest
        from imagegen.testing import StateBackendSuite


        class TestMyState(StateBackendSuite):
            @pytest.fixture
            async def state(self):
                backend = MyState(...)
                yield backend
                await backend.aclose()

    Every check runs on asyncio and on trio (when installed). They cover ``get``,
    ``set`` and ``delete`` of any bytes; ttl expiry, ``ttl <= 0`` and huge ttls;
    ``incr`` (atomic under :attr:`concurrency` concurrent calls, its ttl fixed when the
    counter is created, ``ValueError`` on text); ``set_if_absent`` (one winner among
    concurrent callers); ``scan`` with literal prefixes (``%``, ``_``, ``*``, ``?``,
    ``[`` and ``\\`` are no wildcards) listing live keys only; and, when the backend has
    it (:class:`~imagegen.state.SupportsIncrMany`), ``incr_many``. Without it those
    checks are skipped, saying so.

    Expiry is checked on the backend's own clock when you give an ``advance_time``
    fixture: a function (or coroutine function) that moves that clock on by the seconds
    it is given, so hours pass in no time. Without one, ttls are short and the suite
    sleeps for real (:attr:`real_time_scale` seconds per second of the checks, about
    eight seconds per event loop)::

        class TestMyState(StateBackendSuite):
            @pytest.fixture
            def timer(self):
                return ManualTimer()                # now() you can move by hand

            @pytest.fixture
            async def state(self, timer):
                backend = MyState(timer=timer)
                yield backend
                await backend.aclose()

            @pytest.fixture
            def advance_time(self, timer):
                return timer.advance
    """

    concurrency: ClassVar[int] = 200
    """How many concurrent calls the atomicity checks make."""
    real_time_scale: ClassVar[float] = 0.25
    """Without ``advance_time``: real seconds per second of the expiry checks. Each check
    leaves half of such a second as margin: on a busy machine, raise it."""

    @pytest.fixture
    def advance_time(self) -> Callable[[float], object] | None:
        """Moves the backend's expiry clock on by some seconds; None (the default): real time."""
        return None

    @pytest.fixture
    def suite_time(self, advance_time: Callable[[float], object] | None) -> SuiteTime:
        return SuiteTime(advance_time, self.real_time_scale)

    # -- get, set, delete ---------------------------------------------------------------

    async def test_is_a_state_backend(self, state: StateBackend) -> None:
        """The backend satisfies the runtime-checkable StateBackend protocol."""
        assert isinstance(state, StateBackend)

    async def test_absent_key_is_none(self, state: StateBackend) -> None:
        """get of a key never set returns None."""
        assert await state.get("never-set") is None

    @pytest.mark.parametrize(
        "value",
        [b"", b"hello", bytes(range(256)), b"\x00" * 10_000, "é\U0010ffff".encode()],
        ids=["empty", "ascii", "all-bytes", "10k-nul", "utf8"],
    )
    async def test_bytes_round_trip(self, state: StateBackend, value: bytes) -> None:
        """Any bytes come back exactly as stored, as bytes."""
        await state.set("k", value)
        got = await state.get("k")
        assert type(got) is bytes
        assert got == value

    async def test_set_replaces(self, state: StateBackend) -> None:
        """A second set replaces the first value."""
        await state.set("k", b"one")
        await state.set("k", b"two")
        assert await state.get("k") == b"two"

    async def test_delete(self, state: StateBackend) -> None:
        """delete removes the key and leaves the others alone."""
        await state.set("k", b"v")
        await state.set("other", b"w")
        await state.delete("k")
        assert await state.get("k") is None
        assert await state.get("other") == b"w"

    async def test_delete_absent_is_fine(self, state: StateBackend) -> None:
        """Deleting a key that does not exist raises nothing and creates nothing."""
        await state.delete("never-there")
        assert await state.get("never-there") is None
        assert await state.scan("") == []

    # -- expiry -------------------------------------------------------------------------

    async def test_value_expires_after_ttl(
        self, state: StateBackend, suite_time: SuiteTime
    ) -> None:
        """A value set with a ttl is live before it runs out and gone after."""
        await state.set("k", b"v", ttl=suite_time.ttl(2))
        assert await state.get("k") == b"v"
        await suite_time.pass_(1.5)
        assert await state.get("k") == b"v"
        await suite_time.pass_(1)
        assert await state.get("k") is None

    async def test_no_ttl_never_expires(self, state: StateBackend, suite_time: SuiteTime) -> None:
        """Without a ttl a value survives any amount of time."""
        await state.set("k", b"v")
        await suite_time.pass_long()
        assert await state.get("k") == b"v"

    async def test_set_replaces_the_ttl(self, state: StateBackend, suite_time: SuiteTime) -> None:
        """Setting again without a ttl drops the old expiry."""
        await state.set("k", b"old", ttl=suite_time.ttl(1))
        await state.set("k", b"new")
        await suite_time.pass_(2)
        assert await state.get("k") == b"new"

    @pytest.mark.parametrize("ttl", [1e300, math.inf], ids=["1e300", "inf"])
    async def test_huge_ttl_is_never(
        self, state: StateBackend, suite_time: SuiteTime, ttl: float
    ) -> None:
        """A ttl too large for any clock is accepted and simply never runs out."""
        await state.set("k", b"v", ttl=ttl)
        assert await state.set_if_absent("lock", b"v", ttl=ttl) is True
        assert await state.incr("c", ttl=ttl) == 1
        await suite_time.pass_long()
        assert await state.get("k") == b"v"
        assert await state.get("lock") == b"v"
        assert await state.get("c") == b"1"

    @pytest.mark.parametrize("ttl", [0, -1.5], ids=["zero", "negative"])
    async def test_non_positive_ttl_set(self, state: StateBackend, ttl: float) -> None:
        """set with ttl <= 0 replaces the value with one that is gone at once."""
        await state.set("k", b"old")
        await state.set("k", b"new", ttl=ttl)
        assert await state.get("k") is None
        assert await state.scan("") == []

    @pytest.mark.parametrize("ttl", [0, -1.5], ids=["zero", "negative"])
    async def test_non_positive_ttl_set_if_absent(self, state: StateBackend, ttl: float) -> None:
        """With ttl <= 0 it wins a free key (storing nothing) and loses to a live value."""
        assert await state.set_if_absent("free", b"v", ttl=ttl) is True
        assert await state.get("free") is None
        await state.set("held", b"mine")
        assert await state.set_if_absent("held", b"theirs", ttl=ttl) is False
        assert await state.get("held") == b"mine"

    @pytest.mark.parametrize("ttl", [0, -1.5], ids=["zero", "negative"])
    async def test_non_positive_ttl_incr(self, state: StateBackend, ttl: float) -> None:
        """A new counter with ttl <= 0 returns amount and is gone; an existing one counts on."""
        assert await state.incr("new", 5, ttl=ttl) == 5
        assert await state.get("new") is None
        await state.set("old", b"3")
        assert await state.incr("old", ttl=ttl) == 4
        assert await state.get("old") == b"4"

    # -- incr ---------------------------------------------------------------------------

    async def test_incr_starts_at_zero(self, state: StateBackend) -> None:
        """An absent counter counts from 0; incr returns the new value; get reads it as bytes."""
        assert await state.incr("c") == 1
        assert await state.incr("c") == 2
        assert await state.get("c") == b"2"

    async def test_incr_amount_and_negatives(self, state: StateBackend) -> None:
        """amount may be any int, negative or zero included."""
        assert await state.incr("c", 5) == 5
        assert await state.incr("c", -7) == -2
        assert await state.incr("c", amount=0) == -2
        assert await state.get("c") == b"-2"

    async def test_incr_is_exact_past_2_53(self, state: StateBackend) -> None:
        """Counters are 64-bit integers: past 2**53 (where doubles round) they stay exact."""
        big = 2**53 + 1
        assert await state.incr("big", big) == big
        assert await state.get("big") == str(big).encode()
        assert await state.incr("big", 2) == big + 2

    async def test_incr_counts_on_from_a_set_integer(self, state: StateBackend) -> None:
        """incr adds to an integer stored with set."""
        await state.set("c", b"41")
        assert await state.incr("c") == 42

    async def test_incr_refuses_a_non_integer(self, state: StateBackend) -> None:
        """incr of a value that is not an integer raises ValueError and changes nothing."""
        await state.set("k", b"abc")
        with pytest.raises(ValueError, match="integer"):
            await state.incr("k")
        assert await state.get("k") == b"abc"

    async def test_incr_ttl_is_kept_from_creation(
        self, state: StateBackend, suite_time: SuiteTime
    ) -> None:
        """Bumping a counter does not extend the ttl it was created with."""
        assert await state.incr("c", ttl=suite_time.ttl(2)) == 1
        await suite_time.pass_(1.5)
        assert await state.incr("c", ttl=suite_time.ttl(2)) == 2
        await suite_time.pass_(1)
        assert await state.get("c") is None

    async def test_expired_counter_restarts(
        self, state: StateBackend, suite_time: SuiteTime
    ) -> None:
        """After expiry a counter restarts from amount, with a fresh ttl."""
        await state.incr("c", 5, ttl=suite_time.ttl(1))
        await suite_time.pass_(1.5)
        assert await state.incr("c", 3, ttl=suite_time.ttl(2)) == 3
        await suite_time.pass_(1)
        assert await state.get("c") == b"3"
        await suite_time.pass_(1.5)
        assert await state.get("c") is None

    async def test_incr_ttl_ignored_on_an_existing_counter(
        self, state: StateBackend, suite_time: SuiteTime
    ) -> None:
        """A counter created without a ttl does not gain one when bumped with a ttl."""
        await state.incr("c")
        await state.incr("c", ttl=suite_time.ttl(1))
        await suite_time.pass_(2)
        assert await state.get("c") == b"2"

    async def test_incr_ttl_not_given_to_an_existing_zero(
        self, state: StateBackend, suite_time: SuiteTime
    ) -> None:
        """A counter that holds 0 and has no ttl is bumped, not treated as new."""
        await state.set("c", b"0")
        assert await state.incr("c", ttl=suite_time.ttl(1)) == 1
        await state.incr("back", 2)
        assert await state.incr("back", -2, ttl=suite_time.ttl(1)) == 0
        assert await state.incr("back", ttl=suite_time.ttl(1)) == 1
        await suite_time.pass_(2)
        assert await state.get("c") == b"1"
        assert await state.get("back") == b"1"

    async def test_incr_by_zero_creates_with_the_ttl(
        self, state: StateBackend, suite_time: SuiteTime
    ) -> None:
        """incr by 0 of an absent key creates the counter at 0, with the ttl."""
        assert await state.incr("c", 0, ttl=suite_time.ttl(1)) == 0
        assert await state.get("c") == b"0"
        await suite_time.pass_(2)
        assert await state.get("c") is None

    async def test_concurrent_incr_loses_nothing(self, state: StateBackend) -> None:
        """Concurrent incr of one key each get a distinct value, ending at their number."""
        seen: list[int] = []

        async def bump() -> None:
            seen.append(await state.incr("hits"))

        async with anyio.create_task_group() as tg:
            for _ in range(self.concurrency):
                tg.start_soon(bump)
        assert await state.get("hits") == str(self.concurrency).encode()
        assert sorted(seen) == list(range(1, self.concurrency + 1))

    # -- set_if_absent ------------------------------------------------------------------

    async def test_set_if_absent_first_wins(self, state: StateBackend) -> None:
        """The first call stores and returns True; the next returns False and changes nothing."""
        assert await state.set_if_absent("k", b"first") is True
        assert await state.set_if_absent("k", b"second") is False
        assert await state.get("k") == b"first"

    async def test_set_if_absent_again_after_expiry(
        self, state: StateBackend, suite_time: SuiteTime
    ) -> None:
        """Once the held key expires, set_if_absent wins again and stores the new value."""
        assert await state.set_if_absent("k", b"first", ttl=suite_time.ttl(2)) is True
        await suite_time.pass_(1)
        assert await state.set_if_absent("k", b"second", ttl=suite_time.ttl(2)) is False
        await suite_time.pass_(1.5)
        assert await state.set_if_absent("k", b"third", ttl=suite_time.ttl(2)) is True
        await suite_time.pass_(1)
        assert await state.get("k") == b"third"

    async def test_set_if_absent_again_after_delete(self, state: StateBackend) -> None:
        """Deleting the key releases it."""
        assert await state.set_if_absent("k", b"a") is True
        await state.delete("k")
        assert await state.set_if_absent("k", b"b") is True
        assert await state.get("k") == b"b"

    async def test_concurrent_set_if_absent_has_one_winner(self, state: StateBackend) -> None:
        """Of many concurrent set_if_absent of one key exactly one wins, and its value stays."""
        winners: list[bytes] = []

        async def claim(n: int) -> None:
            value = str(n).encode()
            if await state.set_if_absent("lock", value):
                winners.append(value)

        async with anyio.create_task_group() as tg:
            for n in range(self.concurrency):
                tg.start_soon(claim, n)
        assert len(winners) == 1
        assert await state.get("lock") == winners[0]

    # -- scan ---------------------------------------------------------------------------

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
            ("?", []),
            ("[", []),
            ("zzz", []),
        ],
    )
    async def test_scan_prefix_is_literal(
        self, state: StateBackend, prefix: str, expected: list[str]
    ) -> None:
        """scan returns exactly the keys starting with the prefix, taken literally."""
        for key in _SCAN_KEYS:
            await state.set(key, b"v")
        assert sorted(await state.scan(prefix)) == sorted(expected)

    @pytest.mark.parametrize(
        ("prefix", "keys", "expected"),
        [
            ("ab", ["ab\U0010ffffz", "ac"], ["ab\U0010ffffz"]),
            ("ab\U0010ffff", ["ab\U0010ffffz", "ab", "ac"], ["ab\U0010ffffz"]),
            ("\U0010ffff", ["\U0010ffffa", "a"], ["\U0010ffffa"]),
            ("a\ud7ff", ["a\ud7ffx", "a\ue000"], ["a\ud7ffx"]),
        ],
        ids=["after-max", "max", "only-max", "before-surrogates"],
    )
    async def test_scan_prefix_at_the_end_of_unicode(
        self, state: StateBackend, prefix: str, keys: list[str], expected: list[str]
    ) -> None:
        """Prefixes ending in the last code point, or just below the surrogates, still match."""
        for key in keys:
            await state.set(key, b"v")
        assert sorted(await state.scan(prefix)) == expected

    async def test_scan_empty_prefix_lists_every_key(self, state: StateBackend) -> None:
        """An empty prefix lists every live key, each once."""
        for key in _SCAN_KEYS:
            await state.set(key, b"v")
        found = await state.scan("")
        assert sorted(found) == sorted(_SCAN_KEYS)

    async def test_scan_lists_only_live_keys(
        self, state: StateBackend, suite_time: SuiteTime
    ) -> None:
        """Expired and deleted keys are not listed."""
        await state.set("j:live", b"v")
        await state.set("j:short", b"v", ttl=suite_time.ttl(1))
        await state.incr("j:count", ttl=suite_time.ttl(1))
        await state.set("j:gone", b"v")
        await state.delete("j:gone")
        await suite_time.pass_(2)
        assert await state.scan("j:") == ["j:live"]
