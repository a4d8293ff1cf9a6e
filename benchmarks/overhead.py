"""The pipeline's own cost per generate(), against calling the provider directly.

Run: python -m benchmarks.overhead [--rounds N] [--calls K] [--backend asyncio|trio]
                                   [--count-seconds S]

The provider (``Paced``) answers with the same small PNG after one suspension of its
own, so generations really overlap: an instant provider that never awaits lets each
generate() run start to finish before the next one starts, whatever the task count.
In a concurrent batch it holds its first wave (every call of the batch, or
``max_in_flight`` of them when that is smaller) until the whole wave is inside, then
lets them all go: on any backend the batch has all its provider calls in flight at
once, as with a real provider whose calls take seconds, and the CPU is never idle
waiting for a timer. The baseline calls the same provider directly from the same
number of tasks (its whole batch held, as there is no max_in_flight in front), in the
same round, right before; each round measures every setup on a fresh generator
(fresh state and storage), after a warm-up, rotating which setup goes first.
Overhead per call = generate()'s µs per call - the direct calls' µs per call. Each
batch counts the generate() calls and the provider calls in flight; the run fails
(exit 1) when either peak falls short of what the row claims (the batch size;
``min(batch, max_in_flight)`` for provider calls) or a generation was not served by
the provider (an error, a default image).

1. MemoryState + MemoryStorage at 1, 100 and 1,000 concurrent calls.
2. The setups users run: SQLiteState + LocalStorage (the offline default, in a temp
   dir), SQLiteState + MemoryStorage, MemoryState + LocalStorage, and RedisState +
   MemoryStorage when ``redis-server`` is on PATH (started on a free port of
   127.0.0.1, in a temp dir, and stopped at the end). Overhead per generate() one at a
   time and at 100 concurrent, min and median over rounds, each as a ratio to
   MemoryState + MemoryStorage of the same run (by min and by median); then, in an
   untimed pass of S seconds (default 6) one at a time and another at 100 concurrent,
   through a counting wrapper, the state backend calls each generation makes, by
   method and key family (records, statistics, breaker state, shared settings). The
   pass runs for a fixed time, not a fixed count, so reads made every so often (breaker state once a
   second, shared settings every config_ttl) show at their real rate.
3. Memory: tracemalloc's peak while 1,000 (then 100) generations are in flight, per
   generation, against the bytes each one necessarily keeps (its image in storage).

Warnings the generator logs (a state call given up on after its bound, say) are
counted per setup: each is bookkeeping the timed run skipped.
"""

from __future__ import annotations

import argparse
import gc
import logging
import math
import shutil
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel

from imagegen import (
    ImageGenerator,
    ImageRequest,
    LocalStorage,
    MemoryState,
    MemoryStorage,
    Provider,
    ProviderContext,
    ProviderImage,
    SQLiteState,
    StateBackend,
    Storage,
)
from imagegen.providers._placeholder import render_placeholder
from imagegen.testing import tiny_png

IMAGE = tiny_png()
REQUEST = ImageRequest(prompt="a lighthouse at dusk", width=512, height=512)
#: ImageGenerator's default, which every setup here keeps.
MAX_IN_FLIGHT = 100
WARMUP_CALLS = 20
BASE = "MemoryState + MemoryStorage"


class Instant(Provider):
    """Returns the same small PNG at once, without yielding (the hooks benchmark's provider)."""

    name = "instant"

    async def generate(self, request: ImageRequest, ctx: ProviderContext) -> ProviderImage:
        return ProviderImage(data=IMAGE, width=request.width, height=request.height)


