"""Resetting shared settings (`reset_settings()`, `imagegen config reset`) and where each
setting shown by `imagegen config show` comes from."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cli_support import run_cli as _run
from imagegen import (
    Fallback,
    ImageGenerator,
    InvalidConfig,
    MemoryState,
    Retry,
    StorageError,
)
from imagegen.testing import FakeClock, FaultyState, instant


def _make(state: MemoryState, clock: FakeClock, **kwargs: Any) -> ImageGenerator:
    return ImageGenerator(
        providers=[instant("a"), instant("b")], state=state, clock=clock, config_ttl=0, **kwargs
    )


@pytest.mark.anyio
class TestResetSettings:
    async def test_only_changed_settings_are_shared(self, clock: FakeClock) -> None:
        """What configure() changed is shared; the rest stay each generator's own."""
        state = MemoryState()
        one, two = _make(state, clock), _make(state, clock, timeout=12.0)
        one.configure(retry=Retry(attempts=1))
        await one.publish_config()
        assert set(await one.shared_settings()) == {"retry"}
        await two.generate("x")
        assert two.retry == Retry(attempts=1)
        assert two.timeout == 12.0  # its own, not one's 30

    async def test_reset_one_name(self, clock: FakeClock) -> None:
        """A reset setting goes back to each generator's own; the others stay shared."""
        state = MemoryState()
        one, two = _make(state, clock), _make(state, clock, timeout=12.0)
        one.configure(timeout=7.0, strategy=Fallback())
        await one.publish_config()
        await two.generate("x")
        assert (two.timeout, type(two.strategy)) == (7.0, Fallback)
        await one.reset_settings("timeout")
        assert one.timeout == 30.0  # at once where it was reset
        assert set(await two.shared_settings()) == {"strategy"}
        await two.generate("x")
        assert (two.timeout, type(two.strategy)) == (12.0, Fallback)

    async def test_reset_all(self, clock: FakeClock) -> None:
        """No names: every shared setting is dropped, everyone is back to their own."""
        state = MemoryState()
        one, two = _make(state, clock), _make(state, clock)
        one.configure(timeout=7.0, enabled={"a": False}, priority=["b"])
        await one.publish_config()
        await two.generate("x")
        assert [p.name for p in two.providers] == ["b", "a"]
        await two.reset_settings()
        assert await one.shared_settings() == {}
        assert (two.timeout, [p.name for p in two.providers]) == (30.0, ["a", "b"])
        await one.generate("x")  # adopts the reset
        assert (one.timeout, [p.name for p in one.providers]) == (30.0, ["a", "b"])
        assert one.settings()["enabled"] == {"a": True, "b": True}

    @pytest.mark.parametrize("name", ["colour", "default_image"])
    async def test_unknown_name(self, clock: FakeClock, name: str) -> None:
        """A name that is not a shared setting: InvalidConfig naming it; nothing changes."""
        state = MemoryState()
        one = _make(state, clock)
        one.configure(timeout=7.0)
        await one.publish_config()
        with pytest.raises(InvalidConfig) as info:
            await one.reset_settings("timeout", name)
        assert info.value.field == name
        assert set(await one.shared_settings()) == {"timeout"}

    async def test_backend_down(self, clock: FakeClock) -> None:
        """shared_settings() and reset_settings() raise StorageError when the backend fails."""
        state = FaultyState(MemoryState(), clock=clock)
        state.fail_all = True
        gen = ImageGenerator(providers=[instant("a")], state=state, clock=clock)
        with pytest.raises(StorageError):
            await gen.shared_settings()
        with pytest.raises(StorageError):
            await gen.reset_settings("timeout")


def _settings(cwd: Path, *args: str, **env: str) -> dict[str, Any]:
    proc = _run(cwd, "config", *args, **env)
    assert proc.returncode == 0, proc.stderr
    settings: dict[str, Any] = json.loads(proc.stdout)
    return settings


class TestConfigCommand:
    def test_sources(self, tmp_path: Path) -> None:
        """`show` says shared for what `set` changed, env or default for the rest."""
        _settings(tmp_path, "set", "timeout=12", 'retry={"attempts": 2}')
        shown = _settings(tmp_path, "show", IMAGEGEN_STRATEGY="fallback")
        assert shown["sources"] == {
            "strategy": "env",
            "timeout": "shared",
            "retry": "shared",
            "breaker": "default",
            "enabled": "default",
            "priority": "default",
            "default_image": "default",
        }
        assert (shown["timeout"], shown["strategy"]["kind"]) == (12.0, "fallback")

    def test_reset_names(self, tmp_path: Path) -> None:
        """`reset timeout` brings back the environment's timeout; retry stays shared."""
        _settings(tmp_path, "set", "timeout=12", 'retry={"attempts": 2}')
        reset = _settings(tmp_path, "reset", "timeout", IMAGEGEN_TIMEOUT="15")
        assert (reset["timeout"], reset["sources"]["timeout"]) == (15.0, "env")
        shown = _settings(tmp_path, "show")
        assert (shown["timeout"], shown["sources"]["timeout"]) == (30.0, "default")
        assert (shown["retry"]["attempts"], shown["sources"]["retry"]) == (2, "shared")

    def test_reset_all(self, tmp_path: Path) -> None:
        """`reset` with no names drops every shared setting."""
        _settings(tmp_path, "set", "timeout=12", 'retry={"attempts": 2}')
        _settings(tmp_path, "reset")
        shown = _settings(tmp_path, "show")
        assert set(shown["sources"].values()) == {"default"}
        assert (shown["timeout"], shown["retry"]["attempts"]) == (30.0, 3)

    def test_reset_unknown_name(self, tmp_path: Path) -> None:
        """An unknown name exits 2 with one line naming it."""
        proc = _run(tmp_path, "config", "reset", "colour")
        assert proc.returncode == 2
        lines = proc.stderr.splitlines()
        assert len(lines) == 1
        assert lines[0].startswith("imagegen: error:")
        assert "colour" in lines[0]
