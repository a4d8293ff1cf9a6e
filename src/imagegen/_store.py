"""Storing the winner: put the bytes (retried), then build the result and its final record.

A produced image is never thrown away because bookkeeping failed: when the state
backend refuses the final record, the image is returned all the same and its
record is written in the background (``Records.finish_later``).
"""

from __future__ import annotations

import hashlib
import logging

from ._config import Config
from ._errors import ImageGenError, StorageError
from ._generation import Generation
from ._image import extension_for
from ._models import ImageResult, total_cost
from ._output import Output
from ._runtime import Runtime
from ._warnings import request_warnings
from .storage import Storage, StoredObject

__all__ = ["store"]

logger = logging.getLogger("imagegen")


async def _put(
    rt: Runtime,
    gen: Generation,
    config: Config,
    storage: Storage,
    key: str,
    output: Output,
    metadata: dict[str, str],
) -> StoredObject:
    """``storage.put``, retried per ``config.retry`` while the deadline allows."""
    assert output.data is not None  # noqa: S101 - only hotlinks come without bytes
    data = output.data

    async def put(_: int) -> StoredObject:
        try:
            return await storage.put(key, data, content_type=output.content_type, metadata=metadata)
        except StorageError:
            raise
        except Exception as exc:
            # A storage may raise anything: it leaves as a StorageError.
            msg = f"storing {key!r} failed: {type(exc).__name__}: {exc}"
            raise StorageError(msg) from exc

    async def log_retry(_tries: int, delay: float, error: ImageGenError) -> None:
        logger.info("storing %s failed (%s); retrying in %.2fs", key, error, delay)

    return await config.retry.run(
        put,
        clock=rt.clock,
        deadline=gen.deadline,
        retryable=lambda error: isinstance(error, StorageError),
        before_sleep=log_retry,
    )


async def store(rt: Runtime, gen: Generation, config: Config, output: Output) -> ImageResult:
    """Store ``output`` (unless it is a hotlink), write the final record, return the result.

    Raises:
        StorageError: The image or its record could not be written.
    """
    data = output.data
    digest = hashlib.sha256(data).hexdigest() if data is not None else ""
    key = url = None
    storage = rt.storage
    if output.hotlink is not None:
        url = output.hotlink
    elif storage is not None:
        day = gen.created_at
        key = f"{rt.key_prefix}{day:%Y/%m/%d}/{gen.id}.{extension_for(output.content_type)}"
        metadata = {
            "generation-id": gen.id,
            "provider": output.provider,
            "prompt-sha256": hashlib.sha256(gen.request.prompt.encode()).hexdigest(),
        }
        stored = await _put(rt, gen, config, storage, key, output, metadata)
        key, url = stored.key, stored.url
    result = ImageResult(
        id=gen.id,
        url=url,
        key=key,
        provider=output.provider,
        content_type=output.content_type,
        size=len(data) if data is not None else 0,
        width=output.width,
        height=output.height,
        sha256=digest,
        elapsed=rt.clock.monotonic() - gen.started,
        attempts=tuple(gen.attempts),
        is_default=output.provider == "default",
        source_url=output.source_url,
        attribution=output.attribution,
        created_at=gen.created_at,
        variant=gen.variant,
        warnings=request_warnings(gen.request, output),
        cost=total_cost(gen.attempts),
        data=data if storage is None else None,
    )
    gen.result = result
    try:
        await rt.records.finished(gen, result=result)
    except StorageError as exc:
        logger.warning(
            "generation %s: could not write its record (%s); returning the image, "
            "recording it later",
            gen.id,
            exc,
        )
        await rt.records.finish_later(gen, result, rt.background)
    return result