class Paced(Provider):
    """The same small PNG after ``latency`` seconds (0: one checkpoint); counts calls in flight.

    ``hold(wave)`` makes the next calls wait until ``wave`` of them are in flight at
    once, then releases them all; later calls are paced as before.
    """

    name = "paced"

    def __init__(self, latency: float = 0.0) -> None:
        super().__init__()
        self.latency = latency
        self.in_flight = 0
        self.peak = 0
        self._wave = 0
        self._open: anyio.Event | None = None

    def hold(self, wave: int) -> None:
        """Hold the next calls until ``wave`` are in flight; resets the peak."""
        self._wave = wave
        self._open = anyio.Event()
        self.peak = 0

    async def generate(self, request: ImageRequest, ctx: ProviderContext) -> ProviderImage:
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            gate = self._open
            if gate is not None and not gate.is_set() and self.in_flight < self._wave:
                await gate.wait()
            else:
                if gate is not None:
                    gate.set()
                if self.latency:
                    await anyio.sleep(self.latency)
                else:
                    await anyio.lowlevel.checkpoint()
            return ProviderImage(data=IMAGE, width=request.width, height=request.height)
        finally:
            self.in_flight -= 1


# --- counting what goes on ------------------------------------------------------------------


def _family(key: str) -> str:
    """What a state key holds: ``imagegen:<namespace>:<family>...`` -> record, stats, breaker..."""
    parts = key.split(":")
    return parts[2] if len(parts) > 2 and parts[0] == "imagegen" else "other"


class CountingState:
    """A state backend around another that counts its calls, by method and key family."""

    def __init__(self, inner: StateBackend) -> None:
        self.inner = inner
        self.calls: Counter[str] = Counter()

    def _count(self, method: str, key: str) -> None:
        self.calls[f"{method} {_family(key)}"] += 1

    async def get(self, key: str) -> bytes | None:
        self._count("get", key)
        return await self.inner.get(key)

    async def set(self, key: str, value: bytes, *, ttl: float | None = None) -> None:
        self._count("set", key)
        await self.inner.set(key, value, ttl=ttl)

    async def delete(self, key: str) -> None:
        self._count("delete", key)
        await self.inner.delete(key)

    async def incr(self, key: str, amount: int = 1, *, ttl: float | None = None) -> int:
        self._count("incr", key)
        return await self.inner.incr(key, amount, ttl=ttl)

    async def incr_many(self, amounts: Mapping[str, int], *, ttl: float | None = None) -> None:
        # Defined beside incr, so the generator batches through it as it would the inner's.
        self._count("incr_many", next(iter(amounts), ""))
        batch: Any = self.inner
        await batch.incr_many(amounts, ttl=ttl)

    async def write_batch(
        self,
        values: Mapping[str, tuple[bytes, float | None]],
        amounts: Mapping[str, int],
        *,
        ttl: float | None = None,
        once: tuple[str, float] | None = None,
    ) -> None:
        # Defined beside set and incr, so the generator writes through it as it would
        # through the inner's (a record with its calls' counters).
        self._count("write_batch", next(iter(values), ""))
        batch: Any = self.inner
        await batch.write_batch(values, amounts, ttl=ttl, once=once)

    async def scan(self, prefix: str) -> list[str]:
        self._count("scan", prefix)
        return await self.inner.scan(prefix)

    async def set_if_absent(self, key: str, value: bytes, *, ttl: float | None = None) -> bool:
        self._count("set_if_absent", key)
        return await self.inner.set_if_absent(key, value, ttl=ttl)

    async def aclose(self) -> None:
        await self.inner.aclose()


