"""Storing the winner: put the bytes (retried), then build the result and its final record.

A produced image is never thrown away because bookkeeping failed: when the state
backend refuses the final record, the image is returned all the same and its
record is written in the background (``Records.finish_later``).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence

import anyio
import anyio.to_thread
import attrs

from ._config import Config
from ._errors import ImageGenError, StorageError
from ._generation import Generation
from ._image import extension_for
from ._models import GeneratedImage, ImageResult, RequestWarning, total_cost
from ._output import Output
from ._runtime import Runtime
from ._warnings import request_warnings
from .storage import Storage, StoredObject

__all__ = ["HASH_IN_THREAD", "sha256_hex", "store"]

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


#: Bytes above which an image is hashed in a worker thread: hashing 2 MiB takes about a
#: millisecond, which the event loop would otherwise stand still for; a small image
#: costs less to hash than the hop to a thread.
HASH_IN_THREAD = 256 * 1024


async def sha256_hex(data: bytes) -> str:
    """``data``'s SHA-256, hex; in a worker thread above ``HASH_IN_THREAD`` bytes."""
    if len(data) <= HASH_IN_THREAD:
        return hashlib.sha256(data).hexdigest()
    return await anyio.to_thread.run_sync(lambda: hashlib.sha256(data).hexdigest())


async def _stored(
    rt: Runtime, gen: Generation, config: Config, output: Output, index: int
) -> GeneratedImage:
    """Store one image (unless it is a hotlink): image ``index`` of the generation."""
    data = output.data
    digest = await sha256_hex(data) if data is not None else ""
    key = url = None
    storage = rt.storage
    if output.hotlink is not None:
        url = output.hotlink
    elif storage is not None:
        day = gen.created_at
        name = gen.id if index == 0 else f"{gen.id}-{index}"
        key = f"{rt.key_prefix}{day:%Y/%m/%d}/{name}.{extension_for(output.content_type)}"
        metadata = {
            "generation-id": gen.id,
            "provider": output.provider,
            "prompt-sha256": hashlib.sha256(gen.request.prompt.encode()).hexdigest(),
        }
        # Noted before the put: one cut off midway may have left its object behind.
        gen.stored.append(key)
        stored = await _put(rt, gen, config, storage, key, output, metadata)
        key, url = stored.key, stored.url
    return GeneratedImage(
        url=url,
        key=key,
        provider=output.provider,
        content_type=output.content_type,
        size=len(data) if data is not None else 0,
        width=output.width,
        height=output.height,
        sha256=digest,
        data=data if storage is None else None,
    )


async def _store_all(
    rt: Runtime, gen: Generation, config: Config, outputs: Sequence[Output]
) -> list[tuple[Output, GeneratedImage]]:
    """Store every image at once; the ones stored, in order (a failure only when none is)."""
    if len(outputs) == 1:
        return [(outputs[0], await _stored(rt, gen, config, outputs[0], 0))]
    done: list[GeneratedImage | StorageError | None] = [None] * len(outputs)

    async def one(index: int, output: Output) -> None:
        try:
            done[index] = await _stored(rt, gen, config, output, index)
        except StorageError as exc:
            done[index] = exc
            logger.warning("generation %s: image %d was not stored: %s", gen.id, index, exc)

    async with anyio.create_task_group() as tg:
        for index, output in enumerate(outputs):
            tg.start_soon(one, index, output)
    stored = [
        (o, image)
        for o, image in zip(outputs, done, strict=True)
        if isinstance(image, GeneratedImage)
    ]
    if not stored:
        raise next(error for error in done if isinstance(error, StorageError))
    return stored


def _warnings(gen: Generation, outputs: Sequence[Output], made: int) -> tuple[RequestWarning, ...]:
    """Every image's warnings, each once, and one for images asked for but not made."""
    found: dict[RequestWarning, None] = {}
    for output in outputs:
        found.update(dict.fromkeys(request_warnings(gen.request, output)))
    asked = gen.request.n
    if made < asked:
        by = "the default image" if outputs[0].provider == "default" else "the providers"
        found[RequestWarning("n", f"asked for {asked} images, {made} made by {by}")] = None
    return tuple(found)


async def store(
    rt: Runtime, gen: Generation, config: Config, outputs: Sequence[Output]
) -> ImageResult:
    """Store the images (but hotlinks), write the final record, return the result.

    Raises:
        StorageError: No image could be stored, or the record could not be written.
    """
    stored = await _store_all(rt, gen, config, outputs)
    images = [image for _, image in stored]
    output, first = stored[0]
    result = ImageResult(
        id=gen.id,
        **attrs.asdict(first, recurse=False),  # the result's own image: the first
        elapsed=rt.clock.monotonic() - gen.started,
        attempts=tuple(gen.attempts),
        is_default=output.provider == "default",
        source_url=output.source_url,
        attribution=output.attribution,
        created_at=gen.created_at,
        variant=gen.variant,
        warnings=_warnings(gen, outputs, len(images)),
        cost=total_cost(gen.attempts),
        images=tuple(images),
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
