"""ImageRequest(n=...): several images in one generation, each its own call, stored and
recorded; fewer than asked is said, never hidden."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from benchmarks.emulator import Emulator, ProviderProfile

from cli_support import SMALL, run_cli
from imagegen import (
    AllProvidersFailed,
    DownloadPolicy,
    ImageGenerator,
    ImageRequest,
    ImageResult,
    InvalidRequest,
    MemoryState,
    MemoryStorage,
    Placeholder,
    ProviderUnavailable,
    Race,
    RequestWarning,
    Retry,
    StorageError,
)
from imagegen.providers import Provider
from imagegen.server import create_app
from imagegen.storage import StoredObject
from imagegen.testing import FakeClock, FakeProvider, instant, slow

pytestmark = pytest.mark.anyio


def gen_of(providers: list[Provider], clock: FakeClock, **kw: Any) -> ImageGenerator:
    kw.setdefault("storage", MemoryStorage())
    return ImageGenerator(providers=providers, clock=clock, state=MemoryState(), **kw)


class TestSeveral:
    async def test_four_calls_four_images_four_keys(self, clock: FakeClock) -> None:
        provider = instant("a", handle="a", price_per_image=0.01)
        gen = gen_of([provider], clock)
        result = await gen.generate("a fox", n=4, seed=7)
        assert provider.calls == 4
        assert sorted(r.seed for r in provider.requests) == [7, 8, 9, 10]  # seed + i
        assert len(result.images) == 4
        keys = [image.key for image in result.images]
        assert len(set(keys)) == 4
        assert keys[0] == result.key
        assert all(result.id in key for key in keys if key)
        assert result.cost == pytest.approx(0.04)
        assert len(result.attempts) == 4
        assert result.warnings == tuple(
            w for w in result.warnings if w.field != "n"
        )  # all made: nothing said about n
        record = await gen.record(result.id)
        assert record is not None
        assert record.keys == tuple(keys)
        assert record.request["n"] == 4

    async def test_each_image_is_raced(self, clock: FakeClock) -> None:
        """n=3 under Race with two providers: three races, six calls."""
        a, b = slow("a", 1.0), slow("b", 2.0)
        async with gen_of([a, b], clock, strategy=Race()) as gen:
            result = await gen.generate("a fox", n=3)
        assert (a.calls, b.calls) == (3, 3)
        assert [image.provider for image in result.images] == ["a", "a", "a"]
        assert sorted(x.outcome for x in result.attempts) == ["cancelled"] * 3 + ["success"] * 3

    async def test_fewer_made_than_asked_is_said(self, clock: FakeClock) -> None:
        """One call of four fails for good: three images, and a warning on n."""
        flaky = FakeProvider("a", errors=[ProviderUnavailable("down", retryable=False)])
        gen = gen_of([flaky], clock, default_image=None)
        result = await gen.generate("a fox", n=4)
        assert len(result.images) == 3
        assert RequestWarning("n", "asked for 4 images, 3 made by the providers") in (
            result.warnings
        )
        assert [a.outcome for a in result.attempts].count("error") == 1

    async def test_none_made_is_the_default_image(self, clock: FakeClock) -> None:
        failing = FakeProvider("a", fail=ProviderUnavailable("down", retryable=False))
        result = await gen_of([failing], clock).generate("a fox", n=2, width=64, height=64)
        assert result.is_default
        assert len(result.images) == 1
        assert RequestWarning("n", "asked for 2 images, 1 made by the default image") in (
            result.warnings
        )

    async def test_none_made_and_no_default_fails_with_every_attempt(
        self, clock: FakeClock
    ) -> None:
        failing = FakeProvider("a", fail=ProviderUnavailable("down", retryable=False))
        gen = gen_of([failing], clock, default_image=None)
        with pytest.raises(AllProvidersFailed) as caught:
            await gen.generate("a fox", n=3)
        assert len(caught.value.attempts) == 3


class NoThirdImage(MemoryStorage):
    """Refuses to store the generation's third image."""

    async def put(
        self, key: str, data: bytes, *, content_type: str, metadata: Mapping[str, str]
    ) -> StoredObject:
        if "-2." in key:
            raise StorageError("disk full")
        return await super().put(key, data, content_type=content_type, metadata=metadata)


