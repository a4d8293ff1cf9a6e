"""The facade end to end: validation, deadline, default image, storage, records, hooks."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from pathlib import Path

import anyio
import pytest
import respx

from imagegen import (
    DEFAULT,
    AllProvidersFailed,
    Event,
    Fallback,
    ImageGenerator,
    ImageRequest,
    InvalidConfig,
    InvalidRequest,
    LocalStorage,
    MemoryState,
    MemoryStorage,
    Placeholder,
    Provider,
    ProviderContext,
    ProviderError,
    ProviderImage,
    ProviderTimeout,
    ProviderUnavailable,
    Race,
    Retry,
    StorageError,
    StoredObject,
)
from imagegen.testing import EventRecorder, FakeClock, failing, hanging, instant, slow, tiny_png

pytestmark = pytest.mark.anyio


class Broken(Provider):
    name = "broken"

    async def generate(self, request: ImageRequest, ctx: ProviderContext) -> ProviderImage:
        raise KeyError("bug")


class Html(Provider):
    name = "html"

    async def generate(self, request: ImageRequest, ctx: ProviderContext) -> ProviderImage:
        return ProviderImage(data=b"<html>502 Bad Gateway</html>")


class FailingStorage(MemoryStorage):
    async def put(
        self, key: str, data: bytes, *, content_type: str, metadata: Mapping[str, str]
    ) -> StoredObject:
        raise OSError("disk full")


class FailingState(MemoryState):
    def __init__(self, fail_after: int) -> None:
        super().__init__()
        self.sets = 0
        self.fail_after = fail_after

    async def set(self, key: str, value: bytes, *, ttl: float | None = None) -> None:
        if ":record:" in key:
            self.sets += 1
            if self.sets > self.fail_after:
                raise ConnectionError("backend gone")
        await super().set(key, value, ttl=ttl)


class TestRequests:
    async def test_prompt_with_fields(self, clock: FakeClock) -> None:
        """generate(prompt, **fields) builds and passes the ImageRequest."""
        provider = instant("a")
        gen = ImageGenerator(providers=[provider], clock=clock)
        result = await gen.generate("a fox", width=512, height=256, seed=3)
        assert provider.requests == [ImageRequest(prompt="a fox", width=512, height=256, seed=3)]
        assert (result.width, result.height) == (8, 8)

    @pytest.mark.parametrize(
        ("fields", "field"),
        [({"width": 100}, "width"), ({"colour": "red"}, "colour"), ({"seed": -1}, "seed")],
    )
    async def test_bad_input_sends_nothing(
        self, clock: FakeClock, fields: dict[str, object], field: str
    ) -> None:
        """A bad field raises InvalidRequest naming it, and no provider is called."""
        provider = instant("a")
        gen = ImageGenerator(providers=[provider], clock=clock)
        with pytest.raises(InvalidRequest) as info:
            await gen.generate("x", **fields)
        assert info.value.field == field
        assert provider.calls == 0

    async def test_request_object_and_fields_do_not_mix(self, clock: FakeClock) -> None:
        """Passing an ImageRequest and fields together is refused."""
        gen = ImageGenerator(providers=[instant("a")], clock=clock)
        with pytest.raises(InvalidRequest):
            await gen.generate(ImageRequest(prompt="x"), width=64)


class TestDeadline:
    async def test_hanging_providers_give_the_default_by_the_deadline(
        self, clock: FakeClock
    ) -> None:
        """Every provider hangs: the default image arrives before the deadline, flagged."""
        gen = ImageGenerator(providers=[hanging("a"), hanging("b")], timeout=20.0, clock=clock)
        result = await gen.generate("x", width=320, height=200)
        assert clock.monotonic() <= 20.0
        assert result.is_default
        assert result.provider == "default"
        assert (result.width, result.height) == (320, 200)
        assert {a.provider: a.error.kind for a in result.attempts if a.error} == {
            "a": "ProviderTimeout",
            "b": "ProviderTimeout",
        }

    async def test_hanging_providers_raise_by_the_deadline_without_default(
        self, clock: FakeClock
    ) -> None:
        """With default_image=None the deadline ends in AllProvidersFailed."""
        gen = ImageGenerator(providers=[hanging("a")], timeout=5.0, default_image=None, clock=clock)
        with pytest.raises(AllProvidersFailed) as info:
            await gen.generate("x")
        assert clock.monotonic() <= 5.0
        assert isinstance(info.value.attempts[0].error, ProviderTimeout)

    async def test_provider_timeout_caps_one_call(self, clock: FakeClock) -> None:
        """A provider's own timeout ends its call early and the retry goes on."""
        slow_one = slow("a", 10.0, timeout=2.0)
        gen = ImageGenerator(
            providers=[slow_one], retry=Retry(attempts=2, initial=0.0), clock=clock
        )
        result = await gen.generate("x")
        assert result.is_default
        assert slow_one.calls == 2
        assert clock.monotonic() == pytest.approx(4.0)

    async def test_deadline_with_real_clock(self) -> None:
        """On the real clock too, a hanging provider cannot hold generate past the timeout."""
        gen = ImageGenerator(providers=[hanging("a")], timeout=0.3)
        with anyio.fail_after(5):
            result = await gen.generate("x")
        assert result.is_default
        assert result.elapsed < 0.3 + 0.2


