"""Test helpers, public so you can test your own code with them.

- :class:`FakeClock`: virtual time. Inside ``async with FakeClock() as clock:``
  time jumps to the next sleeper or deadline as soon as every task is blocked, so
  a 30-second deadline passes in no real time.
- :class:`FakeProvider`: instant, slow, failing or hanging, and it remembers calls
  and cancellations. :func:`instant`, :func:`slow`, :func:`failing` and
  :func:`hanging` build the common ones.
- :class:`EventRecorder`: a hook that keeps every event.

Example::

    async with FakeClock() as clock:
        gen = ImageGenerator(providers=[hanging("a"), slow("b", 2.0)], clock=clock)
        result = await gen.generate("a red fox")
        assert result.provider == "b" and clock.monotonic() == 2.0
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from types import TracebackType
from typing import Any

import anyio
import anyio.lowlevel

from ._errors import ProviderError
from ._image import encode_png
from ._models import Event, ImageRequest
from .providers import Provider, ProviderContext, ProviderImage

__all__ = [
    "EventRecorder",
    "FakeClock",
    "FakeProvider",
    "failing",
    "hanging",
    "instant",
    "slow",
    "tiny_png",
]


class FakeClock:
    """Virtual time for tests; a :class:`~imagegen.Clock`.

    ``advance(seconds)`` moves time by hand. Used as an async context manager it
    also *autojumps*: whenever every task is blocked, time moves to the earliest
    pending sleep or deadline, so tests never wait for real.

    Args:
        start: The initial ``monotonic()`` reading.
        epoch: ``time()`` at ``start`` (default 2026-01-01T00:00:00Z).
    """

    def __init__(self, start: float = 0.0, *, epoch: float = 1_767_225_600.0) -> None:
        self._now = start
        self._epoch = epoch - start
        self._timers: list[tuple[float, int, Callable[[], None]]] = []
        self._live: set[int] = set()
        self._seq = itertools.count()
        self._changed: anyio.Event | None = None
        self._tg: anyio.abc.TaskGroup | None = None

    def monotonic(self) -> float:
        """Virtual seconds."""
        return self._now

    def time(self) -> float:
        """Virtual Unix time."""
        return self._epoch + self._now

    def _add(self, when: float, action: Callable[[], None]) -> int:
        ident = next(self._seq)
        heapq.heappush(self._timers, (when, ident, action))
        self._live.add(ident)
        if self._changed is not None:
            self._changed.set()
        return ident

    def _fire_due(self) -> None:
        while self._timers and self._timers[0][0] <= self._now:
            _, ident, action = heapq.heappop(self._timers)
            if ident in self._live:
                self._live.discard(ident)
                action()

    def _next_due(self) -> float | None:
        while self._timers and self._timers[0][1] not in self._live:
            heapq.heappop(self._timers)
        return self._timers[0][0] if self._timers else None

    async def sleep(self, seconds: float) -> None:
        """Wait until virtual time has moved ``seconds`` on."""
        if seconds <= 0:
            await anyio.lowlevel.checkpoint()
            return
        done = anyio.Event()
        ident = self._add(self._now + seconds, done.set)
        try:
            await done.wait()
        finally:
            self._live.discard(ident)

    @contextmanager
    def deadline_scope(self, deadline: float) -> Iterator[anyio.CancelScope]:
        """A cancel scope cancelled when virtual time reaches ``deadline``."""
        scope = anyio.CancelScope()
        if deadline <= self._now:
            scope.cancel()
        ident = self._add(deadline, scope.cancel)
        try:
            with scope:
                yield scope
        finally:
            self._live.discard(ident)

    def advance(self, seconds: float) -> None:
        """Move time on by ``seconds``, waking sleepers and firing deadlines on the way."""
        target = self._now + seconds
        while (due := self._next_due()) is not None and due <= target:
            self._now = max(self._now, due)
            self._fire_due()
        self._now = target

    @staticmethod
    async def _quiet() -> None:
        # On asyncio a task that just finished still has its done-callbacks (which wake
        # whoever waits for it) queued for the next loop iterations, while every task
        # left already looks blocked. Let queued callbacks run, then check twice.
        for _ in range(2):
            for _ in range(5):
                await anyio.lowlevel.checkpoint()
            await anyio.wait_all_tasks_blocked()

    async def _autojump(self) -> None:
        while True:
            await self._quiet()
            due = self._next_due()
            if due is None:
                self._changed = anyio.Event()
                await self._changed.wait()
                self._changed = None
                continue
            self.advance(max(0.0, due - self._now))

    async def __aenter__(self) -> FakeClock:
        self._tg = anyio.create_task_group()
        await self._tg.__aenter__()
        self._tg.start_soon(self._autojump)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        assert self._tg is not None  # noqa: S101 - set by __aenter__
        # Stop the autojump task, and let the body's own exception (if any) propagate
        # as it is, not wrapped in an ExceptionGroup by the task group.
        self._tg.cancel_scope.cancel()
        await self._tg.__aexit__(None, None, None)
        return None

    def __repr__(self) -> str:
        return f"FakeClock(monotonic={self._now!r})"


_PNG_CACHE: dict[tuple[int, int, int], bytes] = {}


def tiny_png(red: int = 200, green: int = 80, blue: int = 40) -> bytes:
    """A valid 8x8 single-colour PNG."""
    key = (red, green, blue)
    if key not in _PNG_CACHE:
        _PNG_CACHE[key] = encode_png(8, 8, [bytes(key) * 8] * 8)
    return _PNG_CACHE[key]


ErrorSpec = ProviderError | type[ProviderError]


class FakeProvider(Provider):
    """A scriptable provider.

    Args:
        name: Its name.
        tier: Its tier.
        timeout: Its per-call timeout.
        delay: Virtual seconds each call takes (on ``ctx.clock``).
        errors: Raised one per call, in order (classes are instantiated); once
            used up, calls succeed.
        fail: Raised on every call.
        hang: Calls never return (until cancelled).
        handle: When set, each call reports remote work ``f"{handle}-{n}"`` via
            ``ctx.started`` before doing anything else.
        image: The bytes returned (default: :func:`tiny_png`).

    Attributes:
        calls: How many times ``generate`` was called.
        requests: The requests it was called with.
        cancelled: Handles passed to ``cancel``.
        completed: Calls that returned an image.
    """

    def __init__(
        self,
        name: str = "fake",
        *,
        tier: int = 0,
        timeout: float | None = None,
        delay: float = 0.0,
        errors: Sequence[ErrorSpec] = (),
        fail: ErrorSpec | None = None,
        hang: bool = False,
        handle: str | None = None,
        image: bytes | None = None,
    ) -> None:
        super().__init__(name=name, tier=tier, timeout=timeout)
        self.delay = delay
        self.errors = list(errors)
        self.fail = fail
        self.hang = hang
        self.handle = handle
        self.image = image
        self.calls = 0
        self.completed = 0
        self.requests: list[ImageRequest] = []
        self.cancelled: list[object] = []

    def _error(self, spec: ErrorSpec) -> ProviderError:
        if isinstance(spec, type):
            return spec(f"{spec.__name__} from fake provider {self.name}", provider=self.name)
        return spec

    async def generate(self, request: ImageRequest, ctx: ProviderContext) -> ProviderImage:
        self.calls += 1
        self.requests.append(request)
        if self.handle is not None:
            ctx.started(f"{self.handle}-{self.calls}")
        if self.hang:
            await anyio.sleep_forever()
        if self.delay:
            await ctx.clock.sleep(self.delay)
        else:
            await anyio.lowlevel.checkpoint()
        if self.errors:
            raise self._error(self.errors.pop(0))
        if self.fail is not None:
            raise self._error(self.fail)
        self.completed += 1
        return ProviderImage(
            data=self.image if self.image is not None else tiny_png(),
            width=request.width,
            height=request.height,
            seed=request.seed,
        )

    async def cancel(self, handle: object, ctx: ProviderContext) -> None:
        self.cancelled.append(handle)


def instant(name: str = "instant", **kwargs: Any) -> FakeProvider:
    """A provider that answers at once."""
    return FakeProvider(name, **kwargs)


def slow(name: str = "slow", delay: float = 5.0, **kwargs: Any) -> FakeProvider:
    """A provider that answers after ``delay`` virtual seconds."""
    return FakeProvider(name, delay=delay, **kwargs)


def failing(name: str = "failing", error: ErrorSpec = ProviderError, **kwargs: Any) -> FakeProvider:
    """A provider that fails every call with ``error``."""
    return FakeProvider(name, fail=error, **kwargs)


def hanging(name: str = "hanging", **kwargs: Any) -> FakeProvider:
    """A provider that never answers."""
    return FakeProvider(name, hang=True, **kwargs)


class EventRecorder:
    """A hook that keeps every :class:`~imagegen.Event` it is given."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def __call__(self, event: Event) -> None:
        self.events.append(event)

    def kinds(self) -> list[str]:
        """The kinds, in order."""
        return [e.kind for e in self.events]

    def of(self, kind: str) -> list[Event]:
        """The events of one kind."""
        return [e for e in self.events if e.kind == kind]
