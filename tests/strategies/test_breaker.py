"""Circuit breakers: open, skip, half-open, close; forced states; shared state."""

from __future__ import annotations

import anyio
import pytest

from imagegen import (
    CircuitBreaker,
    CircuitOpen,
    ContentRejected,
    Fallback,
    ImageGenerator,
    ImageRequest,
    ImageResult,
    InvalidConfig,
    MemoryState,
    Provider,
    ProviderAuthError,
    ProviderContext,
    ProviderError,
    ProviderImage,
    ProviderQuotaExceeded,
    ProviderRateLimited,
    ProviderTimeout,
    ProviderUnavailable,
    Retry,
)
from imagegen.testing import EventRecorder, FakeClock, FakeProvider, failing, instant

pytestmark = pytest.mark.anyio

ONE = Retry(attempts=1)


def breaker_events(rec: EventRecorder) -> list[tuple[str, str]]:
    return [(e.data["from"], e.data["to"]) for e in rec.of("breaker_state_changed")]


class TestWhatCounts:
    @pytest.mark.parametrize(
        "error",
        [
            ProviderTimeout("t"),
            ProviderUnavailable("u", status=503),
            ProviderRateLimited("r", status=429),
            ProviderAuthError("a", status=401),
            ProviderQuotaExceeded("q", status=402),
            ProviderError("bug"),
        ],
        ids=lambda e: type(e).__name__,
    )
    def test_health_errors_count(self, error: ProviderError) -> None:
        """Timeouts, 5xx, rate limits, auth, quota and bugs count as failures."""
        assert CircuitBreaker.counts(error)

    @pytest.mark.parametrize(
        "error",
        [ContentRejected("nsfw"), ProviderError("bad", status=400), ProviderError("x", status=422)],
        ids=lambda e: type(e).__name__ + str(e.status),
    )
    def test_request_errors_do_not_count(self, error: ProviderError) -> None:
        """Bad requests and content-policy rejections say nothing about health."""
        assert not CircuitBreaker.counts(error)

    @pytest.mark.parametrize(
        ("kwargs", "field"),
        [
            ({"failure_threshold": 0}, "failure_threshold"),
            ({"window": 0}, "window"),
            ({"reset_timeout": -1}, "reset_timeout"),
            ({"half_open_max_calls": 0}, "half_open_max_calls"),
            ({"failure_rate": 1.5}, "failure_rate"),
            ({"consecutive_failures": 0}, "consecutive_failures"),
            ({"consecutive_failures": 2.5}, "consecutive_failures"),
            ({"cut_in_flight": "yes"}, "cut_in_flight"),
        ],
    )
    def test_bad_settings_are_refused(self, kwargs: dict[str, float], field: str) -> None:
        """Breaker settings out of range raise InvalidConfig naming the field."""
        with pytest.raises(InvalidConfig) as info:
            CircuitBreaker(**kwargs)  # type: ignore[arg-type]
        assert info.value.field == field


