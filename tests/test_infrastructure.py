"""The promise under infrastructure faults: a state backend or a storage that fails or stalls.

generate() still answers by its deadline (plus the final record's grace), with the
provider's image when one was produced, and nothing but ImageGenError leaves.
"""

from __future__ import annotations

import datetime as dt
import logging
import socket
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from imagegen import (
    Event,
    GenerationCancelled,
    GenerationLost,
    ImageGenerator,
    ImageGenError,
    MemoryState,
    MemoryStorage,
    RedisState,
    Retry,
    SQLiteState,
    StorageError,
)
from imagegen._pipeline import FINAL_GRACE
from imagegen._records import LOST_AFTER
from imagegen.testing import (
    FakeClock,
    FaultyState,
    FaultyStorage,
    failing,
    hanging,
    instant,
    slow,
)

pytestmark = pytest.mark.anyio


def stalled_after_setup(clock: FakeClock) -> FaultyState:
    """A backend that answers nothing (every call waits forever)."""
    state = FaultyState(MemoryState(), clock=clock)
    state.stall_all = True
    return state


class TestStalledState:
    async def test_the_providers_image_comes_back_by_the_deadline(self, clock: FakeClock) -> None:
        """A backend that never answers costs bounded waits; the provider's image is returned."""
        gen = ImageGenerator(
            providers=[slow("a", 0.5)],
            state=stalled_after_setup(clock),
            storage=MemoryStorage(),
            timeout=2.0,
            clock=clock,
        )
        result = await gen.generate("x")
        assert (result.provider, result.is_default) == ("a", False)
        assert clock.monotonic() <= 2.0 + FINAL_GRACE

    async def test_later_generations_do_not_wait_again(self, clock: FakeClock) -> None:
        """Once the backend is seen stalled, generations skip it: the provider's time, and at
        most one bounded probe of the backend (half a second), not the deadline."""
        gen = ImageGenerator(
            providers=[slow("a", 0.5)],
            state=stalled_after_setup(clock),
            timeout=5.0,
            clock=clock,
        )
        await gen.generate("x")
        start = clock.monotonic()
        result = await gen.generate("x")
        assert result.provider == "a"
        assert clock.monotonic() - start <= 0.5 + 0.5

    async def test_health_answers_degraded_in_time(self, clock: FakeClock) -> None:
        """health() says the backend does not answer, within its bound, and raises nothing."""
        gen = ImageGenerator(
            providers=[instant("a")], state=stalled_after_setup(clock), clock=clock
        )
        report = await gen.health()
        assert report["status"] == "degraded"
        assert report["state"].startswith("error: no answer")
        assert clock.monotonic() <= 2.0 + 2.0

    async def test_reads_end_in_a_storage_error(self, clock: FakeClock) -> None:
        """record(), stats() and job() raise StorageError instead of hanging."""
        gen = ImageGenerator(
            providers=[instant("a")], state=stalled_after_setup(clock), clock=clock
        )
        for read in (lambda: gen.record("x"), gen.stats, lambda: gen.job("j")):
            with pytest.raises(StorageError):
                await read()

    async def test_an_image_in_hand_survives_a_slow_count(self, clock: FakeClock) -> None:
        """The counters stall after the image arrived: the image still wins, recorded a success."""
        state = FaultyState(MemoryState(), clock=clock, methods={"incr", "incr_many"})
        state.stall_all = True
        gen = ImageGenerator(providers=[slow("a", 0.5)], state=state, timeout=2.0, clock=clock)
        result = await gen.generate("x")
        assert result.provider == "a"
        assert [(a.provider, a.outcome) for a in result.attempts] == [("a", "success")]


