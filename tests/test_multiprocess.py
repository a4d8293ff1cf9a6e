"""Breaker state shared by real processes through a shared state backend."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

# One process's life: build a generator on the shared backend, act, print what it saw.
WORKER = textwrap.dedent(
    """
    import json, sys
    import anyio
    from imagegen import CircuitBreaker, ImageGenerator, ProviderUnavailable, Retry, SQLiteState
    from imagegen.testing import FakeProvider

    spec, action = sys.argv[1], sys.argv[2]

    def backend():
        kind, _, where = spec.partition(":")
        if kind == "sqlite":
            return SQLiteState(where)
        from imagegen.state import RedisState
        return RedisState(where)

    async def main():
        provider = FakeProvider("flaky", fail=ProviderUnavailable if action == "fail" else None)
        state = backend()
        gen = ImageGenerator(
            providers=[provider],
            retry=Retry(attempts=1),
            breaker=CircuitBreaker(failure_threshold=2, reset_timeout=600),
            state=state,
        )
        async with gen:
            if action in ("fail", "call"):
                result = await gen.generate("x", width=64, height=64)
                outcome = [a.outcome for a in result.attempts]
            else:
                await getattr(gen.breaker_for("flaky"), action)()
                outcome = []
            snapshot = await gen.breaker_for("flaky").snapshot()
        await state.aclose()
        print(json.dumps({"state": snapshot.state, "calls": provider.calls, "outcome": outcome}))

    anyio.run(main)
    """
)


def run(spec: str, action: str) -> dict[str, object]:
    """Run one worker process to completion (bounded) and return what it printed."""
    done = subprocess.run(
        [sys.executable, "-c", WORKER, spec, action],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


@pytest.fixture(params=["sqlite", "redis"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A state backend every worker process reaches: one SQLite file, or one Redis."""
    if request.param == "sqlite":
        return f"sqlite:{tmp_path / 'shared.sqlite3'}"
    server = request.getfixturevalue("redis_db")
    return f"redis:{server.url}"


class TestSharedBreaker:
    def test_processes_see_one_breaker(self, backend: str) -> None:
        """Failures in two processes open one breaker; a third skips it; a close is shared too."""
        assert run(backend, "fail")["state"] == "closed"  # one failure of two
        assert run(backend, "fail")["state"] == "open"  # another process, the second failure
        third = run(backend, "call")
        assert third["calls"] == 0  # skipped: the breaker another process opened
        assert third["outcome"] == ["skipped"]
        assert run(backend, "force_close")["state"] == "closed"
        fourth = run(backend, "call")
        assert (fourth["calls"], fourth["outcome"], fourth["state"]) == (1, ["success"], "closed")
