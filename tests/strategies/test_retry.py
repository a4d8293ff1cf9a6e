"""Retry: what is retried, how long it waits, and that it respects the deadline."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from imagegen import (
    ContentRejected,
    ImageGenerator,
    InvalidConfig,
    ProviderAuthError,
    ProviderError,
    ProviderQuotaExceeded,
    ProviderRateLimited,
    ProviderTimeout,
    ProviderUnavailable,
    Retry,
)
from imagegen.testing import EventRecorder, FakeClock, FakeProvider, failing

NEVER_RETRIED = [
    ProviderAuthError("bad key", status=401),
    ProviderQuotaExceeded("no credit", status=402),
    ContentRejected("nsfw", status=400),
    ProviderError("bad request", status=400),
    ProviderError("invalid input", status=422),
]
RETRIED = [
    ProviderTimeout("slow"),
    ProviderUnavailable("503", status=503),
    ProviderRateLimited("429", status=429),
    ProviderError("502", status=502),
]


class TestBackoff:
    @given(tries=st.integers(1, 20), draw=st.floats(0.0, 1.0))
    def test_full_jitter_stays_under_the_cap(self, tries: int, draw: float) -> None:
        """Each wait is within [0, min(maximum, initial * multiplier**(tries-1))]."""
        retry = Retry(initial=0.5, maximum=8.0, multiplier=2.0)
        delay = retry.backoff(tries, rand=lambda: draw)
        assert 0.0 <= delay <= min(8.0, 0.5 * 2.0 ** (tries - 1))

    def test_without_jitter_the_cap_is_exact(self) -> None:
        """jitter=False waits exactly the exponential cap."""
        retry = Retry(initial=1.0, maximum=5.0, multiplier=2.0, jitter=False)
        assert [retry.backoff(n) for n in (1, 2, 3, 4)] == [1.0, 2.0, 4.0, 5.0]

    def test_retry_after_wins_when_longer(self) -> None:
        """A longer Retry-After replaces the computed backoff; a shorter one does not."""
        retry = Retry(initial=1.0, jitter=False)
        assert retry.backoff(1, retry_after=12.5) == 12.5
        assert retry.backoff(3, retry_after=0.1) == 4.0

    @pytest.mark.parametrize("error", NEVER_RETRIED, ids=lambda e: type(e).__name__)
    def test_never_retries_permanent_errors(self, error: ProviderError) -> None:
        """Auth, quota, bad-request and content-policy errors are never retried."""
        assert not Retry(attempts=10).should_retry(error, 1)

    @pytest.mark.parametrize("error", RETRIED, ids=lambda e: type(e).__name__)
    def test_retries_transient_errors_up_to_attempts(self, error: ProviderError) -> None:
        """Timeouts, 429 and 5xx are retried until attempts calls were made."""
        retry = Retry(attempts=3)
        assert retry.should_retry(error, 1)
        assert retry.should_retry(error, 2)
        assert not retry.should_retry(error, 3)

    @pytest.mark.parametrize(
        ("kwargs", "field"),
        [
            ({"attempts": 0}, "attempts"),
            ({"attempts": True}, "attempts"),
            ({"initial": -1}, "initial"),
            ({"maximum": "8"}, "maximum"),
            ({"multiplier": 0.5}, "multiplier"),
        ],
    )
    def test_bad_settings_are_refused(self, kwargs: dict[str, object], field: str) -> None:
        """Retry settings out of range raise InvalidConfig naming the field."""
        with pytest.raises(InvalidConfig) as info:
            Retry(**kwargs)  # type: ignore[arg-type]
        assert info.value.field == field


@pytest.mark.anyio
class TestRetryInTheGenerator:
    @pytest.mark.parametrize("error", NEVER_RETRIED, ids=lambda e: type(e).__name__)
    async def test_permanent_errors_are_called_once(
        self, clock: FakeClock, error: ProviderError
    ) -> None:
        """A permanent error ends the provider's attempt after one call."""
        provider = failing("a", error)
        gen = ImageGenerator(providers=[provider], retry=Retry(attempts=5), clock=clock)
        result = await gen.generate("x")
        assert result.is_default
        assert provider.calls == 1
        assert result.attempts[0].tries == 1

    async def test_transient_errors_are_retried_then_succeed(self, clock: FakeClock) -> None:
        """Two 503s then a success: three calls, one success, tries recorded."""
        provider = FakeProvider(
            "a", errors=[ProviderUnavailable("503", status=503), ProviderTimeout("t")]
        )
        rec = EventRecorder()
        gen = ImageGenerator(
            providers=[provider], retry=Retry(attempts=3), hooks=[rec], clock=clock
        )
        result = await gen.generate("x")
        assert result.provider == "a"
        assert provider.calls == 3
        assert result.attempts[0].tries == 3
        assert len(rec.of("retry_scheduled")) == 2

    async def test_retry_after_is_honoured(self, clock: FakeClock) -> None:
        """A 429 with Retry-After 7 s waits 7 s before the next call."""
        provider = FakeProvider("a", errors=[ProviderRateLimited("slow down", retry_after=7.0)])
        gen = ImageGenerator(
            providers=[provider], retry=Retry(initial=0.1), timeout=60.0, clock=clock
        )
        await gen.generate("x")
        assert clock.monotonic() == pytest.approx(7.0)

    async def test_never_sleeps_past_the_deadline(self, clock: FakeClock) -> None:
        """A Retry-After beyond the deadline ends the attempt instead of sleeping."""
        provider = FakeProvider("a", errors=[ProviderRateLimited("later", retry_after=120.0)])
        gen = ImageGenerator(providers=[provider], timeout=30.0, clock=clock)
        result = await gen.generate("x")
        assert result.is_default
        assert provider.calls == 1
        assert clock.monotonic() < 1.0

    async def test_attempts_limit_calls(self, clock: FakeClock) -> None:
        """An always-failing transient provider is called exactly `attempts` times."""
        provider = failing("a", ProviderUnavailable)
        gen = ImageGenerator(providers=[provider], retry=Retry(attempts=4), clock=clock)
        await gen.generate("x")
        assert provider.calls == 4