class TestFailingState:
    async def test_raw_backend_errors_never_escape(self, clock: FakeClock) -> None:
        """Every backend call raising ConnectionError: two racing providers still give an image."""
        state = FaultyState(MemoryState(), clock=clock)
        state.fail_all = True
        gen = ImageGenerator(providers=[slow("a", 1.0), failing("b")], state=state, clock=clock)
        result = await gen.generate("x")
        assert result.provider == "a"

    async def test_breakers_fail_open(self, clock: FakeClock) -> None:
        """A breaker that cannot read its state lets calls through."""
        state = FaultyState(MemoryState(), clock=clock, methods={"get"})
        state.fail_all = True
        gen = ImageGenerator(providers=[instant("a")], state=state, clock=clock)
        assert await gen.breaker_for("a").allow()
        assert (await gen.generate("x")).provider == "a"

    async def test_health_names_the_drivers_error(self, clock: FakeClock) -> None:
        """health() reports the backend's own error kind, degraded."""
        state = FaultyState(MemoryState(), clock=clock)
        state.fail_all = True
        report = await ImageGenerator(providers=[instant("a")], state=state, clock=clock).health()
        assert (report["status"], report["state"]) == ("degraded", "error: ConnectionError")

    async def test_public_reads_raise_storage_errors(self, clock: FakeClock) -> None:
        """record(), stats(), job(), publish_config() and breaker handles raise StorageError."""
        state = FaultyState(MemoryState(), clock=clock)
        state.fail_all = True
        gen = ImageGenerator(providers=[instant("a")], state=state, clock=clock)
        reads = (
            lambda: gen.record("x"),
            gen.stats,
            lambda: gen.job("j"),
            gen.publish_config,
            gen.breaker_for("a").snapshot,
        )
        for read in reads:
            with pytest.raises(StorageError) as info:
                await read()
            assert isinstance(info.value.__cause__, ConnectionError)

    async def test_submit_says_storage_error(self, clock: FakeClock) -> None:
        """A job that cannot be recorded is refused with StorageError, not a driver error."""
        state = FaultyState(MemoryState(), clock=clock, methods={"set"})
        async with ImageGenerator(providers=[instant("a")], state=state, clock=clock) as gen:
            state.fail_all = True
            with pytest.raises(StorageError):
                await gen.submit("x")

    async def test_a_job_runs_when_its_running_status_cannot_be_written(
        self, clock: FakeClock
    ) -> None:
        """The job's "running" write fails; the job still runs and its result is there."""
        state = FaultyState(MemoryState(), clock=clock, methods={"set"})
        async with ImageGenerator(providers=[instant("a")], state=state, clock=clock) as gen:
            job_id = await gen.submit("x")
            state.fail_all = True
            result = await gen.wait(job_id, timeout=10)
        assert result.provider == "a"

    async def test_random_faults_keep_the_promise(self, clock: FakeClock) -> None:
        """10% failing and 5% stalling backend calls: every generation gets the provider's
        image, by its deadline plus the grace, and nothing but ImageGenError leaves."""
        state = FaultyState(
            MemoryState(), fail_rate=0.1, stall_rate=0.05, stall=None, seed=7, clock=clock
        )
        gen = ImageGenerator(
            providers=[slow("a", 0.2), slow("b", 0.3)],
            state=state,
            storage=MemoryStorage(),
            retry=Retry(attempts=1),
            timeout=2.0,
            clock=clock,
        )
        for _ in range(200):
            start = clock.monotonic()
            try:
                result = await gen.generate("x")
            except ImageGenError as exc:
                raise AssertionError(f"lost the image: {exc!r}") from exc
            assert result.provider in ("a", "b")
            assert clock.monotonic() - start <= 2.0 + FINAL_GRACE + 1e-9
        assert state.failed
        assert state.stalled


