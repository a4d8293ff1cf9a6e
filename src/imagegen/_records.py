"""A generation's bookkeeping: its record, its provider counters, its variant counters.

Statistics are worth less than the image: a counter that cannot be written is
logged and the generation goes on. The record is what ``gen.record(id)`` answers,
and a stored image must have one, so a failed record write is a StorageError.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

import anyio

from ._clock import Clock, utc_now
from ._errors import ImageGenError, StorageError
from ._events import Events
from ._generation import Generation
from ._models import ImageResult, ProviderDayStats, Record, VariantDayStats
from ._tracking import Tracker

__all__ = ["Records", "utc_day"]

logger = logging.getLogger("imagegen")


def utc_day(value: dt.date | dt.datetime | None) -> dt.date | None:
    """A UTC day from a date, an aware datetime (converted) or a naive one (taken as UTC)."""
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).date() if value.tzinfo else value.date()
    return value


class Records:
    """Writes what happened to generations and provider calls, and reads it back."""

    __slots__ = ("_clock", "_events", "_experiment", "_tracker")

    def __init__(
        self, tracker: Tracker, *, clock: Clock, events: Events, experiment: str | None
    ) -> None:
        self._tracker = tracker
        self._clock = clock
        self._events = events
        self._experiment = experiment

    async def save(
        self,
        gen: Generation,
        *,
        status: Any,
        result: ImageResult | None = None,
        error: ImageGenError | None = None,
    ) -> None:
        """Write the generation's record as it stands.

        Raises:
            StorageError: The backend refused the write.
        """
        record = Record(
            id=gen.id,
            status=status,
            provider=result.provider if result else None,
            request=gen.request.summary(),
            key=result.key if result else None,
            url=result.url if result else None,
            attempts=tuple(gen.attempts),
            error=error,
            created_at=gen.created_at,
            finished_at=None if status == "running" else utc_now(self._clock),
            is_default=result.is_default if result else False,
            variant=gen.variant,
        )
        try:
            await self._tracker.save(record)
        except Exception as exc:
            raise StorageError(f"could not write the record: {type(exc).__name__}: {exc}") from exc

    async def finished(
        self,
        gen: Generation,
        *,
        result: ImageResult | None = None,
        error: ImageGenError | None = None,
    ) -> None:
        """The generation ended: its final record, its variant's counters, the event."""
        status = "succeeded" if result is not None else "failed"
        await self.save(gen, status=status, result=result, error=error)
        if gen.variant is not None:
            await self._count_variant(gen, result)
        await self._events.emit(
            "generation_finished",
            gen.id,
            result.provider if result else None,
            {
                "status": status,
                "is_default": result.is_default if result else False,
                "elapsed": self._clock.monotonic() - gen.started,
                "error": error.kind if error else None,
            },
        )

    async def count(
        self,
        provider: str,
        outcome: str,
        *,
        error_kind: str | None = None,
        latency: float | None = None,
    ) -> None:
        """Count one provider call (success, failure or cancelled); never raises."""
        try:
            with anyio.CancelScope(shield=True):
                await self._tracker.count(
                    provider,
                    day=utc_now(self._clock).date(),
                    outcome=outcome,
                    error_kind=error_kind,
                    latency=latency,
                )
        except Exception:
            logger.warning("could not count a %s call to %s", outcome, provider, exc_info=True)

    async def _count_variant(self, gen: Generation, result: ImageResult | None) -> None:
        assert self._experiment is not None  # noqa: S101 - only generations with a variant
        assert gen.variant is not None  # noqa: S101
        outcome = "failed" if result is None else "default" if result.is_default else "succeeded"
        try:
            await self._tracker.count_variant(
                self._experiment,
                gen.variant,
                day=gen.created_at.date(),
                outcome=outcome,
                calls=sum(a.tries for a in gen.attempts),
                latency=self._clock.monotonic() - gen.started,
            )
        except Exception:
            logger.warning("could not count variant %s's generation", gen.variant, exc_info=True)

    async def load(self, generation_id: str) -> Record | None:
        """The record of one generation, or None."""
        return await self._tracker.load(generation_id)

    async def stats(
        self,
        since: dt.date | dt.datetime | None,
        until: dt.date | dt.datetime | None,
        provider: str | None,
    ) -> list[ProviderDayStats]:
        """Counts per UTC day and provider, ``since``..``until`` inclusive."""
        return await self._tracker.stats(
            since=utc_day(since), until=utc_day(until), provider=provider
        )

    async def variant_stats(
        self,
        since: dt.date | dt.datetime | None,
        until: dt.date | dt.datetime | None,
        experiment: str | None,
    ) -> list[VariantDayStats]:
        """Generations per UTC day and experiment variant, ``since``..``until`` inclusive."""
        return await self._tracker.variant_stats(
            since=utc_day(since), until=utc_day(until), experiment=experiment
        )