class _WarningCount(logging.Handler):
    """Counts the imagegen logger's warnings (and keeps one example of each message)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0
        self.messages: Counter[str] = Counter()

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1
        self.messages[record.msg if isinstance(record.msg, str) else repr(record.msg)] += 1


WARNINGS = _WarningCount()


# --- setups -----------------------------------------------------------------------------------


@dataclass
class Setup:
    """One state + storage pair; ``make`` builds a fresh pair in a fresh directory."""

    name: str
    make: Callable[[Path], tuple[StateBackend, Storage]]
    skipped: str = ""


def _setups(redis_url: str | None, redis_note: str) -> list[Setup]:
    def redis_pair(_: Path) -> tuple[StateBackend, Storage]:
        import redis  # noqa: PLC0415 - an optional extra

        from imagegen import RedisState  # noqa: PLC0415

        assert redis_url is not None
        admin = redis.Redis.from_url(redis_url)
        try:
            admin.flushdb()  # every round starts from an empty database
        finally:
            admin.close()
        return RedisState(redis_url), MemoryStorage()

    return [
        Setup(BASE, lambda _: (MemoryState(), MemoryStorage())),
        Setup(
            "SQLiteState + LocalStorage",
            lambda d: (SQLiteState(d / "state.db"), LocalStorage(d / "images")),
        ),
        Setup(
            "SQLiteState + MemoryStorage", lambda d: (SQLiteState(d / "state.db"), MemoryStorage())
        ),
        Setup("MemoryState + LocalStorage", lambda d: (MemoryState(), LocalStorage(d / "images"))),
        Setup(
            "RedisState + MemoryStorage", redis_pair, skipped=redis_note if not redis_url else ""
        ),
    ]


@contextmanager
def _redis(workdir: Path) -> Iterator[tuple[str | None, str]]:
    """(URL of a fresh redis-server on 127.0.0.1 or None, why not), stopped on exit."""
    if shutil.which("redis-server") is None:
        yield None, "skipped: redis-server is not on PATH (apt-get install redis-server)"
        return
    try:
        from .state import redis_server  # noqa: PLC0415 - needs the redis package
    except ImportError as exc:
        yield None, f"skipped: the redis package is not installed ({exc})"
        return
    with redis_server(workdir) as url:
        yield url, ""


# --- measuring --------------------------------------------------------------------------------


@dataclass
class Batch:
    """One timed batch: seconds, peaks in flight, and results that were not the provider's."""

    seconds: float
    peak_calls: int  # generate() (or direct provider calls) in flight at once
    peak_provider: int
    not_served: int = 0  # default images and errors: generations that skipped work


@dataclass
class Cell:
    """Per-round figures of one (setup, concurrency): µs per call, both ways, and peaks."""

    direct: list[float] = field(default_factory=list)
    piped: list[float] = field(default_factory=list)
    peak_calls: int = 0
    peak_provider: int = 0
    short: list[str] = field(default_factory=list)  # batches whose peaks fell short
    not_served: int = 0

    @property
    def overhead(self) -> list[float]:
        return [p - d for p, d in zip(self.piped, self.direct, strict=True)]


async def _direct_batch(provider: Paced, n: int) -> Batch:
    ctx = ProviderContext(deadline=anyio.current_time() + 30)
    if n > 1:
        provider.hold(n)
    start = time.perf_counter()
    async with anyio.create_task_group() as tg:
        for _ in range(n):
            tg.start_soon(provider.generate, REQUEST, ctx)
    return Batch(time.perf_counter() - start, provider.peak, provider.peak)


async def _pipeline_batch(gen: ImageGenerator, provider: Paced, n: int) -> Batch:
    in_flight = peak = not_served = 0

    async def one() -> None:
        nonlocal in_flight, peak, not_served
        in_flight += 1
        peak = max(peak, in_flight)
        try:
            result = await gen.generate(REQUEST)
            not_served += result.is_default
        except Exception:
            not_served += 1
        finally:
            in_flight -= 1

    if n > 1:
        provider.hold(min(n, MAX_IN_FLIGHT))
    start = time.perf_counter()
    async with anyio.create_task_group() as tg:
        for _ in range(n):
            tg.start_soon(one)
    return Batch(time.perf_counter() - start, peak, provider.peak, not_served)


async def _sequential(call: Callable[[], Any], calls: int) -> float:
    """Seconds per call of ``calls`` calls one after another."""
    start = time.perf_counter()
    for _ in range(calls):
        await call()
    return (time.perf_counter() - start) / calls


