"""Helpers the provider test modules share: a mocked network and timed answers."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import respx

from imagegen import ProviderContext
from imagegen.testing import FakeClock


@asynccontextmanager
async def session(
    clock: FakeClock, *, seconds: float = 30.0, webhook_url: str | None = None
) -> AsyncIterator[tuple[respx.MockRouter, ProviderContext, list[object]]]:
    """A mocked network, a context with ``seconds`` left, and the handles it was given."""
    started: list[object] = []
    async with httpx.AsyncClient() as http:
        with respx.mock(assert_all_called=False) as mock:
            ctx = ProviderContext(
                deadline=clock.monotonic() + seconds,
                clock=clock,
                http_factory=lambda: http,
                on_started=started.append,
                webhook_url=webhook_url,
            )
            yield mock, ctx, started


def body_of(request: httpx.Request) -> Any:
    """The JSON body a request carried."""
    return json.loads(request.content)


def stamped(clock: FakeClock, *answers: httpx.Response | Exception) -> tuple[list[float], Any]:
    """A respx side effect answering in order (the last one repeats), recording call times."""
    times: list[float] = []
    queue = list(answers)

    def answer(_: httpx.Request) -> httpx.Response:
        times.append(clock.monotonic())
        item = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(item, Exception):
            raise item
        return item

    return times, answer
