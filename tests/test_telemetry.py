"""OpenTelemetry metrics and spans from the generator's events (the `telemetry` extra)."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import attrs
import pytest
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    HistogramDataPoint,
    InMemoryMetricReader,
    NumberDataPoint,
)
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

import imagegen._distribution
import imagegen._telemetry
from imagegen import (
    CircuitBreaker,
    Event,
    Fallback,
    ImageGenerator,
    InvalidConfig,
    ProviderAuthError,
    ProviderUnavailable,
    Race,
    Retry,
    Telemetry,
)
from imagegen.testing import FakeClock, FakeProvider, failing, hanging, instant, slow

pytestmark = pytest.mark.anyio

Key = frozenset[tuple[str, Any]]


@attrs.define
class Otel:
    """An SDK wired to in-memory readers, and a Telemetry hook writing to it."""

    reader: InMemoryMetricReader
    exporter: InMemorySpanExporter
    telemetry: Telemetry
    tracer_provider: TracerProvider

    def points(self, name: str) -> dict[Key, Any]:
        """Data points of one metric, keyed by their attributes."""
        data = self.reader.get_metrics_data()
        found: dict[Key, Any] = {}
        if data is None:
            return found
        for resource in data.resource_metrics:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    if metric.name == name:
                        for point in metric.data.data_points:
                            found[frozenset((point.attributes or {}).items())] = point
        return found

    def values(self, name: str) -> dict[Key, float]:
        """Counter and gauge values, keyed by attributes (zero-valued sums left out)."""
        result: dict[Key, float] = {}
        for key, point in self.points(name).items():
            assert isinstance(point, NumberDataPoint)
            if point.value:
                result[key] = point.value
        return result

    def histogram(self, name: str) -> dict[Key, tuple[int, float]]:
        """(count, sum) of a histogram, keyed by attributes."""
        result: dict[Key, tuple[int, float]] = {}
        for key, point in self.points(name).items():
            assert isinstance(point, HistogramDataPoint)
            result[key] = (point.count, point.sum)
        return result

    def spans(self, name: str | None = None) -> list[ReadableSpan]:
        """Finished spans, optionally of one name."""
        return [s for s in self.exporter.get_finished_spans() if name is None or s.name == name]


def key(**attributes: Any) -> Key:
    """An attribute set as `Otel.values` keys it (`error_type` spells `error.type`)."""
    if "error_type" in attributes:
        attributes["error.type"] = attributes.pop("error_type")
    return frozenset(attributes.items())


def make_otel(**kwargs: Any) -> Otel:
    reader = InMemoryMetricReader()
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    telemetry = Telemetry(
        meter_provider=MeterProvider(metric_readers=[reader]),
        tracer_provider=tracer_provider,
        **kwargs,
    )
    return Otel(reader, exporter, telemetry, tracer_provider)


@pytest.fixture
def otel() -> Iterator[Otel]:
    """A Telemetry hook on an SDK with in-memory metric reader and span exporter."""
    made = make_otel()
    yield made
    made.tracer_provider.shutdown()


def event(kind: str, gid: str | None = "g1", provider: str | None = None, **data: Any) -> Event:
    return Event(kind=kind, generation_id=gid, provider=provider, data=data)


class TestImport:
    """OpenTelemetry is optional: imported only by Telemetry()."""

    def test_import_imagegen_does_not_import_opentelemetry(self) -> None:
        """A fresh `import imagegen` leaves every opentelemetry module unloaded."""
        code = (
            "import sys, imagegen\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'opentelemetry'))"
        )
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=30
        )
        assert out.stdout.strip() == "[]"

    def test_missing_api_names_the_extra(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Without opentelemetry-api, Telemetry() raises InvalidConfig naming the extra."""
        monkeypatch.setitem(sys.modules, "opentelemetry", None)
        with pytest.raises(InvalidConfig) as caught:
            Telemetry()
        assert caught.value.field == "telemetry"
        assert "pip install 'imagegen-failover[telemetry]'" in str(caught.value)

    @pytest.mark.parametrize("bad", [0, -1, 1.5, True, "10"])
    def test_max_open_validated(self, bad: object) -> None:
        """max_open must be an integer >= 1."""
        with pytest.raises(InvalidConfig) as caught:
            Telemetry(max_open=bad)  # type: ignore[arg-type]
        assert caught.value.field == "max_open"

    def test_global_providers_by_default(self) -> None:
        """With no providers given it uses the global (here no-op) ones and records nothing."""
        telemetry = Telemetry()
        telemetry(event("generation_started", width=64))
        telemetry(event("attempt_started", provider="a", **{"try": 1}))
        telemetry(event("attempt_finished", provider="a", outcome="success", billed=1))
        telemetry(event("generation_finished", provider="a", status="succeeded"))
        assert telemetry.open_spans() == 0
        assert repr(telemetry) == "Telemetry(open_spans=0)"

    def test_version_of_a_source_tree(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """An uninstalled tree reports version "0" to the meter and tracer."""

        def missing(_: str) -> str:
            raise importlib.metadata.PackageNotFoundError

        monkeypatch.setattr(imagegen._distribution, "version", missing)
        assert imagegen._telemetry._library_version() == "0"


class TestMetrics:
    """Each instrument's values after real generations."""

    async def test_cost_where_known(self, clock: FakeClock, otel: Otel) -> None:
        """A priced provider's calls add their USD; a free one adds nothing."""
        gen = ImageGenerator(
            providers=[slow("a", 1.0, price_per_image=0.25)], clock=clock, hooks=[otel.telemetry]
        )
        for _ in range(2):
            await gen.generate("a fox")
        assert otel.values("imagegen.cost") == {key(provider="a"): pytest.approx(0.5)}
        assert otel.values("imagegen.cost.unknown") == {}

    async def test_successes(self, clock: FakeClock, otel: Otel) -> None:
        """Two successes: attempts, generations, billed calls and both durations."""
        gen = ImageGenerator(providers=[slow("a", 2.0)], clock=clock, hooks=[otel.telemetry])
        for _ in range(2):
            await gen.generate("a fox")
        assert otel.values("imagegen.attempts") == {key(provider="a", outcome="success"): 2}
        assert otel.values("imagegen.generations") == {
            key(status="succeeded", provider="a", is_default=False): 2
        }
        assert otel.values("imagegen.billed_calls") == {key(provider="a"): 2}
        assert otel.histogram("imagegen.attempt.duration") == {
            key(provider="a", outcome="success"): (2, pytest.approx(4.0))
        }
        assert otel.histogram("imagegen.generation.duration") == {
            key(status="succeeded", provider="a", is_default=False): (2, pytest.approx(4.0))
        }
        assert otel.values("imagegen.retries") == {}
        assert otel.values("imagegen.cancellations") == {}
        assert otel.values("imagegen.cost") == {}  # the fake's price is not known
        assert otel.values("imagegen.cost.unknown") == {key(provider="a"): 2}
        # A success shows the breaker closed, before any change was seen.
        assert otel.values("imagegen.breaker.state") == {}
        assert key(provider="a") in otel.points("imagegen.breaker.state")

    async def test_failures_by_error_kind_and_retries(self, clock: FakeClock, otel: Otel) -> None:
        """Errors are counted by kind; a retryable one is retried; the default image counts."""
        gen = ImageGenerator(
            providers=[
                failing("down", ProviderUnavailable),
                failing("locked", ProviderAuthError),
            ],
            strategy=Fallback(),
            retry=Retry(attempts=2, initial=0.5, jitter=False),
            clock=clock,
            hooks=[otel.telemetry],
        )
        result = await gen.generate("a fox")
        assert result.is_default
        assert otel.values("imagegen.attempts") == {
            key(provider="down", outcome="error", error_type="ProviderUnavailable"): 1,
            key(provider="locked", outcome="error", error_type="ProviderAuthError"): 1,
        }
        assert otel.values("imagegen.retries") == {
            key(provider="down", error_type="ProviderUnavailable"): 1
        }
        assert otel.values("imagegen.generations") == {
            key(status="succeeded", provider="default", is_default=True): 1
        }
        assert otel.values("imagegen.billed_calls") == {}

    async def test_failed_generation(self, clock: FakeClock, otel: Otel) -> None:
        """Without a default image a failure is counted with its error type and no provider."""
        gen = ImageGenerator(
            providers=[failing("down", ProviderAuthError)],
            default_image=None,
            clock=clock,
            hooks=[otel.telemetry],
        )
        with pytest.raises(Exception, match="all providers failed"):
            await gen.generate("a fox")
        assert otel.values("imagegen.generations") == {
            key(status="failed", is_default=False, error_type="AllProvidersFailed"): 1
        }
        assert otel.histogram("imagegen.generation.duration") == {
            key(status="failed", is_default=False): (1, 0.0)
        }

    async def test_race_loser_cancelled_locally_and_remotely(
        self, clock: FakeClock, otel: Otel
    ) -> None:
        """A race loser with remote work: one local and one remote cancellation, billed."""
        loser = hanging("loser", handle="job")
        async with ImageGenerator(
            providers=[instant("winner"), loser],
            strategy=Race(),
            clock=clock,
            hooks=[otel.telemetry],
        ) as gen:
            await gen.generate("a fox")
        assert loser.cancelled == ["job-1"]
        assert otel.values("imagegen.cancellations") == {
            key(provider="loser", kind="local"): 1,
            key(provider="loser", kind="remote"): 1,
        }
        assert otel.values("imagegen.attempts") == {
            key(provider="winner", outcome="success"): 1,
            key(provider="loser", outcome="cancelled"): 1,
        }
        assert otel.values("imagegen.billed_calls") == {
            key(provider="winner"): 1,
            key(provider="loser"): 1,
        }

    async def test_breaker_state_and_transitions(self, clock: FakeClock, otel: Otel) -> None:
        """The gauge follows the breaker: 2 open, then 0 once a trial call closes it."""
        flaky = FakeProvider("flaky", errors=[ProviderUnavailable, ProviderUnavailable])
        gen = ImageGenerator(
            providers=[flaky, instant("backup", tier=1)],
            retry=Retry(attempts=1),
            breaker=CircuitBreaker(failure_threshold=2, reset_timeout=30.0),
            clock=clock,
            hooks=[otel.telemetry],
        )
        for _ in range(3):
            await gen.generate("a fox")
        assert await gen.breaker_for("flaky").state() == "open"
        assert otel.values("imagegen.breaker.state") == {key(provider="flaky"): 2}
        assert otel.values("imagegen.breaker.transitions") == {
            key(provider="flaky", state="open"): 1
        }
        clock.advance(31.0)
        result = await gen.generate("a fox")
        assert result.provider == "flaky"
        assert otel.values("imagegen.breaker.state") == {}  # both providers at 0
        assert set(otel.points("imagegen.breaker.state")) == {
            key(provider="flaky"),
            key(provider="backup"),
        }
        assert otel.values("imagegen.breaker.transitions") == {
            key(provider="flaky", state="open"): 1,
            key(provider="flaky", state="half_open"): 1,
            key(provider="flaky", state="closed"): 1,
        }


class NoGaugeMeter:
    """A meter from an API without synchronous gauges (or one whose gauge is a no-op)."""

    def __init__(self, meter: Any, *, returns_none: bool) -> None:
        self._meter = meter
        self._returns_none = returns_none

    def __getattr__(self, name: str) -> Any:
        if name == "create_gauge":
            if not self._returns_none:
                raise AttributeError(name)
            return lambda *_a, **_k: None
        return getattr(self._meter, name)


class NoGaugeProvider:
    """A meter provider handing out NoGaugeMeters."""

    def __init__(self, provider: MeterProvider, *, returns_none: bool) -> None:
        self._provider = provider
        self._returns_none = returns_none

    def get_meter(self, *args: Any, **kwargs: Any) -> NoGaugeMeter:
        return NoGaugeMeter(
            self._provider.get_meter(*args, **kwargs), returns_none=self._returns_none
        )


class TestBreakerGaugeFallback:
    """Without a synchronous gauge the state is an up-down counter reading the same."""

    @pytest.mark.parametrize("returns_none", [False, True], ids=["no-method", "no-op"])
    def test_up_down_counter_reads_the_state(self, returns_none: bool) -> None:
        """Open, half open, closed: the summed value is 2, 1, then 0."""
        reader = InMemoryMetricReader()
        provider = NoGaugeProvider(
            MeterProvider(metric_readers=[reader]), returns_none=returns_none
        )
        telemetry = Telemetry(meter_provider=provider)  # type: ignore[arg-type]
        otel = Otel(reader, InMemorySpanExporter(), telemetry, TracerProvider())
        seen = []
        for to in ("open", "half_open", "closed"):
            telemetry(event("breaker_state_changed", None, "p", to=to))
            (point,) = otel.points("imagegen.breaker.state").values()
            seen.append(point.value)
        assert seen == [2, 1, 0]

    def test_unknown_state_is_ignored(self, otel: Otel) -> None:
        """A state the gauge has no number for changes nothing."""
        otel.telemetry(event("breaker_state_changed", None, "p", to="melting"))
        assert otel.points("imagegen.breaker.state") == {}
        assert otel.points("imagegen.breaker.transitions") == {}


class TestSpans:
    """One span per generation, a child per provider attempt."""

    async def test_span_tree(self, clock: FakeClock, otel: Otel) -> None:
        """Attempts are children of the generation span, with outcome, tries and status."""
        gen = ImageGenerator(
            providers=[failing("down", ProviderUnavailable), instant("good")],
            strategy=Fallback(),
            retry=Retry(attempts=2, initial=0.5, jitter=False),
            clock=clock,
            hooks=[otel.telemetry],
        )
        result = await gen.generate("a fox", width=64, height=128)
        (root,) = otel.spans("imagegen.generate")
        attempts = {s.attributes["provider"]: s for s in otel.spans("imagegen.attempt")}
        assert root.parent is None
        assert root.attributes == {
            "imagegen.generation.id": result.id,
            "imagegen.request.width": 64,
            "imagegen.request.height": 128,
            "imagegen.request.output_format": "png",
            "status": "succeeded",
            "is_default": False,
            "provider": "good",
        }
        assert root.status.status_code is StatusCode.UNSET
        for child in attempts.values():
            assert child.parent is not None
            assert child.parent.span_id == root.context.span_id
            assert child.context.trace_id == root.context.trace_id
        down, good = attempts["down"], attempts["good"]
        assert down.status.status_code is StatusCode.ERROR
        assert down.status.description == "ProviderUnavailable"
        assert down.attributes["outcome"] == "error"
        assert down.attributes["error.type"] == "ProviderUnavailable"
        assert down.attributes["tries"] == 2
        assert down.attributes["billed"] == 0
        assert [e.name for e in down.events] == ["retry_scheduled"]
        assert down.events[0].attributes == {
            "try": 1,
            "delay": 0.5,
            "error.type": "ProviderUnavailable",
        }
        assert good.status.status_code is StatusCode.UNSET
        assert good.attributes["outcome"] == "success"
        assert good.attributes["billed"] == 1
        assert otel.telemetry.open_spans() == 0

    async def test_failed_generation_is_an_error(self, clock: FakeClock, otel: Otel) -> None:
        """A generation that raises ends its span with status ERROR and the error type."""
        gen = ImageGenerator(
            providers=[failing("down", ProviderAuthError)],
            default_image=None,
            clock=clock,
            hooks=[otel.telemetry],
        )
        with pytest.raises(Exception, match="all providers failed"):
            await gen.generate("a fox")
        (root,) = otel.spans("imagegen.generate")
        assert root.status.status_code is StatusCode.ERROR
        assert root.status.description == "AllProvidersFailed"
        assert root.attributes["error.type"] == "AllProvidersFailed"
        assert "provider" not in root.attributes

    async def test_joins_the_callers_trace(self, clock: FakeClock, otel: Otel) -> None:
        """The generation span is a child of the span current where generate() is called."""
        tracer = otel.tracer_provider.get_tracer("app")
        gen = ImageGenerator(providers=[instant("a")], clock=clock, hooks=[otel.telemetry])
        with tracer.start_as_current_span("request") as request:
            await gen.generate("a fox")
        (root,) = otel.spans("imagegen.generate")
        assert root.parent is not None
        assert root.parent.span_id == request.get_span_context().span_id

    async def test_remote_cancel_is_an_attempt_event(self, clock: FakeClock, otel: Otel) -> None:
        """Outside `async with`, a loser's remote cancel is noted on its (cancelled) span."""
        gen = ImageGenerator(
            providers=[instant("winner"), hanging("loser", handle="job")],
            strategy=Race(),
            clock=clock,
            hooks=[otel.telemetry],
        )
        await gen.generate("a fox")
        (loser,) = [
            s for s in otel.spans("imagegen.attempt") if s.attributes["provider"] == "loser"
        ]
        assert [e.name for e in loser.events] == ["remote_cancelled"]
        assert loser.attributes["outcome"] == "cancelled"
        assert loser.status.status_code is StatusCode.UNSET


class TestBounds:
    """Open-span maps stay bounded whatever events go missing."""

    def test_oldest_spans_dropped_past_max_open(self) -> None:
        """Ten unfinished generations keep at most max_open of each kind of span open."""
        otel = make_otel(max_open=3)
        telemetry = otel.telemetry
        for n in range(10):
            telemetry(event("generation_started", f"g{n}"))
            telemetry(event("attempt_started", f"g{n}", "a", **{"try": 1}))
        assert telemetry.open_spans() == 6
        # Finishing a forgotten generation records its metrics but exports no span.
        telemetry(event("attempt_finished", "g0", "a", outcome="success", billed=1))
        telemetry(event("generation_finished", "g0", "a", status="succeeded"))
        assert otel.spans() == []
        assert otel.values("imagegen.generations") == {
            key(status="succeeded", provider="a", is_default=False): 1
        }
        telemetry(event("attempt_finished", "g9", "a", outcome="success", billed=1))
        telemetry(event("generation_finished", "g9", "a", status="succeeded"))
        assert [s.name for s in otel.spans()] == ["imagegen.attempt", "imagegen.generate"]
        assert telemetry.open_spans() == 4
        otel.tracer_provider.shutdown()

    def test_reopened_attempt_ends_the_first(self, otel: Otel) -> None:
        """An attempt started twice under one key ends the first span rather than leak it."""
        otel.telemetry(event("attempt_started", provider="a", **{"try": 1}))
        otel.telemetry(event("attempt_started", provider="a", **{"try": 1}))
        assert len(otel.spans("imagegen.attempt")) == 1
        assert otel.telemetry.open_spans() == 1

    def test_incomplete_events_open_nothing(self, otel: Otel) -> None:
        """No generation id, no provider, a retry's try or an unknown kind: no span."""
        telemetry = otel.telemetry
        telemetry(event("generation_started", None))
        telemetry(event("attempt_started", None, "a", **{"try": 1}))
        telemetry(event("attempt_started", "g1", None, **{"try": 1}))
        telemetry(event("attempt_started", "g1", "a", **{"try": 2}))
        telemetry(event("something_new"))
        telemetry(event("remote_cancelled", "g1", "a"))
        telemetry(event("retry_scheduled", "g1", "a", error="ProviderTimeout"))
        assert telemetry.open_spans() == 0
        assert otel.values("imagegen.cancellations") == {key(provider="a", kind="remote"): 1}
        assert otel.values("imagegen.retries") == {
            key(provider="a", error_type="ProviderTimeout"): 1
        }


class TestNoSDK:
    """With only the API's no-op providers the hook works and its spans are non-recording."""

    def test_non_recording_spans(self) -> None:
        """The no-op tracer hands out non-recording spans the hook still tracks and ends."""
        telemetry = Telemetry(
            meter_provider=metrics.NoOpMeterProvider(), tracer_provider=trace.NoOpTracerProvider()
        )
        telemetry(event("generation_started"))
        assert telemetry.open_spans() == 1
        span = telemetry._generation_spans["g1"]
        assert not span.is_recording()
        assert isinstance(span, trace.Span)
        telemetry(event("generation_finished", status="failed", error="AllProvidersFailed"))
        assert telemetry.open_spans() == 0