async def _measure(gen: ImageGenerator, provider: Paced, n: int, calls: int, cell: Cell) -> None:
    """One round of one cell: ``calls`` calls (``n`` at a time) direct, then through gen."""
    if n == 1:
        provider.peak = 0
        ctx = ProviderContext(deadline=anyio.current_time() + 30)
        direct = await _sequential(lambda: provider.generate(REQUEST, ctx), calls)
        provider.peak = 0
        results = []

        async def one() -> None:
            results.append(await gen.generate(REQUEST))

        piped = await _sequential(one, calls)
        cell.direct.append(direct * 1e6)
        cell.piped.append(piped * 1e6)
        cell.peak_calls = max(cell.peak_calls, 1)
        cell.peak_provider = max(cell.peak_provider, provider.peak)
        cell.not_served += sum(r.is_default for r in results)
        return
    batches = max(1, math.ceil(calls / n))
    direct_s = piped_s = 0.0
    for _ in range(batches):
        d = await _direct_batch(provider, n)
        p = await _pipeline_batch(gen, provider, n)
        direct_s += d.seconds
        piped_s += p.seconds
        cell.peak_calls = max(cell.peak_calls, p.peak_calls)
        cell.peak_provider = max(cell.peak_provider, p.peak_provider)
        cell.not_served += p.not_served
        if p.peak_calls < n or p.peak_provider < min(n, MAX_IN_FLIGHT) or d.peak_calls < n:
            cell.short.append(f"{p.peak_calls}/{p.peak_provider} (direct {d.peak_calls})")
    cell.direct.append(direct_s / (batches * n) * 1e6)
    cell.piped.append(piped_s / (batches * n) * 1e6)


async def _fresh(
    setup: Setup, workdir: Path, wrap: Callable[[StateBackend], Any] | None = None
) -> tuple[ImageGenerator, Paced, Any]:
    """A warm generator on a fresh state + storage pair (state wrapped by ``wrap``)."""
    state, storage = setup.make(Path(tempfile.mkdtemp(dir=workdir)))
    if wrap is not None:
        state = wrap(state)
    provider = Paced()
    gen = ImageGenerator(providers=[provider], state=state, storage=storage)
    for _ in range(WARMUP_CALLS):  # schema, worker threads, directories, caches
        await gen.generate(REQUEST)
    await _pipeline_batch(gen, provider, MAX_IN_FLIGHT)  # connections and threads for many
    return gen, provider, state


async def run(
    setups: list[Setup], workdir: Path, rounds: int, calls: int, wide: tuple[int, ...]
) -> tuple[dict[tuple[str, int], Cell], Counter[str]]:
    """Cells by (setup, concurrency), and warnings logged by setup.

    The base setup also runs at each concurrency of ``wide``.
    """
    cells: dict[tuple[str, int], Cell] = {}
    warnings: Counter[str] = Counter()
    live = [s for s in setups if not s.skipped]
    for round_ in range(rounds):
        # Rotate which setup goes first, so none always follows the same neighbour.
        order = live[round_ % len(live) :] + live[: round_ % len(live)]
        for setup in order:
            concurrencies = (1, 100, *wide) if setup.name == BASE else (1, 100)
            before = WARNINGS.count
            gen, provider, _ = await _fresh(setup, workdir)
            try:
                for n in concurrencies:
                    cell = cells.setdefault((setup.name, n), Cell())
                    await _measure(gen, provider, n, calls, cell)
            finally:
                await gen.aclose()
            warnings[setup.name] += WARNINGS.count - before
    return cells, warnings


async def state_calls(
    setup: Setup, workdir: Path, seconds: float
) -> dict[int, tuple[int, Counter[str]]]:
    """(generations, state calls per generation by method and key family), one at a time
    and 100 at once, each for ``seconds`` (untimed): long enough to include the reads that
    come every so often (breaker state, shared settings) rather than every generation."""
    gen, provider, counting = await _fresh(setup, workdir, wrap=CountingState)
    out: dict[int, tuple[int, Counter[str]]] = {}
    try:
        for n in (1, 100):
            counting.calls.clear()
            generations = 0
            end = time.perf_counter() + seconds
            while time.perf_counter() < end:
                await _pipeline_batch(gen, provider, n)
                generations += n
            out[n] = (
                generations,
                Counter({k: v / generations for k, v in counting.calls.items()}),
            )
    finally:
        await gen.aclose()
    return out


