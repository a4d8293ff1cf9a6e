"""The default image: what ``generate()`` returns when every provider failed.

``DEFAULT`` is the built-in one (the prompt's placeholder landscape, muted, at
the requested size); a generator may instead hold image bytes, a Provider, or
None (raise instead).
"""

from __future__ import annotations

import logging
from typing import Final

import attrs

from ._download import check_image
from ._generation import Generation
from ._image import dimensions
from ._output import Output, call_provider
from ._runtime import Runtime
from .providers import Placeholder, Provider

__all__ = [
    "DEFAULT",
    "DefaultImage",
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
            data = Placeholder.render(
                request.prompt, request.width, request.height, request.seed, muted=True
            )
        width, height = dimensions(data) or (None, None)
        output = Output(
            provider="default",
            data=data,
            content_type=check_image(data, rt.download, "default"),
            width=width,
            height=height,
        )
    await rt.records.count("default", "success", latency=0.0)
    return output
