"""Records and statistics, kept in a StateBackend.

Records are one JSON value per generation. Statistics are counters, one per
(UTC day, provider, what), bumped with atomic ``incr`` so concurrent
generations and processes never lose counts; latencies go into a fixed,
log-spaced histogram (one counter per call) whose quantiles are read back as the
geometric midpoint of the bucket they fall in.
"""

from __future__ import annotations

import bisect
import datetime as dt
import json
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

from ._models import ProviderDayStats, Record, VariantDayStats
from .state import StateBackend, SupportsIncrMany, SupportsWriteBatch

__all__ = ["COUNTED_TTL", "LATENCY_BUCKETS", "Tracker", "batch_incr", "batch_write"]

#: Latency buckets per decade: each bucket's upper edge is ``10 ** (1 / 10)``
#: (about 1.26) times the one before, so a quantile read back is within 12% of the truth.
_PER_DECADE = 10
#: Upper edges (seconds) of the latency histogram, from 1 ms to about 631 s (10 ** 5.8
#: ms, past the longest deadline worth counting): bucket ``i`` holds latencies in
#: ``(LATENCY_BUCKETS[i - 1], LATENCY_BUCKETS[i]]``, bucket 0 everything up to 1 ms,
#: and bucket ``len(LATENCY_BUCKETS)`` (open) everything above the last edge.
LATENCY_BUCKETS = tuple(1e-3 * 10 ** (k / _PER_DECADE) for k in range(59))
#: The counter of bucket ``i`` is ``<base>lt.<i>``. Counters of the earlier, linear
#: layout (``lat.<i>``, 50 ms first bucket) mean other ranges and are not read.
_LATENCY = "lt."
_DAY = 86_400
#: Costs are counted in whole micro-dollars (counters are integers).
_MICROS = 1_000_000
#: Seconds the mark that a record's calls are counted is kept: past every late try at
#: that record (about half a minute), so that none counts them twice.
COUNTED_TTL = 3600.0


