"""The default image: what ``generate()`` returns when every provider failed.

``DEFAULT`` is the built-in one: a muted placeholder landscape of the requested
size, the same for every prompt, so it is drawn once per size and kept; sizes
over a megapixel are drawn in a worker thread (a 4096x4096 PNG takes a tenth of
a second of CPU, which would stall every other generation on the loop). A generator
may instead hold image bytes, a Provider, or None (raise instead).
"""

from __future__ import annotations

import functools
import logging
from typing import TYPE_CHECKING, Final

import anyio
import anyio.to_thread
import attrs
import cachetools

from ._download import check_image
from ._generation import Generation
from ._image import dimensions
from ._output import Output, call_provider
from .providers import Placeholder, Provider

if TYPE_CHECKING:
    from ._runtime import Runtime

__all__ = [
    "DEFAULT",
    "DefaultImage",
    "DefaultRenderer",
    "default_output",
    "describe_default",
    "is_default_image",
]

logger = logging.getLogger("imagegen")


class _DefaultImage:
    """The built-in default image: the prompt's placeholder landscape, muted."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "DEFAULT"


DEFAULT: Final = _DefaultImage()

DefaultImage = _DefaultImage | bytes | Provider | None


#: What DEFAULT draws: one landscape for every prompt, so one render serves a size.
_DEFAULT_SCENE = "imagegen default image"
_SIZES_KEPT = 16
#: Up to this many pixels a drawing takes about 10 ms, once per size: done in place,
#: which also keeps it in step with a test's fake clock. Larger ones go to a thread.
_DRAW_IN_PLACE = 1024 * 1024


class DefaultRenderer:
    """DEFAULT's image of each size: drawn in a worker thread once, then kept (LRU).

    Concurrent generations wanting the same size share one drawing. A drawing
    whose waiter gave up (its deadline passed) still finishes and is kept for the
    next one.
    """

    __slots__ = ("_drawing", "_finished", "_kept")

    def __init__(self, sizes: int = _SIZES_KEPT) -> None:
        self._kept: cachetools.LRUCache[tuple[int, int], bytes] = cachetools.LRUCache(sizes)
        # Filled by the worker thread (a dict store is atomic), moved to _kept here.
        self._finished: dict[tuple[int, int], bytes] = {}
        self._drawing: dict[tuple[int, int], anyio.Event] = {}

    async def image(self, width: int, height: int) -> bytes:
        """The PNG of ``width`` x ``height``."""
        key = (width, height)
        while True:
            finished = self._finished.pop(key, None)
            if finished is not None:
                self._kept[key] = finished
            kept = self._kept.get(key)
            if kept is not None:
                return kept
            drawing = self._drawing.get(key)
            if drawing is None:
                break
            await drawing.wait()
        if width * height <= _DRAW_IN_PLACE:
            data = self._draw(key)
            self._kept[key] = self._finished.pop(key, data)
            return data
        done = self._drawing[key] = anyio.Event()
        try:
            draw = functools.partial(self._draw, key)
            data = await anyio.to_thread.run_sync(draw, abandon_on_cancel=True)
        finally:
            del self._drawing[key]
            done.set()
        self._kept[key] = self._finished.pop(key, data)
        return data

    def _draw(self, key: tuple[int, int]) -> bytes:
        data = Placeholder.render(_DEFAULT_SCENE, key[0], key[1], muted=True)
        self._finished[key] = data
        return data


def is_default_image(value: object) -> bool:
    """Whether ``value`` is one of the kinds a default image may be."""
    return value is None or isinstance(value, _DefaultImage | Provider | bytes)


def describe_default(default: DefaultImage) -> str | None:
    """The default image in a word, for settings shown to people."""
    if default is None or isinstance(default, bytes):
        return None if default is None else "bytes"
    if isinstance(default, Provider):
        return f"provider:{default.name}"
    return "placeholder"


async def default_output(rt: Runtime, gen: Generation, default: DefaultImage) -> Output:
    """The default image for ``gen``, checked like any provider's.

    Raises:
        AllProvidersFailed: There is none, or the default provider failed too.
        CircuitOpen: There is none and every provider's breaker was open.
    """
    request = gen.request
    if default is None:
        raise gen.failure()
    if isinstance(default, Provider):
        ctx = rt.context(default, deadline=gen.deadline, generation_id=gen.id)
        with rt.clock.deadline_scope(gen.deadline) as scope:
            try:
                output = await call_provider(default, request, ctx, rt.download)
            except Exception as exc:
                logger.warning("the default image provider failed: %r", exc)
                raise gen.failure() from exc
        if scope.cancelled_caught:
            logger.warning("the default image provider did not answer by the deadline")
            raise gen.failure()
        output = attrs.evolve(output, provider="default")
    else:
        if isinstance(default, bytes):
            data = default
        else:
            with rt.clock.deadline_scope(gen.deadline) as scope:
                data = await rt.default_images.image(request.width, request.height)
            if scope.cancelled_caught:
                logger.warning("the default image could not be drawn by the deadline")
                raise gen.failure()
        width, height = dimensions(data) or (None, None)
        output = Output(
            provider="default",
            data=data,
            content_type=check_image(data, rt.download, "default"),
            width=width,
            height=height,
        )
    await rt.records.count("default", "success", latency=0.0, until=gen.last_moment, gen=gen)
    return output
