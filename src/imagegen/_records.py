"""A generation's bookkeeping: its record, its provider counters, its variant counters.

Statistics are worth less than the image: a counter that cannot be written is
logged and the generation goes on, and so is a "running" record. The final record
is what ``gen.record(id)`` answers and what a stored image is found by; when the
backend cannot take it in time, the image is returned anyway and the record is
written in the background (see :meth:`Records.finish_later`).
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import anyio.abc
import attrs

from ._clock import Clock, utc_now
from ._errors import GenerationLost, ImageGenError, StorageError
from ._events import Events
from ._generation import Generation
from ._models import ImageResult, ProviderDayStats, Record, VariantDayStats, total_cost
from ._tracking import Tracker

__all__ = ["COUNT_BOUND", "LOST_AFTER", "RUNNING_BOUND", "Records", "utc_day"]

logger = logging.getLogger("imagegen")

#: Seconds a generation waits for its "running" record before calling providers anyway.
RUNNING_BOUND = 0.25
#: Seconds one call's counters may take: a stalled backend costs each call this, not
#: the rest of its generation's time (a race's losers count while the winner waits).
COUNT_BOUND = 0.25
_WARN_EVERY = 60.0  # seconds between warnings about running records that were not written
#: Pauses before each try at a final record that could not be written in time: about
#: half a minute in all, past a backend's restart or a failover. Closing the generator
#: cuts the pauses short and makes one last try.
_FINISH_PAUSES = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0)
_FINISH_BOUND = 1.0  # seconds one late try may take
_CLOSING_BOUND = 2.0  # seconds closing the generator gives late records, in all
_CLOSING_PAUSE = 0.1  # seconds between their tries then
#: Seconds one try may take while closing: under the stall watch's ``slow_call`` (1 s),
#: so that one stalled try is that try's trouble and does not mark the backend down
#: (which would refuse the next tries until a probe a second later, past the 2 s).
_CLOSING_TRY_BOUND = 0.5
#: Seconds past its deadline after which a "running" record reads as failed: far past
#: every late write (the final record's background tries end within seconds).
LOST_AFTER = 60.0


def utc_day(value: dt.date | dt.datetime | None) -> dt.date | None:
    """A UTC day from a date, an aware datetime (converted) or a naive one (taken as UTC)."""
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).date() if value.tzinfo else value.date()
    return value


class Records:
    """Writes what happened to generations and provider calls, and reads it back."""

    __slots__ = (
        "_clock",
        "_close_by",
        "_closed",
        "_closing",
        "_events",
        "_experiment",
        "_spent",
        "_tracker",
        "_warned_at",
    )

    def __init__(
        self,
        tracker: Tracker,
        *,
        clock: Clock,
        events: Events,
        experiment: str | None,
        spent: Callable[[str, float | None], None] | None = None,
    ) -> None:
        self._tracker = tracker
        self._spent = spent  # told each call's cost once it is counted (spending caps)
        self._clock = clock
        self._events = events
        self._experiment = experiment
        self._warned_at = -math.inf
        self._closed = False
        self._close_by = math.inf
        self._closing: anyio.Event | None = None  # made in the event loop, on first use

    async def save(
        self,
        gen: Generation,
        *,
        status: Any,
        result: ImageResult | None = None,
        error: ImageGenError | None = None,
        counts: Mapping[str, int] | None = None,
    ) -> None:
        """Write the generation's record as it stands (with ``counts``, in one write).

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
            deadline=gen.created_at + dt.timedelta(seconds=gen.deadline - gen.started),
            warnings=result.warnings if result else (),
            keys=tuple(i.key for i in result.images if i.key) if result else (),
        )
        try:
            batched = await self._tracker.save(record, counts)
        except Exception as exc:
            raise StorageError(f"could not write the record: {type(exc).__name__}: {exc}") from exc
        if counts and not batched:  # a backend without write_batch: the counters apart
            await self._add(
                lambda: self._tracker.add_once(gen.id, counts),
                f"the calls of generation {gen.id}",
                gen.last_moment,
            )

    async def started(self, gen: Generation) -> None:
        """The generation's "running" record, waited for at most ``RUNNING_BOUND`` seconds.

        A failure or a slow backend is logged (now and then), never raised: the
        providers' time is not spent on it.
        """
        problem = f"no answer within {RUNNING_BOUND:g}s"
        with self._clock.deadline_scope(self._clock.monotonic() + RUNNING_BOUND):
            try:
                await self.save(gen, status="running")
            except StorageError as exc:
                problem = str(exc)
            else:
                return
        now = self._clock.monotonic()
        if now - self._warned_at >= _WARN_EVERY:
            self._warned_at = now
            logger.warning("could not write a running record (%s); generating anyway", problem)

    async def finished(
        self,
        gen: Generation,
        *,
        result: ImageResult | None = None,
        error: ImageGenError | None = None,
    ) -> None:
        """The generation ended: its final record with its calls' and its variant's
        counters (one write), then the event.

        Raises:
            StorageError: The backend refused the write. A later try (a record written
                late) carries the same counters, which the backend adds once per
                record: a write that failed or was cut off may have landed all the same.
        """
        status = "succeeded" if result is not None else "failed"
        counts = gen.pending.take()
        if gen.variant is not None:
            for key, amount in self._variant_counts(gen, result).items():
                counts[key] = counts.get(key, 0) + amount
        await self.save(gen, status=status, result=result, error=error, counts=counts)
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
        until: float,
        error_kind: str | None = None,
        latency: float | None = None,
        cost: float | None = 0.0,
        gen: Generation | None = None,
    ) -> None:
        """Count one provider call (success, failure or cancelled) and its cost; never raises.

        A call of ``gen`` is held for its final record (one write for both, see
        :class:`~imagegen._generation.PendingCounts`), unless that is written already.
        Otherwise it is written now: shielded from cancellation (a race lost, a caller
        gone), so that the counts add up to the records' tries, but not waited for past
        ``until`` nor for more than ``COUNT_BOUND`` seconds. One backend call holds all
        of a call's counters: ``requests == successes + failures + cancelled`` whatever
        happens.
        """
        if self._spent is not None:
            self._spent(provider, cost)
        amounts = self._tracker.call_counts(
            provider,
            day=utc_now(self._clock).date(),
            outcome=outcome,
            error_kind=error_kind,
            latency=latency,
            cost=cost,
        )
        if gen is not None and gen.pending.hold(amounts):
            return
        await self._add(
            lambda: self._tracker.add(amounts), f"a {outcome} call to {provider}", until
        )

    async def _add(self, add: Callable[[], Awaitable[None]], what: str, until: float) -> None:
        """``add()`` counters, shielded, bounded by ``until`` and ``COUNT_BOUND``; a failure
        is logged: statistics never fail a generation."""
        bound = min(until, self._clock.monotonic() + COUNT_BOUND)
        with self._clock.deadline_scope(bound) as scope:
            scope.shield = True
            try:
                await add()
            except Exception as exc:  # noqa: BLE001 - statistics never fail a generation
                logger.warning("could not count %s: %r", what, exc)

    async def finish_later(
        self, gen: Generation, result: ImageResult, background: anyio.abc.TaskGroup | None
    ) -> None:
        """The final record of a generation whose image was returned without it.

        Written from ``background`` (the generator's task group), tried again and
        again for about half a minute, or until :meth:`closing` (then once more).
        Without a background, or if every try fails, the record stays "running" (it
        reads as failed a minute past its deadline) and the miss is logged with the
        image's key.
        """
        if background is None:
            logger.error(
                "generation %s: image %s stored, but its record could not be written",
                gen.id,
                result.key,
            )
            return
        background.start_soon(self._finish_retrying, gen, result)

    def closing(self) -> None:
        """The generator is closing: late records stop pausing between tries, and get
        ``_CLOSING_BOUND`` seconds more in all."""
        self._closed = True
        self._close_by = self._clock.monotonic() + _CLOSING_BOUND
        if self._closing is not None:
            self._closing.set()

    async def _finish_retrying(self, gen: Generation, result: ImageResult) -> None:
        if self._closing is None:
            self._closing = anyio.Event()
        pauses = iter(_FINISH_PAUSES)
        while True:
            if self._closed:
                if self._clock.monotonic() >= self._close_by:
                    break
            else:
                pause = next(pauses, None)
                if pause is None:
                    break
                with self._clock.deadline_scope(self._clock.monotonic() + pause):
                    await self._closing.wait()
            if await self._finish_once(gen, result):
                logger.info("generation %s: its record was written late", gen.id)
                return
            if self._closed:
                # Quick tries, not one: a backend that fails a call now and then (or is
                # being probed after a stall) mostly answers the next.
                await self._clock.sleep(_CLOSING_PAUSE)
        logger.error(
            "generation %s: image %s stored, but its record could not be written",
            gen.id,
            result.key,
        )

    async def _finish_once(self, gen: Generation, result: ImageResult) -> bool:
        """One bounded try at the final record; whether it was written."""
        written: list[bool] = []  # a list: the type checker cannot see a scope swallow its cut
        bound = _CLOSING_TRY_BOUND if self._closed else _FINISH_BOUND
        with self._clock.deadline_scope(self._clock.monotonic() + bound):
            try:
                await self.finished(gen, result=result)
            except StorageError:
                return False
            written.append(True)
        return bool(written)

    def _variant_counts(self, gen: Generation, result: ImageResult | None) -> dict[str, int]:
        assert self._experiment is not None  # noqa: S101 - only generations with a variant
        assert gen.variant is not None  # noqa: S101
        outcome = "failed" if result is None else "default" if result.is_default else "succeeded"
        return self._tracker.variant_counts(
            self._experiment,
            gen.variant,
            day=gen.created_at.date(),
            outcome=outcome,
            calls=sum(a.tries for a in gen.attempts),
            latency=self._clock.monotonic() - gen.started,
            cost=total_cost(gen.attempts),
        )

    async def load(self, generation_id: str) -> Record | None:
        """The record of one generation, or None.

        A record still "running" ``LOST_AFTER`` seconds past its deadline reads as
        failed: the process that ran it stopped (a crash, a kill) before it ended.
        """
        record = await self._tracker.load(generation_id)
        if record is None or record.status != "running" or record.deadline is None:
            return record
        if utc_now(self._clock) - record.deadline < dt.timedelta(seconds=LOST_AFTER):
            return record
        lost = GenerationLost("the generation's process stopped before it ended")
        return attrs.evolve(record, status="failed", error=lost)

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
