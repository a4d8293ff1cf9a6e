"""Throughput: 1,000 concurrent generations against the emulator, against raw httpx.

Run: python -m benchmarks.throughput [--generations N] [--rounds R] [--quick]

The emulator (one OpenAI-compatible instance answering with a URL to a 64x64 PNG)
runs in its own process, so on a 2-core machine client and server each have a
core. Each round starts N generations at once and times until the last one ends:

- raw httpx: ``POST /images/generations``, JSON decoded, then ``GET`` the image;
- imagegen: ``ImageGenerator.generate()`` with one OpenAIImages provider: the same
  two calls, plus validation, breaker, download checks, MemoryStorage and its
  records and statistics in MemoryState;
- LiteLLM: ``Router.aimage_generation`` (default settings) then ``GET`` the image
  with httpx (nothing stored).

Every side has an ``httpx.AsyncClient`` built the same way (the one ImageGenerator
builds for itself: a pool of 100 connections, 20 kept alive), warmed up first.
The N callers start at once and each passes an ``anyio.CapacityLimiter(100)``
(the pool's size) first ("<= 100 in flight"); a third side calls ``generate()``
N times at once with no limiter in front, leaning on the generator's own
``max_in_flight`` (100). Rounds alternate the three. The table shows the median
round, the median ratio of adjacent rounds, and the ratio of client CPU time per
generation (the steadiest figure on a shared machine). ``--all-at-once`` adds one
round each of raw httpx and imagegen with no limiter in front at all: raw httpx's N
requests then queue inside httpx's pool, whose bookkeeping costs O(queued x
connections) per pool event (httpcore 1.0's ``_assign_requests_to_connections``),
so that round can collapse under CPU contention and take minutes; it is not part of
``python -m benchmarks`` (see the docs). The emulator answers at once (0 ms), so
client CPU is the limit.

Peak memory is tracemalloc's peak during one more round of each side (tracing slows
it, so it is not timed), above what was allocated before.
LiteLLM runs last, one round: it leaves background work behind that slows whatever
runs after it in the same process.
"""

from __future__ import annotations

import argparse
import gc
import resource
import statistics
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Any

import anyio

from imagegen import ImageGenerator, MemoryStorage

from . import _report
from .emulator import EmulatorProcess, ProviderProfile
from .http_overhead import raw_calls

LIMITED = ("<= 100 in flight", 100)
#: httpx's default keep-alive count: with no more connections than that, httpcore 1.0's
#: pool never closes one it just used (see the docs), so neither side churns connections.
KEEPALIVE = ("<= 20 in flight", 20)
ALL_AT_ONCE = ("all at once", None)
#: imagegen with no limiter in front: its own max_in_flight (the mode's limit) admits them.
OWN_LIMIT = "imagegen, no caller limiter"
#: Rounds in the "all at once" mode, whatever --rounds says: it can collapse (see the docs).
ALL_AT_ONCE_ROUNDS = 1
WARMUP = 200

Call = Callable[[int], Awaitable[object]]


async def _burst(call: Call, n: int, offset: int, limit: int | None = None) -> tuple[float, int]:
    """Seconds for ``n`` concurrent calls (at most ``limit`` running), and how many failed."""
    failures = 0
    limiter = anyio.CapacityLimiter(limit or n)

    async def one(i: int) -> None:
        nonlocal failures
        async with limiter:
            try:
                await call(offset + i)
            except Exception:
                failures += 1

    start = time.perf_counter()
    async with anyio.create_task_group() as group:
        for i in range(n):
            group.start_soon(one, i)
    return time.perf_counter() - start, failures


async def _peak(call: Call, n: int, offset: int, limit: int | None) -> int:
    """tracemalloc's peak bytes above the start, during ``n`` concurrent calls."""
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    await _burst(call, n, offset, limit)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak - base


