"""The public test helpers in imagegen.testing: FakeClock, FakeProvider, EventRecorder."""

from __future__ import annotations

import importlib
import io
import math
import subprocess
import sys
import time
from collections.abc import Callable

import anyio
import anyio.lowlevel
import pytest
from PIL import Image

import imagegen.testing
from imagegen import (
    Clock,
    Event,
    ImageGenerator,
    ImageRequest,
    Provider,
    ProviderContext,
    ProviderError,
    ProviderRateLimited,
    ProviderTimeout,
    ProviderUnavailable,
)
from imagegen.testing import (
    EventRecorder,
    FakeClock,
    FakeProvider,
    failing,
    hanging,
    instant,
    slow,
    tiny_png,
)

REQUEST = ImageRequest(prompt="a red fox", width=64, height=128, seed=3)


def _ctx(clock: FakeClock, handles: list[object] | None = None) -> ProviderContext:
    return ProviderContext(
        deadline=math.inf, clock=clock, on_started=None if handles is None else handles.append
    )


class TestFakeClockBasics:
    def test_start_values(self) -> None:
        """A new clock reads 0 and the 2026-01-01 epoch; both are configurable."""
        assert FakeClock().monotonic() == 0.0
        assert FakeClock().time() == 1_767_225_600.0
        clock = FakeClock(10.0, epoch=100.0)
        assert (clock.monotonic(), clock.time()) == (10.0, 100.0)

    def test_advance_moves_both_readings(self) -> None:
        """advance() moves monotonic() and time() by the same amount."""
        clock = FakeClock(epoch=1000.0)
        clock.advance(2.5)
        clock.advance(0.5)
        assert (clock.monotonic(), clock.time()) == (3.0, 1003.0)

    def test_is_a_clock(self) -> None:
        """FakeClock satisfies the Clock protocol and shows its time in repr."""
        clock = FakeClock(4.0)
        assert isinstance(clock, Clock)
        assert repr(clock) == "FakeClock(monotonic=4.0)"


@pytest.mark.anyio
class TestFakeClockManual:
    async def test_advance_wakes_sleepers_in_order(self) -> None:
        """Each advance wakes exactly the sleepers whose time has come, earliest first."""
        clock = FakeClock()
        woken: list[float] = []

        async def sleeper(seconds: float) -> None:
            await clock.sleep(seconds)
            woken.append(seconds)

        async with anyio.create_task_group() as tg:
            for seconds in (3.0, 1.0, 2.0):
                tg.start_soon(sleeper, seconds)
            await anyio.wait_all_tasks_blocked()
            assert woken == []
            clock.advance(0.5)
            await anyio.wait_all_tasks_blocked()
            assert woken == []
            for expected in ([1.0], [1.0, 2.0], [1.0, 2.0, 3.0]):
                clock.advance(1.0)
                await anyio.wait_all_tasks_blocked()
                assert woken == expected
        assert clock.monotonic() == 3.5

    async def test_advance_fires_deadline_scope(self) -> None:
        """A deadline scope is cancelled when advance() reaches its deadline, not before."""
        clock = FakeClock()
        scopes: list[anyio.CancelScope] = []

        async def wait() -> None:
            with clock.deadline_scope(5.0) as scope:
                scopes.append(scope)
                await anyio.sleep_forever()

        async with anyio.create_task_group() as tg:
            tg.start_soon(wait)
            await anyio.wait_all_tasks_blocked()
            clock.advance(4.9)
            await anyio.wait_all_tasks_blocked()
            assert not scopes[0].cancel_called
            clock.advance(0.1)
        assert scopes[0].cancelled_caught

    async def test_exited_deadline_scope_does_not_fire(self) -> None:
        """A deadline scope left before its deadline is not cancelled later."""
        clock = FakeClock()
        with clock.deadline_scope(1.0) as scope:
            await anyio.lowlevel.checkpoint()
        clock.advance(2.0)
        assert not scope.cancel_called

    @pytest.mark.parametrize("deadline", [-1.0, 0.0])
    async def test_past_deadline_is_cancelled_at_once(self, deadline: float) -> None:
        """A deadline at or before now cancels the scope at its first checkpoint."""
        clock = FakeClock()
        reached = False
        with clock.deadline_scope(deadline) as scope:
            assert scope.cancel_called
            await anyio.lowlevel.checkpoint()
            reached = True
        assert scope.cancelled_caught
        assert not reached

    @pytest.mark.parametrize("seconds", [0.0, -1.0])
    async def test_sleep_zero_returns_at_once(self, seconds: float) -> None:
        """sleep(0) (or less) returns without anyone advancing the clock."""
        clock = FakeClock()
        with anyio.move_on_after(5) as guard:
            await clock.sleep(seconds)
        assert not guard.cancelled_caught
        assert clock.monotonic() == 0.0

    async def test_sleep_zero_is_a_checkpoint(self) -> None:
        """sleep(0) still lets a pending cancellation in."""
        clock = FakeClock()
        with anyio.CancelScope() as scope:
            scope.cancel()
            await clock.sleep(0)
        assert scope.cancelled_caught


