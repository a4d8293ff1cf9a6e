"""Fake providers (instant, slow, failing, hanging) and a tiny valid PNG."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import anyio
import anyio.lowlevel

from .._errors import ProviderError
from .._image import encode_png
from .._models import ImageRequest
from ..providers import Provider, ProviderContext, ProviderImage

__all__ = ["FakeProvider", "failing", "hanging", "instant", "slow", "tiny_png"]


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
        price_per_image: USD per image it reports (for ``Attempt.cost``); None, as
            by default, is "not known".

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
        price_per_image: float | None = None,
    ) -> None:
        super().__init__(name=name, tier=tier, timeout=timeout, price_per_image=price_per_image)
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