class _Runs:
    """Rates and CPU figures by (mode, side)."""

    def __init__(self, emu: EmulatorProcess, generations: int) -> None:
        self.emu = emu
        self.generations = generations
        self.offset = 0
        self.rate: dict[tuple[str, str], list[float]] = {}
        self.cpu: dict[tuple[str, str], list[float]] = {}
        self.server: dict[tuple[str, str], list[float]] = {}
        self.failures: dict[tuple[str, str], int] = {}

    async def warm(self, call: Call, limit: int | None) -> None:
        await _burst(call, WARMUP, self.offset, limit)
        self.offset += WARMUP

    async def round(self, mode: str, limit: int | None, side: str, call: Call) -> None:
        n = self.generations
        server = self.emu.cpu_seconds() or 0.0
        cpu = time.process_time()
        seconds, failures = await _burst(call, n, self.offset, limit)
        self.offset += n
        key = (mode, side)
        self.rate.setdefault(key, []).append((n - failures) / seconds)  # images made per second
        self.cpu.setdefault(key, []).append((time.process_time() - cpu) / n)
        self.server.setdefault(key, []).append(((self.emu.cpu_seconds() or 0.0) - server) / seconds)
        self.failures[key] = self.failures.get(key, 0) + failures
        print(f"  {mode}, {side}: {(n - failures) / seconds:,.0f}/s, {failures} failed", flush=True)


