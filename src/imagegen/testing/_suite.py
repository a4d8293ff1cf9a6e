"""What the conformance suites share: the event loops they run on, and calling user hooks.

This module imports pytest: only the suites import it, and ``imagegen.testing`` loads
them on first use, so the fakes work without pytest installed.
"""

from __future__ import annotations

import importlib.util
import inspect
from collections.abc import Callable
from typing import ClassVar

import pytest

__all__ = ["Suite", "call_hook"]


def _anyio_backends() -> list[str]:
    # trio is optional for users: without it the suites run on asyncio alone.
    return [name for name in ("asyncio", "trio") if importlib.util.find_spec(name) is not None]


class Suite:
    """Every test of a suite is an anyio test, run on asyncio and on trio (when installed).

    Override ``anyio_backend`` in a subclass to choose the event loops yourself.
    """

    pytestmark: ClassVar[list[pytest.MarkDecorator]] = [pytest.mark.anyio]

    @pytest.fixture(params=_anyio_backends())
    def anyio_backend(self, request: pytest.FixtureRequest) -> str:
        """The event loop each test runs on: asyncio, then trio."""
        return str(request.param)


async def call_hook(hook: Callable[..., object], *args: object) -> object:
    """Call a user's hook, which may be a plain function or a coroutine function."""
    result = hook(*args)
    if inspect.isawaitable(result):
        result = await result
    return result
