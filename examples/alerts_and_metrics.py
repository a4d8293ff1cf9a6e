"""Metrics, traces and alerts, offline: OpenTelemetry's SDK reading into memory.

A provider that keeps failing sits in front of the offline placeholder. Its
breaker opens (an alert, logged), the metrics count every attempt, and each
generation is a span with a child per provider.

Needs the `telemetry` extra and OpenTelemetry's SDK (the SDK is your choice;
any exporter works the same way):

    pip install 'imagegen-failover[telemetry]' opentelemetry-sdk
    python examples/alerts_and_metrics.py
"""

from __future__ import annotations

import logging
import sys

import anyio
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from imagegen import (
    Alerts,
    CircuitBreaker,
    ImageGenerator,
    LogAlerts,
    Placeholder,
    ProviderUnavailable,
    Retry,
    Telemetry,
)
from imagegen.testing import failing


async def main() -> None:
    # In production: a PeriodicExportingMetricReader and a BatchSpanProcessor with
    # OTLP exporters, or opentelemetry-exporter-prometheus.
    reader = InMemoryMetricReader()
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    telemetry = Telemetry(
        meter_provider=MeterProvider(metric_readers=[reader]), tracer_provider=tracer_provider
    )

    # Alerts go to the log (and could go to AlertWebhook(url, secret=...) too).
    alert_log = logging.getLogger("example.alerts")
    alert_log.setLevel(logging.INFO)
    alert_log.propagate = False
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    alert_log.addHandler(handler)
    alerts = Alerts([LogAlerts(alert_log)], success_rate_below=0.9, min_calls=3)

    try:
        # Entering the Alerts starts its sinks (an AlertWebhook's delivery task) for
        # as long as the block lasts.
        async with (
            alerts,
            ImageGenerator(
                providers=[failing("flaky", ProviderUnavailable), Placeholder(tier=1)],
                retry=Retry(attempts=1),
                breaker=CircuitBreaker(failure_threshold=2),
                hooks=[telemetry, alerts],
            ) as gen,
        ):
            for n in range(4):
                result = await gen.generate(f"a lighthouse at dusk {n}", width=128, height=128)
                print(f"generation {n}: {result.provider}")
    finally:
        alert_log.removeHandler(handler)

    data = reader.get_metrics_data()
    assert data is not None
    for metric in data.resource_metrics[0].scope_metrics[0].metrics:
        if metric.name in ("imagegen.attempts", "imagegen.breaker.state"):
            for point in metric.data.data_points:
                print(f"{metric.name} {dict(point.attributes or {})} = {point.value}")  # type: ignore[union-attr]
    finished = spans.get_finished_spans()
    roots = [s for s in finished if s.name == "imagegen.generate"]
    children = [s for s in finished if s.parent is not None and s.parent == roots[0].context]
    providers = ", ".join(f"{s.name}[{(s.attributes or {}).get('provider')}]" for s in children)
    print(f"first span: imagegen.generate -> {providers}")
    tracer_provider.shutdown()


if __name__ == "__main__":
    anyio.run(main)
