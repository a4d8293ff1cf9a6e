from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from imagegen.testing import FakeClock
from redis_support import redis_db, redis_server  # noqa: F401 - fixtures for every test


@pytest.fixture(
    params=[
        pytest.param("asyncio", id="asyncio"),
        pytest.param("trio", id="trio"),
    ]
)
def anyio_backend(request: pytest.FixtureRequest) -> str:
    """Every async test runs on asyncio and on trio, pinned here, not by the plugin."""
    return str(request.param)


@pytest.fixture
async def clock() -> AsyncIterator[FakeClock]:
    """Virtual time that jumps ahead whenever every task is blocked."""
    async with FakeClock() as fake:
        yield fake
