"""What hooks cost per generate(): Telemetry (OpenTelemetry API alone, then the SDK) and Alerts.

Run: python -m benchmarks.hooks [--calls N] [--rounds R]

The instant in-memory provider of the overhead benchmark, MemoryStorage and
MemoryState, one call at a time, so the only difference between the rows is the
hook. Rounds alternate the setups (rotating which goes first); each row's figure
is the median over rounds of its microseconds per call, and "added" is that minus
the no-hook row's median.

- no hooks: events are not even built (the generator skips them without a hook);
- a no-op hook: the price of building and delivering the events themselves;
- Telemetry, API only: ``Telemetry()`` with no OpenTelemetry SDK configured (what a
  library user gets until their application installs one);
- Telemetry on the SDK: a ``MeterProvider`` with an in-memory reader and a
  ``TracerProvider`` whose spans go through a ``BatchSpanProcessor`` to an
  in-memory exporter, as an application would configure them (minus the network);
- Alerts: ``Alerts(sinks=[LogAlerts()])`` (its success-rate windows and breaker
  transitions; nothing fires while every call succeeds).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import anyio

from imagegen import (
    Alerts,
    Event,
    ImageGenerator,
    ImageRequest,
    LogAlerts,
    MemoryStorage,
    Telemetry,
)

from . import _report
from .overhead import Instant


def _sdk_telemetry() -> tuple[Telemetry, Callable[[], None]]:
    """Telemetry on real SDK providers, and how to shut them down."""
    # Benchmark-only imports: the SDK is in the tests and bench groups, not a dependency.
    from opentelemetry.sdk.metrics import MeterProvider  # noqa: PLC0415
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader  # noqa: PLC0415
    from opentelemetry.sdk.trace import TracerProvider  # noqa: PLC0415
    from opentelemetry.sdk.trace.export import BatchSpanProcessor  # noqa: PLC0415
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import (  # noqa: PLC0415
        InMemorySpanExporter,
    )

    meters = MeterProvider(metric_readers=[InMemoryMetricReader()])
    tracer = TracerProvider()
    tracer.add_span_processor(BatchSpanProcessor(InMemorySpanExporter()))

    def shutdown() -> None:
        meters.shutdown()
        tracer.shutdown()

    return Telemetry(meter_provider=meters, tracer_provider=tracer), shutdown


def _noop(_: Event) -> None:
    return None


async def run(calls: int, rounds: int) -> dict[str, list[float]]:
    """Microseconds per call of each setup, one figure per round."""
    sdk, shutdown = _sdk_telemetry()
    setups: dict[str, tuple[Any, ...]] = {
        "no hooks": (),
        "a no-op hook": (_noop,),
        "Telemetry, API only": (Telemetry(),),
        "Telemetry on the SDK": (sdk,),
        "Alerts (LogAlerts)": (Alerts(sinks=[LogAlerts()]),),
    }
    request = ImageRequest(prompt="a lighthouse at dusk", width=512, height=512)
    figures: dict[str, list[float]] = {name: [] for name in setups}
    gens = {
        name: ImageGenerator(providers=[Instant()], storage=MemoryStorage(), hooks=hooks)
        for name, hooks in setups.items()
    }
    try:
        for gen in gens.values():  # warm up
            for _ in range(200):
                await gen.generate(request)
        order = list(gens.items())
        for round_ in range(rounds):
            # Rotate who goes first, so no setup always runs right after another.
            for name, gen in order[round_ % len(order) :] + order[: round_ % len(order)]:
                start = time.perf_counter()
                for _ in range(calls):
                    await gen.generate(request)
                figures[name].append((time.perf_counter() - start) / calls * 1e6)
    finally:
        for gen in gens.values():
            await gen.aclose()
        shutdown()
    return figures


def report(figures: dict[str, list[float]]) -> None:
    """The table."""
    base = statistics.median(figures["no hooks"])
    rows = []
    for name, values in figures.items():
        middle = statistics.median(values)
        added = "-" if name == "no hooks" else f"{middle - base:+.0f}"
        spread = f"{min(values):.0f} to {max(values):.0f}"
        rows.append([name, f"{middle:.0f}", added, spread])
    _report.table(
        ["hooks", "µs per generate()", "µs added", "rounds: min to max"],
        rows,
        title="Hooks: cost per generation (instant provider, one call at a time)",
    )


def main(argv: list[str] | None = None) -> None:
    """Command line: see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000, help="calls per setup and round")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="a smoke run: 200 x 2")
    args = parser.parse_args(argv)
    calls, rounds = (200, 2) if args.quick else (args.calls, args.rounds)
    print(f"{_report.machine()}\n{calls} calls per setup and round, {rounds} rounds\n")
    report(anyio.run(run, calls, rounds))


if __name__ == "__main__":
    main()
