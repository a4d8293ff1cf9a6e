"""Previews: partial images a vendor streams while it draws, handed to the caller.

``generate(..., on_preview=handler)`` asks providers that can (OpenAI's GPT image
models) for ``previews`` partial images, and calls ``handler`` with each
:class:`Preview` as it arrives, from the provider's own task: a slow handler
slows that call, a failing one is logged and the call goes on. Previews are for
showing progress; only the final image is stored.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable

import attrs

from ._errors import InvalidRequest
from ._image import sniff

__all__ = ["MAX_PREVIEWS", "Preview", "PreviewHandler", "check_previews", "preview_sink"]

logger = logging.getLogger("imagegen")

#: Partial images one call may stream (OpenAI's ``partial_images`` is 0 to 3).
MAX_PREVIEWS = 3


@attrs.frozen(kw_only=True)
class Preview:
    """One partial image of a generation, as the vendor streamed it.

    Args:
        generation_id: The generation it belongs to.
        provider: The provider that drew it (with a race, each may send its own).
        index: Its place among that call's previews, 0 first (rougher first).
        image: Which of the request's ``n`` images it is a preview of (0 first).
        data: The image bytes (not stored anywhere).
        content_type: Their MIME type, from their magic bytes.
    """

    generation_id: str
    provider: str
    index: int
    image: int
    data: bytes = attrs.field(repr=False)
    content_type: str


#: What ``on_preview`` takes: a function of one :class:`Preview`, sync or async.
PreviewHandler = Callable[[Preview], object]


def check_previews(on_preview: object, previews: object) -> int:
    """How many previews to ask each call for: 0 without a handler.

    Raises:
        InvalidRequest: ``on_preview`` is not callable, or ``previews`` is not 1 to 3.
    """
    if on_preview is None:
        return 0
    if not callable(on_preview):
        raise InvalidRequest("on_preview must be a callable taking a Preview", field="on_preview")
    if not isinstance(previews, int) or isinstance(previews, bool):
        previews = None
    if previews is None or not 1 <= previews <= MAX_PREVIEWS:
        raise InvalidRequest(
            f"previews must be a whole number from 1 to {MAX_PREVIEWS}", field="previews"
        )
    return previews


def preview_sink(
    handler: PreviewHandler, generation_id: str, provider: str, image: int
) -> Callable[[bytes, int], Awaitable[None]]:
    """What one call's ``ctx.preview`` calls: checks the bytes, then the handler."""

    async def sink(data: bytes, index: int) -> None:
        content_type = sniff(data)
        if content_type is None:
            logger.warning("%s sent a preview that is not an image; dropped", provider)
            return
        preview = Preview(
            generation_id=generation_id,
            provider=provider,
            index=index,
            image=image,
            data=data,
            content_type=content_type,
        )
        try:
            outcome = handler(preview)
            if inspect.isawaitable(outcome):
                await outcome
        except Exception:
            logger.exception("on_preview failed for a preview from %s", provider)

    return sink