class TestLifecycle:
    async def test_opens_skips_half_opens_and_closes(self, clock: FakeClock) -> None:
        """Threshold failures open it; calls are skipped; after reset_timeout a trial closes it."""
        flaky = FakeProvider("a", errors=[ProviderUnavailable("down", status=503)] * 3)
        rec = EventRecorder()
        gen = ImageGenerator(
            providers=[flaky],
            retry=ONE,
            breaker=CircuitBreaker(failure_threshold=3, window=60.0, reset_timeout=30.0),
            hooks=[rec],
            clock=clock,
        )
        handle = gen.breaker_for("a")
        for _ in range(3):
            assert (await gen.generate("x")).is_default
        assert await handle.state() == "open"
        snap = await handle.snapshot()
        assert snap.failures == 3
        assert snap.next_trial is not None
        assert "ProviderUnavailable" in (snap.reason or "")

        calls = flaky.calls
        skipped = await gen.generate("x")
        assert skipped.is_default
        assert flaky.calls == calls
        assert skipped.attempts[0].outcome == "skipped"
        assert isinstance(skipped.attempts[0].error, CircuitOpen)

        clock.advance(30.0)
        assert await handle.state() == "half_open"
        assert (await gen.generate("x")).provider == "a"
        assert await handle.state() == "closed"
        assert breaker_events(rec) == [
            ("closed", "open"),
            ("open", "half_open"),
            ("half_open", "closed"),
        ]

    async def test_failures_outside_the_window_do_not_add_up(self, clock: FakeClock) -> None:
        """Failures spread wider than the window never reach the threshold."""
        provider = failing("a", ProviderUnavailable)
        gen = ImageGenerator(
            providers=[provider],
            retry=ONE,
            breaker=CircuitBreaker(failure_threshold=2, window=10.0),
            clock=clock,
        )
        for _ in range(4):
            await gen.generate("x")
            clock.advance(20.0)
        assert await gen.breaker_for("a").state() == "closed"

    async def test_failed_trial_reopens(self, clock: FakeClock) -> None:
        """A failing half-open trial opens the breaker again with a new trial time."""
        provider = failing("a", ProviderUnavailable)
        gen = ImageGenerator(
            providers=[provider],
            retry=ONE,
            breaker=CircuitBreaker(failure_threshold=1, reset_timeout=10.0),
            clock=clock,
        )
        await gen.generate("x")
        first = await gen.breaker_for("a").snapshot()
        clock.advance(10.0)
        await gen.generate("x")
        second = await gen.breaker_for("a").snapshot()
        assert second.state == "open"
        assert first.next_trial is not None
        assert second.next_trial is not None
        assert second.next_trial > first.next_trial
        assert "trial" in (second.reason or "")

    async def test_half_open_allows_limited_trials(self, clock: FakeClock) -> None:
        """Only half_open_max_calls calls pass while half-open."""
        gen = ImageGenerator(
            providers=[failing("a", ProviderUnavailable)],
            retry=ONE,
            breaker=CircuitBreaker(failure_threshold=1, reset_timeout=5.0, half_open_max_calls=2),
            clock=clock,
        )
        await gen.generate("x")
        clock.advance(5.0)
        handle = gen.breaker_for("a")
        assert [await handle.allow() for _ in range(3)] == [True, True, False]

    async def test_retry_after_longer_than_reset_timeout_delays_the_trial(
        self, clock: FakeClock
    ) -> None:
        """The provider's Retry-After postpones the trial when longer than reset_timeout."""
        gen = ImageGenerator(
            providers=[failing("a", ProviderRateLimited("slow", retry_after=300.0))],
            retry=ONE,
            breaker=CircuitBreaker(failure_threshold=1, reset_timeout=30.0),
            clock=clock,
        )
        await gen.generate("x")
        clock.advance(31.0)
        assert await gen.breaker_for("a").state() == "open"
        clock.advance(270.0)
        assert await gen.breaker_for("a").state() == "half_open"

    async def test_content_rejection_does_not_open(self, clock: FakeClock) -> None:
        """Content-policy rejections never open the breaker."""
        gen = ImageGenerator(
            providers=[failing("a", ContentRejected)],
            breaker=CircuitBreaker(failure_threshold=1),
            clock=clock,
        )
        for _ in range(3):
            await gen.generate("x")
        assert await gen.breaker_for("a").state() == "closed"

    async def test_failure_rate_needs_minimum_volume(self, clock: FakeClock) -> None:
        """With failure_rate set, the breaker waits for minimum_calls before opening."""
        provider = FakeProvider("a", errors=[ProviderUnavailable("x")] * 3)
        gen = ImageGenerator(
            providers=[provider],
            retry=ONE,
            breaker=CircuitBreaker(failure_threshold=3, failure_rate=0.5, minimum_calls=5),
            clock=clock,
        )
        for _ in range(3):
            await gen.generate("x")
        assert await gen.breaker_for("a").state() == "closed"  # 3 calls < 5
        provider.errors = [ProviderUnavailable("x")]
        await gen.generate("x")  # 4 failures of 4 calls: still < 5 calls
        assert await gen.breaker_for("a").state() == "closed"
        await gen.generate("x")  # a success: 5 calls, 4 failures, rate 0.8
        provider.errors = [ProviderUnavailable("x")]
        await gen.generate("x")  # 5 failures of 6 calls
        assert await gen.breaker_for("a").state() == "open"

    async def test_a_rejected_trial_proves_the_provider_is_up(self, clock: FakeClock) -> None:
        """A half-open trial that ends in a content rejection closes the breaker."""
        provider = FakeProvider("a", errors=[ProviderUnavailable("x"), ContentRejected("no")])
        gen = ImageGenerator(
            providers=[provider],
            retry=ONE,
            breaker=CircuitBreaker(failure_threshold=1, reset_timeout=5.0),
            clock=clock,
        )
        await gen.generate("x")
        clock.advance(5.0)
        await gen.generate("x")
        assert await gen.breaker_for("a").state() == "closed"


