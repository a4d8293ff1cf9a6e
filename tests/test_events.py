"""What the generator tells its hooks: billed calls, remote cancels, hook lifecycles."""

from __future__ import annotations

import logging
from typing import Any

import anyio
import pytest

from imagegen import Event, ImageGenerator, Placeholder, ProviderUnavailable, Race, Retry
from imagegen.testing import EventRecorder, FakeClock, FakeProvider, hanging, instant, slow

pytestmark = pytest.mark.anyio


class TestBilled:
    """attempt_finished says how many tries cost money."""

    async def test_paid_success_is_billed_once(self, clock: FakeClock) -> None:
        """A paid provider's image is one billed call; elapsed is the attempt's time."""
        recorder = EventRecorder()
        gen = ImageGenerator(providers=[slow("a", delay=2.0)], clock=clock, hooks=[recorder])
        await gen.generate("a fox")
        (done,) = recorder.of("attempt_finished")
        assert done.data["billed"] == 1
        assert done.data["outcome"] == "success"
        assert done.data["elapsed"] == pytest.approx(2.0)

    async def test_free_provider_is_never_billed(self, clock: FakeClock) -> None:
        """The placeholder is free: its images are not billed calls."""
        recorder = EventRecorder()
        gen = ImageGenerator(providers=[Placeholder()], clock=clock, hooks=[recorder])
        await gen.generate("a fox", width=64, height=64)
        (done,) = recorder.of("attempt_finished")
        assert done.data["billed"] == 0

    async def test_failures_without_remote_work_are_not_billed(self, clock: FakeClock) -> None:
        """Three failed tries that created nothing bill nothing."""
        recorder = EventRecorder()
        bad = FakeProvider("bad", fail=ProviderUnavailable)
        gen = ImageGenerator(
            providers=[bad, instant("good", tier=1)],
            clock=clock,
            hooks=[recorder],
            retry=Retry(attempts=3, initial=0.1, jitter=False),
        )
        await gen.generate("a fox")
        first = recorder.of("attempt_finished")[0]
        assert first.provider == "bad"
        assert first.data["tries"] == 3
        assert first.data["billed"] == 0

    async def test_race_loser_with_remote_work_is_billed_and_cancelled(
        self, clock: FakeClock
    ) -> None:
        """A race loser that had started remote work counts as billed and is cancelled."""
        recorder = EventRecorder()
        loser = hanging("loser", handle="job")
        async with ImageGenerator(
            providers=[instant("winner"), loser],
            strategy=Race(),
            clock=clock,
            hooks=[recorder],
        ) as gen:
            await gen.generate("a fox")
        finished = {e.provider: e.data for e in recorder.of("attempt_finished")}
        assert finished["winner"]["billed"] == 1
        assert finished["loser"]["outcome"] == "cancelled"
        assert finished["loser"]["billed"] == 1
        (cancel,) = recorder.of("remote_cancelled")
        assert cancel.provider == "loser"
        assert loser.cancelled == ["job-1"]


class StuckCancel(FakeProvider):
    """Its remote work can never be cancelled: cancel() hangs."""

    async def cancel(self, handle: object, ctx: Any) -> None:
        await anyio.sleep_forever()


class TestRemoteCancelBound:
    """A remote cancel that hangs is given up after five seconds, and says so."""

    async def test_hanging_cancel_is_logged(
        self, clock: FakeClock, caplog: pytest.LogCaptureFixture
    ) -> None:
        """The winner returns at once; the stuck cancel ends at 5 s with a warning."""
        recorder = EventRecorder()
        loser = StuckCancel("stuck", hang=True, handle="job")
        with caplog.at_level(logging.WARNING, logger="imagegen"):
            async with ImageGenerator(
                providers=[instant("winner"), loser], clock=clock, hooks=[recorder]
            ) as gen:
                result = await gen.generate("a fox")
                assert clock.monotonic() == 0.0
        assert result.provider == "winner"
        assert clock.monotonic() == pytest.approx(5.0)
        assert "cancelling stuck's work 'job-1' took over 5s" in caplog.text
        assert recorder.of("remote_cancelled") == []


class LifecycleHook:
    """A hook that is an async context manager, noting when it is entered and left."""

    def __init__(self, log: list[str], *, fail_enter: bool = False) -> None:
        self.log = log
        self.fail_enter = fail_enter
        self.events: list[str] = []

    async def __aenter__(self) -> LifecycleHook:
        if self.fail_enter:
            raise RuntimeError("cannot start")
        self.log.append("enter")
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self.log.append("exit")

    def __call__(self, event: Event) -> None:
        self.events.append(event.kind)


class TestHookLifecycle:
    """Hooks that are async context managers live as long as the generator's `async with`."""

    async def test_entered_and_exited(self, clock: FakeClock) -> None:
        """Entered on `async with`, exited by aclose after the last event."""
        log: list[str] = []
        hook = LifecycleHook(log)
        async with ImageGenerator(providers=[instant()], clock=clock, hooks=[hook]) as gen:
            assert log == ["enter"]
            await gen.generate("a fox")
        assert log == ["enter", "exit"]
        assert hook.events[-1] == "generation_finished"

    async def test_plain_callables_are_not_entered(self, clock: FakeClock) -> None:
        """Ordinary callables are only called."""
        recorder = EventRecorder()
        async with ImageGenerator(providers=[instant()], clock=clock, hooks=[recorder]) as gen:
            await gen.generate("a fox")
        assert "generation_finished" in recorder.kinds()

    async def test_failed_enter_unwinds_the_others(self, clock: FakeClock) -> None:
        """If one hook cannot start, those already entered are exited and the error shows."""
        log: list[str] = []
        good = LifecycleHook(log)
        bad = LifecycleHook(log, fail_enter=True)
        gen = ImageGenerator(providers=[instant()], clock=clock, hooks=[good, bad])
        with pytest.raises(RuntimeError, match="cannot start"):
            async with gen:
                log.append("body ran")
        assert log == ["enter", "exit"]
