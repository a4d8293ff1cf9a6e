"""The pipeline's own cost per generate(), against calling the provider directly.

Run: python -m benchmarks.overhead [--rounds N]

An instant in-memory provider and MemoryStorage, so everything measured is
imagegen's own work: validation, breaker checks, the race machinery, the image
checks, storing, the record and the statistics. Each row runs the same number
of calls both ways in the same process, at 1, 100 and 1,000 concurrent calls,
and reports the median over rounds of the extra microseconds per call.
Memory: tracemalloc's peak while 1,000 (then 100) concurrent generations run,
per generation, against the bytes each one necessarily keeps (its image in
storage), so linear growth shows as a constant per-generation figure.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
import tracemalloc

import anyio

from imagegen import (
    ImageGenerator,
    ImageRequest,
    MemoryStorage,
    Provider,
    ProviderContext,
    ProviderImage,
)
from imagegen.providers._placeholder import render_placeholder
from imagegen.testing import tiny_png

IMAGE = tiny_png()


class Instant(Provider):
    """Returns the same small PNG at once, without yielding."""

    name = "instant"

    async def generate(self, request: ImageRequest, ctx: ProviderContext) -> ProviderImage:
        return ProviderImage(data=IMAGE, width=request.width, height=request.height)


async def _direct(provider: Provider, request: ImageRequest, concurrency: int) -> float:
    ctx = ProviderContext(deadline=anyio.current_time() + 30)
    start = time.perf_counter()
    async with anyio.create_task_group() as tg:
        for _ in range(concurrency):
            tg.start_soon(provider.generate, request, ctx)
    return time.perf_counter() - start


async def _pipeline(gen: ImageGenerator, request: ImageRequest, concurrency: int) -> float:
    start = time.perf_counter()
    async with anyio.create_task_group() as tg:
        for _ in range(concurrency):
            tg.start_soon(gen.generate, request)
    return time.perf_counter() - start


async def overhead(concurrency: int, rounds: int) -> tuple[float, float, float]:
    """(direct µs/call, pipeline µs/call, overhead µs/call), medians over rounds."""
    provider = Instant()
    request = ImageRequest(prompt="a lighthouse at dusk", width=512, height=512)
    direct, piped = [], []
    for _ in range(rounds):
        gen = ImageGenerator(providers=[provider], storage=MemoryStorage())
        direct.append(await _direct(provider, request, concurrency) / concurrency)
        piped.append(await _pipeline(gen, request, concurrency) / concurrency)
        await gen.aclose()
    d, p = statistics.median(direct) * 1e6, statistics.median(piped) * 1e6
    return d, p, p - d


async def memory(concurrency: int) -> tuple[float, int]:
    """(peak bytes per generation, image bytes per generation) with `concurrency` at once."""
    gen = ImageGenerator(providers=[Instant()], storage=MemoryStorage())
    request = ImageRequest(prompt="a lighthouse at dusk", width=512, height=512)
    await gen.generate(request)  # warm caches so they are not counted
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    await _pipeline(gen, request, concurrency)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    await gen.aclose()
    return (peak - base) / concurrency, len(IMAGE)


def placeholder_ms(rounds: int) -> float:
    """Median milliseconds to render a 1024x1024 placeholder PNG."""
    times = []
    for i in range(rounds):
        start = time.perf_counter()
        render_placeholder(f"a lighthouse at dusk {i}", 1024, 1024)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--backend", default="asyncio", choices=["asyncio", "trio"])
    args = parser.parse_args()

    print(f"backend: {args.backend}, rounds: {args.rounds}\n")
    print("| concurrent calls | direct µs/call | generate() µs/call | overhead µs/call |")
    print("|---:|---:|---:|---:|")
    for concurrency in (1, 100, 1000):
        rounds = args.rounds if concurrency > 1 else args.rounds * 50
        d, p, o = anyio.run(overhead, concurrency, rounds, backend=args.backend)
        print(f"| {concurrency:,} | {d:.1f} | {p:.1f} | {o:.1f} |")
    print("\n| concurrent generations | peak KiB per generation | image KiB held each |")
    print("|---:|---:|---:|")
    for concurrency in (100, 1000):
        per, image = anyio.run(memory, concurrency, backend=args.backend)
        print(f"| {concurrency:,} | {per / 1024:.1f} | {image / 1024:.2f} |")
    print(f"\nPlaceholder 1024x1024 PNG: {placeholder_ms(args.rounds * 3):.1f} ms (median)")


if __name__ == "__main__":
    main()