class Tracker:
    """Writes and reads records and statistics under ``prefix`` in ``state``.

    Args:
        state: The backend.
        prefix: The namespace prefix (``"staging:"``), or "".
        record_ttl: Seconds a record is kept.
        stats_ttl: Seconds a day's counters are kept.
    """

    def __init__(
        self,
        state: StateBackend,
        *,
        prefix: str = "",
        record_ttl: float = 30 * _DAY,
        stats_ttl: float = 90 * _DAY,
    ) -> None:
        self.state = state
        self._records = f"{prefix}record:"
        self._stats = f"{prefix}stats:"
        self._variants = f"{prefix}vstats:"
        self._counted = f"{prefix}counted:"
        self._record_ttl = record_ttl
        self._stats_ttl = stats_ttl
        self._incr_many = batch_incr(state)
        self._write_batch = batch_write(state)

    async def save(self, record: Record, counts: Mapping[str, int] | None = None) -> bool:
        """Write (or overwrite) a record, with ``counts`` added to the statistics once
        per record (a save tried again counts them once), in the same backend call when
        it has ``write_batch``; whether they were (else they are the caller's to
        :meth:`add_once`)."""
        key, value = self._records + record.id, json.dumps(record.to_dict()).encode()
        if counts and self._write_batch is not None:
            await self._write_batch(
                {key: (value, self._record_ttl)},
                counts,
                ttl=self._stats_ttl,
                once=(self._counted + record.id, COUNTED_TTL),
            )
            return True
        await self.state.set(key, value, ttl=self._record_ttl)
        return False

    async def add_once(self, record_id: str, amounts: Mapping[str, int]) -> None:
        """:meth:`add` the counts of a record's calls, unless they were added already (a
        claim first, then the counters: never twice, lost if cut in between)."""
        if await self.state.set_if_absent(self._counted + record_id, b"1", ttl=COUNTED_TTL):
            await self.add(amounts)

    async def load(self, generation_id: str) -> Record | None:
        """The record of one generation, or None."""
        raw = await self.state.get(self._records + generation_id)
        return None if raw is None else Record.from_dict(json.loads(raw))

    def call_counts(
        self,
        provider: str,
        *,
        day: dt.date,
        outcome: str,
        error_kind: str | None = None,
        latency: float | None = None,
        cost: float | None = 0.0,
    ) -> dict[str, int]:
        """The counters of one provider call (for :meth:`add`, or :meth:`save` with its
        generation's record): ``outcome`` is success, failure or cancelled; ``cost`` its
        USD (None: not known)."""
        base = f"{self._stats}{day.isoformat()}:{provider}:"
        amounts = {base + "requests": 1, base + outcome: 1}
        if error_kind is not None:
            amounts[f"{base}kind.{error_kind}"] = 1
        if latency is not None:
            amounts[base + _latency_counter(latency)] = 1
        _count_cost(amounts, base, cost)
        return amounts

    async def spent(self, day: dt.date, providers: Iterable[str]) -> dict[str, float]:
        """USD each provider's calls of ``day`` are counted as costing (known costs only)."""
        spent: dict[str, float] = {}
        for provider in providers:
            raw = await self.state.get(f"{self._stats}{day.isoformat()}:{provider}:cost.micros")
            spent[provider] = 0.0 if raw is None else int(raw) / _MICROS
        return spent

    async def count(self, provider: str, **call: Any) -> None:
        """Count one provider call now (the fields of :meth:`call_counts`)."""
        await self.add(self.call_counts(provider, **call))

    async def count_variant(self, experiment: str, variant: str, **generation: Any) -> None:
        """Count one generation of a variant now (the fields of :meth:`variant_counts`)."""
        await self.add(self.variant_counts(experiment, variant, **generation))

    async def add(self, amounts: Mapping[str, int]) -> None:
        """Add ``amounts`` to their counters (one call when the backend batches)."""
        if self._incr_many is not None:
            await self._incr_many(amounts, ttl=self._stats_ttl)
            return
        for key, amount in amounts.items():
            await self.state.incr(key, amount, ttl=self._stats_ttl)

    async def stats(
        self,
        *,
        since: dt.date | None = None,
        until: dt.date | None = None,
        provider: str | None = None,
    ) -> list[ProviderDayStats]:
        """One row per (day, provider) within ``since``..``until`` (inclusive), sorted."""
        rows = await self._counters(self._stats, 2, since=since, until=until, name=provider)
        return [_row(day, name, counters) for (day, name), counters in sorted(rows.items())]

    async def _counters(
        self,
        prefix: str,
        labels: int,
        *,
        since: dt.date | None,
        until: dt.date | None,
        name: str | None,
    ) -> dict[tuple[str, ...], dict[str, int]]:
        """Counters under ``prefix<day>:<label>...:<what>``, grouped by (day, labels...).

        ``name`` keeps only rows whose first label (the provider, the experiment) is it.
        """
        rows: dict[tuple[str, ...], dict[str, int]] = defaultdict(dict)
        for key in await self.state.scan(prefix):
            parts = key[len(prefix) :].split(":", labels)
            if len(parts) != labels + 1:
                continue  # not one of our counters
            *group, what = parts
            date = dt.date.fromisoformat(group[0])
            if (since and date < since) or (until and date > until) or (name and group[1] != name):
                continue
            raw = await self.state.get(key)
            if raw is not None:
                rows[tuple(group)][what] = int(raw)
        return rows

    def variant_counts(
        self,
        experiment: str,
        variant: str,
        *,
        day: dt.date,
        outcome: str,
        calls: int,
        latency: float,
        cost: float | None = 0.0,
    ) -> dict[str, int]:
        """The counters of one generation of a variant: ``outcome`` is succeeded, default
        or failed."""
        base = f"{self._variants}{day.isoformat()}:{experiment}:{variant}:"
        amounts = {base + "generations": 1, base + outcome: 1}
        if calls:
            amounts[base + "calls"] = calls
        amounts[base + _latency_counter(latency)] = 1
        _count_cost(amounts, base, cost)
        return amounts

    async def variant_stats(
        self,
        *,
        since: dt.date | None = None,
        until: dt.date | None = None,
        experiment: str | None = None,
    ) -> list[VariantDayStats]:
        """One row per (day, experiment, variant) within ``since``..``until``, sorted."""
        rows = await self._counters(self._variants, 3, since=since, until=until, name=experiment)
        return [
            VariantDayStats(
                day=dt.date.fromisoformat(day),
                experiment=name,
                variant=variant,
                generations=counters.get("generations", 0),
                succeeded=counters.get("succeeded", 0),
                defaults=counters.get("default", 0),
                failed=counters.get("failed", 0),
                calls=counters.get("calls", 0),
                **_quantiles(counters),
                **_costs(counters),
            )
            for (day, name, variant), counters in sorted(rows.items())
        ]


