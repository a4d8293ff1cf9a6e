"""A timeout given for one call (generate, submit, the HTTP API, the CLI) is that call's
deadline, whatever the settings in force say, shared ones included."""

from __future__ import annotations

import math

import httpx
import pytest

from imagegen import (
    AllProvidersFailed,
    ImageGenerator,
    InvalidConfig,
    InvalidRequest,
    MemoryState,
    ProviderTimeout,
)
from imagegen.server import create_app
from imagegen.testing import FakeClock, FaultyState, hanging, instant

pytestmark = pytest.mark.anyio


async def test_a_call_timeout_wins_over_shared_settings(clock: FakeClock) -> None:
    """Another generator published timeout=60 through the backend; this call asked for 4 s
    and gets its answer (the default image) at 4 s."""
    state = MemoryState()
    other = ImageGenerator(providers=[hanging("a")], state=state, clock=clock, config_ttl=0.0)
    other.configure(timeout=60.0)
    await other.generate("x", timeout=0.5)  # publishes the shared timeout
    gen = ImageGenerator(providers=[hanging("a")], state=state, clock=clock, config_ttl=0.0)
    start = clock.monotonic()
    result = await gen.generate("x", timeout=4.0)
    assert result.is_default
    assert clock.monotonic() - start <= 4.0
    assert clock.monotonic() - start >= 3.0  # the providers had most of the 4 s
    assert gen.timeout == 60.0  # the shared setting is in force for calls without one


async def test_without_one_the_settings_apply(clock: FakeClock) -> None:
    """No per-call timeout: the generator's own."""
    gen = ImageGenerator(providers=[hanging("a")], timeout=3.0, clock=clock)
    await gen.generate("x")
    assert clock.monotonic() <= 3.0
    assert clock.monotonic() >= 2.0


async def test_a_job_gets_its_own_deadline(clock: FakeClock) -> None:
    """submit(timeout=...) is the job's deadline too."""
    async with ImageGenerator(providers=[hanging("a")], timeout=30.0, clock=clock) as gen:
        job_id = await gen.submit("x", timeout=2.0)
        result = await gen.wait(job_id, timeout=10.0)
    assert result.is_default
    assert clock.monotonic() <= 2.0


@pytest.mark.parametrize("bad", [0, -1.0, math.nan, math.inf, 10**400, True, "5"])
async def test_bad_call_timeouts_are_refused_before_anything_runs(
    clock: FakeClock, bad: object
) -> None:
    """InvalidRequest naming "timeout"; the provider is never called."""
    provider = instant("a")
    gen = ImageGenerator(providers=[provider], clock=clock)
    with pytest.raises(InvalidRequest) as info:
        await gen.generate("x", timeout=bad)  # type: ignore[arg-type]
    assert info.value.field == "timeout"
    assert provider.calls == 0


def test_a_timeout_too_large_for_a_float_is_refused_in_settings() -> None:
    """10**400 seconds is not a deadline (the arithmetic would overflow)."""
    with pytest.raises(InvalidConfig) as info:
        ImageGenerator(providers=[instant("a")], timeout=10**400)  # type: ignore[arg-type]
    assert info.value.field == "timeout"


async def test_an_experiment_key_with_a_lone_surrogate_is_refused(clock: FakeClock) -> None:
    """No encoder takes a lone surrogate: refused up front, naming the field."""
    gen = ImageGenerator(providers=[instant("a")], clock=clock)
    with pytest.raises(InvalidRequest) as info:
        await gen.generate("x", experiment_key="user-\ud800")
    assert info.value.field == "experiment_key"


class TestHTTP:
    async def test_callers_may_shorten_the_deadline_not_lengthen_it(self, clock: FakeClock) -> None:
        """A body's timeout up to the server's is used; above it, a 422 naming the field."""
        gen = ImageGenerator(providers=[hanging("a")], timeout=10.0, clock=clock)
        app = create_app(gen)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            too_long = await http.post("/images/generate", json={"prompt": "x", "timeout": 60})
            start = clock.monotonic()
            short = await http.post("/images/generate", json={"prompt": "x", "timeout": 2})
        assert too_long.status_code == 422
        assert [e["field"] for e in too_long.json()["errors"]] == ["timeout"]
        assert short.status_code == 200, short.text
        assert short.json()["is_default"] is True
        assert clock.monotonic() - start <= 2.0


class TestTooShortADeadline:
    """A deadline that runs out before any provider is called says so (not "none enabled")."""

    @staticmethod
    def slow_state(clock: FakeClock) -> FaultyState:
        """Every write takes half a second: the running record outlasts a 0.2 s deadline."""
        return FaultyState(MemoryState(), methods={"set"}, stall_rate=1.0, stall=0.5, clock=clock)

    async def test_the_error_names_the_deadline(self, clock: FakeClock) -> None:
        gen = ImageGenerator(
            providers=[instant("a"), instant("b", tier=1)],
            state=self.slow_state(clock),
            default_image=None,
            clock=clock,
        )
        with pytest.raises(AllProvidersFailed) as info:
            await gen.generate("x", timeout=0.2)
        assert "deadline ran out before any provider could be called" in str(info.value)
        assert [(a.provider, a.outcome) for a in info.value.attempts] == [
            ("a", "skipped"),
            ("b", "skipped"),
        ]
        assert all(isinstance(a.error, ProviderTimeout) for a in info.value.attempts)

    async def test_the_default_image_lists_them_too(self, clock: FakeClock) -> None:
        gen = ImageGenerator(providers=[instant("a")], state=self.slow_state(clock), clock=clock)
        result = await gen.generate("x", timeout=0.2)
        assert result.is_default
        assert [(a.provider, a.outcome) for a in result.attempts] == [("a", "skipped")]

    async def test_no_provider_enabled_still_says_so(self, clock: FakeClock) -> None:
        gen = ImageGenerator(providers=[instant("a")], default_image=None, clock=clock)
        gen.configure(enabled={"a": False})
        with pytest.raises(AllProvidersFailed, match="none enabled"):
            await gen.generate("x")
