"""10,000 generate() calls at once on a provider that takes 200 ms, against 10,000 bare tasks.

Run: python -m benchmarks.burst [--generations N] [--latency S] [--rounds R]
     [--backend asyncio|trio] [--quick]

Each row of each round runs in a fresh process (``python -m benchmarks.burst --child
ROW ...``), so no row's peak RSS includes another's, and every process imports the
same modules (imagegen included) before it starts:

- bare tasks: N tasks that each ``await anyio.sleep(latency)``, the floor;
- generate(), default max_in_flight: N concurrent ``ImageGenerator.generate()`` calls
  (MemoryState, MemoryStorage, ``max_in_flight`` left at its default, 100) on a
  provider that sleeps ``latency`` and answers with a small PNG. At most 100 provider
  calls run at once, so the burst cannot take less than ceil(N / 100) x latency;
- generate(), max_in_flight=None: the same with no limit, every provider call in
  flight at once, so what is left above the bare tasks is the pipeline's own cost.

Measured in each process: wall time from the first task started to the last one
done; event-loop lag, from a task that sleeps 10 ms in a loop during the burst and
records how late it wakes (p50, p99, max); peak RSS (VmHWM from /proc/self/status,
else ru_maxrss) and its growth over the RSS just before the burst; the peak number
of generate() calls and of provider calls in flight; and generations that failed or
got the default image. Wall time is min / median over rounds; the other figures are
the median round's (max for the lag's max).
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import anyio

from imagegen import ImageGenerator, MemoryStorage

from .overhead import REQUEST, Paced

ROWS = ("bare", "default", "unlimited")
LABELS = {
    "bare": "bare tasks (anyio.sleep)",
    "default": "generate(), default max_in_flight (100)",
    "unlimited": "generate(), max_in_flight=None",
}
LAG_PERIOD = 0.010


def _status_kib(field: str) -> int | None:
    """A ``kB`` field of /proc/self/status (VmRSS, VmHWM), None where there is none."""
    try:
        text = Path("/proc/self/status").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    return None


def _peak_rss_kib() -> int:
    hwm = _status_kib("VmHWM")
    if hwm is not None:
        return hwm
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak // 1024 if sys.platform == "darwin" else peak  # bytes on macOS, KiB on Linux


async def child(row: str, n: int, latency: float) -> dict[str, Any]:
    """One burst in this process; the figures as a dict."""
    provider = Paced(latency)
    gen = None
    if row != "bare":
        # "default" leaves max_in_flight to ImageGenerator's own default.
        limit: dict[str, Any] = {"max_in_flight": None} if row == "unlimited" else {}
        gen = ImageGenerator(providers=[provider], storage=MemoryStorage(), **limit)
        for _ in range(5):  # imports done, caches warm
            await gen.generate(REQUEST)
        provider.peak = 0
    lags: list[float] = []
    in_flight = peak = failed = defaults = 0

    async def watch() -> None:
        while True:
            start = time.perf_counter()
            await anyio.sleep(LAG_PERIOD)
            lags.append(time.perf_counter() - start - LAG_PERIOD)

    async def one() -> None:
        nonlocal in_flight, peak, failed, defaults
        in_flight += 1
        peak = max(peak, in_flight)
        try:
            if gen is None:
                await anyio.sleep(latency)
            else:
                defaults += (await gen.generate(REQUEST)).is_default
        except Exception:
            failed += 1
        finally:
            in_flight -= 1

    rss_before = _status_kib("VmRSS") or 0
    async with anyio.create_task_group() as outer:
        outer.start_soon(watch)
        await anyio.sleep(LAG_PERIOD * 3)  # the watcher's first wake-ups, before the burst
        lags.clear()
        start = time.perf_counter()
        async with anyio.create_task_group() as tg:
            for _ in range(n):
                tg.start_soon(one)
        wall = time.perf_counter() - start
        await anyio.sleep(LAG_PERIOD)  # an overdue wake-up of the watcher's is recorded too
        outer.cancel_scope.cancel()
    if gen is not None:
        await gen.aclose()
    lags.sort()
    return {
        "wall": wall,
        "lag_p50": statistics.median(lags) if lags else math.nan,
        "lag_p99": lags[min(len(lags) - 1, int(len(lags) * 0.99))] if lags else math.nan,
        "lag_max": lags[-1] if lags else math.nan,
        "lag_samples": len(lags),
        "rss_before_kib": rss_before,
        "peak_rss_kib": _peak_rss_kib(),
        "peak_tasks": peak,
        "peak_provider": provider.peak if gen is not None else peak,
        "failed": failed,
        "defaults": defaults,
    }


def _spawn(row: str, args: argparse.Namespace) -> dict[str, Any]:
    command = [
        sys.executable, "-m", "benchmarks.burst", "--child", row,
        "--generations", str(args.generations), "--latency", str(args.latency),
        "--backend", args.backend,
    ]  # fmt: skip
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run(command, cwd=root, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{row} failed (exit {done.returncode}):\n{done.stderr}")
    if done.stderr.strip():
        print(f"  ({row} said on stderr: {done.stderr.strip().splitlines()[-1]})")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.1f}"


def report(runs: dict[str, list[dict[str, Any]]], n: int, latency: float) -> list[str]:
    """Prints the table; returns what fell short of the row's claim."""
    problems = []
    print(
        "| row | wall s (min / median) | ÷ bare | µs per task above the floor "
        "| loop lag ms p50 / p99 / max (samples) | peak RSS MiB | RSS growth MiB (KiB per task) "
        "| peak in flight: tasks / provider | failed or default |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    bare = statistics.median(r["wall"] for r in runs["bare"])
    for row in ROWS:
        results = runs[row]
        walls = [r["wall"] for r in results]
        mid = sorted(results, key=lambda r: r["wall"])[len(results) // 2]  # the median round
        lag_max = max(r["lag_max"] for r in results)
        growth = (mid["peak_rss_kib"] - mid["rss_before_kib"]) / 1024
        bad = sum(r["failed"] + r["defaults"] for r in results)
        floor = math.ceil(n / 100) * latency if row == "default" else latency
        above = (statistics.median(walls) - floor) / n * 1e6
        print(
            f"| {LABELS[row]} | {min(walls):.2f} / {statistics.median(walls):.2f} "
            f"| {statistics.median(walls) / bare:.1f}x | {above:.0f} "
            f"| {_ms(mid['lag_p50'])} / {_ms(mid['lag_p99'])} / {_ms(lag_max)} "
            f"({mid['lag_samples']}) "
            f"| {mid['peak_rss_kib'] / 1024:.0f} | {growth:.0f} ({growth * 1024 / n:.1f}) "
            f"| {min(r['peak_tasks'] for r in results):,} / "
            f"{min(r['peak_provider'] for r in results):,} | {bad} |"
        )
        want = n if row != "default" else min(n, 100)
        if min(r["peak_tasks"] for r in results) < n:
            problems.append(f"{row}: fewer than {n:,} tasks in flight at once")
        if min(r["peak_provider"] for r in results) < want:
            problems.append(f"{row}: fewer than {want:,} provider calls in flight at once")
        if bad:
            problems.append(f"{row}: {bad} generations failed or got the default image")
    floor = math.ceil(n / 100) * latency
    print(
        f"\nWith max_in_flight=100, {n:,} calls of {latency * 1e3:.0f} ms cannot take less than "
        f"ceil({n:,} / 100) x {latency:g} s = {floor:.1f} s; the generator's default timeout "
        f"is 30 s, within which queued generations must start and finish.\n"
        f"µs per task above the floor: (median wall - floor) / {n:,}, the floor being "
        f"{latency:g} s, or {floor:.1f} s for the default max_in_flight.\n"
        f"Loop lag: how late a task sleeping {LAG_PERIOD * 1e3:.0f} ms in a loop woke, during the "
        f"burst (median round; max over rounds); a loop blocked for seconds leaves few samples, "
        f"so read the max there. RSS growth: peak RSS minus RSS just before the burst."
    )
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--generations", type=int, default=10_000)
    parser.add_argument("--latency", type=float, default=0.2, help="provider seconds per call")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--backend", default="asyncio", choices=["asyncio", "trio"])
    parser.add_argument("--quick", action="store_true", help="a smoke run: 1,000 x 1 round")
    parser.add_argument("--child", choices=ROWS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        out = anyio.run(child, args.child, args.generations, args.latency, backend=args.backend)
        print(json.dumps(out))
        return
    if args.quick:
        args.generations, args.rounds = 1000, 1
    print(
        f"backend: {args.backend}, {args.generations:,} at once, provider latency "
        f"{args.latency * 1e3:.0f} ms, rounds: {args.rounds}, each row in a fresh process\n",
        flush=True,
    )
    runs: dict[str, list[dict[str, Any]]] = {row: [] for row in ROWS}
    for round_ in range(args.rounds):
        for row in ROWS[round_ % len(ROWS) :] + ROWS[: round_ % len(ROWS)]:
            result = _spawn(row, args)
            runs[row].append(result)
            print(f"  round {round_ + 1}, {row}: {result['wall']:.2f} s", flush=True)
    print()
    problems = report(runs, args.generations, args.latency)
    if problems:
        print("\nNOT AS CLAIMED:\n" + "\n".join(f"- {p}" for p in problems))
        sys.exit(1)


if __name__ == "__main__":
    main()
