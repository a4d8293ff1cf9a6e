"""One generation, start to end: record it, run the tiers, fall back, store, record again.

One time budget covers everything: providers stop at ``stop`` (keeping 10%, at
most a second, for the default image and storing), and ``generate()`` returns
by ``deadline``. Bookkeeping that the state backend is slow to take (the final
record) gets ``FINAL_GRACE`` more; past it, an image already stored is returned
anyway and its record is written in the background. Nothing else waits on the
backend: the "running" record and the breakers' reads share the providers' time.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import anyio
import attrs

from ._cancel import is_cancellation
from ._clock import utc_now
from ._config import Config
from ._default_image import default_output
from ._download import fetch_image
from ._errors import GenerationCancelled, ImageGenError, InvalidRequest, StorageError
from ._generation import FINAL_GRACE, Generation
from ._inputs import InputImage
from ._live_config import LiveConfig
from ._models import ImageResult
from ._previews import PreviewHandler
from ._request import ImageRequest
from ._runtime import Runtime
from ._store import store
from ._tiers import run_tiers

__all__ = ["Pipeline"]

logger = logging.getLogger("imagegen")


class Pipeline:
    """Runs generations with the generator's services and its settings in force."""

    __slots__ = ("_config", "_rt")

    def __init__(self, rt: Runtime, config: LiveConfig) -> None:
        self._rt = rt
        self._config = config

    async def generate(
        self,
        request: ImageRequest,
        *,
        job_id: str | None = None,
        experiment_key: str | None = None,
        limit: float | None = None,
        previews: int = 0,
        on_preview: PreviewHandler | None = None,
        on_admitted: Callable[[], Awaitable[None]] | None = None,
    ) -> ImageResult:
        """Make one image for a valid ``request``, by the deadline (see ``generate()``):
        ``limit`` seconds when given, else the settings' ``timeout``.

        At most ``max_in_flight`` generations run at once; the others wait their turn
        first, holding nothing but their place (no record, no state call). One still
        waiting when its providers' time is up goes on without them (the default image,
        or the error). ``on_admitted`` runs once it is its turn (a job says it runs).
        """
        rt = self._rt
        # The deadline counts from the call: waiting for a turn is part of it, and so is
        # a look at the shared settings.
        started = rt.clock.monotonic()
        total = self._config.current.timeout if limit is None else limit
        turn = await rt.admission.take(_stop(started, total))
        try:
            if on_admitted is not None:
                await on_admitted()
            return await self._admitted(
                request,
                started=started,
                queued=turn is None,
                job_id=job_id,
                experiment_key=experiment_key,
                limit=limit,
                previews=previews,
                on_preview=on_preview,
            )
        finally:
            if turn is not None:
                rt.admission.free(turn)

    async def _admitted(
        self,
        request: ImageRequest,
        *,
        started: float,
        queued: bool,
        job_id: str | None,
        experiment_key: str | None,
        limit: float | None,
        previews: int,
        on_preview: PreviewHandler | None,
    ) -> ImageResult:
        rt, live = self._rt, self._config
        await live.refresh()
        variant = None
        if live.experiment is not None:
            variant = live.experiment.assign(experiment_key)
        config = live.for_variant(variant)
        # A timeout given for this call wins over the settings in force (shared ones too).
        total = config.timeout if limit is None else limit
        gen = Generation(
            id=uuid.uuid4().hex,
            request=request,
            started=started,
            deadline=started + total,
            # Waited past its providers' time for a turn: none of them is called.
            stop=rt.clock.monotonic() if queued else _stop(started, total),
            created_at=utc_now(rt.clock),
            job_id=job_id,
            variant=variant.name if variant is not None else None,
            queued=queued,
            previews=previews,
            on_preview=on_preview,
        )
        summary: Callable[[], Mapping[str, Any]] = request.summary
        if variant is not None:

            def summary() -> Mapping[str, Any]:
                return {**request.summary(), "variant": gen.variant}

        await rt.events.emit("generation_started", gen.id, None, summary)
        # A list, not a variable: the type checker cannot see a scope swallow its cut.
        done: list[ImageResult] = []
        try:
            with rt.clock.deadline_scope(gen.last_moment):
                done.append(await self._run(gen, config))
        except ImageGenError as error:
            await self._failed(gen, error)
            raise
        except BaseException as exc:
            if not is_cancellation(exc):
                raise
            await self._take_back(gen)
            await self._failed(gen, GenerationCancelled("the caller cancelled the generation"))
            raise
        if done:
            return done[0]
        # Cut at the deadline: the state backend or the storage did not answer in time.
        return await self._late(gen)

    async def _run(self, gen: Generation, config: Config) -> ImageResult:
        rt = self._rt
        # n images: n parts at once, each through the tiers on its own.
        parts = [gen] if gen.request.n == 1 else [gen.for_image(i) for i in range(gen.request.n)]
        if not gen.queued:  # a turn that came after its providers' time calls none
            with rt.clock.deadline_scope(gen.stop):
                # The running record shares the providers' time: a backend that does not
                # answer costs them that time, never the deadline.
                await rt.records.started(gen)
                await self._call_providers(gen, parts, config)
        outputs = [part.output for part in parts if part.output is not None]
        if len(parts) > 1:
            gen.attempts = [attempt for part in parts for attempt in part.attempts]
            gen.output = outputs[0] if outputs else None
        if not outputs and not gen.attempts:
            gen.never_started([p.name for tier in config.tiers() for p in tier])
        if not outputs:
            outputs = [await default_output(rt, gen, config.default_image)]
        return await store(rt, gen, config, outputs)

    async def _call_providers(
        self, gen: Generation, parts: list[Generation], config: Config
    ) -> None:
        """Each part through the tiers (input images fetched first), all at once."""
        rt = self._rt
        if any(image.url for image in gen.request.images):
            await self._fetch_inputs(gen, parts)
        if len(parts) == 1:
            await run_tiers(rt, gen, config)
            return
        async with anyio.create_task_group() as tg:
            for part in parts:
                tg.start_soon(run_tiers, rt, part, config)

    async def _fetch_inputs(self, gen: Generation, parts: list[Generation]) -> None:
        """Fetch the request's input images given by URL, once, under the download
        policy, before any provider is called: each then gets the same checked bytes.

        Raises:
            InvalidRequest: An input could not be fetched (naming ``images[i]``).
        """
        rt, request = self._rt, gen.request
        fetched = []
        for index, image in enumerate(request.images):
            if image.url is None:
                fetched.append(image)
                continue
            field = f"images[{index}]"
            try:
                data, _ = await fetch_image(
                    image.url, http=rt.http_client(), policy=rt.download, provider=field
                )
            except ImageGenError as exc:
                raise InvalidRequest(f"{field} could not be fetched: {exc}", field=field) from None
            fetched.append(InputImage(data=data))
        for part in parts:
            part.request = attrs.evolve(part.request, images=tuple(fetched))

    async def _late(self, gen: Generation) -> ImageResult:
        """The deadline (and its grace) passed before the generation could finish."""
        rt = self._rt
        if gen.result is not None:
            logger.warning(
                "generation %s: the state backend did not take its record by the deadline; "
                "returning the image, recording it later",
                gen.id,
            )
            await rt.records.finish_later(gen, gen.result, rt.background)
            return gen.result
        error: ImageGenError = (
            StorageError("the image could not be stored by the deadline")
            if gen.output is not None
            else gen.failure()
        )
        await self._failed(gen, error)
        raise error

    async def _take_back(self, gen: Generation) -> None:
        """The caller gave up after images were stored: delete them, so that no stored
        object lacks its succeeded record. Only an object named after this generation:
        a content-addressed one may be shared with other records."""
        rt = self._rt
        # Every object put (or being put) so far, the result assembled or not.
        keys = [key for key in gen.stored if gen.id in key]
        if not keys or rt.storage is None:
            return
        with (
            anyio.CancelScope(shield=True),
            rt.clock.deadline_scope(rt.clock.monotonic() + FINAL_GRACE) as bound,
        ):
            for key in keys:
                try:
                    await rt.storage.delete(key)
                except Exception as exc:  # noqa: BLE001 - the caller's cancellation goes on
                    logger.warning("generation %s: could not delete %s: %r", gen.id, key, exc)
        if bound.cancelled_caught:
            logger.warning("generation %s: deleting %s took too long", gen.id, ", ".join(keys))

    async def _failed(self, gen: Generation, error: ImageGenError) -> None:
        """The failed generation's final record: shielded, bounded, never raising."""
        rt = self._rt
        until = max(rt.clock.monotonic() + FINAL_GRACE, gen.last_moment)
        with anyio.CancelScope(shield=True), rt.clock.deadline_scope(until):
            try:
                await rt.records.finished(gen, error=error)
            except StorageError as exc:
                logger.warning("generation %s: could not write its final record: %s", gen.id, exc)


def _stop(started: float, total: float) -> float:
    """When providers stop: 10 % (at most a second) before the deadline, kept for the
    default image and the bookkeeping."""
    return started + total - min(1.0, total * 0.1)