@pytest.mark.anyio
class TestFakeClockAutojump:
    async def test_long_sleep_takes_no_real_time(self) -> None:
        """Inside `async with`, an hour's sleep ends at virtual 3600 with no real waiting."""
        started = time.perf_counter()
        async with FakeClock() as clock:
            await clock.sleep(3600)
            assert clock.monotonic() == 3600.0
        assert time.perf_counter() - started < 5.0

    async def test_concurrent_sleepers_wake_at_their_times(self, clock: FakeClock) -> None:
        """Sleepers of 2 and 1 seconds wake in order, each at its own virtual time."""
        woken: list[tuple[str, float]] = []

        async def sleeper(name: str, seconds: float) -> None:
            await clock.sleep(seconds)
            woken.append((name, clock.monotonic()))

        async with anyio.create_task_group() as tg:
            tg.start_soon(sleeper, "two", 2.0)
            tg.start_soon(sleeper, "one", 1.0)
        assert woken == [("one", 1.0), ("two", 2.0)]

    async def test_deadline_scope_fires(self, clock: FakeClock) -> None:
        """A task blocked forever is cancelled when virtual time reaches its deadline."""
        with clock.deadline_scope(30.0) as scope:
            await anyio.sleep_forever()
        assert scope.cancelled_caught
        assert clock.monotonic() == 30.0

    async def test_time_stands_still_without_sleepers(self, clock: FakeClock) -> None:
        """With nothing scheduled time does not move; a later sleep still gets its jump."""
        await anyio.wait_all_tasks_blocked()
        assert clock.monotonic() == 0.0
        await clock.sleep(5)
        assert clock.monotonic() == 5.0

    async def test_drives_a_generator(self, clock: FakeClock) -> None:
        """ImageGenerator on a FakeClock: the slow provider wins after its virtual delay."""
        gen = ImageGenerator(providers=[hanging("a"), slow("b", 2.0)], clock=clock)
        result = await gen.generate("a red fox")
        assert result.provider == "b"
        assert clock.monotonic() == 2.0


