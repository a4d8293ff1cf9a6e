"""Background jobs: submit, job, wait; shared through the state backend; ended on close."""

from __future__ import annotations

import json

import pytest

from imagegen import (
    AllProvidersFailed,
    ImageGenerator,
    InvalidConfig,
    InvalidRequest,
    Job,
    MemoryState,
)
from imagegen.testing import FakeClock, failing, hanging, slow, tiny_png

pytestmark = pytest.mark.anyio


class TestSubmit:
    async def test_submit_returns_at_once_and_wait_gets_the_image(self, clock: FakeClock) -> None:
        """submit() answers immediately with an id; wait() returns the finished image."""
        async with ImageGenerator(providers=[slow("a", 3.0)], clock=clock) as gen:
            job_id = await gen.submit("a red fox", width=64, height=64)
            assert clock.monotonic() == 0.0
            pending = await gen.job(job_id)
            assert pending is not None
            assert pending.status in ("pending", "running")
            result = await gen.wait(job_id, timeout=10)
            assert (result.provider, result.data, clock.monotonic()) == ("a", tiny_png(), 3.0)
            done = await gen.job(job_id)
            assert done is not None
            assert (done.status, done.result) == ("succeeded", result)
            record = await gen.record(result.id)
            assert record is not None
            assert record.status == "succeeded"

    async def test_bad_input_starts_nothing(self, clock: FakeClock) -> None:
        """A bad field raises InvalidRequest from submit(), before any job exists."""
        provider = slow("a", 1.0)
        async with ImageGenerator(providers=[provider], clock=clock) as gen:
            with pytest.raises(InvalidRequest):
                await gen.submit("x", width=100)
        assert provider.calls == 0

    async def test_submit_needs_async_with(self, clock: FakeClock) -> None:
        """Without async with there is no task group to run jobs in."""
        gen = ImageGenerator(providers=[slow("a", 1.0)], clock=clock)
        with pytest.raises(InvalidConfig) as info:
            await gen.submit("x")
        assert info.value.field == "submit"

    async def test_failed_job_raises_its_error(self, clock: FakeClock) -> None:
        """wait() raises the job's own error; job() carries it."""
        async with ImageGenerator(providers=[failing("a")], default_image=None, clock=clock) as gen:
            job_id = await gen.submit("x")
            with pytest.raises(AllProvidersFailed):
                await gen.wait(job_id)
            job = await gen.job(job_id)
            assert job is not None
            assert job.status == "failed"
            assert isinstance(job.error, AllProvidersFailed)


class TestLifecycle:
    async def test_close_ends_running_jobs_as_failed(self, clock: FakeClock) -> None:
        """Leaving async with cancels running jobs; they end failed, with the reason stored."""
        state = MemoryState()
        async with ImageGenerator(
            providers=[hanging("a")], state=state, timeout=600, clock=clock
        ) as gen:
            job_id = await gen.submit("x")
            await clock.sleep(1.0)
        reader = ImageGenerator(providers=[hanging("a")], state=state, clock=clock)
        job = await reader.job(job_id)
        assert job is not None
        assert job.status == "failed"
        assert "closed" in str(job.error)

    async def test_another_generator_reads_and_waits(self, clock: FakeClock) -> None:
        """A job submitted by one generator is read and awaited by another on the same backend."""
        state = MemoryState()
        other = ImageGenerator(providers=[slow("a", 1.0)], state=state, clock=clock)
        async with ImageGenerator(providers=[slow("a", 2.0)], state=state, clock=clock) as gen:
            job_id = await gen.submit("x", width=64, height=64)
            result = await other.wait(job_id, timeout=30)
        assert result.provider == "a"
        assert result.data is None  # bytes are not kept in the backend, only the result
        assert clock.monotonic() >= 2.0

    async def test_stale_running_jobs_read_as_failed(self, clock: FakeClock) -> None:
        """A job left running past its deadline by a stopped process reads as failed."""
        state = MemoryState()
        gen = ImageGenerator(providers=[slow("a", 1.0)], state=state, clock=clock)
        stuck = Job(id="j1", status="running", deadline=clock.time() - 120)
        await state.set("imagegen::job:j1", json.dumps(stuck.to_dict()).encode())
        job = await gen.job("j1")
        assert job is not None
        assert job.status == "failed"
        assert "stopped" in str(job.error)

    async def test_finished_jobs_leave_memory(self, clock: FakeClock) -> None:
        """After ten minutes a finished job is read from the backend (without its bytes)."""
        async with ImageGenerator(providers=[slow("a", 1.0)], clock=clock) as gen:
            job_id = await gen.submit("a red fox", width=64, height=64)
            await gen.wait(job_id, timeout=10)
            local = await gen.job(job_id)
            assert local is not None
            assert local.result is not None
            assert local.result.data == tiny_png()
            await clock.sleep(601)
            stored = await gen.job(job_id)
        assert stored is not None
        assert stored.status == "succeeded"
        assert stored.result is not None
        assert stored.result.data is None
        assert stored.result.id == local.result.id
        assert not gen._jobs._local
        assert not gen._jobs._done

    async def test_unknown_jobs(self, clock: FakeClock) -> None:
        """job() of an unknown id is None; wait() raises InvalidRequest naming job_id."""
        gen = ImageGenerator(providers=[slow("a", 1.0)], clock=clock)
        assert await gen.job("nope") is None
        with pytest.raises(InvalidRequest) as info:
            await gen.wait("nope")
        assert info.value.field == "job_id"

    async def test_wait_times_out(self, clock: FakeClock) -> None:
        """wait(timeout=) raises TimeoutError when the job is still running."""
        async with ImageGenerator(providers=[slow("a", 20.0)], timeout=60, clock=clock) as gen:
            job_id = await gen.submit("x")
            with pytest.raises(TimeoutError):
                await gen.wait(job_id, timeout=5)
            assert clock.monotonic() == pytest.approx(5.0)
            assert (await gen.wait(job_id)).provider == "a"

    def test_job_round_trip(self) -> None:
        """Job.to_dict/from_dict keep status, error and deadline."""
        job = Job(id="j", status="failed", error=AllProvidersFailed("x"), deadline=5.0)
        back = Job.from_dict(json.loads(json.dumps(job.to_dict())))
        assert (back.id, back.status, back.deadline) == ("j", "failed", 5.0)
        assert isinstance(back.error, AllProvidersFailed)