async def run(
    generations: int, rounds: int, with_litellm: bool, all_at_once: bool = False
) -> dict[str, Any]:
    """Generations per second by (mode, side); peak memory by side."""
    modes = [KEEPALIVE, LIMITED, ALL_AT_ONCE] if all_at_once else [KEEPALIVE, LIMITED]
    with EmulatorProcess({"openai": ProviderProfile(api="openai")}) as emu:
        base = emu.base_url("openai")
        runs = _Runs(emu, generations)
        peaks: dict[str, int] = {}
        async with (
            _report.http_client() as raw_http,
            _report.http_client() as our_http,
            _report.http_client() as their_http,
            AsyncExitStack() as stack,
        ):
            # One generator per max_in_flight, sharing one client.
            gens = {
                limit: await stack.enter_async_context(
                    ImageGenerator(
                        providers=[emu.provider("openai", model="flux-schnell")],
                        storage=MemoryStorage(),
                        download=_report.EMULATOR_DOWNLOADS,
                        http=our_http,
                        default_image=None,
                        max_in_flight=limit,
                    )
                )
                for limit in (KEEPALIVE[1], LIMITED[1])
            }
            gen = gens[LIMITED[1]]

            raw = raw_calls(emu, "openai", raw_http)

            async def ours(i: int) -> object:
                return await gen.generate(f"t {i}")

            def own_limit(limit: int) -> Call:
                async def call(i: int) -> object:
                    return await gens[limit].generate(f"t {i}")

                return call

            for mode, limit in modes:
                await runs.warm(raw, limit)
                await runs.warm(ours, limit)
                for _ in range(rounds if limit else ALL_AT_ONCE_ROUNDS):
                    await runs.round(mode, limit, "raw httpx", raw)
                    await runs.round(mode, limit, "imagegen", ours)
                    if limit:
                        await runs.round(mode, None, OWN_LIMIT, own_limit(limit))
                if limit == LIMITED[1]:
                    sides = (("raw httpx", raw, limit), ("imagegen", ours, limit))
                    for side, call, cap in (*sides, (OWN_LIMIT, ours, None)):
                        peaks[side] = await _peak(call, generations, runs.offset, cap)
                        runs.offset += generations
            if with_litellm:
                # Last: LiteLLM leaves background work behind that slows whatever runs after
                # it in the same process (measured: raw httpx 30-40% slower).
                router = _report.litellm().Router(model_list=[_report.deployment("img", base)])

                async def theirs(i: int) -> object:
                    answer = await router.aimage_generation(model="img", prompt=f"t {i}")
                    image = await their_http.get(answer.data[0].url)
                    return image.raise_for_status().content

                mode, limit = LIMITED
                await runs.warm(theirs, limit)
                await runs.round(mode, limit, "LiteLLM (1 round)", theirs)
    return {
        "rate": runs.rate,
        "cpu": runs.cpu,
        "server": runs.server,
        "failures": runs.failures,
        "peak": peaks,
        "maxrss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    }


def report(out: dict[str, Any], generations: int) -> None:
    """The tables and docs/img/throughput.png."""
    rows = []
    modes = list(dict.fromkeys(mode for mode, _ in out["rate"]))
    for mode in modes:
        raw_rates = out["rate"][(mode, "raw httpx")]
        raw_cpu = statistics.median(out["cpu"][(mode, "raw httpx")])
        for (row_mode, side), rates in out["rate"].items():
            if row_mode != mode:
                continue
            failures = out["failures"][(mode, side)]
            cpu = statistics.median(out["cpu"][(mode, side)])
            # Rounds alternate raw and imagegen, so each imagegen round has a raw round
            # beside it: the median of those ratios shrugs off a noisy neighbour.
            paired = [r / w for r, w in zip(rates, raw_rates, strict=False)]
            rows.append(
                [
                    mode,
                    side,
                    f"{statistics.median(rates):,.0f}",
                    f"{statistics.median(paired):.2f}",
                    " / ".join(f"{r:,.0f}" for r in rates),
                    f"{cpu * 1e3:.2f}",
                    f"{raw_cpu / cpu:.2f}",
                    f"{statistics.median(out['server'][(mode, side)]) * 100:.0f}%",
                    f"{failures:,} of {len(rates) * generations:,}",
                ]
            )
    headers = ["generations started", "client", "generations/s", "÷ raw (paired rounds)"]
    _report.table(
        [*headers, "rounds", "client CPU ms/gen", "÷ raw by CPU", "emulator CPU busy", "failures"],
        rows,
        title=f"{generations:,} concurrent generations, emulator latency 0 ms (median round)",
    )
    peaks = [
        [side, f"{peak / 2**20:.1f}", f"{peak / generations / 1024:.1f}"]
        for side, peak in out["peak"].items()
    ]
    _report.table(
        ["client", "peak MiB (tracemalloc)", "KiB per generation"],
        peaks,
        title=f"Peak memory during {generations:,} concurrent generations",
    )
    rss = out["maxrss"] / 2**20
    print(f"client process max RSS: {rss:.0f} MiB (with LiteLLM imported, if it ran)\n")
    plt = _report.pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    sides = list(dict.fromkeys(side for _, side in out["rate"]))
    width = 0.8 / len(sides)
    for k, side in enumerate(sides):
        offsets = [i + (k - (len(sides) - 1) / 2) * width for i in range(len(modes))]
        rates = [out["rate"].get((mode, side), [0.0]) for mode in modes]
        middle = [statistics.median(r) for r in rates]
        spread = [
            [m - min(r) for m, r in zip(middle, rates, strict=True)],
            [max(r) - m for m, r in zip(middle, rates, strict=True)],
        ]
        left.bar(offsets, middle, width, yerr=spread, capsize=3, label=side)
        cpu = [statistics.median(out["cpu"].get((mode, side), [0.0])) * 1e3 for mode in modes]
        right.bar(offsets, cpu, width, label=side)
    for ax in (left, right):
        ax.set_xticks(range(len(modes)), [f"{generations:,} generations, {m}" for m in modes])
        ax.legend(fontsize=8)
    left.set_ylabel("generations/s (bar: min-max of rounds)")
    left.set_title("throughput against the emulator (0 ms)")
    right.set_ylabel("client CPU per generation, ms")
    right.set_title("client CPU (steadier on a shared machine)")
    _report.save(fig, "throughput")


def main(argv: list[str] | None = None) -> None:
    """Command line: see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--generations", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="a smoke run: 100 x 1 round")
    parser.add_argument("--no-litellm", action="store_true")
    parser.add_argument(
        "--all-at-once",
        action="store_true",
        help="also run all N without a limiter (slow, can collapse: see the docs)",
    )
    args = parser.parse_args(argv)
    if args.quick:
        _report.scratch_plots()
    generations, rounds = (100, 1) if args.quick else (args.generations, args.rounds)
    print(f"{_report.machine()}\n{generations} concurrent, {rounds} rounds, asyncio\n", flush=True)
    outcome = anyio.run(run, generations, rounds, not args.no_litellm, args.all_at_once)
    report(outcome, generations)


if __name__ == "__main__":
    main()