@pytest.mark.anyio
class TestFakeProvider:
    async def test_counts_calls_and_returns_tiny_png(self, clock: FakeClock) -> None:
        """Each call is counted and answered with tiny_png() at the requested size and seed."""
        provider = FakeProvider("f")
        for _ in range(2):
            image = await provider.generate(REQUEST, _ctx(clock))
            assert image.data == tiny_png()
            assert (image.width, image.height, image.seed) == (64, 128, 3)
        assert (provider.calls, provider.completed) == (2, 2)
        assert provider.requests == [REQUEST, REQUEST]
        assert clock.monotonic() == 0.0

    async def test_custom_image(self, clock: FakeClock) -> None:
        """image= replaces the bytes returned."""
        png = tiny_png(1, 2, 3)
        image = await FakeProvider(image=png).generate(REQUEST, _ctx(clock))
        assert image.data == png

    async def test_errors_in_order_then_success(self, clock: FakeClock) -> None:
        """errors= are raised one per call, classes instantiated with the provider name."""
        limited = ProviderRateLimited("slow down", provider="f", retry_after=2.0)
        provider = FakeProvider("f", errors=[ProviderTimeout, limited])
        with pytest.raises(ProviderTimeout) as first:
            await provider.generate(REQUEST, _ctx(clock))
        assert first.value.provider == "f"
        assert "f" in str(first.value)
        with pytest.raises(ProviderRateLimited) as second:
            await provider.generate(REQUEST, _ctx(clock))
        assert second.value is limited
        await provider.generate(REQUEST, _ctx(clock))
        assert (provider.calls, provider.completed) == (3, 1)

    async def test_fail_always(self, clock: FakeClock) -> None:
        """fail= is raised on every call, after any errors= are used up."""
        provider = FakeProvider("f", errors=[ProviderTimeout], fail=ProviderUnavailable)
        with pytest.raises(ProviderTimeout):
            await provider.generate(REQUEST, _ctx(clock))
        for _ in range(3):
            with pytest.raises(ProviderUnavailable) as info:
                await provider.generate(REQUEST, _ctx(clock))
            assert info.value.provider == "f"
        assert (provider.calls, provider.completed) == (4, 0)

    async def test_handle_is_reported(self, clock: FakeClock) -> None:
        """handle= reports remote work f"{handle}-{n}" via ctx.started on every call."""
        handles: list[object] = []
        provider = FakeProvider("f", handle="h")
        ctx = _ctx(clock, handles)
        await provider.generate(REQUEST, ctx)
        assert ctx.handle == "h-1"
        await provider.generate(REQUEST, _ctx(clock, handles))
        assert handles == ["h-1", "h-2"]

    async def test_cancel_is_remembered(self, clock: FakeClock) -> None:
        """cancel() records the handle it was given."""
        provider = FakeProvider("f")
        await provider.cancel("h-1", _ctx(clock))
        assert provider.cancelled == ["h-1"]

    async def test_delay_takes_virtual_time(self, clock: FakeClock) -> None:
        """delay= makes a call last that many virtual seconds."""
        await FakeProvider(delay=2.5).generate(REQUEST, _ctx(clock))
        assert clock.monotonic() == 2.5

    async def test_hang_until_cancelled(self, clock: FakeClock) -> None:
        """hang=True never returns; only cancellation ends the call."""
        provider = FakeProvider("f", hang=True, handle="h")
        handles: list[object] = []
        with clock.deadline_scope(100.0) as scope:
            await provider.generate(REQUEST, _ctx(clock, handles))
        assert scope.cancelled_caught
        assert clock.monotonic() == 100.0
        assert (provider.calls, provider.completed) == (1, 0)
        assert handles == ["h-1"]

    def test_settings(self) -> None:
        """name, tier and timeout are the Provider's."""
        provider = FakeProvider("f", tier=2, timeout=4.0)
        assert isinstance(provider, Provider)
        assert (provider.name, provider.tier, provider.timeout) == ("f", 2, 4.0)


class TestFactories:
    @pytest.mark.parametrize(
        ("factory", "name", "delay", "fail", "hang"),
        [
            (instant, "instant", 0.0, None, False),
            (slow, "slow", 5.0, None, False),
            (failing, "failing", 0.0, ProviderError, False),
            (hanging, "hanging", 0.0, None, True),
        ],
    )
    def test_defaults(
        self,
        factory: Callable[[], FakeProvider],
        name: str,
        delay: float,
        fail: object,
        hang: bool,
    ) -> None:
        """Each factory builds a FakeProvider with its documented default behaviour."""
        provider = factory()
        assert isinstance(provider, FakeProvider)
        assert (provider.name, provider.delay, provider.fail, provider.hang) == (
            name,
            delay,
            fail,
            hang,
        )

    def test_arguments_are_passed_on(self) -> None:
        """Names, delays, errors and keyword arguments reach the FakeProvider."""
        assert slow("s", 1.5).delay == 1.5
        assert failing("x", ProviderTimeout).fail is ProviderTimeout
        provider = instant("a", tier=1, handle="h")
        assert (provider.name, provider.tier, provider.handle) == ("a", 1, "h")


