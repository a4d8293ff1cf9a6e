"""One generation, start to end: record it, run the tiers, fall back, store, record again.

One time budget covers everything: providers stop at ``stop`` (keeping 10%, at
most a second, for the default image and storing), and ``generate()`` returns
by ``deadline``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from typing import Any

import anyio

from ._cancel import is_cancellation
from ._clock import utc_now
from ._config import Config
from ._default_image import default_output
from ._errors import GenerationCancelled, ImageGenError
from ._generation import Generation
from ._live_config import LiveConfig
from ._models import ImageResult
from ._request import ImageRequest
from ._runtime import Runtime
from ._store import store
from ._tiers import run_tiers

__all__ = ["Pipeline"]


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
    ) -> ImageResult:
        """Make one image for a valid ``request``, by the deadline (see ``generate()``)."""
        rt, live = self._rt, self._config
        await live.refresh()
        variant = None
        if live.experiment is not None:
            variant = live.experiment.assign(experiment_key)
        config = live.for_variant(variant)
        started = rt.clock.monotonic()
        gen = Generation(
            id=uuid.uuid4().hex,
            request=request,
            started=started,
            deadline=started + config.timeout,
            stop=started + config.timeout - min(1.0, config.timeout * 0.1),
            created_at=utc_now(rt.clock),
            job_id=job_id,
            variant=variant.name if variant is not None else None,
        )
        await rt.records.save(gen, status="running")
        summary: Callable[[], Mapping[str, Any]] = request.summary
        if variant is not None:

            def summary() -> Mapping[str, Any]:
                return {**request.summary(), "variant": gen.variant}

        await rt.events.emit("generation_started", gen.id, None, summary)
        try:
            return await self._run(gen, config)
        except ImageGenError as error:
            with anyio.CancelScope(shield=True):
                await rt.records.finished(gen, error=error)
            raise
        except BaseException as exc:
            if not is_cancellation(exc):
                raise
            with anyio.CancelScope(shield=True):
                cancelled = GenerationCancelled("the caller cancelled the generation")
                await rt.records.finished(gen, error=cancelled)
            raise

    async def _run(self, gen: Generation, config: Config) -> ImageResult:
        rt = self._rt
        output = None
        with rt.clock.deadline_scope(gen.stop):
            output = await run_tiers(rt, gen, config)
        if output is None:
            output = await default_output(rt, gen, config.default_image)
        return await store(rt, gen, config, output)