class TestDefaultImage:
    async def test_bytes_default(self, clock: FakeClock) -> None:
        """default_image=bytes serves those bytes."""
        png = tiny_png(1, 2, 3)
        gen = ImageGenerator(providers=[failing("a")], default_image=png, clock=clock)
        result = await gen.generate("x")
        assert result.is_default
        assert result.data == png
        assert (result.width, result.height) == (8, 8)

    async def test_provider_default(self, clock: FakeClock) -> None:
        """default_image=Provider calls it and labels the result 'default'."""
        backup = instant("backup")
        gen = ImageGenerator(providers=[failing("a")], default_image=backup, clock=clock)
        result = await gen.generate("x")
        assert result.is_default
        assert result.provider == "default"
        assert backup.calls == 1

    async def test_failing_provider_default_raises(self, clock: FakeClock) -> None:
        """A default provider that fails too leads to AllProvidersFailed."""
        gen = ImageGenerator(providers=[failing("a")], default_image=failing("backup"), clock=clock)
        with pytest.raises(AllProvidersFailed):
            await gen.generate("x")

    async def test_builtin_default_is_a_muted_placeholder(self, clock: FakeClock) -> None:
        """DEFAULT renders a PNG of the requested size, unlike the Placeholder provider's."""
        gen = ImageGenerator(providers=[failing("a")], default_image=DEFAULT, clock=clock)
        result = await gen.generate("x", width=64, height=64)
        assert result.data is not None
        assert result.data.startswith(b"\x89PNG")
        placeholder = await Placeholder().generate(
            ImageRequest(prompt="x", width=64, height=64), ProviderContext(deadline=1.0)
        )
        assert placeholder.data != result.data

    @pytest.mark.parametrize("bad", [b"", "image.png", 42])
    def test_bad_default_is_refused(self, bad: object) -> None:
        """Anything but DEFAULT, None, non-empty bytes or a Provider is refused."""
        with pytest.raises(InvalidConfig) as info:
            ImageGenerator(providers=[instant("a")], default_image=bad)  # type: ignore[arg-type]
        assert info.value.field == "default_image"