class TestTinyPng:
    @pytest.mark.parametrize(("args", "rgb"), [((), (200, 80, 40)), ((0, 128, 255), (0, 128, 255))])
    def test_decodes_to_8x8(self, args: tuple[int, ...], rgb: tuple[int, int, int]) -> None:
        """tiny_png() is a valid 8x8 PNG of one colour (default 200, 80, 40)."""
        with Image.open(io.BytesIO(tiny_png(*args))) as image:
            assert image.format == "PNG"
            assert image.size == (8, 8)
            colours = image.convert("RGB").getcolors()
        assert colours == [(64, rgb)]

    def test_colours_differ(self) -> None:
        """Different colours give different bytes."""
        assert tiny_png(1, 2, 3) != tiny_png(3, 2, 1)


class TestEventRecorder:
    def test_collects(self) -> None:
        """The recorder keeps events in order; kinds() lists kinds and of() filters by kind."""
        recorder = EventRecorder()
        events = [
            Event(kind="attempt_started", provider="a"),
            Event(kind="attempt_finished", provider="a"),
            Event(kind="attempt_started", provider="b"),
        ]
        for event in events:
            recorder(event)
        assert recorder.events == events
        assert recorder.kinds() == ["attempt_started", "attempt_finished", "attempt_started"]
        assert recorder.of("attempt_started") == [events[0], events[2]]
        assert recorder.of("generation_finished") == []

    @pytest.mark.anyio
    async def test_as_a_hook(self, clock: FakeClock) -> None:
        """As a generator hook it sees one generation's events from start to finish."""
        recorder = EventRecorder()
        gen = ImageGenerator(providers=[instant("a")], hooks=[recorder], clock=clock)
        result = await gen.generate("x")
        assert recorder.kinds() == [
            "generation_started",
            "attempt_started",
            "attempt_finished",
            "generation_finished",
        ]
        assert {e.generation_id for e in recorder.events} == {result.id}
        assert recorder.of("attempt_finished")[0].data["outcome"] == "success"


class TestPackage:
    """imagegen.testing is a package whose suites load on first use, with pytest."""

    def test_fakes_work_without_pytest(self) -> None:
        """With pytest unimportable, the fakes import and run; a suite says it needs pytest."""
        code = (
            "import sys\n"
            "sys.modules['pytest'] = None\n"
            "import anyio\n"
            "from imagegen import ImageGenerator\n"
            "from imagegen.testing import ErrorSpec, EventRecorder, FakeClock, instant\n"
            "async def main():\n"
            "    async with FakeClock() as clock:\n"
            "        gen = ImageGenerator(providers=[instant('a')], clock=clock)\n"
            "        print((await gen.generate('x')).provider)\n"
            "anyio.run(main)\n"
            "try:\n"
            "    from imagegen.testing import StorageSuite\n"
            "except ImportError as exc:\n"
            "    print('ImportError', exc.name)\n"
        )
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
        )
        assert done.stdout.split("\n")[:2] == ["a", "ImportError pytest"]

    def test_suites_load_on_first_use(self) -> None:
        """The suites are listed by dir() and __all__, and come from their own modules."""
        for name in ("ProviderSuite", "StateBackendSuite", "StorageSuite"):
            assert name in dir(imagegen.testing)
            assert name in imagegen.testing.__all__
            suite = getattr(imagegen.testing, name)
            assert suite.__module__.startswith("imagegen.testing._")
            assert suite.__name__ == name

    def test_a_loaded_suite_module_is_reused(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """With its module already imported, a suite is looked up again (no rewrite warning)."""
        module = importlib.import_module("imagegen.testing._storage_suite")
        monkeypatch.delitem(vars(imagegen.testing), "StorageSuite", raising=False)
        assert imagegen.testing.StorageSuite is module.StorageSuite

    def test_unknown_name(self) -> None:
        """An unknown attribute is an AttributeError naming it."""
        with pytest.raises(AttributeError, match="NoSuchSuite"):
            imagegen.testing.NoSuchSuite  # noqa: B018 - the lookup is the test
