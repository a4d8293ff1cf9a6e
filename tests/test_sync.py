"""SyncGenerator and generate_sync: the same pipeline, blocking, for code without a loop."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from cli_support import PROVIDER_KEYS
from imagegen import (
    ImageGenerator,
    InvalidConfig,
    InvalidRequest,
    MemoryState,
    MemoryStorage,
    NotRunning,
    Placeholder,
    SyncGenerator,
    generate_sync,
)
from imagegen.testing import slow

BACKENDS = ["asyncio", "trio"]


def small() -> ImageGenerator:
    return ImageGenerator(providers=[Placeholder()], storage=MemoryStorage(), state=MemoryState())


@pytest.mark.parametrize("backend", BACKENDS)
def test_generate_record_and_stats(backend: str) -> None:
    with SyncGenerator(small(), backend=backend) as gen:
        result = gen.generate("a fox", width=64, height=64)
        assert result.provider == "placeholder"
        record = gen.record(result.id)
        assert record is not None
        assert record.status == "succeeded"
        [row] = gen.stats()
        assert row.successes == 1
        assert gen.health()["status"] == "ok"


@pytest.mark.parametrize("backend", BACKENDS)
def test_jobs_run_in_the_loop_thread(backend: str) -> None:
    with SyncGenerator(small(), backend=backend) as gen:
        job_id = gen.submit("a fox", width=64, height=64)
        result = gen.wait(job_id, timeout=10)
        job = gen.job(job_id)
    assert job is not None
    assert (job.status, result.provider) == ("succeeded", "placeholder")


def test_one_generator_serves_many_threads() -> None:
    """Eight threads at once, each blocked on its own call, share one loop thread."""
    gen = ImageGenerator(providers=[slow("a", 0.2)], storage=MemoryStorage())
    results: list[str] = []
    with SyncGenerator(gen) as sync:

        def one() -> None:
            results.append(sync.generate("a fox").provider)

        threads = [threading.Thread(target=one) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=10)
    assert results == ["a"] * 8


def test_errors_are_the_librarys() -> None:
    with SyncGenerator(small()) as gen, pytest.raises(InvalidRequest) as caught:
        gen.generate("a fox", width=7)
    assert caught.value.field == "width"


def test_only_inside_with_and_closed_after() -> None:
    sync = SyncGenerator(small())
    with pytest.raises(NotRunning):
        sync.generate("a fox")
    with sync:
        assert "open" in repr(sync)
        with pytest.raises(InvalidConfig, match="already open"):
            sync.__enter__()
    assert "closed" in repr(sync)
    with pytest.raises(NotRunning):
        sync.generate("a fox")


@pytest.mark.anyio
async def test_refused_inside_async_code() -> None:
    """Inside a running loop it would block that loop for the whole call: refused."""
    with pytest.raises(InvalidConfig, match="await the ImageGenerator") as caught:
        SyncGenerator(small()).__enter__()
    assert caught.value.field == "SyncGenerator"


def test_generate_sync_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One call, offline on the defaults: the image lands under IMAGEGEN_DATA_DIR."""
    for name in list(os.environ):
        if name.startswith("IMAGEGEN_") or name in PROVIDER_KEYS:
            monkeypatch.delenv(name)
    monkeypatch.setenv("IMAGEGEN_DATA_DIR", str(tmp_path))
    result = generate_sync("a lighthouse", width=64, height=64)
    assert result.provider == "placeholder"
    assert result.key is not None
    assert (tmp_path / "images" / result.key).is_file()
