"""The generator's less travelled paths: odd providers, failing parts, hotlinks."""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import runpy
import sys
from collections.abc import Mapping

import httpx
import pytest

from imagegen import (
    DEFAULT,
    AllProvidersFailed,
    CircuitBreaker,
    ImageGenerator,
    ImageRequest,
    InvalidRequest,
    MemoryState,
    MemoryStorage,
    Placeholder,
    Provider,
    ProviderContext,
    ProviderError,
    ProviderImage,
    ProviderUnavailable,
    Race,
    Retry,
    StorageError,
    StoredObject,
)
from imagegen.testing import FakeClock, FakeProvider, failing, hanging, instant, slow

pytestmark = pytest.mark.anyio


class Picky(Provider):
    """Refuses every request with the library's own InvalidRequest."""

    name = "picky"

    async def generate(self, request: ImageRequest, ctx: ProviderContext) -> ProviderImage:
        raise InvalidRequest("prompt too long for this model", field="prompt")


class WrongType(Provider):
    name = "wrongtype"

    async def generate(self, request: ImageRequest, ctx: ProviderContext) -> ProviderImage:
        return b"\x89PNG not wrapped"  # type: ignore[return-value]


class Stock(Provider):
    name = "stock"

    async def generate(self, request: ImageRequest, ctx: ProviderContext) -> ProviderImage:
        return ProviderImage(
            url="https://images.example/photo-1?w=512",
            hotlink=True,
            attribution="Photo by Jane Doe",
            width=request.width,
            height=request.height,
        )


class BadCancel(FakeProvider):
    async def cancel(self, handle: object, ctx: ProviderContext) -> None:
        raise RuntimeError("cancel endpoint down")


class RefusingStorage(MemoryStorage):
    async def put(
        self, key: str, data: bytes, *, content_type: str, metadata: Mapping[str, str]
    ) -> StoredObject:
        raise StorageError("bucket refused the write")


class NoCounters(MemoryState):
    async def incr(self, key: str, amount: int = 1, *, ttl: float | None = None) -> int:
        if ":stats:" in key:
            raise ConnectionError("stats shard down")
        return await super().incr(key, amount, ttl=ttl)


class Batched(MemoryState):
    """Counts incr_many calls and the keys plain incr sees."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[list[str]] = []
        self.single: list[str] = []

    async def incr(self, key: str, amount: int = 1, *, ttl: float | None = None) -> int:
        self.single.append(key)
        return await super().incr(key, amount, ttl=ttl)

    async def incr_many(self, amounts: Mapping[str, int], *, ttl: float | None = None) -> None:
        self.batches.append(list(amounts))
        await super().incr_many(amounts, ttl=ttl)


class Watched(MemoryState):
    """Wraps incr only: its incr_many is MemoryState's, which would bypass this."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[str] = []

    async def incr(self, key: str, amount: int = 1, *, ttl: float | None = None) -> int:
        self.seen.append(key)
        return await super().incr(key, amount, ttl=ttl)


class Unreachable(MemoryState):
    async def get(self, key: str) -> bytes | None:
        if key.endswith(":health"):
            raise ConnectionError("no route")
        return await super().get(key)


class NoFinalRecord(MemoryState):
    async def set(self, key: str, value: bytes, *, ttl: float | None = None) -> None:
        if b'"succeeded"' in value:
            raise ConnectionError("backend gone")
        await super().set(key, value, ttl=ttl)