class FirstHangsThenFails(Provider):
    """Its first call never answers; every later one fails at once."""

    def __init__(self, name: str, timeout: float | None = None) -> None:
        super().__init__(name=name, timeout=timeout)
        self.calls = 0

    async def generate(self, request: ImageRequest, ctx: ProviderContext) -> ProviderImage:
        self.calls += 1
        if self.calls == 1:
            await anyio.sleep_forever()
        raise ProviderUnavailable("down", status=503)


async def waits_while_three_fail(gen: ImageGenerator, clock: FakeClock) -> ImageResult:
    """One generation that starts first (its call hangs), while three more fail fast
    a second later; the first one's result."""
    results = []

    async def first() -> None:
        results.append(await gen.generate("waits on the dead one"))

    async with anyio.create_task_group() as tg:
        tg.start_soon(first)
        await clock.sleep(1.0)
        for _ in range(3):
            await gen.generate("fails fast")
    [waited] = results
    return waited


class TestConsecutiveFailures:
    async def test_failures_in_a_row_open_it(self, clock: FakeClock) -> None:
        """consecutive_failures in a row open the breaker, however high the window's bar."""
        gen = ImageGenerator(
            providers=[failing("a", ProviderUnavailable)],
            retry=ONE,
            breaker=CircuitBreaker(failure_threshold=100, consecutive_failures=3),
            clock=clock,
        )
        for _ in range(2):
            await gen.generate("x")
        assert await gen.breaker_for("a").state() == "closed"
        await gen.generate("x")
        snapshot = await gen.breaker_for("a").snapshot()
        assert snapshot.state == "open"
        assert snapshot.reason == "3 failures in a row, last: ProviderUnavailable"

    async def test_a_success_starts_the_count_again(self, clock: FakeClock) -> None:
        """Failures with successes between them never open it by the in-a-row rule."""
        provider = FakeProvider("a")
        gen = ImageGenerator(
            providers=[provider],
            retry=ONE,
            breaker=CircuitBreaker(failure_threshold=100, consecutive_failures=3),
            clock=clock,
        )
        for _ in range(4):
            provider.errors = [ProviderUnavailable("x")] * 2
            for _ in range(3):  # two failures, then a success
                await gen.generate("x")
        assert await gen.breaker_for("a").state() == "closed"

    async def test_opening_cuts_calls_in_flight(self, clock: FakeClock) -> None:
        """A call waiting on a provider whose breaker opens meanwhile ends at once, and its
        generation moves on to the next provider instead of waiting out the timeout."""
        dead = FirstHangsThenFails("dead")
        gen = ImageGenerator(
            providers=[dead, instant("backup")],
            strategy=Fallback(),
            retry=ONE,
            breaker=CircuitBreaker(consecutive_failures=3),
            timeout=30.0,
            clock=clock,
        )
        waited = await waits_while_three_fail(gen, clock)
        assert waited.provider == "backup"
        assert waited.elapsed == pytest.approx(1.0)  # not the 27 s the provider had
        error = waited.attempts[0].error
        assert isinstance(error, ProviderUnavailable)
        assert "circuit opened" in str(error)
        assert dead.calls == 4  # the cut call was not retried, nor was it sent again

    async def test_cutting_can_be_turned_off(self, clock: FakeClock) -> None:
        """With cut_in_flight=False the waiting call runs into its own timeout."""
        gen = ImageGenerator(
            providers=[FirstHangsThenFails("dead", timeout=5.0), instant("backup")],
            strategy=Fallback(),
            retry=ONE,
            breaker=CircuitBreaker(consecutive_failures=3, cut_in_flight=False),
            timeout=30.0,
            clock=clock,
        )
        waited = await waits_while_three_fail(gen, clock)
        assert waited.provider == "backup"
        assert waited.elapsed == pytest.approx(5.0)
        assert isinstance(waited.attempts[0].error, ProviderTimeout)