async def memory(concurrency: int) -> tuple[float, int, int, int]:
    """(peak bytes per generation, image bytes, peak generate() and provider calls in flight)."""
    provider = Paced()
    gen = ImageGenerator(providers=[provider], storage=MemoryStorage())
    await gen.generate(REQUEST)  # warm caches so they are not counted
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    batch = await _pipeline_batch(gen, provider, concurrency)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    await gen.aclose()
    return (peak - base) / concurrency, len(IMAGE), batch.peak_calls, batch.peak_provider


def placeholder_ms(rounds: int) -> float:
    """Median milliseconds to render a 1024x1024 placeholder PNG."""
    times = []
    for i in range(rounds):
        start = time.perf_counter()
        render_placeholder(f"a lighthouse at dusk {i}", 1024, 1024)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


# --- the report -------------------------------------------------------------------------------


def _min_med(values: list[float]) -> str:
    return f"{min(values):.1f} / {statistics.median(values):.1f}"


def _peaks(cell: Cell, n: int) -> str:
    ok = cell.peak_calls >= n and cell.peak_provider >= min(n, MAX_IN_FLIGHT) and not cell.short
    return f"{cell.peak_calls:,} / {cell.peak_provider:,}" + ("" if ok else " SHORT")


def _ratio(cell: Cell, base: Cell) -> str:
    by_min = min(cell.overhead) / min(base.overhead)
    by_median = statistics.median(cell.overhead) / statistics.median(base.overhead)
    return f"{by_min:.2f}x / {by_median:.2f}x"