class TestOddProviders:
    async def test_provider_raising_invalid_request(self, clock: FakeClock) -> None:
        """A provider's own InvalidRequest fails its attempt as itself: not retried, not counted."""
        gen = ImageGenerator(
            providers=[Picky(), instant("b", tier=1)],
            breaker=CircuitBreaker(failure_threshold=1),
            clock=clock,
        )
        result = await gen.generate("x")
        assert result.provider == "b"
        picky = result.attempts[0]
        assert isinstance(picky.error, InvalidRequest)
        assert picky.tries == 1
        assert await gen.breaker_for("picky").state() == "closed"
        [row] = await gen.stats(provider="picky")
        assert row.failures_by_kind == {"InvalidRequest": 1}

    async def test_provider_returning_the_wrong_type(
        self, clock: FakeClock, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A generate() that returns something else is a bug: a ProviderError, and logged."""
        gen = ImageGenerator(providers=[WrongType()], clock=clock)
        with caplog.at_level(logging.ERROR, logger="imagegen"):
            result = await gen.generate("x")
        assert result.is_default
        # The error names the exception type only: a bug's message could hold a secret.
        assert "TypeError" in str(result.attempts[0].error)
        assert "not a ProviderImage" in caplog.text

    async def test_hotlinked_output_is_not_stored(self, clock: FakeClock) -> None:
        """A hotlink result keeps the provider's URL and credit; storage stays empty."""
        storage = MemoryStorage()
        gen = ImageGenerator(providers=[Stock()], storage=storage, clock=clock)
        result = await gen.generate("x", width=512, height=512)
        assert result.url == "https://images.example/photo-1?w=512"
        assert (result.key, result.data, result.size) == (None, None, 0)
        assert result.attribution == "Photo by Jane Doe"
        assert storage.objects == {}
        record = await gen.record(result.id)
        assert record is not None
        assert record.url == result.url

    async def test_failing_remote_cancel_is_logged(
        self, clock: FakeClock, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A cancel() that raises is logged and does not disturb the winner."""
        loser = BadCancel("loser", hang=True, handle="h")
        gen = ImageGenerator(providers=[loser, slow("winner", 1.0)], clock=clock)
        with caplog.at_level(logging.WARNING, logger="imagegen"):
            result = await gen.generate("x")
        assert result.provider == "winner"
        assert "cancelling loser" in caplog.text


class TestBillableWork:
    async def test_failure_after_started_is_not_retried_and_cancelled(
        self, clock: FakeClock
    ) -> None:
        """Once remote work exists, a failure cancels it and is never retried (no double bill)."""
        provider = FakeProvider("a", handle="pred", errors=[ProviderUnavailable("poll failed")])
        gen = ImageGenerator(providers=[provider], retry=Retry(attempts=3), clock=clock)
        result = await gen.generate("x")
        assert result.is_default
        assert provider.calls == 1
        assert provider.cancelled == ["pred-1"]
        error = result.attempts[0].error
        assert isinstance(error, ProviderUnavailable)
        assert not error.retryable

    async def test_timeout_after_started_cancels_remote_work(self, clock: FakeClock) -> None:
        """A call cut off by its own timeout cancels the work it started."""
        provider = FakeProvider("a", handle="pred", delay=10.0, timeout=2.0)
        gen = ImageGenerator(providers=[provider], retry=Retry(attempts=3), clock=clock)
        await gen.generate("x")
        assert provider.cancelled == ["pred-1"]
        assert provider.calls == 1


class SlowCancel(FakeProvider):
    """Its remote cancel takes three virtual seconds."""

    async def cancel(self, handle: object, ctx: ProviderContext) -> None:
        await ctx.clock.sleep(3.0)
        await super().cancel(handle, ctx)


class RemainingAtCancel(FakeProvider):
    """Remembers how much time its cancel was given."""

    remaining: float | None = None

    async def cancel(self, handle: object, ctx: ProviderContext) -> None:
        self.remaining = ctx.remaining()
        await super().cancel(handle, ctx)


class TestBackgroundCancels:
    async def test_cancel_gets_a_fresh_deadline(self, clock: FakeClock) -> None:
        """A cancel after a timeout is not handed the expired deadline of the attempt."""
        provider = RemainingAtCancel("a", handle="job", delay=10.0, timeout=2.0)
        gen = ImageGenerator(providers=[provider], retry=Retry(attempts=1), clock=clock)
        await gen.generate("x")
        assert provider.cancelled == ["job-1"]
        assert provider.remaining == pytest.approx(5.0)

    async def test_winner_does_not_wait_for_losers_cancels(self, clock: FakeClock) -> None:
        """Inside async with, losers are cancelled in the background; the winner returns first."""
        loser = SlowCancel("loser", hang=True, handle="job")
        async with ImageGenerator(providers=[loser, slow("winner", 1.0)], clock=clock) as gen:
            result = await gen.generate("x")
            assert result.provider == "winner"
            assert clock.monotonic() == 1.0
            assert loser.cancelled == []
        assert loser.cancelled == ["job-1"]  # aclose waited for the cancel
        assert clock.monotonic() == 4.0

    async def test_without_async_with_cancels_are_awaited(self, clock: FakeClock) -> None:
        """Without async with there is no background group: the cancel is awaited inline."""
        loser = SlowCancel("loser", hang=True, handle="job")
        gen = ImageGenerator(providers=[loser, slow("winner", 1.0)], clock=clock)
        await gen.generate("x")
        assert loser.cancelled == ["job-1"]
        assert clock.monotonic() == 4.0


class PointsInward(Provider):
    """Returns an output URL that points where it must not."""

    name = "inward"

    def __init__(self, url: str) -> None:
        super().__init__()
        self.url = url

    async def generate(self, request: ImageRequest, ctx: ProviderContext) -> ProviderImage:
        return ProviderImage(url=self.url)


class TestOutputUrls:
    @pytest.mark.parametrize(
        "url",
        [
            "https://127.0.0.1/x.png",
            "https://169.254.169.254/latest/meta-data/",
            "file:///etc/passwd",
            "http://93.184.215.14/x.png",
        ],
    )
    async def test_ssrf_attempts_fail_the_attempt(self, clock: FakeClock, url: str) -> None:
        """A provider's output URL aimed inward is refused before any request; next provider."""
        sent: list[httpx.Request] = []

        def handler(request: httpx.Request) -> httpx.Response:
            sent.append(request)
            return httpx.Response(200)

        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
            gen = ImageGenerator(
                providers=[PointsInward(url), instant("backup", tier=1)], http=http, clock=clock
            )
            result = await gen.generate("x")
        assert result.provider == "backup"
        error = result.attempts[0].error
        assert isinstance(error, ProviderError)
        assert not error.retryable
        assert sent == []


class TestRetryMeetsBreaker:
    async def test_breaker_opening_stops_retries(self, clock: FakeClock) -> None:
        """Once the provider's breaker opens, its remaining retries are not made."""
        provider = failing("a", ProviderUnavailable)
        gen = ImageGenerator(
            providers=[provider],
            retry=Retry(attempts=5, initial=0.1),
            breaker=CircuitBreaker(failure_threshold=1),
            clock=clock,
        )
        await gen.generate("x")
        assert provider.calls == 1

    async def test_cancelled_during_backoff_is_not_a_cancelled_call(self, clock: FakeClock) -> None:
        """A provider waiting to retry when the race is won counts no cancelled call."""
        gen = ImageGenerator(
            providers=[
                FakeProvider("a", errors=[ProviderUnavailable("x", retry_after=5.0)]),
                slow("b", 1.0),
            ],
            strategy=Race(),
            clock=clock,
        )
        result = await gen.generate("x")
        assert result.provider == "b"
        rows = {row.provider: row for row in await gen.stats()}
        assert (rows["a"].requests, rows["a"].failures, rows["a"].cancelled) == (1, 1, 0)
        assert {a.provider: a.outcome for a in result.attempts}["a"] == "cancelled"

    async def test_trial_taken_by_someone_else(self, clock: FakeClock) -> None:
        """If the awaited trial slot is gone when it comes, the default image is served."""
        gen = ImageGenerator(
            providers=[failing("a", ProviderUnavailable)],
            retry=Retry(attempts=1),
            breaker=CircuitBreaker(failure_threshold=1, reset_timeout=5.0),
            clock=clock,
        )
        await gen.generate("x")
        breaker = gen.breaker_for("a")

        async def never() -> bool:
            return False

        breaker.allow = never  # type: ignore[method-assign]
        start = clock.monotonic()
        result = await gen.generate("x")
        assert result.is_default
        assert clock.monotonic() - start == pytest.approx(5.0)


class FlakyStorage(MemoryStorage):
    """Fails the first ``failures`` puts."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures
        self.puts = 0

    async def put(
        self, key: str, data: bytes, *, content_type: str, metadata: Mapping[str, str]
    ) -> StoredObject:
        self.puts += 1
        if self.puts <= self.failures:
            raise ConnectionError("bucket unreachable")
        return await super().put(key, data, content_type=content_type, metadata=metadata)


class ContentAddressed(MemoryStorage):
    """Stores under the bytes' digest, as deduplicating storages do."""

    async def put(
        self, key: str, data: bytes, *, content_type: str, metadata: Mapping[str, str]
    ) -> StoredObject:
        return await super().put(
            f"sha256/{hashlib.sha256(data).hexdigest()}.png",
            data,
            content_type=content_type,
            metadata=metadata,
        )


class TestStorageRetries:
    async def test_content_addressed_objects_survive_a_failed_record(
        self, clock: FakeClock
    ) -> None:
        """When the record fails, a content-addressed object (maybe shared) stays, returned."""
        storage = ContentAddressed()
        gen = ImageGenerator(
            providers=[instant("a")], storage=storage, state=NoFinalRecord(), clock=clock
        )
        result = await gen.generate("x")
        assert list(storage.objects) == [result.key]

    async def test_failed_uploads_are_retried(self, clock: FakeClock) -> None:
        """Uploads that fail are retried per Retry; the image lands and its record with it."""
        storage = FlakyStorage(failures=2)
        gen = ImageGenerator(
            providers=[instant("a")], storage=storage, retry=Retry(attempts=3), clock=clock
        )
        result = await gen.generate("x")
        assert storage.puts == 3
        assert result.key in storage.objects
        record = await gen.record(result.id)
        assert record is not None
        assert record.key == result.key

    async def test_retries_give_up_with_a_storage_error(self, clock: FakeClock) -> None:
        """When every try fails, StorageError names the cause and nothing points at the key."""
        storage = FlakyStorage(failures=10)
        gen = ImageGenerator(
            providers=[instant("a")], storage=storage, retry=Retry(attempts=2), clock=clock
        )
        with pytest.raises(StorageError, match="ConnectionError") as info:
            await gen.generate("x")
        assert storage.puts == 2
        assert isinstance(info.value.__cause__, ConnectionError)


class TestFailingParts:
    async def test_storage_error_passes_through(self, clock: FakeClock) -> None:
        """A StorageError from the storage is raised as it is."""
        gen = ImageGenerator(providers=[instant("a")], storage=RefusingStorage(), clock=clock)
        with pytest.raises(StorageError, match="bucket refused"):
            await gen.generate("x")

    async def test_broken_statistics_do_not_fail_generation(
        self, clock: FakeClock, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Counters that cannot be written are logged; the image still comes back."""
        gen = ImageGenerator(providers=[instant("a")], state=NoCounters(), clock=clock)
        with caplog.at_level(logging.WARNING, logger="imagegen"):
            result = await gen.generate("x")
        assert result.provider == "a"
        assert "could not count" in caplog.text

    async def test_statistics_go_in_one_batch(self, clock: FakeClock) -> None:
        """A call's counters are one incr_many (one transaction or round trip)."""
        state = Batched()
        priced = instant("a", price_per_image=0.01)
        gen = ImageGenerator(providers=[priced], state=state, clock=clock)
        await gen.generate("x")
        [batch] = state.batches
        counters = [key.rsplit(":", 1)[1] for key in batch]
        assert counters == ["requests", "success", "lt.0", "cost.micros"]
        assert not any(":stats:" in key for key in state.single)
        [row] = await gen.stats()
        assert (row.requests, row.successes) == (1, 1)

    async def test_a_wrapped_incr_sees_every_counter(self, clock: FakeClock) -> None:
        """A subclass that overrides incr alone gets each counter through it."""
        state = Watched()
        priced = instant("a", price_per_image=0.01)
        gen = ImageGenerator(providers=[priced], state=state, clock=clock)
        await gen.generate("x")
        stats = [key.rsplit(":", 1)[1] for key in state.seen if ":stats:" in key]
        assert stats == ["requests", "success", "lt.0", "cost.micros"]

    async def test_final_record_failure_without_storage(self, clock: FakeClock) -> None:
        """Without storage, a refused final record still returns the image's bytes."""
        gen = ImageGenerator(providers=[instant("a")], state=NoFinalRecord(), clock=clock)
        result = await gen.generate("x")
        assert result.data is not None

    async def test_health_reports_an_unreachable_backend(self, clock: FakeClock) -> None:
        """health() is degraded, naming the error, when the backend does not answer."""
        gen = ImageGenerator(providers=[instant("a")], state=Unreachable(), clock=clock)
        health = await gen.health()
        assert (health["status"], health["state"]) == ("degraded", "error: ConnectionError")


class Checked(FakeProvider):
    """A provider whose check() does what it is told."""

    def __init__(self, name: str, outcome: str) -> None:
        super().__init__(name)
        self.outcome = outcome

    async def check(self, ctx: ProviderContext) -> None:
        if self.outcome == "auth":
            raise ProviderError("key refused", provider=self.name, status=401)
        if self.outcome == "hang":
            await ctx.clock.sleep(3600)
        if self.outcome == "bug":
            raise KeyError("oops")


class TestDeepHealth:
    async def test_checks_run_for_enabled_providers(self, clock: FakeClock) -> None:
        """health(deep=True) reports each enabled provider's check; one failure degrades it."""
        gen = ImageGenerator(
            providers=[
                Checked("good", "ok"),
                Checked("refused", "auth"),
                Checked("stuck", "hang"),
                Checked("buggy", "bug"),
                Checked("off", "auth"),
            ],
            timeout=5.0,
            clock=clock,
        )
        gen.configure(enabled={"off": False})
        report = await gen.health(deep=True)
        assert report["status"] == "degraded"
        assert report["checks"] == {
            "good": "ok",
            "refused": "ProviderError: key refused",
            "stuck": "ProviderTimeout: no answer",
            "buggy": "unexpected KeyError",
        }
        assert clock.monotonic() == 5.0

    async def test_storage_is_probed(self, clock: FakeClock) -> None:
        """Deep health writes, reads back and deletes a probe object, leaving nothing behind."""
        storage = MemoryStorage()
        gen = ImageGenerator(providers=[Checked("good", "ok")], storage=storage, clock=clock)
        report = await gen.health(deep=True)
        assert (report["status"], report["storage"]) == ("ok", "ok")
        assert storage.objects == {}
        broken = ImageGenerator(
            providers=[Checked("good", "ok")], storage=RefusingStorage(), clock=clock
        )
        report = await broken.health(deep=True)
        assert report["status"] == "degraded"
        assert report["storage"].startswith("StorageError")

    async def test_a_provider_without_a_check_is_unchecked(self, clock: FakeClock) -> None:
        """Nothing verified is not "ok": a provider with no check() of its own reports
        "unchecked", which does not degrade the report; the placeholder checks (nothing)."""
        gen = ImageGenerator(providers=[instant("plain"), Placeholder()], clock=clock)
        report = await gen.health(deep=True)
        assert report["checks"] == {"plain": "unchecked", "placeholder": "ok"}
        assert report["status"] == "ok"

    async def test_all_checks_pass(self, clock: FakeClock) -> None:
        """With every check passing the deep status is ok; a shallow health runs none."""
        gen = ImageGenerator(providers=[Checked("good", "ok")], clock=clock)
        assert (await gen.health(deep=True))["status"] == "ok"
        assert "checks" not in await gen.health()


class TestSmallThings:
    def test_default_sentinel_repr(self) -> None:
        """DEFAULT shows as DEFAULT in reprs and docs."""
        assert repr(DEFAULT) == "DEFAULT"

    async def test_stats_accept_datetimes(self, clock: FakeClock) -> None:
        """since/until may be aware or naive datetimes; they select whole UTC days."""
        gen = ImageGenerator(providers=[instant("a")], clock=clock)
        await gen.generate("x")
        aware = dt.datetime(2026, 1, 1, 23, 0, tzinfo=dt.UTC)
        naive = dt.datetime(2026, 1, 1, 1, 0)  # noqa: DTZ001 - the naive case is the point
        assert [r.provider for r in await gen.stats(since=aware, until=naive)] == ["a"]
        assert await gen.stats(until=dt.datetime(2025, 12, 31, tzinfo=dt.UTC)) == []

    async def test_hanging_default_provider_is_bounded(self, clock: FakeClock) -> None:
        """A default-image provider that hangs cannot hold generate() past the deadline."""
        gen = ImageGenerator(
            providers=[failing("a")], default_image=hanging("backup"), timeout=10.0, clock=clock
        )
        with pytest.raises(AllProvidersFailed):
            await gen.generate("x")
        assert clock.monotonic() <= 10.0

    def test_python_dash_m_runs_the_cli(
        self, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """python -m imagegen is the imagegen command."""
        monkeypatch.setattr(sys, "argv", ["imagegen", "generate", "x", "--width", "7"])
        with pytest.raises(SystemExit) as info:
            runpy.run_module("imagegen", run_name="__main__")
        assert info.value.code == 2
        assert "width" in capsys.readouterr().err