class TestSharedSettingsUnreadable:
    async def test_the_settings_in_force_stay_and_the_log_says_why(
        self, clock: FakeClock, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A backend that fails the settings read is named as such, not as bad settings."""
        state = FaultyState(MemoryState(), methods={"get"}, clock=clock)
        state.fail_all = True
        gen = ImageGenerator(
            providers=[instant("a")], state=state, timeout=7.0, config_ttl=0.0, clock=clock
        )
        with caplog.at_level(logging.WARNING, logger="imagegen"):
            result = await gen.generate("x")
        assert result.provider == "a"
        assert gen.timeout == 7.0
        assert "could not read the shared settings" in caplog.text
        assert "cannot be applied" not in caplog.text


class TestLateRecords:
    async def test_a_record_kept_back_is_written_once_the_backend_heals(
        self, clock: FakeClock
    ) -> None:
        """The backend refuses writes for ten seconds: the image comes back at once, and its
        succeeded record lands in the background once the backend takes writes again."""
        state = FaultyState(MemoryState(), methods={"set"}, clock=clock)
        async with ImageGenerator(providers=[instant("a")], state=state, clock=clock) as gen:
            state.fail_all = True
            result = await gen.generate("x")
            assert result.provider == "a"
            assert await gen.record(result.id) is None
            await clock.sleep(10.0)
            state.fail_all = False
            await clock.sleep(10.0)  # the next try comes within 8 s
            record = await gen.record(result.id)
            assert record is not None
            assert (record.status, record.key) == ("succeeded", result.key)
        assert state.failed["set"] >= 5  # tried all along, not given up after a few seconds

    async def test_closing_makes_one_last_try_without_waiting(self, clock: FakeClock) -> None:
        """aclose() does not wait out the pauses: one more try, then the record is given up
        (logged) or written."""
        state = FaultyState(MemoryState(), methods={"set"}, clock=clock)
        gen = ImageGenerator(providers=[instant("a")], state=state, clock=clock)
        async with gen:
            state.fail_all = True
            result = await gen.generate("x")
            state.fail_all = False
            closing_at = clock.monotonic()
        assert clock.monotonic() - closing_at < 1.0
        record = await gen.record(result.id)
        assert record is not None
        assert record.status == "succeeded"


class StallsOnSuccess(MemoryState):
    """Takes every write but a succeeded record, which it never answers."""

    async def set(self, key: str, value: bytes, *, ttl: float | None = None) -> None:
        if b'"succeeded"' in value:
            await anyio.sleep_forever()
        await super().set(key, value, ttl=ttl)


class TestCallerGivesUpAfterStoring:
    async def test_the_stored_image_is_taken_back(self, clock: FakeClock) -> None:
        """Cancelled while its record is written: the object goes, the record says failed."""
        storage, state = MemoryStorage(), StallsOnSuccess()
        gen = ImageGenerator(providers=[instant("a")], state=state, storage=storage, clock=clock)
        with clock.deadline_scope(clock.monotonic() + 0.1) as scope:
            await gen.generate("x")
        assert scope.cancelled_caught
        assert not storage.objects
        [key] = [k for k in await state.scan("") if ":record:" in k]
        record = await gen.record(key.rsplit(":", 1)[1])
        assert record is not None
        assert record.status == "failed"
        assert isinstance(record.error, GenerationCancelled)


class TestLateRecordsAtClose:
    async def test_closing_keeps_trying_for_a_moment(self, clock: FakeClock) -> None:
        """A backend still failing as the generator closes gets quick tries for up to 2 s:
        the record lands once it answers again, and closing does not wait longer."""
        state = FaultyState(MemoryState(), methods={"set"}, clock=clock)
        gen = ImageGenerator(providers=[instant("a")], state=state, clock=clock)

        async def heal_soon() -> None:
            await clock.sleep(0.3)
            state.fail_all = False

        async with anyio.create_task_group() as tg, gen:
            state.fail_all = True
            result = await gen.generate("x")
            tg.start_soon(heal_soon)
            closing_at = clock.monotonic()
        assert 0.3 <= clock.monotonic() - closing_at < 1.0
        record = await gen.record(result.id)
        assert record is not None
        assert record.status == "succeeded"

    async def test_one_stalled_try_at_close_does_not_shut_out_the_rest(
        self, clock: FakeClock
    ) -> None:
        """A write that stalls as the generator closes is given up on soon enough that
        the backend is not taken for down: the next quick try lands the record."""
        state = FaultyState(MemoryState(), methods={"set"}, stall=3.0, clock=clock)
        gen = ImageGenerator(providers=[instant("a")], state=state, clock=clock)

        async def stall_for_a_moment() -> None:
            state.fail_all = False
            state.stall_all = True
            await clock.sleep(0.3)
            state.stall_all = False

        async with anyio.create_task_group() as tg, gen:
            state.fail_all = True
            result = await gen.generate("x")
            tg.start_soon(stall_for_a_moment)
        assert state.stalled["set"] >= 1
        record = await gen.record(result.id)
        assert record is not None
        assert record.status == "succeeded"

    async def test_closing_gives_up_after_two_seconds(
        self, clock: FakeClock, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A backend that never comes back costs closing 2 s, and the miss is logged."""
        state = FaultyState(MemoryState(), methods={"set"}, clock=clock)
        with caplog.at_level(logging.ERROR, logger="imagegen"):
            async with ImageGenerator(providers=[instant("a")], state=state, clock=clock) as gen:
                state.fail_all = True
                result = await gen.generate("x")
                closing_at = clock.monotonic()
        assert 2.0 <= clock.monotonic() - closing_at < 2.5
        assert f"image {result.key} stored, but its record could not be written" in caplog.text


class TestLostGenerations:
    async def test_a_record_left_running_reads_failed_after_its_deadline(
        self, clock: FakeClock
    ) -> None:
        """A process that stops mid-generation leaves its record "running"; a minute past
        the deadline it reads as failed (GenerationLost), before that as running."""
        state = FaultyState(MemoryState(), clock=clock)
        started = anyio.Event()

        def crash(event: Event) -> None:
            # The running record is written: from here on nothing the process writes lands.
            if event.kind == "attempt_started":
                state.fail_all = True
                started.set()

        gen = ImageGenerator(
            providers=[hanging("a")], state=state, timeout=2.0, clock=clock, hooks=[crash]
        )
        async with anyio.create_task_group() as tg:
            tg.start_soon(gen.generate, "x")
            await started.wait()
            tg.cancel_scope.cancel()
        state.fail_all = False
        [key] = [k for k in await state.scan("") if ":record:" in k]
        generation_id = key.rsplit(":", 1)[1]
        record = await gen.record(generation_id)
        assert record is not None
        assert record.status == "running"
        assert record.deadline is not None
        assert record.deadline - record.created_at == dt.timedelta(seconds=2.0)
        clock.advance(2.0 + LOST_AFTER - 1)
        assert (await gen.record(generation_id)).status == "running"  # type: ignore[union-attr]
        clock.advance(2)
        lost = await gen.record(generation_id)
        assert lost is not None
        assert (lost.status, lost.finished_at) == ("failed", None)
        assert isinstance(lost.error, GenerationLost)


class TestStorageFaults:
    async def test_a_stalled_storage_fails_by_the_deadline(self, clock: FakeClock) -> None:
        """A storage that never answers: StorageError at the deadline plus the grace."""
        storage = FaultyStorage(MemoryStorage(), clock=clock)
        storage.stall_all = True
        gen = ImageGenerator(providers=[instant("a")], storage=storage, timeout=2.0, clock=clock)
        with pytest.raises(StorageError):
            await gen.generate("x")
        assert clock.monotonic() <= 2.0 + FINAL_GRACE

    async def test_a_failing_storage_is_a_storage_error(self, clock: FakeClock) -> None:
        """A storage raising its own errors leaves as StorageError, with the cause."""
        storage = FaultyStorage(MemoryStorage(), clock=clock, error=lambda _: OSError("disk"))
        storage.fail_all = True
        gen = ImageGenerator(providers=[instant("a")], storage=storage, clock=clock)
        with pytest.raises(StorageError) as info:
            await gen.generate("x")
        assert isinstance(info.value.__cause__, OSError)


@pytest.fixture
def locked_sqlite(tmp_path: Path) -> Iterator[tuple[Path, threading.Event]]:
    """A SQLite file another connection holds an exclusive lock on until told to let go."""
    path = tmp_path / "state.sqlite3"
    ready, release = threading.Event(), threading.Event()

    def hold() -> None:
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE IF NOT EXISTS other (x)")
        conn.execute("BEGIN EXCLUSIVE")
        ready.set()
        release.wait(30)
        conn.execute("ROLLBACK")
        conn.close()

    holder = threading.Thread(target=hold)
    holder.start()
    ready.wait(10)
    try:
        yield path, release
    finally:
        release.set()
        holder.join(30)


class TestRealBackends:
    async def test_locked_sqlite_keeps_the_deadline_and_the_image(
        self, locked_sqlite: tuple[Path, threading.Event]
    ) -> None:
        """A database write-locked by another process: the provider's image, by the deadline."""
        path, _ = locked_sqlite
        state = SQLiteState(path)
        gen = ImageGenerator(providers=[slow("a", 0.1)], state=state, timeout=1.0)
        with anyio.fail_after(8):  # a hang guard only: the promise is 1 s plus the grace
            result = await gen.generate("x")
        assert (result.provider, result.is_default) == ("a", False)
        await gen.aclose()

    async def test_redis_that_never_answers(self, anyio_backend: str) -> None:
        """A Redis server that accepts connections and never answers: image by the deadline."""
        pytest.importorskip("redis")
        server = socket.socket()
        server.bind(("127.0.0.1", 0))
        server.listen(16)
        port = server.getsockname()[1]
        try:
            state = RedisState(f"redis://127.0.0.1:{port}/0")
            gen = ImageGenerator(providers=[slow("a", 0.1)], state=state, timeout=1.0)
            with anyio.fail_after(8):  # a hang guard only
                result = await gen.generate("x")
                report = await gen.health()
            assert result.provider == "a"
            assert report["status"] == "degraded"
        finally:
            server.close()