class Stalls(MemoryStorage):
    async def put(
        self, key: str, data: bytes, *, content_type: str, metadata: Mapping[str, str]
    ) -> StoredObject:
        stored = await super().put(key, data, content_type=content_type, metadata=metadata)
        if "-2." in key:
            await anyio.sleep_forever()
        return stored


class TestStoring:
    async def test_an_image_that_cannot_be_stored_is_said(self, clock: FakeClock) -> None:
        storage = NoThirdImage()
        gen = gen_of([instant("a")], clock, storage=storage, retry=Retry(attempts=1))
        result = await gen.generate("a fox", n=3)
        assert len(result.images) == 2
        assert set(storage.objects) == {image.key for image in result.images}
        assert any(w.field == "n" for w in result.warnings)

    async def test_a_caller_who_gives_up_leaves_no_image_behind(self, clock: FakeClock) -> None:
        """Cancelled while the third image is stored: every image stored so far goes."""
        storage = Stalls()
        gen = gen_of([instant("a")], clock, storage=storage, timeout=10.0)
        with clock.deadline_scope(clock.monotonic() + 5.0) as scope:
            await gen.generate("a fox", n=3)
        assert scope.cancelled_caught
        assert not storage.objects


class TestShapes:
    @pytest.mark.parametrize("bad", [0, 11, True, 2.0, "2"])
    def test_n_out_of_range_is_refused(self, bad: object) -> None:
        with pytest.raises(InvalidRequest, match="n must be a whole number from 1 to 10") as c:
            ImageRequest(prompt="x", n=bad)  # type: ignore[arg-type]
        assert c.value.field == "n"

    async def test_json_round_trip(self, clock: FakeClock) -> None:
        result = await gen_of([Placeholder()], clock).generate("x", n=2, width=64, height=64)
        back = ImageResult.from_dict(json.loads(json.dumps(result.to_dict())))
        assert back.images == result.images
        assert [i["key"] for i in result.to_dict()["images"]] == [i.key for i in result.images]

    async def test_one_image_is_its_own_images(self, clock: FakeClock) -> None:
        result = await gen_of([Placeholder()], clock).generate("x", width=64, height=64)
        assert result.images == (result.first,)


async def test_a_vendor_with_one_image_per_call_gets_four_calls() -> None:
    """Against the emulator: n=4 to Replicate (one image per prediction) is four creates
    and four stored images."""
    async with Emulator({"replicate": ProviderProfile(api="replicate")}) as emu:
        storage = MemoryStorage()
        gen = ImageGenerator(
            providers=[emu.provider("replicate")],
            storage=storage,
            download=DownloadPolicy(allow_http=True, allow_private_networks=True),
            default_image=None,
        )
        async with gen:
            result = await gen.generate("a fox", n=4)
        assert emu.stats("replicate").creates == 4
    assert len(result.images) == 4
    assert len(storage.objects) == 4
    assert result.cost == pytest.approx(4 * 0.003)


def test_the_cli_prints_each_image(tmp_path: Path) -> None:
    proc = run_cli(tmp_path, "generate", "a fox", *SMALL, "-n", "2")
    assert proc.returncode == 0, proc.stderr
    paths = proc.stdout.split()
    assert len(paths) == 2
    assert all(Path(p).is_file() for p in paths)
    data = json.loads(run_cli(tmp_path, "generate", "a fox", *SMALL, "-n", "2", "--json").stdout)
    assert [Path(i["path"]).is_file() for i in data["images"]] == [True, True]


async def test_the_http_answer_lists_every_image(clock: FakeClock) -> None:
    gen = gen_of([Placeholder()], clock)
    transport = httpx.ASGITransport(app=create_app(gen))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        answer = await http.post(
            "/images/generate", json={"prompt": "x", "n": 3, "width": 64, "height": 64}
        )
        refused = await http.post("/images/generate", json={"prompt": "x", "n": 11})
    assert answer.status_code == 200, answer.text
    assert len(answer.json()["images"]) == 3
    assert [e["field"] for e in refused.json()["errors"]] == ["n"]