def report(
    cells: dict[tuple[str, int], Cell],
    warnings: Counter[str],
    setups: list[Setup],
    calls_by_setup: dict[str, dict[int, tuple[int, Counter[str]]]],
    wide: tuple[int, ...],
) -> list[str]:
    """Prints the tables; returns what fell short (peaks not reached, work skipped)."""
    problems = []
    for (name, n), cell in cells.items():
        if cell.short:
            problems.append(f"{name} at {n}: peaks in flight short in {len(cell.short)} batches")
        if cell.not_served:
            problems.append(f"{name} at {n}: {cell.not_served} generations not served")
    print(
        "| concurrent calls | direct µs/call | generate() µs/call "
        "| overhead µs/call (min / median) | peak in flight: generate() / provider |"
    )
    print("|---:|---:|---:|---:|---:|")
    for n in (1, 100, *wide):
        cell = cells[(BASE, n)]
        print(
            f"| {n:,} | {statistics.median(cell.direct):.1f} | {statistics.median(cell.piped):.1f} "
            f"| {_min_med(cell.overhead)} | {_peaks(cell, n)} |"
        )
    print(
        f"\nPeak in flight: generate() calls running at once / provider calls running at once "
        f"(max_in_flight={MAX_IN_FLIGHT}, so provider calls top out there).\n"
    )
    print(
        "| state + storage | 1 at a time: overhead µs (min / median) | ÷ base "
        "| 100 concurrent: overhead µs (min / median) | ÷ base | peak in flight at 100 "
        "| state calls / generation (1; 100) | warnings in timed rounds |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    base1, base100 = cells[(BASE, 1)], cells[(BASE, 100)]
    for setup in setups:
        if setup.skipped:
            print(f"| {setup.name} | {setup.skipped} | | | | | | |")
            continue
        one, hundred = cells[(setup.name, 1)], cells[(setup.name, 100)]
        counted = calls_by_setup.get(setup.name, {})
        per = "; ".join(f"{sum(counted[n][1].values()):.2f}" for n in (1, 100) if n in counted)
        print(
            f"| {setup.name} | {_min_med(one.overhead)} | {_ratio(one, base1)} "
            f"| {_min_med(hundred.overhead)} | {_ratio(hundred, base100)} "
            f"| {_peaks(hundred, 100)} | {per or '-'} | {warnings[setup.name]} |"
        )
    print(
        "\n÷ base: overhead over MemoryState + MemoryStorage's in the same run, by min / by median."
    )
    if calls_by_setup:
        methods = sorted({m for c in calls_by_setup.values() for _, n in c.values() for m in n})
        print(
            "\nState backend calls per generation, by method and key family (a counting "
            "wrapper around the backend, in an untimed pass of a fixed duration):\n"
        )
        print(
            "| state + storage | concurrent | generations | " + " | ".join(methods) + " | total |"
        )
        print("|---|---:|---:|" + "---:|" * (len(methods) + 1))
        for name, by_n in calls_by_setup.items():
            for n, (generations, counts) in by_n.items():
                cells_ = " | ".join(f"{counts.get(m, 0):.4f}" for m in methods)
                total = sum(counts.values())
                print(f"| {name} | {n} | {generations:,} | {cells_} | {total:.4f} |")
    if WARNINGS.messages:
        print("\nWarnings logged by imagegen (timed rounds and counting passes):")
        for message, count in WARNINGS.messages.most_common():
            print(f"- {count} x {message!r}")
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument(
        "--calls",
        type=int,
        default=None,
        help="calls per setup, concurrency and round (default: 300; 100 with fewer than 3 "
        "rounds, the smoke run of python -m benchmarks --quick)",
    )
    parser.add_argument("--backend", default="asyncio", choices=["asyncio", "trio"])
    parser.add_argument(
        "--count-seconds",
        type=float,
        default=None,
        help="seconds of each state-call counting pass (default: 6; 0.5 with fewer than 3 rounds)",
    )
    args = parser.parse_args()
    smoke = args.rounds < 3
    calls = args.calls or (100 if smoke else 300)
    count_seconds = args.count_seconds or (0.5 if smoke else 6.0)
    logger = logging.getLogger("imagegen")
    logger.addHandler(WARNINGS)
    logger.propagate = False

    wide = (1000,)
    print(
        f"backend: {args.backend}, rounds: {args.rounds}, calls per cell and round: {calls}, "
        f"counting passes: {count_seconds:g} s each"
    )
    with (
        tempfile.TemporaryDirectory(prefix="imagegen-overhead-") as tmp,
        _redis(Path(tmp)) as (url, note),
    ):
        setups = _setups(url, note)
        print(f"redis: {url or note}\n", flush=True)
        workdir = Path(tmp)
        cells, warnings = anyio.run(
            run, setups, workdir, args.rounds, calls, wide, backend=args.backend
        )
        calls_by_setup = {
            s.name: anyio.run(state_calls, s, workdir, count_seconds, backend=args.backend)
            for s in setups
            if not s.skipped
        }
        problems = report(cells, warnings, setups, calls_by_setup, wide)
    print(
        "\n| concurrent generations | peak KiB per generation | image KiB held each "
        "| peak in flight: generate() / provider |"
    )
    print("|---:|---:|---:|---:|")
    for concurrency in (100, 1000):
        per, image, calls, provider = anyio.run(memory, concurrency, backend=args.backend)
        print(
            f"| {concurrency:,} | {per / 1024:.1f} | {image / 1024:.2f} "
            f"| {calls:,} / {provider:,} |"
        )
        if calls < concurrency or provider < min(concurrency, MAX_IN_FLIGHT):
            problems.append(f"memory at {concurrency}: only {calls}/{provider} in flight")
    print(f"\nPlaceholder 1024x1024 PNG: {placeholder_ms(args.rounds * 3):.1f} ms (median)")
    if problems:
        print("\nNOT HONEST, see:\n" + "\n".join(f"- {p}" for p in problems))
        sys.exit(1)
    print("\nEvery batch reached its peaks in flight; every generation was served by the provider.")


if __name__ == "__main__":
    main()