class TestBadProviders:
    async def test_unexpected_exception_becomes_provider_error(
        self, clock: FakeClock, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A bug in a provider is a non-retryable ProviderError, logged with its traceback."""
        gen = ImageGenerator(
            providers=[Broken()], default_image=None, retry=Retry(attempts=3), clock=clock
        )
        with (
            caplog.at_level(logging.ERROR, logger="imagegen"),
            pytest.raises(AllProvidersFailed) as info,
        ):
            await gen.generate("x")
        error = info.value.attempts[0].error
        assert isinstance(error, ProviderError)
        assert not error.retryable
        assert info.value.attempts[0].tries == 1
        assert "KeyError" in caplog.text

    async def test_non_image_bytes_are_refused(self, clock: FakeClock) -> None:
        """Bytes whose magic is not an image fail the attempt; nothing is stored."""
        storage = MemoryStorage()
        gen = ImageGenerator(providers=[Html()], storage=storage, clock=clock)
        result = await gen.generate("x")
        assert result.is_default
        assert "not an image" in str(result.attempts[0].error)
        assert list(storage.objects) == [result.key]

    async def test_url_output_is_downloaded(self, clock: FakeClock) -> None:
        """A ProviderImage(url=...) is fetched with the generator's client under the policy."""
        png = tiny_png()

        class UrlProvider(Provider):
            name = "urlp"

            async def generate(self, request: ImageRequest, ctx: ProviderContext) -> ProviderImage:
                return ProviderImage(url="https://93.184.215.14/out.png")

        # Downloads go through their own pinned connection pool (never the shared client), so
        # the network is mocked below httpx's transports, where that pool sends too.
        with respx.mock(assert_all_called=True) as mock:
            route = mock.get("https://93.184.215.14/out.png").respond(200, content=png)
            gen = ImageGenerator(providers=[UrlProvider()], clock=clock)
            result = await gen.generate("x")
        assert route.call_count == 1
        assert result.provider == "urlp"
        assert result.data == png
        assert result.source_url == "https://93.184.215.14/out.png"

    @pytest.mark.parametrize(
        "providers",
        [
            [],
            [instant("a"), instant("a")],
            [instant("bad name")],
            [instant("default")],
            ["not a provider"],
            [instant("a", tier=-1)],
            [instant("a", timeout=-1.0)],
        ],
    )
    def test_bad_provider_lists_are_refused(self, providers: list[object]) -> None:
        """Empty lists, duplicate or bad names, bad tiers and timeouts raise InvalidConfig."""
        with pytest.raises(InvalidConfig) as info:
            ImageGenerator(providers=providers)  # type: ignore[arg-type]
        assert info.value.field == "providers"


class TestStorageAndRecords:
    async def test_stored_image_has_its_record(self, clock: FakeClock) -> None:
        """A stored image's record has status succeeded, its key, URL and attempts."""
        storage = MemoryStorage()
        gen = ImageGenerator(providers=[instant("a")], storage=storage, clock=clock)
        result = await gen.generate("a fox", metadata={"user": "42"})
        assert result.key is not None
        assert result.data is None
        assert result.url == f"memory://{result.key}"
        data, content_type, metadata = storage.objects[result.key]
        assert hashlib.sha256(data).hexdigest() == result.sha256
        assert content_type == "image/png"
        assert metadata["provider"] == "a"
        assert "fox" not in " ".join(metadata.values())
        record = await gen.record(result.id)
        assert record is not None
        assert (record.status, record.key, record.url, record.provider) == (
            "succeeded",
            result.key,
            result.url,
            "a",
        )
        assert record.request["metadata"] == {"user": "42"}
        assert record.finished_at is not None

    async def test_keys_are_dated_and_namespaced(self, clock: FakeClock) -> None:
        """Keys are <namespace>/YYYY/MM/DD/<id>.<ext>."""
        gen = ImageGenerator(
            providers=[instant("a")], storage=MemoryStorage(), namespace="staging", clock=clock
        )
        result = await gen.generate("x")
        assert result.key == f"staging/2026/01/01/{result.id}.png"

    async def test_storage_failure_leaves_no_pointing_record(self, clock: FakeClock) -> None:
        """A failed put raises StorageError; the record is failed and has no key."""
        rec = EventRecorder()
        gen = ImageGenerator(
            providers=[instant("a")], storage=FailingStorage(), hooks=[rec], clock=clock
        )
        with pytest.raises(StorageError):
            await gen.generate("x")
        generation_id = rec.events[0].generation_id
        assert generation_id is not None
        record = await gen.record(generation_id)
        assert record is not None
        assert (record.status, record.key) == ("failed", None)
        assert record.error is not None

    async def test_record_failure_keeps_the_image(
        self, clock: FakeClock, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A final record the backend refuses does not cost the image: it is returned, kept
        in storage, and the miss is logged with its key (no background to retry in)."""
        storage = MemoryStorage()
        gen = ImageGenerator(
            providers=[instant("a")], storage=storage, state=FailingState(1), clock=clock
        )
        with caplog.at_level(logging.WARNING, logger="imagegen"):
            result = await gen.generate("x")
        assert result.key in storage.objects
        assert result.key is not None
        assert result.key in caplog.text
        record = await gen.record(result.id)
        assert record is not None
        assert record.status == "running"

    async def test_a_late_record_is_written_in_the_background(self, clock: FakeClock) -> None:
        """Inside async with, a refused final record is tried again until the backend takes it."""
        state = FailingState(1)
        async with ImageGenerator(
            providers=[instant("a")], storage=MemoryStorage(), state=state, clock=clock
        ) as gen:
            result = await gen.generate("x")
            state.fail_after = 10  # the backend recovers
            await clock.sleep(30)
            record = await gen.record(result.id)
        assert record is not None
        assert (record.status, record.key) == ("succeeded", result.key)

    async def test_failed_generation_record(self, clock: FakeClock) -> None:
        """A failed generation's record says failed with the error and every attempt."""
        gen = ImageGenerator(
            providers=[failing("a", ProviderUnavailable)],
            default_image=None,
            retry=Retry(attempts=1),
            clock=clock,
        )
        with pytest.raises(AllProvidersFailed) as info:
            await gen.generate("x")
        assert info.value.generation_id is not None
        record = await gen.record(info.value.generation_id)
        assert record is not None
        assert record.status == "failed"
        assert isinstance(record.error, AllProvidersFailed)
        assert [a.provider for a in record.attempts] == ["a"]

    async def test_unknown_record_is_none(self, clock: FakeClock) -> None:
        """record() of an unknown id is None."""
        gen = ImageGenerator(providers=[instant("a")], clock=clock)
        assert await gen.record("nope") is None

    async def test_local_storage_end_to_end(self, tmp_path: Path) -> None:
        """With LocalStorage the image lands as a file under its key."""
        storage = LocalStorage(tmp_path)
        async with ImageGenerator(providers=[Placeholder()], storage=storage) as gen:
            result = await gen.generate("a lighthouse", width=128, height=64)
        assert result.key is not None
        path = storage.path_for(result.key)
        assert path.read_bytes().startswith(b"\x89PNG")
        assert result.url == path.as_uri()


class TestStats:
    async def test_counts_add_up(self, clock: FakeClock) -> None:
        """requests == successes + failures + cancelled per provider, defaults on their row."""
        gen = ImageGenerator(
            providers=[
                slow("fast", 1.0),
                hanging("stuck"),
                failing("bad", ProviderUnavailable),
            ],
            strategy=Race(),
            retry=Retry(attempts=2, initial=0.0),
            clock=clock,
        )
        await gen.generate("x")
        gen.configure(enabled={"fast": False}, timeout=5.0)
        await gen.generate("x")
        rows = {row.provider: row for row in await gen.stats()}
        for row in rows.values():
            assert row.requests == row.successes + row.failures + row.cancelled
        assert (rows["fast"].successes, rows["fast"].requests) == (1, 1)
        assert rows["stuck"].cancelled == 2
        assert rows["bad"].failures == 4
        assert rows["bad"].failures_by_kind == {"ProviderUnavailable": 4}
        assert rows["default"].successes == 1
        assert rows["fast"].p50 is not None
        assert await gen.stats(provider="fast") == [rows["fast"]]
        day = rows["fast"].day
        assert await gen.stats(since=day, until=day, provider="bad") == [rows["bad"]]
        assert await gen.stats(since=day.replace(year=2027)) == []


class TestHooks:
    async def test_events_in_order(self, clock: FakeClock) -> None:
        """Hooks see generation_started, attempt events and generation_finished."""
        rec = EventRecorder()
        gen = ImageGenerator(providers=[instant("a")], hooks=[rec], clock=clock)
        result = await gen.generate("x")
        assert rec.kinds() == [
            "generation_started",
            "attempt_started",
            "attempt_finished",
            "generation_finished",
        ]
        assert {e.generation_id for e in rec.events} == {result.id}

    async def test_async_hooks_are_awaited_and_failures_logged(
        self, clock: FakeClock, caplog: pytest.LogCaptureFixture
    ) -> None:
        """An async hook is awaited; a raising hook is logged and changes nothing."""
        seen: list[str] = []

        async def async_hook(event: Event) -> None:
            seen.append(event.kind)

        def bad_hook(event: Event) -> None:
            raise RuntimeError("hook bug")

        gen = ImageGenerator(providers=[instant("a")], hooks=[bad_hook, async_hook], clock=clock)
        with caplog.at_level(logging.ERROR, logger="imagegen"):
            result = await gen.generate("x")
        assert result.provider == "a"
        assert "generation_finished" in seen
        assert "hook bug" in caplog.text

    def test_hooks_must_be_callable(self) -> None:
        """A non-callable hook is refused."""
        with pytest.raises(InvalidConfig):
            ImageGenerator(providers=[instant("a")], hooks=["nope"])  # type: ignore[list-item]


class TestConfigure:
    async def test_changes_apply_to_next_generation(self, clock: FakeClock) -> None:
        """configure() swaps strategy, retry, timeout and default image atomically."""
        gen = ImageGenerator(providers=[failing("a")], clock=clock)
        gen.configure(strategy=Fallback(), retry=Retry(attempts=1), timeout=9.0, default_image=None)
        assert gen.timeout == 9.0
        with pytest.raises(AllProvidersFailed):
            await gen.generate("x")

    @pytest.mark.parametrize(
        ("changes", "field"),
        [
            ({"timeout": 0}, "timeout"),
            ({"timeout": float("inf")}, "timeout"),
            ({"strategy": "race"}, "strategy"),
            ({"retry": 3}, "retry"),
            ({"breaker": None}, "breaker"),
            ({"enabled": {"zzz": True}}, "enabled"),
            ({"enabled": {"a": "yes"}}, "enabled"),
            ({"enabled": ["a"]}, "enabled"),
            ({"priority": ["zzz"]}, "priority"),
            ({"priority": "a"}, "priority"),
            ({"storage": None}, "storage"),
        ],
    )
    def test_bad_change_keeps_old_config(self, changes: dict[str, object], field: str) -> None:
        """A bad change raises InvalidConfig naming the field; nothing changes."""
        gen = ImageGenerator(providers=[instant("a"), instant("b")], timeout=12.0)
        before = gen.settings()
        with pytest.raises(InvalidConfig) as info:
            gen.configure(**{"strategy": Fallback(), **changes})
        assert info.value.field == field
        assert gen.settings() == before

    def test_bad_namespace_and_download(self) -> None:
        """namespace and download are validated on construction."""
        with pytest.raises(InvalidConfig) as info:
            ImageGenerator(providers=[instant("a")], namespace="a b")
        assert info.value.field == "namespace"
        with pytest.raises(InvalidConfig) as info:
            ImageGenerator(providers=[instant("a")], download={"max_bytes": 1})  # type: ignore[arg-type]
        assert info.value.field == "download"


class TestStatus:
    async def test_health_and_status(self, clock: FakeClock) -> None:
        """health() reports breaker states and the backend; providers_status() is sync."""
        gen = ImageGenerator(providers=[instant("a"), instant("b", tier=1)], clock=clock)
        health = await gen.health()
        assert health == {
            "status": "ok",
            "providers": {"a": "closed", "b": "closed"},
            "state": "ok",
        }
        await gen.breaker_for("a").force_open()
        await gen.breaker_for("b").force_open()
        assert (await gen.health())["status"] == "degraded"
        status = gen.providers_status()
        assert [(s["name"], s["tier"], s["breaker"]) for s in status] == [
            ("a", 0, "open"),
            ("b", 1, "open"),
        ]
        assert "ImageGenerator(providers=[a, b]" in repr(gen)

    async def test_aclose_is_idempotent_and_closes_owned_client(self) -> None:
        """aclose() closes the client the generator made, and can be called twice."""
        gen = ImageGenerator(providers=[instant("a")])
        client = gen._http_client()
        await gen.aclose()
        await gen.aclose()
        assert client.is_closed


class TestCancellation:
    async def test_caller_cancel_records_failure_and_cancels_remote(self, clock: FakeClock) -> None:
        """Cancelling generate() cancels remote work and marks the record failed."""
        provider = hanging("a", handle="job")
        rec = EventRecorder()
        gen = ImageGenerator(providers=[provider], hooks=[rec], clock=clock)
        with clock.deadline_scope(5.0):  # the caller gives up after 5 virtual seconds
            await gen.generate("x")
        assert provider.cancelled == ["job-1"]
        generation_id = rec.events[0].generation_id
        assert generation_id is not None
        record = await gen.record(generation_id)
        assert record is not None
        assert record.status == "failed"
        assert [a.outcome for a in record.attempts] == ["cancelled"]