class TestAllOpen:
    async def test_circuit_open_without_default(self, clock: FakeClock) -> None:
        """Every breaker open, no default image, trial too late: CircuitOpen, nothing called."""
        a = instant("a")
        gen = ImageGenerator(providers=[a], default_image=None, timeout=10.0, clock=clock)
        await gen.breaker_for("a").force_open()
        with pytest.raises(CircuitOpen) as info:
            await gen.generate("x")
        assert a.calls == 0
        assert [x.outcome for x in info.value.attempts] == ["skipped"]

    async def test_earliest_trial_is_tried_when_the_deadline_allows(self, clock: FakeClock) -> None:
        """With every breaker open, the generator waits for the earliest trial and uses it."""
        a = FakeProvider("a", errors=[ProviderUnavailable("x")])
        b = FakeProvider("b", errors=[ProviderUnavailable("x")])
        gen = ImageGenerator(
            providers=[a, b],
            retry=ONE,
            breaker=CircuitBreaker(failure_threshold=1, reset_timeout=5.0),
            timeout=30.0,
            clock=clock,
        )
        await gen.generate("x")  # both fail, both open
        clock.advance(1.0)
        start = clock.monotonic()
        result = await gen.generate("x")
        assert not result.is_default
        assert clock.monotonic() - start == pytest.approx(4.0)

    async def test_default_served_when_trial_is_too_late(self, clock: FakeClock) -> None:
        """When the earliest trial lies past the deadline, the default image comes at once."""
        gen = ImageGenerator(
            providers=[failing("a", ProviderUnavailable)],
            retry=ONE,
            breaker=CircuitBreaker(failure_threshold=1, reset_timeout=300.0),
            timeout=30.0,
            clock=clock,
        )
        await gen.generate("x")
        start = clock.monotonic()
        result = await gen.generate("x")
        assert result.is_default
        assert clock.monotonic() == start


class TestForced:
    async def test_force_open_and_close_and_reset(self, clock: FakeClock) -> None:
        """force_open skips the provider, force_close pins it closed, reset unpins."""
        provider = failing("a", ProviderUnavailable)
        rec = EventRecorder()
        gen = ImageGenerator(
            providers=[provider],
            retry=ONE,
            breaker=CircuitBreaker(failure_threshold=1),
            hooks=[rec],
            clock=clock,
        )
        handle = gen.breaker_for("a")
        await handle.force_open()
        snap = await handle.snapshot()
        assert (snap.state, snap.forced, snap.next_trial) == ("open", True, None)
        clock.advance(3600.0)
        assert await handle.state() == "open"

        await handle.force_close()
        for _ in range(3):
            await gen.generate("x")
        assert await handle.state() == "closed"
        assert provider.calls == 3

        await handle.reset()
        await gen.generate("x")
        assert await handle.state() == "open"
        assert ("open", "closed") in breaker_events(rec)

    async def test_snapshot_to_dict(self, clock: FakeClock) -> None:
        """The snapshot serialises with ISO times for dashboards."""
        gen = ImageGenerator(providers=[instant("a")], clock=clock)
        await gen.breaker_for("a").force_open("maintenance")
        data = (await gen.breaker_for("a").snapshot()).to_dict()
        assert data["state"] == "open"
        assert data["reason"] == "maintenance"
        assert data["since"].startswith("2026-01-01T00:00:00")

    def test_unknown_provider(self) -> None:
        """breaker_for an unknown name raises InvalidConfig."""
        gen = ImageGenerator(providers=[instant("a")])
        with pytest.raises(InvalidConfig):
            gen.breaker_for("nope")


class TestSharedState:
    async def test_two_generators_on_one_backend_share_breakers(self, clock: FakeClock) -> None:
        """A breaker opened by one generator is open for another on the same backend."""
        state = MemoryState()
        one = ImageGenerator(
            providers=[failing("a", ProviderUnavailable)],
            retry=ONE,
            breaker=CircuitBreaker(failure_threshold=1),
            state=state,
            clock=clock,
        )
        other_a = instant("a")
        two = ImageGenerator(providers=[other_a], state=state, clock=clock)
        await one.generate("x")
        result = await two.generate("x")
        assert result.is_default
        assert other_a.calls == 0


class TestReads:
    async def test_one_read_for_every_call_in_flight(self, clock: FakeClock) -> None:
        """When a closed breaker's trust lapses, the calls in flight at that moment make
        one state read between them, not one each."""
        reads = 0
        gate = anyio.Event()

        class SlowReads(MemoryState):
            async def get(self, key: str) -> bytes | None:
                nonlocal reads
                if key.endswith("breaker:a"):
                    reads += 1
                    await gate.wait()
                return await super().get(key)

        gen = ImageGenerator(providers=[instant("a")], state=SlowReads(), clock=clock)
        breaker = gen.breaker_for("a")
        allowed: list[bool] = []

        async def ask() -> None:
            allowed.append(await breaker.allow())

        gate.set()
        assert await breaker.allow()  # the first read; closed is trusted a second from now
        async with anyio.create_task_group() as tg:
            tg.start_soon(ask)
        assert reads == 1
        await clock.sleep(2.0)  # the trust lapsed
        gate = anyio.Event()
        async with anyio.create_task_group() as tg:
            for _ in range(50):
                tg.start_soon(ask)
            await anyio.wait_all_tasks_blocked()
            gate.set()
        assert reads == 2
        assert allowed == [True] * 51