def _latency_counter(latency: float) -> str:
    """The name of the one histogram counter a call of ``latency`` seconds bumps."""
    return f"{_LATENCY}{bisect.bisect_left(LATENCY_BUCKETS, latency)}"


def _quantiles(counters: dict[str, int]) -> dict[str, Any]:
    histogram = [counters.get(f"{_LATENCY}{i}", 0) for i in range(len(LATENCY_BUCKETS) + 1)]
    return {
        "p50": quantile(histogram, 0.5),
        "p90": quantile(histogram, 0.9),
        "p99": quantile(histogram, 0.99),
    }


def _row(day: str, provider: str, counters: dict[str, int]) -> ProviderDayStats:
    return ProviderDayStats(
        day=dt.date.fromisoformat(day),
        provider=provider,
        requests=counters.get("requests", 0),
        successes=counters.get("success", 0),
        failures=counters.get("failure", 0),
        cancelled=counters.get("cancelled", 0),
        failures_by_kind={
            what.removeprefix("kind."): n
            for what, n in sorted(counters.items())
            if what.startswith("kind.")
        },
        **_quantiles(counters),
        **_costs(counters),
    )


def _count_cost(amounts: dict[str, int], base: str, cost: float | None) -> None:
    """Add a call's (or a generation's) cost to its counters: micro-dollars, or one
    more whose cost is not known."""
    if cost is None:
        amounts[base + "cost.unknown"] = 1
        return
    micros = round(cost * _MICROS)
    if micros:
        amounts[base + "cost.micros"] = micros


def _costs(counters: dict[str, int]) -> dict[str, Any]:
    return {
        "cost": counters.get("cost.micros", 0) / _MICROS,
        "cost_unknown": counters.get("cost.unknown", 0),
    }


def quantile(histogram: list[int], q: float) -> float | None:
    """Estimate a quantile from bucket counts: a representative value of its bucket.

    The bucket is the first whose running count reaches ``q`` of the total (nearest
    rank); its value is the bucket's geometric midpoint, ``sqrt(lower * upper)``, so
    the estimate is within a factor ``10 ** (1 / 20)`` (about 1.12) of any latency in
    that bucket. Bucket 0 (up to 1 ms) is read as if it were as wide as the others
    (about 0.89 ms); the open bucket above the last edge reports that edge (a floor).
    """
    total = sum(histogram)
    if total == 0:
        return None
    rank = max(q * total, 1e-9)
    seen = 0
    for index, count in enumerate(histogram):  # noqa: B007 - index is used after
        seen += count
        if count and seen >= rank:
            break
    if index >= len(LATENCY_BUCKETS):
        return LATENCY_BUCKETS[-1]  # the open-ended bucket: its lower bound is all we know
    return 1e-3 * 10 ** ((index - 0.5) / _PER_DECADE)


def batch_incr(state: StateBackend) -> Callable[..., Awaitable[None]] | None:
    """The backend's ``incr_many`` (one SQLite transaction, one Redis round trip for a
    generation's counters), unless it has none or a subclass wraps ``incr`` alone.

    The capability is the :class:`~imagegen.state.SupportsIncrMany` protocol. A
    subclass of a batching backend that overrides ``incr`` (to instrument or shard it)
    still passes that check, but the ``incr_many`` it inherits would go around it: then
    each counter goes through its ``incr``, as the protocol's docstring promises.
    """
    if not isinstance(state, SupportsIncrMany) or _wraps_incr_alone(type(state)):
        return None
    return state.incr_many


def batch_write(state: StateBackend) -> Callable[..., Awaitable[None]] | None:
    """The backend's ``write_batch`` (a record and its counters in one SQLite transaction,
    one Redis round trip), unless it has none, batches no counters, or a subclass wraps
    ``set`` or ``incr`` below it (see :class:`~imagegen.state.SupportsWriteBatch`)."""
    if not isinstance(state, SupportsWriteBatch) or batch_incr(state) is None:
        return None
    for klass in type(state).__mro__:
        if "write_batch" in vars(klass):
            return state.write_batch
        if "set" in vars(klass) or "incr" in vars(klass):
            return None
    return None


def _wraps_incr_alone(cls: type) -> bool:
    """Whether ``cls`` defines ``incr`` below the class whose ``incr_many`` it uses."""
    # From the backend's own class up: whichever of the two methods shows up first
    # decides. A backend that only forwards them (``__getattr__``) defines neither.
    for klass in cls.__mro__:
        if "incr_many" in vars(klass):
            return False
        if "incr" in vars(klass):
            return True
    return False
